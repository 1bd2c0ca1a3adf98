"""read_pairs, read_checked_pairs and the check-then-train event stream (no napari, tiny data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cytounet.core import pairs as pairs_module
from napari_cytounet.core.checked_training import iter_checked_training, refusal_message
from napari_cytounet.core.config import TrainingConfig, UNetConfig
from napari_cytounet.core.errors import DataError
from napari_cytounet.core.events import QualityChecked, TrainingFinished, TrainingStarted
from napari_cytounet.core.io import write_image
from napari_cytounet.core.pairs import read_checked_pairs, read_pairs
from napari_cytounet.core.quality import check_folders

TINY = TrainingConfig(epochs=1, steps_per_epoch=1, patch_size=32, batch_size=2, seed=0)
TINY_UNET = UNetConfig(depth=2, base_filters=4)


def _cells(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 48x48 float image of three bright squares and their 0/1 mask."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((48, 48), np.uint8)
    for y, x in rng.integers(8, 40, size=(3, 2)):
        labels[y - 6 : y + 6, x - 6 : x + 6] = 1
    return 0.2 + 0.6 * labels + rng.normal(0.0, 0.05, labels.shape), labels


def _write_pair(root: Path, name: str, seed: int, mask_name: str | None = None) -> None:
    image, labels = _cells(seed)
    write_image(root / "images" / f"{name}.png", (image * 200).astype(np.uint8))
    write_image(root / "masks" / f"{mask_name or name}.png", (labels > 0).astype(np.uint8) * 255)


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    """Three good pairs: c2, c10 (mask named c10_mask) and c1."""
    for k, name in enumerate(("c2", "c10", "c1")):
        _write_pair(tmp_path, name, k, mask_name=f"{name}_mask" if name == "c10" else None)
    return tmp_path


@pytest.fixture
def messy(clean: Path) -> Path:
    """The clean set plus a colour mask, a corrupt image, an outline mask and orphans."""
    image, labels = _cells(7)
    write_image(clean / "images" / "colour.png", (image * 200).astype(np.uint8))
    rgb = np.zeros((48, 48, 3), np.uint8)
    rgb[..., 0] = (labels > 0) * 255
    write_image(clean / "masks" / "colour.png", rgb)
    (clean / "images" / "broken.png").write_bytes(b"not a png")
    write_image(clean / "masks" / "broken.png", (labels > 0).astype(np.uint8))
    outline = np.zeros((48, 48), np.uint8)
    outline[10, 10:30] = outline[30, 10:30] = outline[10:31, 10] = outline[10:31, 29] = 255
    write_image(clean / "images" / "outline.png", (image * 200).astype(np.uint8))
    write_image(clean / "masks" / "outline.png", outline)
    write_image(clean / "images" / "lonely.png", (image * 200).astype(np.uint8))
    write_image(clean / "masks" / "stray.png", (labels > 0).astype(np.uint8))
    return clean


def test_read_pairs_matches_names_in_folder_order(clean: Path) -> None:
    data = read_pairs(clean / "images", clean / "masks")
    assert data.names == ["c1", "c2", "c10"]  # natural order of the image folder
    assert len(data.images) == len(data.masks) == 3
    assert all(i.shape == m.shape == (48, 48) for i, m in zip(data.images, data.masks))
    picked = read_pairs(clean / "images", clean / "masks", names=["c10", "c1"])
    assert picked.names == ["c10", "c1"]
    np.testing.assert_array_equal(picked.masks[1], data.masks[0])
    with pytest.raises(DataError, match="nope"):
        read_pairs(clean / "images", clean / "masks", names=["nope"])


def test_read_pairs_refuses_a_colour_mask(messy: Path) -> None:
    with pytest.raises(DataError, match="colour"):
        read_pairs(messy / "images", messy / "masks", names=["colour"])


def test_read_checked_pairs_reports_like_check_folders(messy: Path) -> None:
    data, report = read_checked_pairs(messy / "images", messy / "masks")
    expected = check_folders(messy / "images", messy / "masks")
    assert report.issues == expected.issues and report.n_pairs == expected.n_pairs
    codes = {issue.code for issue in report.issues}
    assert {"unreadable", "outline_only", "unpaired_image", "unpaired_mask"} <= codes
    assert set(data.problems) == {"colour", "broken"}  # read for the check, not trainable
    with pytest.raises(DataError):
        data.training_arrays()
    assert data.names == ["broken", "c1", "c2", "c10", "colour", "outline"]


def test_refused_set_stops_after_the_check_without_loading_a_model(messy: Path) -> None:
    loads = []
    events = iter_checked_training(
        messy / "images", messy / "masks", TINY, TINY_UNET, initial=lambda: loads.append(1)
    )
    checked = next(events)
    assert isinstance(checked, QualityChecked) and checked.blocking
    assert checked.sets == ("training",) and checked.unpaired == 2 and checked.errors >= 2
    with pytest.raises(DataError, match="force=True"):
        next(events)
    assert loads == []
    assert "--force" in refusal_message(checked, "--force")


def test_forced_run_still_refuses_pairs_it_cannot_read(messy: Path) -> None:
    events = iter_checked_training(messy / "images", messy / "masks", TINY, TINY_UNET, force=True)
    assert next(events).force
    with pytest.raises(DataError, match=r"broken|colour"):
        next(events)


def test_check_then_train_reads_every_file_once(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events are QualityChecked, then training's; each image and mask is read once."""
    reads: list[str] = []

    def counted(reader):
        def read(path, *args, **kwargs):
            reads.append(Path(path).name)
            return reader(path, *args, **kwargs)

        return read

    monkeypatch.setattr(pairs_module, "read_image", counted(pairs_module.read_image))
    monkeypatch.setattr(pairs_module, "read_mask", counted(pairs_module.read_mask))
    val = clean / "val"
    _write_pair(val, "v1", 9)
    events = list(
        iter_checked_training(
            clean / "images", clean / "masks", TINY, TINY_UNET,
            validation_dirs=(val / "images", val / "masks"), jit=False,
        )
    )  # fmt: skip
    assert isinstance(events[0], QualityChecked) and not events[0].blocking
    assert events[0].sets == ("training", "validation")
    assert isinstance(events[1], TrainingStarted) and events[1].n_validation == 1
    assert isinstance(events[-1], TrainingFinished)
    assert sorted(reads) == sorted(
        ["c1.png", "c2.png", "c10.png", "c1.png", "c2.png", "c10_mask.png", "v1.png", "v1.png"]
    )


def test_check_then_train_on_arrays_has_the_same_rules(messy: Path) -> None:
    from napari_cytounet.core.checked_training import check_then_train

    data = read_pairs(messy / "images", messy / "masks", names=["c1", "outline"])
    events = check_then_train(
        data.images, data.masks, TINY, TINY_UNET, names=data.names,
        validation=([data.images[0]], [data.masks[0]]), validation_names=["c1"],
    )  # fmt: skip
    checked = next(events)
    assert checked.sets == ("training", "validation") and checked.error_codes == ["outline_only"]
    with pytest.raises(DataError, match="outline-only"):
        next(events)
