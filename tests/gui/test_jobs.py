"""start_job, the one way the widgets start a background job: button, status, failure, stop.

Real napari thread workers and magicgui widgets run small generator jobs here (no engine:
the engine's own status events are yielded by the jobs themselves).
"""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.gui


def _fields():
    from magicgui.widgets import Label, PushButton

    return PushButton(text="Go"), Label(value="")


def _counting(n: int):
    yield from range(n)


def _failing(message: str):
    from napari_cytounet.core.errors import DataError

    yield "before"
    raise DataError(message)


def test_events_button_and_done(qtbot, notes):
    from napari_cytounet.engine.events import EngineReady
    from napari_cytounet.widgets._common import JobRunner
    from napari_cytounet.widgets._jobs import start_job

    def job(n):
        yield EngineReady(seconds=1.5, pid=1)
        yield from _counting(n)

    runner = JobRunner("test")
    button, status = _fields()
    seen, done = [], []
    assert start_job(
        runner,
        job,
        3,
        what="Counting",
        button=button,
        status=status,
        on_event=seen.append,
        on_done=lambda: done.append(button.enabled),
    )
    assert not button.enabled and runner.running
    assert not start_job(runner, job, 1, what="Counting")  # one job at a time
    assert runner.wait()
    assert seen == [0, 1, 2]  # the engine's status went to the status line, not to on_event
    assert status.value == "Engine ready (1.5 s)."
    assert done == [True]  # the button is enabled again before on_done
    assert not notes.errors

    seen.clear()  # without a status line, the engine's events go to on_event
    assert start_job(runner, job, 1, what="Counting", on_event=seen.append)
    assert runner.wait()
    assert seen == [EngineReady(seconds=1.5, pid=1), 0]


def test_failure_is_notified_and_the_button_comes_back(qtbot, notes):
    from napari_cytounet.widgets._common import JobRunner
    from napari_cytounet.widgets._jobs import start_job

    runner = JobRunner("test")
    button, status = _fields()
    seen = []
    assert start_job(
        runner,
        _failing,
        "bad labels",
        what="Scoring",
        button=button,
        status=status,
        on_event=seen.append,
    )
    assert runner.wait()
    assert seen == ["before"]
    assert status.value == "Scoring failed: see the notification."
    assert notes.errors == ["bad labels"]
    assert button.enabled

    # a status text of its own; on_failed returning None adds to the default handling
    failures = []
    assert start_job(
        runner,
        _failing,
        "worse",
        what="Scoring",
        status=status,
        failed="Nothing was scored.",
        on_failed=failures.append,
    )
    assert runner.wait()
    assert status.value == "Nothing was scored." and notes.errors[-1] == "worse"
    assert [str(f.error) for f in failures] == ["worse"]

    # on_failed returning a text handles the failure: that text, no notification
    assert start_job(
        runner,
        _failing,
        "engine gone",
        what="Training",
        status=status,
        on_failed=lambda failed: f"Kept the best model ({failed.error})",
    )
    assert runner.wait()
    assert status.value == "Kept the best model (engine gone)"
    assert len(notes.errors) == 2


def test_stoppable_job_gets_the_runners_stop_event(qtbot):
    from napari_cytounet.widgets._common import JobRunner
    from napari_cytounet.widgets._jobs import start_job

    def until_stopped(step: float, stop: threading.Event):
        count = 0
        while not stop.wait(step):
            count += 1
            yield count
        yield "stopped"

    runner = JobRunner("test")
    seen = []
    assert start_job(
        runner, until_stopped, 0.01, what="Waiting", on_event=seen.append, stoppable=True
    )
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=10_000)
    runner.request_stop()
    assert runner.wait()
    assert seen[-1] == "stopped"


def test_abort_closes_the_job_so_its_clean_up_runs_at_once(qtbot):
    """Cancel: the job's `finally` (the engine client's "stop" message) runs when the worker ends,
    not whenever its suspended generator happens to be garbage-collected."""
    import gc

    from napari_cytounet.widgets._common import JobRunner

    cleaned = threading.Event()
    started = threading.Event()

    def endless():
        try:
            while True:
                started.set()
                yield "tick"
        finally:
            cleaned.set()

    runner = JobRunner("test")
    worker = runner.start(endless, on_event=lambda event: None)
    assert started.wait(10)
    gc.disable()  # the clean-up must not depend on the collector
    try:
        runner.abort()
        assert runner.wait()
        assert cleaned.is_set()
    finally:
        gc.enable()
    assert worker is not None
