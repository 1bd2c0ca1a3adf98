"""Tests of napari_cytounet.core.postprocess."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_cytounet.core.errors import ConfigError, CytoUNetError, DataError
from napari_cytounet.core.postprocess import (
    fill_holes,
    label_instances,
    postprocess,
    remove_small_objects,
    threshold,
)


def disks(shape, centres, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, bool)
    for cy, cx in centres:
        out |= (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    return out


def test_threshold_is_strict_and_validated():
    prob = np.array([[0.1, 0.5, 0.51, 0.9]])
    assert threshold(prob).tolist() == [[False, False, True, True]]
    assert threshold(prob, 0.05).all()
    for bad in (0, 1, -0.2, 1.5):
        with pytest.raises(ConfigError, match="between 0 and 1"):
            threshold(prob, bad)
    with pytest.raises(DataError, match="NaN"):
        threshold(np.array([[np.nan, 0.2]]))
    assert issubclass(ConfigError, CytoUNetError)


def test_fill_holes_2d_and_per_plane():
    ring = np.zeros((9, 9), bool)
    ring[1:8, 1:8] = True
    ring[3:6, 3:6] = False
    filled = fill_holes(ring)
    assert filled.dtype == bool
    assert filled[1:8, 1:8].all()
    assert filled.sum() == 49
    # a "hole" open to the border is not a hole
    cup = ring.copy()
    cup[3:6, 5:9] = False
    assert not fill_holes(cup)[4, 4]
    # planes are independent and agree with scipy
    rng = np.random.default_rng(0)
    stack = rng.random((3, 30, 40)) > 0.55
    expected = np.stack([ndi.binary_fill_holes(p) for p in stack])
    np.testing.assert_array_equal(fill_holes(stack), expected)


def test_remove_small_objects_binary_and_labels():
    m = np.zeros((10, 10), bool)
    m[0:3, 0:3] = True  # 9 px
    m[6, 6] = True  # 1 px
    m[8:10, 0:2] = True  # 4 px
    out = remove_small_objects(m, 4)
    assert out.dtype == bool
    assert out.sum() == 13
    assert not out[6, 6]
    assert remove_small_objects(m, 0).sum() == 14  # 0 = off
    # diagonal neighbours are one object (8-connectivity): 2 px survive min_size 2
    diag = np.zeros((4, 4), bool)
    diag[0, 0] = diag[1, 1] = True
    assert remove_small_objects(diag, 2).sum() == 2
    # 0/255 masks are binary masks, not one big label 255
    assert remove_small_objects(m.astype(np.uint8) * 255, 4).sum() == 13
    # label images keep their ids
    lab = np.zeros((6, 6), np.int32)
    lab[0:2, 0:2] = 3
    lab[4, 4] = 9
    out = remove_small_objects(lab, 2)
    assert out.dtype == np.int32
    assert set(np.unique(out)) == {0, 3}
    with pytest.raises(ConfigError, match="min_size"):
        remove_small_objects(m, -1)


def test_remove_small_objects_per_plane():
    stack = np.zeros((2, 5, 5), bool)
    stack[0, 2, 2] = True
    stack[1, 2, 2] = True  # same place, next plane: not one 2-pixel object
    assert remove_small_objects(stack, 2).sum() == 0


def test_label_instances_connected_components():
    two = disks((40, 80), [(20, 15), (20, 60)], 8)
    lab = label_instances(two)
    assert lab.dtype == np.int32
    assert lab.max() == 2
    assert set(np.unique(lab)) == {0, 1, 2}


def test_label_instances_splits_touching_disks():
    two = disks((60, 100), [(30, 32), (30, 62)], 17)  # overlapping: one component
    assert label_instances(two).max() == 1
    lab = label_instances(two, split_touching=True)
    assert lab.max() == 2
    # each label sits on one disk centre and covers about half the area
    assert lab[30, 32] != lab[30, 62]
    assert lab[30, 32] > 0
    assert lab[30, 62] > 0
    sizes = np.bincount(lab.ravel())[1:]
    assert abs(int(sizes[0]) - int(sizes[1])) < 0.05 * two.sum()
    assert ((lab > 0) == two).all()  # the mask is unchanged


def test_split_keeps_elongated_and_single_objects_whole():
    yy, xx = np.mgrid[:80, :140]
    ellipse = ((yy - 40) / 12) ** 2 + ((xx - 70) / 50) ** 2 < 1
    rect = np.zeros((60, 140), bool)
    rect[20:40, 10:130] = True  # a flat ridge in the distance transform
    for m in (ellipse, rect, disks((50, 50), [(25, 25)], 15)):
        assert label_instances(m, split_touching=True).max() == 1


def test_split_three_in_a_row_and_stack_labels_unique():
    three = disks((60, 120), [(30, 25), (30, 52), (30, 79)], 15)
    stack = np.stack([three, disks((60, 120), [(30, 30)], 10), np.zeros((60, 120), bool)])
    lab = label_instances(stack, split_touching=True)
    assert lab.shape == stack.shape
    assert np.unique(lab[0][lab[0] > 0]).tolist() == [1, 2, 3]
    assert np.unique(lab[1][lab[1] > 0]).tolist() == [4]
    assert lab[2].max() == 0
    plain = label_instances(stack)
    assert np.unique(plain[plain > 0]).tolist() == [1, 2]  # unique over the stack


def test_min_distance_controls_splitting():
    two = disks((60, 100), [(30, 40), (30, 58)], 14)
    assert label_instances(two, split_touching=True, min_distance=3).max() == 2
    assert label_instances(two, split_touching=True, min_distance=40).max() == 1
    with pytest.raises(ConfigError):
        label_instances(two, split_touching=True, min_distance=0)


def test_postprocess_binary_pipeline():
    prob = np.zeros((30, 30), np.float32)
    prob[2:12, 2:12] = 0.9
    prob[6, 6] = 0.1  # a hole
    prob[20, 20] = 0.8  # a speck
    out = postprocess(prob)
    assert out.dtype == np.uint8
    assert set(np.unique(out)) == {0, 1}
    assert out[6, 6] == 1  # filled
    assert out[20, 20] == 1
    assert postprocess(prob, fill_holes=False)[6, 6] == 0
    out = postprocess(prob, min_size=5)
    assert out[20, 20] == 0
    assert out.sum() == 100
    lab = postprocess(prob, instances=True)
    assert lab.dtype == np.int32
    assert lab.max() == 2
    assert postprocess(prob, threshold=0.95).sum() == 0


def test_postprocess_nd_and_split():
    two = disks((60, 100), [(30, 32), (30, 62)], 17).astype(np.float32) * 0.8
    prob = np.stack([two, two * 0])
    lab = postprocess(prob, instances=True, split_touching=True)
    assert lab.shape == (2, 60, 100)
    assert lab[0].max() == 2
    assert lab[1].max() == 0


def test_postprocess_multiclass():
    soft = np.zeros((20, 20, 3), np.float32)
    soft[..., 0] = 0.6
    soft[2:10, 2:10, 1] = 0.9  # class 1 square with a background hole
    soft[5, 5, 1] = 0.0
    soft[15:18, 15:18, 2] = 0.9  # class 2, 9 px
    soft[0, 19, 2] = 0.9  # class 2 speck
    out = postprocess(soft, multiclass=True)
    assert out.dtype == np.uint8
    assert out.shape == (20, 20)
    assert out[5, 5] == 1  # hole given to the enclosing class
    assert out[16, 16] == 2
    assert out[0, 19] == 2
    out = postprocess(soft, multiclass=True, min_size=4)
    assert out[0, 19] == 0
    assert (out == 2).sum() == 9
    stack = postprocess(np.stack([soft, soft]), multiclass=True, fill_holes=False)
    assert stack.shape == (2, 20, 20)
    assert stack[1, 5, 5] == 0


def test_postprocess_validation():
    prob = np.full((8, 8), 0.7)
    with pytest.raises(ConfigError, match="threshold"):
        postprocess(prob, threshold=1.0)
    with pytest.raises(ConfigError, match="min_size"):
        postprocess(prob, min_size=-3)
    with pytest.raises(ConfigError, match="min_size"):
        postprocess(prob, min_size=2.5)
    bad = prob.copy()
    bad[0, 0] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        postprocess(bad)
    with pytest.raises(DataError, match="shape"):
        postprocess(np.zeros(8))
    with pytest.raises(DataError, match="class channels"):
        postprocess(np.zeros((8, 8, 1)), multiclass=True)
    with pytest.raises(ConfigError, match="binary models"):
        postprocess(np.zeros((8, 8, 2)), multiclass=True, instances=True)
