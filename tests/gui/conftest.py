"""Fixtures of the GUI tests: a real napari viewer (under Xvfb via pytest-xvfb),
settings redirected to a temporary folder, tiny models and small synthetic data."""

from __future__ import annotations

import pytest
from gui_helpers import ENGINE_KEEPER, Notes, tiny_bundle


@pytest.fixture(autouse=True, scope="session")
def _engine_kept():
    """One engine process for the whole GUI session; stopped at the end (no leak)."""
    from napari_cytounet.engine import get_engine

    engine = get_engine()
    engine.hold(ENGINE_KEEPER)
    yield engine
    engine.release(ENGINE_KEEPER)
    engine.shutdown()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Keep the user's settings untouched and train without XLA (faster start for tiny models).

    Widgets start the engine when they open (``Engine.prestart``); the tests that dock a
    widget without running a model would each pay a TensorFlow start for nothing on 2 cores,
    so it is off here and on in the test of prestart itself (tests/gui/test_live.py). Jobs
    start the engine exactly as they do for users either way.
    """
    monkeypatch.setenv("CYTOUNET_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("CYTOUNET_JIT", "0")
    monkeypatch.setenv("CYTOUNET_ENGINE_PRESTART", "0")


@pytest.fixture
def viewer(make_napari_viewer):
    """A real napari viewer (napari's process never imports TensorFlow: see the engine)."""
    return make_napari_viewer()


@pytest.fixture
def notes():
    """Every napari notification shown during the test."""
    from napari.utils.notifications import notification_manager

    recorder = Notes()
    notification_manager.notification_ready.connect(recorder)
    yield recorder
    notification_manager.notification_ready.disconnect(recorder)


@pytest.fixture
def with_model(viewer):
    """The viewer's session holding a tiny trained model."""
    from napari_cytounet.widgets._session import session_for

    session = session_for(viewer)
    session.set_model(tiny_bundle(), "test model")
    return session
