"""The Predict widget: output layers, stacks, RGB, model files, progress, Cancel, bad choices."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import cells, dock, engine_job, save_model, snapshot, tiny_bundle, wait_idle

pytestmark = pytest.mark.gui


def _expected(bundle, image, **params):
    """What the core segments for the same image and settings (the widget must show this).

    Asked of the engine directly (this process never imports TensorFlow).
    """
    channel_axis = params.pop("channel_axis", None)
    events = engine_job(
        "predict", bundle=bundle, path=None, image=image, channel_axis=channel_axis, params=params
    )
    return events[-1]


def _track_progress(widget) -> list[int]:
    values: list[int] = []
    widget._progress.changed.connect(values.append)
    return values


def test_predict_2d_writes_and_updates_layers(viewer, qtbot, notes, with_model):
    from napari.layers import Image, Labels

    image, _ = cells((64, 64))
    viewer.add_image(image, name="cells", scale=(0.5, 0.25), translate=(10.0, -4.0))
    widget = dock(viewer, "Predict")
    assert widget._image.value.name == "cells"
    assert "depth 2" in widget._model_info.value
    widget._probabilities.value = True
    progress = _track_progress(widget)

    widget._predict_btn.native.click()
    assert widget._predict_btn.text == "Cancel"
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    assert widget._predict_btn.text == "Predict"
    seg = viewer.layers["cells segmentation"]
    prob = viewer.layers["cells probability"]
    assert isinstance(seg, Labels) and isinstance(prob, Image)
    for layer in (seg, prob):
        assert layer.data.shape == (64, 64)
        np.testing.assert_allclose(layer.scale, (0.5, 0.25))
        np.testing.assert_allclose(layer.translate, (10.0, -4.0))
    expected = _expected(with_model.bundle, image, threshold=0.5, fill_holes=True)
    np.testing.assert_array_equal(seg.data, expected.labels)
    np.testing.assert_allclose(prob.data, expected.probabilities, atol=1e-5)
    assert prob.data.min() >= 0.0 and prob.data.max() <= 1.0
    assert seg.data.any() and not seg.data.all()
    assert viewer.layers.selection.active is seg
    # progress went up monotonically to the end
    assert progress and progress[-1] == 1000 and widget._progress.value == 1000
    assert progress == sorted(progress)
    assert widget.predictions == 1 and "Wrote 'cells segmentation'" in widget._status.value

    # running again (other threshold) updates the same layers
    names = [la.name for la in viewer.layers]
    widget._threshold.value = 0.8
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    assert [la.name for la in viewer.layers] == names
    assert viewer.layers["cells segmentation"] is seg
    assert viewer.layers["cells probability"] is prob
    assert widget.predictions == 2
    high = _expected(with_model.bundle, image, threshold=0.8, fill_holes=True)
    np.testing.assert_array_equal(seg.data, high.labels)
    assert seg.data.sum() < expected.labels.sum()  # a higher threshold keeps fewer pixels


def test_average_of_eight_views(viewer, qtbot, notes, with_model):
    image, _ = cells((64, 64))
    viewer.add_image(image, name="cells")
    widget = dock(viewer, "Predict")
    widget._views.value = True
    widget._probabilities.value = True
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    expected = _expected(with_model.bundle, image, threshold=0.5, fill_holes=True, views=8)
    one_view = _expected(with_model.bundle, image, threshold=0.5, fill_holes=True)
    prob = viewer.layers["cells probability"].data
    np.testing.assert_allclose(prob, expected.probabilities, atol=1e-5)
    assert not np.allclose(prob, one_view.probabilities, atol=1e-4)
    np.testing.assert_array_equal(viewer.layers["cells segmentation"].data, expected.labels)


def test_stack_plane_by_plane_and_current_plane_only(viewer, qtbot, notes, with_model):
    from napari_cytounet.core.synthetic import synthetic_stack

    stack, _ = synthetic_stack(3, (64, 64))
    viewer.add_image(stack, name="stack", scale=(2.0, 0.5, 0.5))
    widget = dock(viewer, "Predict")
    assert widget._plane_only.enabled  # a stack: the option makes sense

    # current plane only: the plane on screen (world z = 2.0 -> plane 1)
    viewer.dims.set_point(0, 2.0)
    widget._plane_only.value = True
    assert widget.predict()
    assert "plane 1" in widget._status.value
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    seg = viewer.layers["stack segmentation"]
    assert seg.data.shape == (3, 64, 64)
    np.testing.assert_allclose(seg.scale, (2.0, 0.5, 0.5))
    expected = _expected(with_model.bundle, stack, threshold=0.5, fill_holes=True).labels
    np.testing.assert_array_equal(seg.data[1], expected[1])
    assert seg.data[1].any()
    assert not seg.data[0].any() and not seg.data[2].any()

    # the whole stack, plane by plane, into the same layer
    widget._plane_only.value = False
    progress = _track_progress(widget)
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    assert viewer.layers["stack segmentation"] is seg
    np.testing.assert_array_equal(seg.data, expected)
    assert all(seg.data[z].any() for z in range(3))
    assert progress[-1] == 1000 and progress == sorted(progress)
    assert len([la for la in viewer.layers if la.name.startswith("stack segmentation")]) == 1


def test_rgb_image_with_a_three_channel_model(viewer, qtbot, notes):
    from napari_cytounet.widgets._session import session_for

    gray, _ = cells((64, 64))
    rgb = (np.stack([gray] * 3, axis=-1) * np.linspace(0.5, 1, 3)).astype(np.float32)
    layer = viewer.add_image(rgb, name="colour", rgb=True)
    assert layer.rgb
    bundle = tiny_bundle(channels=3)
    session_for(viewer).set_model(bundle, "rgb test model")
    widget = dock(viewer, "Predict")
    assert "3 channel(s)" in widget._model_info.value
    assert not widget._plane_only.enabled  # RGB 2D: no planes
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    seg = viewer.layers["colour segmentation"]
    assert seg.data.shape == (64, 64)
    np.testing.assert_array_equal(seg.data, _expected(bundle, rgb, channel_axis=-1).labels)


def test_model_from_a_file(viewer, qtbot, notes, tmp_path):
    from napari_cytounet.widgets._session import session_for

    path = save_model(tiny_bundle(), tmp_path / "tiny.keras")
    image, _ = cells((64, 64))
    viewer.add_image(image, name="cells")
    widget = dock(viewer, "Predict")
    session = session_for(viewer)
    assert session.bundle is None
    widget._source.value = "file"
    assert not widget._model_file.native.isHidden()
    widget._model_file.value = path
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    # the file became the session's current model, and its prediction was written
    loaded = session.bundle
    assert loaded is not None and loaded.unet.depth == 2
    assert str(path.resolve()) in session.source
    seg = viewer.layers["cells segmentation"]
    np.testing.assert_array_equal(seg.data, _expected(loaded, image).labels)
    # predicting again with the unchanged file does not load it again
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert session.bundle is loaded and widget.predictions == 2


def test_cancel(viewer, qtbot, notes, with_model):
    stack = np.stack([cells((96, 96), seed=s)[0] for s in range(12)])
    viewer.add_image(stack, name="big")
    widget = dock(viewer, "Predict")
    before = snapshot(viewer)
    widget._predict_btn.native.click()
    assert widget.running and widget._predict_btn.text == "Cancel"
    widget._predict_btn.native.click()  # Cancel
    assert widget._status.value == "Cancelled."
    wait_idle(qtbot, widget)
    qtbot.wait(50)  # let any queued event arrive: none may write a layer
    assert widget._predict_btn.text == "Predict"
    assert widget.predictions == 0 and widget.last_result is None
    assert snapshot(viewer) == before
    assert not notes.errors, notes.errors
    # still usable: a prediction afterwards runs to the end
    viewer.layers["big"].data = stack[:2]
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert widget.predictions == 1 and viewer.layers["big segmentation"].data.shape == (2, 96, 96)


def test_bad_choices_notify_and_change_nothing(viewer, qtbot, notes, tmp_path):
    from napari_cytounet.widgets._session import session_for

    widget = dock(viewer, "Predict")
    session = session_for(viewer)

    def refused(match: str, *, in_worker: bool = False) -> None:
        n = len(notes.errors)
        before = snapshot(viewer)
        started = widget.predict()
        assert started == in_worker
        wait_idle(qtbot, widget)
        assert len(notes.errors) == n + 1, notes.errors
        assert match.lower() in notes.errors[-1].lower(), notes.errors[-1]
        assert snapshot(viewer) == before
        assert widget._predict_btn.text == "Predict" and not widget.running

    refused("choose an image layer")  # no layers at all
    image, _ = cells((64, 64))
    viewer.add_image(image, name="cells")
    refused("no current model")
    widget._source.value = "file"
    widget._model_file.value = tmp_path / "missing.keras"
    refused("no model file")
    corrupt = tmp_path / "x.keras"
    corrupt.write_bytes(np.random.default_rng(0).bytes(2048))
    widget._model_file.value = corrupt
    refused("corrupt", in_worker=True)
    assert session.bundle is None  # a corrupt file never becomes the current model
    # a 3-channel model cannot segment a grayscale image (the core refuses it)
    widget._source.value = "current"
    session.set_model(tiny_bundle(channels=3), "rgb model")
    refused("3-channel", in_worker=True)
    assert "use a model trained on images like these" in notes.errors[-1]

    # still usable: the right model works
    session.set_model(tiny_bundle(), "gray model")
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert len(notes.errors) == 5
    assert viewer.layers["cells segmentation"].data.shape == (64, 64)


def test_one_channel_model_accepts_rgb(viewer, qtbot, notes, with_model):
    """The core turns a colour image into its mean intensity for a 1-channel model."""
    gray, _ = cells((64, 64))
    rgb = (np.stack([gray] * 3, axis=-1) * np.array([1.0, 0.8, 0.6])).astype(np.float32)
    viewer.add_image(rgb, name="colour", rgb=True)
    widget = dock(viewer, "Predict")
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    assert viewer.layers["colour segmentation"].data.shape == (64, 64)
