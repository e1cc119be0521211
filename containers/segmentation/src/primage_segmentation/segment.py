"""Classical 3-D lesion segmentation: denoise, threshold, morphology, one connected component.

1. Denoise: a Gaussian filter whose width is given in millimetres, so anisotropic voxels are
   smoothed alike in every direction.
2. Threshold, either a documented intensity window (`window=(low, high)`, in the image's own
   units, e.g. Hounsfield units of a CT), or automatic:
   - the body: voxels above Otsu's threshold of the whole volume (air and background below);
   - a homomorphic bias correction: the image divided by the body's intensity averaged over
     BIAS_SIGMA_MM, as MR's smooth coil sensitivity field needs;
   - the lesion class: the minimum-error threshold of Kittler and Illingworth over the body's
     voxels from the bulk of its tissue upwards (the blurred rim of the body left out), which,
     unlike Otsu's, still separates a lesion a thousand times smaller than the tissue around it;
   - refinement: once the lesion is found, the threshold moves to the midpoint between the
     lesion's median and the median of the tissue in a shell around it, the 50 % level of a
     blurred edge.
   Auto mode expects a lesion brighter than its surroundings (contrast-enhanced T1, FLAIR,
   contrast CT); for a dark lesion, or to leave out brighter tissue, give a window.
3. Morphology: an opening by a ball (radius in mm) removes speckle and thin bridges between
   structures; holes inside the kept component are filled.
4. Component: the largest connected one, or the one holding a seed voxel (else the nearest one).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from .volume import Volume

# Shell around the first lesion estimate whose median stands for the surrounding tissue (mm).
SHELL_INNER_MM = 1.5
SHELL_OUTER_MM = 4.0
HISTOGRAM_BINS = 512
# Width of the bias field correction of auto mode: much wider than a lesion, narrower than a body.
BIAS_SIGMA_MM = 30.0


@dataclass(frozen=True)
class Parameters:
    smoothing_mm: float = 1.0  # Gaussian sigma
    window: tuple[float | None, float | None] | None = None  # (low, high), either may be None; None: auto
    opening_mm: float = 1.5  # radius of the ball of the opening; 0 for none
    fill_holes: bool = True
    seed: tuple[int, int, int] | None = None  # voxel (i, j, k) inside the lesion

    def as_record(self) -> dict:
        record = asdict(self)
        record["threshold_mode"] = "window" if self.window is not None else "auto"
        return record


@dataclass
class Segmentation:
    mask: np.ndarray  # bool
    threshold: dict
    components: dict
    timings: dict = field(default_factory=dict)


def segment(volume: Volume, parameters: Parameters) -> Segmentation:
    timings = {}
    spacing = volume.spacing
    clock = time.perf_counter()
    smoothed = denoise(volume.data, spacing, parameters.smoothing_mm)
    timings["denoise"] = _lap(clock)

    clock = time.perf_counter()
    if parameters.window is not None:
        low, high = parameters.window
        threshold = {"mode": "window", "low": low, "high": high}
        candidates = _in_window(smoothed, low, high)
    else:
        body = otsu(smoothed)
        smoothed = flatten_bias(smoothed, smoothed > body, spacing)
        first = minimum_error(_bulk_and_above(smoothed[smoothed > body]))
        threshold = {"mode": "auto", "body": body, "first": first, "low": first, "high": None, "bias_corrected": True}
        candidates = smoothed > first
    timings["threshold"] = _lap(clock)

    clock = time.perf_counter()
    ball = ball_element(spacing, parameters.opening_mm)
    if ball is not None:
        candidates = ndimage.binary_opening(candidates, structure=ball)
    timings["morphology"] = _lap(clock)

    clock = time.perf_counter()
    labels, count = ndimage.label(candidates)
    kept, how = _choose(labels, count, parameters.seed)
    components = {"candidates": int(count), "kept": how}
    if kept is not None and parameters.window is None:
        kept, threshold = _refine(smoothed, kept, threshold, spacing, ball)
    mask = np.zeros(volume.data.shape, bool) if kept is None else kept
    if parameters.fill_holes and mask.any():
        mask = _fill_holes(mask)
    timings["components"] = _lap(clock)
    components["kept_voxels"] = int(mask.sum())
    return Segmentation(mask=mask, threshold=_rounded(threshold), components=components, timings=timings)


def denoise(data: np.ndarray, spacing: np.ndarray, sigma_mm: float) -> np.ndarray:
    if sigma_mm <= 0:
        return data
    sigma = [sigma_mm / s for s in spacing]
    return ndimage.gaussian_filter(data, sigma=sigma, mode="nearest", truncate=3.0)


def flatten_bias(image: np.ndarray, body: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Divide out a slowly varying multiplicative field (homomorphic correction, as MR needs).

    The field is the body's intensity averaged by a Gaussian of BIAS_SIGMA_MM (normalised by the
    body's own blurred extent, so the edge of the body does not darken it), computed on a
    subsampled grid for speed and scaled to keep the body's mean level: intensities keep their
    units on average, and a lesion much smaller than the kernel barely moves it.
    """
    if not body.any():
        return image
    step = np.maximum(1, np.floor(BIAS_SIGMA_MM / 4 / np.asarray(spacing))).astype(int)
    grid = tuple(slice(None, None, s) for s in step)
    small_image, small_body = image[grid], body[grid].astype(np.float32)
    sigma = BIAS_SIGMA_MM / (np.asarray(spacing) * step)
    weight = ndimage.gaussian_filter(small_body, sigma, mode="constant")
    level = ndimage.gaussian_filter(small_image * small_body, sigma, mode="constant")
    mean = float(image[body].mean())
    field = np.where(weight > 0.05, level / np.maximum(weight, 1e-6), mean) / mean
    field = ndimage.zoom(
        field, np.asarray(image.shape) / np.asarray(field.shape), order=1, grid_mode=True, mode="nearest"
    )
    field = _fit(field, image.shape)
    return (image / np.clip(field, 0.2, 5.0)).astype(np.float32)


def _fit(array: np.ndarray, shape: tuple) -> np.ndarray:
    """Crop or edge-pad `array` to `shape` (zoom may be one voxel off)."""
    array = array[tuple(slice(0, n) for n in shape)]
    padding = [(0, n - m) for n, m in zip(shape, array.shape, strict=True)]
    return np.pad(array, padding, mode="edge") if any(p[1] for p in padding) else array


def _bulk_and_above(values: np.ndarray) -> np.ndarray:
    """The body's voxels from the bulk of its tissue upwards.

    The blurred rim of the body (between air and tissue) is a population of its own, far larger
    than a small lesion; below the median by more than three robust deviations, it is left out.
    """
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median))) or float(values.std())
    kept = values[values >= median - 3 * spread]
    return kept if kept.size > 1 else values


def _in_window(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    inside = np.ones(values.shape, bool)
    if low is not None:
        inside &= values >= low
    if high is not None:
        inside &= values <= high
    return inside


def _histogram(values: np.ndarray):
    hist, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    centres = (edges[:-1] + edges[1:]) / 2
    return hist.astype(np.float64) / max(hist.sum(), 1), centres, edges


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold: the split of the histogram with the largest between-class variance."""
    p, centres, edges = _histogram(values)
    w0 = np.cumsum(p)[:-1]
    w1 = 1 - w0
    m = np.cumsum(p * centres)
    mu0 = m[:-1] / np.maximum(w0, 1e-12)
    mu1 = (m[-1] - m[:-1]) / np.maximum(w1, 1e-12)
    return float(edges[1:-1][np.argmax(w0 * w1 * (mu0 - mu1) ** 2)])


def minimum_error(values: np.ndarray) -> float:
    """Kittler and Illingworth's minimum-error threshold: two Gaussians of any sizes and widths."""
    if values.size < 2:
        return float(values.max()) if values.size else 0.0
    p, centres, edges = _histogram(values)
    p1 = np.cumsum(p)[:-1]
    p2 = 1 - p1
    m = np.cumsum(p * centres)
    m2 = np.cumsum(p * centres * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu1, mu2 = m[:-1] / p1, (m[-1] - m[:-1]) / p2
        v1 = m2[:-1] / p1 - mu1**2
        v2 = (m2[-1] - m2[:-1]) / p2 - mu2**2
        usable = (p1 > 1e-7) & (p2 > 1e-7) & (v1 > 1e-12) & (v2 > 1e-12)
        cost = np.full(p1.shape, np.inf)
        cost[usable] = (
            p1[usable] * np.log(v1[usable])
            + p2[usable] * np.log(v2[usable])
            - 2 * (p1[usable] * np.log(p1[usable]) + p2[usable] * np.log(p2[usable]))
        )
    if not np.isfinite(cost).any():
        return otsu(values)
    return float(edges[1:-1][np.argmin(cost)])


def ball_element(spacing: np.ndarray, radius_mm: float) -> np.ndarray | None:
    """An ellipsoid of `radius_mm` in voxels of this spacing (None when it is a single voxel)."""
    if radius_mm <= 0:
        return None
    radii = np.floor(radius_mm / np.asarray(spacing) + 1e-6).astype(int)
    if not radii.any():
        return None
    grid = np.ogrid[tuple(slice(-r, r + 1) for r in radii)]
    return sum((g / max(r, 1)) ** 2 for g, r in zip(grid, radii, strict=True)) <= 1 + 1e-9


def _choose(labels: np.ndarray, count: int, seed: tuple[int, int, int] | None):
    if count == 0:
        return None, "none"
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    if seed is None:
        return labels == int(np.argmax(sizes)), "largest"
    at_seed = int(labels[seed])
    if at_seed:
        return labels == at_seed, "seed"
    # The seed fell just outside every component: take the component nearest to it.
    points = np.argwhere(labels > 0)
    nearest = points[np.argmin(((points - np.asarray(seed)) ** 2).sum(axis=1))]
    return labels == int(labels[tuple(nearest)]), "nearest to seed"


def _refine(smoothed, kept, threshold, spacing, ball):
    """Move the threshold to the midpoint between the lesion and the tissue just around it.

    Works in a box around the first estimate (dilations of the whole volume would be slow); when
    the refined lesion reaches the box's side, it is labelled again over the whole volume.
    """
    margin = np.ceil((SHELL_OUTER_MM + 2 * max(0.0, _radius(ball, spacing)) + 5.0) / spacing).astype(int)
    low, high = _extent(kept)
    box = tuple(
        slice(max(lo - m, 0), min(hi + m + 1, n)) for lo, hi, m, n in zip(low, high, margin, kept.shape, strict=True)
    )
    local, core = smoothed[box], kept[box]
    outer = ndimage.binary_dilation(core, structure=ball_element(spacing, SHELL_OUTER_MM))
    inner = ndimage.binary_dilation(core, structure=ball_element(spacing, SHELL_INNER_MM))
    shell = outer & ~inner & (local > threshold["body"])
    if shell.sum() < 10:
        return kept, threshold
    lesion_level, tissue_level = float(np.median(local[core])), float(np.median(local[shell]))
    refined = (lesion_level + tissue_level) / 2
    component = _overlapping(local > refined, core, ball)
    if component is None:
        return kept, threshold
    threshold = dict(threshold, low=refined, lesion_median=lesion_level, tissue_median=tissue_level)
    if not _touches_inner_side(component, box, kept.shape):
        mask = np.zeros(kept.shape, bool)
        mask[box] = component
        return mask, threshold
    whole = _overlapping(smoothed > refined, kept, ball)
    return (kept, threshold) if whole is None else (whole, threshold)


def _overlapping(candidates: np.ndarray, core: np.ndarray, ball) -> np.ndarray | None:
    """The connected component of the (opened) candidates that overlaps `core` most."""
    if ball is not None:
        candidates = ndimage.binary_opening(candidates, structure=ball)
    labels, count = ndimage.label(candidates)
    if count == 0:
        return None
    overlap = np.bincount(labels[core], minlength=count + 1)
    overlap[0] = 0
    return labels == int(np.argmax(overlap)) if overlap.max() else None


def _touches_inner_side(component: np.ndarray, box: tuple, shape: tuple) -> bool:
    for axis, (cut, extent) in enumerate(zip(box, shape, strict=True)):
        first = np.take(component, 0, axis=axis)
        last = np.take(component, -1, axis=axis)
        if (cut.start > 0 and first.any()) or (cut.stop < extent and last.any()):
            return True
    return False


def _radius(ball, spacing) -> float:
    return 0.0 if ball is None else float(max((np.asarray(ball.shape) // 2) * np.asarray(spacing)))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes inside the bounding box of the mask only (the whole volume would be slow)."""
    box = tuple(slice(max(lo - 1, 0), hi + 2) for lo, hi in zip(*_extent(mask), strict=True))
    filled = mask.copy()
    filled[box] = ndimage.binary_fill_holes(mask[box])
    return filled


def _extent(mask: np.ndarray):
    points = np.argwhere(mask)
    return points.min(axis=0), points.max(axis=0)


def _lap(start: float) -> float:
    return round(time.perf_counter() - start, 4)


def _rounded(threshold: dict) -> dict:
    return {k: (round(float(v), 4) if isinstance(v, float | np.floating) else v) for k, v in threshold.items()}
