"""Training losses and metrics (Keras ops, any backend).

Targets are packed as ``y_true[..., 0]`` = class index and ``y_true[..., 1]`` =
pixel weight (0 = not annotated, ignored). With dense labels every weight is 1
and the losses reduce to the ordinary ones; with scribbles they become the
masked variants. Predictions are probabilities (sigmoid or softmax).

Available losses: ``"bce"`` (binary or categorical cross-entropy), ``"dice"``
(soft Dice) and ``"bce_dice"`` (their sum, the default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EPSILON = 1e-6


def _split(y_true: Any, y_pred: Any, classes: int) -> tuple[Any, Any, Any]:
    """Return (one-hot target, probabilities, weight) with a class axis last."""
    from keras import ops

    y_pred = ops.cast(y_pred, "float32")
    index = ops.cast(y_true[..., 0], "int32")
    weight = ops.cast(y_true[..., 1:2], "float32")
    if classes == 1:
        target = ops.expand_dims(ops.cast(index, "float32"), -1)
    else:
        target = ops.one_hot(index, classes, dtype="float32")
    return target, y_pred, weight


def masked_crossentropy(y_true: Any, y_pred: Any, classes: int = 1) -> Any:
    """Cross-entropy averaged over annotated pixels only."""
    from keras import ops

    target, prob, weight = _split(y_true, y_pred, classes)
    prob = ops.clip(prob, EPSILON, 1.0 - EPSILON)
    if classes == 1:
        per_pixel = -(target * ops.log(prob) + (1.0 - target) * ops.log(1.0 - prob))
    else:
        per_pixel = -ops.sum(target * ops.log(prob), axis=-1, keepdims=True)
    return ops.sum(per_pixel * weight) / (ops.sum(weight) + EPSILON)


def masked_soft_dice_loss(y_true: Any, y_pred: Any, classes: int = 1) -> Any:
    """1 - soft Dice over annotated pixels, pooled over the batch (mean over foreground classes)."""
    from keras import ops

    target, prob, weight = _split(y_true, y_pred, classes)
    if classes > 1:  # class 0 is background: score the others
        target, prob = target[..., 1:], prob[..., 1:]
    axes = (0, 1, 2)
    intersection = ops.sum(prob * target * weight, axis=axes)
    total = ops.sum(prob * weight, axis=axes) + ops.sum(target * weight, axis=axes)
    dice = (2.0 * intersection + 1.0) / (total + 1.0)
    return 1.0 - ops.mean(dice)


def hard_dice(y_true: Any, y_pred: Any, classes: int = 1) -> Any:
    """Dice of the thresholded (or arg-max) prediction over annotated foreground pixels.

    Pooled over the batch; 1.0 when both prediction and target are empty.
    """
    from keras import ops

    target, prob, weight = _split(y_true, y_pred, classes)
    if classes == 1:
        pred = ops.cast(prob > 0.5, "float32")
    else:
        pred = ops.one_hot(ops.argmax(prob, axis=-1), classes, dtype="float32")
        target, pred = target[..., 1:], pred[..., 1:]
    intersection = ops.sum(pred * target * weight)
    total = ops.sum(pred * weight) + ops.sum(target * weight)
    return ops.where(total > 0, 2.0 * intersection / ops.maximum(total, EPSILON), 1.0)


LOSS_NAMES = ("bce", "dice", "bce_dice")


def get_loss(name: str, classes: int = 1) -> Callable[[Any, Any], Any]:
    """Return the loss function called ``name`` for a model with ``classes`` outputs.

    Examples
    --------
    >>> loss = get_loss("bce_dice")
    >>> callable(loss)
    True
    """
    if name == "bce":
        return lambda t, p: masked_crossentropy(t, p, classes)
    if name == "dice":
        return lambda t, p: masked_soft_dice_loss(t, p, classes)
    if name == "bce_dice":
        return lambda t, p: (
            masked_crossentropy(t, p, classes) + masked_soft_dice_loss(t, p, classes)
        )
    from .errors import ConfigError

    raise ConfigError(f"Unknown loss {name!r}; choose one of {', '.join(LOSS_NAMES)}.")
