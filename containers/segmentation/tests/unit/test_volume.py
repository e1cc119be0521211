"""Reading NIfTI files and DICOM series, and the geometry of the written masks."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from primage_segmentation import volume
from primage_segmentation.phantoms import nifti_bytes, write_dicom_series

NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"


def rotation_z(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    turn = np.eye(4)
    turn[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return turn


@pytest.mark.parametrize("compressed", [True, False], ids=["nii.gz", "nii"])
def test_nifti_round_trip(tmp_path, small_phantom, compressed):
    path = tmp_path / ("case.nii.gz" if compressed else "case.nii")
    path.write_bytes(nifti_bytes(small_phantom.image, small_phantom.affine, compressed=compressed))
    loaded = volume.load(path)
    assert loaded.format == "nifti"
    assert np.array_equal(loaded.data, np.rint(small_phantom.image))
    assert np.allclose(loaded.affine, small_phantom.affine)
    assert np.allclose(loaded.spacing, [1.0, 1.0, 2.5])


@pytest.mark.parametrize("degrees", [0.0, 30.0], ids=["axis-aligned", "oblique-30deg"])
def test_a_dicom_series_reads_as_the_same_volume_as_its_nifti(tmp_path, small_phantom, degrees):
    affine = rotation_z(degrees) @ small_phantom.affine
    files = write_dicom_series(tmp_path / "series", small_phantom.image, affine, seed=5)
    assert [f.name for f in files] != sorted(f.name for f in files), "slices are written out of order"
    loaded = volume.load(tmp_path / "series")
    assert loaded.format == "dicom"
    assert loaded.details["slices"] == small_phantom.image.shape[2]
    assert np.array_equal(loaded.data, np.rint(small_phantom.image))
    assert np.allclose(loaded.affine, affine, atol=1e-4)


def test_the_mask_of_a_nifti_keeps_its_header_forms(tmp_path):
    source = volume.load(NIBABEL_DATA / "anatomical.nii")
    mask = np.zeros(source.data.shape, bool)
    mask[10:15, 10:20, 5:8] = True
    path = tmp_path / "mask.nii.gz"
    path.write_bytes(volume.mask_bytes(mask, source))
    written = nibabel.load(path)
    original = nibabel.load(NIBABEL_DATA / "anatomical.nii")
    assert np.array_equal(written.affine, original.affine)
    for field in ("qform_code", "sform_code"):
        assert int(written.header[field]) == int(original.header[field])
    assert written.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(written.dataobj).astype(bool), mask)


def test_the_mask_of_a_dicom_series_carries_its_affine_as_scanner_coordinates(tmp_path, small_phantom):
    write_dicom_series(tmp_path / "series", small_phantom.image, small_phantom.affine)
    source = volume.load(tmp_path / "series")
    path = tmp_path / "mask.nii.gz"
    path.write_bytes(volume.mask_bytes(np.ones(source.data.shape, bool), source))
    written = nibabel.load(path)
    assert np.allclose(written.affine, small_phantom.affine, atol=1e-4)
    assert int(written.header["sform_code"]) == 1


def test_a_real_mr_volume_from_nibabels_wheel():
    """anatomical.nii: an SPM-normalised T1 MR of a person, big-endian int16, 2 mm voxels."""
    loaded = volume.load(NIBABEL_DATA / "anatomical.nii")
    assert loaded.data.shape == (33, 41, 25)
    assert np.allclose(loaded.spacing, 2.0)
    assert loaded.data.max() > loaded.data.min()


def test_a_real_ct_slice_from_pydicoms_wheel_is_a_one_slice_series(tmp_path):
    """CT_small.dcm: a 128x128 CT slice of a person, 5 mm thick."""
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "CT_small.dcm")
    header = pydicom.dcmread(folder / "CT_small.dcm")
    loaded = volume.load(folder)
    assert loaded.data.shape == (128, 128, 1)
    assert loaded.details["modality"] == "CT"
    position = [float(v) for v in header.ImagePositionPatient]
    # The first voxel sits at ImagePositionPatient, LPS turned into RAS.
    assert np.allclose(loaded.affine[:3, 3], [-position[0], -position[1], position[2]])
    rows, columns = (float(v) for v in header.PixelSpacing)
    assert np.allclose(loaded.spacing, [columns, rows, 5.0])
    slope, intercept = float(header.RescaleSlope), float(header.RescaleIntercept)
    assert np.allclose(loaded.data[:, :, 0], header.pixel_array.T * slope + intercept)


def test_a_two_d_nifti_is_one_slice_and_a_singleton_fourth_axis_is_dropped(tmp_path):
    flat = nibabel.Nifti1Image(np.arange(64, dtype=np.int16).reshape(8, 8), np.eye(4))
    nibabel.save(flat, tmp_path / "flat.nii")
    assert volume.load(tmp_path / "flat.nii").data.shape == (8, 8, 1)
    single = nibabel.Nifti1Image(np.arange(128, dtype=np.int16).reshape(4, 4, 8, 1), np.eye(4))
    nibabel.save(single, tmp_path / "single.nii.gz")
    assert volume.load(tmp_path / "single.nii.gz").data.shape == (4, 4, 8)


def test_nan_voxels_count_as_the_lowest_value(tmp_path):
    data = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    data[0, 0, 0] = np.nan
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), tmp_path / "stats.nii")
    loaded = volume.load(tmp_path / "stats.nii")
    assert loaded.data[0, 0, 0] == 1.0
    assert loaded.details["non_finite_voxels"] == 1
