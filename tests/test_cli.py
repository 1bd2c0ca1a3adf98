"""End-to-end tests of the ``cytounet`` command line on crops of the shared BBBC030 data.

Most tests call :func:`napari_cytounet.cli.main` in-process (fast: TensorFlow is
imported once); a few run the installed ``cytounet`` script in a subprocess.
Models are tiny (depth 2, 4 filters, 32 px patches, a couple of batches) and
XLA is off (``CYTOUNET_JIT=0``) except in one test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bbbc030_data import read_sample
from napari_cytounet.cli import main

H, W = 128, 160
#: (split, name) -> top-left corner of a crop holding a few cells
CROPS = {
    ("train", "cho21"): (448, 192),
    ("train", "cho22"): (128, 256),
    ("validation", "cho01"): (64, 960),
}
TINY = ["--depth", "2", "--filters", "4", "--patch-size", "32", "--batch-size", "2"]
SHORT = ["--epochs", "1", "--steps-per-epoch", "2"]
COMMANDS = ("train", "predict", "score", "check", "demo")


# ---------------------------------------------------------------------------
# helpers and fixtures


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Crops of BBBC030: <root>/{train,validation}/{images,masks,outlines}/choNN.png.

    From the full data set when it is here, else from the sample shipped in the package.
    """
    import imageio.v3 as iio

    root = tmp_path_factory.mktemp("bbbc030-crops")
    for (split, name), (y, x) in CROPS.items():
        for kind in ("images", "masks", "outlines"):
            array = read_sample(split, kind, name)
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            iio.imwrite(folder / f"{name}.png", array[y : y + H, x : x + W])
    return root


@pytest.fixture(autouse=True)
def _no_xla(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYTOUNET_JIT", "0")


@pytest.fixture(scope="module")
def model(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained through the CLI (with validation), shared by the module."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CYTOUNET_JIT", "0")
        code = main([
            "-q", "train", str(data / "train/images"), str(data / "train/masks"), "-o", str(path),
            "--val-images", str(data / "validation/images"),
            "--val-masks", str(data / "validation/masks"), *TINY, *SHORT,
        ])  # fmt: skip
    assert code == 0
    return path


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("cytounet: error: "), err
    assert "Traceback" not in err


def snapshot(*roots: Path) -> dict[str, tuple[int, int, str]]:
    """Size, mtime and hash of every file under ``roots`` (to prove nothing changed)."""
    state = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            st = p.stat()
            state[str(p)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return state


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------
# help and version


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(capsys: pytest.CaptureFixture, command: str | None) -> None:
    argv = [command, "--help"] if command else ["--help"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert out.startswith("usage: cytounet")
    assert "examples:" in out
    assert err == ""


def test_version(capsys: pytest.CaptureFixture) -> None:
    from napari_cytounet import __version__

    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert __version__ in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert_one_line_error(err)
    assert "choose a command" in err


# ---------------------------------------------------------------------------
# the main path: train -> predict -> score


def test_train_predict_score_round_trip(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path
) -> None:
    from napari_cytounet.core.io import read_image, read_mask

    record = model.with_suffix(".json")
    assert model.is_file() and record.is_file()
    assert '"napari-cytounet model bundle"' in record.read_text()

    out_dir = tmp_path / "pred"
    code, out, err = run(
        capsys, "predict", model, data / "validation/images", "-o", out_dir, "--probabilities"
    )
    assert code == 0, err
    assert "Wrote 1 mask" in out
    mask = read_mask(out_dir / "cho01.png")
    assert mask.shape == (H, W)
    assert set(np.unique(mask)) <= {0, 255}
    prob = read_image(out_dir / "probabilities" / "cho01.tif")
    assert prob.dtype == np.float32 and prob.shape == (H, W)
    assert 0.0 <= prob.min() <= prob.max() <= 1.0

    csv = tmp_path / "scores.csv"
    code, out, err = run(capsys, "score", out_dir, data / "validation/masks", "--csv", csv)
    assert code == 0, err
    assert "cho01" in out and "overall" in out and "Dice" in out
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("name,dice,iou")
    assert [line.split(",")[0] for line in lines[1:]] == ["cho01", "overall"]


def test_predict_single_file_instances_and_options(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path
) -> None:
    from napari_cytounet.core.io import read_mask

    image = data / "train/images/cho22.png"
    code, out, err = run(
        capsys, "predict", model, image, "-o", tmp_path / "out", "--instances", "--split-touching",
        "--threshold", "0.3", "--min-size", "5", "--tile-size", "96", "--format", "tif",
    )  # fmt: skip
    assert code == 0, err
    assert "instance label image" in out
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [".cytounet-outputs.json", "cho22.tif"]  # the mask and its manifest
    assert read_mask(tmp_path / "out" / "cho22.tif").shape == (H, W)


def test_predict_with_xla_matches(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from napari_cytounet.core.io import read_image

    images = data / "validation/images"
    # XLA and plain graphs agree to float32 round-off; in bfloat16 (auto on AVX512-BF16
    # CPUs) they differ by up to ~3e-3, so compare in float32
    monkeypatch.setenv("CYTOUNET_PRECISION", "float32")
    assert run(capsys, "predict", model, images, "-o", tmp_path / "a", "--probabilities")[0] == 0
    monkeypatch.setenv("CYTOUNET_JIT", "1")
    assert run(capsys, "predict", model, images, "-o", tmp_path / "b", "--probabilities")[0] == 0
    a = read_image(tmp_path / "a/probabilities/cho01.tif")
    b = read_image(tmp_path / "b/probabilities/cho01.tif")
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_predict_with_views_is_the_core_mean_of_views(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.io import read_image
    from napari_cytounet.core.predict import predict_probabilities

    monkeypatch.setenv("CYTOUNET_PRECISION", "float32")
    image = data / "validation/images/cho01.png"
    code, _, err = run(capsys, "predict", model, image, "-o", tmp_path / "v", "--probabilities",
                       "--views", "8")  # fmt: skip
    assert code == 0, err
    got = read_image(tmp_path / "v/probabilities/cho01.tif")
    expected = predict_probabilities(load_bundle(model), read_image(image), views=8)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    code, _, err = run(capsys, "predict", model, image, "-o", tmp_path / "w", "--views", "3")
    assert code == 2 and "invalid choice: 3" in err and not (tmp_path / "w").exists()
    code, _, err = run(capsys, "predict", model, image, "-o", tmp_path / "z.zarr", "--views", "8")
    assert code == 2 and "--views is not available for zarr" in err
    assert_one_line_error(err)
    assert not (tmp_path / "z.zarr").exists()


# ---------------------------------------------------------------------------
# check and the quality gate of train


def test_check_passes_masks(capsys: pytest.CaptureFixture, data: Path) -> None:
    code, out, err = run(capsys, "check", data / "train/images", data / "train/masks")
    assert code == 0, err
    assert "0 errors" in out
    assert err == ""


def test_check_flags_outlines(capsys: pytest.CaptureFixture, data: Path) -> None:
    code, out, err = run(capsys, "check", data / "train/images", data / "train/outlines")
    assert code == 1
    assert "outline_only" in out and "FAILED" in out
    assert_one_line_error(err)


def test_train_refuses_outlines_unless_forced(
    capsys: pytest.CaptureFixture, data: Path, tmp_path: Path
) -> None:
    target = tmp_path / "outlines.keras"
    argv = ["train", data / "train/images", data / "train/outlines", "-o", target, *TINY]
    code, out, err = run(capsys, *argv, "--epochs", "1", "--steps-per-epoch", "1")
    assert code == 1
    assert_one_line_error(err)
    assert "--force" in err and "outline" in err
    assert "[outline_only]" in out  # the report is printed
    assert not target.exists()

    code, out, err = run(capsys, "-q", *argv, "--epochs", "1", "--steps-per-epoch", "1", "--force")
    assert code == 0, err
    assert target.is_file()
    assert "patches/s" in out  # the TrainingFinished summary line


def test_train_on_missing_gpus_is_one_line(
    capsys: pytest.CaptureFixture, data: Path, tmp_path: Path
) -> None:
    """`--devices gpu` where TensorFlow sees no GPU: a one-line error, no model file."""
    target = tmp_path / "gpus.keras"
    argv = ["train", data / "train/images", data / "train/masks", "-o", target, *TINY]
    code, _out, err = run(
        capsys, *argv, "--epochs", "1", "--steps-per-epoch", "1", "--devices", "gpu"
    )
    assert code == 2  # a setting this machine cannot honour: a usage error, like other configs
    assert_one_line_error(err)
    assert "sees none" in err
    assert not target.exists()
    code, _out, err = run(capsys, *argv, "--devices", "gpu:x")
    assert code != 0 and "gpu:x" in err


def test_ctrl_c_once_saves_the_best_model_and_exits_130(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """First Ctrl-C: stop after the batch, save (here also: fine-tuning with --from)."""
    import contextlib
    import threading

    from napari_cytounet.cli import train as train_command

    @contextlib.contextmanager
    def pressed_once():
        stop = threading.Event()
        stop.set()
        yield stop

    monkeypatch.setattr(train_command, "graceful_stop", pressed_once)
    target = tmp_path / "tuned.keras"
    code, out, err = run(
        capsys, "-q", "train", data / "train/images", data / "train/masks", "-o", target,
        "--from", model, "--epochs", "5", "--steps-per-epoch", "50", "--patch-size", "32",
        "--batch-size", "2",
    )  # fmt: skip
    assert code == 130
    assert_one_line_error(err)
    assert "Ctrl-C" in err and str(target) in err
    assert target.is_file()
    assert "Continuing from" in out and "Saved the model to" in out


def test_ctrl_c_twice_writes_nothing(
    capsys: pytest.CaptureFixture, data: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import napari_cytounet.core.training as training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield  # a generator, like train()

    monkeypatch.setattr(training, "train", interrupted)
    before = snapshot(model.parent)
    code, _, err = run(
        capsys, "train", data / "train/images", data / "train/masks", "-o", model, *TINY, *SHORT
    )
    assert code == 130
    assert_one_line_error(err)
    assert snapshot(model.parent) == before


# ---------------------------------------------------------------------------
# bad input: one line, the right exit code, no file changed


BAD_OPTIONS = [
    ("train", ["--epochs", "-3"], "--epochs"),
    ("train", ["--epochs", "0"], "--epochs"),
    ("train", ["--epochs", "two"], "--epochs"),
    ("train", ["--max-time", "-1"], "--max-time"),
    ("train", ["--max-time", "nan"], "--max-time"),
    ("train", ["--depth", "9"], "--depth"),
    ("train", ["--patch-size", "7"], "--patch-size"),
    ("train", ["--batch-size", "0"], "--batch-size"),
    ("train", ["--lr", "5"], "--lr"),
    ("train", ["--filters", "0"], "--filters"),
    ("train", ["--lr", "0"], "--lr"),
    ("train", ["--depth", "0"], "--depth"),
    ("train", ["--seed", "-1"], "--seed"),
    ("train", ["--classes", "0"], "--classes"),
    ("train", ["--labels", "outlines"], "--labels"),
    ("train", ["--loss", "mse"], "--loss"),
    ("train", ["--precision", "fp8"], "--precision"),
    ("train", ["--val-images", "x"], "--val-masks"),
    ("train", ["--bogus"], "--bogus"),
    ("predict", ["--threshold", "2"], "--threshold"),
    ("predict", ["--threshold", "0"], "--threshold"),
    ("predict", ["--min-size", "-1"], "--min-size"),
    ("predict", ["--tile-size", "7"], "--tile-size"),
    ("score", ["--iou-threshold", "1.5"], "--iou-threshold"),
    ("check", ["--labels", "sparse"], "--labels"),
    ("check", ["--classes", "0"], "--classes"),
    ("demo", ["--max-time", "0"], "--max-time"),
]


@pytest.mark.parametrize(("command", "extra", "named"), BAD_OPTIONS)
def test_nonsense_options_exit_2(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path,
    command: str, extra: list[str], named: str,
) -> None:  # fmt: skip
    images, masks = data / "train/images", data / "train/masks"
    positional = {
        "train": [images, masks, "-o", model],
        "predict": [model, images, "-o", tmp_path / "out"],
        "score": [masks, masks],
        "check": [images, masks],
        "demo": ["--out", tmp_path / "demo"],
    }[command]
    before = snapshot(data, model.parent)
    code, _, err = run(capsys, command, *positional, *extra)
    assert code == 2, err
    assert_one_line_error(err)
    assert named in err
    assert snapshot(data, model.parent) == before
    assert not (tmp_path / "out").exists() and not (tmp_path / "demo").exists()


def test_every_command_takes_choices_and_limits_from_config() -> None:
    """The option types of all commands use the constants of core.config (one source)."""
    from napari_cytounet.cli import build_parser
    from napari_cytounet.core import config

    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) == {"train", "predict", "score", "check", "demo", "export"}
    actions = {(name, a.dest): a for name, parser in commands.items() for a in parser._actions}
    for name in ("train", "check"):
        assert tuple(actions[name, "labels"].choices) == config.LABEL_MODES
        parse = actions[name, "classes"].type
        assert parse(str(config.CLASSES_RANGE[1])) == config.CLASSES_RANGE[1]
        with pytest.raises(Exception, match="must be"):
            parse(str(config.CLASSES_RANGE[1] + 1))
    assert actions["predict", "tile_size"].default == config.DEFAULT_TILE_SIZE
    for limit in config.TILE_RANGE:
        assert actions["predict", "tile_size"].type(str(limit)) == limit
    for key, limits in (
        (("train", "lr"), config.LEARNING_RATE_RANGE),
        (("predict", "threshold"), config.THRESHOLD_RANGE),
        (("score", "iou_threshold"), config.THRESHOLD_RANGE),
        (("export", "threshold"), config.THRESHOLD_RANGE),
    ):
        parse = actions[key].type
        assert parse(str(sum(limits) / 2)) == sum(limits) / 2
        for outside in limits:  # open ranges: the ends themselves are refused
            with pytest.raises(Exception, match="must be"):
                parse(str(outside))


def test_missing_required_output_exits_2(capsys: pytest.CaptureFixture, data: Path) -> None:
    code, _, err = run(capsys, "train", data / "train/images", data / "train/masks")
    assert code == 2
    assert_one_line_error(err)
    assert "-o" in err


def test_failed_train_leaves_existing_model_untouched(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path
) -> None:
    corrupt = copy_tree(data / "train", tmp_path / "train")
    (corrupt / "images" / "cho22.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    before = snapshot(model.parent, corrupt)
    for masks in (corrupt / "outlines", corrupt / "masks"):  # outline-only, corrupt image
        code, out, err = run(capsys, "train", corrupt / "images", masks, "-o", model, *TINY, *SHORT)
        assert code == 1, err
        assert_one_line_error(err)
    assert "[unreadable]" in out
    assert snapshot(model.parent, corrupt) == before


@pytest.mark.parametrize("kind", ["directory", "text file", "other suffix"])
def test_train_refuses_bad_output(
    capsys: pytest.CaptureFixture, data: Path, tmp_path: Path, kind: str
) -> None:
    target = {
        "directory": tmp_path,
        "text file": tmp_path / "notes.keras",
        "other suffix": tmp_path / "model.h5",
    }[kind]
    if kind == "text file":
        target.write_text("my precious notes")
    before = snapshot(tmp_path)
    code, _, err = run(
        capsys, "train", data / "train/images", data / "train/masks", "-o", target, *TINY, *SHORT
    )
    assert code == 2
    assert_one_line_error(err)
    assert snapshot(tmp_path) == before


def test_missing_and_empty_folders_exit_1(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing"
    images, masks = data / "train/images", data / "train/masks"
    out = tmp_path / "out"
    cases = [
        ("train", missing, masks, "-o", tmp_path / "m.keras"),
        ("train", images, empty, "-o", tmp_path / "m.keras"),
        ("check", missing, masks),
        ("check", images, empty),
        ("predict", model, missing, "-o", out),
        ("predict", model, empty, "-o", out),
        ("score", empty, masks),
        ("score", images, missing),
    ]
    for argv in cases:
        code, _, err = run(capsys, *argv)
        assert code == 1, (argv, err)
        assert_one_line_error(err)
        assert ("does not exist" in err) or ("holds no image" in err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_unpaired_files(capsys: pytest.CaptureFixture, data: Path, tmp_path: Path) -> None:
    train = copy_tree(data / "train", tmp_path / "train")
    (train / "masks" / "cho22.png").rename(train / "masks" / "cho99.png")
    target = tmp_path / "m.keras"
    argv = ["train", train / "images", train / "masks", "-o", target, *TINY, *SHORT]
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert_one_line_error(err)
    assert "--force" in err
    assert "[unpaired_image]" in out and "[unpaired_mask]" in out
    assert not target.exists()
    # check reports them as warnings only; no pair at all is an error
    assert run(capsys, "check", train / "images", train / "masks")[0] == 0
    (train / "masks" / "cho21.png").rename(train / "masks" / "cho98.png")
    code, _, err = run(capsys, "check", train / "images", train / "masks")
    assert code == 1
    assert_one_line_error(err)
    assert "No image" in err


def test_score_shape_mismatch_and_unpaired(
    capsys: pytest.CaptureFixture, data: Path, tmp_path: Path
) -> None:
    import imageio.v3 as iio

    pred = tmp_path / "pred"
    pred.mkdir()
    iio.imwrite(pred / "cho21.png", np.zeros((H, W + 1), np.uint8))
    code, _, err = run(capsys, "score", pred, data / "train/masks")
    assert code == 1
    assert_one_line_error(err)
    assert "cho21" in err
    iio.imwrite(pred / "cho21.png", np.zeros((H, W), np.uint8))
    code, out, err = run(capsys, "score", pred, data / "train/masks")
    assert code == 0
    assert "cho21" in out and "warning" in err and "cho22" in err  # cho22 has no prediction
    code, _, err = run(capsys, "score", pred, data / "train/masks", "--csv", pred / "cho21.png")
    assert code == 2
    assert_one_line_error(err)


def test_predict_bad_models_and_images(
    capsys: pytest.CaptureFixture, data: Path, model: Path, tmp_path: Path
) -> None:
    import tifffile

    images = data / "validation/images"
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a model")
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(os.urandom(256))
    cases = [
        ([corrupt, images], "corrupt"),
        ([garbage, images], "corrupt"),
        ([tmp_path / "nope.keras", images], "No model file"),
        ([data / "train/images/cho21.png", images], "model file"),
    ]
    for argv, phrase in cases:
        code, _, err = run(capsys, "predict", *argv, "-o", out)
        assert code == 1, err
        assert_one_line_error(err)
        assert phrase in err
    # a corrupt image among good ones: nothing is written at all
    folder = copy_tree(data / "train/images", tmp_path / "images")
    (folder / "cho99.png").write_bytes(b"not an image")
    code, _, err = run(capsys, "predict", model, folder, "-o", out)
    assert code == 1
    assert_one_line_error(err)
    assert "cho99.png" in err
    assert not out.exists()
    # an image with NaNs: also refused before anything is written
    (folder / "cho99.png").unlink()
    nan = np.full((H, W), np.nan, np.float32)
    tifffile.imwrite(folder / "cho98.tif", nan)
    code, _, err = run(capsys, "predict", model, folder, "-o", out)
    assert code == 1
    assert_one_line_error(err)
    assert "cho98.tif" in err and "NaN" in err
    assert not out.exists()
    # outputs never go into the folder of the inputs
    before = snapshot(folder)
    code, _, err = run(capsys, "predict", model, folder, "-o", folder)
    assert code == 2
    assert_one_line_error(err)
    assert snapshot(folder) == before


def make_rgb_model(path: Path) -> Path:
    """An untrained 3-channel model, saved as a bundle (no training needed)."""
    from napari_cytounet.core.bundle import ModelBundle, save_bundle
    from napari_cytounet.core.config import UNetConfig
    from napari_cytounet.core.model import build_unet

    unet = UNetConfig(depth=2, base_filters=4, in_channels=3)
    return save_bundle(ModelBundle(model=build_unet(unet), unet=unet), path)


def test_predict_incompatible_model(
    capsys: pytest.CaptureFixture, data: Path, tmp_path: Path
) -> None:
    rgb = make_rgb_model(tmp_path / "rgb.keras")
    code, _, err = run(capsys, "predict", rgb, data / "validation/images", "-o", tmp_path / "o")
    assert code == 1
    assert_one_line_error(err)
    assert "3-channel" in err and "grayscale" in err
    assert not (tmp_path / "o").exists()
    # --debug adds the traceback
    code, _, err = run(
        capsys, "--debug", "predict", rgb, data / "validation/images", "-o", tmp_path / "o"
    )
    assert code == 1
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("cytounet: error: ")


# ---------------------------------------------------------------------------
# the installed script


def cytounet(*argv: object, timeout: float = 120) -> subprocess.CompletedProcess:
    exe = shutil.which("cytounet")
    cmd = [exe] if exe else [sys.executable, "-m", "napari_cytounet.cli"]
    env = {**os.environ, "CYTOUNET_JIT": "0"}
    return subprocess.run(
        [*cmd, *map(str, argv)], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_script_help_and_check_do_not_import_tensorflow(data: Path) -> None:
    result = cytounet("--help")
    assert result.returncode == 0
    assert "usage: cytounet" in result.stdout
    code = (
        "import sys; from napari_cytounet.cli import main; "
        f"rc = main(['check', {str(data / 'train/images')!r}, {str(data / 'train/outlines')!r}]); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result.stderr)


def test_module_run_usage_error_exits_2(tmp_path: Path) -> None:
    """``python -m napari_cytounet.cli``: a zarr usage error is exit 2, not a 'bug' (exit 1)."""
    result = subprocess.run(
        [sys.executable, "-m", "napari_cytounet.cli", "predict", "m.keras", "a.zarr", "-o",
         str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr)
    assert "-o NAME.zarr" in result.stderr


def test_script_incompatible_model_is_one_line(data: Path, tmp_path: Path) -> None:
    """In a fresh process TensorFlow's start-up chatter must not bury the message."""
    rgb = make_rgb_model(tmp_path / "rgb.keras")
    result = cytounet("predict", rgb, data / "validation/images", "-o", tmp_path / "o")
    assert result.returncode == 1
    assert_one_line_error(result.stderr)
    assert result.stdout == ""
