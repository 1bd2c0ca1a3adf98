"""The Train UNet widget's run display: what a training run is at, and what it knows.

:class:`TrainingRun` is the typed state of one run (its request, and the events that matter
afterwards: the quality report, the last checkpoint, the result). :class:`TrainingProgress`
shows a run: the progress bar (the fraction the core computes), the status line, the live
plot of loss and Dice, and the notifications of the quality check and of the end. Part of the
Train widget (:mod:`._train`); no other widget imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Label, ProgressBar

from ._common import format_seconds, show_error, show_info, show_warning, wrap_text
from ._jobs import ModelLoaded, TrainingRequest
from ._plot import TrainingPlot

if TYPE_CHECKING:
    import napari

    from napari_cytounet.core.events import (
        BatchEnd,
        TrainingCheckpoint,
        TrainingFinished,
        TrainingStarted,
    )
    from napari_cytounet.core.quality import QualityReport

#: The progress bar's resolution (its maximum).
STEPS = 1000
#: The status line before the first run.
IDLE = "Choose an image and its labels, then press Train."
#: How the status line names the reasons training ended.
ENDINGS = {"stopped": "Stopped", "time": "Time budget reached", "epochs": "Done"}


@dataclass
class TrainingRun:
    """One training run of the widget: what was asked and what came back.

    Attributes
    ----------
    request
        The request sent to the engine.
    started
        The :class:`~napari_cytounet.core.events.TrainingStarted` event, once it came.
    report
        The quality check's :class:`~napari_cytounet.core.quality.QualityReport`.
    checkpoint
        The last :class:`~napari_cytounet.core.events.TrainingCheckpoint` (the best model so
        far, kept if the engine dies).
    result
        The :class:`~napari_cytounet.core.events.TrainingFinished` event of a finished run.

    Examples
    --------
    >>> run = TrainingRun(request)  # doctest: +SKIP
    >>> run.result is None  # doctest: +SKIP
    True
    """

    request: TrainingRequest
    started: TrainingStarted | None = None
    report: QualityReport | None = None
    checkpoint: TrainingCheckpoint | None = None
    result: TrainingFinished | None = None


def batch_text(event: BatchEnd) -> str:
    """The status line during an epoch: where it is, loss, Dice and the time left.

    Examples
    --------
    >>> from napari_cytounet.core.events import BatchEnd
    >>> batch_text(BatchEnd(2, 10, 5, 25, loss=0.31, dice=0.82, elapsed=12.0, remaining=75.0))
    'Epoch 2/10 · batch 5/25 · loss 0.310 · Dice 0.820 · 1 min 15 s left'
    """
    epochs = f"/{event.epochs}" if event.epochs else ""
    return (
        f"Epoch {event.epoch}{epochs} · batch {event.batch}/{event.batches} · "
        f"loss {event.loss:.3f} · Dice {event.dice:.3f} · "
        f"{format_seconds(event.remaining)} left"
    )


def started_text(event: TrainingStarted) -> str:
    """The status line once the engine has built the model.

    Examples
    --------
    >>> from napari_cytounet.core.events import TrainingStarted
    >>> text = started_text(TrainingStarted(2, None, 25, 128, 16, "float32", 3, 1, 1_940_817))
    >>> text.split(";")[0]
    'Training on 3 image(s) (1 for validation), 1,940,817 parameters, float32'
    """
    return (
        f"Training on {event.n_images} image(s) "
        f"({event.n_validation} for validation), {event.parameters:,} parameters, "
        f"{event.precision}; the first batch compiles the model…"
    )


class TrainingProgress:
    """The progress bar, status line and live plot of the Train widget.

    Parameters
    ----------
    viewer
        The napari viewer (the plot follows its theme).

    Examples
    --------
    >>> progress = TrainingProgress(viewer)  # doctest: +SKIP
    >>> progress.reset("Checking the training data…")  # doctest: +SKIP
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.bar = ProgressBar(value=0, min=0, max=STEPS, label="Progress")
        self.status = wrap_text(Label(value=IDLE))
        self.plot = TrainingPlot(viewer)

    def widgets(self) -> list[Any]:
        """The bar, the status line and the plot, in order."""
        return [self.bar, self.status, self.plot.widget]

    def reset(self, text: str) -> None:
        """A new run: empty plot, bar at zero, ``text`` on the status line."""
        self.plot.reset()
        self.bar.value = 0
        self.status.value = text

    def show(self, event: Any, *, stopping: bool = False) -> None:
        """Show a progress event of the run (others are ignored).

        While ``stopping``, the status line keeps saying so instead of the batch's figures.
        """
        from napari_cytounet.core.events import BatchEnd, EpochEnd, TrainingStarted

        if isinstance(event, BatchEnd):
            self.plot.add_batch(event)
            self.bar.value = int(STEPS * event.fraction)  # computed by the core
            if not stopping:
                self.status.value = batch_text(event)
        elif isinstance(event, EpochEnd):
            self.plot.add_epoch(event)
            self.bar.value = int(STEPS * event.fraction)  # computed by the core
            if stopping:
                self.status.value = "Stopped: keeping the best weights and finishing the model…"
        elif isinstance(event, TrainingStarted):
            self.status.value = started_text(event)
        elif isinstance(event, ModelLoaded):
            self.status.value = f"Loaded {event.path.name}; preparing training…"

    def show_stopping(self) -> None:
        """Stop was pressed: training ends after this batch."""
        self.status.value = "Stopping after this batch; keeping the best weights so far…"

    def show_report(self, report: QualityReport, *, force: bool) -> None:
        """The quality check's verdict: an error notification when it stops training."""
        if report.errors and not force:
            self.status.value = "Not trained: the quality check found problems."
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
            self.status.value = "Quality check done (with warnings); preparing training…"
        else:
            self.status.value = "Quality check passed; preparing training…"

    def show_finished(self, event: TrainingFinished) -> None:
        """Training ended with a model: full bar, summary and a notification."""
        self.bar.value = STEPS
        self.status.value = f"{ENDINGS.get(event.reason, 'Done')}. {event.summary}"
        if event.reason == "stopped":
            show_info(f"Training stopped; kept the best weights (epoch {event.best_epoch}).")
        else:
            show_info(f"Training finished. {event.summary}")

    def show_done(self, has_result: bool) -> None:
        """The job ended; say so when it ended without a model and without saying why."""
        if not has_result and not self.status.value.startswith(
            ("Not trained", "Training failed", "The engine stopped")
        ):
            self.status.value = "Training ended without a model."
