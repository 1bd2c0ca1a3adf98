"""Correct and retrain: edits go to '<image> corrections', are never lost, one click retrains."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import cells, dock, snapshot, wait_idle

pytestmark = pytest.mark.gui


def _predicted(viewer, qtbot, notes, widget, name="cells"):
    n, errors = widget.predictions, len(notes.errors)
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == errors, notes.errors
    assert widget.predictions == n + 1
    return viewer.layers[f"{name} segmentation"]


def _correct_left_half(seg, truth) -> np.ndarray:
    """Fix the left half to the truth (like brushing and erasing), plus one brush stroke."""
    data = np.asarray(seg.data)
    data[:, :24] = (truth[:, :24] > 0).astype(data.dtype)
    seg.refresh()
    seg.brush_size = 7
    seg.selected_label = 1
    seg.paint((40, 44), 1)  # napari's own brush
    return np.array(seg.data, copy=True)


def _weights(bundle) -> list[np.ndarray]:
    return [np.array(w) for w in bundle.weights()]


def test_retrain_with_corrections_is_one_click(viewer, qtbot, notes, with_model):
    from napari.layers import Labels

    image, truth = cells((64, 64))
    viewer.add_image(image, name="cells", scale=(0.5, 0.5))
    widget = dock(viewer, "Predict")
    widget._retrain_epochs.value = 2
    seg = _predicted(viewer, qtbot, notes, widget)
    first_prediction = np.array(seg.data, copy=True)
    edited = _correct_left_half(seg, truth)
    assert not np.array_equal(edited, first_prediction)
    old_bundle = with_model.bundle
    old_weights = _weights(old_bundle)

    clicks = 0
    widget._retrain_btn.native.click()
    clicks += 1
    assert widget._retrain_btn.text == "Stop retraining"
    assert with_model.busy == "retraining"
    # retraining, then the new prediction: nothing else to click
    qtbot.waitUntil(lambda: widget.predictions == 2 and not widget.running, timeout=120_000)
    assert clicks <= 3
    assert not notes.errors, notes.errors
    assert not notes.warnings, notes.warnings
    assert not any("Kept your edits" in m for m in notes.infos), notes.infos  # nothing new

    corrections = viewer.layers["cells corrections"]
    assert isinstance(corrections, Labels)
    np.testing.assert_array_equal(corrections.data, edited)
    np.testing.assert_allclose(corrections.scale, (0.5, 0.5))
    # the model changed: a new bundle with other weights, trained on the corrections
    assert widget.last_training is not None and widget.last_training.epochs_run == 2
    assert with_model.bundle is widget.last_training.bundle and with_model.bundle is not old_bundle
    assert with_model.source == "retrained with corrections in this session"
    assert with_model.training_pairs == [("cells", "cells corrections")]
    assert with_model.busy == ""
    new_weights = _weights(with_model.bundle)
    assert any(not np.array_equal(a, b) for a, b in zip(old_weights, new_weights))
    # ... and its prediction was written to the segmentation layer (not to the corrections)
    assert viewer.layers["cells segmentation"] is seg
    assert widget.last_result is not None
    np.testing.assert_array_equal(seg.data, widget.last_result.labels)
    np.testing.assert_array_equal(with_model.records["cells"].prediction, seg.data)
    assert widget._retrain_btn.text == "Retrain with corrections"
    assert widget._predict_btn.text == "Predict"

    # later predictions never overwrite the corrections layer
    widget._threshold.value = 0.3
    _predicted(viewer, qtbot, notes, widget)
    np.testing.assert_array_equal(viewer.layers["cells corrections"].data, edited)


def test_edits_are_kept_when_predicting_again(viewer, qtbot, notes, with_model):
    image, _ = cells((64, 64), seed=3)
    viewer.add_image(image, name="cells")
    widget = dock(viewer, "Predict")
    seg = _predicted(viewer, qtbot, notes, widget)
    prediction = np.array(seg.data, copy=True)

    # edit 1, then predict again without retraining: the edit moves to the corrections layer
    data = np.asarray(seg.data)
    data[2:12, 2:12] = 1
    data[50:60, 50:60] = 0
    seg.refresh()
    first = np.array(seg.data, copy=True)
    widget._threshold.value = 0.6
    _predicted(viewer, qtbot, notes, widget)
    assert any("Kept your edits" in m for m in notes.infos)
    corrections = viewer.layers["cells corrections"]
    np.testing.assert_array_equal(corrections.data, first)
    assert not corrections.visible  # out of the way; the new prediction is on top
    record = with_model.records["cells"]
    np.testing.assert_array_equal(record.prediction, seg.data)
    np.testing.assert_array_equal(record.edits, first != prediction)  # what the user changed
    assert record.edits.any()

    # edit 2 elsewhere, predict again: both edits are in the corrections layer
    data = np.asarray(seg.data)
    data[2:12, 50:60] = 0
    data[30:34, 30:34] = 1
    seg.refresh()
    second = np.array(seg.data, copy=True)
    edits = record.edits | (second != record.prediction)
    _predicted(viewer, qtbot, notes, widget)
    np.testing.assert_array_equal(with_model.records["cells"].edits, edits)
    corr = viewer.layers["cells corrections"].data
    # every pixel the user changed keeps the user's value: edit 2 where it was made, else edit 1
    new_edits = second != record.prediction
    np.testing.assert_array_equal(corr[new_edits], second[new_edits])
    old_only = record.edits & ~new_edits
    assert old_only.any()
    np.testing.assert_array_equal(corr[old_only], first[old_only])
    assert (corr[2:12, 50:60] == 0).all() and (corr[30:34, 30:34] == 1).all()  # edit 2
    kept = np.array(corr, copy=True)

    # predicting again without new edits changes nothing in the corrections
    widget._threshold.value = 0.4
    _predicted(viewer, qtbot, notes, widget)
    np.testing.assert_array_equal(viewer.layers["cells corrections"].data, kept)
    assert sum("Kept your edits" in m for m in notes.infos) == 2
    assert len([la for la in viewer.layers if la.name.startswith("cells ")]) == 2


def test_retrain_refuses_without_edits(viewer, qtbot, notes, with_model):
    image, _ = cells((64, 64))
    viewer.add_image(image, name="cells")
    widget = dock(viewer, "Predict")

    def refused(match: str) -> None:
        n = len(notes.errors)
        before = snapshot(viewer)
        widget._retrain_btn.native.click()
        assert len(notes.errors) == n + 1, notes.errors
        assert match.lower() in notes.errors[-1].lower(), notes.errors[-1]
        assert snapshot(viewer) == before
        assert not widget.running and with_model.busy == ""

    refused("predict 'cells' first")
    _predicted(viewer, qtbot, notes, widget)
    refused("has not been edited")
    # a segmentation layer that no longer fits the image
    viewer.layers["cells segmentation"].data = np.zeros((32, 64), np.uint8)
    refused("shape")


def test_retrain_request_uses_edited_planes_and_earlier_pairs(viewer, qtbot, notes, with_model):
    from napari_cytounet.core.synthetic import synthetic_stack

    stack, _ = synthetic_stack(3, (64, 64))
    viewer.add_image(stack, name="stack")
    other, other_labels = cells((64, 64), seed=5)
    viewer.add_image(other, name="other")
    viewer.add_labels(other_labels, name="other mask")
    with_model.training_pairs = [("other", "other mask")]
    widget = dock(viewer, "Predict")
    widget._image.value = viewer.layers["stack"]
    seg = _predicted(viewer, qtbot, notes, widget, name="stack")
    data = np.asarray(seg.data)
    data[2, 10:20, 10:20] = 1 - data[2, 10:20, 10:20]  # fix plane 2 only
    seg.refresh()
    request = widget.build_retrain_request()
    assert request.names == ["stack [plane 2]", "other"]
    assert request.pair_names == [("stack", "stack corrections"), ("other", "other mask")]
    assert request.initial is with_model.bundle and request.config.epochs == 5
    np.testing.assert_array_equal(request.labels[0], seg.data[2])
    np.testing.assert_array_equal(request.images[0], stack[2])
