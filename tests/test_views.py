"""Test-time augmentation: the mean over flipped/rotated views, in the core and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cytounet.core.config import UNetConfig
from napari_cytounet.core.errors import ConfigError
from napari_cytounet.core.predict import predict_probabilities
from napari_cytounet.core.views import VIEW_COUNTS, check_views, mean_over_views

# (transpose, flip rows, flip columns) of each view, written out independently of the module
VIEWS = [(t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)]


def _apply(x, transpose, flip_rows, flip_cols, undo=False):
    """One view of a 2D array (``undo``: back from it), written apart from the module."""
    steps = [(transpose, np.transpose), (flip_rows, np.flipud), (flip_cols, np.fliplr)]
    for wanted, op in reversed(steps) if undo else steps:
        x = op(x) if wanted else x
    return x


def test_views_of_an_equivariant_function_change_nothing():
    x = np.random.default_rng(0).random((2, 5, 7, 1), dtype=np.float32)
    for views in VIEW_COUNTS:
        out = mean_over_views(lambda b: np.sqrt(b), x, views)
        np.testing.assert_allclose(out, np.sqrt(x), rtol=1e-6)
        assert out.shape == x.shape and out.dtype == np.float32


def test_views_average_a_function_that_sees_orientation():
    x = np.zeros((1, 4, 6, 1), np.float32)

    def rows(batch):  # the answer is the row index: it sees which way is up
        return np.broadcast_to(
            np.arange(batch.shape[1], dtype=np.float32)[None, :, None, None], batch.shape
        )

    one = mean_over_views(rows, x, 1)[0, :, :, 0]
    two = mean_over_views(rows, x, 2)[0, :, :, 0]  # + left-right mirror: rows unchanged
    four = mean_over_views(rows, x, 4)[0, :, :, 0]  # + up-down mirror: rows average out
    eight = mean_over_views(rows, x, 8)[0, :, :, 0]  # + transposes: column indices join
    np.testing.assert_array_equal(one, np.repeat(np.arange(4.0)[:, None], 6, axis=1))
    np.testing.assert_array_equal(two, one)
    np.testing.assert_allclose(four, 1.5)
    cols = np.repeat(np.arange(6.0)[None, :], 4, axis=0)
    expected = (4 * 1.5 + 2 * cols + 2 * cols[:, ::-1]) / 8
    np.testing.assert_allclose(eight, expected)


@pytest.mark.parametrize("bad", [0, 3, 16, -1, True, 2.5, "8"])
def test_bad_view_counts_are_refused(bad):
    with pytest.raises(ConfigError, match="views must be one of 1, 2, 4, 8"):
        check_views(bad)


def test_prediction_with_eight_views_is_the_mean_of_the_views():
    import keras

    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.model import build_unet

    keras.utils.set_random_seed(3)
    cfg = UNetConfig(depth=2, base_filters=4)
    bundle = ModelBundle(model=build_unet(cfg), unet=cfg)
    # 48 + 2 * 24 (halo) and 56 + 48 are multiples of 4: the reflect padding is symmetric,
    # so predicting a flipped image is predicting the flipped padded tile
    image = np.random.default_rng(1).random((48, 56)).astype(np.float32)
    eight = predict_probabilities(bundle, image, tile_size=None, views=8, precision="float32")

    def one_view(v):
        flipped = np.ascontiguousarray(_apply(image, *v))
        prob = predict_probabilities(bundle, flipped, tile_size=None, precision="float32")
        return _apply(prob, *v, undo=True)

    manual = np.mean([one_view(v) for v in VIEWS], axis=0)
    np.testing.assert_allclose(eight, manual, atol=2e-5)
    one = predict_probabilities(bundle, image, tile_size=None, precision="float32")
    assert not np.allclose(one, eight, atol=1e-4)  # an untrained net sees orientation
    # tiled prediction takes views too, with the same shape
    tiled = predict_probabilities(bundle, image, tile_size=32, overlap=16, views=4)
    assert tiled.shape == image.shape and np.isfinite(tiled).all()
    with pytest.raises(ConfigError, match="views must be one of"):
        predict_probabilities(bundle, image, views=3)
