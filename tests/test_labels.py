"""Label helpers of the core (scribbles, corrections, planes) and the layer geometry and output
tags of the widgets, on napari's real viewer model (no window needed)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cytounet.core.labels import (
    annotated_planes,
    as_scribbles,
    edited_planes,
    merge_corrections,
)


def test_as_scribbles_marks_every_pixel():
    out = as_scribbles(np.array([[0, 1, 7]], np.int32))
    assert out.dtype == np.uint8
    assert out.tolist() == [[1, 2, 2]]


def test_annotated_planes_of_2d_and_stacks():
    assert annotated_planes(np.zeros((4, 4))) == []
    assert annotated_planes(np.ones((4, 4))) == [()]
    stack = np.zeros((2, 3, 4, 4), np.uint8)
    stack[1, 2, 0, 0] = 1
    stack[0, 0, 3, 3] = 5
    assert annotated_planes(stack) == [(0, 0), (1, 2)]
    assert edited_planes(stack.astype(bool)) == [(0, 0), (1, 2)]


def test_merge_corrections_keeps_earlier_edits_the_user_did_not_touch_again():
    predicted = np.array([[0, 0, 1, 1]])
    first, edits = merge_corrections(np.array([[1, 0, 1, 1]]), predicted)
    assert edits.tolist() == [[True, False, False, False]]
    # a new prediction, then an edit elsewhere: the first edit is kept
    predicted2 = np.array([[0, 0, 0, 1]])
    second, edits2 = merge_corrections(np.array([[0, 0, 0, 0]]), predicted2, first, edits)
    assert second.tolist() == [[1, 0, 0, 0]]
    assert edits2.tolist() == [[True, False, False, True]]


def test_merge_corrections_without_a_prediction_counts_everything_as_edited():
    corrections, edits = merge_corrections(np.array([[3, 0]]), None)
    assert corrections.tolist() == [[3, 0]]
    assert edits.all()


@pytest.fixture
def viewer_model():
    components = pytest.importorskip("napari.components")
    return components.ViewerModel()


def test_outputs_keep_the_whole_geometry_of_their_image(viewer_model):
    from napari_cytounet.widgets import _layers

    image = viewer_model.add_image(
        np.zeros((3, 8, 8), np.float32),
        name="cells",
        scale=(2.0, 0.5, 0.5),
        translate=(1.0, 10.0, 20.0),
        rotate=15,
        shear=[0.1, 0.0, 0.0],
        units=("um", "um", "um"),
        axis_labels=("z", "y", "x"),
    )
    out = _layers.put_labels(
        viewer_model,
        "cells segmentation",
        np.ones((3, 8, 8), np.uint8),
        image,
        tag=_layers.output_tag(image, _layers.SEGMENTATION),
    )
    np.testing.assert_allclose(out.affine.affine_matrix, image.affine.affine_matrix)
    np.testing.assert_allclose(out.rotate, image.rotate)
    np.testing.assert_allclose(out.shear, image.shear)
    np.testing.assert_allclose(out.scale, image.scale)
    np.testing.assert_allclose(out.translate, image.translate)
    assert tuple(out.units) == tuple(image.units)
    assert tuple(out.axis_labels) == ("z", "y", "x")
    np.testing.assert_allclose(
        out.data_to_world([1, 2, 3]), image.data_to_world([1, 2, 3]), atol=1e-9
    )


def test_outputs_are_found_by_tag_not_by_name(viewer_model):
    from napari.layers import Labels

    from napari_cytounet.widgets import _layers

    image = viewer_model.add_image(np.zeros((8, 8), np.float32), name="cells")
    users = viewer_model.add_labels(np.full((8, 8), 7, np.uint8), name="cells segmentation")
    assert _layers.find_output(viewer_model, image, _layers.SEGMENTATION, Labels) is None
    ours = _layers.put_labels(
        viewer_model,
        "cells segmentation",
        np.ones((8, 8), np.uint8),
        image,
        tag=_layers.output_tag(image, _layers.SEGMENTATION),
    )
    assert ours is not users
    assert np.all(users.data == 7), "a user's layer with the output's name was overwritten"
    image.name = "renamed"  # renaming the image does not lose its output
    again = _layers.put_labels(
        viewer_model,
        "renamed segmentation",
        np.zeros((8, 8), np.uint8),
        image,
        tag=_layers.output_tag(image, _layers.SEGMENTATION),
    )
    assert again is ours
    assert len(viewer_model.layers) == 3


def test_a_single_plane_is_written_in_place(viewer_model):
    from napari_cytounet.widgets import _layers

    image = viewer_model.add_image(np.zeros((4, 8, 8), np.float32), name="stack")
    tag = _layers.output_tag(image, _layers.SEGMENTATION)
    layer = _layers.put_labels(
        viewer_model, "stack segmentation", np.zeros((4, 8, 8), np.uint8), image, tag=tag
    )
    buffer = layer.data
    _layers.put_labels(
        viewer_model,
        "stack segmentation",
        np.ones((8, 8), np.uint8),
        image,
        index=(2,),
        tag=tag,
    )
    assert layer.data is buffer, "the stack was copied to write one plane"
    assert layer.data[2].all() and not layer.data[[0, 1, 3]].any()
