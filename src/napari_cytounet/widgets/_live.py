"""Live mode: the UNet keeps learning while you paint, and its answer refreshes by itself.

The loop users live in: paint a few strokes, see a segmentation within seconds, fix what is
wrong, see it improve. :class:`LiveSection` adds a **Live** button to a widget. While live:

- every few seconds, if the strokes changed (or for a few rounds after they did, to keep
  learning), the image and the strokes go to the engine process, where an
  :class:`~napari_cytounet.core.interactive.InteractiveSession` stays warm between rounds
  (model built and compiled once; a round never makes the model worse on your strokes);
- each answer is written to the image's segmentation layer, which is locked (not editable)
  while live so that no stroke lands where the next answer would replace it;
- new strokes are picked up without another click. Strokes are scribbles: 2 = cell,
  1 = background, 0 = not annotated. The Train widget reads them from its Labels layer; the
  Predict widget paints corrections into a layer of their own, ``"<image> strokes"``.

**Stop** keeps what was learned: the live model becomes the viewer's current model (Predict,
Save, Export use it). Closing the widget stops the loop. Only the strokes are copied in
napari's process (milliseconds); TensorFlow never runs there, so the GUI stays responsive.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui.widgets import Container, FloatSpinBox, Label, PushButton

from napari_cytounet.core.errors import CytoUNetError, DataError
from napari_cytounet.engine import get_engine
from napari_cytounet.engine.events import LiveModel

from . import _layers
from ._common import Failed, JobRunner, header, notify_exception, show_info, wrap_text
from ._jobs import engine_status, start_job

#: Seconds of the first round (the engine and the model start in it).
FIRST_ROUND_SECONDS = 5.0
#: Rounds run after the strokes last changed, to keep learning, before the loop waits.
ROUNDS_AFTER_CHANGE = 2
#: How often the loop looks for new strokes (milliseconds).
TICK_MS = 250
#: The strokes layer the Predict widget paints corrections into.
STROKES = "strokes"

_keys = itertools.count(1)


def live_round_job(
    key: str, image: Any, labels: Any, seconds: float, initial: Any, stop: threading.Event
):
    """One round of the live loop in the engine; yields the core's interactive events."""
    yield from get_engine().run(
        "live_update",
        key=key,
        image=image,
        labels=labels,
        seconds=seconds,
        initial=initial,
        stop=stop,
    )


def live_model_job(key: str):
    """The live session's model from the engine; yields :class:`LiveModel`."""
    yield from get_engine().run("live_model", key=key)


class LiveSection:
    """The Live button, its settings and the loop, for one widget.

    Parameters
    ----------
    viewer
        The napari viewer.
    session
        The viewer's :class:`~._session.SessionModel` (its current model is the starting
        point when ``initial`` says so, and receives the live model on Stop).
    image
        Returns the Image layer to segment.
    strokes
        Returns the Labels layer of strokes, or ``None`` to paint into ``"<image> strokes"``
        (created when needed).
    initial
        Returns the bundle to start from (``None``: the starter model shipped in the package).
    keep_edits
        Called with the image and its segmentation layer before the first answer replaces
        it, so that edits the user made there are kept (the Predict widget's corrections).
    """

    def __init__(
        self,
        viewer: Any,
        session: Any,
        *,
        image: Callable[[], Any],
        strokes: Callable[[], Any] | None,
        initial: Callable[[], Any],
        keep_edits: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self._viewer = viewer
        self._keep_edits = keep_edits
        self._session = session
        self._image_of, self._strokes_of, self._initial_of = image, strokes, initial
        self.runner = JobRunner("live round")
        self._fetcher = JobRunner("live model")
        self.button = PushButton(text="Live")
        self.seconds = FloatSpinBox(
            value=4.0, min=1.0, max=120.0, step=1.0, label="Seconds per round"
        )
        self.status = wrap_text(Label(value=""))
        self.button.changed.connect(lambda *_: self.toggle())
        self._timer: Any = None
        self._key = ""
        self._image: Any = None
        self._strokes: Any = None
        self._output: Any = None
        self._version = 0  # strokes changes seen
        self._sent_version = -1  # strokes version of the last round sent
        self._idle_rounds = 0
        self._stopping = False
        self.rounds = 0  # rounds answered (for tests and scripts)
        self.last_round: Any = None  # the last RoundFinished
        self.live = False

    def widgets(self, title: str = "Live") -> list[Any]:
        """The section's widgets, in order (its header first)."""
        return [
            header(title),
            Container(widgets=[self.seconds], labels=True),
            self.button,
            self.status,
        ]

    # -- starting and stopping ---------------------------------------------------------------
    def toggle(self) -> None:
        """Start the loop, or stop it (keeping the model)."""
        if self.live:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        """Start the live loop; returns False (and notifies) if it cannot."""
        if self.live:
            return False
        if self._session.busy:
            notify_exception(
                DataError(f"The current model is busy ({self._session.busy}); wait or stop it.")
            )
            return False
        try:
            self._image, self._strokes = self._layers()
            initial = self._initial_of()
        except CytoUNetError as exc:
            notify_exception(exc)
            return False
        self._initial = initial
        self._key = f"live-{id(self)}-{next(_keys)}"
        self._version, self._sent_version, self._idle_rounds = 0, -1, 0
        self._stopping = False
        self.live = True
        self._connect(self._strokes)
        self._session.set_busy("live training")
        self.button.text = "Stop live (keep the model)"
        self.status.value = "Live: starting the engine and the model…"
        from qtpy.QtCore import QTimer

        self._timer = QTimer()
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self._viewer.layers.selection.active = self._strokes
        self._tick()
        return True

    def stop(self, *, keep: bool = True) -> None:
        """Stop the loop; with ``keep`` the live model becomes the current model."""
        if not self.live:
            return
        self.live = False
        self._stopping = keep
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._disconnect(self._strokes)
        if self._output is not None:
            self._output.editable = True
        self.runner.request_stop()
        self.button.enabled = False
        self.status.value = "Stopping: finishing this round, then keeping the model…"
        if not self.runner.running:
            self._finish_stop()

    def shutdown(self) -> None:
        """The widget is closing: stop without waiting for anything."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.live = False
        self._stopping = False
        self._disconnect(self._strokes)
        self.runner.shutdown()
        self._fetcher.shutdown()
        if self._session.busy == "live training":
            self._session.set_busy("")

    def _finish_stop(self) -> None:
        if not self._stopping or self.rounds == 0:
            self._end()
            return
        start_job(
            self._fetcher,
            live_model_job,
            self._key,
            what="Keeping the live model",
            on_event=self._on_model,
            on_done=self._end,
        )

    def _end(self) -> None:
        self._stopping = False
        if self._output is not None:
            self._output.editable = True
        self.button.text = "Live"
        self.button.enabled = True
        if self._session.busy == "live training":
            self._session.set_busy("")

    def _on_model(self, event: Any) -> None:
        if isinstance(event, LiveModel):
            self._session.set_model(
                event.bundle,
                f"trained live in this session ({event.rounds} rounds)",
                training_pairs=[(self._image.name, self._strokes.name)],
            )
            self.status.value = (
                f"Stopped after {event.rounds} rounds; the live model is now the current model "
                "(Predict, Save and Export use it)."
            )
            show_info("Live stopped; its model is now the current model.")

    # -- layers --------------------------------------------------------------------------------
    def _layers(self) -> tuple[Any, Any]:
        from napari.layers import Labels

        image = self._image_of()
        if image is None:
            raise DataError("Choose an image layer to segment live.")
        if len(_layers.spatial_shape(image)) != 2:
            raise DataError(
                f"Live mode segments 2D images; {image.name!r} has shape "
                f"{_layers.spatial_shape(image)}. Use Train on stacks."
            )
        if self._strokes_of is not None:
            strokes = self._strokes_of()
            _layers.check_pair(image, strokes)
            return image, strokes
        strokes = _layers.find_output(self._viewer, image, STROKES, Labels)
        if strokes is None:
            strokes = _layers.put_labels(
                self._viewer,
                _layers.output_name(image.name, STROKES),
                np.zeros(_layers.spatial_shape(image), np.uint8),
                image,
                tag=_layers.output_tag(image, STROKES),
            )
            strokes.mode = "paint"
            strokes.selected_label = 2
            show_info(f"Paint on {strokes.name!r}: 2 on cells the model missed, 1 on wrong cells.")
        return image, strokes

    def _connect(self, layer: Any) -> None:
        for name in ("paint", "data", "labels_update"):
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                emitter.connect(self._on_strokes_changed)

    def _disconnect(self, layer: Any) -> None:
        if layer is None:
            return
        for name in ("paint", "data", "labels_update"):
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                emitter.disconnect(self._on_strokes_changed)

    def _on_strokes_changed(self, *_: Any) -> None:
        self._version += 1
        self._idle_rounds = 0

    # -- the loop --------------------------------------------------------------------------------
    def _tick(self) -> None:
        """Start a round when the strokes changed or learning should go on (main thread)."""
        if not self.live or self.runner.running:
            return
        if self._version == self._sent_version and self._idle_rounds >= ROUNDS_AFTER_CHANGE:
            return
        labels = np.array(_layers.layer_array(self._strokes), copy=True)
        if not labels.any():
            self.status.value = "Live: paint strokes (2 = cell, 1 = background) to start."
            return
        if self._version == self._sent_version:
            self._idle_rounds += 1
        self._sent_version = self._version
        image = np.asarray(_layers.layer_array(self._image))
        seconds = FIRST_ROUND_SECONDS if self.rounds == 0 else float(self.seconds.value)
        self._round_started = time.perf_counter()
        start_job(
            self.runner,
            live_round_job,
            self._key,
            image,
            labels,
            seconds,
            self._initial if self.rounds == 0 else None,
            what="Live training",
            on_event=self._on_event,
            on_failed=self._on_failed,
            on_done=self._on_round_done,
            stoppable=True,
        )

    def _on_failed(self, _: Failed) -> None:
        """A round failed (notified): stop, keeping the model if a round was answered."""
        self.stop(keep=self.rounds > 0)

    def _on_event(self, event: Any) -> None:
        from napari_cytounet.core.events import PreviewReady, RoundFinished, RoundProgress

        status = engine_status(event)
        if status is not None:
            self.status.value = f"Live: {status}"
        elif isinstance(event, PreviewReady) and self.rounds == 0:
            self._write(event.mask)
            self.status.value = f"Live: first answer ({event.source}, {event.seconds:.1f} s)…"
        elif isinstance(event, RoundProgress):
            self.status.value = (
                f"Live: round {self.rounds + 1} learning… {event.steps} steps, "
                f"loss {event.loss:.3f}"
            )
        elif isinstance(event, RoundFinished):
            self.rounds += 1
            self.last_round = event
            self._write(event.mask)
            wall = time.perf_counter() - self._round_started
            kept = "" if event.adopted else " (not adopted: the previous model was better)"
            # The mask shown honours every stroke; the score is the model's own, before them.
            score = (
                ""
                if event.score is None
                else f"; the model alone: {event.score:.3f} on your strokes"
            )
            self.status.value = f"Live: round {event.round} in {wall:.1f} s{score}{kept}."

    def _on_round_done(self) -> None:
        if not self.live:
            self._finish_stop()

    def _write(self, mask: Any) -> None:
        from napari.layers import Labels

        from ._session import PredictionRecord

        image = self._image
        if image is None or not any(image is la for la in self._viewer.layers):
            return
        existing = _layers.find_output(self._viewer, image, _layers.SEGMENTATION, Labels)
        if existing is not None and existing is not self._output and self._keep_edits:
            self._keep_edits(image, existing)  # the user's edits there go to corrections first
        self._output = _layers.put_labels(
            self._viewer,
            _layers.output_name(image.name, _layers.SEGMENTATION),
            np.asarray(mask, dtype=np.uint8),
            image,
            tag=_layers.output_tag(image, _layers.SEGMENTATION),
            opacity=0.5,
        )
        self._output.editable = not self.live  # strokes go to the strokes layer while live
        previous = self._session.records.get(image.name)
        self._session.records[image.name] = PredictionRecord(  # what a prediction wrote there
            prediction=np.array(self._output.data, copy=True),
            edits=previous.edits if previous is not None else None,
        )
        if self._viewer.layers.selection.active is self._output and self._strokes is not None:
            self._viewer.layers.selection.active = self._strokes
