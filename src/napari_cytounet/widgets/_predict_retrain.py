"""Correct and retrain, the lower half of the Predict widget (a mixin of PredictWidget).

Edits of a segmentation are moved to ``"<image> corrections"`` (a layer no prediction ever
overwrites); **Retrain with corrections** fine-tunes the current model on them, plus the pairs
the model learned from, then predicts again.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import numpy as np
from magicgui.widgets import Container, Label, PushButton, SpinBox

from napari_cytounet.core.errors import CytoUNetError, DataError, ModelError

from . import _layers
from ._common import (
    Failed,
    format_seconds,
    header,
    notify_exception,
    show_error,
    show_info,
    show_warning,
    wrap_text,
)
from ._jobs import TrainingRequest, engine_status, keep_checkpoint, training_job
from ._live import LiveSection
from ._session import PredictionRecord


class RetrainMixin:
    """The "Correct & retrain" section of :class:`~._predict.PredictWidget`.

    It uses the widget's viewer, session, image field, status line, progress bar,
    runners and ``predict``.
    """

    def _build_retrain_section(self) -> list[Any]:
        self._retrain_help = Label(
            value="Fix the segmentation with the brush and eraser, then retrain: your edits go "
            "to a '… corrections' layer that predictions never overwrite."
        )
        wrap_text(self._retrain_help)
        self._retrain_epochs = SpinBox(value=5, min=1, max=10000, label="Retrain epochs")
        self._retrain_btn = PushButton(text="Retrain with corrections")
        self._live = LiveSection(
            self._viewer,
            self._session,
            image=lambda: self._image.value,
            strokes=None,  # corrections are painted into "<image> strokes"
            initial=lambda: self._session.bundle,  # the current model (starter without one)
            keep_edits=self.keep_edits,
        )
        return [
            header("Correct & retrain"),
            self._retrain_help,
            Container(widgets=[self._retrain_epochs], labels=True),
            self._retrain_btn,
            *self._live.widgets("Live corrections"),
        ]

    # ------------------------------------------------------------------------------------------
    # correct and retrain
    def keep_edits(self, image: Any, segmentation: Any, *, required: bool = False) -> Any:
        """Move the user's edits of ``segmentation`` into ``"<image> corrections"``.

        Returns the corrections layer, or ``None`` when there is nothing to keep.
        With ``required``, raises :class:`DataError` when there are no corrections.
        """
        from napari.layers import Labels

        if not isinstance(segmentation.data, np.ndarray):  # a lazy zarr output: edits are
            if required:  # saved into its store; retraining on a whole stack is not lazy
                raise DataError(
                    f"{segmentation.name!r} is a zarr store (your edits are saved in it). To "
                    "retrain, segment with 'Current plane only', fix that plane, then retrain."
                )
            return None
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
        if self._session.refuse_if_busy():
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
            QualityChecked,
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
        elif isinstance(event, QualityChecked):
            report = event.reports[0]
            if report.errors:
                show_error(f"Not retrained: {report.summary()} Fix the corrections and try again.")
            elif report.warnings:
                show_warning(f"Quality check: {report.summary()}")

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
