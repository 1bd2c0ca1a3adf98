"""napari survives the engine: it never imports TensorFlow, outlives a killed engine, and runs
the whole loop (load, predict, train, stop, predict, retrain) many times without a leak."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest
from gui_helpers import (
    ENGINE_KEEPER,
    cells,
    dock,
    save_model,
    snapshot,
    tiny_bundle,
    tiny_settings,
    wait_idle,
)

pytestmark = pytest.mark.gui


def _engine_children() -> list[psutil.Process]:
    """Engine processes started by this (napari's) process, still running."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            engine = "napari_cytounet.engine" in " ".join(child.cmdline())
            if engine and child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.Error:
            continue
    return out


def _pair(viewer, shape=(64, 64)):
    image, labels = cells(shape)
    viewer.add_image(image, name="cells")
    viewer.add_labels(labels, name="cells mask")
    return image


def test_napari_process_never_imports_tensorflow(viewer, qtbot, notes, tmp_path):
    """Load, predict and train through the widgets: TensorFlow stays out of napari's process."""
    path = save_model(tiny_bundle(), tmp_path / "tiny.keras")
    _pair(viewer)
    model = dock(viewer, "Model")
    assert model.load(path)
    wait_idle(qtbot, model)
    predict = dock(viewer, "Predict")
    assert predict.predict(use_current=True)
    wait_idle(qtbot, predict)
    train = dock(viewer, "Train UNet")
    tiny_settings(train, epochs=1, steps=2)
    assert train.start()
    wait_idle(qtbot, train)
    assert not notes.errors, notes.errors
    assert predict.predictions == 1 and train.last_result is not None
    assert not train.last_result.bundle.materialized  # a value: weights, no Keras model here
    loaded = [m for m in ("tensorflow", "keras", "tensorflow.python") if m in sys.modules]
    assert not loaded, f"napari's process imported {loaded}"


def test_engine_killed_mid_training(viewer, qtbot, notes, _engine_kept):
    """SIGKILL the engine while training: napari lives, says so, keeps the best model so far,
    and the next training starts a new engine."""
    before_layers = (_pair(viewer), snapshot(viewer))[1]
    widget = dock(viewer, "Train UNet")
    tiny_settings(widget, epochs=1000, steps=2)
    assert widget.start()
    qtbot.waitUntil(lambda: widget._checkpoint is not None, timeout=120_000)
    engine = _engine_kept
    pid, starts = engine.pid, engine.starts
    os.kill(pid, signal.SIGKILL)
    wait_idle(qtbot, widget, timeout=30_000)
    assert len(notes.errors) == 1, notes.errors
    message = notes.errors[0]
    assert "engine stopped" in message and "SIGKILL" in message, message
    assert "your layers are safe" in message and "Kept the best model so far" in message
    session = widget._session
    assert session.bundle is widget._checkpoint.bundle and session.busy == ""
    assert "did not finish" in session.source
    assert widget._status.value.startswith("The engine stopped")
    assert widget._train_btn.text == "Train" and widget._train_btn.enabled
    assert snapshot(viewer) == before_layers
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    # the next training works, in a new engine, and may continue from the kept model
    widget._start_from.value = "current"
    widget._epochs.value = 1
    assert widget.start()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == 1, notes.errors
    assert widget.last_result is not None and session.bundle is widget.last_result.bundle
    assert engine.starts == starts + 1 and engine.pid != pid
    assert len(_engine_children()) == 1


def test_save_over_a_file_that_is_not_a_model_asks(viewer, qtbot, notes, tmp_path, monkeypatch):
    from napari_cytounet.widgets import _jobs
    from napari_cytounet.widgets._session import session_for

    session_for(viewer).set_model(tiny_bundle(), "test model")
    widget = dock(viewer, "Model")
    notes_file = tmp_path / "notes.keras"
    notes_file.write_text("my notes, not a model")
    asked: list = []
    monkeypatch.setattr(_jobs, "CONFIRM_OVERWRITE", lambda path: asked.append(path) or False)
    assert not widget.save(notes_file)
    assert asked == [notes_file] and notes_file.read_text() == "my notes, not a model"
    assert any("Not saved" in m and "kept" in m for m in notes.infos), notes.infos

    # a record beside it that is not ours is protected the same way
    model_path = tmp_path / "model.keras"
    model_path.with_suffix(".json").write_text('{"mine": 1}')
    assert not widget.save(model_path)
    assert asked[-1] == model_path.with_suffix(".json") and not model_path.exists()

    # saying yes replaces it; an existing model is replaced without asking
    monkeypatch.setattr(_jobs, "CONFIRM_OVERWRITE", lambda path: asked.append(path) or True)
    assert widget.save(notes_file)
    wait_idle(qtbot, widget)
    assert notes_file.stat().st_size > 1000 and not notes.errors, notes.errors
    n = len(asked)
    assert widget.save(notes_file)
    wait_idle(qtbot, widget)
    assert len(asked) == n and not notes.errors


def test_closing_the_last_viewer_stops_the_engine(make_napari_viewer, qtbot, _engine_kept):
    from napari_cytounet.widgets._session import session_for

    engine = _engine_kept
    viewer = make_napari_viewer()
    _pair(viewer)
    session_for(viewer).set_model(tiny_bundle(), "test model")
    widget = dock(viewer, "Predict")
    assert widget.predict()
    wait_idle(qtbot, widget)
    pid = engine.pid
    assert pid is not None and psutil.pid_exists(pid)
    engine.release(ENGINE_KEEPER)  # no other viewer: the engine goes with this one
    try:
        viewer.close()
        qtbot.waitUntil(lambda: not engine.alive, timeout=15_000)
        assert not _engine_children()
    finally:
        engine.hold(ENGINE_KEEPER)


@pytest.mark.slow
def test_stress_load_predict_train_stop_predict_retrain(viewer, qtbot, notes, tmp_path):
    """The whole loop 30 times in one viewer: no crash, no hang, no leaked process."""
    from napari_cytounet.core.events import BatchEnd

    rounds = int(os.environ.get("CYTOUNET_STRESS_ROUNDS", "30"))
    path = save_model(tiny_bundle(), tmp_path / "tiny.keras")
    image = _pair(viewer)
    model, predict, train = (
        dock(viewer, "Model"),
        dock(viewer, "Predict"),
        dock(viewer, "Train UNet"),
    )
    tiny_settings(train, epochs=1000, steps=2)
    predict._retrain_epochs.value = 1
    session = train._session
    phases: dict[str, list[float]] = {}

    def timed(name: str, start, widget) -> None:
        t = time.perf_counter()
        assert start()
        wait_idle(qtbot, widget, timeout=60_000)
        phases.setdefault(name, []).append(time.perf_counter() - t)

    def train_and_stop() -> bool:
        train._start_from.value = "new"
        assert train.start()
        batches: list = []
        train._runner.worker.yielded.connect(
            lambda e, b=batches: b.append(e) if isinstance(e, BatchEnd) else None
        )
        qtbot.waitUntil(lambda b=batches: bool(b), timeout=60_000)
        train.stop()
        return True

    t0 = time.perf_counter()
    engines = _engine_children()
    for i in range(rounds):
        timed("load", lambda: model.load(path), model)
        timed("predict", lambda: predict.predict(use_current=True), predict)
        timed("train+stop", train_and_stop, train)
        assert train.last_result is not None and train.last_result.reason == "stopped"
        timed("predict", lambda: predict.predict(use_current=True), predict)
        seg = viewer.layers["cells segmentation"]
        # the user fixes the answer (a barely trained tiny model's mask can look outline-only,
        # which the quality check rightly refuses), then paints one more stroke with the brush
        seg.data = (viewer.layers["cells mask"].data > 0).astype(seg.data.dtype)
        seg.brush_size, seg.selected_label = 7, 1
        seg.paint((16 + i % 32, 40), 1)
        timed("retrain+predict", predict.retrain, predict)  # retrains, then predicts again
        wait_idle(qtbot, predict, timeout=60_000)
        assert not notes.errors, (i, notes.errors)
        assert predict.last_training is not None and session.bundle is not None
        assert len(_engine_children()) <= 1, f"round {i}: {_engine_children()}"
    seconds = time.perf_counter() - t0
    medians = ", ".join(f"{k} {sorted(v)[len(v) // 2]:.2f} s" for k, v in phases.items())
    print(
        f"\n[stress] {rounds} rounds of load/predict/train/stop/predict/retrain: {seconds:.1f} s; "
        f"median per phase: {medians}"
    )
    assert [p.pid for p in _engine_children()] == [p.pid for p in engines]  # no restart
    assert predict.predictions == 3 * rounds and image.shape == (64, 64)
