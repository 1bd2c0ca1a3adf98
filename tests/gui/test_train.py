"""The Train UNet widget: training, Stop, Save, the record, and every bad choice."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import cells, dock, snapshot, tiny_settings, wait_idle

pytestmark = pytest.mark.gui


def _pair(viewer, shape=(96, 96), name="cells"):
    image, labels = cells(shape)
    viewer.add_image(image, name=name, scale=(0.5, 0.5))
    viewer.add_labels(labels, name=f"{name} mask", scale=(0.5, 0.5))


def test_train_tiny_model(viewer, qtbot, notes, tmp_path):
    _pair(viewer)
    widget = dock(viewer, "Train UNet")
    assert widget._image.value.name == "cells"
    assert widget._labels_layer.value.name == "cells mask"
    tiny_settings(widget, epochs=2, steps=3)
    before = snapshot(viewer)
    assert widget.start()
    assert widget._train_btn.text == "Stop"
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    result = widget.last_result
    assert result is not None and result.reason == "epochs" and result.epochs_run == 2
    session = widget._session
    assert session.bundle is result.bundle
    assert session.training_pairs == [("cells", "cells mask")]
    assert session.bundle.unet.depth == 2 and session.bundle.unet.base_filters == 4
    assert widget._plot.points >= 6 + 2  # every batch and every epoch was plotted
    assert widget._progress.value == 1000
    assert widget._train_btn.text == "Train"
    assert "patches/s" in widget._status.value
    assert snapshot(viewer) == before  # training never changes layers

    # the record, then Save (atomic, via the core) and continue from the current model
    widget._record_btn.native.click()
    assert widget._record_shown and "UNet depth 2" in widget._record.value
    assert "epoch    loss" in widget._record.value
    target = tmp_path / "models" / "cells.keras"
    target.parent.mkdir()
    assert widget.save(target)
    qtbot.waitUntil(lambda: not widget._saver.running, timeout=60_000)
    assert target.is_file() and target.with_suffix(".json").is_file()
    assert any("Saved" in m for m in notes.infos)

    widget._start_from.value = "current"
    widget._epochs.value = 1
    assert widget.start()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    assert widget._session.bundle is widget.last_result.bundle
    assert widget._session.source == "fine-tuned in this session"

    # ... and from the saved file
    widget._start_from.value = "file"
    widget._model_file.value = target
    assert widget.start()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    assert widget.last_result.bundle.history["loss"]


def test_stop_keeps_the_best_model(viewer, qtbot, notes):
    _pair(viewer)
    widget = dock(viewer, "Train UNet")
    tiny_settings(widget, epochs=500, steps=5)
    assert widget.start()
    qtbot.waitUntil(lambda: widget._plot.points >= 8, timeout=120_000)
    widget._on_train_clicked()  # the button reads "Stop" now
    assert widget._train_btn.text == "Stopping…"
    wait_idle(qtbot, widget)
    result = widget.last_result
    assert result is not None and result.reason == "stopped"
    assert result.epochs_run < 500
    assert widget._session.bundle is result.bundle
    assert any("kept the best weights" in m for m in notes.infos)
    assert not notes.errors


def test_scribbles_on_every_annotated_plane_of_a_stack(viewer, qtbot, notes):
    from napari_cytounet.core.synthetic import scribbles_from_labels, synthetic_stack

    stack, labels = synthetic_stack(4, (64, 64))
    scribbles = np.zeros_like(labels, dtype=np.uint8)
    scribbles[1] = scribbles_from_labels(labels[1])
    scribbles[3] = scribbles_from_labels(labels[3])
    viewer.add_image(stack, name="stack")
    viewer.add_labels(scribbles, name="stack scribbles")
    widget = dock(viewer, "Train UNet")
    tiny_settings(widget, epochs=1, steps=2)
    widget._mode.value = "scribbles"
    request = widget.build_request()
    assert request.names == ["stack [plane 1]", "stack [plane 3]"]
    assert request.config.labels == "scribbles"
    assert widget.start()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    assert widget._session.bundle.label_mode == "scribbles"


def test_extra_pairs_and_validation(viewer, qtbot):
    _pair(viewer, name="a")
    _pair(viewer, name="b")
    _pair(viewer, name="c")
    widget = dock(viewer, "Train UNet")
    widget._image.value = viewer.layers["b"]
    assert widget._labels_layer.value.name == "b mask"  # labels follow the image
    widget._add_pair.native.click()
    widget._image.value = viewer.layers["a"]
    widget._val_image.value = viewer.layers["c"]
    widget._val_labels.value = viewer.layers["c mask"]
    request = widget.build_request()
    assert request.names == ["a", "b"]
    assert request.validation_names == ["c"]
    # removing a layer drops the pair that used it
    viewer.layers.remove("b mask")
    assert widget.selected_pairs() == [(viewer.layers["a"], viewer.layers["a mask"])]


def test_bad_choices_notify_and_change_nothing(viewer, qtbot, notes, tmp_path):
    widget = dock(viewer, "Train UNet")
    tiny_settings(widget)

    def refused(match: str) -> None:
        n = len(notes.errors)
        before = snapshot(viewer)
        assert not widget.start()
        assert len(notes.errors) == n + 1, notes.errors
        assert match.lower() in notes.errors[-1].lower(), notes.errors[-1]
        assert snapshot(viewer) == before
        assert widget._train_btn.text == "Train" and not widget.running

    refused("choose an image layer")  # no layers at all
    image, labels = cells((96, 96))
    viewer.add_image(image, name="cells")
    refused("choose a labels layer")
    viewer.add_labels(np.zeros((80, 96), np.uint8), name="small")
    refused("do not match" if False else "shape")  # shapes that do not match
    viewer.layers.remove("small")
    viewer.add_labels(np.zeros((96, 96), np.uint8), name="cells mask")
    refused("empty")
    viewer.layers["cells mask"].data = labels
    widget._start_from.value = "current"
    refused("no current model")
    widget._start_from.value = "file"
    widget._model_file.value = tmp_path / "missing.keras"
    refused("no model file")
    widget._start_from.value = "new"
    widget._val_image.value = viewer.layers["cells"]
    refused("validation")
    widget._val_image.value = None

    # errors found in the worker: outline-only masks (quality check) and a corrupt model
    outline = np.zeros((96, 96), np.uint8)
    for y0, x0 in ((10, 10), (50, 20), (30, 60)):
        outline[y0 : y0 + 25, x0 : x0 + 25] = 1
        outline[y0 + 2 : y0 + 23, x0 + 2 : x0 + 23] = 0
    viewer.layers["cells mask"].data = outline
    before = snapshot(viewer)
    assert widget.start()
    wait_idle(qtbot, widget)
    assert "outline" in notes.errors[-1].lower(), notes.errors[-1]
    assert widget.last_result is None and widget._session.bundle is None
    assert snapshot(viewer) == before

    viewer.layers["cells mask"].data = labels
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 this is not a model")
    widget._start_from.value = "file"
    widget._model_file.value = corrupt
    before = snapshot(viewer)
    n = len(notes.errors)
    assert widget.start()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == n + 1 and "corrupt" in notes.errors[-1].lower(), notes.errors
    assert snapshot(viewer) == before
    assert widget._session.bundle is None
    # GPUs asked for on a machine without one: the engine says so, nothing changes
    widget._start_from.value = "new"
    widget._devices.value = "gpu"
    before = snapshot(viewer)
    n = len(notes.errors)
    assert widget.start()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == n + 1 and "gpu" in notes.errors[-1].lower(), notes.errors
    assert snapshot(viewer) == before and widget._session.bundle is None
    widget._devices.value = "auto"
    # still usable: a good run afterwards works
    assert widget.start()
    wait_idle(qtbot, widget)
    assert widget._session.bundle is not None
