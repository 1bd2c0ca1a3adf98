"""The Score widget: the table matches the core, per-plane rows, CSV, error layer, bad choices."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from gui_helpers import cells, dock, snapshot, wait_idle

pytestmark = pytest.mark.gui


def _imperfect(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """A prediction with a missed cell, a false blob and a shifted border."""
    pred = (truth > 0).astype(np.uint8)
    ids = [i for i in np.unique(truth) if i]
    pred[truth == ids[seed % len(ids)]] = 0  # a missed cell
    h, w = truth.shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    blob = (yy - 6) ** 2 + (xx - (w - 8)) ** 2 <= 16
    pred[blob & (truth == 0)] = 1  # a false positive
    pred = np.roll(pred, 1, axis=-1)  # borders one pixel off
    return pred


def _score(widget, qtbot, notes):
    n = len(notes.errors)
    assert widget.score()
    assert not widget._score_btn.enabled
    wait_idle(qtbot, widget)
    assert len(notes.errors) == n, notes.errors
    assert widget._score_btn.enabled
    return widget.table_data


def _row_values(r) -> list:
    return [
        round(r.dice, 4),
        round(r.iou, 4),
        round(r.precision, 4),
        round(r.recall, 4),
        round(r.object_f1, 4),
        r.tp,
        r.fp,
        r.fn,
    ]


def test_score_2d_table_errors_layer_and_csv(viewer, qtbot, notes, tmp_path):
    from napari.layers import Labels

    from napari_cytounet.core.metrics import score

    _, truth = cells((64, 64))
    pred = _imperfect(truth)
    viewer.add_labels(truth, name="truth", scale=(0.5, 0.5))
    viewer.add_labels(pred, name="pred", scale=(0.5, 0.5))
    widget = dock(viewer, "Score")
    widget._pred.value = viewer.layers["pred"]
    assert widget._truth.value.name == "truth"  # the other Labels layer of the same shape
    table = _score(widget, qtbot, notes)

    expected = score(pred, truth, iou_threshold=0.5)
    assert table.overall == expected.overall and table.rows == expected.rows
    shown = widget._table.value
    assert list(shown["columns"]) == [
        "Dice",
        "IoU",
        "precision",
        "recall",
        "object F1",
        "TP",
        "FP",
        "FN",
    ]
    assert list(shown["index"]) == ["overall"]
    assert [list(r) for r in shown["data"]] == [_row_values(expected.overall)]
    o = expected.overall
    assert o.fn >= 1 and o.fp >= 1 and 0 < o.dice < 1  # the test data really has errors
    assert f"Dice {o.dice:.3f}" in widget._summary.value

    # errors layer: 1 = false positive, 2 = false negative
    errors = viewer.layers["pred errors"]
    assert isinstance(errors, Labels)
    p, t = pred > 0, truth > 0
    np.testing.assert_array_equal(errors.data == 1, p & ~t)
    np.testing.assert_array_equal(errors.data == 2, t & ~p)
    np.testing.assert_array_equal(errors.data == 0, p == t)
    np.testing.assert_allclose(errors.scale, (0.5, 0.5))
    np.testing.assert_allclose(
        errors.colormap.map(np.array([1, 2]))[:, :3],
        [[1.0, 59 / 255, 48 / 255], [47 / 255, 155 / 255, 1.0]],
        atol=0.01,
    )

    # CSV export (via the field and the button): header, one row, the overall row
    assert widget._export_btn.enabled
    widget._csv.value = tmp_path / "scores"
    widget._export_btn.native.click()
    path = tmp_path / "scores.csv"
    assert path.is_file() and any("Saved the scores" in m for m in notes.infos)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = path.read_text().splitlines()[0].split(",")
    assert header[:4] == ["name", "dice", "iou", "precision"] and "tp" in header
    assert [r["name"] for r in rows] == ["image", "overall"]
    assert float(rows[-1]["dice"]) == pytest.approx(o.dice, abs=1e-6)
    assert int(rows[-1]["fn"]) == o.fn and int(rows[-1]["fp"]) == o.fp

    # scoring again (another prediction) updates the table and the same errors layer
    n_layers = len(viewer.layers)
    viewer.layers["pred"].data = truth.copy()  # the same instances: a perfect prediction
    table = _score(widget, qtbot, notes)
    assert table.overall.dice == 1.0 and table.overall.object_f1 == 1.0
    assert table.overall.fn == table.overall.fp == 0
    assert len(viewer.layers) == n_layers and viewer.layers["pred errors"] is errors
    assert not errors.data.any()
    assert list(widget._table.value["data"][0])[:5] == [1.0] * 5


def test_score_stack_per_plane(viewer, qtbot, notes, tmp_path):
    from napari_cytounet.core.metrics import score
    from napari_cytounet.core.synthetic import synthetic_stack

    _, truth = synthetic_stack(3, (64, 64))
    pred = np.stack([_imperfect(truth[z], seed=z) for z in range(3)])
    pred[1] = truth[1] > 0  # one perfect plane
    viewer.add_labels(truth, name="truth")
    viewer.add_labels(pred, name="pred")
    widget = dock(viewer, "Score")
    widget._pred.value = viewer.layers["pred"]
    widget._truth.value = viewer.layers["truth"]
    widget._iou.value = 0.7
    table = _score(widget, qtbot, notes)
    expected = score(pred, truth, iou_threshold=0.7)
    assert [r.name for r in table.rows] == ["plane 0", "plane 1", "plane 2"]
    shown = widget._table.value
    assert list(shown["index"]) == ["overall", "plane 0", "plane 1", "plane 2"]
    assert [list(r) for r in shown["data"]] == [
        _row_values(r) for r in [expected.overall, *expected.rows]
    ]
    assert shown["data"][2][0] == 1.0  # the perfect plane
    assert viewer.layers["pred errors"].data.shape == (3, 64, 64)
    path = widget.export_csv(tmp_path / "stack.csv")
    names = [line.split(",")[0] for line in path.read_text().splitlines()]
    assert names == ["name", "plane 0", "plane 1", "plane 2", "overall"]


def test_score_bad_choices(viewer, qtbot, notes, tmp_path):
    widget = dock(viewer, "Score")

    def refused(match: str) -> None:
        n = len(notes.errors)
        before = snapshot(viewer)
        widget._score_btn.native.click()
        assert len(notes.errors) == n + 1, notes.errors
        assert match.lower() in notes.errors[-1].lower(), notes.errors[-1]
        assert snapshot(viewer) == before
        assert widget._score_btn.enabled and not widget.running

    refused("choose two labels layers")  # no layers at all
    widget.export_csv(tmp_path / "nothing.csv")
    assert "press score first" in notes.errors[-1].lower()
    assert not (tmp_path / "nothing.csv").exists()
    _, truth = cells((64, 64))
    viewer.add_labels(truth, name="truth")
    refused("same layer")  # just one: both choices are that layer
    viewer.add_labels((truth[:48] > 0).astype(np.uint8), name="pred")
    widget._pred.value = viewer.layers["pred"]
    widget._truth.value = viewer.layers["truth"]
    refused("same image")  # shapes differ
    assert "(48, 64)" in notes.errors[-1] and "(64, 64)" in notes.errors[-1]
    widget._truth.value = viewer.layers["pred"]
    refused("same layer")

    # still usable: a good choice afterwards works
    viewer.layers["pred"].data = (truth > 0).astype(np.uint8)
    widget._truth.value = viewer.layers["truth"]
    assert _score(widget, qtbot, notes).overall.dice == 1.0
