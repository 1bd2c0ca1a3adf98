"""The ``cytounet`` command line: ``train``, ``predict``, ``score``, ``check`` and ``demo``.

A thin face over :mod:`napari_cytounet.core`: it parses options, reads and
writes files, draws progress bars and turns every problem into one line on
standard error. The work itself is done by the core.

Exit codes

* ``0``: success.
* ``1``: a problem with the data or the model (missing or empty folder, unpaired
  or unreadable files, a training set that fails the quality check, a corrupt or
  incompatible model), or ``check`` found an error-severity problem.
* ``2``: a nonsense command line (unknown option, negative epochs, threshold 2,
  depth 9, an output path that is a folder...).
* ``130``: interrupted with Ctrl-C. During ``train`` and ``demo`` the first Ctrl-C
  stops training within one batch and still saves the best model so far; a
  second Ctrl-C aborts at once and writes nothing (an existing model file is
  left untouched).

Errors are printed as ``cytounet: error: <problem and fix>``; ``--debug`` adds
the traceback. ``cytounet --help`` and ``cytounet check`` never import
TensorFlow, so they answer at once.

Examples
--------
>>> main(["--version"])  # doctest: +SKIP
cytounet (napari-cytounet) 0.1.0
0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._version import __version__
from .core.config import (
    BATCH_RANGE,
    CLASSES_RANGE,
    DEPTH_RANGE,
    FILTERS_RANGE,
    LABEL_MODES,
    LOSSES,
    PATCH_RANGE,
    PRECISIONS,
    SEED_RANGE,
)
from .core.errors import ConfigError, CytoUNetError, DataError, ModelError

PROG = "cytounet"

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PROBLEM", "EXIT_USAGE", "UsageError", "main"]


class UsageError(Exception):
    """A nonsense command line (exit code 2)."""


class _Interrupted(Exception):
    """Training was stopped with Ctrl-C but the model was saved (exit code 130)."""


# ---------------------------------------------------------------------------
# small helpers


def _one_line(text: str) -> str:
    """Collapse a message to one line (messages may carry the core's line breaks)."""
    return " ".join(str(text).split())


def _say(*parts: Any) -> None:
    """Print to standard output, without interleaving with a progress bar."""
    print(*parts, flush=True)


def _warn(text: str) -> None:
    print(f"{PROG}: warning: {_one_line(text)}", file=sys.stderr, flush=True)


def _quiet_tensorflow(debug: bool = False) -> None:
    """Import TensorFlow without its C++ start-up chatter on standard error.

    TensorFlow logs CUDA probing and CPU-feature notes from C++ while it is
    imported, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect, which would bury our
    one-line messages. So, unless ``debug``, file descriptor 2 points to the null
    device during the import (Python exceptions are still raised and shown).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1" if debug else "3")
    if "tensorflow" in sys.modules or debug:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no real file descriptors (embedded interpreters)
        return
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401  (imports tensorflow)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ---------------------------------------------------------------------------
# option types (argparse turns ArgumentTypeError into "argument --x: <message>")


def _int_range(lo: int, hi: int | None = None, what: str = "a whole number") -> Callable:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lo or (hi is not None and value > hi):
            span = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"must be {what} {span}, got {text!r}")
        return value

    return parse


def _float_range(
    lo: float, hi: float | None, what: str, *, lo_open: bool = True, hi_open: bool = True
) -> Callable:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value)
        if ok:
            ok = value > lo if lo_open else value >= lo
        if ok and hi is not None:
            ok = value < hi if hi_open else value <= hi
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


_positive_int = _int_range(1, what="a positive whole number")
_seconds = _float_range(0.0, None, "a positive number of seconds (e.g. 300)")
_learning_rate = _float_range(0.0, 1.0, "a learning rate between 0 and 1 (e.g. 0.002)")
_threshold = _float_range(0.0, 1.0, "a probability between 0 and 1, exclusive (e.g. 0.5)")


# ---------------------------------------------------------------------------
# the parser


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one line (raised, printed by :func:`main`)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}; see '{self.prog} --help'")


_FORMATTER = argparse.RawDescriptionHelpFormatter

TRAIN_EPILOG = """\
Masks: 0 = background, any other value = foreground (instance ids are fine).
Images and masks are matched by file name: cho01.png with cho01.png or
cho01_mask.png. The training set is checked first (see 'cytounet check');
outline-only masks, unpaired or unreadable files stop the run unless --force.

Stops after --epochs N epochs or --max-time seconds, whichever comes first
(default: 20 epochs when neither is given). The saved model holds the best
weights seen (by validation loss when --val-images/--val-masks are given).
Ctrl-C once stops after the current batch and saves the best model so far
(exit code 130); twice aborts without writing anything.

examples:
  cytounet train data/train/images data/train/masks -o cells.keras --max-time 300
  cytounet train imgs masks -o cells.keras --val-images val/imgs --val-masks val/masks \\
      --epochs 30 --patch-size 256 --batch-size 8
  cytounet train imgs scribbles -o cells.keras --labels scribbles --epochs 10
  cytounet train new/imgs new/masks -o tuned.keras --from cells.keras --max-time 120
"""

PREDICT_EPILOG = """\
Writes one mask per image into OUT_DIR with the image's file name stem and
height/width: binary masks as 0/255 (8-bit), instance labels (--instances) as
label ids, multi-class models as class indices. With --probabilities, float32
probability maps go to OUT_DIR/probabilities/<stem>.tif. Existing outputs of the
same name are replaced; OUT_DIR must not be the folder of the input images.

examples:
  cytounet predict cells.keras data/validation/images -o predictions
  cytounet predict cells.keras cho01.png -o out --threshold 0.4 --min-size 200
  cytounet predict cells.keras images -o out --instances --split-touching --probabilities
  cytounet predict cells.keras stack.zarr -o masks.zarr --scheduler tcp://127.0.0.1:8786
"""

SCORE_EPILOG = """\
Predictions are matched to ground-truth masks by file name stem (cho01.png with
cho01.png or cho01_mask.png); nonzero pixels are foreground. Prints Dice, IoU,
pixel precision/recall and object precision/recall/F1 (objects matched one to
one at IoU >= 0.5) per image, their mean over images and the pooled overall row.

examples:
  cytounet score predictions data/validation/masks
  cytounet score predictions data/validation/masks --csv scores.csv
"""

CHECK_EPILOG = """\
Finds unpaired files, unreadable files, image/mask shape mismatches, NaN or
constant images, empty or all-foreground masks, non-binary masks and masks that
only draw object outlines. Exit code 1 when it finds an error (something that
would waste a training run), 0 otherwise (warnings allowed).

examples:
  cytounet check data/train/images data/train/masks
  cytounet check data/train/images data/train/outlines      # exit code 1
  cytounet check imgs scribbles --labels scribbles
"""

DEMO_EPILOG = """\
Trains on the BBBC030 sample shipped with the package (4 training images,
1 validation image; no network needed), predicts the validation image, scores
it and writes into the output folder: model.keras (+ model.json), the predicted
mask, overlay.png (image in gray, prediction outlined in magenta, ground truth
in green) and report.md. Takes about two minutes on 2 CPU cores.

examples:
  cytounet demo
  cytounet demo --out /tmp/demo --max-time 30
"""

MAIN_DESCRIPTION = """\
Train, apply and score a Keras UNet for cell segmentation.
Run 'cytounet COMMAND --help' for the options and examples of a command.
"""

MAIN_EPILOG = """\
exit codes: 0 success, 1 problem with the data or model, 2 bad command line,
130 interrupted (Ctrl-C).

examples:
  cytounet demo
  cytounet check train/images train/masks
  cytounet train train/images train/masks -o cells.keras --max-time 300
  cytounet predict cells.keras val/images -o predictions
  cytounet score predictions val/masks --csv scores.csv
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``cytounet`` argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog=PROG, description=MAIN_DESCRIPTION, epilog=MAIN_EPILOG, formatter_class=_FORMATTER
    )
    parser.add_argument(
        "--version", action="version", version=f"{PROG} (napari-cytounet) {__version__}"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    # the global flags are accepted after the command too (cytounet train ... --debug)
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    # train ----------------------------------------------------------------
    p = sub.add_parser(
        "train",
        parents=[common],
        formatter_class=_FORMATTER,
        epilog=TRAIN_EPILOG,
        help="train a model on a folder of images and a folder of masks",
        description="Train a UNet on a folder of images and masks.",
    )
    p.add_argument("images", metavar="IMAGES", help="folder of training images")
    p.add_argument("masks", metavar="MASKS", help="folder of masks (or scribbles) for them")
    p.add_argument(
        "-o",
        "--output",
        metavar="MODEL.keras",
        required=True,
        help="where to save the model (.keras; replaced only when training succeeds)",
    )
    p.add_argument("--val-images", metavar="DIR", help="folder of validation images")
    p.add_argument("--val-masks", metavar="DIR", help="folder of validation masks")
    p.add_argument(
        "--epochs",
        type=_positive_int,
        metavar="N",
        help="number of epochs (default 20 when --max-time is not given)",
    )
    p.add_argument(
        "--max-time", type=_seconds, metavar="SECONDS", help="time budget for training in seconds"
    )
    p.add_argument(
        "--steps-per-epoch", type=_positive_int, metavar="N", help="batches per epoch (default 25)"
    )
    p.add_argument(
        "--labels",
        choices=LABEL_MODES,
        default="dense",
        help="dense masks (0 = background) or scribbles (0 = not annotated, "
        "1 = background, 2 = foreground); default dense",
    )
    p.add_argument(
        "--classes",
        type=_int_range(*CLASSES_RANGE),
        metavar="N",
        help="1 for a binary model (default), else the number of classes",
    )
    p.add_argument(
        "--from",
        dest="from_model",
        metavar="MODEL.keras",
        help="continue training (fine-tune) this model instead of a new one",
    )
    p.add_argument(
        "--patch-size",
        type=_int_range(*PATCH_RANGE, "a whole number of pixels"),
        metavar="PX",
        help="side of the square training patches (default 128; "
        "rounded up to a multiple of 2**depth)",
    )
    p.add_argument(
        "--batch-size",
        type=_int_range(*BATCH_RANGE),
        metavar="N",
        help="patches per batch (default 16)",
    )
    p.add_argument(
        "--lr",
        type=_learning_rate,
        metavar="RATE",
        help="learning rate (default 0.002, cosine decay)",
    )
    p.add_argument(
        "--depth", type=_int_range(*DEPTH_RANGE), metavar="N", help="UNet depth, 2-5 (default 4)"
    )
    p.add_argument(
        "--filters",
        type=_int_range(*FILTERS_RANGE),
        metavar="N",
        help="filters of the first level, doubled per level (default 16)",
    )
    p.add_argument("--loss", choices=LOSSES, help="training loss (default bce_dice)")
    p.add_argument(
        "--seed", type=_int_range(*SEED_RANGE), metavar="N", help="random seed (default 0)"
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="float32, or mixed_bfloat16 where the hardware has it (default auto)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="train even when the quality check finds errors or unpaired files",
    )
    p.set_defaults(func=_cmd_train)

    # predict --------------------------------------------------------------
    p = sub.add_parser(
        "predict",
        parents=[common],
        formatter_class=_FORMATTER,
        epilog=PREDICT_EPILOG,
        help="segment images with a trained model",
        description="Segment images with a trained model.",
    )
    p.add_argument(
        "model",
        metavar="MODEL.keras",
        help="trained model (.keras, legacy .h5, or a bioimage.io .zip / rdf.yaml)",
    )
    p.add_argument("images", metavar="IMAGES", help="an image file or a folder of images")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT_DIR",
        required=True,
        help="folder for the masks (created if needed)",
    )
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=0.5,
        metavar="P",
        help="foreground where the probability is above this (default 0.5)",
    )
    p.add_argument(
        "--min-size",
        type=_int_range(0, what="a whole number of pixels"),
        default=0,
        metavar="PX",
        help="remove objects smaller than this (default 0: keep all)",
    )
    p.add_argument(
        "--instances",
        action="store_true",
        help="write instance labels (1, 2, 3... per object) instead of a binary mask",
    )
    p.add_argument(
        "--split-touching",
        action="store_true",
        help="split touching objects (distance watershed); implies --instances",
    )
    p.add_argument(
        "--probabilities",
        action="store_true",
        help="also write float32 probability maps (TIFF) to OUT_DIR/probabilities/",
    )
    p.add_argument(
        "--tile-size",
        type=_int_range(32, 16384, "a whole number of pixels"),
        metavar="PX",
        default=1024,
        help="predict in tiles of this size to bound memory (default 1024)",
    )
    p.add_argument(
        "--format",
        choices=("png", "tif"),
        default="png",
        help="file format of the masks (default png; stacks are always tif)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in OUT_DIR that cytounet did not write (it always replaces its own)",
    )
    p.add_argument(
        "--scheduler",
        metavar="WHERE",
        help="zarr data: threads (default), processes or a dask scheduler tcp://host:port",
    )
    p.set_defaults(func=_cmd_predict)

    # score ----------------------------------------------------------------
    p = sub.add_parser(
        "score",
        parents=[common],
        formatter_class=_FORMATTER,
        epilog=SCORE_EPILOG,
        help="compare predicted masks with ground truth (Dice, IoU, object F1)",
        description="Score predicted masks against ground truth.",
    )
    p.add_argument("predictions", metavar="PRED_DIR", help="folder of predicted masks")
    p.add_argument("truth", metavar="TRUTH_DIR", help="folder of ground-truth masks")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --csv FILE even if it is not an earlier score table",
    )
    p.add_argument(
        "--iou-threshold",
        type=_threshold,
        default=0.5,
        metavar="IOU",
        help="IoU for an object to count as found (default 0.5)",
    )
    p.set_defaults(func=_cmd_score)

    # check ----------------------------------------------------------------
    p = sub.add_parser(
        "check",
        parents=[common],
        formatter_class=_FORMATTER,
        epilog=CHECK_EPILOG,
        help="check a training set before training",
        description="Check a training set before training.",
    )
    p.add_argument("images", metavar="IMAGES", help="folder of images")
    p.add_argument("masks", metavar="MASKS", help="folder of masks (or scribbles)")
    p.add_argument(
        "--labels",
        choices=LABEL_MODES,
        default="dense",
        help="dense masks or scribbles (default dense)",
    )
    p.add_argument(
        "--classes",
        type=_int_range(1, 255),
        default=1,
        metavar="N",
        help="1 for a binary model (default), else the number of classes",
    )
    p.set_defaults(func=_cmd_check)

    # demo -----------------------------------------------------------------
    p = sub.add_parser(
        "demo",
        parents=[common],
        formatter_class=_FORMATTER,
        epilog=DEMO_EPILOG,
        help="train, predict and score on the BBBC030 sample shipped with the package",
        description="Train, predict and score on the BBBC030 sample shipped with the package.",
    )
    p.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        default="cytounet-demo",
        help="output folder (default ./cytounet-demo)",
    )
    p.add_argument(
        "--max-time",
        type=_seconds,
        metavar="SECONDS",
        default=None,
        help="training time budget (default 90)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in --out that the demo did not write (a report.md of yours, ...)",
    )
    p.set_defaults(func=_cmd_demo)

    from .cli_export import add_export_parser  # export (bioimage.io package)

    add_export_parser(sub, common, _FORMATTER)
    return parser


# ---------------------------------------------------------------------------
# progress


class TrainingProgress:
    """Callable that turns training events into a tqdm bar and a few printed lines.

    Used by ``cytounet train`` and ``cytounet demo``; pass it as the callback of
    :func:`~napari_cytounet.core.training.train_model` or call it on each event.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.max_time: float | None = None
        self.val_dice: float | None = None
        self.finished: Any = None

    def __call__(self, event: Any) -> None:
        from .core.events import BatchEnd, EpochEnd, TrainingFinished, TrainingStarted

        if isinstance(event, TrainingStarted):
            self.max_time = event.max_time
            plan = []
            if event.epochs is not None:
                plan.append(f"{event.epochs} epoch(s) of {event.batches} batches")
            if event.max_time is not None:
                plan.append(f"{event.max_time:g} s")
            val = f", validating on {event.n_validation}" if event.n_validation else ""
            _say(
                f"Training on {event.n_images} image(s){val}: {event.parameters:,} parameters, "
                f"patches {event.patch_size}x{event.patch_size}, batch {event.batch_size}, "
                f"{event.precision}; stops after {' or '.join(plan)}."
            )
            if not self.quiet:
                from tqdm import tqdm

                tty = getattr(sys.stderr, "isatty", lambda: False)()
                self.bar = tqdm(
                    total=1000,
                    file=sys.stderr,
                    leave=True,
                    dynamic_ncols=True,
                    mininterval=0.5 if tty else 10.0,
                    bar_format="{percentage:3.0f}%|{bar:20}| {desc}",
                )
        elif isinstance(event, BatchEnd):
            if self.bar is None:
                return
            fraction = event.fraction
            if self.max_time:
                fraction = max(fraction, event.elapsed / self.max_time)
            val = f"{self.val_dice:.3f}" if self.val_dice is not None else "-"
            epochs = event.epochs if event.epochs is not None else "?"
            self.bar.set_description_str(
                f"epoch {event.epoch}/{epochs} loss {event.loss:.4f} dice {event.dice:.3f} "
                f"val dice {val} | {_fmt_seconds(event.elapsed)} elapsed, "
                f"{_fmt_seconds(event.remaining)} left",
                refresh=False,
            )
            self.bar.update(max(0, min(1000, int(1000 * fraction)) - self.bar.n))
        elif isinstance(event, EpochEnd):
            if event.val_dice is not None:
                self.val_dice = event.val_dice
        elif isinstance(event, TrainingFinished):
            self.finished = event
            self.close()

    def close(self) -> None:
        """Close the bar (idempotent)."""
        if self.bar is not None:
            if self.finished is not None:
                self.bar.update(1000 - self.bar.n)
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """Within the block, the first Ctrl-C sets the yielded event; the second raises.

    Only installs a handler in the main thread (elsewhere the event simply never
    fires); the previous handler is restored on exit.
    """
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            f"\n{PROG}: stopping after this batch; the best model so far will be saved "
            "(press Ctrl-C again to abort without saving).",
            file=sys.stderr,
            flush=True,
        )

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------
# paths


def _looks_like_keras_file(path: Path) -> bool:
    """True for a Keras 3 archive (a zip holding ``config.json``/``cytounet.json``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names & {"config.json", "cytounet.json", "metadata.json"})


def _is_our_record(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("napari-cytounet")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def model_output_path(text: str) -> Path:
    """Validate ``-o MODEL.keras`` before training; return the path to save to.

    A missing ``.keras`` suffix is added. Refused (:class:`UsageError`): another
    suffix, a folder, an existing file that is not a Keras model (it would be
    lost), a ``MODEL.json`` beside it that is not our record, or a location that
    cannot be written. An existing model is replaced, but only once training
    succeeded.
    """
    path = Path(text).expanduser()
    if path.is_dir():
        raise UsageError(f"-o {text} is a folder; name the model file, e.g. -o {path}/model.keras")
    if path.suffix == "":
        path = path.with_name(path.name + ".keras")
        if path.is_dir():
            raise UsageError(f"-o {path} is a folder; name the model file")
    elif path.suffix.lower() != ".keras":
        raise UsageError(
            f"-o {text}: models are saved as .keras files; use e.g. -o {path.stem}.keras"
        )
    if path.exists() and not (path.is_file() and _looks_like_keras_file(path)):
        raise UsageError(
            f"-o {text}: {path} exists and is not a Keras model, so training would destroy it; "
            "choose another file name"
        )
    record = path.with_suffix(".json")
    if record.exists() and not (record.is_file() and _is_our_record(record)):
        raise UsageError(
            f"-o {text}: the model's record would be written to {record}, which exists and is "
            "not a napari-cytounet record; move it away or choose another model name"
        )
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise UsageError(f"-o {text}: {base} is a file, not a folder; choose another location")
    if not os.access(base, os.W_OK):
        raise UsageError(f"-o {text}: the folder {base} is not writable; choose another location")
    return path


def _list_inputs(text: str) -> list[Path]:
    """An image file, or the images of a folder (raises DataError)."""
    from .core.io import IMAGE_EXTENSIONS, list_images

    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"'{path}' is not a supported image ({path.suffix or 'no suffix'}); use a "
                f"{', '.join(IMAGE_EXTENSIONS)} file or a folder of them."
            )
        return [path]
    if not path.exists() and path.suffix.lower() in IMAGE_EXTENSIONS:
        raise DataError(f"No image file '{path}'; check the path (or give a folder of images).")
    return list_images(path)


def _check_out_dir(text: str, inputs: Sequence[Path]) -> Path:
    out = Path(text).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {text} is a file; give a folder for the masks, e.g. -o predictions")
    resolved = out.resolve()
    if any(p.parent.resolve() == resolved for p in inputs):
        raise UsageError(
            f"-o {text} is the folder of the input images; write the masks to a separate "
            "folder, e.g. -o predictions"
        )
    base = _nearest_existing(out)
    if not os.access(base, os.W_OK):
        raise UsageError(f"-o {text}: {base} is not writable; choose another folder")
    return out


# ---------------------------------------------------------------------------
# commands


def _check_folder_pair(images: str, masks: str, labels: str, classes: int, what: str) -> Any:
    """Run the quality check and print its report; returns the report."""
    from .core.quality import check_folders

    report = check_folders(images, masks, label_mode=labels, classes=classes)
    if report.issues:
        _say(f"Quality check of the {what} set ({images} + {masks}):")
        _say(report.format())
    else:
        _say(f"Quality check of the {what} set: {report.summary()}, no problem found.")
    return report


def _read_pairs(images: str, masks: str) -> tuple[list, list, list[str]]:
    from .core.io import pair_folders, read_image, read_mask

    pairing = pair_folders(images, masks)
    xs, ys, names = [], [], []
    for image_path, mask_path in pairing.pairs:
        xs.append(read_image(image_path))
        ys.append(read_mask(mask_path, stack=True))  # stacks: trained plane by plane
        names.append(image_path.stem)
    return xs, ys, names


def _cmd_train(args: argparse.Namespace) -> int:
    from .core.config import TrainingConfig, UNetConfig

    output = model_output_path(args.output)
    if (args.val_images is None) != (args.val_masks is None):
        raise UsageError("give both --val-images and --val-masks, or neither")
    if args.from_model is not None:
        given = [flag for flag, v in (("--depth", args.depth), ("--filters", args.filters)) if v]
        if given:
            raise UsageError(
                f"{' and '.join(given)} cannot change a model given with --from (its "
                "architecture is kept); drop the option or train a new model"
            )
        if not Path(args.from_model).expanduser().is_file():
            raise ModelError(
                f"--from {args.from_model}: no such model file; check the path or leave out "
                "--from to train a new model."
            )

    # every value given is used (or refused by its argparse type): None means "not given"
    given = {
        "epochs": args.epochs,
        "max_time": args.max_time,
        "steps_per_epoch": args.steps_per_epoch,
        "patch_size": args.patch_size,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "loss": args.loss,
        "seed": args.seed,
        "precision": args.precision,
    }
    settings = {k: v for k, v in given.items() if v is not None}
    if args.epochs is not None or args.max_time is not None:
        settings.setdefault("epochs", None)
    config = TrainingConfig(labels=args.labels, **settings)
    architecture = {"depth": args.depth, "base_filters": args.filters, "classes": args.classes}
    unet = UNetConfig(**{k: v for k, v in architecture.items() if v is not None})

    # the quality check, before any expensive work
    classes = unet.classes
    reports = [_check_folder_pair(args.images, args.masks, args.labels, classes, "training")]
    if args.val_images is not None:
        reports.append(
            _check_folder_pair(args.val_images, args.val_masks, args.labels, classes, "validation")
        )
    errors = sum(len(r.errors) for r in reports)
    unpaired = sum(
        1 for r in reports for i in r.issues if i.code in ("unpaired_image", "unpaired_mask")
    )
    if errors and not args.force:
        codes = sorted({i.code for r in reports for i in r.errors})
        hint = " (outline-only masks: fill the objects)" if "outline_only" in codes else ""
        raise DataError(
            f"the quality check found {errors} error(s) ({', '.join(codes)}){hint}, see the "
            "report above; fix them, or pass --force to train anyway."
        )
    if unpaired and not args.force:
        raise DataError(
            f"{unpaired} file(s) have no partner (see the report above) and would be left out "
            "of training; add or rename the missing files, or pass --force to train on the "
            "pairs only."
        )
    if errors or unpaired:
        _warn(f"--force: training despite {errors} error(s) and {unpaired} unpaired file(s)")

    images, masks, names = _read_pairs(args.images, args.masks)
    validation = val_names = None
    if args.val_images is not None:
        vx, vy, val_names = _read_pairs(args.val_images, args.val_masks)
        validation = (vx, vy)

    _quiet_tensorflow(args.debug)
    from .core.bundle import load_bundle, save_bundle
    from .core.training import train

    initial = None
    if args.from_model is not None:
        initial = load_bundle(args.from_model)
        if args.classes and args.classes != initial.classes:
            raise UsageError(
                f"--classes {args.classes} does not match the {initial.classes} class(es) of "
                f"{args.from_model}; drop --classes or train a new model"
            )
        _say(f"Continuing from {initial.path}.")

    progress = TrainingProgress(quiet=args.quiet)
    try:
        with graceful_stop() as stop:
            for event in train(
                images,
                masks,
                config,
                unet,
                validation=validation,
                initial=initial,
                stop=stop,
                names=names,
                validation_names=val_names,
            ):
                progress(event)
    finally:
        progress.close()
    finished = progress.finished
    if finished is None:  # pragma: no cover - train always ends with TrainingFinished
        raise ModelError("training ended without a model; nothing was saved.")
    _say(finished.summary)
    output.parent.mkdir(parents=True, exist_ok=True)
    stopped = finished.reason == "stopped"
    target = output
    if stopped and output.exists():  # a short run must not replace a good model
        target = output.with_name(f"{output.stem}.interrupted.keras")
    path = save_bundle(finished.bundle, target)
    _say(f"Saved the model to {path} (record: {path.with_suffix('.json')}).")
    if stopped and target != output:
        raise _Interrupted(
            f"training was stopped with Ctrl-C; {output} was left as it was and the stopped "
            f"run's best model is in {path} (rename it to use it)"
        )
    if stopped:
        raise _Interrupted(f"training was stopped with Ctrl-C; the best model so far is in {path}")
    return EXIT_OK


def _channel_axis(image: Any, bundle: Any, name: str) -> int | None:
    """Where the colour channels of ``image`` are for this model (raises DataError)."""
    from .core.data import channel_axis_for

    return channel_axis_for(image.shape, bundle.in_channels, name)


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .cli_zarr import is_zarr_job, predict_zarr
    from .core.io import read_image, write_image, write_labels

    if is_zarr_job(args):  # a .zarr input or output: lazy, block by block (cli_zarr.py)
        return predict_zarr(args)
    model_path = Path(args.model).expanduser()
    if not model_path.exists():
        raise ModelError(f"No model file at {model_path}; check the path or train one first.")
    inputs = _list_inputs(args.images)
    out_dir = _check_out_dir(args.output, inputs)
    stems: dict[str, Path] = {}
    for path in inputs:
        other = stems.setdefault(path.stem.casefold(), path)
        if other is not path:
            raise DataError(
                f"'{other.name}' and '{path.name}' share the name '{path.stem}', so their masks "
                "would overwrite each other; rename one or move it out of the folder."
            )
    instances = args.instances or args.split_touching

    _quiet_tensorflow(args.debug)
    from .core.bundle import load_bundle
    from .core.postprocess import postprocess
    from .core.predict import TilePlan, iter_probabilities
    from .core.training import _use_jit

    bundle = load_bundle(model_path)
    if bundle.classes > 1 and instances:
        raise UsageError(
            f"--instances/--split-touching work with binary models, but {model_path.name} has "
            f"{bundle.classes} classes; drop the option"
        )

    # read everything first: a corrupt or incompatible image stops the run before any write
    plans = []
    cache: dict[int, Any] = {}
    cached_bytes = 0
    for k, path in enumerate(inputs):
        image = read_image(path)
        axis = _channel_axis(image, bundle, path.name)
        if image.dtype.kind == "f" and not np.isfinite(image).all():
            raise DataError(
                f"{path.name} contains NaN or infinite values; fix the image (e.g. Fiji "
                "'Remove NaNs') or move it out of the folder."
            )
        spatial = image.shape[:-1] if axis is not None else image.shape
        h, w = spatial[-2:]
        planes = int(np.prod(spatial[:-2])) if len(spatial) > 2 else 1
        if bundle.fixed_input_size is None:
            try:
                TilePlan(h, w, bundle.unet.divisor, args.tile_size, None)
            except DataError as exc:
                overlap = TilePlan(h, w, bundle.unet.divisor, None, None).overlap
                raise UsageError(
                    f"--tile-size {args.tile_size} is too small for this model, whose tiles "
                    f"overlap by {overlap} px; use at least {2 * overlap} (default 1024)"
                ) from exc
        plan = TilePlan(h, w, bundle.unet.divisor, args.tile_size, None, bundle.fixed_input_size)
        plans.append((axis, plan.n_tiles * planes))
        if cached_bytes + image.nbytes <= 512 * 2**20:
            cache[k] = image
            cached_bytes += image.nbytes
        del image

    suffix = ".tif" if args.format == "tif" else ".png"
    _guard_outputs(out_dir, _predict_targets(out_dir, inputs, suffix, args), args.overwrite)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(
            total=sum(n for _, n in plans),
            unit="tile",
            file=sys.stderr,
            dynamic_ncols=True,
            desc="Predicting",
        )
    jit = _use_jit(None)  # CYTOUNET_JIT=0 turns XLA off, as for training
    written = []
    t0 = time.perf_counter()
    try:
        for k, path in enumerate(inputs):
            image = cache.pop(k) if k in cache else read_image(path)
            axis = plans[k][0]
            prob = None
            done = 0
            for item in iter_probabilities(
                bundle, image, channel_axis=axis, tile_size=args.tile_size, jit=jit
            ):
                if hasattr(item, "done"):
                    if bar is not None:
                        bar.update(item.done - done)
                        bar.set_postfix_str(path.name, refresh=False)
                    done = item.done
                else:
                    prob = item
            labels = postprocess(
                prob,
                args.threshold,
                min_size=args.min_size,
                instances=instances,
                split_touching=args.split_touching,
                multiclass=bundle.classes > 1,
            )
            if bundle.classes == 1 and not instances:
                labels = labels * np.uint8(255)
            file_suffix = suffix
            if labels.ndim > 2 or (suffix == ".png" and labels.max(initial=0) > 65535):
                file_suffix = ".tif"
            target = out_dir / f"{path.stem}{file_suffix}"
            if file_suffix != suffix:  # a stack or many labels: TIFF, not the claimed name
                _guard_outputs(out_dir, [target], args.overwrite)
            written.append(write_labels(target, labels))
            if args.probabilities:
                written.append(
                    write_image(
                        out_dir / "probabilities" / f"{path.stem}.tif",
                        prob.astype(np.float32, copy=False),
                    )
                )
            del image, prob, labels
    except BaseException:
        _report_partial(written, inputs, out_dir)
        raise
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    written = [w for w in written if w.parent == out_dir]
    what = "instance label image" if instances else "mask"
    extra = f" and probability maps to {out_dir / 'probabilities'}" if args.probabilities else ""
    _say(
        f"Wrote {len(written)} {what}{'s' if len(written) != 1 else ''} to {out_dir}{extra} "
        f"({seconds:.1f} s)."
    )
    return EXIT_OK


def _predict_targets(out_dir: Path, inputs: Sequence[Path], suffix: str, args: Any) -> list:
    """The files ``cytounet predict`` will write (masks, probability maps)."""
    targets = [out_dir / f"{path.stem}{suffix}" for path in inputs]
    if args.probabilities:
        targets += [out_dir / "probabilities" / f"{path.stem}.tif" for path in inputs]
    return targets


def _guard_outputs(folder: Path, targets: list[Path], overwrite: bool) -> None:
    """Refuse to replace files this program did not write (unless --overwrite); claim them."""
    from .core.files import claim_outputs, refuse_foreign

    if folder.is_dir() and not overwrite:
        refuse_foreign(folder, targets, "--overwrite", "predictions")
    claim_outputs(folder, targets, "predict")


def _report_partial(written: list[Path], inputs: Sequence[Path], out_dir: Path) -> None:
    """After a failure or Ctrl-C: which outputs were written, which were not (with paths)."""
    done = {w.stem for w in written if w.parent == out_dir}
    missing = [p for p in inputs if p.stem not in done]
    shown = ", ".join(str(w) for w in written[:5]) + (" ..." if len(written) > 5 else "")
    _warn(f"written before the stop ({len(written)} file(s)): {shown or 'none'}")
    if missing:
        names = ", ".join(str(p) for p in missing[:5]) + (" ..." if len(missing) > 5 else "")
        _warn(f"not written ({len(missing)} image(s) without a mask in {out_dir}): {names}")


def _read_label_image(path: Path) -> Any:
    from .core.io import read_image, read_mask

    image = read_image(path)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        return read_mask(path)  # raises its "colour mask" message
    return image


def _cmd_score(args: argparse.Namespace) -> int:
    from .core.io import IMAGE_EXTENSIONS, pair_folders
    from .core.metrics import ScoreTable, score

    csv_path = None
    if args.csv is not None:
        csv_path = Path(args.csv).expanduser()
        if csv_path.is_dir():
            raise UsageError(f"--csv {args.csv} is a folder; name a file, e.g. --csv scores.csv")
        if csv_path.suffix.lower() in IMAGE_EXTENSIONS:
            raise UsageError(
                f"--csv {args.csv} names an image file, which would be overwritten; "
                "use e.g. --csv scores.csv"
            )
        if csv_path.exists() and not args.overwrite and not ScoreTable.is_score_csv(csv_path):
            raise UsageError(
                f"--csv {args.csv} exists and is not a score table written by cytounet; "
                "name another file, or pass --overwrite to replace it"
            )
    pairing = pair_folders(args.predictions, args.truth)
    rows = []
    for pred_path, truth_path in pairing.pairs:
        pred, truth = _read_label_image(pred_path), _read_label_image(truth_path)
        stem = pred_path.stem
        if pred.shape != truth.shape:
            raise DataError(
                f"{stem}: the prediction {pred_path.name} is {'x'.join(map(str, pred.shape))} "
                f"but the truth {truth_path.name} is {'x'.join(map(str, truth.shape))}; "
                "score predictions made from the same images."
            )
        table = score(pred, truth, iou_threshold=args.iou_threshold)
        if pred.ndim == 2:
            rows.extend(replace(row, name=stem) for row in table.rows)
        else:  # a stack: one row per plane, "cho01 plane 3"
            rows.extend(replace(row, name=f"{stem} {row.name}") for row in table.rows)
    table = ScoreTable.from_rows(rows, args.iou_threshold)
    _say(table.format())
    mean, overall = table.mean, table.overall
    _say(
        f"Mean over {len(rows)} image(s): Dice {mean.dice:.3f}, IoU {mean.iou:.3f}, "
        f"object F1 {mean.object_f1:.3f} (IoU >= {args.iou_threshold:g}); pooled over all "
        f"pixels: Dice {overall.dice:.3f}, IoU {overall.iou:.3f}."
    )
    for path in pairing.unpaired_images:
        _warn(f"the prediction {path.name} has no ground truth in {args.truth}; not scored")
    for path in pairing.unpaired_masks:
        _warn(f"the ground truth {path.name} has no prediction in {args.predictions}; not scored")
    if csv_path is not None:
        _say(f"Wrote {table.to_csv(csv_path)}.")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from .core.quality import check_folders

    report = check_folders(args.images, args.masks, label_mode=args.labels, classes=args.classes)
    _say(report.format())
    if not report.ok:
        n = len(report.errors)
        print(
            f"{PROG}: error: the check found {n} error{'s' if n != 1 else ''} that would waste "
            "a training run (see the report above); fix them before training.",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_PROBLEM
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder, e.g. --out cytounet-demo")
    if not os.access(_nearest_existing(out), os.W_OK):
        raise UsageError(f"--out {args.out} is not writable; choose another folder")
    max_time = args.max_time if args.max_time is not None else demo.DEFAULT_MAX_TIME
    _quiet_tensorflow(args.debug)
    _say(
        f"cytounet demo: training on the BBBC030 sample shipped with the package for "
        f"{max_time:g} s, then predicting and scoring {', '.join(demo.VALIDATION_NAMES)}."
    )
    progress = TrainingProgress(quiet=args.quiet)
    try:
        with graceful_stop() as stop:
            result = demo.run_demo(
                out, max_time=max_time, callback=progress, stop=stop, overwrite=args.overwrite
            )
    finally:
        progress.close()
    if progress.finished is not None:
        _say(progress.finished.summary)
    _say(result.format())
    if result.stopped:
        raise _Interrupted("the demo was stopped with Ctrl-C; its outputs are in " + str(out))
    return EXIT_OK


# ---------------------------------------------------------------------------
# entry point


def _traceback(exc: BaseException) -> None:
    import traceback

    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def _fail(exc: BaseException | str, code: int, debug: bool) -> int:
    if debug and isinstance(exc, BaseException):
        _traceback(exc)
    sys.stdout.flush()
    print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cytounet`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Never raises (except for ``SystemExit`` from nowhere): problems become one
    line on standard error and an exit code (see the module docstring).

    Examples
    --------
    >>> main(["check", "train/images", "train/masks"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # known before parsing, so usage errors honour it too
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        debug = bool(getattr(args, "debug", False))
        if args.command is None:
            raise UsageError(
                "choose a command: train, predict, score, check, demo or export; "
                "see 'cytounet --help'"
            )
        return int(args.func(args))
    except UsageError as exc:
        return _fail(exc, EXIT_USAGE, debug)
    except ConfigError as exc:  # a nonsense value caught by the core
        return _fail(exc, EXIT_USAGE, debug)
    except CytoUNetError as exc:
        return _fail(exc, EXIT_PROBLEM, debug)
    except _Interrupted as exc:
        return _fail(exc, EXIT_INTERRUPTED, debug)
    except KeyboardInterrupt as exc:
        if debug:
            _traceback(exc)
        return _fail("interrupted (Ctrl-C); nothing more was written", EXIT_INTERRUPTED, False)
    except MemoryError as exc:
        if debug:
            _traceback(exc)
        return _fail(
            "out of memory; use a smaller --tile-size, --batch-size or --patch-size",
            EXIT_PROBLEM,
            False,
        )
    except OSError as exc:
        if debug:
            _traceback(exc)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        msg = f"{exc.strerror or exc}{where}; check the path, free space and permissions"
        return _fail(msg, EXIT_PROBLEM, False)
    except Exception as exc:  # a bug: still one line, the traceback with --debug
        if debug:
            _traceback(exc)
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (this is a bug: run again with --debug "
            "and report the traceback)",
            EXIT_PROBLEM,
            False,
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
