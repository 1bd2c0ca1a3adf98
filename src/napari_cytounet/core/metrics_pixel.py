"""Pixel metrics: Dice, IoU, precision and recall over foreground pixels, and an error map.

Every nonzero value is foreground. The formulas, and the scores of empty masks (1.0 when
both are empty, 0.0 when only one is), are given in :mod:`napari_cytounet.core.metrics`,
which re-exports these functions.

Examples
--------
>>> import numpy as np
>>> pred, truth = np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])
>>> precision(pred, truth), recall(pred, truth)
(0.5, 1.0)
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

__all__ = ["dice", "error_map", "iou", "precision", "recall"]


def _check_pair(pred, truth, what: str = "prediction and truth") -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise DataError(
            f"The {what} have different shapes, {pred.shape} and {truth.shape}; "
            "score a prediction against the ground truth of the same image "
            "(resize or crop one of them to match)."
        )
    return pred, truth


def _pixel_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """True-positive, false-positive and false-negative pixel counts."""
    p = pred != 0
    t = truth != 0
    tp = int(np.count_nonzero(p & t))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp


def _ratio(num: float, den: float, empty: float) -> float:
    return float(num) / float(den) if den > 0 else empty


def _dice_counts(tp: int, fp: int, fn: int) -> float:
    return _ratio(2 * tp, 2 * tp + fp + fn, 1.0)


def _iou_counts(tp: int, fp: int, fn: int) -> float:
    return _ratio(tp, tp + fp + fn, 1.0)


def _precision_counts(tp: int, fp: int, fn: int) -> float:
    # nothing predicted: right only if there was nothing to find
    return _ratio(tp, tp + fp, 1.0 if fn == 0 else 0.0)


def _recall_counts(tp: int, fp: int, fn: int) -> float:
    # nothing to find: right only if nothing was predicted
    return _ratio(tp, tp + fn, 1.0 if fp == 0 else 0.0)


def _f1_counts(tp: int, fp: int, fn: int) -> float:
    return _dice_counts(tp, fp, fn)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient (F1 over pixels) of two masks; nonzero is foreground.

    Parameters
    ----------
    pred, truth
        Arrays of the same shape (any number of dimensions; labels allowed).

    Returns
    -------
    float
        In [0, 1]; 1.0 when both are empty, 0.0 when only one is.

    Raises
    ------
    DataError
        If the shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> dice(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.6666666666666666
    >>> dice(np.zeros(3), np.zeros(3))
    1.0
    """
    return _dice_counts(*_pixel_counts(*_check_pair(pred, truth)))


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union (Jaccard index) of two masks; nonzero is foreground.

    Parameters
    ----------
    pred, truth
        Arrays of the same shape.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both are empty, 0.0 when only one is.

    Examples
    --------
    >>> import numpy as np
    >>> iou(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.5
    """
    return _iou_counts(*_pixel_counts(*_check_pair(pred, truth)))


def precision(pred: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of predicted foreground pixels that are truly foreground.

    An empty prediction scores 1.0 if the truth is empty too, else 0.0.

    Parameters
    ----------
    pred, truth
        Arrays of the same shape.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> precision(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 1]))
    0.5
    >>> precision(np.zeros(4), np.array([1, 0, 0, 0]))
    0.0
    """
    return _precision_counts(*_pixel_counts(*_check_pair(pred, truth)))


def recall(pred: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of true foreground pixels that are predicted as foreground.

    An empty truth scores 1.0 if the prediction is empty too, else 0.0.

    Parameters
    ----------
    pred, truth
        Arrays of the same shape.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> recall(np.array([1, 0, 0, 0]), np.array([1, 0, 0, 1]))
    0.5
    """
    return _recall_counts(*_pixel_counts(*_check_pair(pred, truth)))


def error_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Where a prediction is wrong: 0 = agrees, 1 = false positive, 2 = false negative.

    Meant for display as a napari Labels layer next to the image.

    Parameters
    ----------
    pred, truth
        Arrays of the same shape; nonzero is foreground.

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> error_map(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])).tolist()
    [0, 1, 2, 0]
    """
    pred, truth = _check_pair(pred, truth)
    p = pred != 0
    t = truth != 0
    out = np.zeros(p.shape, np.uint8)
    out[p & ~t] = 1
    out[t & ~p] = 2
    return out
