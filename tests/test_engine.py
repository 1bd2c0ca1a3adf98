"""The engine process and bundles as values (no napari: these run with the core tests)."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import psutil
import pytest


def _request(epochs: int = 1, steps: int = 2, **kwargs):
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.synthetic import synthetic_cells
    from napari_cytounet.engine.jobs import TrainingRequest

    image, labels = synthetic_cells((64, 64), radius=(6, 12), seed=0)
    config = TrainingConfig(
        epochs=epochs, steps_per_epoch=steps, patch_size=32, batch_size=2, validation_patches=0
    )
    return TrainingRequest(
        images=[image],
        labels=[labels],
        names=["cells"],
        config=config,
        unet=UNetConfig(depth=2, base_filters=4),
        **kwargs,
    )


@pytest.fixture(scope="module")
def engine():
    """An engine of this module's own (its process stopped at the end)."""
    from napari_cytounet.engine import Engine

    engine = Engine()
    yield engine
    engine.shutdown()
    assert not engine.alive


def test_bundle_pickles_as_weights_and_keeps_its_uid(tiny_unet, make_bundle):
    from napari_cytounet.core.records import format_record

    bundle = make_bundle(tiny_unet, name="tiny")
    copy = pickle.loads(pickle.dumps(bundle))
    assert copy.uid == bundle.uid and not copy.materialized and copy.model is not None
    assert copy.describe() == bundle.describe() and "UNet depth 2" in format_record(copy)
    x = np.random.default_rng(0).random((1, 32, 32, 1), np.float32)
    np.testing.assert_allclose(np.asarray(copy.model(x)), np.asarray(bundle.model(x)), atol=1e-6)
    again = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(bundle))))
    assert again.uid == bundle.uid and len(again.weights()) == len(bundle.model.get_weights())
    assert make_bundle(tiny_unet).uid != bundle.uid


def test_foreign_model_pickles_as_its_archive(tmp_path, tiny_unet):
    """A plain Keras model (no record: a 'legacy' bundle) travels as its .keras archive."""
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.model import build_unet

    path = tmp_path / "plain.keras"
    build_unet(tiny_unet).save(path)
    bundle = load_bundle(path)
    assert bundle.legacy
    copy = pickle.loads(pickle.dumps(bundle))
    assert not copy.materialized and copy.__dict__["_frozen"][0] == "archive"
    x = np.ones((1, 32, 32, 1), np.float32)
    np.testing.assert_allclose(np.asarray(copy.model(x)), np.asarray(bundle.model(x)), atol=1e-6)


def test_training_checkpoints_carry_the_best_weights(trained_run):
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.events import EpochEnd, TrainingCheckpoint
    from napari_cytounet.core.training import train

    config = TrainingConfig(
        epochs=2, steps_per_epoch=2, patch_size=32, batch_size=2, validation_patches=0
    )
    events = list(
        train(
            [trained_run.image],
            [trained_run.labels],
            config,
            UNetConfig(depth=2, base_filters=4),
            checkpoints=True,
            jit=False,
        )
    )
    best = [e.epoch for e in events if isinstance(e, EpochEnd) and e.is_best]
    checkpoints = [e for e in events if isinstance(e, TrainingCheckpoint)]
    assert [c.epoch for c in checkpoints] == best and best[0] == 1
    last = checkpoints[-1].bundle
    assert not last.materialized and last.extra["checkpoint_epoch"] == best[-1]
    assert events[-1].best_epoch == best[-1]
    assert not any(isinstance(e, TrainingCheckpoint) for e in trained_run.events)


def test_engine_runs_jobs_and_reports_errors(engine, tmp_path):
    from napari_cytounet.core.errors import ModelError
    from napari_cytounet.core.events import PredictionFinished, TrainingFinished
    from napari_cytounet.engine import EngineReady, EngineStarting, ModelLoaded, ModelSaved

    events = list(engine.run("train", request=_request()))
    assert isinstance(events[0], EngineStarting) and isinstance(events[1], EngineReady)
    finished = events[-1]
    assert isinstance(finished, TrainingFinished) and not finished.bundle.materialized
    image = _request().images[0]
    params = {"threshold": 0.5}
    *_, predicted = engine.run(
        "predict", bundle=finished.bundle, path=None, image=image, channel_axis=None, params=params
    )
    assert isinstance(predicted, PredictionFinished) and predicted.labels.shape == image.shape
    saved = list(engine.run("save", bundle=finished.bundle, path=tmp_path / "m.keras"))[-1]
    assert isinstance(saved, ModelSaved) and saved.path.is_file() and saved.versions["keras"]
    loaded = list(engine.run("load", path=saved.path))[-1]
    assert isinstance(loaded, ModelLoaded) and loaded.bundle.unet.depth == 2
    with pytest.raises(ModelError, match="No model file"):
        list(engine.run("load", path=tmp_path / "missing.keras"))
    assert engine.starts == 1  # one engine for all of these


def test_stop_cancels_a_prediction_and_stops_training(engine):
    from napari_cytounet.core.events import BatchEnd, TrainingFinished
    from napari_cytounet.engine import JobCancelled

    stop = threading.Event()
    events = []
    for event in engine.run("train", request=_request(epochs=1000), stop=stop):
        events.append(event)
        if isinstance(event, BatchEnd):
            stop.set()
    assert isinstance(events[-1], TrainingFinished) and events[-1].reason == "stopped"
    stop = threading.Event()
    stack = np.random.default_rng(0).random((60, 128, 128), np.float32)
    bundle = events[-1].bundle
    events = []
    for event in engine.run(
        "predict", bundle=bundle, path=None, image=stack, channel_axis=None, params={}, stop=stop
    ):
        events.append(event)
        stop.set()
    assert isinstance(events[-1], JobCancelled) and len(events) < 60, events[-3:]
    # closing the generator early stops the job too; the engine stays usable
    job = engine.run("predict", bundle=bundle, path=None, image=stack, channel_axis=None, params={})
    next(job)
    job.close()
    *_, again = engine.run(
        "predict", bundle=bundle, path=None, image=stack[0], channel_axis=None, params={}
    )
    assert again.labels.shape == (128, 128)


def test_a_killed_engine_ends_the_job_and_the_next_job_restarts_it(engine):
    from napari_cytounet.core.events import EpochEnd, TrainingCheckpoint, TrainingFinished
    from napari_cytounet.engine import EngineStopped

    checkpoints = []
    with pytest.raises(EngineStopped) as info:
        for event in engine.run("train", request=_request(epochs=1000)):
            if isinstance(event, TrainingCheckpoint):
                checkpoints.append(event)
            if isinstance(event, EpochEnd) and event.epoch == 2:
                os.kill(engine.pid, signal.SIGKILL)
    message = str(info.value)
    assert "killed by signal SIGKILL" in message and "your layers are safe" in message
    assert info.value.returncode == -signal.SIGKILL
    assert checkpoints and checkpoints[0].bundle.weights()
    starts = engine.starts
    *_, finished = engine.run("train", request=_request(initial=checkpoints[-1].bundle))
    assert isinstance(finished, TrainingFinished) and engine.starts == starts + 1


def test_the_engine_exits_with_its_parent_and_the_parent_never_imports_tensorflow(tmp_path):
    """The parent (a stand-in for napari) is SIGKILLed: its engine exits by itself."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        sys.path.insert(0, sys.argv[1])
        from test_engine import _request
        from napari_cytounet.engine import get_engine
        engine = get_engine()
        *_, done = engine.run("train", request=_request())
        assert not done.bundle.materialized
        bad = [m for m in ("tensorflow", "keras") if m in sys.modules]
        print("PID", engine.pid, "BAD", bad, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    here = os.path.dirname(__file__)
    result = subprocess.run(
        [sys.executable, "-c", script, here], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    words = result.stdout.split()
    pid = int(words[words.index("PID") + 1])
    assert words[words.index("BAD") + 1] == "[]", result.stdout
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the engine {pid} outlived its parent")
