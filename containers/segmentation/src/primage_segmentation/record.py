"""The JSON record of one segmentation: what was found, how, with which tool, how long it took."""

from __future__ import annotations

import importlib.metadata
import platform
from datetime import UTC, datetime

import numpy as np

from . import __version__
from .segment import Parameters, Segmentation
from .volume import Volume

LIBRARIES = ("numpy", "scipy", "nibabel", "pydicom", "pillow")


def tool_versions() -> dict:
    versions = {"name": "primage-segmentation", "version": __version__, "python": platform.python_version()}
    for library in LIBRARIES:
        try:
            versions[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            versions[library] = None
    return versions


def build(volume: Volume, result: Segmentation, parameters: Parameters, relative_input: str, timings: dict) -> dict:
    mask = result.mask
    count = int(mask.sum())
    record = {
        "input": {
            "path": relative_input,
            "format": volume.format,
            "shape": [int(n) for n in volume.data.shape],
            "spacing_mm": _floats(volume.spacing),
            "affine": [_floats(row) for row in volume.affine],
            **volume.details,
        },
        "lesion_found": count > 0,
        "voxel_count": count,
        "volume_ml": round(count * volume.voxel_volume_ml, 4),
        "bounding_box": bounding_box(mask, volume.affine) if count else None,
        "centroid": centroid(mask, volume.affine) if count else None,
        "intensity": {"lesion": statistics(volume.data[mask]) if count else None, "image": statistics(volume.data)},
        "threshold": result.threshold,
        "components": result.components,
        "parameters": parameters.as_record(),
        "tool": tool_versions(),
        "timings_s": timings,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return record


def bounding_box(mask: np.ndarray, affine: np.ndarray) -> dict:
    """Inclusive voxel bounds, and the RAS+ millimetre bounds of those voxels' centres."""
    points = np.argwhere(mask)
    low, high = points.min(axis=0), points.max(axis=0)
    corners = np.array([[c[0], c[1], c[2], 1.0] for c in _corners(low, high)])
    world = (affine @ corners.T).T[:, :3]
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return {
        "voxels": {"min": [int(v) for v in low], "max": [int(v) for v in high]},
        "mm": {"min": _floats(world.min(axis=0)), "max": _floats(world.max(axis=0)), "frame": "RAS+ (NIfTI world)"},
        "extent_mm": _floats((high - low + 1) * spacing),
    }


def _corners(low, high):
    return [(x, y, z) for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]


def centroid(mask: np.ndarray, affine: np.ndarray) -> dict:
    voxel = np.argwhere(mask).mean(axis=0)
    return {"voxel": _floats(voxel), "mm": _floats((affine @ [*voxel, 1.0])[:3])}


def statistics(values: np.ndarray) -> dict:
    values = values.astype(np.float64, copy=False)
    p5, median, p95 = np.percentile(values, [5, 50, 95])
    return {
        "mean": _float(values.mean()),
        "std": _float(values.std()),
        "min": _float(values.min()),
        "p05": _float(p5),
        "median": _float(median),
        "p95": _float(p95),
        "max": _float(values.max()),
    }


def _float(value) -> float:
    return round(float(value), 4)


def _floats(values) -> list[float]:
    return [_float(v) for v in values]
