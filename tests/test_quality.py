"""Tests of napari_cytounet.core.quality: training-set checks before training."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from bbbc030_data import full_bbbc030
from napari_cytounet.core.errors import ConfigError, DataError
from napari_cytounet.core.io import write_image, write_labels
from napari_cytounet.core.quality import (
    SEVERITY,
    Issue,
    QualityReport,
    check_dataset,
    check_folders,
    check_pair,
    is_outline_only,
    outline_score,
)
from napari_cytounet.core.synthetic import synthetic_cells

BBBC030 = full_bbbc030() or Path("/nonexistent/bbbc030")
needs_bbbc030 = pytest.mark.skipif(not BBBC030.is_dir(), reason="shared BBBC030 data not available")


def load_mask(path: Path) -> np.ndarray:
    m = iio.imread(path)
    if m.ndim == 3:
        m = m[..., 0]
    return m > 0


def codes(issues) -> list[str]:
    return [i.code for i in issues]


def disk_mask(shape=(64, 64), centre=(32, 32), radius=20.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(yy - centre[0], xx - centre[1]) < radius


IMAGE = np.random.default_rng(0).random((64, 64)).astype(np.float32)
MASK = disk_mask().astype(np.uint8) * 255


# ---------------------------------------------------------------------------
# outline detection on the real BBBC030 data


def _bbbc030_files(kind: str) -> list[Path]:
    return sorted(BBBC030.glob(f"*/{kind}/*.png"))


@needs_bbbc030
def test_every_bbbc030_outline_is_flagged_and_no_mask_is():
    outlines = _bbbc030_files("outlines")
    masks = _bbbc030_files("masks")
    assert len(outlines) == 40
    assert len(masks) == 40
    outline_scores = {
        p.parent.parent.name + "/" + p.name: outline_score(load_mask(p)) for p in outlines
    }
    mask_scores = {p.parent.parent.name + "/" + p.name: outline_score(load_mask(p)) for p in masks}
    missed = [k for k, v in outline_scores.items() if v < 0.5]
    false_alarms = [k for k, v in mask_scores.items() if v >= 0.5]
    assert not missed, f"outlines not flagged: {missed}"
    assert not false_alarms, f"filled masks flagged: {false_alarms}"
    # with a wide margin either side of the 0.5 cut-off
    assert min(outline_scores.values()) >= 0.9
    assert max(mask_scores.values()) <= 0.1
    assert is_outline_only(load_mask(outlines[0]))
    assert not is_outline_only(load_mask(masks[0]))


@needs_bbbc030
def test_check_folders_on_bbbc030(tmp_path):
    images = BBBC030 / "validation" / "images"
    report = check_folders(images, BBBC030 / "validation" / "outlines")
    assert report.n_pairs == 20
    assert codes(report.issues) == ["outline_only"] * 20
    assert not report.ok
    first = report.errors[0]
    assert first.item == "cho01"
    assert first.message.startswith("cho01: the mask only draws object outlines (")
    assert "binary_fill_holes" in first.message
    assert "--force" in first.message
    assert report.format().splitlines()[-1].startswith("FAILED: 20 pairs checked: 20 errors")
    # the filled masks pass (a few pairs suffice here: all 40 masks are scored above)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("cho02.png", "cho14.png", "cho15.png"):
        (tmp_path / "images" / name).symlink_to(images / name)
        (tmp_path / "masks" / name).symlink_to(BBBC030 / "validation" / "masks" / name)
    good = check_folders(tmp_path / "images", tmp_path / "masks")
    assert good.ok
    assert good.issues == []
    assert good.format() == "OK: 3 pairs checked: 0 errors, 0 warnings. No problem found."


# ---------------------------------------------------------------------------
# outline detection on small arrays


def test_outline_score_shapes():
    yy, xx = np.mgrid[:120, :120]
    r = np.hypot(yy - 60, xx - 60)
    filled = r < 30
    thin_ring = np.abs(r - 30) < 0.7
    thick_ring = (r < 30) & (r >= 26)  # 4 px wide outline
    cytoplasm = (r < 30) & (r >= 10)  # a filled ring (nucleus excluded)
    open_arc = thin_ring & (xx < 60)  # open curve: encloses nothing
    with_holes = filled.copy()
    with_holes[55:58, 55:58] = False
    assert outline_score(filled) == 0.0
    assert outline_score(with_holes) < 0.1
    assert outline_score(cytoplasm) < 0.5
    assert outline_score(thin_ring) == 1.0
    assert outline_score(thick_ring) >= 0.5
    assert outline_score(open_arc) >= 0.9
    assert is_outline_only(thin_ring.astype(np.uint8) * 255)
    assert not is_outline_only(filled)


def test_small_filled_blobs_are_not_outlines():
    spots = np.zeros((100, 100), bool)
    spots[5::10, 5::10] = True
    spots[6::10, 5::10] = True
    spots[5::10, 6::10] = True
    spots[6::10, 6::10] = True  # 2x2 spots: thin, but not curves
    assert outline_score(spots) < 0.5
    _, labels = synthetic_cells((128, 128), radius=(3, 5), seed=3)
    assert outline_score(labels) < 0.5
    assert outline_score(np.zeros((10, 10))) == 0.0  # nothing to judge


# ---------------------------------------------------------------------------
# each issue code on small arrays


def test_good_pair_has_no_issue():
    assert check_pair(IMAGE, MASK, name="ok") == []
    image, labels = synthetic_cells((96, 96), seed=0)
    assert check_pair(image, labels, name="instances") == []  # many consecutive-ish ids
    rgb_mask = np.dstack([MASK, MASK, MASK])
    assert check_pair(np.dstack([IMAGE] * 3), rgb_mask) == []


def test_shape_mismatch():
    issues = check_pair(IMAGE, MASK[:60], name="a")
    assert codes(issues) == ["shape_mismatch"]
    assert "64x64" in issues[0].message
    assert "60x64" in issues[0].message
    assert issues[0].severity == "error"
    colour = np.dstack([MASK, MASK * 0, MASK])
    assert codes(check_pair(IMAGE, colour, name="c")) == ["shape_mismatch"]


def test_nan_and_constant_images():
    nan = IMAGE.copy()
    nan[3, 3] = np.nan
    issues = check_pair(nan, MASK, name="n")
    assert codes(issues) == ["nan_image"]
    assert "1 NaN or infinite pixel;" in issues[0].message
    issues = check_pair(np.full((64, 64), 7, np.uint16), MASK, name="k")
    assert codes(issues) == ["constant_image"]
    assert "7" in issues[0].message
    assert {i.severity for i in issues} == {"error"}


def test_empty_and_all_foreground_masks():
    issues = check_pair(IMAGE, np.zeros((64, 64), np.uint8), name="e")
    assert codes(issues) == ["empty_mask"]
    assert issues[0].severity == "warning"
    issues = check_pair(IMAGE, np.ones((64, 64), np.uint8), name="f")
    assert codes(issues) == ["all_foreground"]
    assert "inverted" in issues[0].message


def test_non_binary_antialiased_but_not_instances():
    disk = disk_mask(radius=20)
    edge = disk & ~disk_mask(radius=19)
    antialiased = np.where(disk, 255, 0).astype(np.uint8)
    rng = np.random.default_rng(0)
    antialiased[edge] = rng.choice([37, 128], size=int(edge.sum()))
    issues = check_pair(IMAGE, antialiased, name="aa")
    assert codes(issues) == ["non_binary"]
    assert "0" not in issues[0].message.split("values ")[1][:1]  # lists the nonzero values
    assert "37, 128, 255" in issues[0].message
    assert issues[0].severity == "warning"
    # integer instance ids are fine, touching or not
    labels = np.zeros((64, 64), np.int32)
    for k in range(8):
        labels[2 + 8 * k : 8 + 8 * k, 5:30] = k + 1
        labels[2 + 8 * k : 8 + 8 * k, 30:60] = k + 20
    assert check_pair(IMAGE, labels) == []
    fractional = MASK.astype(np.float32) / 255 * 0.7
    assert codes(check_pair(IMAGE, fractional)) == ["non_binary"]


def test_multiclass_dense_values():
    classes = np.zeros((64, 64), np.uint8)
    classes[5:30, 5:30] = 1
    classes[35:60, 35:60] = 2
    assert check_pair(IMAGE, classes, classes=3) == []
    issues = check_pair(IMAGE, classes, classes=2, name="m")
    # an error, as training would fail on it (the same rule: data.label_values_problem)
    assert codes(issues) == ["invalid_labels"] and issues[0].severity == "error"
    assert "0..1" in issues[0].message


def test_check_and_training_apply_the_same_class_rule():
    """train --classes 3 on 0/255 masks: the check refuses it, as training would."""
    from napari_cytounet.core.data import labels_to_targets

    mask = np.zeros((64, 64), np.uint8)
    mask[10:40, 10:40] = 255
    issues = check_pair(IMAGE, mask, classes=3, name="m")
    assert codes(issues) == ["invalid_labels"] and "use 1 class" in issues[0].message
    with pytest.raises(DataError, match=r"0\.\.2"):
        labels_to_targets(mask, "dense", 3)
    # scribbles: 3 classes take 0..3; 4 is refused by both
    scribbles = np.zeros((64, 64), np.uint8)
    scribbles[:5], scribbles[10:15], scribbles[20:25] = 1, 2, 3
    assert check_pair(IMAGE, scribbles, label_mode="scribbles", classes=3) == []
    labels_to_targets(scribbles, "scribbles", 3)
    scribbles[30:35] = 4
    assert codes(check_pair(IMAGE, scribbles, label_mode="scribbles", classes=3)) == [
        "invalid_labels"
    ]
    with pytest.raises(DataError):
        labels_to_targets(scribbles, "scribbles", 3)


def test_outline_only_issue_message():
    ring = MASK.copy()
    ring[disk_mask(radius=18)] = 0
    issues = check_pair(IMAGE, ring, name="cho21")
    assert codes(issues) == ["outline_only"]
    message = issues[0].message
    assert message.startswith("cho21: the mask only draws object outlines (")
    assert "% of the enclosed area is filled)" in message
    assert "--force" in message
    assert issues[0].severity == "error"


def test_scribbles_checks():
    good = np.zeros((64, 64), np.uint8)
    good[5:8, 5:30] = 1
    good[30:33, 30:40] = 2
    assert check_pair(IMAGE, good, label_mode="scribbles") == []
    issues = check_pair(IMAGE, np.zeros((64, 64), np.uint8), name="s", label_mode="scribbles")
    assert codes(issues) == ["no_annotation"]
    assert issues[0].severity == "error"
    only_bg = np.where(good == 1, 1, 0).astype(np.uint8)
    issues = check_pair(IMAGE, only_bg, name="s", label_mode="scribbles")
    assert codes(issues) == ["single_class"]
    assert issues[0].severity == "warning"
    assert "background (1)" in issues[0].message
    too_high = good.copy()
    too_high[50, 50] = 3
    issues = check_pair(IMAGE, too_high, name="s", label_mode="scribbles")
    assert codes(issues) == ["invalid_labels"]
    assert "0 (not annotated), 1 (background) or 2 (foreground)" in issues[0].message
    # training's rule: a 2-class model takes scribbles 1..2, a 3-class one 1..3
    assert codes(check_pair(IMAGE, too_high, label_mode="scribbles", classes=2)) == [
        "invalid_labels"
    ]
    assert check_pair(IMAGE, too_high, label_mode="scribbles", classes=3) == []
    # thin scribbles are never taken for outlines, and empty is not "empty_mask"
    assert "outline_only" not in codes(check_pair(IMAGE, good, label_mode="scribbles"))


def test_invalid_dense_labels():
    neg = MASK.astype(np.int16)
    neg[0, 0] = -1
    assert codes(check_pair(IMAGE, neg)) == ["invalid_labels"]


def test_bad_options_raise():
    with pytest.raises(ConfigError, match="label_mode"):
        check_pair(IMAGE, MASK, label_mode="sparse")
    with pytest.raises(ConfigError, match="classes"):
        check_pair(IMAGE, MASK, classes=0)


def test_every_code_has_a_severity():
    assert {k for k, v in SEVERITY.items() if v == "error"} == {
        "outline_only",
        "shape_mismatch",
        "nan_image",
        "unreadable",
        "no_annotation",
        "constant_image",
        "invalid_labels",
    }
    assert {k for k, v in SEVERITY.items() if v == "warning"} == {
        "empty_mask",
        "all_foreground",
        "non_binary",
        "unpaired_image",
        "unpaired_mask",
        "single_class",
    }


# ---------------------------------------------------------------------------
# datasets, folders and reports


def test_check_dataset_and_report():
    report = check_dataset(
        [IMAGE, IMAGE, IMAGE],
        [MASK, np.zeros_like(MASK), MASK[:40]],
        names=["a", "b", "c"],
    )
    assert report.n_pairs == 3
    assert codes(report.issues) == ["empty_mask", "shape_mismatch"]
    assert [i.item for i in report.issues] == ["b", "c"]
    assert not report.ok
    assert len(report.errors) == 1
    assert len(report.warnings) == 1
    assert report.summary() == "3 pairs checked: 1 error, 1 warning"
    lines = report.format().splitlines()
    assert lines[0] == "Errors (1):"
    assert lines[1].startswith("  [shape_mismatch] c: ")
    assert lines[2] == "Warnings (1):"
    assert lines[3].startswith("  [empty_mask] b: ")
    assert lines[-1].startswith("FAILED: 3 pairs checked: 1 error, 1 warning.")
    with pytest.raises(DataError, match="2 images but 1 masks"):
        check_dataset([IMAGE, IMAGE], [MASK])


def test_report_verdicts():
    assert (
        QualityReport([], 2).format()
        == "OK: 2 pairs checked: 0 errors, 0 warnings. No problem found."
    )
    warn = QualityReport([Issue.make("empty_mask", "a", "a: empty.")], 1)
    assert warn.ok
    assert warn.format().splitlines()[-1].startswith("OK with warnings")
    assert warn.codes() == {"empty_mask": 1}


def test_check_folders_unpaired_and_unreadable(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    img16 = (IMAGE * 60000).astype(np.uint16)
    for name in ("a", "b", "c", "lonely"):
        write_image(images / f"{name}.tif", img16)
    write_labels(masks / "a_mask.png", MASK)
    write_labels(masks / "b.png", MASK)
    (masks / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    write_labels(masks / "stray.png", MASK)
    report = check_folders(images, masks)
    assert report.n_pairs == 3
    by_code = {i.code: i for i in report.issues}
    assert set(by_code) == {"unreadable", "unpaired_image", "unpaired_mask"}
    assert by_code["unreadable"].item == "c"
    assert "c.png" in by_code["unreadable"].message
    assert by_code["unpaired_image"].item == "lonely"
    assert "lonely_mask.png" in by_code["unpaired_image"].message
    assert by_code["unpaired_mask"].item == "stray"
    assert not report.ok
    with pytest.raises(DataError, match="does not exist"):
        check_folders(images, tmp_path / "nope")
