"""Losses and the training Dice metric, checked against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_cytounet.core.errors import ConfigError
from napari_cytounet.core.losses import (
    get_loss,
    hard_dice,
    masked_crossentropy,
    masked_soft_dice_loss,
)


def pack(classes, weights=None) -> np.ndarray:
    """y_true of shape (1, 1, N, 2) from per-pixel class indices and weights."""
    classes = np.asarray(classes, np.float32)
    weights = np.ones_like(classes) if weights is None else np.asarray(weights, np.float32)
    return np.stack([classes, weights], axis=-1)[None, None]


def probs(values) -> np.ndarray:
    """y_pred of shape (1, 1, N, 1) (binary) or (1, 1, N, C) from per-pixel probabilities."""
    values = np.asarray(values, np.float32)
    if values.ndim == 1:
        values = values[:, None]
    return values[None, None]


def value(tensor) -> float:
    return float(np.asarray(tensor))


def test_binary_crossentropy_by_hand():
    y = pack([1, 0])
    p = probs([0.8, 0.3])
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert value(masked_crossentropy(y, p)) == pytest.approx(expected, rel=1e-5)


def test_categorical_crossentropy_by_hand():
    y = pack([0, 2])
    p = probs([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    expected = -(math.log(0.7) + math.log(0.6)) / 2
    assert value(masked_crossentropy(y, p, classes=3)) == pytest.approx(expected, rel=1e-5)


def test_soft_dice_by_hand():
    y = pack([1, 0, 1])
    p = probs([0.8, 0.3, 0.4])
    intersection = 0.8 + 0.4
    total = (0.8 + 0.3 + 0.4) + 2
    expected = 1 - (2 * intersection + 1) / (total + 1)
    assert value(masked_soft_dice_loss(y, p)) == pytest.approx(expected, rel=1e-5)


def test_multiclass_soft_dice_scores_foreground_classes_only():
    y = pack([0, 1, 2])
    p = probs([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert value(masked_soft_dice_loss(y, p, classes=3)) == pytest.approx(0.0, abs=1e-6)
    # class 1 perfect, class 2 entirely missed (predicted as background)
    p = probs([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    expected = 1 - ((2 * 1 + 1) / (2 + 1) + (0 + 1) / (1 + 1)) / 2
    assert value(masked_soft_dice_loss(y, p, classes=3)) == pytest.approx(expected, rel=1e-5)


def test_bce_dice_is_the_sum():
    y = pack([1, 0, 1, 1], [1, 1, 0, 1])
    p = probs([0.9, 0.2, 0.5, 0.6])
    total = value(get_loss("bce_dice")(y, p))
    parts = value(get_loss("bce")(y, p)) + value(get_loss("dice")(y, p))
    assert total == pytest.approx(parts, rel=1e-6)
    assert value(get_loss("bce")(y, p)) == pytest.approx(value(masked_crossentropy(y, p)))


@pytest.mark.parametrize("name", ["bce", "dice", "bce_dice"])
@pytest.mark.parametrize("classes", [1, 3])
def test_masked_losses_ignore_weight_zero_pixels(name, classes):
    rng = np.random.default_rng(0)
    n = 16
    index = rng.integers(0, max(classes, 2), n)
    weight = (np.arange(n) % 3 != 0).astype(np.float32)  # every third pixel unannotated
    y = pack(index, weight)
    raw = rng.random((n, classes)).astype(np.float32) + 0.05
    p1 = raw if classes == 1 else raw / raw.sum(-1, keepdims=True)
    p2 = p1.copy()
    p2[weight == 0] = p2[weight == 0][::-1] * 0.5 + 0.01  # change only the ignored pixels
    if classes > 1:
        p2 /= p2.sum(-1, keepdims=True)
    loss = get_loss(name, classes)
    a, b = value(loss(y, probs(p1))), value(loss(y, probs(p2)))
    assert a == pytest.approx(b, rel=1e-6)
    # ...whereas a change on an annotated pixel does change it
    p3 = p1.copy()
    p3[1] = 1.0 - p3[1] if classes == 1 else np.roll(p3[1], 1)
    assert value(loss(y, probs(p3))) != pytest.approx(a, rel=1e-4)


def test_masked_loss_equals_loss_on_annotated_pixels_only():
    y_masked = pack([1, 0, 1, 0], [1, 0, 1, 0])
    p = probs([0.9, 0.99, 0.3, 0.01])
    y_sub = pack([1, 1])
    p_sub = probs([0.9, 0.3])
    for name in ("bce", "dice", "bce_dice"):
        assert value(get_loss(name)(y_masked, p)) == pytest.approx(
            value(get_loss(name)(y_sub, p_sub)), rel=1e-5
        )


def test_crossentropy_is_finite_at_saturated_predictions():
    y = pack([1, 0])
    p = probs([0.0, 1.0])  # as wrong as possible
    loss = value(masked_crossentropy(y, p))
    assert math.isfinite(loss) and loss > 10


def test_hard_dice_values():
    # empty prediction, empty target: 1
    assert value(hard_dice(pack([0, 0, 0]), probs([0.1, 0.2, 0.4]))) == 1.0
    # empty prediction, non-empty target: 0
    assert value(hard_dice(pack([1, 0, 0]), probs([0.1, 0.2, 0.4]))) == 0.0
    # thresholded at 0.5: prediction {0, 1}, target {0, 2}
    assert value(hard_dice(pack([1, 0, 1]), probs([0.9, 0.6, 0.4]))) == pytest.approx(0.5)
    # unannotated pixels do not count
    assert value(hard_dice(pack([1, 0, 1], [1, 0, 0]), probs([0.9, 0.6, 0.4]))) == 1.0


def test_hard_dice_multiclass_ignores_background():
    p = probs([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    assert value(hard_dice(pack([0, 1, 2]), p, classes=3)) == 1.0
    # only background everywhere, predicted as background: empty vs empty = 1
    p_bg = probs([[0.9, 0.05, 0.05]] * 3)
    assert value(hard_dice(pack([0, 0, 0]), p_bg, classes=3)) == 1.0
    # class 2 predicted as class 1: pooled over foreground classes, 2 * 1 / (2 + 2)
    p_wrong = probs([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.6, 0.2]])
    assert value(hard_dice(pack([0, 1, 2]), p_wrong, classes=3)) == pytest.approx(0.5)


def test_unknown_loss_is_a_config_error():
    with pytest.raises(ConfigError, match="bce_dice"):
        get_loss("mse")
