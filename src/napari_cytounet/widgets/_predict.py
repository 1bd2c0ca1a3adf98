"""The "Predict" widget: segment an image, then correct and retrain.

Predicting writes ``"<image> segmentation"`` (a Labels layer) and, optionally,
``"<image> probability"`` (an Image layer) with the image's scale and
translate; running it again updates those layers instead of adding new ones.
"Current plane only" segments just the plane on screen of a large stack.

Lazy images (zarr arrays, dask arrays read from a zarr store, multiscale level 0) are
never loaded: with "Write to zarr" the engine segments them from the store's path into a
zarr output, shown as a lazy Labels layer (see :mod:`._predict_lazy`). Stopping keeps the
finished blocks; predicting again resumes.

Correct and retrain: fix the segmentation with napari's brush and eraser, then
press **Retrain with corrections** (one click). The widget copies your edits into
``"<image> corrections"`` — a layer of its own that no prediction ever
overwrites — fine-tunes the current model on it plus the pairs the model
learned from, and predicts again. Edits made to a segmentation layer are also
moved to the corrections layer before any new prediction replaces them, so no
edit is ever lost.
"""

from __future__ import annotations

import threading
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
    ProgressBar,
    PushButton,
    RadioButtons,
    SpinBox,
    create_widget,
)

from napari_cytounet.core.errors import CytoUNetError, DataError, ModelError
from napari_cytounet.engine import get_engine

from . import _layers
from ._common import (
    Failed,
    JobRunner,
    connect_shutdown,
    format_seconds,
    header,
    notify_exception,
    show_warning,
    wrap_text,
)
from ._jobs import (
    JobCancelled,
    ModelLoaded,
    engine_status,
    predict_job,
)
from ._live import LiveSection
from ._predict_lazy import (
    check_output,
    default_output,
    is_lazy,
    open_output,
    plane_only_fits,
    predict_zarr_job,
    zarr_source,
)
from ._predict_retrain import RetrainMixin
from ._scroll import ScrollingDock
from ._session import PredictionRecord, session_for
from ._settings import bind

if TYPE_CHECKING:
    import napari

SECTION = "predict"


@dataclass
class PredictionRun:
    """The prediction being run: which layer (and plane), and what comes back.

    ``index`` is the plane's leading index (``None``: the whole layer); ``output`` is the zarr
    store a lazy layer is segmented into (``None``: the result comes back as an array).
    """

    image: Any
    index: tuple[int, ...] | None
    probabilities: bool = False
    output: Path | None = None


class PredictWidget(RetrainMixin, ScrollingDock):
    """Segment an Image layer with the current model (or a model file); correct and retrain."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._session = session_for(viewer)
        self._runner = JobRunner("prediction")
        self._trainer = JobRunner("retraining")
        self._job: PredictionRun | None = None
        self.last_result: Any = None  # the last PredictionFinished (or ZarrPrediction) event
        self.last_training: Any = None  # the last TrainingFinished event of a retrain
        self._checkpoint: Any = None  # the last TrainingCheckpoint of a retrain
        self.predictions = 0  # number of predictions written (for tests and scripts)
        self.body.extend(
            [
                *self._build_model_section(),
                *self._build_segmentation_section(),
                *self._build_zarr_section(),
                *self._build_run_section(),
                *self._build_retrain_section(),
            ]
        )
        self._bind_settings()
        self._connect()
        self._on_image_changed()
        self._on_session_changed()
        get_engine().prestart()  # TensorFlow loads in the engine while the user gets ready

    # ------------------------------------------------------------------------------------------
    # sections of the widget, top to bottom
    def _build_model_section(self) -> list[Any]:
        self._image = create_widget(annotation="napari.layers.Image", label="Image")
        self._source = RadioButtons(
            label="Model",
            choices=(("current model", "current"), ("model file", "file")),
            value="current",
            orientation="horizontal",
        )
        self._model_file = FileEdit(
            mode="r", filter="*.keras *.h5 *.hdf5 *.zip *.yaml", label="Model file"
        )
        self._model_info = Label(value="")
        wrap_text(self._model_info)
        return [
            header("Image and model"),
            Container(widgets=[self._image, self._source, self._model_file], labels=True),
            self._model_info,
        ]

    def _build_segmentation_section(self) -> list[Any]:
        self._threshold = FloatSpinBox(value=0.5, min=0.01, max=0.99, step=0.05, label="Threshold")
        self._min_size = SpinBox(value=0, min=0, max=10_000_000, label="Min. object size (px)")
        self._fill_holes = CheckBox(value=True, text="Fill holes")
        self._instances = CheckBox(value=False, text="Instances (one label per cell)")
        self._split = CheckBox(value=False, text="Split touching cells")
        self._probabilities = CheckBox(value=False, text="Also show the probability map")
        self._plane_only = CheckBox(value=False, text="Current plane only (fast, for stacks)")
        self._views = CheckBox(value=False, text="Average 8 views (flips, rotations; 8x time)")
        self._views.tooltip = (
            "Predict each tile in 8 orientations and average the answers (test-time "
            "augmentation): a little more accurate at object edges, 8 times slower. "
            "Live mode shows this average."
        )
        return [
            header("Segmentation"),
            Container(widgets=[self._threshold, self._min_size], labels=True),
            self._fill_holes,
            self._instances,
            self._split,
            self._probabilities,
            self._plane_only,
            self._views,
        ]

    def _build_zarr_section(self) -> list[Any]:
        """Options shown for lazy (zarr- or dask-backed) images only."""
        self._to_zarr = CheckBox(value=True, text="Write to zarr (lazy image: never loaded)")
        self._zarr_path = FileEdit(mode="w", filter="*.zarr", label="Output .zarr")
        self._zarr_box = Container(widgets=[self._zarr_path], labels=True)
        self._zarr_info = Label(value="")
        wrap_text(self._zarr_info)
        return [self._to_zarr, self._zarr_box, self._zarr_info]

    def _build_run_section(self) -> list[Any]:
        self._predict_btn = PushButton(text="Predict")
        self._progress = ProgressBar(value=0, min=0, max=1000, label="Progress")
        self._status = Label(value="")
        wrap_text(self._status)
        return [self._predict_btn, self._progress, self._status]

    def _bind_settings(self) -> None:
        for key, widget in (
            ("source", self._source),
            ("threshold", self._threshold),
            ("min_size", self._min_size),
            ("fill_holes", self._fill_holes),
            ("instances", self._instances),
            ("split_touching", self._split),
            ("probabilities", self._probabilities),
            ("plane_only", self._plane_only),
            ("views", self._views),
            ("to_zarr", self._to_zarr),
            ("retrain_epochs", self._retrain_epochs),
        ):
            bind(SECTION, key, widget)
        bind(SECTION, "model_file", self._model_file, convert=Path)

    def _connect(self) -> None:
        self._source.changed.connect(self._update_visibility)
        self._instances.changed.connect(self._update_visibility)
        self._image.changed.connect(self._on_image_changed)
        self._to_zarr.changed.connect(self._update_visibility)
        self._plane_only.changed.connect(self._update_visibility)
        self._predict_btn.changed.connect(self._on_predict_clicked)
        self._retrain_btn.changed.connect(self._on_retrain_clicked)
        self._session.changed.connect(self._on_session_changed)
        connect_shutdown(
            self,
            self._runner,
            self._trainer,
            on_shutdown=lambda: self._session.set_busy(""),
            always=self._live.shutdown,
        )

    # ------------------------------------------------------------------------------------------
    def _update_visibility(self, *_: Any) -> None:
        self._model_file.visible = self._source.value == "file"
        self._split.enabled = bool(self._instances.value)
        image = self._image.value
        self._plane_only.enabled = image is not None and bool(_layers.leading_shape(image))
        lazy = image is not None and is_lazy(image)
        self._to_zarr.visible = self._zarr_info.visible = lazy
        self._zarr_box.visible = lazy and bool(self._to_zarr.value) and not self._one_plane()

    def _one_plane(self) -> bool:
        image = self._image.value
        return bool(self._plane_only.value and image is not None and _layers.leading_shape(image))

    def _on_image_changed(self, *_: Any) -> None:
        """A lazy image: find its zarr store and propose an output beside it."""
        image = self._image.value
        if image is not None and is_lazy(image):
            try:
                source = zarr_source(image)
            except CytoUNetError as exc:
                self._zarr_info.value = str(exc)
            else:
                self._zarr_path.value = default_output(source, image.name)
                self._zarr_info.value = (
                    f"Lazy image read from {source}: the engine reads it block by block and "
                    "writes the segmentation into the .zarr output, shown as a lazy layer. A "
                    "stopped run resumes when you predict again with the same settings."
                )
        self._update_visibility()

    def _on_session_changed(self) -> None:
        bundle = self._session.bundle
        if bundle is None:
            self._model_info.value = "No current model: train one, or choose a model file."
        else:
            u = bundle.unet
            self._model_info.value = (
                f"Current model: {bundle.name}, depth {u.depth}, {u.base_filters} filters, "
                f"{u.in_channels} channel(s); {self._session.source or 'loaded'}."
            )
        self._update_buttons()

    def _update_buttons(self) -> None:
        predicting = self._runner.running
        retraining = self._trainer.running
        self._predict_btn.text = "Cancel" if predicting else "Predict"
        self._predict_btn.enabled = not retraining
        self._retrain_btn.text = "Stop retraining" if retraining else "Retrain with corrections"
        self._retrain_btn.enabled = not predicting

    @property
    def live(self) -> LiveSection:
        """The Live corrections section (its loop, button and status)."""
        return self._live

    @property
    def running(self) -> bool:
        """Whether a prediction or a retraining is running."""
        return self._runner.running or self._trainer.running

    # ------------------------------------------------------------------------------------------
    # predicting
    def _on_predict_clicked(self, *_: Any) -> None:
        if not self._runner.running:
            self.predict()
        elif self._job is not None and self._job.output:
            # a zarr run: wait for the engine to stop writing, so that predicting again safely
            # resumes the store
            self._runner.request_stop()
            self._predict_btn.text = "Stopping…"
            self._predict_btn.enabled = False
            self._status.value = "Stopping after the blocks being written…"
        else:
            self._runner.abort()
            self._status.value = "Cancelled."

    def _model_choice(self, use_current: bool) -> tuple[Any, Path | None]:
        if use_current or self._source.value == "current":
            if self._session.bundle is None:
                raise ModelError(
                    "There is no current model: train one with 'Train UNet', or choose "
                    "'model file' and a .keras file."
                )
            return self._session.bundle, None
        path = self._model_file.value
        if not path or not Path(path).is_file():
            raise ModelError(f"No model file at {path!s}; choose a .keras model file.")
        if self._session.matches_file(path):
            return self._session.bundle, None
        return None, Path(path)

    def predict(self, *, use_current: bool = False) -> bool:
        """Segment the chosen image in a worker; returns False (and notifies) if it cannot."""
        if self.running:
            return False
        image = self._image.value
        try:
            if image is None:
                raise DataError("Choose an image layer to segment (open one, or a sample).")
            bundle, path = self._model_choice(use_current)
        except CytoUNetError as exc:
            notify_exception(exc)
            return False
        params = self._params()
        channel_axis = -1 if _layers.is_rgb(image) else None
        if is_lazy(image) and not self._one_plane():
            return self._predict_zarr(image, bundle, path, channel_axis, params)
        data = _layers.layer_array(image)
        index = None
        if self._one_plane():
            if is_lazy(image):
                try:
                    plane_only_fits(image)
                except CytoUNetError as exc:
                    notify_exception(exc)
                    return False
            index = _layers.plane_at_cursor(self._viewer, image)
            data = data[index]  # a lazy image reads this plane only
        where = f" (plane {','.join(map(str, index))})" if index else ""
        run = PredictionRun(image, index, probabilities=bool(self._probabilities.value))
        return self._start(
            run, f"Segmenting {image.name}{where}…", predict_job, bundle, path, data, channel_axis,
            params,
        )  # fmt: skip

    def _start(self, run: PredictionRun, status: str, job: Any, *args: Any) -> bool:
        """Start ``job(*args, stop)`` in the engine for ``run``, with a stop event of its own."""
        self._job = run
        self._progress.value = 0
        self._status.value = status
        stop = threading.Event()
        self._runner.start(
            job,
            *args,
            stop,
            on_event=self._on_predict_event,
            on_done=self._on_predict_done,
            stop_event=stop,
        )
        self._update_buttons()
        return True

    def _params(self) -> dict[str, Any]:
        return {
            "threshold": float(self._threshold.value),
            "min_size": int(self._min_size.value),
            "fill_holes": bool(self._fill_holes.value),
            "instances": bool(self._instances.value),
            "split_touching": bool(self._instances.value and self._split.value),
            "views": 8 if self._views.value else 1,
        }

    def _predict_zarr(self, image, bundle, path, channel_axis, params) -> bool:
        """Segment a lazy image into a zarr store in the engine (only paths travel)."""
        try:
            if not self._to_zarr.value:
                raise DataError(
                    f"{image.name!r} is a lazy (zarr or dask) image; predicting it whole in "
                    "memory could load more than fits. Tick 'Write to zarr', or 'Current "
                    "plane only' to segment the plane on screen."
                )
            if params.pop("views", 1) != 1:
                raise DataError(
                    "Averaging 8 views is not available when writing to zarr yet; untick "
                    "'Average 8 views' (or tick 'Current plane only')."
                )
            source = zarr_source(image)
            output = check_output(self._zarr_path.value, source)
        except CytoUNetError as exc:
            notify_exception(exc)
            return False
        return self._start(
            PredictionRun(image, None, output=output), f"Segmenting {image.name} into {output}…",
            predict_zarr_job, bundle, path, source, output, channel_axis, params,
        )  # fmt: skip

    def _on_predict_event(self, event: Any) -> None:
        from napari_cytounet.core.events import PredictionFinished, PredictionProgress
        from napari_cytounet.core.zarr_io import ZarrPrediction

        if self._runner.aborted:
            return
        stopping = self._runner.stop_event is not None and self._runner.stop_event.is_set()
        status = engine_status(event)
        if status is not None:
            self._status.value = status
        elif isinstance(event, JobCancelled):
            self._status.value = (
                f"Stopped. The finished blocks are kept in {self._job.output}: predict "
                "again with the same settings to resume."
            )
        elif stopping and isinstance(event, PredictionProgress):
            pass
        elif isinstance(event, Failed):
            self._status.value = "Prediction failed: see the notification."
            notify_exception(event.error, "Prediction", event.details)
        elif isinstance(event, PredictionProgress):
            planes = f" · plane {event.plane}/{event.planes}" if event.planes > 1 else ""
            self._status.value = (
                f"Writing the zarr output… {event.done}/{event.total} tasks"
                if self._job.output
                else f"Segmenting… tile {event.done}/{event.total}{planes}"
            )
            self._progress.value = int(1000 * event.fraction)  # last: Cancel may follow it
        elif isinstance(event, ModelLoaded):
            self._session.set_model(
                event.bundle, f"loaded from {event.path.resolve()}", training_pairs=[]
            )
            self._session.remember_file(event.path)
        elif isinstance(event, PredictionFinished):
            self._write_outputs(event)
        elif isinstance(event, ZarrPrediction):
            self._write_zarr_output(event)

    def _on_predict_done(self) -> None:
        self._update_buttons()

    def _write_outputs(self, event: Any) -> None:
        from napari.layers import Labels

        image = self._job.image
        index = self._job.index
        if not any(image is la for la in self._viewer.layers):
            show_warning(f"The image {image.name!r} was removed; the segmentation is not shown.")
            return
        seg_name = _layers.output_name(image.name, _layers.SEGMENTATION)
        existing = _layers.find_output(self._viewer, image, _layers.SEGMENTATION, Labels)
        if existing is not None:
            self.keep_edits(image, existing)
        labels = np.asarray(event.labels)
        layer = _layers.put_labels(
            self._viewer,
            seg_name,
            labels,
            image,
            index=index,
            tag=_layers.output_tag(image, _layers.SEGMENTATION),
        )
        record = self._session.records.get(image.name)
        self._session.records[image.name] = PredictionRecord(
            prediction=np.array(layer.data, copy=True),
            edits=record.edits if record is not None else None,
        )
        if self._job.probabilities:
            probs = np.asarray(event.probabilities, dtype=np.float32)
            _layers.put_image(
                self._viewer,
                _layers.output_name(image.name, _layers.PROBABILITY),
                probs,
                image,
                index=index,
                tag=_layers.output_tag(image, _layers.PROBABILITY),
                colormap="magma",
                contrast_limits=(0.0, 1.0),
                blending="additive",
                opacity=0.7,
            )
        self._viewer.layers.selection.active = layer
        self.last_result = event
        self.predictions += 1
        self._progress.value = 1000
        found = int(labels.max()) if self._instances.value and labels.size else None
        cells = f"{found} objects; " if found is not None else ""
        self._status.value = (
            f"Wrote {seg_name!r} ({cells}{format_seconds(event.seconds)}). Fix it with the brush, "
            "then 'Retrain with corrections'."
        )

    def _write_zarr_output(self, event: Any) -> None:
        """Show the finished zarr output as a lazy Labels layer (never loaded whole)."""
        from napari.layers import Labels

        image = self._job.image
        if not any(image is la for la in self._viewer.layers):
            show_warning(
                f"The image {image.name!r} was removed; the segmentation is in {event.path}."
            )
            return
        existing = _layers.find_output(self._viewer, image, _layers.SEGMENTATION, Labels)
        if existing is not None and isinstance(existing.data, np.ndarray):
            self.keep_edits(image, existing)
        seg_name = _layers.output_name(image.name, _layers.SEGMENTATION)
        layer = _layers.put_labels(
            self._viewer,
            seg_name,
            open_output(event.path),
            image,
            tag=_layers.output_tag(image, _layers.SEGMENTATION),
        )
        self._session.records.pop(image.name, None)  # edits of a zarr output stay in its store
        self._viewer.layers.selection.active = layer
        self.last_result = event
        self.predictions += 1
        self._progress.value = 1000
        resumed = f"; {event.skipped} blocks were already done" if event.skipped else ""
        self._status.value = (
            f"Wrote {seg_name!r} to {event.path} ({format_seconds(event.seconds)}{resumed}). "
            "The layer reads it lazily; brush edits are saved into the store."
        )
