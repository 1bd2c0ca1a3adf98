"""Tests of napari_cytounet.core.metrics: pixel metrics, object matching, score tables."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_cytounet.core.errors import CytoUNetError, DataError
from napari_cytounet.core.metrics import (
    ObjectMatch,
    ScoreRow,
    ScoreTable,
    dice,
    error_map,
    iou,
    match_objects,
    precision,
    recall,
    score,
)


def square(shape, y0, y1, x0, x1, value=1, dtype=np.uint8):
    out = np.zeros(shape, dtype)
    out[y0:y1, x0:x1] = value
    return out


# ---------------------------------------------------------------------------
# pixel metrics


def test_pixel_metrics_hand_computed():
    truth = square((4, 4), 0, 2, 0, 2)  # 4 px
    pred = square((4, 4), 0, 2, 0, 3)  # 6 px, 4 overlap -> TP 4, FP 2, FN 0
    assert dice(pred, truth) == pytest.approx(8 / 10)
    assert iou(pred, truth) == pytest.approx(4 / 6)
    assert precision(pred, truth) == pytest.approx(4 / 6)
    assert recall(pred, truth) == pytest.approx(1.0)
    # swapping roles swaps precision and recall
    assert precision(truth, pred) == pytest.approx(1.0)
    assert recall(truth, pred) == pytest.approx(4 / 6)


def test_pixel_metrics_nonzero_is_foreground_any_dtype():
    truth = np.array([[0, 255, 255, 0]], np.uint8)
    pred = np.array([[0.0, 0.3, 0.0, 7.0]])
    # TP 1, FP 1, FN 1
    assert dice(pred, truth) == pytest.approx(0.5)
    assert iou(pred, truth) == pytest.approx(1 / 3)
    assert dice(truth.astype(bool), truth * 3) == 1.0


def test_empty_vs_empty_scores_one():
    z = np.zeros((5, 5))
    for f in (dice, iou, precision, recall):
        assert f(z, z) == 1.0


def test_one_side_empty_scores_zero():
    z = np.zeros((5, 5))
    o = square((5, 5), 1, 3, 1, 3)
    for f in (dice, iou, precision, recall):
        assert f(z, o) == 0.0, f.__name__
        assert f(o, z) == 0.0, f.__name__


def test_shape_mismatch_is_data_error_with_advice():
    with pytest.raises(DataError, match=r"different shapes.*\(4, 4\).*\(4, 5\)"):
        dice(np.zeros((4, 4)), np.zeros((4, 5)))
    assert issubclass(DataError, CytoUNetError)


def test_error_map_codes():
    pred = np.array([[1, 1, 0, 0]])
    truth = np.array([[1, 0, 1, 0]])
    out = error_map(pred, truth)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 1, 2, 0]]


# ---------------------------------------------------------------------------
# object matching


def test_match_identical_labels():
    lab = np.zeros((10, 10), np.int32)
    lab[1:4, 1:4] = 1
    lab[6:9, 6:9] = 7
    m = match_objects(lab, lab)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    assert m.precision == m.recall == m.f1 == 1.0
    assert m.mean_matched_iou == 1.0
    assert sorted((p, t) for p, t, _ in m.pairs) == [(1, 1), (7, 7)]


def test_match_one_prediction_over_two_truths_counts_once():
    truth = np.zeros((4, 10), np.int32)
    truth[:, 0:4] = 1  # 16 px
    truth[:, 5:8] = 2  # 12 px
    pred = np.zeros((4, 10), np.int32)
    pred[:, 0:8] = 5  # 32 px: IoU 0.5 with truth 1, 0.375 with truth 2
    pred[:, 9] = 6  # a false positive (and two ids, so pred is not taken as binary)
    m = match_objects(pred, truth, iou_threshold=0.3)
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)  # both candidates but only one match
    assert m.pairs[0][:2] == (5, 1)  # the pair with the larger IoU
    assert m.mean_matched_iou == pytest.approx(0.5)
    assert m.precision == 0.5
    assert m.recall == 0.5
    assert m.f1 == pytest.approx(0.5)


def test_match_threshold_and_counts():
    truth = np.zeros((10, 20), np.int32)
    truth[0:4, 0:4] = 1
    truth[0:4, 10:14] = 2
    truth[6:9, 6:9] = 3
    pred = np.zeros_like(truth)
    pred[0:4, 0:4] = 4  # exact
    pred[0:4, 12:16] = 5  # IoU 8 / 24 = 1/3 with truth 2 -> not a match at 0.5
    pred[8:10, 16:20] = 6  # nothing there
    m = match_objects(pred, truth)
    assert (m.tp, m.fp, m.fn) == (1, 2, 2)
    assert m.precision == pytest.approx(1 / 3)
    assert m.recall == pytest.approx(1 / 3)
    m = match_objects(pred, truth, iou_threshold=0.3)
    assert (m.tp, m.fp, m.fn) == (2, 1, 1)
    assert m.mean_matched_iou == pytest.approx((1 + 1 / 3) / 2)


def test_match_assignment_is_globally_optimal():
    # pred A overlaps truths 1 and 2, pred B only truth 1: greedy by IoU would give
    # A-1 and leave B unmatched; the assignment finds A-2 and B-1.
    truth = np.zeros((1, 12), np.int32)
    truth[0, 0:4] = 1
    truth[0, 4:8] = 2
    pred = np.zeros_like(truth)
    pred[0, 1:7] = 10  # IoU with 1: 3/7, with 2: 3/7... make it favour 1 slightly
    pred[0, 0:1] = 11
    pred[0, 1:6] = 10  # |A|=5: IoU(A,1)=3/6=0.5, IoU(A,2)=2/7~0.29
    pred[0, 0] = 11  # |B|=1: IoU(B,1)=1/4
    m = match_objects(pred, truth, iou_threshold=0.25)
    assert m.tp == 2
    assert sorted(p[:2] for p in m.pairs) == [(10, 2), (11, 1)]


def test_match_binary_inputs_become_connected_components():
    truth = np.zeros((10, 10), np.uint8)
    truth[1:4, 1:4] = 255
    truth[6:9, 6:9] = 255
    pred = (truth > 0).astype(bool)
    m = match_objects(pred, truth)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)


def test_match_empty_cases():
    z = np.zeros((6, 6), np.int32)
    o = square((6, 6), 1, 4, 1, 4)
    m = match_objects(z, z)
    assert (m.tp, m.fp, m.fn) == (0, 0, 0)
    assert m.precision == m.recall == m.f1 == 1.0
    m = match_objects(z, o)
    assert (m.tp, m.fp, m.fn) == (0, 0, 1)
    assert m.precision == m.recall == m.f1 == 0.0
    m = match_objects(o, z)
    assert (m.tp, m.fp, m.fn) == (0, 1, 0)
    assert m.f1 == 0.0


def test_match_many_objects_is_fast_and_exact():
    rng = np.random.default_rng(0)
    truth = np.zeros((1000, 1000), np.int32)
    k = 0
    for y in range(0, 1000, 20):
        for x in range(0, 1000, 20):
            k += 1
            truth[y + 2 : y + 16, x + 2 : x + 16] = k
    # shift every object by one pixel: IoU = 13*14 / (2*196 - 182) = 0.8667
    pred = np.roll(truth, 1, axis=1)
    perm = np.concatenate([[0], rng.permutation(k) + 1000])
    pred = perm[pred]  # arbitrary ids
    m = match_objects(pred, truth)
    assert (m.tp, m.fp, m.fn) == (2500, 0, 0)
    assert m.mean_matched_iou == pytest.approx(182 / 210)


def test_match_rejects_bad_labels():
    with pytest.raises(DataError, match="negative"):
        match_objects(np.array([[-1, 0]]), np.array([[1, 0]]))
    with pytest.raises(DataError, match="whole numbers"):
        match_objects(np.array([[0.5, 0.2]]), np.array([[1, 0]]))
    with pytest.raises(CytoUNetError, match="iou_threshold"):
        match_objects(np.zeros((2, 2)), np.zeros((2, 2)), iou_threshold=0)


def test_object_match_properties():
    m = ObjectMatch(3, 1, 2, 0.75, 0.6, 2 / 3, 0.9)
    assert m.n_pred == 4
    assert m.n_true == 5


# ---------------------------------------------------------------------------
# score tables


def _example_pair():
    truth = np.zeros((2, 10, 10), np.uint8)
    pred = np.zeros_like(truth)
    # plane 0: one square found exactly, one missed
    truth[0, 0:4, 0:4] = 1
    truth[0, 6:10, 6:10] = 1
    pred[0, 0:4, 0:4] = 1
    # plane 1: a large square predicted too big (TP 36, FP 28)
    truth[1, 1:7, 1:7] = 1
    pred[1, 1:9, 1:9] = 1
    return pred, truth


def test_score_per_plane_and_pooled_overall():
    pred, truth = _example_pair()
    table = score(pred, truth)
    assert [r.name for r in table.rows] == ["plane 0", "plane 1"]
    r0, r1 = table.rows
    assert r0.dice == pytest.approx(2 * 16 / (2 * 16 + 0 + 16))
    assert (r0.tp, r0.fp, r0.fn) == (1, 0, 1)
    assert (r0.pixel_tp, r0.pixel_fp, r0.pixel_fn) == (16, 0, 16)
    assert r1.dice == pytest.approx(72 / 100)
    assert r1.iou == pytest.approx(36 / 64)
    assert (r1.tp, r1.fp, r1.fn) == (1, 0, 0)  # IoU 0.5625 >= 0.5
    # overall pools pixels: TP 52, FP 28, FN 16 -- not the mean of the ratios
    o = table.overall
    assert o.name == "overall"
    assert o.dice == pytest.approx(104 / (104 + 28 + 16))
    assert o.iou == pytest.approx(52 / 96)
    assert o.precision == pytest.approx(52 / 80)
    assert o.recall == pytest.approx(52 / 68)
    assert o.dice != pytest.approx((r0.dice + r1.dice) / 2)
    assert (o.tp, o.fp, o.fn) == (2, 0, 1)
    assert o.object_recall == pytest.approx(2 / 3)
    assert o.object_f1 == pytest.approx(4 / 5)
    # mean is the plain mean of the rows
    assert table.mean.dice == pytest.approx((r0.dice + r1.dice) / 2)
    assert table.mean.object_f1 == pytest.approx((r0.object_f1 + r1.object_f1) / 2)


def test_score_sequences_with_names_and_different_sizes():
    a_t = square((8, 8), 1, 5, 1, 5)
    b_t = square((12, 6), 2, 6, 1, 4)
    table = score([a_t, np.zeros_like(b_t)], [a_t, b_t], names=["cho01", "cho02"])
    assert [r.name for r in table.rows] == ["cho01", "cho02"]
    assert table.rows[0].dice == 1.0
    assert table.rows[1].dice == 0.0
    assert table.rows[1].fn == 1


def test_score_2d_and_4d_naming():
    a = square((6, 6), 1, 3, 1, 3)
    assert [r.name for r in score(a, a).rows] == ["image"]
    stack = np.stack([np.stack([a, a, a])] * 2)  # (2, 3, 6, 6)
    names = [r.name for r in score(stack, stack).rows]
    assert names[:2] == ["plane 0,0", "plane 0,1"]
    assert len(names) == 6


def test_score_validation():
    a = np.zeros((4, 4))
    with pytest.raises(DataError, match="names"):
        score(a, a, names=["x", "y"])
    with pytest.raises(DataError, match="2 predictions but 1"):
        score([a, a], [a])
    with pytest.raises(DataError, match="item 1"):
        score([a, a], [a, np.zeros((3, 3))])


def test_csv_round_trip(tmp_path):
    pred, truth = _example_pair()
    table = score(pred, truth, names=["a, first", "b"])
    path = table.to_csv(tmp_path / "sub" / "scores.csv")
    with open(path, newline="") as fh:
        records = list(csv.DictReader(fh))
    assert [r["name"] for r in records] == ["a, first", "b", "overall"]
    assert float(records[-1]["dice"]) == pytest.approx(table.overall.dice, abs=1e-6)
    assert int(records[-1]["fn"]) == 1
    back = ScoreTable.read_csv(path)
    assert [r.name for r in back.rows] == ["a, first", "b"]
    for got, want in zip([*back.rows, back.overall], [*table.rows, table.overall]):
        for key, value in want.as_dict().items():
            assert getattr(got, key) == pytest.approx(value, abs=1e-6), key
    assert not list(tmp_path.glob("sub/.*"))  # no temporary file left


def test_as_dicts_and_format():
    pred, truth = _example_pair()
    table = score(pred, truth)
    dicts = table.as_dicts()
    assert [d["name"] for d in dicts] == ["plane 0", "plane 1", "overall"]
    assert dicts[0]["dice"] == table.rows[0].dice
    text = table.format()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["name", "dice", "iou"]
    assert lines[1].startswith("plane 0")
    assert lines[-2].startswith("mean")
    assert lines[-1].startswith("overall")
    assert f"{table.overall.dice:.3f}" in lines[-1]


def test_score_row_from_counts():
    row = ScoreRow.from_counts("x", (0, 0, 0), (0, 0, 0))
    assert row.dice == row.object_f1 == 1.0
