"""Live mode through a real viewer: strokes are picked up without a click, the segmentation
refreshes by itself, Stop keeps the model, and closing the widget while live is safe."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import JOB_TIMEOUT_MS, cells, dock, snapshot

pytestmark = pytest.mark.gui


def _strokes(labels: np.ndarray, fraction_rows: slice) -> np.ndarray:
    """Scribbles from a mask: cell pixels of some rows = 2, background pixels of them = 1."""
    strokes = np.zeros(labels.shape, np.uint8)
    rows = np.zeros(labels.shape, bool)
    rows[fraction_rows] = True
    strokes[rows & (labels > 0)] = 2
    strokes[rows & (labels == 0)] = 1
    return strokes


@pytest.fixture
def scene(viewer):
    image, labels = cells((96, 96), seed=3)
    viewer.add_image(image, name="cells")
    viewer.add_labels(_strokes(labels, slice(40, 42)), name="cells strokes")
    return viewer, labels


def test_live_picks_up_new_strokes_and_stop_keeps_the_model(scene, qtbot, notes):
    viewer, truth = scene
    widget = dock(viewer, "Train UNet")
    widget._image.value = viewer.layers["cells"]
    widget._labels_layer.value = viewer.layers["cells strokes"]
    widget._start_from.value = "new"
    live = widget.live
    live.seconds.value = 1.0
    user_strokes = snapshot(viewer)[1]
    assert live.start()
    qtbot.waitUntil(lambda: live.rounds >= 1, timeout=JOB_TIMEOUT_MS)
    segmentation = viewer.layers["cells segmentation"]
    assert segmentation.data.shape == truth.shape
    assert not segmentation.editable, "the answer must not be painted on while live"
    first = live.last_round
    # the answer shown follows every stroke (core.stroke_edits), whatever the model learned
    strokes_now = np.asarray(viewer.layers["cells strokes"].data)
    shown = np.asarray(segmentation.data) > 0
    assert shown[strokes_now == 2].all() and not shown[strokes_now == 1].any()
    if first.score is not None:
        assert "the model alone:" in live.status.value, live.status.value

    # new strokes, painted as a user does (the layer's paint events), with no click
    layer = viewer.layers["cells strokes"]
    more = _strokes(truth, slice(70, 72))
    layer.data = np.maximum(layer.data, more)
    sent = live._version
    qtbot.waitUntil(lambda: live.rounds >= 2 and live._sent_version >= sent, timeout=60_000)
    assert live.last_round.round > first.round
    assert snapshot(viewer)[1] != user_strokes  # the user's edit, untouched by the loop

    live.stop()
    qtbot.waitUntil(lambda: not live.live and live.button.enabled, timeout=60_000)
    qtbot.waitUntil(lambda: widget._session.bundle is not None, timeout=60_000)
    assert "live" in widget._session.source
    assert widget._session.busy == ""
    assert viewer.layers["cells segmentation"].editable
    assert not notes.errors, notes.errors


def test_predict_live_corrections_paint_into_their_own_layer(viewer, qtbot, notes):
    image, truth = cells((96, 96), seed=4)
    viewer.add_image(image, name="cells")
    widget = dock(viewer, "Predict")
    widget._image.value = viewer.layers["cells"]
    live = widget.live
    live.seconds.value = 1.0
    assert live.start()
    strokes = viewer.layers["cells strokes"]
    assert strokes.data.shape == truth.shape and not strokes.data.any()
    assert viewer.layers.selection.active is strokes
    strokes.data = _strokes(truth, slice(30, 33))
    qtbot.waitUntil(lambda: live.rounds >= 1, timeout=JOB_TIMEOUT_MS)
    assert "cells segmentation" in [la.name for la in viewer.layers]
    live.stop()
    qtbot.waitUntil(lambda: not live.live and live.button.enabled, timeout=60_000)
    assert not notes.errors, notes.errors


def test_closing_the_widget_while_live_stops_the_loop(scene, qtbot, notes):
    viewer, _ = scene
    widget = dock(viewer, "Train UNet")
    widget._image.value = viewer.layers["cells"]
    widget._labels_layer.value = viewer.layers["cells strokes"]
    widget._start_from.value = "new"
    live = widget.live
    assert live.start()
    qtbot.waitUntil(lambda: live.runner.running, timeout=10_000)
    viewer.window.remove_dock_widget("all")
    qtbot.waitUntil(lambda: not live.runner.running, timeout=60_000)
    assert not live.live
    assert widget._session.busy == ""
    assert not notes.errors, notes.errors


def test_the_engine_starts_when_the_widget_opens(viewer, qtbot, monkeypatch):
    """TensorFlow loads in the engine while the user paints: the first Live click finds it up."""
    from napari_cytounet.engine import get_engine

    monkeypatch.setenv("CYTOUNET_ENGINE_PRESTART", "1")
    engine = get_engine()
    engine.shutdown()
    starts = engine.starts
    dock(viewer, "Train UNet")
    qtbot.waitUntil(lambda: engine.alive, timeout=JOB_TIMEOUT_MS)
    assert engine.starts == starts + 1
    dock(viewer, "Predict")  # a second widget does not start a second engine
    qtbot.wait(500)
    assert engine.starts == starts + 1
