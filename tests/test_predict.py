"""Tiled prediction: agreement with untiled prediction, shapes, channels, progress, errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cytounet.core.config import UNetConfig
from napari_cytounet.core.errors import DataError, ModelError
from napari_cytounet.core.events import PredictionProgress
from napari_cytounet.core.predict import (
    TilePlan,
    blend_ramp,
    iter_probabilities,
    predict_probabilities,
)

RGB3 = UNetConfig(depth=2, base_filters=4, in_channels=3, classes=3)


@pytest.fixture(scope="module")
def binary():
    import keras

    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.model import build_unet

    keras.utils.set_random_seed(0)
    cfg = UNetConfig(depth=2, base_filters=4)
    return ModelBundle(model=build_unet(cfg), unet=cfg)


@pytest.fixture(scope="module")
def rgb3():
    import keras

    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.model import build_unet

    keras.utils.set_random_seed(1)
    return ModelBundle(model=build_unet(RGB3), unet=RGB3)


def predict(bundle, image, **kwargs):
    kwargs.setdefault("jit", False)
    kwargs.setdefault("tile_size", 128)
    return predict_probabilities(bundle, image, **kwargs)


# ---------------------------------------------------------------------------
# tiled == untiled


@pytest.mark.parametrize("tile_size", [96, 128])
def test_tiled_and_untiled_agree_untrained(binary, tile_size):
    image = np.random.default_rng(0).random((300, 250)).astype(np.float32)
    whole = predict(binary, image, tile_size=None)
    tiled = predict(binary, image, tile_size=tile_size, batch_size=3)
    plan = TilePlan(300, 250, 4, tile_size, None)
    assert plan.n_tiles > 1 and max(plan.tile_h, plan.tile_w) <= tile_size
    diff = float(np.abs(whole - tiled).max())
    print(f"tile {tile_size}: {plan.n_tiles} tiles, max |tiled - untiled| = {diff:.2e}")
    assert diff < 1e-3


def test_tiled_and_untiled_agree_trained(trained_run, disks):
    """The trained model of the shared run, on a larger image of disks."""
    bundle = trained_run.finished.bundle
    image, _ = disks((300, 250), n=40, seed=3)
    whole = predict(bundle, image, tile_size=None)
    tiled = predict(bundle, image, tile_size=96)
    assert float(np.abs(whole - tiled).max()) < 1e-3


def test_larger_overlap_makes_deeper_models_agree():
    """A depth-3 model needs a halo of its receptive field: overlap 128 (halo 48) suffices."""
    import keras

    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.model import build_unet

    keras.utils.set_random_seed(0)
    cfg = UNetConfig(depth=3, base_filters=4)
    bundle = ModelBundle(model=build_unet(cfg), unet=cfg)
    image = np.random.default_rng(0).random((200, 180)).astype(np.float32)
    whole = predict(bundle, image, tile_size=None, overlap=128)
    tiled = predict(bundle, image, tile_size=256, overlap=128)
    assert TilePlan(200, 180, 8, 256, 128).n_tiles == 4
    assert float(np.abs(whole - tiled).max()) < 1e-3


def test_tile_plan_geometry():
    plan = TilePlan(300, 250, 4, 128, None)
    assert plan.overlap == 64 and plan.halo == 24
    assert plan.tile_h % 4 == 0 and plan.tile_w % 4 == 0
    assert plan.tile_h <= 128 and plan.tile_w <= 128
    assert plan.padded_h >= 300 + 2 * plan.halo and plan.padded_w >= 250 + 2 * plan.halo
    assert all(y % 4 == 0 for y in plan.ys) and all(x % 4 == 0 for x in plan.xs)
    # every pixel of the plane gets a positive blending weight
    cover = np.zeros((plan.padded_h, plan.padded_w), np.float32)
    weight = np.outer(plan.weight_y, plan.weight_x)
    for y, x in plan.origins():
        cover[y : y + plan.tile_h, x : x + plan.tile_w] += weight
    inner = cover[plan.halo : plan.halo + 300, plan.halo : plan.halo + 250]
    assert inner.min() > 0
    assert plan.computed_pixels == plan.n_tiles * plan.tile_h * plan.tile_w
    with pytest.raises(DataError, match="overlap"):
        TilePlan(300, 250, 4, 64, 64)


def test_blend_ramp():
    w = blend_ramp(64, 32, 12)
    assert w.dtype == np.float32 and w.shape == (64,)
    assert np.all(w[:12] == 0) and np.all(w[-12:] == 0)
    np.testing.assert_allclose(w, w[::-1])
    assert np.all(np.diff(w[:32]) >= 0) and w.max() == 1.0
    # two tiles overlapping by 32 pixels: positive total weight across the overlap
    total = w[32:] + w[:32]
    assert total.min() > 0


# ---------------------------------------------------------------------------
# shapes, dtypes, channels


@pytest.mark.parametrize(
    "shape",
    [(37, 91), (64, 64), (3, 40, 52), (2, 2, 20, 24), (1, 1), (1, 50), (50, 1), (2, 3)],
)
def test_binary_output_shape_and_dtype(binary, shape):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    prob = predict(binary, image)
    assert prob.shape == shape and prob.dtype == np.float32
    assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1


def test_stack_is_predicted_plane_by_plane(binary):
    rng = np.random.default_rng(1)
    stack = (rng.random((2, 3, 40, 52)) * 4000).astype(np.uint16)
    prob = predict(binary, stack)
    for t in range(2):
        for z in range(3):
            np.testing.assert_array_equal(prob[t, z], predict(binary, stack[t, z]))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float64])
def test_input_dtypes(binary, dtype):
    image = (np.random.default_rng(2).random((40, 44)) * 200).astype(dtype)
    assert predict(binary, image).dtype == np.float32


def test_rgb_for_a_one_channel_model(binary):
    rng = np.random.default_rng(3)
    rgb = rng.random((40, 44, 3)).astype(np.float32)
    prob = predict(binary, rgb, channel_axis=-1)
    assert prob.shape == (40, 44) and prob.dtype == np.float32
    np.testing.assert_allclose(prob, predict(binary, rgb.mean(-1)), atol=1e-6)
    # identical channels: exactly the greyscale prediction
    grey = rgb[..., 0]
    np.testing.assert_array_equal(
        predict(binary, np.stack([grey] * 3, -1), channel_axis=-1), predict(binary, grey)
    )
    stack = rng.random((2, 40, 44, 3)).astype(np.float32)
    assert predict(binary, stack, channel_axis=-1).shape == (2, 40, 44)
    assert predict(binary, np.moveaxis(rgb, -1, 0), channel_axis=0).shape == (40, 44)


def test_three_channel_multiclass_model(rgb3):
    rng = np.random.default_rng(4)
    rgb = rng.random((40, 44, 3)).astype(np.float32)
    prob = predict(rgb3, rgb)  # channels last by default for a 3-channel model
    assert prob.shape == (40, 44, 3) and prob.dtype == np.float32
    np.testing.assert_allclose(prob.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(predict(rgb3, rgb, channel_axis=-1), prob)
    np.testing.assert_allclose(
        predict(rgb3, np.moveaxis(rgb, -1, 0), channel_axis=0), prob, atol=1e-6
    )
    stack = rng.random((2, 3, 24, 28, 3)).astype(np.float32)
    assert predict(rgb3, stack, channel_axis=-1).shape == (2, 3, 24, 28, 3)
    whole = predict(rgb3, rng.random((150, 140, 3)), tile_size=None)
    assert whole.shape == (150, 140, 3)


def test_three_channel_model_refuses_greyscale(rgb3):
    with pytest.raises(ModelError, match="3-channel"):
        predict(rgb3, np.zeros((40, 44), np.float32))
    with pytest.raises(ModelError, match="3-channel"):
        predict(rgb3, np.zeros((40, 44, 2), np.float32))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (7,), ()])
def test_empty_or_flat_input_is_a_data_error(binary, shape):
    with pytest.raises(DataError):
        predict(binary, np.zeros(shape, np.float32))


def test_bad_arguments(binary):
    with pytest.raises(ModelError, match="ModelBundle"):
        predict(binary.model, np.zeros((8, 8)))
    with pytest.raises(DataError, match="batch_size"):
        predict(binary, np.zeros((8, 8)), batch_size=0)
    with pytest.raises(DataError, match="overlap"):
        predict(binary, np.zeros((300, 300)), tile_size=64)
    with pytest.raises(DataError, match="NaN"):
        predict(binary, np.full((8, 8), np.nan))


def test_bfloat16_prediction_is_close_to_float32(binary):
    image = np.random.default_rng(5).random((40, 44)).astype(np.float32)
    mixed = predict(binary, image, precision="mixed_bfloat16")
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, predict(binary, image, precision="float32"), atol=0.05)


# ---------------------------------------------------------------------------
# progress and size


def test_progress_reaches_total(binary):
    calls = []
    stack = np.random.default_rng(6).random((3, 200, 180)).astype(np.float32)
    prob = predict(binary, stack, tile_size=96, progress=calls.append)
    plan = TilePlan(200, 180, 4, 96, None)
    assert prob.shape == (3, 200, 180)
    assert all(isinstance(c, PredictionProgress) for c in calls)
    assert calls[0].done == 0 and calls[-1].done == calls[-1].total == 3 * plan.n_tiles
    assert [c.done for c in calls] == sorted(c.done for c in calls)
    assert calls[-1].plane == calls[-1].planes == 3 and calls[-1].fraction == 1.0
    items = list(iter_probabilities(binary, stack[0], tile_size=96, jit=False))
    assert isinstance(items[-1], np.ndarray) and items[-1].shape == (200, 180)


def test_large_image_with_small_tiles():
    """2048 x 2048 in 256-pixel tiles: memory is bounded by the tile batch (not measured here)."""
    import keras

    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.model import build_unet

    keras.utils.set_random_seed(0)
    cfg = UNetConfig(depth=2, base_filters=2, batch_norm=False)
    bundle = ModelBundle(model=build_unet(cfg), unet=cfg)
    image = np.random.default_rng(7).integers(0, 255, (2048, 2048), dtype=np.uint8)
    calls = []
    prob = predict(bundle, image, tile_size=256, batch_size=4, progress=calls.append)
    assert prob.shape == (2048, 2048) and prob.dtype == np.float32
    assert np.isfinite(prob).all()
    assert calls[-1].done == calls[-1].total == TilePlan(2048, 2048, 4, 256, None).n_tiles
    # a crop predicted alone agrees in its interior, far from the crop's own border
    crop = predict(bundle, image[1000:1200, 700:900], tile_size=None)
    np.testing.assert_allclose(prob[1040:1160, 740:860], crop[40:160, 40:160], atol=1e-3)
