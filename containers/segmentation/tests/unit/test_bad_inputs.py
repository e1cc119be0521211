"""Every bad input ends with one clear line naming the file and the "do not retry" exit code."""

from __future__ import annotations

import gzip
import shutil

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from primage_segmentation import errors
from primage_segmentation.phantoms import nifti_bytes, write_dicom_series


def valid_nifti(small_phantom, compressed=True) -> bytes:
    return nifti_bytes(small_phantom.image, small_phantom.affine, compressed=compressed)


def make_empty(folder, phantom):
    (folder / "empty.nii.gz").write_bytes(b"")
    return folder / "empty.nii.gz", "empty file"


def make_random_gz(folder, phantom):
    (folder / "random.nii.gz").write_bytes(np.random.default_rng(0).bytes(4096))
    return folder / "random.nii.gz", "corrupt"


def make_random_nii(folder, phantom):
    (folder / "random.nii").write_bytes(np.random.default_rng(1).bytes(4096))
    return folder / "random.nii", "NIfTI"


def make_truncated_gz(folder, phantom):
    data = valid_nifti(phantom)
    (folder / "truncated.nii.gz").write_bytes(data[: len(data) // 2])
    return folder / "truncated.nii.gz", "truncated"


def make_truncated_nii(folder, phantom):
    data = valid_nifti(phantom, compressed=False)
    (folder / "truncated.nii").write_bytes(data[: len(data) // 3])
    return folder / "truncated.nii", "truncated"


def make_gzipped_text(folder, phantom):
    (folder / "notes.nii.gz").write_bytes(gzip.compress(b"patient notes, not an image\n" * 40))
    return folder / "notes.nii.gz", "NIfTI"


def make_text_file(folder, phantom):
    (folder / "notes.txt").write_text("not an image\n")
    return folder / "notes.txt", "not a NIfTI file"


def make_png(folder, phantom):
    from PIL import Image

    Image.new("L", (16, 16)).save(folder / "photo.png")
    return folder / "photo.png", "not a NIfTI file"


def make_four_d(folder, phantom):
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4, 3), np.int16), np.eye(4)), folder / "fmri.nii.gz")
    return folder / "fmri.nii.gz", "4-D"


def make_blank(folder, phantom):
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4)), folder / "blank.nii.gz")
    return folder / "blank.nii.gz", "same value"


def make_rgb(folder, phantom):
    rgb = np.zeros((4, 4, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nibabel.save(nibabel.Nifti1Image(rgb, np.eye(4)), folder / "rgb.nii")
    return folder / "rgb.nii", "RGB"


def make_empty_series(folder, phantom):
    (folder / "series").mkdir()
    return folder / "series", "empty folder"


def make_series_with_foreign_file(folder, phantom):
    write_dicom_series(folder / "series", phantom.image[:, :, :4], phantom.affine)
    (folder / "series" / "README").write_text("exported by hand\n")
    return folder / "series" / "README", "not a DICOM file"


def make_series_with_truncated_slice(folder, phantom):
    files = write_dicom_series(folder / "series", phantom.image[:, :, :4], phantom.affine)
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) - 3000])
    return files[0], "truncated"


def make_series_with_a_gap(folder, phantom):
    files = write_dicom_series(folder / "series", phantom.image[:, :, :6], phantom.affine)
    sorted(files)[2].unlink()
    return folder / "series", "uneven slice spacing"


def make_two_series(folder, phantom):
    write_dicom_series(folder / "series", phantom.image[:, :, :3], phantom.affine, seed=1)
    other = folder / "other"
    write_dicom_series(other, phantom.image[:, :, :3], phantom.affine, seed=2)
    for file in other.iterdir():
        shutil.move(file, folder / "series" / f"b-{file.name}")
    return folder / "series", "2 series"


def make_report_without_pixels(folder, phantom):
    (folder / "series").mkdir()
    shutil.copy(get_testdata_file("reportsi.dcm"), folder / "series" / "report.dcm")
    return folder / "series" / "report.dcm", "no pixel data"


def make_undecodable_pixels(folder, phantom):
    (folder / "series").mkdir()
    # JPEG-LS: neither pydicom nor Pillow decodes it (the image ships no pylibjpeg plugin).
    shutil.copy(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"), folder / "series" / "mr.dcm")
    assert pydicom.dcmread(folder / "series" / "mr.dcm").file_meta.TransferSyntaxUID.is_compressed
    return folder / "series" / "mr.dcm", "compressed"


BAD_INPUTS = [
    make_empty,
    make_random_gz,
    make_random_nii,
    make_truncated_gz,
    make_truncated_nii,
    make_gzipped_text,
    make_text_file,
    make_png,
    make_four_d,
    make_blank,
    make_rgb,
    make_empty_series,
    make_series_with_foreign_file,
    make_series_with_truncated_slice,
    make_series_with_a_gap,
    make_two_series,
    make_report_without_pixels,
    make_undecodable_pixels,
]


@pytest.mark.parametrize("make", BAD_INPUTS, ids=[m.__name__.removeprefix("make_") for m in BAD_INPUTS])
def test_bad_input_exits_65_with_one_line_naming_the_file(tmp_path, small_phantom, run_cli, make):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    named, expected = make(inputs, small_phantom)
    task_input = inputs / named.relative_to(inputs).parts[0]  # the file, or the series folder holding it
    outputs = tmp_path / "outputs"
    result = run_cli("run", task_input, "--output-dir", outputs)
    assert result.code == errors.BAD_INPUT == 65
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert str(named) in lines[0]
    assert expected in lines[0]
    assert lines[0].startswith("bad input (do not retry): ")
    assert not any(p.is_file() for p in outputs.rglob("*")), "a bad input leaves no result"


def test_a_missing_input_exits_66(tmp_path, run_cli):
    result = run_cli("run", tmp_path / "inputs" / "gone.nii.gz", "--output-dir", tmp_path / "outputs")
    assert result.code == errors.NO_INPUT == 66
    assert "gone.nii.gz" in result.err
    assert "no such file" in result.err


def test_codes_after_which_a_retry_cannot_help_are_listed():
    assert set(errors.DO_NOT_RETRY) == {64, 65, 66}
    assert errors.INTERNAL not in errors.DO_NOT_RETRY
    assert errors.TERMINATED not in errors.DO_NOT_RETRY


def test_an_unexpected_failure_is_an_internal_error_with_its_traceback(tmp_path, nifti_file, run_cli, monkeypatch):
    from primage_segmentation import task

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(task, "segment", broken)
    result = run_cli("run", nifti_file, "--output-dir", tmp_path / "outputs")
    assert result.code == errors.INTERNAL == 70
    assert "Traceback" in result.err
    assert "ZeroDivisionError" in result.err
    assert not (tmp_path / "outputs" / "case" / "_SUCCESS").exists()
