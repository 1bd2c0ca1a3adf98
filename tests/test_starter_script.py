"""The starter model's training data (scripts/train_starter_model.py), without training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_starter_model.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_starter_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ndi_blur(image):
    from scipy import ndimage as ndi

    return ndi.gaussian_filter(image.astype(np.float32), 1.0)


def test_photometric_variant_is_seeded_and_changes_only_the_look(script):
    from napari_cytounet.core.looks import styled_cells

    image, _ = styled_cells((96, 96), "dic", seed=3)
    first = script.photometric_variant(image, np.random.default_rng(5))
    again = script.photometric_variant(image, np.random.default_rng(5))
    other = script.photometric_variant(image, np.random.default_rng(6))
    assert first.shape == image.shape and first.dtype == np.float32
    assert np.isfinite(first).all()
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first, image)
    # the picture is still the same picture: strongly correlated with the original
    assert np.corrcoef(first.ravel(), ndi_blur(image).ravel())[0, 1] > 0.3


def test_synthetic_set_without_variety_is_the_plain_looks(script):
    from napari_cytounet.core.looks import LOOKS

    images, masks, names = script.synthetic_set(2, 64, seed=0)
    assert len(images) == len(masks) == len(names) == 2 * len(LOOKS)
    assert not any(name.endswith("-varied") for name in names)
    assert all(set(np.unique(m)) <= {0, 1} for m in masks)
    again, _, _ = script.synthetic_set(2, 64, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(images, again))


def test_synthetic_set_with_variety_marks_the_varied_images(script):
    images, masks, names = script.synthetic_set(3, 64, seed=1, variety=1.0)
    assert all(name.endswith("-varied") for name in names)
    assert all(image.dtype == np.float32 for image in images)
    assert all(mask.shape == image.shape for image, mask in zip(images, masks))


def test_randomised_dic_is_seeded_and_draws_within_its_ranges(script):
    first = script.randomised_dic((64, 64), np.random.default_rng(7))
    again = script.randomised_dic((64, 64), np.random.default_rng(7))
    image, mask, drawn = first
    assert image.dtype == np.float32 and image.shape == (64, 64) and np.isfinite(image).all()
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1} and mask.any()
    assert np.array_equal(image, again[0]) and drawn == again[2]
    settings = [script.randomised_dic((48, 48), np.random.default_rng(s))[2] for s in range(20)]
    for d in settings:
        assert 1.2 <= d["blur"] <= 4.5 and 5 <= d["radius_min"] <= 14
        assert 0.1 <= d["texture"] <= 0.7 and 0.15 <= d["contrast"] <= 0.45
        assert 0.01 <= d["noise"] <= 0.09 and all(abs(t) <= 0.3 for t in d["tilt"])
    assert len({d["blur"] for d in settings}) == 20  # a new draw each time
    # DIC: the relief is on the cells' edges; the cell interior is about as grey as the background
    inside = image[mask > 0].mean()
    outside = image[mask == 0].mean()
    assert abs(inside - outside) < 0.1
