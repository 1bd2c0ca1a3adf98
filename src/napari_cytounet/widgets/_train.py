"""The "Train UNet" widget: train a model on Image + Labels layers.

The widget collects the chosen layer pairs as 2D arrays (every annotated plane
of a stack) and sends them to the engine process, where the core's quality check
runs, then :func:`napari_cytounet.core.training.train`. The Train button
becomes Stop; stopping keeps the best weights so far. The trained model becomes
the session's current model (used by Predict and "Retrain with corrections")
and can be saved as a ``.keras`` bundle.

Its parts live in modules of their own: the training data section
(:mod:`._train_data`), the request sent to the engine (:mod:`._train_request`), the
display of a run (:mod:`._train_progress`) and the Result section (:mod:`._train_result`).
This module builds the sections, lays them out and runs the job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    PushButton,
    RadioButtons,
    SpinBox,
)

from napari_cytounet.core.config import (
    BATCH_RANGE,
    DEPTH_RANGE,
    DEVICE_CHOICES,
    FILTERS_RANGE,
    LOSSES,
    PATCH_RANGE,
)
from napari_cytounet.core.errors import ConfigError, CytoUNetError, ModelError
from napari_cytounet.engine import get_engine

from ._common import (
    Failed,
    JobRunner,
    collapsible,
    connect_shutdown,
    expand,
    header,
    notify_exception,
)
from ._jobs import TrainingRequest, keep_checkpoint, start_job, training_job
from ._live import LiveSection
from ._scroll import ScrollingDock
from ._session import session_for
from ._settings import bind
from ._train_data import TrainingData
from ._train_progress import TrainingProgress, TrainingRun
from ._train_request import StartingPoint, build_training_request, model_source
from ._train_result import TrainingResult

if TYPE_CHECKING:
    import napari

    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.events import TrainingCheckpoint, TrainingFinished
    from napari_cytounet.core.quality import QualityReport

SECTION = "train"
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2)
#: How the widget names the config's losses (the choices come from config).
LOSS_NAMES = {"bce_dice": "BCE + Dice", "bce": "BCE", "dice": "Dice"}
MODEL_FILES = "*.keras *.h5 *.hdf5 *.zip *.yaml"
#: The widget's persistent settings: settings key -> attribute of the field.
SETTINGS = {
    "mode": "_mode",
    "start_from": "_start_from",
    "depth": "_depth",
    "filters": "_filters",
    "batch_norm": "_batch_norm",
    "dropout": "_dropout",
    "stop_by": "_stop_by",
    "epochs": "_epochs",
    "minutes": "_minutes",
    "patch_size": "_patch",
    "batch_size": "_batch",
    "steps_per_epoch": "_steps",
    "learning_rate": "_lr",
    "loss": "_loss",
    "devices": "_devices",
    "augment": "_augment",
}


class TrainWidget(ScrollingDock):
    """Train a UNet on Image + Labels layers, with live progress and a Stop button."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._session = session_for(viewer)
        self._runner = JobRunner("training")
        self._run: TrainingRun | None = None  # the last (or running) training run

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
        self._data = data = TrainingData(self._viewer)
        self._image, self._labels_layer, self._mode = data.image, data.labels, data.mode
        self._add_pair = data.add_pair
        self._val_image, self._val_labels = data.val_image, data.val_labels

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
        self._devices = ComboBox(
            label="Devices",
            choices=[(label, value) for value, label in DEVICE_CHOICES.items()],
            value="auto",
            tooltip="Where the engine trains; the batch size is split across the devices.",
        )
        self._augment = CheckBox(value=True, text="Augment (flips, rotations, intensity)")
        self._force = CheckBox(value=False, text="Train despite quality-check errors")
        options = [self._patch, self._batch, self._steps, self._lr, self._loss, self._devices]
        self._opts = Container(widgets=[*options, self._augment, self._force], labels=True)

    def _build_run(self) -> None:
        self._train_btn = PushButton(text="Train")
        self._display = TrainingProgress(self._viewer)
        self._progress, self._status = self._display.bar, self._display.status
        self._plot = self._display.plot
        self._live = LiveSection(
            self._viewer,
            self._session,
            image=lambda: self._image.value,
            strokes=lambda: self._labels_layer.value,
            initial=self._live_start_model,
        )

    def _build_result(self) -> None:
        self._result = result = TrainingResult(
            self._session, self._status, on_done=self._on_session_changed
        )
        self._save_path, self._save_btn = result.save_path, result.save_btn
        self._record, self._record_btn, self._saver = result.record, result.record_btn, result.saver

    def _lay_out(self) -> None:
        self.body.extend(
            [
                header("Training data"),
                *self._data.widgets(),
                *self._live.widgets("Live: learn while you paint (scribbles)"),
                header("Model"),
                Container(widgets=[self._start_from, self._model_file], labels=True),
                self._arch,
                header("Training"),
                Container(widgets=[self._stop_by, self._epochs, self._minutes], labels=True),
                self._opts,
                self._train_btn,
                *self._display.widgets(),
                header("Result"),
                *self._result.widgets(),
            ]
        )
        self._arch_box = collapsible(self.body, self._arch, "Architecture (new model)")
        self._opts_box = collapsible(self.body, self._opts, "Training options")

    def _bind_settings(self) -> None:
        for key, attribute in SETTINGS.items():
            bind(SECTION, key, getattr(self, attribute))
        bind(SECTION, "model_file", self._model_file, convert=Path)
        bind(SECTION, "save_path", self._save_path, convert=Path)

    def _connect(self) -> None:
        self._start_from.changed.connect(self._update_visibility)
        self._stop_by.changed.connect(self._update_visibility)
        self._train_btn.changed.connect(self._on_train_clicked)
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
        self._result.show_record(show)

    @property
    def _record_shown(self) -> bool:
        return self._result.record_shown

    def reset_choices(self, *args: Any) -> None:
        """Refresh the layer choices (called by napari when layers change)."""
        super().reset_choices(*args)
        self._data.forget_removed_layers()

    def _on_session_changed(self) -> None:
        self._result.refresh(training=self._runner.running)

    # ------------------------------------------------------------------------------------------
    # collecting the request (main thread, fast checks only)
    def selected_pairs(self) -> list[tuple[Any, Any]]:
        """The current pair plus the added ones (each once)."""
        return self._data.selected_pairs()

    def training_config(self) -> TrainingConfig:
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
            devices=self._devices.value,
            labels=self._mode.value,
            augment=bool(self._augment.value),
        )

    def unet_config(self) -> UNetConfig:
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
        start = self._start_from.value
        point = StartingPoint(
            start,
            unet=self.unet_config() if start == "new" else None,
            current=self._session.bundle,
            model_file=self._model_file.value,
        )
        return build_training_request(
            self._data.selected_pairs(),
            self._data.validation_pair(),
            self.training_config(),
            point,
            force=bool(self._force.value),
        )

    # ------------------------------------------------------------------------------------------
    # running
    @property
    def running(self) -> bool:
        """Whether a training job is running."""
        return self._runner.running

    @property
    def last_result(self) -> TrainingFinished | None:
        """The :class:`TrainingFinished` event of the last run (``None`` without a model)."""
        return self._run.result if self._run is not None else None

    @property
    def last_report(self) -> QualityReport | None:
        """The quality report of the last run."""
        return self._run.report if self._run is not None else None

    @property
    def _checkpoint(self) -> TrainingCheckpoint | None:
        """The last :class:`TrainingCheckpoint` of the last run (the best model so far)."""
        return self._run.checkpoint if self._run is not None else None

    def _on_train_clicked(self, *_: Any) -> None:
        if self._runner.running:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        """Start training with the widget's settings; returns False (and notifies) if it cannot."""
        if self._runner.running:
            return False
        if self._session.refuse_if_busy():
            return False
        try:
            request = self.build_request()
        except (CytoUNetError, ConfigError) as exc:
            notify_exception(exc)
            return False
        self._run = TrainingRun(request)
        self._display.reset("Checking the training data…")
        self._train_btn.text = "Stop"
        self._save_btn.enabled = False
        self._session.set_busy("training")
        return start_job(
            self._runner,
            training_job,
            request,
            what="Training",
            status=self._status,
            on_event=self._on_event,
            on_failed=self._keep_checkpoint,
            on_done=self._on_done,
            stoppable=True,
        )

    def stop(self) -> None:
        """Stop training after the current batch; the best weights so far are kept."""
        if not self._runner.running:
            return
        self._runner.request_stop()
        self._train_btn.text = "Stopping…"
        self._train_btn.enabled = False
        self._display.show_stopping()

    def _stopping(self) -> bool:
        return self._runner.stop_event is not None and self._runner.stop_event.is_set()

    def _on_event(self, event: Any) -> None:
        from napari_cytounet.core.events import (
            QualityChecked,
            TrainingCheckpoint,
            TrainingFinished,
            TrainingStarted,
        )

        run = self._run
        if isinstance(event, TrainingCheckpoint):
            run.checkpoint = event
        elif isinstance(event, TrainingFinished):
            self._on_finished(run, event)
        elif isinstance(event, QualityChecked):
            run.report = event.reports[0]
            self._display.show_report(run.report, force=run.request.force)
        else:
            if isinstance(event, TrainingStarted):
                run.started = event
            self._display.show(event, stopping=self._stopping())

    def _keep_checkpoint(self, event: Failed) -> str | None:
        """The engine died: keep the best model so far (its status text), else ``None``."""
        run = self._run
        return keep_checkpoint(self._session, event.error, run.checkpoint, run.request)

    def _on_finished(self, run: TrainingRun, event: TrainingFinished) -> None:
        run.result = event
        self._session.set_model(
            event.bundle,
            model_source(run.request),
            training_pairs=run.request.pair_names,
            validation_pair=run.request.validation_pair,
        )
        self._display.show_finished(event)

    def _on_done(self) -> None:
        self._train_btn.text = "Train"
        self._train_btn.enabled = True
        self._session.set_busy("")
        self._on_session_changed()
        self._display.show_done(self.last_result is not None)

    def save(self, path: str | Path | None = None) -> bool:
        """Save the current model to ``path`` (default: the 'Save as' field) in a worker."""
        return self._result.save(path)
