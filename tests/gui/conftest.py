"""Fixtures of the GUI tests: a real napari viewer (under Xvfb via pytest-xvfb),
settings redirected to a temporary folder, tiny models and small synthetic data."""

from __future__ import annotations

import os
import sys

import pytest
from gui_helpers import Notes, tiny_bundle

_state = {"viewer_made": False}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Keep the user's settings untouched and train without XLA (faster start for tiny models)."""
    monkeypatch.setenv("CYTOUNET_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("CYTOUNET_JIT", "0")


@pytest.fixture
def viewer(make_napari_viewer):
    if (
        not _state["viewer_made"]
        and "tensorflow" in sys.modules
        and not os.environ.get("CYTOUNET_GL_PRELOADED")
    ):
        pytest.skip(
            "TensorFlow was imported before the first napari viewer (by another test module?). "
            "Its LLVM then clashes with the OpenGL driver's and napari crashes; run the GUI "
            "tests in their own process: python -m pytest tests/gui"
        )
    _state["viewer_made"] = True
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
