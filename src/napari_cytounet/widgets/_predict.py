"""The "Predict" widget: segment an image, then correct and retrain.

Predicting writes ``"<image> segmentation"`` (a Labels layer) and, optionally,
``"<image> probability"`` (an Image layer) with the image's scale and
translate; running it again updates those layers instead of adding new ones.
"Current plane only" segments just the plane on screen of a large stack.

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
from dataclasses import replace
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
    show_error,
    show_info,
    show_warning,
    wrap_text,
)
from ._jobs import (
    ModelLoaded,
    TrainingRequest,
    engine_status,
    keep_checkpoint,
    predict_job,
    training_job,
)
from ._live import LiveSection
from ._scroll import ScrollingDock
from ._session import PredictionRecord, session_for
from ._settings import bind

if TYPE_CHECKING:
    import napari

SECTION = "predict"


class PredictWidget(ScrollingDock):
    """Segment an Image layer with the current model (or a model file); correct and retrain."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._session = session_for(viewer)
        self._runner = JobRunner("prediction")
        self._trainer = JobRunner("retraining")
        self._job: dict[str, Any] = {}
        self.last_result: Any = None  # the last PredictionFinished event
        self.last_training: Any = None  # the last TrainingFinished event of a retrain
        self._checkpoint: Any = None  # the last TrainingCheckpoint of a retrain
        self.predictions = 0  # number of predictions written (for tests and scripts)

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
        self._threshold = FloatSpinBox(value=0.5, min=0.01, max=0.99, step=0.05, label="Threshold")
        self._min_size = SpinBox(value=0, min=0, max=10_000_000, label="Min. object size (px)")
        self._fill_holes = CheckBox(value=True, text="Fill holes")
        self._instances = CheckBox(value=False, text="Instances (one label per cell)")
        self._split = CheckBox(value=False, text="Split touching cells")
        self._probabilities = CheckBox(value=False, text="Also show the probability map")
        self._plane_only = CheckBox(value=False, text="Current plane only (fast, for stacks)")
        self._predict_btn = PushButton(text="Predict")
        self._progress = ProgressBar(value=0, min=0, max=1000, label="Progress")
        self._status = Label(value="")
        wrap_text(self._status)

        self._retrain_help = Label(
            value="Fix the segmentation with the brush and eraser, then retrain: your edits go "
            "to a '… corrections' layer that predictions never overwrite."
        )
        wrap_text(self._retrain_help)
        self._retrain_epochs = SpinBox(value=5, min=1, max=10000, label="Retrain epochs")
        self._retrain_btn = PushButton(text="Retrain with corrections")

        self._live = LiveSection(
            viewer,
            self._session,
            image=lambda: self._image.value,
            strokes=None,  # corrections are painted into "<image> strokes"
            initial=lambda: self._session.bundle,  # the current model (starter without one)
            keep_edits=self.keep_edits,
        )
        self.body.extend(
            [
                header("Image and model"),
                Container(widgets=[self._image, self._source, self._model_file], labels=True),
                self._model_info,
                header("Segmentation"),
                Container(widgets=[self._threshold, self._min_size], labels=True),
                self._fill_holes,
                self._instances,
                self._split,
                self._probabilities,
                self._plane_only,
                self._predict_btn,
                self._progress,
                self._status,
                header("Correct & retrain"),
                self._retrain_help,
                Container(widgets=[self._retrain_epochs], labels=True),
                self._retrain_btn,
                *self._live.widgets("Live corrections"),
            ]
        )
        for key, widget in (
            ("source", self._source),
            ("threshold", self._threshold),
            ("min_size", self._min_size),
            ("fill_holes", self._fill_holes),
            ("instances", self._instances),
            ("split_touching", self._split),
            ("probabilities", self._probabilities),
            ("plane_only", self._plane_only),
            ("retrain_epochs", self._retrain_epochs),
        ):
            bind(SECTION, key, widget)
        bind(SECTION, "model_file", self._model_file, convert=Path)

        self._source.changed.connect(self._update_visibility)
        self._instances.changed.connect(self._update_visibility)
        self._image.changed.connect(self._update_visibility)
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
        self._update_visibility()
        self._on_session_changed()
        get_engine().prestart()  # TensorFlow loads in the engine while the user gets ready

    # ------------------------------------------------------------------------------------------
    def _update_visibility(self, *_: Any) -> None:
        self._model_file.visible = self._source.value == "file"
        self._split.enabled = bool(self._instances.value)
        image = self._image.value
        self._plane_only.enabled = image is not None and bool(_layers.leading_shape(image))

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
        if self._runner.running:
            self._runner.abort()
            self._status.value = "Cancelled."
        else:
            self.predict()

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
        data = _layers.layer_array(image)
        index = None
        if self._plane_only.value and _layers.leading_shape(image):
            index = _layers.plane_at_cursor(self._viewer, image)
            data = data[index]
        params = {
            "threshold": float(self._threshold.value),
            "min_size": int(self._min_size.value),
            "fill_holes": bool(self._fill_holes.value),
            "instances": bool(self._instances.value),
            "split_touching": bool(self._instances.value and self._split.value),
        }
        self._job = {
            "image": image,
            "index": index,
            "probabilities": bool(self._probabilities.value),
        }
        self._progress.value = 0
        where = f" (plane {','.join(map(str, index))})" if index else ""
        self._status.value = f"Segmenting {image.name}{where}…"
        stop = threading.Event()
        self._runner.start(
            predict_job,
            bundle,
            path,
            data,
            -1 if _layers.is_rgb(image) else None,
            params,
            stop,
            on_event=self._on_predict_event,
            on_done=self._on_predict_done,
            stop_event=stop,
        )
        self._update_buttons()
        return True

    def _on_predict_event(self, event: Any) -> None:
        from napari_cytounet.core.events import PredictionFinished, PredictionProgress

        if self._runner.aborted:
            return
        status = engine_status(event)
        if status is not None:
            self._status.value = status
        elif isinstance(event, Failed):
            self._status.value = "Prediction failed: see the notification."
            notify_exception(event.error, "Prediction", event.details)
        elif isinstance(event, PredictionProgress):
            self._progress.value = int(1000 * event.fraction)
            planes = f" · plane {event.plane}/{event.planes}" if event.planes > 1 else ""
            self._status.value = f"Segmenting… tile {event.done}/{event.total}{planes}"
        elif isinstance(event, ModelLoaded):
            self._session.set_model(
                event.bundle, f"loaded from {event.path.resolve()}", training_pairs=[]
            )
            self._session.remember_file(event.path)
        elif isinstance(event, PredictionFinished):
            self._write_outputs(event)

    def _on_predict_done(self) -> None:
        self._update_buttons()

    def _write_outputs(self, event: Any) -> None:
        from napari.layers import Labels

        image = self._job["image"]
        index = self._job["index"]
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
        if self._job["probabilities"]:
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

    # ------------------------------------------------------------------------------------------
    # correct and retrain
    def keep_edits(self, image: Any, segmentation: Any, *, required: bool = False) -> Any:
        """Move the user's edits of ``segmentation`` into ``"<image> corrections"``.

        Returns the corrections layer, or ``None`` when there is nothing to keep.
        With ``required``, raises :class:`DataError` when there are no corrections.
        """
        from napari.layers import Labels

        record = self._session.records.get(image.name)
        current = np.asarray(segmentation.data)
        predicted = record.prediction if record is not None else None
        corr_name = _layers.output_name(image.name, _layers.CORRECTIONS)
        corr_layer = _layers.find_output(self._viewer, image, _layers.CORRECTIONS, Labels)
        unchanged = (
            predicted is not None
            and predicted.shape == current.shape
            and (np.array_equal(predicted, current))
        )
        if unchanged:
            if required and corr_layer is None:
                raise DataError(
                    f"{segmentation.name!r} has not been edited since it was predicted: fix it "
                    "with the brush and eraser first, then retrain."
                )
            return corr_layer
        previous = previous_edits = None
        if corr_layer is not None and tuple(corr_layer.data.shape) == current.shape:
            previous = np.asarray(corr_layer.data)
            previous_edits = (
                record.edits
                if record is not None
                and record.edits is not None
                and record.edits.shape == current.shape
                else np.ones(current.shape, bool)
            )
        corrections, edits = _layers.merge_corrections(current, predicted, previous, previous_edits)
        already_kept = previous is not None and np.array_equal(previous, corrections)
        self._session.records[image.name] = PredictionRecord(
            prediction=predicted if predicted is not None else np.array(current, copy=True),
            edits=edits,
        )
        if already_kept:  # e.g. the prediction right after a retrain: nothing new to keep
            return corr_layer
        corr_layer = _layers.put_labels(
            self._viewer,
            corr_name,
            corrections,
            image,
            tag=_layers.output_tag(image, _layers.CORRECTIONS),
            visible=False,
        )
        if not required:
            show_info(f"Kept your edits of {segmentation.name!r} in the layer {corr_name!r}.")
        return corr_layer

    def _on_retrain_clicked(self, *_: Any) -> None:
        if self._trainer.running:
            self._trainer.request_stop()
            self._retrain_btn.text = "Stopping…"
            self._status.value = "Stopping after this batch; keeping the best weights so far…"
        else:
            self.retrain()

    def build_retrain_request(self) -> TrainingRequest:
        """Copy the edits to the corrections layer and collect the training data."""
        from napari.layers import Image, Labels

        from napari_cytounet.core.config import TrainingConfig

        image = self._image.value
        if image is None:
            raise DataError("Choose the image whose segmentation you corrected.")
        bundle = self._session.bundle
        if bundle is None:
            raise ModelError("There is no current model to retrain: train or load one first.")
        seg_name = _layers.output_name(image.name, _layers.SEGMENTATION)
        segmentation = _layers.find_output(self._viewer, image, _layers.SEGMENTATION, Labels)
        if segmentation is None:
            raise DataError(
                f"There is no {seg_name!r} layer: predict {image.name!r} first, fix the result "
                "with the brush and eraser, then retrain."
            )
        _layers.check_pair(image, segmentation)
        corrections = self.keep_edits(image, segmentation, required=True)
        record = self._session.records.get(image.name)
        planes = None
        if _layers.leading_shape(image):
            planes = (
                _layers.edited_planes(record.edits) if record and record.edits is not None else []
            )
            if not planes:
                raise DataError(
                    f"No plane of {seg_name!r} was edited: fix at least one plane with the brush."
                )
        mode = bundle.label_mode or "dense"
        data = np.asarray(corrections.data)
        if mode == "scribbles":
            data = _layers.as_scribbles(data)
        images, labels, names = _layers.training_pairs(
            image, corrections, planes=planes, labels_data=data
        )
        pair_names = [(image.name, corrections.name)]
        for img_name, lab_name in self._session.training_pairs:
            if img_name == image.name or (img_name, lab_name) in pair_names:
                continue
            img = _layers.find_layer(self._viewer, img_name, Image)
            lab = _layers.find_layer(self._viewer, lab_name, Labels)
            if img is None or lab is None:
                continue
            try:
                more = _layers.training_pairs(img, lab)
            except CytoUNetError as exc:
                show_warning(f"Not retraining on {img_name} + {lab_name}: {exc}")
                continue
            images += more[0]
            labels += more[1]
            names += more[2]
            pair_names.append((img_name, lab_name))
        validation = validation_names = validation_pair = None
        if self._session.validation_pair and self._session.validation_pair[0] != image.name:
            vi = _layers.find_layer(self._viewer, self._session.validation_pair[0], Image)
            vl = _layers.find_layer(self._viewer, self._session.validation_pair[1], Labels)
            if vi is not None and vl is not None:
                with_val = _layers.training_pairs(vi, vl)
                validation, validation_names = (with_val[0], with_val[1]), with_val[2]
                validation_pair = self._session.validation_pair
        base = bundle.training or TrainingConfig()
        config = replace(base, epochs=int(self._retrain_epochs.value), max_time=None, labels=mode)
        return TrainingRequest(
            images=images,
            labels=labels,
            names=names,
            config=config,
            initial=bundle,
            validation=validation,
            validation_names=validation_names,
            force=False,
            pair_names=pair_names,
            validation_pair=validation_pair,
        )

    def retrain(self) -> bool:
        """Retrain the current model with the corrections, then predict again."""
        if self.running:
            return False
        if self._session.busy:
            show_error(
                f"The current model is busy ({self._session.busy}); wait for it to finish or "
                "stop it."
            )
            return False
        try:
            request = self.build_retrain_request()
        except CytoUNetError as exc:
            notify_exception(exc)
            return False
        self._retrain_request = request
        self.last_training = None
        self._checkpoint = None
        self._progress.value = 0
        self._status.value = f"Retraining on {len(request.images)} image(s)…"
        self._session.set_busy("retraining")
        stop = threading.Event()
        self._trainer.start(
            training_job,
            request,
            stop,
            on_event=self._on_retrain_event,
            on_done=self._on_retrain_done,
            stop_event=stop,
        )
        self._update_buttons()
        return True

    def _on_retrain_event(self, event: Any) -> None:
        from napari_cytounet.core.events import (
            BatchEnd,
            EpochEnd,
            TrainingCheckpoint,
            TrainingFinished,
        )

        status = engine_status(event)
        if status is not None:
            self._status.value = status
        elif isinstance(event, Failed):
            self._on_retrain_failed(event)
        elif isinstance(event, TrainingCheckpoint):
            self._checkpoint = event
        elif isinstance(event, BatchEnd):
            self._progress.value = int(1000 * min(1.0, event.fraction))
            self._status.value = (
                f"Retraining: epoch {event.epoch}/{event.epochs} · batch {event.batch}/"
                f"{event.batches} · loss {event.loss:.3f} · Dice {event.dice:.3f} · "
                f"{format_seconds(event.remaining)} left"
            )
        elif isinstance(event, EpochEnd):
            pass
        elif isinstance(event, TrainingFinished):
            request = self._retrain_request
            self.last_training = event
            self._session.set_model(
                event.bundle,
                "retrained with corrections in this session",
                training_pairs=request.pair_names,
                validation_pair=request.validation_pair,
            )
            self._status.value = f"Retrained. {event.summary}"
        elif hasattr(event, "issues"):
            if event.errors:
                show_error(f"Not retrained: {event.summary()} Fix the corrections and try again.")
            elif event.warnings:
                show_warning(f"Quality check: {event.summary()}")

    def _on_retrain_failed(self, event: Failed) -> None:
        kept = keep_checkpoint(self._session, event.error, self._checkpoint, self._retrain_request)
        if kept is not None:
            self._status.value = kept
            return
        self._status.value = "Retraining failed: see the notification."
        notify_exception(event.error, "Retraining", event.details)

    def _on_retrain_done(self) -> None:
        self._session.set_busy("")
        self._update_buttons()
        if self.last_training is not None:
            self._source.value = "current"
            self.predict(use_current=True)
