"""The widgets' jobs: training, prediction, loading and saving, run in the engine.

Each job is a generator for :class:`~._common.JobRunner` (a napari thread
worker): it sends a request to the engine process (:mod:`napari_cytounet.engine`)
and yields the events the engine sends back. napari's process never imports
TensorFlow. Every widget that runs a model job imports it from here; no widget
imports another widget's module. Every widget starts its jobs, model jobs or not,
with :func:`start_job`: one place that disables the button, shows the engine's
status, turns a failure into a notification and re-enables the button.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from napari_cytounet.engine import (
    EngineReady,
    EngineStarting,
    EngineStopped,
    JobCancelled,
    ModelLoaded,
    ModelSaved,
    get_engine,
)
from napari_cytounet.engine.jobs import TrainingRequest

from ._common import Failed, JobRunner, notify_exception, show_error, show_info
from ._settings import get_settings

__all__ = [
    "EngineStopped",
    "JobCancelled",
    "ModelLoaded",
    "ModelSaved",
    "TrainingRequest",
    "engine_status",
    "keep_checkpoint",
    "load_job",
    "predict_job",
    "save_job",
    "save_target",
    "start_job",
    "start_save",
    "training_job",
]

#: Answers "replace this file, which is not a model?" (``path -> bool``). ``None``: ask the
#: user in a dialog. Scripts and tests set it to answer without a dialog.
CONFIRM_OVERWRITE: Callable[[Path], bool] | None = None


def start_job(
    runner: JobRunner,
    job: Callable[..., Iterator[Any]],
    *args: Any,
    what: str,
    on_event: Callable[[Any], None] | None = None,
    on_done: Callable[[], None] | None = None,
    on_failed: Callable[[Failed], str | None] | None = None,
    button: Any = None,
    status: Any = None,
    failed: str | None = None,
    stoppable: bool = False,
) -> bool:
    """Start ``job(*args)`` in ``runner``: the one way a widget starts a background job.

    It does what every widget did by hand around :meth:`JobRunner.start`:

    - ``button`` (a magicgui button, optional) is disabled now and enabled again when the
      job has ended, before ``on_done`` is called;
    - the engine's own events (starting, ready) set the text of ``status`` (a magicgui
      ``Label``, optional); without ``status`` they go to ``on_event`` like the others;
    - a failure (the job raised: a final :class:`~._common.Failed` event) first goes to
      ``on_failed``. When that returns a text, the failure is handled: the text goes to
      ``status``. Otherwise (no ``on_failed``, or it returned ``None``) ``status`` reads
      ``failed`` (default ``"<what> failed: see the notification."``) and the error is
      shown as a napari notification (:func:`~._common.notify_exception`, ``what`` naming
      the operation in the message of an unexpected error);
    - every other event goes to ``on_event`` (in the main thread);
    - with ``stoppable``, a new :class:`threading.Event` is passed to the job as its last
      positional argument and becomes the runner's stop event (:meth:`JobRunner.request_stop`).

    Returns ``False`` (and starts nothing) when the runner already runs a job, else ``True``.
    Validation of the user's choices stays with the widget, before this call.

    Examples
    --------
    >>> start_job(  # doctest: +SKIP
    ...     self._runner, load_job, path, what="Loading the model", button=self._load_btn,
    ...     status=self._summary, on_event=self._on_loaded, stoppable=True,
    ... )
    True
    """
    if runner.running:
        return False

    def _event(event: Any) -> None:
        if isinstance(event, Failed):
            text = on_failed(event) if on_failed is not None else None
            handled = text is not None
            if not handled:
                text = failed if failed is not None else f"{what} failed: see the notification."
            if status is not None:
                status.value = text
            if not handled:
                notify_exception(event.error, what, event.details)
            return
        engine_text = engine_status(event) if status is not None else None
        if engine_text is not None:
            status.value = engine_text
        elif on_event is not None:
            on_event(event)

    def _done() -> None:
        if button is not None:
            button.enabled = True
        if on_done is not None:
            on_done()

    stop = threading.Event() if stoppable else None
    if button is not None:
        button.enabled = False
    job_args = (*args, stop) if stop is not None else args
    runner.start(job, *job_args, on_event=_event, on_done=_done, stop_event=stop)
    return True


def training_job(request: TrainingRequest, stop: threading.Event) -> Iterator[Any]:
    """Quality check, then training, in the engine: the report, then the training events.

    Stops after the :class:`~napari_cytounet.core.events.QualityChecked` event if it
    found errors and ``request.force`` is false. While training, a
    :class:`~napari_cytounet.core.events.TrainingCheckpoint` follows every best
    epoch, so the best model so far survives the engine's death.
    """
    yield from get_engine().run("train", request=request, stop=stop)


def predict_job(
    bundle: Any,
    path: Path | None,
    image: Any,
    channel_axis: int | None,
    params: dict[str, Any],
    stop: threading.Event | None = None,
) -> Iterator[Any]:
    """Segment ``image`` in the engine (loading ``path`` first when ``bundle`` is ``None``)."""
    import numpy as np

    yield from get_engine().run(
        "predict",
        bundle=bundle,
        path=path,
        image=np.asarray(image),
        channel_axis=channel_axis,
        params=params,
        stop=stop,
    )


def load_job(path: Path, stop: threading.Event | None = None) -> Iterator[Any]:
    """Load a model file in the engine; yields :class:`ModelLoaded`."""
    yield from get_engine().run("load", path=Path(path), stop=stop)


def save_job(bundle: Any, path: Path, stop: threading.Event | None = None) -> Iterator[Any]:
    """Save a bundle (atomically) in the engine; yields :class:`ModelSaved`.

    ``bundle`` is updated as saving did in-process: its ``path``, ``created``
    and ``versions`` now say what the file records.
    """
    for event in get_engine().run("save", bundle=bundle, path=Path(path), stop=stop):
        if isinstance(event, ModelSaved):
            bundle.path = event.path
            bundle.created = event.created
            bundle.versions = dict(event.versions)
        yield event


def engine_status(event: Any) -> str | None:
    """Status text for the engine's own events (``None`` for the others)."""
    if isinstance(event, EngineStarting):
        return "Starting the engine (TensorFlow loads in a process of its own)…"
    if isinstance(event, EngineReady):
        return f"Engine ready ({event.seconds:.1f} s)."
    return None


def keep_checkpoint(
    session: Any, error: BaseException, checkpoint: Any, request: Any
) -> str | None:
    """After the engine died mid-training, make the best model so far the current one.

    Returns the status text (and shows a notification), or ``None`` when there
    is nothing to keep (``error`` is not :class:`EngineStopped`, or no best epoch
    arrived before the engine stopped).
    """
    if not isinstance(error, EngineStopped) or checkpoint is None:
        return None
    session.set_model(
        checkpoint.bundle,
        f"best epoch ({checkpoint.epoch}) of a training the engine did not finish",
        training_pairs=request.pair_names if request else [],
        validation_pair=request.validation_pair if request else None,
    )
    show_error(
        f"{error} Kept the best model so far (epoch {checkpoint.epoch}) as the current model."
    )
    return f"The engine stopped; kept the best model so far (epoch {checkpoint.epoch})."


def save_target(value: Any) -> Path | None:
    """The ``.keras`` path to save to from a file field's value; ``None`` (and a notification)
    when no file name was chosen."""
    path = Path(value) if value else None
    if path is None or str(path) in ("", ".") or path.is_dir():
        show_error("Choose a file name to save the model to (e.g. cells.keras).")
        return None
    return path if path.suffix == ".keras" else path.with_name(path.name + ".keras")


def _not_a_model(path: Path) -> Path | None:
    """The file that saving to ``path`` would replace although it is no model (or its record)."""
    from napari_cytounet.core.bundle import record_path
    from napari_cytounet.core.records import is_model_file, is_record_file

    if path.exists() and not is_model_file(path):
        return path
    record = record_path(path)
    if record.exists() and not is_record_file(record):
        return record
    return None


def confirm_overwrite(path: Path) -> bool:
    """Ask whether to replace ``path``, which is not a model (see :data:`CONFIRM_OVERWRITE`)."""
    if CONFIRM_OVERWRITE is not None:
        return bool(CONFIRM_OVERWRITE(path))
    from qtpy.QtWidgets import QMessageBox

    answer = QMessageBox.question(
        None,
        "Replace a file that is not a model?",
        f"{path} exists and is not a model saved by napari-cytounet or Keras.\n\n"
        "Saving the model there replaces it and its content is lost. Replace it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def start_save(
    session: Any,
    runner: JobRunner,
    value: Any,
    *,
    on_saved: Callable[[Path | None], None],
    on_done: Callable[[], None],
) -> Path | None:
    """Save the session's current model to the file named by ``value`` in ``runner``.

    Returns the target path, or ``None`` (with a notification where useful) when
    there is nothing to save, a save is running, no file name was chosen or the
    user declined to replace a file that is not a model. ``on_saved`` is called
    with the saved path, or ``None`` if saving failed (already notified);
    afterwards the model is known to be that file's content and its folder is
    remembered.
    """
    bundle = session.bundle
    if bundle is None:
        show_error("There is no current model to save: train or load one first.")
        return None
    if runner.running:
        return None
    path = save_target(value)
    if path is None:
        return None
    other = _not_a_model(path)
    if other is not None and not confirm_overwrite(other):
        show_info(f"Not saved: {other} was kept. Choose another file name.")
        return None

    def _on_event(event: Any) -> None:
        if not isinstance(event, ModelSaved):
            return
        get_settings().set("model", "folder", str(event.path.parent))
        session.remember_file(event.path)
        show_info(f"Saved the model to {event.path}")
        on_saved(event.path)

    start_job(
        runner,
        save_job,
        bundle,
        path,
        what="Saving the model",
        on_event=_on_event,
        on_failed=lambda _: on_saved(None),
        on_done=on_done,
        stoppable=True,
    )
    return path
