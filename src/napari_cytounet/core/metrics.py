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

import csv
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from itertools import product
from pathlib import Path

import numpy as np

from .errors import DataError

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


# ---------------------------------------------------------------------------
# pixel metrics


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


# ---------------------------------------------------------------------------
# object matching


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


# ---------------------------------------------------------------------------
# tables

_METRIC_COLUMNS = (
    "dice",
    "iou",
    "precision",
    "recall",
    "object_precision",
    "object_recall",
    "object_f1",
)
_COUNT_COLUMNS = ("tp", "fp", "fn", "pixel_tp", "pixel_fp", "pixel_fn")


@dataclass
class ScoreRow:
    """Scores of one image or plane (or a pooled summary of several).

    Pixel metrics (``dice``, ``iou``, ``precision``, ``recall``) and object
    metrics at the table's IoU threshold (``object_*``; ``tp``/``fp``/``fn`` are
    object counts). ``pixel_tp``/``pixel_fp``/``pixel_fn`` are the pixel counts
    behind the pixel metrics, kept so that rows can be pooled.

    Examples
    --------
    >>> row = ScoreRow.from_counts("a", pixel_counts=(8, 2, 0), object_counts=(1, 0, 0))
    >>> round(row.dice, 3), row.object_f1
    (0.889, 1.0)
    """

    name: str
    dice: float
    iou: float
    precision: float
    recall: float
    object_precision: float
    object_recall: float
    object_f1: float
    tp: int
    fp: int
    fn: int
    pixel_tp: int = 0
    pixel_fp: int = 0
    pixel_fn: int = 0

    @classmethod
    def from_counts(
        cls, name: str, pixel_counts: tuple[int, int, int], object_counts: tuple[int, int, int]
    ) -> ScoreRow:
        """Build a row from pixel ``(tp, fp, fn)`` and object ``(tp, fp, fn)`` counts."""
        px = tuple(int(v) for v in pixel_counts)
        ob = tuple(int(v) for v in object_counts)
        return cls(
            name=name,
            dice=_dice_counts(*px),
            iou=_iou_counts(*px),
            precision=_precision_counts(*px),
            recall=_recall_counts(*px),
            object_precision=_precision_counts(*ob),
            object_recall=_recall_counts(*ob),
            object_f1=_f1_counts(*ob),
            tp=ob[0],
            fp=ob[1],
            fn=ob[2],
            pixel_tp=px[0],
            pixel_fp=px[1],
            pixel_fn=px[2],
        )

    def as_dict(self) -> dict[str, float | int | str]:
        """The row as a plain dict (column name -> value)."""
        return asdict(self)


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


@dataclass
class ScoreTable:
    """Per-image (or per-plane) scores with pooled totals.

    Attributes
    ----------
    rows
        One :class:`ScoreRow` per image or plane.
    overall
        Pooled over all rows: pixel metrics from the summed pixel counts (every
        pixel weighs the same, rather than a mean of per-image ratios) and
        object metrics from the summed object counts.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((2, 4, 4), np.uint8); a[0, :2, :2] = 1
    >>> table = score(a, a)
    >>> [r.name for r in table.rows], table.overall.dice
    (['plane 0', 'plane 1'], 1.0)
    >>> print(table.format().splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    name      dice    iou  precision  recall  obj_prec  obj_rec  obj_f1  tp  fp  fn
    """

    rows: list[ScoreRow]
    overall: ScoreRow
    iou_threshold: float = 0.5

    @classmethod
    def from_rows(cls, rows: Sequence[ScoreRow], iou_threshold: float = 0.5) -> ScoreTable:
        """Build a table and its pooled ``overall`` row from per-image rows."""
        rows = list(rows)
        px = (
            sum(r.pixel_tp for r in rows),
            sum(r.pixel_fp for r in rows),
            sum(r.pixel_fn for r in rows),
        )
        ob = (sum(r.tp for r in rows), sum(r.fp for r in rows), sum(r.fn for r in rows))
        return cls(rows, ScoreRow.from_counts("overall", px, ob), iou_threshold)

    @property
    def mean(self) -> ScoreRow:
        """Mean of the per-row metrics (each image weighs the same); counts are summed."""
        if not self.rows:
            return ScoreRow.from_counts("mean", (0, 0, 0), (0, 0, 0))
        values = {c: float(np.mean([getattr(r, c) for r in self.rows])) for c in _METRIC_COLUMNS}
        counts = {c: int(sum(getattr(r, c) for r in self.rows)) for c in _COUNT_COLUMNS}
        return ScoreRow(name="mean", **values, **counts)

    def as_dicts(self) -> list[dict[str, float | int | str]]:
        """One dict per row, then one for ``overall`` (ready for ``pandas.DataFrame``)."""
        return [r.as_dict() for r in [*self.rows, self.overall]]

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the table as CSV: a header, one line per row, then an ``overall`` line.

        Columns are ``name``, the pixel and object metrics (6 decimals), the object
        counts ``tp, fp, fn`` and the pixel counts ``pixel_tp, pixel_fp, pixel_fn``.
        The file is written atomically; an existing file is overwritten (the CLI refuses
        to replace a file that :meth:`is_score_csv` does not recognise). Read it
        back with :meth:`read_csv`.

        Returns
        -------
        Path
            The written file.
        """
        from .io import _atomic_write

        columns = [f.name for f in fields(ScoreRow)]

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                for row in [*self.rows, self.overall]:
                    writer.writerow([_format_value(getattr(row, c)) for c in columns])

        return _atomic_write(Path(path), write)

    @staticmethod
    def is_score_csv(path: str | os.PathLike) -> bool:
        """Whether ``path`` is a table written by :meth:`to_csv` (its header line is ours).

        Used before replacing a file: ``cytounet score --csv notes.txt`` must not
        overwrite a user's file.
        """
        columns = ",".join(f.name for f in fields(ScoreRow))
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                return fh.readline().rstrip("\r\n") == columns
        except (OSError, UnicodeDecodeError):
            return False

    @classmethod
    def read_csv(cls, path: str | os.PathLike, iou_threshold: float = 0.5) -> ScoreTable:
        """Read a table written by :meth:`to_csv`."""
        types = {f.name: f.type for f in fields(ScoreRow)}
        rows: list[ScoreRow] = []
        overall = None
        with open(path, newline="", encoding="utf-8") as fh:
            for record in csv.DictReader(fh):
                values = {}
                for key, text in record.items():
                    kind = types.get(key)
                    if kind is None:
                        continue
                    values[key] = (
                        text if kind == "str" else (int(text) if kind == "int" else float(text))
                    )
                row = ScoreRow(**values)
                if row.name == "overall":
                    overall = row
                else:
                    rows.append(row)
        table = cls.from_rows(rows, iou_threshold)
        if overall is not None:
            table.overall = overall
        return table

    def format(self, digits: int = 3) -> str:
        """A plain-text table: one line per row, then ``mean`` and ``overall``.

        Examples
        --------
        >>> import numpy as np
        >>> print(score(np.ones((3, 3)), np.ones((3, 3)), names=["cho01"]).format())
        ... # doctest: +NORMALIZE_WHITESPACE
        name      dice    iou  precision  recall  obj_prec  obj_rec  obj_f1  tp  fp  fn
        cho01    1.000  1.000      1.000   1.000     1.000    1.000   1.000   1   0   0
        -------  -----  -----  ---------  ------  --------  -------  ------  --  --  --
        mean     1.000  1.000      1.000   1.000     1.000    1.000   1.000   1   0   0
        overall  1.000  1.000      1.000   1.000     1.000    1.000   1.000   1   0   0
        """
        headers = ["name", "dice", "iou", "precision", "recall", "obj_prec", "obj_rec", "obj_f1",
                   "tp", "fp", "fn"]  # fmt: skip
        attrs = ["name", *_METRIC_COLUMNS, "tp", "fp", "fn"]

        def cells(row: ScoreRow) -> list[str]:
            out = []
            for a in attrs:
                v = getattr(row, a)
                out.append(f"{v:.{digits}f}" if isinstance(v, float) else str(v))
            return out

        body = [cells(r) for r in self.rows]
        tail = [cells(self.mean), cells(self.overall)]
        table = [headers, *body, *tail]
        widths = [max(len(line[i]) for line in table) for i in range(len(headers))]

        def line(values: list[str]) -> str:
            first = values[0].ljust(widths[0])
            rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:])]
            return "  ".join([first, *rest]).rstrip()

        rule = line(["-" * w for w in widths])
        return "\n".join([line(headers), *(line(b) for b in body), rule, *(line(t) for t in tail)])

    def __str__(self) -> str:
        return self.format()


def _score_row(name: str, pred: np.ndarray, truth: np.ndarray, iou_threshold: float) -> ScoreRow:
    px = _pixel_counts(pred, truth)
    m = match_objects(pred, truth, iou_threshold)
    return ScoreRow.from_counts(name, px, (m.tp, m.fp, m.fn))


def _plane_name(index: tuple[int, ...]) -> str:
    return f"plane {index[0]}" if len(index) == 1 else "plane " + ",".join(map(str, index))


def score(
    pred,
    truth,
    *,
    names: Sequence[str] | None = None,
    iou_threshold: float = 0.5,
) -> ScoreTable:
    """Score predictions against ground truth, per image or plane and overall.

    Parameters
    ----------
    pred, truth
        Either two arrays of the same shape, or two sequences (list or tuple) of
        the same length holding 2D arrays (each pair of the same shape).
        A 2D array gives one row. An nD array gives one row per 2D plane over
        the leading axes, named ``"plane 3"`` for a 3D stack and
        ``"plane 1,3"`` (indices of the leading axes) for 4D and more.
        Masks or label images: nonzero is foreground for the pixel metrics, and
        binary masks are split into connected objects for the object metrics.
    names
        Row names, one per image or plane (default: ``"image 0"``... for
        sequences, the plane names above for arrays).
    iou_threshold
        Minimal IoU for an object match.

    Returns
    -------
    ScoreTable

    Raises
    ------
    DataError
        If shapes or lengths differ, or ``names`` does not have one name per row.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((8, 8), np.uint8); t[1:4, 1:4] = 1; t[5:7, 5:7] = 1
    >>> p = np.zeros((8, 8), np.uint8); p[1:4, 1:4] = 1
    >>> row = score([p], [t], names=["cho01"]).rows[0]
    >>> row.name, round(row.dice, 3), row.tp, row.fn, round(row.object_f1, 3)
    ('cho01', 0.818, 1, 1, 0.667)
    """
    if isinstance(pred, (list, tuple)) or isinstance(truth, (list, tuple)):
        if not isinstance(pred, (list, tuple)) or not isinstance(truth, (list, tuple)):
            raise DataError(
                "Pass predictions and truths the same way: two arrays, or two lists of 2D arrays."
            )
        if len(pred) != len(truth):
            raise DataError(
                f"Got {len(pred)} predictions but {len(truth)} ground truths; "
                "pass one truth per prediction, in the same order."
            )
        if names is None:
            names = [f"image {i}" for i in range(len(pred))]
        pairs = []
        for i, (p, t) in enumerate(zip(pred, truth)):
            p, t = _check_pair(p, t, f"prediction and truth of item {i}")
            if p.ndim != 2:
                raise DataError(
                    f"Item {i} has shape {p.shape}; lists must hold 2D images (pass a stack as "
                    "one array to score it plane by plane)."
                )
            pairs.append((p, t))
    else:
        p, t = _check_pair(pred, truth)
        if p.ndim < 2:
            raise DataError(f"Expected 2D images or stacks of them, got shape {p.shape}.")
        if p.ndim == 2:
            pairs = [(p, t)]
            default = ["image"]
        else:
            leading = p.shape[:-2]
            index = list(product(*(range(n) for n in leading)))
            pairs = [(p[i], t[i]) for i in index]
            default = [_plane_name(i) for i in index]
        if names is None:
            names = default
    names = [str(n) for n in names]
    if len(names) != len(pairs):
        raise DataError(
            f"Got {len(names)} names for {len(pairs)} images/planes; pass one name per row."
        )
    rows = [_score_row(n, p, t, iou_threshold) for n, (p, t) in zip(names, pairs)]
    return ScoreTable.from_rows(rows, iou_threshold)
