"""Scoring a segmentation against ground truth (numpy and scipy only).

Pixel metrics treat every nonzero value as foreground. With ``TP``, ``FP`` and
``FN`` the true-positive, false-positive and false-negative pixel counts:

* Dice = 2 TP / (2 TP + FP + FN)
* IoU (Jaccard) = TP / (TP + FP + FN)
* precision = TP / (TP + FP)
* recall = TP / (TP + FN)

Degenerate cases: when prediction and truth are both empty every metric is 1.0
(nothing to find, nothing found). When exactly one of them is empty every metric
is 0.0, including the precision of an empty prediction and the recall of an
empty truth: a score never rewards a prediction that is wrong. The same rules
hold for object-level scores.

Object metrics match predicted to true objects one-to-one (Hungarian matching on
IoU, :func:`match_objects`); a match counts when its IoU is at least the
threshold (0.5 by default), as in the cell-segmentation literature.

This module gathers the public names of :mod:`.metrics_pixel` (pixel metrics),
:mod:`.metrics_objects` (object matching) and :mod:`.metrics_table` (score tables).

Examples
--------
>>> import numpy as np
>>> truth = np.zeros((4, 4), bool); truth[:2, :2] = True
>>> pred = np.zeros((4, 4), bool); pred[:2, :3] = True
>>> round(dice(pred, truth), 3), round(iou(pred, truth), 3)
(0.8, 0.667)
>>> table = score(pred, truth)
>>> table.overall.object_f1
1.0
"""

from __future__ import annotations

# in the order of the API reference
# isort: off
from .metrics_pixel import dice, iou, precision, recall, error_map
from .metrics_objects import ObjectMatch, match_objects
from .metrics_table import ScoreRow, ScoreTable, score

# isort: on

__all__ = [
    "ObjectMatch",
    "ScoreRow",
    "ScoreTable",
    "dice",
    "error_map",
    "iou",
    "match_objects",
    "precision",
    "recall",
    "score",
]
