"""``cytounet demo``: train, predict and score on the BBBC030 sample shipped with the package.

Examples
--------
>>> from napari_cytounet.cli import main
>>> main(["demo", "--out", "/tmp/demo", "--max-time", "30"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ._common import (
    EXIT_OK,
    Interrupted,
    UsageError,
    add_command,
    add_overwrite,
    nearest_existing,
    quiet_tensorflow,
    say,
    seconds,
)
from .progress import TrainingProgress, graceful_stop

HELP = "train, predict and score on the BBBC030 sample shipped with the package"
SUMMARY = "Train, predict and score on the BBBC030 sample shipped with the package."

EPILOG = """\
Trains on the BBBC030 sample shipped with the package (4 training images,
1 validation image; no network needed), predicts the validation image, scores
it and writes into the output folder: model.keras (+ model.json), the predicted
mask, overlay.png (image in gray, prediction outlined in magenta, ground truth
in green) and report.md. Takes about two minutes on 2 CPU cores.

examples:
  cytounet demo
  cytounet demo --out /tmp/demo --max-time 30
"""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``demo`` to the subparsers ``sub``."""
    p = add_command(sub, common, "demo", HELP, SUMMARY, EPILOG)
    p.add_argument(
        "-o", "--out", metavar="DIR", default="cytounet-demo",
        help="output folder (default ./cytounet-demo)",
    )  # fmt: skip
    p.add_argument(
        "--max-time", type=seconds, metavar="SECONDS", default=None,
        help="training time budget (default 90)",
    )  # fmt: skip
    add_overwrite(
        p, "replace files in --out that the demo did not write (a report.md of yours, ...)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cytounet demo``; returns the exit code (raises the CLI's errors)."""
    from .. import demo

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder, e.g. --out cytounet-demo")
    if not os.access(nearest_existing(out), os.W_OK):
        raise UsageError(f"--out {args.out} is not writable; choose another folder")
    max_time = args.max_time if args.max_time is not None else demo.DEFAULT_MAX_TIME
    quiet_tensorflow(args.debug)
    say(
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
        say(progress.finished.summary)
    say(result.format())
    if result.stopped:
        raise Interrupted("the demo was stopped with Ctrl-C; its outputs are in " + str(out))
    return EXIT_OK
