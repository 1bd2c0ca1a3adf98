"""Score tables: pixel and object metrics per image or plane, pooled totals, CSV and text.

:func:`score` scores predictions against ground truth and returns a
:class:`ScoreTable` of :class:`ScoreRow` (one per image or plane, plus the pooled
``overall`` row). Re-exported by :mod:`napari_cytounet.core.metrics`.

Examples
--------
>>> import numpy as np
>>> truth = np.zeros((4, 4), bool); truth[:2, :2] = True
>>> score(truth, truth).overall.object_f1
1.0
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from itertools import product
from pathlib import Path

import numpy as np

from .errors import DataError
from .metrics_objects import match_objects
from .metrics_pixel import (
    _check_pair,
    _dice_counts,
    _f1_counts,
    _iou_counts,
    _pixel_counts,
    _precision_counts,
    _recall_counts,
)

__all__ = ["ScoreRow", "ScoreTable", "score"]


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
