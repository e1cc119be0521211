"""The sample command end to end, the real images end to end, and the overlay a person looks at."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pytest
from helpers import dice
from PIL import Image
from pydicom.data import get_testdata_file

from primage_segmentation import overlay

NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"


def test_sample_writes_a_space_whose_every_case_segments_with_dice_090(tmp_path, run_cli):
    space = tmp_path / "space"
    made = run_cli("sample", space, "--count", 4, "--seed", 3)
    assert made.code == 0, made.err
    manifest = json.loads((space / "sample.json").read_text())
    listed = (space / "inputs.txt").read_text().splitlines()
    assert listed == [case["input"] for case in manifest["cases"]]
    assert any((space / entry).is_dir() for entry in listed), "a DICOM series among the cases"
    assert any(entry.endswith(".nii") for entry in listed)
    assert any(entry.endswith(".nii.gz") for entry in listed)
    env = {"PRIMAGE_INPUT_LIST": space / "inputs.txt", "PRIMAGE_OUTPUT_DIR": space / "outputs"}
    for index, case in enumerate(manifest["cases"]):
        result = run_cli("run", env={**env, "JOB_COMPLETION_INDEX": index})
        assert result.code == 0, result.err
        truth_image = nibabel.load(space / case["truth"])
        output = space / "outputs" / case["input"].removesuffix(".gz").removesuffix(".nii")
        mask_image = nibabel.load(output / "mask.nii.gz")
        assert np.allclose(mask_image.affine, truth_image.affine, atol=1e-4), case["input"]
        truth = np.asarray(truth_image.dataobj) > 0
        assert truth.sum() * np.prod(case["spec"]["spacing"]) / 1000 == pytest.approx(case["truth_volume_ml"], abs=1e-3)
        assert dice(np.asarray(mask_image.dataobj) > 0, truth) >= 0.90, case["input"]


def test_the_real_mr_volume_is_segmented_end_to_end(tmp_path, run_cli):
    source = tmp_path / "inputs" / "anatomical.nii"
    source.parent.mkdir()
    shutil.copy(NIBABEL_DATA / "anatomical.nii", source)
    result = run_cli("run", source, "--output-dir", tmp_path / "outputs")
    assert result.code == 0, result.err
    folder = tmp_path / "outputs" / "anatomical"
    record = json.loads((folder / "segmentation.json").read_text())
    mask = nibabel.load(folder / "mask.nii.gz")
    assert mask.shape == (33, 41, 25)
    assert np.array_equal(mask.affine, nibabel.load(source).affine)
    assert record["lesion_found"]
    assert record["voxel_count"] == int(np.asarray(mask.dataobj).sum())
    assert record["volume_ml"] == round(record["voxel_count"] * 8 / 1000, 4)  # 2 mm isotropic voxels
    assert Image.open(folder / "overlay.png").size[0] >= 480


def test_the_real_ct_slice_is_segmented_end_to_end_with_a_hounsfield_window(tmp_path, run_cli):
    series = tmp_path / "inputs" / "ct"
    series.mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), series / "slice-1.dcm")
    # Soft tissue of a contrast CT, in Hounsfield units.
    result = run_cli("run", series, "--output-dir", tmp_path / "outputs", "--window", "0:200")
    assert result.code == 0, result.err
    record = json.loads((tmp_path / "outputs" / "ct" / "segmentation.json").read_text())
    assert record["input"]["format"] == "dicom"
    assert record["input"]["modality"] == "CT"
    assert record["threshold"]["mode"] == "window"
    assert record["lesion_found"]
    assert record["components"]["kept"] == "largest"
    assert 0 <= record["intensity"]["lesion"]["median"] <= 200, "the kept voxels lie in the window (smoothed)"


def red_pixels(png: bytes) -> np.ndarray:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return (pixels[..., 0] > 150) & (pixels[..., 1] < 130) & (pixels[..., 2] < 130)


def test_the_overlay_draws_the_lesion_on_the_patients_right_at_the_left_of_the_axial_view():
    data = np.full((40, 40, 20), 100.0, np.float32)
    mask = np.zeros(data.shape, bool)
    mask[30:36, 18:24, 8:12] = True  # high i: the patient's right in RAS+
    data[mask] = 200.0
    png = overlay.overlay_png(data, mask, np.diag([1.0, 1.0, 2.0, 1.0]), "right.nii.gz", "lesion")
    red = red_pixels(png)
    assert red.any()
    columns = np.flatnonzero(red.any(axis=0))
    axial_end = 8 + overlay.PANEL_MM_PIXELS  # first panel: gap, then at most this many pixels
    axial = columns[columns < axial_end]
    assert axial.size > 0
    assert axial.mean() < 8 + overlay.PANEL_MM_PIXELS / 2, "radiological convention: the patient's right on the left"


def test_the_overlay_of_an_empty_mask_has_no_red_and_shows_the_centre():
    data = np.random.default_rng(0).normal(100, 5, (24, 24, 12)).astype(np.float32)
    png = overlay.overlay_png(data, np.zeros(data.shape, bool), np.eye(4), "none.nii.gz", "no lesion found")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size[1] > overlay.HEADER_PIXELS
    assert not red_pixels(png).any()
