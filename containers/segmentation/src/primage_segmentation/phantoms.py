"""Synthetic MR-like volumes with known lesion masks, and a sample folder laid out like a space.

A phantom is a body (an ellipsoid of soft tissue in air), a lobulated lesion brighter than the
tissue, and optionally a smaller, brighter structure that is not the lesion (a vessel or a
calcification: the segmentation must leave it out). A smooth multiplicative bias field and
Rician noise make it look like a magnitude MR image; voxels are anisotropic.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .atomic import write_bytes

# Voxel values are stored as int16, as scanners do.
STORED_DTYPE = np.int16


@dataclass(frozen=True)
class PhantomSpec:
    shape: tuple[int, int, int] = (96, 96, 40)
    spacing: tuple[float, float, float] = (0.9, 0.9, 2.5)
    lesion_radius_mm: float = 13.0
    lesion_lobes: int = 3
    tissue: float = 100.0
    lesion: float = 180.0
    distractor: float = 280.0
    distractor_radius_mm: float = 4.5  # 0 for none
    noise: float = 8.0
    bias: float = 0.15  # the bias field spans 1 - bias to 1 + bias
    seed: int = 0


@dataclass
class Phantom:
    spec: PhantomSpec
    image: np.ndarray  # float32
    truth: np.ndarray  # bool: the lesion
    distractor: np.ndarray  # bool
    affine: np.ndarray

    @property
    def truth_volume_ml(self) -> float:
        return float(self.truth.sum() * np.prod(self.spec.spacing) / 1000.0)

    def centre_voxel(self, mask: np.ndarray) -> tuple[int, int, int]:
        """A voxel of `mask` nearest its centroid (a seed point inside the structure)."""
        points = np.argwhere(mask)
        centre = points.mean(axis=0)
        return tuple(int(v) for v in points[np.argmin(((points - centre) ** 2).sum(axis=1))])


def make_phantom(spec: PhantomSpec) -> Phantom:
    rng = np.random.default_rng(spec.seed)
    spacing = np.asarray(spec.spacing, dtype=np.float64)
    extent = np.asarray(spec.shape) * spacing
    # World coordinates (mm) of voxel centres, the volume centred on the origin.
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(spec.shape, spacing, strict=True)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    body_axes = extent * 0.44
    body = (x / body_axes[0]) ** 2 + (y / body_axes[1]) ** 2 + (z / body_axes[2]) ** 2 <= 1

    radius = spec.lesion_radius_mm
    lesion_centre = _inside(rng, body_axes, margin=radius * 1.3)
    truth = np.zeros(spec.shape, bool)
    for lobe in range(max(1, spec.lesion_lobes)):
        offset = rng.normal(size=3) * radius * 0.35 if lobe else np.zeros(3)
        semi = radius * rng.uniform(0.65, 1.0, size=3)
        centre = lesion_centre + offset
        truth |= ((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + (
            (z - centre[2]) / semi[2]
        ) ** 2 <= 1
    truth &= body

    distractor = np.zeros(spec.shape, bool)
    if spec.distractor_radius_mm > 0:
        centre = _away_from(rng, body_axes, lesion_centre, radius * 1.6 + spec.distractor_radius_mm + 6)
        r = spec.distractor_radius_mm
        distractor = ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= r * r) & body & ~truth

    clean = np.where(body, spec.tissue, 0.0)
    clean = np.where(truth, spec.lesion, clean)
    clean = np.where(distractor, spec.distractor, clean)
    clean = clean * _bias_field(rng, x, y, z, extent, spec.bias)
    # Rician noise: the magnitude of a complex signal with Gaussian noise in both channels.
    real = clean + rng.normal(0, spec.noise, spec.shape)
    imaginary = rng.normal(0, spec.noise, spec.shape)
    image = np.sqrt(real**2 + imaginary**2).astype(np.float32)

    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * s for n, s in zip(spec.shape, spacing, strict=True)]
    return Phantom(spec, image, truth, distractor, affine)


def _inside(rng, body_axes: np.ndarray, margin: float) -> np.ndarray:
    room = np.maximum(body_axes - margin, 0) * 0.6
    for _ in range(1000):
        point = rng.uniform(-room, room)
        if ((point / np.maximum(body_axes - margin, 1e-6)) ** 2).sum() <= 1:
            return point
    return np.zeros(3)


def _away_from(rng, body_axes: np.ndarray, other: np.ndarray, distance: float) -> np.ndarray:
    room = body_axes * 0.7
    best, best_distance = np.zeros(3), -1.0
    for _ in range(2000):
        point = rng.uniform(-room, room)
        if ((point / room) ** 2).sum() > 1:
            continue
        gap = float(np.linalg.norm(point - other))
        if gap >= distance:
            return point
        if gap > best_distance:
            best, best_distance = point, gap
    return best


def _bias_field(rng, x, y, z, extent: np.ndarray, strength: float) -> np.ndarray:
    """A smooth field spanning 1 - strength to 1 + strength: a tilt plus a curvature."""
    if strength <= 0:
        return np.ones(1)
    u, v, w = (2 * x / extent[0], 2 * y / extent[1], 2 * z / extent[2])
    a = rng.normal(size=3)
    field = a[0] * u + a[1] * v + a[2] * w + 0.5 * (u * u - v * v)
    field = field - field.mean()
    return 1 + strength * field / np.abs(field).max()


# --------------------------------------------------------------------------- files


def nifti_bytes(data: np.ndarray, affine: np.ndarray, dtype=STORED_DTYPE, compressed: bool = True) -> bytes:
    import gzip

    import nibabel

    stored = np.rint(data).astype(dtype) if np.issubdtype(dtype, np.integer) else data.astype(dtype)
    image = nibabel.Nifti1Image(stored, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=6, mtime=0) if compressed else raw


def write_dicom_series(folder: Path, data: np.ndarray, affine: np.ndarray, seed: int = 0, modality: str = "MR") -> list:
    """One single-frame slice per k, in LPS as DICOM wants; written in shuffled order on purpose."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    row_dir, col_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    study = generate_uid(entropy_srcs=[f"study-{seed}"])
    series = generate_uid(entropy_srcs=[f"series-{seed}"])
    stored = np.rint(data).astype(np.int16)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k in np.random.default_rng(seed).permutation(data.shape[2]):
        uid = generate_uid(entropy_srcs=[f"slice-{seed}-{k}"])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.Modality, ds.SeriesDescription = modality, "primage phantom"
        ds.PatientName, ds.PatientID = "Phantom^Primage", f"PHANTOM-{seed:04d}"
        ds.InstanceNumber = int(k) + 1
        ds.ImagePositionPatient = [float(v) for v in (lps @ [0, 0, k, 1])[:3]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # between rows, between columns
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        path = folder / f"slice-{k + 1:04d}.dcm"
        buffer = pydicom.filebase.DicomBytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        write_bytes(path, buffer.getvalue())
        written.append(path)
    return written


# --------------------------------------------------------------------------- sample space

# The cases of a sample folder, cycled through: formats and acquisitions differ on purpose.
SAMPLE_CASES = [
    ("case-{n:03d}.nii.gz", {}),
    ("case-{n:03d}.nii", {"spacing": (1.2, 1.2, 1.2), "shape": (80, 80, 64), "bias": 0.2}),
    ("series-{n:03d}", {"spacing": (0.8, 0.8, 3.0), "shape": (112, 112, 32), "lesion_radius_mm": 11.0}),
    ("case-{n:03d}.nii.gz", {"distractor_radius_mm": 0.0, "lesion_radius_mm": 16.0, "noise": 12.0}),
]


def write_sample_space(root: Path, count: int = 4, shape: tuple[int, int, int] | None = None, seed: int = 0) -> dict:
    """Sample volumes with known masks in a folder laid out like a mounted Onedata space:

    root/inputs/<case>          the volumes (NIfTI files, DICOM series folders)
    root/truth/<case stem>.nii.gz   the known lesion masks, same geometry
    root/inputs.txt             the input list, paths relative to root (as the HTC Job's list)
    root/sample.json            what each case is, with its true lesion volume
    """
    cases = []
    for n in range(1, count + 1):
        pattern, overrides = SAMPLE_CASES[(n - 1) % len(SAMPLE_CASES)]
        spec = replace(PhantomSpec(), seed=seed * 1000 + n, **overrides)
        if shape is not None:
            spec = replace(spec, shape=tuple(shape))
        name = pattern.format(n=n)
        phantom = make_phantom(spec)
        relative = f"inputs/{name}"
        if name.startswith("series-"):
            write_dicom_series(root / relative, phantom.image, phantom.affine, seed=spec.seed)
        else:
            write_bytes(root / relative, nifti_bytes(phantom.image, phantom.affine, compressed=name.endswith(".gz")))
        stem = name.removesuffix(".gz").removesuffix(".nii")
        truth = f"truth/{stem}.nii.gz"
        write_bytes(root / truth, nifti_bytes(phantom.truth, phantom.affine, dtype=np.uint8))
        cases.append(
            {
                "input": relative,
                "truth": truth,
                "truth_volume_ml": round(phantom.truth_volume_ml, 3),
                "lesion_seed_voxel": list(phantom.centre_voxel(phantom.truth)),
                "spec": asdict(spec),
            }
        )
    write_bytes(root / "inputs.txt", "".join(f"{case['input']}\n" for case in cases).encode())
    manifest = {"cases": cases, "list": "inputs.txt"}
    write_bytes(root / "sample.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest
