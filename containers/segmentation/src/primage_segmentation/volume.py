"""Reading 3-D volumes (NIfTI files, DICOM series folders) and writing masks with their geometry.

Every volume is held in NIfTI's convention: a float32 array indexed (i, j, k) and a 4x4 affine
from voxel indices to millimetres in RAS+ (right, anterior, superior) scanner coordinates.
Anything that is not a readable 3-D image raises BadInput with one line saying what is wrong.
"""

from __future__ import annotations

import errno
import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nibabel
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from .errors import BadInput, NoInput

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# DICOM is LPS+, NIfTI RAS+: the first two axes change sign.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Relative tolerance on slice spacing before a series counts as having a gap.
SPACING_TOLERANCE = 0.01
# Failures that say the bytes are not a valid image (as opposed to an I/O error of the storage,
# which is worth a retry).
_CORRUPT = (ImageFileError, HeaderDataError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, TypeError)
_TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE, errno.ENOTCONN}


@dataclass
class Volume:
    data: np.ndarray  # float32, (i, j, k)
    affine: np.ndarray  # 4x4, voxel -> RAS+ mm
    source: Path
    format: str  # "nifti" or "dicom"
    header: nibabel.Nifti1Header | None = None  # of a NIfTI input, reused for the mask
    details: dict = field(default_factory=dict)

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)


def input_kind(path: Path) -> str:
    """'nifti' or 'dicom' from the path alone; BadInput for anything else."""
    if path.is_dir():
        return "dicom"
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return "nifti"
    raise BadInput("not a NIfTI file (.nii, .nii.gz) or a folder holding one DICOM series", path)


def load(path: Path) -> Volume:
    if not path.exists():
        raise NoInput("no such file or folder", path)
    kind = input_kind(path)
    volume = load_nifti(path) if kind == "nifti" else load_dicom_series(path)
    _check_values(volume)
    return volume


# --------------------------------------------------------------------------- NIfTI


def load_nifti(path: Path) -> Volume:
    size = path.stat().st_size
    if size == 0:
        raise BadInput("empty file (0 bytes)", path)
    try:
        image = nibabel.load(path)
        if not isinstance(image, nibabel.Nifti1Image | nibabel.Nifti2Image):
            raise BadInput(f"not a NIfTI image (nibabel reads it as {type(image).__name__})", path)
        data = np.asanyarray(image.dataobj)
    except BadInput:
        raise
    except OSError as error:
        if getattr(error, "errno", None) in _TRANSIENT_ERRNOS:
            raise  # the storage failed, not the file: worth a retry
        raise BadInput(f"unreadable NIfTI ({_reason(error)})", path) from None
    except _CORRUPT as error:
        raise BadInput(f"corrupt or truncated NIfTI ({_reason(error)})", path) from None
    data = _as_3d(data, path)
    affine = image.affine
    if affine is None or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise BadInput("the header gives no usable voxel-to-world affine (zero or non-finite voxel sizes)", path)
    return Volume(
        data=data.astype(np.float32, copy=False),
        affine=np.asarray(affine, dtype=np.float64),
        source=path,
        format="nifti",
        header=image.header,
        details={"nifti_version": 2 if isinstance(image, nibabel.Nifti2Image) else 1, "bytes": size},
    )


def _as_3d(data: np.ndarray, path: Path) -> np.ndarray:
    if data.dtype.fields is not None or np.iscomplexobj(data):
        raise BadInput(f"voxels of type {data.dtype} (RGB or complex); expected one real value per voxel", path)
    if data.ndim == 2:
        return data[:, :, np.newaxis]
    if data.ndim > 3 and all(extent == 1 for extent in data.shape[3:]):
        return data.reshape(data.shape[:3])
    if data.ndim != 3:
        raise BadInput(f"a {data.ndim}-D image of shape {tuple(data.shape)}; expected one 3-D volume", path)
    return data


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --------------------------------------------------------------------------- DICOM


def load_dicom_series(folder: Path) -> Volume:
    import pydicom
    from pydicom.errors import InvalidDicomError

    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".") and f.name != "DICOMDIR")
    if not files:
        raise BadInput("empty folder: expected the slices of one DICOM series", folder)
    slices = []
    for file in files:
        if file.stat().st_size == 0:
            raise BadInput("empty file (0 bytes) in the DICOM series", file)
        try:
            dataset = pydicom.dcmread(file)
        except InvalidDicomError:
            raise BadInput("not a DICOM file (no DICM preamble); a series folder holds only its slices", file) from None
        except OSError as error:
            if getattr(error, "errno", None) in _TRANSIENT_ERRNOS:
                raise
            raise BadInput(f"unreadable DICOM file ({_reason(error)})", file) from None
        except (*_CORRUPT, KeyError, AttributeError) as error:
            raise BadInput(f"corrupt or truncated DICOM file ({_reason(error)})", file) from None
        slices.append((file, dataset))
    return _stack(folder, slices)


def _stack(folder: Path, slices: list) -> Volume:
    first_file, first = slices[0]
    series = {str(getattr(ds, "SeriesInstanceUID", "")) for _, ds in slices}
    if len(series) > 1:
        raise BadInput(f"{len(series)} series in one folder ({', '.join(sorted(series))}); give one per folder", folder)
    geometry = [_slice_geometry(file, ds) for file, ds in slices]
    row_dir, col_dir, spacing_rc, shape = geometry[0][1:]
    for (file, r, c, s, rows_cols), _ in zip(geometry, slices, strict=True):
        if rows_cols != shape or not np.allclose(r, row_dir, atol=1e-4) or not np.allclose(c, col_dir, atol=1e-4):
            raise BadInput("slice size or orientation differs from the first slice of the series", file)
        if not np.allclose(s, spacing_rc, rtol=1e-4):
            raise BadInput("pixel spacing differs from the first slice of the series", file)
    normal = np.cross(row_dir, col_dir)
    order = sorted(range(len(slices)), key=lambda n: float(np.dot(geometry[n][0], normal)))
    positions = np.array([np.dot(geometry[n][0], normal) for n in order])
    slice_step = _slice_step(folder, positions, [slices[n][0] for n in order], first)
    pixels = [_pixels(slices[n][0], slices[n][1]) for n in order]
    data = np.stack([p.T for p in pixels], axis=2)  # (column i, row j, slice k)
    origin = geometry[order[0]][0]
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing_rc[1]  # along a row: column index i, spacing between columns
    lps[:3, 1] = col_dir * spacing_rc[0]  # down a column: row index j, spacing between rows
    lps[:3, 2] = normal * slice_step
    lps[:3, 3] = origin
    return Volume(
        data=data.astype(np.float32, copy=False),
        affine=LPS_TO_RAS @ lps,
        source=folder,
        format="dicom",
        details={
            "slices": len(slices),
            "modality": str(getattr(first, "Modality", "")),
            "series_description": str(getattr(first, "SeriesDescription", "")),
            "first_file": first_file.name,
        },
    )


def _slice_geometry(file: Path, ds) -> tuple:
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        raise BadInput("a multi-frame (enhanced) DICOM object; give a folder of single-frame slices", file)
    if "PixelData" not in ds:
        raise BadInput(f"no pixel data (a {getattr(ds, 'Modality', 'non-image')} object, not an image slice)", file)
    missing = [tag for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing") if tag not in ds]
    if missing:
        raise BadInput(f"lacks {', '.join(missing)}: not a slice of a cross-sectional series", file)
    try:
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
        spacing = np.array([float(v) for v in ds.PixelSpacing])
        shape = (int(ds.Rows), int(ds.Columns))
    except (TypeError, ValueError) as error:
        raise BadInput(f"unreadable geometry attributes ({_reason(error)})", file) from None
    if position.shape != (3,) or orientation.shape != (6,) or spacing.shape != (2,) or np.any(spacing <= 0):
        raise BadInput("malformed ImagePositionPatient, ImageOrientationPatient or PixelSpacing", file)
    row_dir, col_dir = orientation[:3], orientation[3:]
    if abs(np.linalg.norm(row_dir) - 1) > 1e-3 or abs(np.linalg.norm(col_dir) - 1) > 1e-3:
        raise BadInput("ImageOrientationPatient holds no unit direction cosines", file)
    return position, row_dir, col_dir, spacing, shape


def _slice_step(folder: Path, positions: np.ndarray, files: list[Path], first) -> float:
    if len(positions) == 1:
        thickness = float(getattr(first, "SpacingBetweenSlices", 0) or getattr(first, "SliceThickness", 0) or 1.0)
        return thickness
    steps = np.diff(positions)
    duplicate = np.flatnonzero(steps < 1e-3)
    if duplicate.size:
        n = int(duplicate[0])
        raise BadInput(f"slices {files[n].name} and {files[n + 1].name} lie at the same position", folder)
    step = float(np.median(steps))
    uneven = np.flatnonzero(np.abs(steps - step) > SPACING_TOLERANCE * step)
    if uneven.size:
        n = int(uneven[0])
        raise BadInput(
            f"uneven slice spacing: {steps[n]:.3f} mm between {files[n].name} and {files[n + 1].name}, "
            f"{step:.3f} mm elsewhere (a missing slice?)",
            folder,
        )
    return step


def _pixels(file: Path, ds) -> np.ndarray:
    from pydicom.pixels import apply_rescale

    try:
        raw = ds.pixel_array
    except (NotImplementedError, RuntimeError) as error:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "this transfer syntax")
        raise BadInput(
            f"pixel data compressed as {name}, which this image cannot decode ({_reason(error)})", file
        ) from None
    except (*_CORRUPT, KeyError, AttributeError) as error:
        raise BadInput(f"corrupt or truncated pixel data ({_reason(error)})", file) from None
    if raw.ndim != 2:
        raise BadInput(f"pixel data of shape {raw.shape}; expected one grey-level slice", file)
    return np.asarray(apply_rescale(raw, ds), dtype=np.float32)


# --------------------------------------------------------------------------- values and masks


def _check_values(volume: Volume) -> None:
    data = volume.data
    finite = np.isfinite(data)
    if not finite.any():
        raise BadInput("no finite voxel value (all NaN or infinite)", volume.source)
    if not finite.all():
        # Masked statistics maps mark "outside" with NaN: treat it as the lowest value.
        volume.data = np.where(finite, data, np.min(data[finite])).astype(np.float32)
        volume.details["non_finite_voxels"] = int((~finite).sum())
    low, high = float(volume.data.min()), float(volume.data.max())
    if low == high:
        raise BadInput(f"every voxel has the same value ({low:g}): a blank image", volume.source)


def mask_bytes(mask: np.ndarray, volume: Volume) -> bytes:
    """The mask as gzipped NIfTI with the input's geometry.

    A NIfTI input lends its own header: the same qform and sform (codes included), units and
    NIfTI version, so the mask overlays the input in any viewer. A DICOM input gets its affine
    as both forms, code 1 (scanner coordinates).
    """
    voxels = mask.astype(np.uint8)
    if volume.header is not None:
        header = volume.header.copy()
        kind = nibabel.Nifti2Image if isinstance(header, nibabel.Nifti2Header) else nibabel.Nifti1Image
        image = kind(voxels, None, header=header)  # None: keep the header's forms untouched
    else:
        image = nibabel.Nifti1Image(voxels, volume.affine)
        image.set_qform(volume.affine, code=1)
        image.set_sform(volume.affine, code=1)
    image.set_data_dtype(np.uint8)
    image.header.set_slope_inter(1, 0)
    image.header["intent_code"] = 1002  # NIFTI_INTENT_LABEL
    image.header["cal_min"], image.header["cal_max"] = 0, 1
    image.header["descrip"] = b"primage-segmentation lesion mask"
    return gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)
