"""The segmentation on phantoms with known masks: Dice at least 0.90, the distractor left out."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import dice

from primage_segmentation.phantoms import PhantomSpec, make_phantom
from primage_segmentation.segment import Parameters, denoise, flatten_bias, minimum_error, otsu, segment
from primage_segmentation.volume import Volume

CASES = {
    "anisotropic-0.9x0.9x2.5": PhantomSpec(),
    "isotropic-1.2": PhantomSpec(shape=(80, 80, 64), spacing=(1.2, 1.2, 1.2), seed=1),
    "thick-slices-0.8x0.8x3.0": PhantomSpec(shape=(112, 112, 32), spacing=(0.8, 0.8, 3.0), seed=2),
    "strong-bias-0.25": PhantomSpec(bias=0.25, seed=4),
    "noisy-14": PhantomSpec(noise=14.0, seed=5),
    "small-lesion-9mm": PhantomSpec(lesion_radius_mm=9.0, seed=6),
    "large-lesion-20mm": PhantomSpec(lesion_radius_mm=20.0, shape=(128, 128, 48), seed=7),
    "no-distractor": PhantomSpec(distractor_radius_mm=0.0, seed=8),
    "tiny-lesion-6mm": PhantomSpec(lesion_radius_mm=6.0, seed=14),
    # A lesion a thousand times smaller than a body whose blurred rim outnumbers it.
    "large-field-small-lesion": PhantomSpec(shape=(192, 192, 96), lesion_radius_mm=10.0, seed=13),
}


def as_volume(phantom) -> Volume:
    return Volume(data=phantom.image, affine=phantom.affine, source=None, format="nifti")


@pytest.mark.parametrize("spec", CASES.values(), ids=CASES.keys())
def test_dice_at_least_090_and_the_distractor_left_out(spec):
    phantom = make_phantom(spec)
    assert phantom.truth.sum() > 100, "the phantom has a lesion to find"
    result = segment(as_volume(phantom), Parameters())
    assert dice(result.mask, phantom.truth) >= 0.90
    assert not (result.mask & phantom.distractor).any(), "the brighter, smaller structure is not the lesion"
    assert result.components["kept"] == "largest"


def test_a_seed_inside_the_distractor_keeps_the_distractor():
    phantom = make_phantom(PhantomSpec(distractor_radius_mm=6.0, seed=9))
    seed = phantom.centre_voxel(phantom.distractor)
    result = segment(as_volume(phantom), Parameters(seed=seed))
    assert result.components["kept"] == "seed"
    assert dice(result.mask, phantom.distractor) >= 0.80
    assert not (result.mask & phantom.truth).any()


def test_a_seed_just_outside_every_component_takes_the_nearest():
    phantom = make_phantom(PhantomSpec(seed=10))
    inside = np.array(phantom.centre_voxel(phantom.truth))
    points = np.argwhere(phantom.truth)
    outside = tuple(int(v) for v in points[np.argmax(points[:, 0])] + [3, 0, 0])
    assert not phantom.truth[outside]
    result = segment(as_volume(phantom), Parameters(seed=outside))
    assert result.components["kept"] == "nearest to seed"
    assert result.mask[tuple(inside)]
    assert dice(result.mask, phantom.truth) >= 0.90


def test_a_window_excludes_what_lies_above_it():
    phantom = make_phantom(PhantomSpec(distractor_radius_mm=8.0, lesion_radius_mm=10.0, bias=0.0, seed=11))
    # The distractor is bigger than the lesion here: only the window's upper bound leaves it out.
    assert phantom.distractor.sum() > phantom.truth.sum() * 0.3
    result = segment(as_volume(phantom), Parameters(window=(140.0, 230.0)))
    assert result.threshold == {"mode": "window", "low": 140.0, "high": 230.0}
    assert not (result.mask & phantom.distractor).any()
    assert dice(result.mask, phantom.truth) >= 0.90


def test_holes_are_filled_unless_asked_not_to():
    phantom = make_phantom(PhantomSpec(distractor_radius_mm=0.0, lesion_radius_mm=16.0, lesion_lobes=1, seed=12))
    centre = phantom.centre_voxel(phantom.truth)
    image = phantom.image.copy()
    hole = (*tuple(slice(c - 2, c + 3) for c in centre[:2]), slice(centre[2] - 1, centre[2] + 2))
    image[hole] = 100.0  # a necrotic core: tissue-like values inside the lesion
    volume = Volume(data=image, affine=phantom.affine, source=None, format="nifti")
    filled = segment(volume, Parameters())
    assert filled.mask[centre]
    kept = segment(volume, Parameters(fill_holes=False))
    assert not kept.mask[centre]


def test_otsu_splits_two_equal_classes_in_the_middle():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 50_000), rng.normal(10, 1, 50_000)])
    assert abs(otsu(values) - 5.0) < 0.5


def test_minimum_error_finds_a_class_a_thousand_times_smaller():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(100, 5, 1_000_000), rng.normal(180, 5, 1_000)])
    threshold = minimum_error(values)
    assert 115 < threshold < 165
    assert otsu(values) < 115, "Otsu's threshold splits the large class instead: why auto mode does not use it alone"


def test_the_bias_correction_flattens_the_tissue_and_keeps_its_level():
    phantom = make_phantom(PhantomSpec(bias=0.25, distractor_radius_mm=0.0, noise=2.0, seed=15))
    spacing = np.asarray(phantom.spec.spacing)
    smoothed = denoise(phantom.image, spacing, 1.0)
    body = smoothed > otsu(smoothed)
    tissue = body & ~phantom.truth
    tissue &= np.roll(tissue, 3, 0) & np.roll(tissue, -3, 0)  # away from the rim
    flat = flatten_bias(smoothed, body, spacing)
    assert flat[tissue].std() < 0.8 * smoothed[tissue].std()
    assert abs(flat[tissue].mean() - smoothed[tissue].mean()) < 0.1 * smoothed[tissue].mean()
