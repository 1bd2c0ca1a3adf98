"""``cytounet check``: check a training set before training (never imports TensorFlow).

Examples
--------
>>> from napari_cytounet.cli import main
>>> main(["check", "train/images", "train/masks"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import EXIT_OK, EXIT_PROBLEM, PROG, add_classes, add_command, add_labels, plural, say

HELP = "check a training set before training"
SUMMARY = "Check a training set before training."

EPILOG = """\
Finds unpaired files, unreadable files, image/mask shape mismatches, NaN or
constant images, empty or all-foreground masks, non-binary masks and masks that
only draw object outlines. Exit code 1 when it finds an error (something that
would waste a training run), 0 otherwise (warnings allowed).

examples:
  cytounet check data/train/images data/train/masks
  cytounet check data/train/images data/train/outlines      # exit code 1
  cytounet check imgs scribbles --labels scribbles
"""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``check`` to the subparsers ``sub``."""
    p = add_command(sub, common, "check", HELP, SUMMARY, EPILOG)
    p.add_argument("images", metavar="IMAGES", help="folder of images")
    p.add_argument("masks", metavar="MASKS", help="folder of masks (or scribbles)")
    add_labels(p, "dense masks or scribbles (default dense)")
    add_classes(p, 1)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cytounet check``; exit code 1 when the report has an error."""
    from ..core.quality import check_folders

    report = check_folders(args.images, args.masks, label_mode=args.labels, classes=args.classes)
    say(report.format())
    if not report.ok:
        n = len(report.errors)
        print(
            f"{PROG}: error: the check found {n} {plural(n, 'error')} that would waste "
            "a training run (see the report above); fix them before training.",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_PROBLEM
    return EXIT_OK
