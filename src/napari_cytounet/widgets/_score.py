"""The "Score" widget: compare a segmentation with ground truth.

Pixel Dice, IoU, precision and recall, and object precision, recall and F1 at an
IoU threshold (one-to-one matching), overall and per plane of a stack, shown in
a table in the dock and exportable as CSV. An optional ``"<prediction> errors"``
Labels layer shows false positives (1, red) and false negatives (2, blue).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    Table,
    create_widget,
)

from napari_cytounet.core.errors import CytoUNetError, DataError

from . import _layers
from ._common import (
    JobRunner,
    connect_shutdown,
    header,
    notify_exception,
    show_error,
    show_info,
    wrap_text,
)
from ._jobs import start_job
from ._scroll import ScrollingDock
from ._session import session_for
from ._settings import bind

if TYPE_CHECKING:
    import napari

SECTION = "score"
#: Colours of the error layer: 1 = false positive, 2 = false negative.
ERROR_COLORS = {0: "transparent", 1: "#ff3b30", 2: "#2f9bff", None: "transparent"}
COLUMNS = ("Dice", "IoU", "precision", "recall", "object F1", "TP", "FP", "FN")


@dataclass(frozen=True)
class ScoredPair:
    """The two Labels layers a scoring job compares (its result is shown under their names)."""

    prediction: napari.layers.Labels
    truth: napari.layers.Labels


def score_job(pred: Any, truth: Any, iou_threshold: float, errors: bool):
    """Score (and optionally map errors) in a worker thread; yields ``(table, error_map)``."""
    from napari_cytounet.core.metrics import error_map, score

    pred = np.asarray(pred)
    truth = np.asarray(truth)
    table = score(pred, truth, iou_threshold=iou_threshold)
    yield table, (error_map(pred, truth) if errors else None)


def table_rows(table: Any) -> tuple[list[list[Any]], list[str]]:
    """Rows (values) and row headers of the dock table: overall first, then per plane."""
    rows = [table.overall, *table.rows] if len(table.rows) > 1 else [table.overall]
    values = [
        [
            round(r.dice, 4),
            round(r.iou, 4),
            round(r.precision, 4),
            round(r.recall, 4),
            round(r.object_f1, 4),
            int(r.tp),
            int(r.fp),
            int(r.fn),
        ]
        for r in rows
    ]
    return values, [r.name for r in rows]


class ScoreWidget(ScrollingDock):
    """Score a Labels layer against ground truth: table, CSV export, error layer."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._session = session_for(viewer)
        self._runner = JobRunner("scoring")
        self._scoring: ScoredPair | None = None  # the layers of the running (or last) job
        self.table_data: Any = None  # the last ScoreTable

        self._pred = create_widget(annotation="napari.layers.Labels", label="Prediction")
        self._truth = create_widget(annotation="napari.layers.Labels", label="Ground truth")
        self._iou = FloatSpinBox(value=0.5, min=0.05, max=0.95, step=0.05, label="Object IoU ≥")
        self._errors = CheckBox(value=True, text="Show errors layer (red = FP, blue = FN)")
        self._score_btn = PushButton(text="Score")
        self._summary = Label(value="Choose a prediction and its ground truth, then Score.")
        wrap_text(self._summary)
        self._table = Table(value={"data": [], "columns": list(COLUMNS)})
        self._fit_table_height()
        self._table.read_only = True
        self._csv = FileEdit(mode="w", filter="*.csv", label="CSV file")
        self._export_btn = PushButton(text="Export CSV")

        self.body.extend(
            [
                header("Layers"),
                Container(widgets=[self._pred, self._truth, self._iou], labels=True),
                self._errors,
                self._score_btn,
                header("Scores"),
                self._summary,
                self._table,
                Container(widgets=[self._csv], labels=True),
                self._export_btn,
            ]
        )
        bind(SECTION, "iou_threshold", self._iou)
        bind(SECTION, "error_layer", self._errors)
        bind(SECTION, "csv", self._csv, convert=Path)
        self._pred.changed.connect(self._on_pred_changed)
        self._score_btn.changed.connect(self._on_score_clicked)
        self._export_btn.changed.connect(self._on_export_clicked)
        connect_shutdown(self, self._runner)
        self._export_btn.enabled = False
        self._on_pred_changed(self._pred.value)

    @property
    def running(self) -> bool:
        """Whether scoring is running."""
        return self._runner.running

    def _on_pred_changed(self, pred: Any) -> None:
        """Default the ground truth to another Labels layer of the same shape."""
        from napari.layers import Labels

        if pred is None:
            return
        truth = self._truth.value
        shape = _layers.spatial_shape(pred)
        if truth is not None and truth is not pred and _layers.spatial_shape(truth) == shape:
            return
        for layer in self._viewer.layers:
            if (
                isinstance(layer, Labels)
                and layer is not pred
                and _layers.spatial_shape(layer) == shape
                and not layer.name.endswith((_layers.ERRORS, _layers.SEGMENTATION))
            ):
                self._truth.value = layer
                return

    def _on_score_clicked(self, *_: Any) -> None:
        self.score()

    def _fit_table_height(self, max_rows: int = 12) -> None:
        """As tall as its rows (up to ``max_rows``, then it scrolls): no empty block below."""
        table = self._table.native
        rows = max(1, min(table.rowCount(), max_rows))
        row_height = table.verticalHeader().defaultSectionSize()
        height = table.horizontalHeader().height() + rows * row_height + 2 * table.frameWidth()
        if table.horizontalScrollBar().isVisible():
            height += table.horizontalScrollBar().height()
        table.setFixedHeight(height + 2)

    def score(self) -> bool:
        """Score in a worker; returns False (and notifies) if the choice is not valid."""
        if self._runner.running:
            return False
        pred, truth = self._pred.value, self._truth.value
        try:
            if pred is None or truth is None:
                raise DataError(
                    "Choose two Labels layers: a prediction (e.g. '… segmentation') and its "
                    "ground truth."
                )
            if pred is truth:
                raise DataError(
                    f"Prediction and ground truth are the same layer ({pred.name!r}); choose "
                    "two different Labels layers (open or paint the ground truth first)."
                )
            if _layers.spatial_shape(pred) != _layers.spatial_shape(truth):
                raise DataError(
                    f"{pred.name!r} has shape {_layers.spatial_shape(pred)} but {truth.name!r} has "
                    f"{_layers.spatial_shape(truth)}; score layers of the same image."
                )
        except CytoUNetError as exc:
            notify_exception(exc)
            return False
        self._scoring = ScoredPair(prediction=pred, truth=truth)
        self._summary.value = f"Scoring {pred.name} against {truth.name}…"
        return start_job(
            self._runner,
            score_job,
            _layers.layer_array(pred),
            _layers.layer_array(truth),
            float(self._iou.value),
            bool(self._errors.value),
            what="Scoring",
            button=self._score_btn,
            status=self._summary,
            on_event=self._on_event,
        )

    def _on_event(self, event: tuple[Any, Any]) -> None:
        table, errors = event
        self.table_data = table
        values, names = table_rows(table)
        self._table.value = {"data": values, "index": names, "columns": list(COLUMNS)}
        self._table.native.resizeColumnsToContents()  # all 8 columns fit a normal dock
        self._fit_table_height()
        o = table.overall
        pred, truth = self._scoring.prediction, self._scoring.truth
        self._summary.value = (
            f"{pred.name} vs {truth.name}: Dice {o.dice:.3f}, IoU {o.iou:.3f}, "
            f"object F1 {o.object_f1:.3f} at IoU ≥ {table.iou_threshold:g} "
            f"({o.tp} matched, {o.fp} false, {o.fn} missed objects)."
        )
        self._export_btn.enabled = True
        if errors is not None and any(pred is la for la in self._viewer.layers):
            from napari.utils.colormaps import DirectLabelColormap

            name = _layers.output_name(pred.name, _layers.ERRORS)
            layer = _layers.put_labels(
                self._viewer,
                name,
                errors,
                pred,
                tag=_layers.output_tag(pred, _layers.ERRORS),
                opacity=0.8,
            )
            layer.colormap = DirectLabelColormap(color_dict=ERROR_COLORS)

    def _on_export_clicked(self, *_: Any) -> None:
        self.export_csv()

    def export_csv(self, path: str | Path | None = None) -> Path | None:
        """Write the last scores to ``path`` (default: the 'CSV file' field)."""
        if self.table_data is None:
            show_error("Nothing to export yet: press Score first.")
            return None
        path = Path(path) if path is not None else self._csv.value
        if not path or str(path) in ("", ".") or Path(path).is_dir():
            show_error("Choose a CSV file name to export to (e.g. scores.csv).")
            return None
        path = Path(path)
        if path.suffix.lower() != ".csv":
            path = path.with_name(path.name + ".csv")
        try:
            written = self.table_data.to_csv(path)
        except (OSError, CytoUNetError) as exc:
            show_error(f"Could not write {path}: {exc}. Choose a writable folder.")
            return None
        self._csv.value = Path(written)
        show_info(f"Saved the scores to {written}")
        return Path(written)
