"""The "Train UNet" widget: train a model on Image + Labels layers.

The widget collects the chosen layer pairs as 2D arrays (every annotated plane
of a stack), checks them with the core's quality check, and runs
:func:`napari_cytounet.core.training.train` in a thread worker. The Train button
becomes Stop; stopping keeps the best weights so far. The trained model becomes
the session's current model (used by Predict and "Retrain with corrections")
and can be saved as a ``.keras`` bundle.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    RadioButtons,
    Select,
    SpinBox,
    TextEdit,
    create_widget,
)

from napari_cytounet.core.config import (
    BATCH_RANGE,
    DEPTH_RANGE,
    FILTERS_RANGE,
    LOSSES,
    PATCH_RANGE,
)
from napari_cytounet.core.errors import ConfigError, CytoUNetError, DataError, ModelError
from napari_cytounet.core.records import format_record
from napari_cytounet.engine import get_engine

from . import _layers
from ._common import (
    LABEL_MODES,
    Failed,
    JobRunner,
    collapsible,
    connect_shutdown,
    expand,
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
    start_save,
    training_job,
)
from ._live import LiveSection
from ._plot import TrainingPlot
from ._scroll import ScrollingDock
from ._session import session_for
from ._settings import bind

if TYPE_CHECKING:
    import napari

SECTION = "train"
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2)
#: How the widget names the config's losses (the choices come from config).
LOSS_NAMES = {"bce_dice": "BCE + Dice", "bce": "BCE", "dice": "Dice"}
MODEL_FILES = "*.keras *.h5 *.hdf5 *.zip *.yaml"


class TrainWidget(ScrollingDock):
    """Train a UNet on Image + Labels layers, with live progress and a Stop button."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._session = session_for(viewer)
        self._runner = JobRunner("training")
        self._saver = JobRunner("saving")
        self._extra_pairs: list[tuple[Any, Any]] = []
        self._request: TrainingRequest | None = None
        self._started: Any = None
        self._checkpoint: Any = None  # the last TrainingCheckpoint of the run
        self.last_result: Any = None  # the TrainingFinished event of the last run
        self.last_report: Any = None  # the quality report of the last run

        self._build_data()
        self._build_model()
        self._build_schedule()
        self._build_run()
        self._build_result()
        self._lay_out()
        self._bind_settings()
        self._connect()
        self._update_visibility()
        self._on_session_changed()
        get_engine().prestart()  # TensorFlow loads in the engine while the user gets ready

    # ------------------------------------------------------------------------------------------
    # building the widget (one short section each)
    def _build_data(self) -> None:
        self._image = create_widget(annotation="napari.layers.Image", label="Image")
        self._labels_layer = create_widget(annotation="napari.layers.Labels", label="Labels")
        self._mode = ComboBox(label="Labels are", choices=LABEL_MODES, value="dense")
        self._add_pair = PushButton(text="Add this pair to the training set")
        self._pairs = Select(
            label="Also train on", choices=[], tooltip="Pairs added with the button above"
        )
        self._remove_pair = PushButton(text="Remove selected pairs")
        self._val_image = create_widget(
            annotation="napari.layers.Image", label="Validation image", options={"nullable": True}
        )
        self._val_labels = create_widget(
            annotation="napari.layers.Labels", label="Validation labels", options={"nullable": True}
        )
        self._val_image.value = None
        self._val_labels.value = None
        self._pairs.native.setMaximumHeight(70)

    def _build_model(self) -> None:
        self._start_from = RadioButtons(
            label="Start from",
            choices=(("new", "new"), ("current", "current"), ("file", "file")),
            value="new",
            orientation="horizontal",
        )
        self._model_file = FileEdit(mode="r", filter=MODEL_FILES, label="Model file")
        self._depth = SpinBox(value=4, min=DEPTH_RANGE[0], max=DEPTH_RANGE[1], label="Depth")
        self._filters = SpinBox(
            value=16, min=FILTERS_RANGE[0], max=FILTERS_RANGE[1], label="Base filters"
        )
        self._batch_norm = CheckBox(value=True, text="Batch normalisation")
        self._dropout = FloatSpinBox(value=0.0, min=0.0, max=0.9, step=0.05, label="Dropout")
        self._arch = Container(
            widgets=[self._depth, self._filters, self._batch_norm, self._dropout], labels=True
        )

    def _build_schedule(self) -> None:
        self._stop_by = RadioButtons(
            label="Stop after",
            choices=(("epochs", "epochs"), ("time budget", "time")),
            value="epochs",
            orientation="horizontal",
        )
        self._epochs = SpinBox(value=20, min=1, max=100000, label="Epochs")
        self._minutes = FloatSpinBox(value=5.0, min=0.1, max=10000.0, step=0.5, label="Minutes")
        self._patch = SpinBox(
            value=128, min=PATCH_RANGE[0], max=PATCH_RANGE[1], step=16, label="Patch size"
        )
        self._batch = SpinBox(value=16, min=BATCH_RANGE[0], max=BATCH_RANGE[1], label="Batch size")
        self._steps = SpinBox(value=25, min=1, max=100000, label="Batches per epoch")
        self._lr = ComboBox(
            label="Learning rate", choices=[(f"{v:g}", v) for v in LEARNING_RATES], value=2e-3
        )
        self._loss = ComboBox(
            label="Loss", choices=[(LOSS_NAMES[loss], loss) for loss in LOSSES], value="bce_dice"
        )
        self._augment = CheckBox(value=True, text="Augment (flips, rotations, intensity)")
        self._force = CheckBox(value=False, text="Train despite quality-check errors")
        options = [self._patch, self._batch, self._steps, self._lr, self._loss]
        self._opts = Container(widgets=[*options, self._augment, self._force], labels=True)

    def _build_run(self) -> None:
        self._train_btn = PushButton(text="Train")
        self._progress = ProgressBar(value=0, min=0, max=1000, label="Progress")
        self._status = wrap_text(Label(value="Choose an image and its labels, then press Train."))
        self._plot = TrainingPlot(self._viewer)
        self._live = LiveSection(
            self._viewer,
            self._session,
            image=lambda: self._image.value,
            strokes=lambda: self._labels_layer.value,
            initial=self._live_start_model,
        )

    def _build_result(self) -> None:
        self._save_path = FileEdit(mode="w", filter="*.keras", label="Save as")
        self._save_btn = PushButton(text="Save model")
        self._record_btn = PushButton(text="Show training record")
        self._record = TextEdit(value="")
        self._record.native.setReadOnly(True)
        self._record.native.setStyleSheet("font-family: monospace;")  # aligned history table
        self._record.native.setMinimumHeight(180)

    def _lay_out(self) -> None:
        row = {"layout": "horizontal", "labels": False}
        self.body.extend(
            [
                header("Training data"),
                Container(widgets=[self._image, self._labels_layer, self._mode], labels=True),
                Container(widgets=[self._add_pair, self._remove_pair], **row),
                Container(widgets=[self._pairs, self._val_image, self._val_labels], labels=True),
                *self._live.widgets("Live: learn while you paint (scribbles)"),
                header("Model"),
                Container(widgets=[self._start_from, self._model_file], labels=True),
                self._arch,
                header("Training"),
                Container(widgets=[self._stop_by, self._epochs, self._minutes], labels=True),
                self._opts,
                self._train_btn,
                self._progress,
                self._status,
                self._plot.widget,
                header("Result"),
                Container(widgets=[self._save_path], labels=True),
                Container(widgets=[self._save_btn, self._record_btn], **row),
                self._record,
            ]
        )
        self._arch_box = collapsible(self.body, self._arch, "Architecture (new model)")
        self._opts_box = collapsible(self.body, self._opts, "Training options")
        self._record_shown = False

    def _bind_settings(self) -> None:
        for key, widget in (
            ("mode", self._mode),
            ("start_from", self._start_from),
            ("depth", self._depth),
            ("filters", self._filters),
            ("batch_norm", self._batch_norm),
            ("dropout", self._dropout),
            ("stop_by", self._stop_by),
            ("epochs", self._epochs),
            ("minutes", self._minutes),
            ("patch_size", self._patch),
            ("batch_size", self._batch),
            ("steps_per_epoch", self._steps),
            ("learning_rate", self._lr),
            ("loss", self._loss),
            ("augment", self._augment),
        ):
            bind(SECTION, key, widget)
        bind(SECTION, "model_file", self._model_file, convert=Path)
        bind(SECTION, "save_path", self._save_path, convert=Path)

    def _connect(self) -> None:
        self._image.changed.connect(self._on_image_changed)
        self._add_pair.changed.connect(self._on_add_pair)
        self._remove_pair.changed.connect(self._on_remove_pairs)
        self._start_from.changed.connect(self._update_visibility)
        self._stop_by.changed.connect(self._update_visibility)
        self._train_btn.changed.connect(self._on_train_clicked)
        self._save_btn.changed.connect(self._on_save_clicked)
        self._record_btn.changed.connect(self._on_record_clicked)
        self._session.changed.connect(self._on_session_changed)
        connect_shutdown(
            self,
            self._runner,
            self._saver,
            on_shutdown=lambda: self._session.set_busy(""),
            always=self._live.shutdown,
        )

    def _live_start_model(self) -> Any:
        """Live mode starts from the current model when 'Start from' says so, else the starter."""
        if self._start_from.value == "current":
            if self._session.bundle is None:
                raise ModelError("There is no current model to continue from live.")
            return self._session.bundle
        return None

    @property
    def live(self) -> LiveSection:
        """The Live section (its loop, button and status)."""
        return self._live

    # ------------------------------------------------------------------------------------------
    # layout helpers
    def _update_visibility(self, *_: Any) -> None:
        self._model_file.visible = self._start_from.value == "file"
        self._arch_box.setEnabled(self._start_from.value == "new")
        by_time = self._stop_by.value == "time"
        self._epochs.visible = not by_time
        self._minutes.visible = by_time

    def show_architecture(self, show: bool = True) -> None:
        """Expand (or collapse) the architecture section."""
        expand(self._arch_box, show)

    def show_options(self, show: bool = True) -> None:
        """Expand (or collapse) the training options section."""
        expand(self._opts_box, show)

    def show_record(self, show: bool = True) -> None:
        """Show (or hide) the training record of the current model."""
        self._record_shown = bool(show) and self._session.bundle is not None
        self._record.visible = self._record_shown
        self._record_btn.text = (
            "Hide training record" if self._record_shown else ("Show training record")
        )
        if self._record_shown:
            self._record.value = format_record(self._session.bundle)

    def reset_choices(self, *args: Any) -> None:
        """Refresh the layer choices (called by napari when layers change)."""
        super().reset_choices(*args)
        layers = list(self._viewer.layers)
        self._extra_pairs = [
            (img, lab)
            for img, lab in self._extra_pairs
            if any(img is la for la in layers) and any(lab is la for la in layers)
        ]
        self._refresh_pairs()

    def _refresh_pairs(self) -> None:
        self._pairs.choices = [
            (f"{img.name} + {lab.name}", (img.name, lab.name)) for img, lab in self._extra_pairs
        ]

    def _on_image_changed(self, image: Any) -> None:
        """Pick the labels drawn on the new image (same shape, named after it) if there are any."""
        if image is None:
            return
        from napari.layers import Labels

        shape = _layers.spatial_shape(image)
        current = self._labels_layer.value
        if (
            current is not None
            and _layers.spatial_shape(current) == shape
            and (current.name.startswith(image.name))
        ):
            return
        candidates = [
            la
            for la in self._viewer.layers
            if isinstance(la, Labels)
            and _layers.spatial_shape(la) == shape
            and not la.name.endswith(_layers.SEGMENTATION)
        ]
        named = [la for la in candidates if la.name.startswith(image.name)]
        pick = (named or candidates or [None])[0]
        if pick is not None:
            self._labels_layer.value = pick

    def _on_add_pair(self, *_: Any) -> None:
        image, labels = self._image.value, self._labels_layer.value
        try:
            _layers.check_pair(image, labels)
        except CytoUNetError as exc:
            notify_exception(exc)
            return
        if any(img is image and lab is labels for img, lab in self._extra_pairs):
            return
        self._extra_pairs.append((image, labels))
        self._refresh_pairs()

    def _on_remove_pairs(self, *_: Any) -> None:
        selected = set(self._pairs.value or [])
        self._extra_pairs = [
            (img, lab) for img, lab in self._extra_pairs if (img.name, lab.name) not in selected
        ]
        self._refresh_pairs()

    def _on_session_changed(self) -> None:
        has_model = self._session.bundle is not None
        self._save_btn.enabled = has_model and not self._runner.running
        self._record_btn.enabled = has_model
        if self._record_shown and has_model:
            self._record.value = format_record(self._session.bundle)

    # ------------------------------------------------------------------------------------------
    # collecting the request (main thread, fast checks only)
    def selected_pairs(self) -> list[tuple[Any, Any]]:
        """The current pair plus the added ones (each once)."""
        pairs = [(self._image.value, self._labels_layer.value)]
        for img, lab in self._extra_pairs:
            if not any(img is i and lab is la for i, la in pairs):
                pairs.append((img, lab))
        return pairs

    def training_config(self) -> Any:
        """The :class:`TrainingConfig` of the widget's settings (raises ConfigError)."""
        from napari_cytounet.core.config import TrainingConfig

        by_time = self._stop_by.value == "time"
        return TrainingConfig(
            epochs=None if by_time else int(self._epochs.value),
            max_time=float(self._minutes.value) * 60.0 if by_time else None,
            steps_per_epoch=int(self._steps.value),
            patch_size=int(self._patch.value),
            batch_size=int(self._batch.value),
            learning_rate=float(self._lr.value),
            loss=self._loss.value,
            labels=self._mode.value,
            augment=bool(self._augment.value),
        )

    def unet_config(self) -> Any:
        """The :class:`UNetConfig` of the architecture section (raises ConfigError)."""
        from napari_cytounet.core.config import UNetConfig

        return UNetConfig(
            depth=int(self._depth.value),
            base_filters=int(self._filters.value),
            batch_norm=bool(self._batch_norm.value),
            dropout=float(self._dropout.value),
        )

    def build_request(self) -> TrainingRequest:
        """Collect arrays and settings; raises a CytoUNetError for any bad choice."""
        images: list[Any] = []
        labels: list[Any] = []
        names: list[str] = []
        pair_names = []
        for image, lab in self.selected_pairs():
            imgs, labs, nms = _layers.training_pairs(image, lab)
            images += imgs
            labels += labs
            names += nms
            pair_names.append((image.name, lab.name))
        validation = validation_names = validation_pair = None
        val_image, val_labels = self._val_image.value, self._val_labels.value
        if (val_image is None) != (val_labels is None):
            raise DataError("Choose both a validation image and its labels, or neither.")
        if val_image is not None:
            if any(val_labels is lab for _, lab in self.selected_pairs()):
                raise DataError(
                    f"{val_labels.name!r} is used for training; validate on labels the model "
                    "does not train on (or set validation to none)."
                )
            vi, vl, validation_names = _layers.training_pairs(val_image, val_labels)
            validation = (vi, vl)
            validation_pair = (val_image.name, val_labels.name)
        config = self.training_config()
        request = TrainingRequest(
            images=images,
            labels=labels,
            names=names,
            config=config,
            validation=validation,
            validation_names=validation_names,
            force=bool(self._force.value),
            pair_names=pair_names,
            validation_pair=validation_pair,
        )
        start = self._start_from.value
        if start == "new":
            request.unet = self.unet_config()
        elif start == "current":
            if self._session.bundle is None:
                raise ModelError(
                    "There is no current model to continue from: train a new one first, or load "
                    "one (start from 'file', or the Model widget)."
                )
            request.initial = self._session.bundle
        else:
            path = self._model_file.value
            if not path or not Path(path).is_file():
                raise ModelError(
                    f"No model file at {path!s}; choose a .keras model to continue from."
                )
            request.model_path = Path(path)
        return request

    # ------------------------------------------------------------------------------------------
    # running
    @property
    def running(self) -> bool:
        """Whether a training job is running."""
        return self._runner.running

    def _on_train_clicked(self, *_: Any) -> None:
        if self._runner.running:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        """Start training with the widget's settings; returns False (and notifies) if it cannot."""
        if self._runner.running:
            return False
        if self._session.busy:
            show_error(
                f"The current model is busy ({self._session.busy}); wait for it to finish or "
                "stop it."
            )
            return False
        try:
            request = self.build_request()
        except (CytoUNetError, ConfigError) as exc:
            notify_exception(exc)
            return False
        self._request = request
        self.last_result = None
        self.last_report = None
        self._checkpoint = None
        self._plot.reset()
        self._progress.value = 0
        self._status.value = "Checking the training data…"
        self._train_btn.text = "Stop"
        self._save_btn.enabled = False
        self._session.set_busy("training")
        stop = threading.Event()
        self._runner.start(
            training_job,
            request,
            stop,
            on_event=self._on_event,
            on_done=self._on_done,
            stop_event=stop,
        )
        return True

    def stop(self) -> None:
        """Stop training after the current batch; the best weights so far are kept."""
        if not self._runner.running:
            return
        self._runner.request_stop()
        self._train_btn.text = "Stopping…"
        self._train_btn.enabled = False
        self._status.value = "Stopping after this batch; keeping the best weights so far…"

    def _on_event(self, event: Any) -> None:
        from napari_cytounet.core.events import (
            BatchEnd,
            EpochEnd,
            TrainingCheckpoint,
            TrainingFinished,
            TrainingStarted,
        )

        status = engine_status(event)
        if status is not None:
            self._status.value = status
        elif isinstance(event, Failed):
            self._on_failed(event)
        elif isinstance(event, BatchEnd):
            self._on_batch(event)
        elif isinstance(event, EpochEnd):
            self._plot.add_epoch(event)
            self._progress.value = int(1000 * event.fraction)  # computed by the core
            if self._stopping():
                self._status.value = "Stopped: keeping the best weights and finishing the model…"
        elif isinstance(event, TrainingCheckpoint):
            self._checkpoint = event
        elif isinstance(event, TrainingStarted):
            self._started = event
            self._status.value = (
                f"Training on {event.n_images} image(s) "
                f"({event.n_validation} for validation), {event.parameters:,} parameters, "
                f"{event.precision}; the first batch compiles the model…"
            )
        elif isinstance(event, TrainingFinished):
            self._on_finished(event)
        elif isinstance(event, ModelLoaded):
            self._status.value = f"Loaded {event.path.name}; preparing training…"
        elif hasattr(event, "issues"):  # the quality report
            self._on_report(event)

    def _on_failed(self, event: Failed) -> None:
        kept = keep_checkpoint(self._session, event.error, self._checkpoint, self._request)
        if kept is not None:
            self._status.value = kept
            return
        self._status.value = "Training failed: see the notification."
        notify_exception(event.error, "Training", event.details)

    def _stopping(self) -> bool:
        return self._runner.stop_event is not None and self._runner.stop_event.is_set()

    def _on_report(self, report: Any) -> None:
        self.last_report = report
        if report.errors and not (self._request and self._request.force):
            self._status.value = "Not trained: the quality check found problems."
            first = report.errors[0].message
            more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
            show_error(
                f"Not trained: {first}{more} Fix the labels (the Quality check widget lists "
                "every problem), or tick 'Train despite quality-check errors' under Training "
                "options."
            )
        elif report.errors or report.warnings:
            first = (report.errors or report.warnings)[0].message
            show_warning(f"Quality check: {report.summary()}. First: {first}")
            self._status.value = "Quality check done (with warnings); preparing training…"
        else:
            self._status.value = "Quality check passed; preparing training…"

    def _on_batch(self, event: Any) -> None:
        self._plot.add_batch(event)
        self._progress.value = int(1000 * event.fraction)  # computed by the core
        if self._stopping():
            return
        epochs = f"/{event.epochs}" if event.epochs else ""
        self._status.value = (
            f"Epoch {event.epoch}{epochs} · batch {event.batch}/{event.batches} · "
            f"loss {event.loss:.3f} · Dice {event.dice:.3f} · "
            f"{format_seconds(event.remaining)} left"
        )

    def _on_finished(self, event: Any) -> None:
        self.last_result = event
        request = self._request
        self._session.set_model(
            event.bundle,
            "trained in this session"
            if request is None or (request.initial is None and request.model_path is None)
            else "fine-tuned in this session",
            training_pairs=request.pair_names if request else [],
            validation_pair=request.validation_pair if request else None,
        )
        self._progress.value = 1000
        how = {"stopped": "Stopped", "time": "Time budget reached", "epochs": "Done"}.get(
            event.reason, "Done"
        )
        self._status.value = f"{how}. {event.summary}"
        if event.reason == "stopped":
            show_info(f"Training stopped; kept the best weights (epoch {event.best_epoch}).")
        else:
            show_info(f"Training finished. {event.summary}")

    def _on_done(self) -> None:
        self._train_btn.text = "Train"
        self._train_btn.enabled = True
        self._session.set_busy("")
        self._on_session_changed()
        if self.last_result is None and not self._status.value.startswith(
            ("Not trained", "Training failed", "The engine stopped")
        ):
            self._status.value = "Training ended without a model."

    # ------------------------------------------------------------------------------------------
    # saving and the record
    def _on_save_clicked(self, *_: Any) -> None:
        self.save()

    def save(self, path: str | Path | None = None) -> bool:
        """Save the current model to ``path`` (default: the 'Save as' field) in a worker."""
        target = start_save(
            self._session,
            self._saver,
            path if path is not None else self._save_path.value,
            on_saved=self._on_saved,
            on_done=self._on_session_changed,
        )
        if target is None:
            return False
        self._save_path.value = target
        self._save_btn.enabled = False
        self._status.value = f"Saving {target.name}…"
        return True

    def _on_saved(self, path: Path | None) -> None:
        if path is None:
            self._status.value = "Saving failed: see the notification."
        else:
            self._status.value = f"Saved the model to {path}."

    def _on_record_clicked(self, *_: Any) -> None:
        if self._session.bundle is None:
            show_error("There is no model yet: train or load one first.")
            return
        self.show_record(not self._record_shown)
