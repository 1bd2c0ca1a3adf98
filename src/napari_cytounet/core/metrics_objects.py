"""Object metrics: predicted objects matched one-to-one to true objects at an IoU threshold.

Objects are the distinct nonzero values of a label image (a binary mask is first
split into connected components). Matching is Hungarian on IoU
(:func:`match_objects`); a match counts when its IoU is at least the threshold
(0.5 by default), as in the cell-segmentation literature. Re-exported by
:mod:`napari_cytounet.core.metrics`.

Examples
--------
>>> import numpy as np
>>> truth = np.array([[1, 1, 0, 2, 2]])
>>> match_objects(truth, truth).f1
1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError
from .metrics_pixel import _check_pair, _f1_counts, _precision_counts, _recall_counts

__all__ = ["ObjectMatch", "match_objects"]


@dataclass
class ObjectMatch:
    """One-to-one matching of predicted to true objects at an IoU threshold.

    Attributes
    ----------
    tp
        Matched pairs (true positives).
    fp
        Predicted objects without a match.
    fn
        True objects without a match.
    precision, recall, f1
        ``tp / (tp + fp)``, ``tp / (tp + fn)``, ``2 tp / (2 tp + fp + fn)``; 1.0 for
        all three when both images hold no object, 0.0 when only one of them is empty.
    mean_matched_iou
        Mean IoU of the matched pairs (0.0 when nothing matched, 1.0 when both
        images are empty).
    pairs
        ``(pred_id, true_id, iou)`` for every match, with the ids of the
        (possibly connected-component) label images that were compared.

    Examples
    --------
    >>> m = ObjectMatch(tp=3, fp=1, fn=0, precision=0.75, recall=1.0, f1=6 / 7,
    ...                 mean_matched_iou=0.8)
    >>> m.n_pred, m.n_true
    (4, 3)
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    mean_matched_iou: float
    pairs: list[tuple[int, int, float]] = field(default_factory=list, repr=False)

    @property
    def n_pred(self) -> int:
        """Number of predicted objects."""
        return self.tp + self.fp

    @property
    def n_true(self) -> int:
        """Number of true objects."""
        return self.tp + self.fn


def _as_instances(labels: np.ndarray, what: str) -> np.ndarray:
    """Integer instance labels; binary masks become connected components."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "b":
        labels = labels.astype(np.uint8)
    elif labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise DataError(
                f"The {what} labels are not whole numbers; pass instance labels or a binary "
                "mask (threshold probabilities first, e.g. with postprocess())."
            )
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "ui":
        raise DataError(f"The {what} labels must be integers or bool, got dtype {labels.dtype}.")
    if labels.size and labels.min() < 0:
        raise DataError(
            f"The {what} labels contain negative values; use 0 for background and "
            "positive ids for objects."
        )
    values = np.unique(labels)
    nonzero = values[values != 0]
    if nonzero.size == 1:  # a binary mask: split it into connected objects
        from scipy import ndimage as ndi

        # full connectivity (8 in 2D), like skimage.measure.label
        structure = np.ones((3,) * labels.ndim, bool)
        return ndi.label(labels != 0, structure=structure)[0].astype(np.int64, copy=False)
    return labels


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive ids 0..n (0 stays background) and the original id of each."""
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top <= max(4 * flat.size, 1 << 16):  # a lookup table is cheaper than sorting
        flat = flat.astype(np.intp, copy=False)
        present = np.bincount(flat, minlength=1) > 0
        present[0] = True
        ids = np.flatnonzero(present)
        lookup = np.zeros(top + 1, np.int64)
        lookup[ids] = np.arange(ids.size)
        return lookup[flat], ids
    ids, inverse = np.unique(flat, return_inverse=True)
    if ids[0] != 0:
        ids = np.concatenate([[0], ids])
        inverse = inverse + 1
    return inverse.reshape(-1), ids


def match_objects(
    pred_labels: np.ndarray, truth_labels: np.ndarray, iou_threshold: float = 0.5
) -> ObjectMatch:
    """Match predicted objects to true objects one-to-one and count hits and misses.

    Objects are the distinct nonzero values of each label image. A binary input
    (only 0 and one other value) is first split into connected components
    (8-connectivity in 2D). Overlaps are counted in one pass over the pixels (a
    sparse contingency table, no per-object loop), and each group of
    overlapping objects is matched with :func:`scipy.optimize.linear_sum_assignment`
    to maximise the total IoU of pairs whose IoU is at least ``iou_threshold``.

    Parameters
    ----------
    pred_labels, truth_labels
        Label images or binary masks of the same shape (2D, or nD objects).
    iou_threshold
        Minimal IoU for a match, in (0, 1].

    Returns
    -------
    ObjectMatch

    Raises
    ------
    DataError
        If the shapes differ or the labels are not non-negative integers.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([[1, 1, 0, 2, 2]])
    >>> pred = np.array([[1, 1, 1, 1, 1]])  # one object over both: at most one match
    >>> m = match_objects(pred, truth, iou_threshold=0.3)
    >>> m.tp, m.fp, m.fn
    (1, 0, 1)
    """
    if not 0.0 < float(iou_threshold) <= 1.0:
        from .errors import ConfigError

        raise ConfigError(f"iou_threshold must be in (0, 1] (0.5 is usual), got {iou_threshold!r}.")
    pred, truth = _check_pair(pred_labels, truth_labels, "predicted and true label images")
    pred = _as_instances(pred, "predicted")
    truth = _as_instances(truth, "true")
    p, p_ids = _compact(pred)
    t, t_ids = _compact(truth)
    n_p, n_t = p_ids.size - 1, t_ids.size - 1
    if n_p == 0 and n_t == 0:
        return ObjectMatch(0, 0, 0, 1.0, 1.0, 1.0, 1.0)

    area_p = np.bincount(p, minlength=n_p + 1)
    area_t = np.bincount(t, minlength=n_t + 1)
    both = (p > 0) & (t > 0)
    keys, inter = np.unique(p[both].astype(np.int64) * (n_t + 1) + t[both], return_counts=True)
    pi, ti = np.divmod(keys, n_t + 1)
    ious = inter / (area_p[pi] + area_t[ti] - inter)
    keep = ious >= iou_threshold
    pi, ti, ious = pi[keep], ti[keep], ious[keep]

    matches: list[tuple[int, int, float]] = []
    if np.unique(pi).size == pi.size and np.unique(ti).size == ti.size:
        # no object has two candidates (always so for thresholds above 0.5)
        matches = [(int(a), int(b), float(v)) for a, b, v in zip(pi, ti, ious)]
    else:
        from scipy.optimize import linear_sum_assignment
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        # candidate pairs form a bipartite graph; solve each connected group on its own
        n_nodes = n_p + n_t
        graph = coo_matrix((np.ones(pi.size), (pi - 1, n_p + ti - 1)), shape=(n_nodes, n_nodes))
        _, component = connected_components(graph, directed=False)
        group = component[pi - 1]
        order = np.argsort(group, kind="stable")
        bounds = np.flatnonzero(np.diff(group[order])) + 1
        for idx in np.split(order, bounds):
            if idx.size == 1:
                k = idx[0]
                matches.append((int(pi[k]), int(ti[k]), float(ious[k])))
                continue
            rows, row_of = np.unique(pi[idx], return_inverse=True)
            cols, col_of = np.unique(ti[idx], return_inverse=True)
            weights = np.zeros((rows.size, cols.size))
            weights[row_of, col_of] = ious[idx]
            r, c = linear_sum_assignment(weights, maximize=True)
            for a, b in zip(r, c):
                if weights[a, b] > 0:
                    matches.append((int(rows[a]), int(cols[b]), float(weights[a, b])))

    tp = len(matches)
    fp, fn = n_p - tp, n_t - tp
    mean_iou = float(np.mean([m[2] for m in matches])) if matches else 0.0
    pairs = [(int(p_ids[a]), int(t_ids[b]), v) for a, b, v in sorted(matches)]
    return ObjectMatch(
        tp=tp,
        fp=fp,
        fn=fn,
        precision=_precision_counts(tp, fp, fn),
        recall=_recall_counts(tp, fp, fn),
        f1=_f1_counts(tp, fp, fn),
        mean_matched_iou=mean_iou,
        pairs=pairs,
    )
