"""The Quality check and Model widgets, and the Train widget's outline-only refusal."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import (
    cells,
    dock,
    save_model,
    snapshot,
    tiny_bundle,
    tiny_settings,
    wait_idle,
)

pytestmark = pytest.mark.gui


def _outlines(labels: np.ndarray) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    return find_boundaries(labels, mode="inner").astype(np.uint8)


def test_quality_check_flags_outline_only_labels(viewer, qtbot, notes):
    image, labels = cells((96, 96))
    viewer.add_image(image, name="cells")
    viewer.add_labels(_outlines(labels), name="cells outlines")
    widget = dock(viewer, "Quality check")
    assert widget._labels_layer.value.name == "cells outlines"
    before = snapshot(viewer)
    assert widget.check()
    wait_idle(qtbot, widget)
    report = widget.report
    assert report.codes().get("outline_only") == 1
    warned = notes.errors + notes.warnings
    assert warned and "outline" in warned[-1].lower(), warned
    assert widget._verdict.value.startswith(("✗", "⚠"))
    assert "outline_only" in widget._details.value
    assert snapshot(viewer) == before  # checking never changes layers

    # the same image with filled labels passes
    viewer.add_labels(labels, name="cells mask")
    widget._labels_layer.value = viewer.layers["cells mask"]
    n = len(notes.errors) + len(notes.warnings)
    widget._check_btn.native.click()
    wait_idle(qtbot, widget)
    assert widget.report.ok and not widget.report.issues
    assert len(notes.errors) + len(notes.warnings) == n
    assert widget._verdict.value.startswith("✓") and "ready to train" in widget._verdict.value


def test_quality_check_bad_choices(viewer, qtbot, notes):
    widget = dock(viewer, "Quality check")

    def refused(match: str) -> None:
        n = len(notes.errors)
        before = snapshot(viewer)
        assert not widget.check()
        assert len(notes.errors) == n + 1, notes.errors
        assert match.lower() in notes.errors[-1].lower(), notes.errors[-1]
        assert match.lower() in widget._verdict.value.lower()
        assert snapshot(viewer) == before and not widget.running

    refused("choose an image layer")  # no layers at all
    image, labels = cells((64, 64))
    viewer.add_image(image, name="cells")
    refused("choose a labels layer")
    viewer.add_labels(np.zeros((64, 48), np.uint8), name="narrow")
    refused("shape")
    viewer.layers.remove("narrow")
    viewer.add_labels(np.zeros((64, 64), np.uint8), name="cells mask")
    refused("empty")
    viewer.layers["cells mask"].data = labels
    assert widget.check()
    wait_idle(qtbot, widget)
    assert widget.report.ok


def test_train_refuses_outline_only_labels_unless_forced(viewer, qtbot, notes):
    image, labels = cells((96, 96))
    viewer.add_image(image, name="cells")
    viewer.add_labels(_outlines(labels), name="cells outlines")
    widget = dock(viewer, "Train UNet")
    tiny_settings(widget, epochs=1, steps=2)
    before = snapshot(viewer)
    assert widget.start()
    wait_idle(qtbot, widget)
    assert notes.errors and "outline" in notes.errors[-1].lower(), notes.errors
    assert "train despite quality-check errors" in notes.errors[-1].lower()
    assert widget._status.value.startswith("Not trained")
    assert widget.last_result is None and widget._session.bundle is None
    assert widget.last_report.codes().get("outline_only") == 1
    assert snapshot(viewer) == before

    # forced: trains anyway, with a warning
    n = len(notes.errors)
    widget._force.value = True
    assert widget.start()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == n, notes.errors
    assert any("quality check" in m.lower() for m in notes.warnings), notes.warnings
    assert widget.last_result is not None and widget._session.bundle is widget.last_result.bundle
    assert snapshot(viewer) == before


def test_model_widget_load_save_and_corrupt_files(viewer, qtbot, notes, tmp_path):
    from napari_cytounet.widgets._session import session_for

    good = save_model(tiny_bundle(), tmp_path / "tiny.keras")
    session = session_for(viewer)
    widget = dock(viewer, "Model")
    assert "No model yet" in widget._summary.value
    assert not widget._save_btn.enabled

    def refused(action, match: str, *, in_worker: bool = False) -> None:
        n = len(notes.errors)
        before = snapshot(viewer)
        bundle = session.bundle
        assert action() == in_worker
        wait_idle(qtbot, widget)
        assert len(notes.errors) == n + 1, notes.errors
        assert match.lower() in notes.errors[-1].lower(), notes.errors[-1]
        assert session.bundle is bundle and snapshot(viewer) == before
        assert widget._load_btn.enabled and not widget.running

    refused(lambda: widget.save(tmp_path / "nothing.keras"), "no current model to save")
    refused(lambda: widget.load(tmp_path / "missing.keras"), "no model file")
    corrupt = tmp_path / "x.keras"
    corrupt.write_bytes(b"\x00garbage\xff" * 100)
    refused(lambda: widget.load(corrupt), "corrupt", in_worker=True)
    assert session.bundle is None

    # loading a good file works afterwards
    widget._load_path.value = good
    widget._load_btn.native.click()
    wait_idle(qtbot, widget)
    assert session.bundle is not None and session.bundle.unet.depth == 2
    assert session.matches_file(good)
    assert str(good.resolve()) in widget._summary.value
    assert "UNet depth 2" in widget._record.value and "epoch    loss" in widget._record.value
    assert widget._plot.points == len(session.bundle.history["loss"]) > 0
    assert widget._plot.flush() and not widget._plot.canvas.pixmap().isNull()  # drawn
    assert any("now the current model" in m for m in notes.infos)

    # a corrupt file leaves the loaded model in place
    refused(lambda: widget.load(corrupt), "corrupt", in_worker=True)
    assert session.matches_file(good)

    # save (atomic, with the record beside it); the saved file loads back
    assert widget._save_btn.enabled
    target = tmp_path / "saved" / "copy"
    target.parent.mkdir()
    assert widget.save(target)
    wait_idle(qtbot, widget)
    saved = tmp_path / "saved" / "copy.keras"
    assert saved.is_file() and saved.with_suffix(".json").is_file()
    assert widget._save_path.value == saved
    assert session.matches_file(saved)
    assert len(notes.errors) == 4, notes.errors


def test_train_start_from_corrupt_file_in_the_model_widget_flow(viewer, qtbot, notes, tmp_path):
    """Train 'start from file' with garbage bytes: refused in the worker, nothing changes."""
    image, labels = cells((64, 64))
    viewer.add_image(image, name="cells")
    viewer.add_labels(labels, name="cells mask")
    widget = dock(viewer, "Train UNet")
    tiny_settings(widget, epochs=1, steps=1)
    corrupt = tmp_path / "x.keras"
    corrupt.write_bytes(np.random.default_rng(1).bytes(4096))
    widget._start_from.value = "file"
    widget._model_file.value = corrupt
    before = snapshot(viewer)
    assert widget.start()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == 1 and "corrupt" in notes.errors[0].lower(), notes.errors
    assert widget._session.bundle is None and widget.last_result is None
    assert widget._status.value == "Training failed: see the notification."
    assert widget._train_btn.text == "Train" and widget._session.busy == ""
    assert snapshot(viewer) == before


def test_train_refuses_to_continue_a_model_with_other_channels(viewer, qtbot, notes):
    """Continuing a 3-channel model on a grayscale image: the core refuses; nothing changes."""
    from napari_cytounet.widgets._session import session_for

    image, labels = cells((64, 64))
    viewer.add_image(image, name="cells")
    viewer.add_labels(labels, name="cells mask")
    session = session_for(viewer)
    rgb_model = tiny_bundle(channels=3)
    session.set_model(rgb_model, "rgb model")
    widget = dock(viewer, "Train UNet")
    tiny_settings(widget, epochs=1, steps=1)
    widget._start_from.value = "current"
    before = snapshot(viewer)
    assert widget.start()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == 1, notes.errors
    assert "channel" in notes.errors[0].lower(), notes.errors
    assert session.bundle is rgb_model and widget.last_result is None
    assert snapshot(viewer) == before and session.busy == ""
    # still usable: a new model trains on the same data
    widget._start_from.value = "new"
    assert widget.start()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == 1 and widget.last_result is not None
    assert session.bundle.unet.in_channels == 1
