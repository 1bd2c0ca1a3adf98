"""``cytounet train``: check a folder of images and masks, then train a model on it.

The quality check and the training are one event stream of the core
(:func:`~napari_cytounet.core.checked_training.iter_checked_training`), which
reads every file once; this module only parses options, prints and saves.

Examples
--------
>>> from napari_cytounet.cli import main
>>> main(["train", "imgs", "masks", "-o", "cells.keras", "--max-time", "60"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from ..core.config import (
    BATCH_RANGE,
    DEPTH_RANGE,
    FILTERS_RANGE,
    LOSSES,
    PATCH_RANGE,
    PRECISIONS,
    SEED_RANGE,
)
from ..core.errors import ModelError
from ._common import (
    EXIT_OK,
    Interrupted,
    UsageError,
    add_classes,
    add_command,
    add_labels,
    int_range,
    learning_rate,
    nearest_existing,
    positive_int,
    quiet_tensorflow,
    say,
    seconds,
    warn,
)
from .progress import TrainingProgress, graceful_stop

HELP = "train a model on a folder of images and a folder of masks"
SUMMARY = "Train a UNet on a folder of images and masks."

EPILOG = """\
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

#: ``TrainingConfig`` field <- option destination (None: not given, the config's default).
CONFIG_OPTIONS = {
    "epochs": "epochs",
    "max_time": "max_time",
    "steps_per_epoch": "steps_per_epoch",
    "patch_size": "patch_size",
    "batch_size": "batch_size",
    "learning_rate": "lr",
    "loss": "loss",
    "seed": "seed",
    "precision": "precision",
    "devices": "devices",
}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``train`` to the subparsers ``sub``."""
    p = add_command(sub, common, "train", HELP, SUMMARY, EPILOG)
    p.add_argument("images", metavar="IMAGES", help="folder of training images")
    p.add_argument("masks", metavar="MASKS", help="folder of masks (or scribbles) for them")
    p.add_argument(
        "-o", "--output", metavar="MODEL.keras", required=True,
        help="where to save the model (.keras; replaced only when training succeeds)",
    )  # fmt: skip
    p.add_argument("--val-images", metavar="DIR", help="folder of validation images")
    p.add_argument("--val-masks", metavar="DIR", help="folder of validation masks")
    _add_budget(p)
    add_labels(
        p, "dense masks (0 = background) or scribbles (0 = not annotated, "
        "1 = background, 2 = foreground); default dense",
    )  # fmt: skip
    add_classes(p, None)
    p.add_argument(
        "--from", dest="from_model", metavar="MODEL.keras",
        help="continue training (fine-tune) this model instead of a new one",
    )  # fmt: skip
    _add_settings(p)
    p.add_argument(
        "--force", action="store_true",
        help="train even when the quality check finds errors or unpaired files",
    )  # fmt: skip
    p.set_defaults(func=run)


def _add_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--epochs", type=positive_int, metavar="N",
        help="number of epochs (default 20 when --max-time is not given)",
    )  # fmt: skip
    p.add_argument(
        "--max-time", type=seconds, metavar="SECONDS", help="time budget for training in seconds"
    )
    p.add_argument(
        "--steps-per-epoch", type=positive_int, metavar="N", help="batches per epoch (default 25)"
    )


def _add_settings(p: argparse.ArgumentParser) -> None:
    """The training and architecture settings; limits and choices are the config's."""
    p.add_argument(
        "--patch-size", type=int_range(*PATCH_RANGE, "a whole number of pixels"), metavar="PX",
        help="side of the square training patches (default 128; "
        "rounded up to a multiple of 2**depth)",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=int_range(*BATCH_RANGE), metavar="N",
        help="patches per batch (default 16)",
    )  # fmt: skip
    p.add_argument(
        "--lr", type=learning_rate, metavar="RATE",
        help="learning rate (default 0.002, cosine decay)",
    )  # fmt: skip
    p.add_argument(
        "--depth", type=int_range(*DEPTH_RANGE), metavar="N", help="UNet depth, 2-5 (default 4)"
    )
    p.add_argument(
        "--filters", type=int_range(*FILTERS_RANGE), metavar="N",
        help="filters of the first level, doubled per level (default 16)",
    )  # fmt: skip
    p.add_argument("--loss", choices=LOSSES, help="training loss (default bce_dice)")
    p.add_argument(
        "--seed", type=int_range(*SEED_RANGE), metavar="N", help="random seed (default 0)"
    )
    p.add_argument(
        "--precision", choices=PRECISIONS,
        help="float32, or mixed_bfloat16 where the hardware has it (default auto)",
    )  # fmt: skip
    p.add_argument(
        "--devices", metavar="DEVICES",
        help="where to train: auto (default; all GPUs when several), cpu, gpu, gpu:0,1, a count, "
        "or workers (MultiWorkerMirroredStrategy from TF_CONFIG); --batch-size is the global batch",
    )  # fmt: skip


# ---------------------------------------------------------------------------
# the model file


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


def model_output_path(text: str) -> Path:
    """Validate ``-o MODEL.keras`` before training; return the path to save to.

    A missing ``.keras`` suffix is added. Refused (:class:`UsageError`): another
    suffix, a folder, an existing file that is not a Keras model (it would be
    lost), a ``MODEL.json`` beside it that is not our record, or a location that
    cannot be written. An existing model is replaced, but only once training
    succeeded.

    Examples
    --------
    >>> model_output_path("/tmp/cells").name
    'cells.keras'
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
    base = nearest_existing(path.parent)
    if not base.is_dir():
        raise UsageError(f"-o {text}: {base} is a file, not a folder; choose another location")
    if not os.access(base, os.W_OK):
        raise UsageError(f"-o {text}: the folder {base} is not writable; choose another location")
    return path


# ---------------------------------------------------------------------------
# the command


def _check_options(args: argparse.Namespace) -> None:
    """Refuse combinations of options that make no sense (UsageError) or a missing --from."""
    if (args.val_images is None) != (args.val_masks is None):
        raise UsageError("give both --val-images and --val-masks, or neither")
    if args.from_model is None:
        return
    pairs = (("--depth", args.depth), ("--filters", args.filters))
    given = [flag for flag, value in pairs if value is not None]
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


def _configs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The training and architecture configs: every value given is used, None means not given."""
    from ..core.config import TrainingConfig, UNetConfig

    settings = {
        field: getattr(args, dest)
        for field, dest in CONFIG_OPTIONS.items()
        if getattr(args, dest) is not None
    }
    if args.epochs is not None or args.max_time is not None:
        settings.setdefault("epochs", None)  # --max-time alone: no epoch limit
    config = TrainingConfig(labels=args.labels, **settings)
    architecture = {"depth": args.depth, "base_filters": args.filters, "classes": args.classes}
    unet = UNetConfig(**{k: v for k, v in architecture.items() if v is not None})
    return config, unet


def _initial_loader(args: argparse.Namespace) -> Any:
    """A function loading the ``--from`` model (called once the check has passed), or None."""
    if args.from_model is None:
        return None

    def load() -> Any:
        from ..core.bundle import load_bundle

        initial = load_bundle(args.from_model)
        if args.classes is not None and args.classes != initial.classes:
            raise UsageError(
                f"--classes {args.classes} does not match the {initial.classes} class(es) of "
                f"{args.from_model}; drop --classes or train a new model"
            )
        say(f"Continuing from {initial.path}.")
        return initial

    return load


def _report_check(checked: Any, args: argparse.Namespace) -> None:
    """Print the quality reports; warn when --force overrides a refusal."""
    for what, source, report in zip(checked.sets, checked.sources, checked.reports):
        if report.issues:
            say(f"Quality check of the {what} set ({source}):")
            say(report.format())
        else:
            say(f"Quality check of the {what} set: {report.summary()}, no problem found.")
    if checked.blocking and args.force:
        warn(
            f"--force: training despite {checked.errors} error(s) and {checked.unpaired} "
            "unpaired file(s)"
        )
    if args.force or not checked.blocking:
        quiet_tensorflow(args.debug)  # before the core imports it for training


class _StopOnceChecked:
    """The run's stop flag; Ctrl-C sets it only once the check has passed (see ``run``)."""

    def __init__(self) -> None:
        self.event: Any = None

    def is_set(self) -> bool:
        return self.event is not None and self.event.is_set()


def run(args: argparse.Namespace) -> int:
    """Run ``cytounet train``; returns the exit code (raises the CLI's errors).

    Ctrl-C while the files are read and checked interrupts at once (nothing is
    written); from then on the first Ctrl-C stops training and saves the best model.
    """
    from ..core.checked_training import iter_checked_training
    from ..core.events import QualityChecked

    output = model_output_path(args.output)
    _check_options(args)
    config, unet = _configs(args)
    validation = None if args.val_images is None else (args.val_images, args.val_masks)
    progress = TrainingProgress(quiet=args.quiet)
    stop = _StopOnceChecked()
    try:
        with contextlib.ExitStack() as handlers:
            events = iter_checked_training(
                args.images, args.masks, config, unet, validation_dirs=validation,
                initial=_initial_loader(args), force=args.force, force_hint="--force", stop=stop,
            )  # fmt: skip
            for event in events:
                if isinstance(event, QualityChecked):
                    _report_check(event, args)
                    stop.event = handlers.enter_context(graceful_stop())
                else:
                    progress(event)
    finally:
        progress.close()
    return _save(progress.finished, output)


def _save(finished: Any, output: Path) -> int:
    """Save the trained model; a stopped run never replaces an existing model."""
    from ..core.bundle import save_bundle

    if finished is None:  # pragma: no cover - train always ends with TrainingFinished
        raise ModelError("training ended without a model; nothing was saved.")
    say(finished.summary)
    devices = finished.bundle.extra.get("devices") or {}
    if not devices.get("chief", True):  # multi-worker: only worker 0 writes the model
        say("This worker is not the chief (TF_CONFIG task index 0 is); it saves no model.")
        return EXIT_OK
    output.parent.mkdir(parents=True, exist_ok=True)
    stopped = finished.reason == "stopped"
    target = output
    if stopped and output.exists():  # a short run must not replace a good model
        target = output.with_name(f"{output.stem}.interrupted.keras")
    path = save_bundle(finished.bundle, target)
    say(f"Saved the model to {path} (record: {path.with_suffix('.json')}).")
    if stopped and target != output:
        raise Interrupted(
            f"training was stopped with Ctrl-C; {output} was left as it was and the stopped "
            f"run's best model is in {path} (rename it to use it)"
        )
    if stopped:
        raise Interrupted(f"training was stopped with Ctrl-C; the best model so far is in {path}")
    return EXIT_OK
