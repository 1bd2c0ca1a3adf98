"""Shared plumbing of the widgets: notifications, background jobs, small UI helpers.

Every long operation runs as a generator in a napari ``thread_worker``. A job
never raises into Qt: :func:`guarded` turns an exception into a final
:class:`Failed` event, which the widget shows as a napari notification
(:func:`notify_exception`) while the widget stays usable and no layer changes.
:class:`JobRunner` runs one job at a time for a widget and stops it cleanly
when the widget (or the whole viewer) is closed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from magicgui.widgets import Label
from napari.utils.notifications import show_error, show_info, show_warning

from napari_cytounet.core.config import LABEL_MODES as CONFIG_LABEL_MODES
from napari_cytounet.core.errors import CytoUNetError

_log = logging.getLogger("napari_cytounet")

__all__ = [
    "LABEL_MODES",
    "Failed",
    "JobRunner",
    "collapsible",
    "expand",
    "format_seconds",
    "guarded",
    "header",
    "notify_exception",
    "show_error",
    "show_info",
    "show_warning",
    "wrap_text",
]

#: How the widgets name the label modes of the core (``core.config.LABEL_MODES``).
MODE_NAMES = {"dense": "dense masks (0 = background)", "scribbles": "scribbles (1 = bg, 2 = cell)"}
#: The label modes of the Train and Quality check widgets: (shown text, value), from config.
LABEL_MODES = tuple((MODE_NAMES[mode], mode) for mode in CONFIG_LABEL_MODES)


@dataclass(frozen=True)
class Failed:
    """Last event of a job that raised: the exception and its traceback text."""

    error: BaseException
    details: str = ""


def guarded(job: Callable[..., Iterator[Any]], *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Run the generator ``job(*args, **kwargs)``; an exception becomes a final :class:`Failed`."""
    try:
        yield from job(*args, **kwargs)
    except Exception as exc:  # shown to the user by the widget, never raised into Qt
        yield Failed(exc, traceback.format_exc())


def notify_exception(exc: BaseException, what: str = "The operation", details: str = "") -> str:
    """Show ``exc`` as a napari error notification and return the message shown.

    A :class:`CytoUNetError` already says what to do, so its message is shown as
    is; anything else is unexpected and is shown with its type (the traceback
    goes to the log).
    """
    if isinstance(exc, CytoUNetError):
        message = str(exc)
    else:
        message = (
            f"{what} failed unexpectedly ({type(exc).__name__}: {exc}). "
            "Check the inputs; if it keeps happening, report it with the log."
        )
        if details:
            _log.error("%s failed:\n%s", what, details)
    show_error(message)
    return message


def format_seconds(seconds: float | None) -> str:
    """``75.0`` -> ``"1 min 15 s"``; ``None`` -> ``"?"``."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def wrap_text(label: Label) -> Label:
    """Let a Label wrap its text over the full width of the dock (magicgui fixes its width)."""
    from qtpy.QtWidgets import QSizePolicy

    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label


def collapsible(body: Any, section: Any, title: str) -> Any:
    """Put the magicgui ``section`` of ``body`` into a collapsed ``superqt.QCollapsible``.

    Returns the collapsible (see :func:`expand`); it takes the section's place in ``body``.
    """
    from superqt import QCollapsible

    layout = body.native.layout()
    box = QCollapsible(title)
    layout.insertWidget(layout.indexOf(section.native), box)
    box.addWidget(section.native)
    box.collapse(animate=False)
    return box


def expand(box: Any, show: bool = True) -> None:
    """Expand (or collapse) a :func:`collapsible` section at once (no animation)."""
    if show:
        box.expand(animate=False)
    else:
        box.collapse(animate=False)


def header(text: str) -> Label:
    """A bold section title."""
    label = Label(value=text)
    label.native.setStyleSheet("font-weight: bold; padding-top: 6px;")
    return label


class JobRunner:
    """Runs one background job at a time for a widget.

    ``on_event`` gets every yielded event (including a final :class:`Failed`)
    in the main thread; ``on_done`` is called once the thread has finished
    (also after :meth:`abort`). Once the widget is closed (:meth:`shutdown`),
    callbacks are no longer called and the running job is aborted at its next
    event; training is also asked to stop through its ``stop`` event.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.worker: Any = None
        self.stop_event: threading.Event | None = None
        self.alive = True
        self.aborted = False

    @property
    def running(self) -> bool:
        """Whether a job is running."""
        return self.worker is not None

    def start(
        self,
        job: Callable[..., Iterator[Any]],
        *args: Any,
        on_event: Callable[[Any], None],
        on_done: Callable[[], None] | None = None,
        stop_event: threading.Event | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start ``job(*args, **kwargs)`` (a generator function) in a napari thread worker."""
        from napari.qt.threading import create_worker

        if self.running:
            raise RuntimeError(f"{self.name}: a job is already running")
        self.stop_event = stop_event
        self.aborted = False
        running: list[Iterator[Any]] = []

        def _run(*a: Any, **k: Any) -> Iterator[Any]:
            running.append(guarded(job, *a, **k))
            yield from running[0]

        worker = create_worker(_run, *args, _start_thread=False, **kwargs)

        def _event(event: Any) -> None:
            if self.alive:
                on_event(event)

        def _finished() -> None:
            # An aborted worker leaves the job's generator suspended at a yield; closing it now
            # (its thread is done with it) runs its clean-up, e.g. the engine client's "stop"
            # for the job, instead of whenever the generator is garbage-collected.
            for generator in running:
                with contextlib.suppress(ValueError, RuntimeError):
                    generator.close()
            if self.worker is worker:
                self.worker = None
                self.stop_event = None
            if self.alive and on_done is not None:
                on_done()

        worker.yielded.connect(_event)
        worker.finished.connect(_finished)
        self.worker = worker
        worker.start()
        return worker

    def request_stop(self) -> None:
        """Ask the job to stop at its next step (training then still yields its result)."""
        if self.stop_event is not None:
            self.stop_event.set()

    def abort(self) -> None:
        """Stop the job at its next event and drop the rest of its output."""
        self.request_stop()
        if self.worker is not None:
            self.aborted = True
            self.worker.quit()

    def shutdown(self) -> None:
        """The widget is going away: stop everything and never call back again."""
        self.alive = False
        self.abort()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block (processing Qt events) until the job has finished; ``True`` if it did."""
        import time

        from qtpy.QtWidgets import QApplication

        end = time.monotonic() + timeout
        while self.worker is not None and time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.01)
        return self.worker is None


def connect_shutdown(
    widget: Any,
    *runners: JobRunner,
    on_shutdown: Callable[[], None] | None = None,
    always: Callable[[], None] | None = None,
) -> None:
    """Shut the runners down when the magicgui ``widget`` goes away.

    That is when its Qt widget is destroyed (the viewer closed), or when it is
    taken out of its dock (the dock's close button: napari then only un-parents
    the widget, which would otherwise keep training, invisibly, until the run ends).
    ``on_shutdown`` is then called once if a job was running (e.g. to release the session's
    model), and ``always`` in any case (e.g. to stop a live loop between its rounds).
    The widget also holds the engine process (:mod:`napari_cytounet.engine`) until
    then: when the last widget goes, the engine stops.
    """
    from napari_cytounet.engine import get_engine

    docked = down = False
    get_engine().hold(widget)

    def _shutdown(*_: Any) -> None:
        nonlocal down
        if down:
            return
        down = True
        if always is not None:
            always()
        busy = any(runner.running for runner in runners)
        for runner in runners:
            runner.shutdown()
        if busy and on_shutdown is not None:
            on_shutdown()
        get_engine().release(widget)

    def _parent_changed(parent: Any) -> None:
        nonlocal docked
        if parent is not None:
            docked = True
        elif docked:
            _shutdown()

    widget.native.destroyed.connect(_shutdown)
    widget.native_parent_changed.connect(_parent_changed)
