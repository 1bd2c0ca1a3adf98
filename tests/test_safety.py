"""Nothing lost: atomic writes and modes, overwrite rules, interrupts (real signals), bad input.

The interrupt tests run real processes and send them real SIGINT/SIGKILL. Models are tiny.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from napari_cytounet.cli import main
from napari_cytounet.core.errors import ConfigError, DataError, ModelError
from napari_cytounet.core.files import (
    MANIFEST_NAME,
    atomic_write,
    is_temp_name,
    remove_orphans,
    temp_path,
)
from napari_cytounet.core.io import write_image, write_labels

SRC = str(Path(__file__).resolve().parents[1] / "src")
TINY = ["--depth", "2", "--filters", "4", "--patch-size", "32", "--batch-size", "2"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "CYTOUNET_JIT": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}


def cells(n: int = 2, size: int = 64, seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, masks = [], []
    for _ in range(n):
        mask = np.zeros((size, size), np.uint8)
        for _ in range(4):
            cy, cx = rng.integers(8, size - 8, 2)
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = 255
        images.append(np.clip(60 + mask * 0.5 + rng.normal(0, 10, mask.shape), 0, 255))
        masks.append(mask)
    return [i.astype(np.uint8) for i in images], masks


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cells")
    images, masks = cells(3)
    for k, (image, mask) in enumerate(zip(images, masks)):
        write_image(root / "images" / f"c{k}.png", image)
        write_labels(root / "masks" / f"c{k}.png", mask)
    return root


@pytest.fixture(scope="module")
def model(folders: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "good.keras"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CYTOUNET_JIT", "0")
        code = main([
            "-q", "train", str(folders / "images"), str(folders / "masks"), "-o", str(path),
            *TINY, "--epochs", "1", "--steps-per-epoch", "2",
        ])  # fmt: skip
    assert code == 0
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------
# the atomic-write helper


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        new = atomic_write(tmp_path / "a.txt", "x")
        assert mode(new) == 0o640
        mask = write_labels(tmp_path / "m.png", np.ones((8, 8), np.uint8))
        assert mode(mask) == 0o640
    finally:
        os.umask(old)
    os.chmod(new, 0o604)
    atomic_write(new, "y")
    assert mode(new) == 0o604 and new.read_text() == "y"
    write_labels(mask, np.zeros((8, 8), np.uint8))
    assert mode(mask) == 0o640
    assert not [p for p in tmp_path.iterdir() if is_temp_name(p.name)]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "keep.bin", b"old")

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.bin"]


def test_sigkill_during_a_write_leaves_an_orphan_that_the_next_write_removes(
    tmp_path: Path,
) -> None:
    target = tmp_path / "model.keras"
    target.write_bytes(b"good model")
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from napari_cytounet.core.files import atomic_write
        def slow(tmp):
            tmp.write_bytes(b"partial")
            print("writing", flush=True)
            time.sleep(60)
        atomic_write(Path({str(target)!r}), slow)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env()
    )
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    orphans = [p for p in tmp_path.iterdir() if is_temp_name(p.name)]
    assert [p.name for p in orphans] == [f".model.keras.cytounet-tmp-{proc.pid}.keras"]
    assert target.read_bytes() == b"good model"
    # the next run (here: a write into the same folder) cleans it up; live writers are kept
    mine = temp_path(tmp_path / "other.txt")
    mine.write_text("in progress")
    assert remove_orphans(tmp_path) == orphans
    assert mine.exists()


def test_ctrl_c_during_save_bundle_still_saves(tmp_path: Path) -> None:
    """A real SIGINT while the model is written: the save completes, then the stop."""
    target = tmp_path / "run.keras"
    script = textwrap.dedent(f"""
        import time
        from napari_cytounet.core.bundle import ModelBundle, save_bundle
        from napari_cytounet.core.config import UNetConfig
        from napari_cytounet.core.model import build_unet
        unet = UNetConfig(depth=2, base_filters=4)
        bundle = ModelBundle(model=build_unet(unet), unet=unet)
        real_save = bundle.model.save
        def slow_save(path):
            print("saving", flush=True)
            time.sleep(3)
            real_save(path)
        bundle.model.save = slow_save
        try:
            save_bundle(bundle, {str(target)!r})
        except KeyboardInterrupt:
            print("interrupted after the save", flush=True)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env()
    )
    assert proc.stdout.readline().strip() == "saving"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert "interrupted after the save" in out
    from napari_cytounet.core.bundle import load_bundle

    assert load_bundle(target).unet.depth == 2
    assert not [p for p in tmp_path.iterdir() if is_temp_name(p.name)]


# ---------------------------------------------------------------------------
# Ctrl-C during training (a real SIGINT to the real CLI)


def test_ctrl_c_in_training_keeps_the_existing_model(model: Path, folders: Path) -> None:
    target = model.parent / "kept.keras"
    target.write_bytes(model.read_bytes())
    before = target.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_cytounet.cli", "train", str(folders / "images"),
         str(folders / "masks"), "-o", str(target), *TINY, "--epochs", "500",
         "--steps-per-epoch", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    seen = ""
    deadline = time.monotonic() + 240
    while "epoch" not in seen.lower() and time.monotonic() < deadline:
        seen += proc.stderr.read(1)  # the progress bar: training is running
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-2000:]
    assert target.read_bytes() == before  # the good model is untouched
    beside = model.parent / "kept.interrupted.keras"
    assert beside.is_file()
    assert str(beside) in err and "left as it was" in err


# ---------------------------------------------------------------------------
# overwrite rules


def test_predict_refuses_a_folder_of_user_files(model: Path, folders: Path, tmp_path: Path):
    truth = tmp_path / "truth"
    truth.mkdir()
    (truth / "c0.png").write_bytes((folders / "masks" / "c0.png").read_bytes())
    before = (truth / "c0.png").read_bytes()
    assert main(["-q", "predict", str(model), str(folders / "images"), "-o", str(truth)]) == 1
    assert (truth / "c0.png").read_bytes() == before
    assert not (truth / "c1.png").exists()
    # --overwrite allows it; afterwards the files are ours and a rerun needs no option
    args = ["-q", "predict", str(model), str(folders / "images"), "-o", str(truth)]
    assert main([*args, "--overwrite"]) == 0
    assert (truth / MANIFEST_NAME).is_file()
    assert main(args) == 0


def test_predict_lists_what_was_and_was_not_written(
    model: Path, folders: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    (out / "c1.png").mkdir(parents=True)  # cannot be replaced: the run fails half-way
    code = main(["-q", "predict", str(model), str(folders / "images"), "-o", str(out),
                 "--overwrite"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert f"written before the stop (1 file(s)): {out / 'c0.png'}" in err
    assert "not written (2 image(s)" in err and str(folders / "images" / "c2.png") in err


def test_score_csv_refuses_a_user_file(model: Path, folders: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    pred = tmp_path / "pred"
    pred.mkdir()
    for mask in (folders / "masks").iterdir():
        (pred / mask.name).write_bytes(mask.read_bytes())
    truth = folders / "masks"
    assert main(["-q", "score", str(pred), str(truth), "--csv", str(notes)]) == 2
    assert notes.read_text() == "my notes\n"
    table = tmp_path / "scores.csv"
    assert main(["-q", "score", str(pred), str(truth), "--csv", str(table)]) == 0
    assert main(["-q", "score", str(pred), str(truth), "--csv", str(table)]) == 0  # ours
    assert main(["-q", "score", str(pred), str(truth), "--csv", str(notes), "--overwrite"]) == 0
    assert notes.read_text().startswith("name,")


def test_demo_refuses_a_users_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "report.md").write_text("# my report\n")
    assert main(["-q", "demo", "--out", str(tmp_path), "--max-time", "1"]) == 1
    assert "report.md" in capsys.readouterr().err
    assert (tmp_path / "report.md").read_text() == "# my report\n"


# ---------------------------------------------------------------------------
# wrong input


@pytest.fixture(scope="module")
def one_channel():
    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.config import UNetConfig
    from napari_cytounet.core.model import build_unet

    unet = UNetConfig(depth=2, base_filters=4)
    return ModelBundle(model=build_unet(unet), unet=unet)


@pytest.mark.parametrize("channels", [2, 5])
def test_channels_last_images_that_do_not_fit_are_refused(one_channel, channels: int) -> None:
    from napari_cytounet.core.predict import predict_probabilities

    image = np.zeros((64, 64, channels), np.uint8)
    with pytest.raises(ModelError, match=f"looks like {channels} channels"):
        predict_probabilities(one_channel, image, jit=False)


def test_channel_axis_rule() -> None:
    from napari_cytounet.core.data import channel_axis_for

    assert channel_axis_for((256, 256), 1) is None
    assert channel_axis_for((5, 256, 256), 1) is None  # a stack of 5 planes
    assert channel_axis_for((256, 256, 3), 1) == -1  # RGB: its mean intensity
    assert channel_axis_for((256, 256, 2), 2) == -1
    assert channel_axis_for((2, 256, 256), 2) == -3
    with pytest.raises(ModelError, match="2-channel"):
        channel_axis_for((256, 256), 2)


def test_cli_refuses_a_two_channel_tiff(model: Path, tmp_path: Path, capsys) -> None:
    import tifffile

    images = tmp_path / "two"
    images.mkdir()
    tifffile.imwrite(images / "x.tif", np.zeros((64, 64, 2), np.uint8))
    code = main(["-q", "predict", str(model), str(images), "-o", str(tmp_path / "o")])
    assert code == 1 and "looks like 2 channels" in capsys.readouterr().err
    assert not (tmp_path / "o" / "x.png").exists()


def test_train_check_refuses_classes_3_on_binary_masks(folders: Path, tmp_path: Path, capsys):
    code = main(["train", str(folders / "images"), str(folders / "masks"), "-o",
                 str(tmp_path / "m.keras"), "--classes", "3", *TINY])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and "invalid_labels" in err and "use 1 class" in out
    assert not (tmp_path / "m.keras").exists()


def test_cli_values_are_used_not_replaced(tmp_path: Path, folders: Path, capsys) -> None:
    # --lr 0 is refused; --seed 0 is used (recorded in the model)
    code = main(["train", str(folders / "images"), str(folders / "masks"), "-o",
                 str(tmp_path / "m.keras"), "--lr", "0"])  # fmt: skip
    assert code == 2 and "--lr" in capsys.readouterr().err


def test_cli_choices_and_limits_come_from_config() -> None:
    from napari_cytounet.cli import build_parser
    from napari_cytounet.core import config

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    assert tuple(actions["loss"].choices) == config.LOSSES
    assert tuple(actions["labels"].choices) == config.LABEL_MODES
    assert tuple(actions["precision"].choices) == config.PRECISIONS
    for dest, limits in (
        ("depth", config.DEPTH_RANGE),
        ("filters", config.FILTERS_RANGE),
        ("classes", config.CLASSES_RANGE),
        ("seed", config.SEED_RANGE),
        ("batch_size", config.BATCH_RANGE),
        ("patch_size", config.PATCH_RANGE),
    ):
        parse = actions[dest].type
        assert parse(str(limits[0])) == limits[0] and parse(str(limits[1])) == limits[1]
        for outside in (limits[0] - 1, limits[1] + 1):
            with pytest.raises(Exception, match="must be"):
                parse(str(outside))


def test_api_misuse_raises_the_projects_errors(tmp_path: Path) -> None:
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.io import read_image
    from napari_cytounet.core.training import train

    images, masks = cells(1)
    cfg = TrainingConfig(epochs=1, steps_per_epoch=1, patch_size=32, batch_size=2)
    unet = UNetConfig(depth=2, base_filters=4)
    cases = [
        (lambda: next(train(images, masks, {"epochs": 1}, unet)), ConfigError, "from_dict"),
        (lambda: next(train(images, masks, cfg, unet, stop=True)), ConfigError, "Event"),
        (lambda: next(train(images, masks, cfg, unet, validation=5)), DataError, "pair"),
        (lambda: next(train([images[0].astype(object)], masks, cfg, unet)), DataError, "object"),
        (lambda: next(train([images[0] + 0j], masks, cfg, unet)), DataError, "complex"),
        (lambda: load_bundle(None), ModelError, "path of a model"),
        (lambda: read_image(tmp_path), DataError, "is a folder"),
    ]
    for call, error, text in cases:
        with pytest.raises(error, match=text):
            call()


def test_stacks_are_trained_plane_by_plane() -> None:
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.training import train

    images, masks = cells(2)
    cfg = TrainingConfig(epochs=1, steps_per_epoch=1, patch_size=32, batch_size=2)
    events = list(train([np.stack(images)], [np.stack(masks)], cfg,
                        UNetConfig(depth=2, base_filters=4), jit=False))  # fmt: skip
    # trained on two 64x64 one-channel planes (not one 2x64 image with 64 channels)
    assert events[-1].bundle.unet.in_channels == 1
    assert events[-1].bundle.data_summary["train"]["count"] == 1  # one stack given
    with pytest.raises(DataError, match="plane by plane"):
        next(train([np.stack(images)], [np.stack(masks)[:1]], cfg, jit=False))


def test_cli_checks_and_trains_stacks_plane_by_plane(tmp_path: Path, capsys) -> None:
    import tifffile

    images, masks = cells(3)
    for kind, arrays in (("images", images), ("masks", masks)):
        (tmp_path / kind).mkdir()
        tifffile.imwrite(tmp_path / kind / "stack.tif", np.stack(arrays))
    assert main(["check", str(tmp_path / "images"), str(tmp_path / "masks")]) == 0
    code = main(
        [
            "train",
            str(tmp_path / "images"),
            str(tmp_path / "masks"),
            "-o",
            str(tmp_path / "m.keras"),
            *TINY,
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "Training on 3 image(s)" in out  # three planes of one stack


def test_corrupt_record_inside_a_model_is_reported(model: Path, tmp_path: Path) -> None:
    from napari_cytounet.core.bundle import load_bundle

    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            data = b"{not json" if name == "cytounet.json" else src.read(name)
            dst.writestr(name, data)
    with pytest.raises(ModelError, match="corrupt napari-cytounet record"):
        load_bundle(broken)


def test_predict_missing_file_is_called_a_file(model: Path, tmp_path: Path, capsys) -> None:
    code = main(["-q", "predict", str(model), str(tmp_path / "nope.tif"), "-o",
                 str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "No image file" in err and "folder" not in err.split("(")[0]


def test_finish_before_interrupt_outside_the_main_thread_is_plain() -> None:
    from napari_cytounet.core.files import finish_before_interrupt

    done = []

    def work() -> None:
        with finish_before_interrupt("a test"):
            done.append(1)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert done == [1]
