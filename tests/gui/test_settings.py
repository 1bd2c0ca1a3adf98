"""Widget settings persist between napari sessions; a corrupt settings file means defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from gui_helpers import dock

pytestmark = pytest.mark.gui


def _settings_file() -> Path:
    return Path(os.environ["CYTOUNET_SETTINGS_DIR"]) / "settings.json"


def _new_session() -> None:
    """Forget the settings read so far, as a new napari process would."""
    from napari_cytounet.widgets import _settings

    _settings._current = None


def test_settings_come_back_in_a_new_viewer(make_napari_viewer, notes, tmp_path):
    viewer = make_napari_viewer()
    predict = dock(viewer, "Predict")
    train = dock(viewer, "Train UNet")
    score = dock(viewer, "Score")
    assert predict._threshold.value == 0.5 and train._epochs.value == 20  # the defaults
    predict._threshold.value = 0.35
    predict._probabilities.value = True
    predict._retrain_epochs.value = 3
    predict._source.value = "file"
    predict._model_file.value = tmp_path / "cells.keras"
    train._epochs.value = 7
    train._depth.value = 3
    train._lr.value = 1e-3
    train._stop_by.value = "time"
    train._minutes.value = 2.5
    score._iou.value = 0.65
    stored = json.loads(_settings_file().read_text())
    assert stored["predict"]["threshold"] == 0.35 and stored["train"]["epochs"] == 7
    assert stored["predict"]["model_file"] == str(tmp_path / "cells.keras")
    viewer.close()

    _new_session()
    viewer = make_napari_viewer()
    predict = dock(viewer, "Predict")
    train = dock(viewer, "Train UNet")
    score = dock(viewer, "Score")
    assert predict._threshold.value == pytest.approx(0.35)
    assert predict._probabilities.value is True
    assert predict._retrain_epochs.value == 3
    assert predict._source.value == "file"
    assert predict._model_file.value == tmp_path / "cells.keras"
    assert train._epochs.value == 7 and train._depth.value == 3
    assert train._lr.value == pytest.approx(1e-3)
    assert train._stop_by.value == "time" and train._minutes.value == pytest.approx(2.5)
    assert not train._epochs.native.isVisibleTo(train.native)  # the layout follows: time budget
    assert score._iou.value == pytest.approx(0.65)
    assert not notes.errors and not notes.warnings


@pytest.mark.parametrize(
    "content",
    [b"{ this is not json", b"[1, 2, 3]", b"\xff\xfe\x00garbage", b""],
    ids=["broken", "not-a-dict", "binary", "empty"],
)
def test_corrupt_settings_mean_defaults(make_napari_viewer, notes, content):
    path = _settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    _new_session()
    viewer = make_napari_viewer()
    predict = dock(viewer, "Predict")
    train = dock(viewer, "Train UNet")
    assert predict._threshold.value == 0.5 and train._epochs.value == 20
    assert train._depth.value == 4 and train._filters.value == 16
    assert not notes.errors and not notes.warnings
    # a change writes a valid file again
    predict._threshold.value = 0.45
    stored = json.loads(path.read_text())
    assert isinstance(stored, dict) and stored["predict"]["threshold"] == 0.45


def test_wrong_values_in_settings_are_ignored(make_napari_viewer, notes):
    path = _settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "predict": {"threshold": "high", "min_size": 12, "source": "nonsense"},
                "train": {"epochs": [1], "mode": "scribbles", "learning_rate": 123.0},
                "score": 5,
            }
        )
    )
    _new_session()
    viewer = make_napari_viewer()
    predict = dock(viewer, "Predict")
    train = dock(viewer, "Train UNet")
    score = dock(viewer, "Score")
    assert predict._threshold.value == 0.5 and predict._source.value == "current"  # refused
    assert predict._min_size.value == 12  # a valid value is restored
    assert train._epochs.value == 20 and train._lr.value == pytest.approx(2e-3)
    assert train._mode.value == "scribbles"
    assert score._iou.value == 0.5
    assert not notes.errors
