"""What every ``cytounet`` command shares: exit codes, messages, option types and options.

Option types turn a bad value into an argparse error (exit code 2) naming the
option, e.g. ``argument --lr: must be a learning rate between 0 and 1 (e.g.
0.002), got '0'``; their limits come from :mod:`napari_cytounet.core.config`.

Examples
--------
>>> int_range(2, 5)("3")
3
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.config import (
    CLASSES_RANGE,
    LABEL_MODES,
    LEARNING_RATE_RANGE,
    THRESHOLD_RANGE,
    TILE_RANGE,
)

PROG = "cytounet"

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FORMATTER = argparse.RawDescriptionHelpFormatter


class UsageError(Exception):
    """A nonsense command line (exit code 2)."""


class Interrupted(Exception):
    """Training was stopped with Ctrl-C but the model was saved (exit code 130)."""


# ---------------------------------------------------------------------------
# messages


def one_line(text: Any) -> str:
    """Collapse a message to one line (messages may carry the core's line breaks).

    Examples
    --------
    >>> one_line("a\\n  b")
    'a b'
    """
    return " ".join(str(text).split())


def say(*parts: Any) -> None:
    """Print to standard output, without interleaving with a progress bar."""
    print(*parts, flush=True)


def warn(text: str) -> None:
    """Print ``cytounet: warning: <text>`` (one line) to standard error."""
    print(f"{PROG}: warning: {one_line(text)}", file=sys.stderr, flush=True)


def quiet_tensorflow(debug: bool = False) -> None:
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


def fmt_seconds(seconds: float | None) -> str:
    """``m:ss`` or ``h:mm:ss``; ``?`` when unknown.

    Examples
    --------
    >>> fmt_seconds(75), fmt_seconds(None)
    ('1:15', '?')
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (absolute)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# ---------------------------------------------------------------------------
# option types (argparse turns ArgumentTypeError into "argument --x: <message>")


def int_range(lo: int, hi: int | None = None, what: str = "a whole number") -> Callable:
    """An argparse type: a whole number from ``lo`` to ``hi`` (inclusive; no ``hi``: >= lo).

    Examples
    --------
    >>> int_range(1, what="a positive whole number")("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a positive whole number >= 1, got '0'
    """

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


def float_range(
    lo: float, hi: float | None, what: str, *, lo_open: bool = True, hi_open: bool = True
) -> Callable:
    """An argparse type: a finite number between ``lo`` and ``hi`` (open ends by default).

    Examples
    --------
    >>> float_range(0.0, 1.0, "a probability")("0.25")
    0.25
    """

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


positive_int = int_range(1, what="a positive whole number")
pixels = int_range(0, what="a whole number of pixels")
tile_pixels = int_range(*TILE_RANGE, "a whole number of pixels")
seconds = float_range(0.0, None, "a positive number of seconds (e.g. 300)")
learning_rate = float_range(*LEARNING_RATE_RANGE, "a learning rate between 0 and 1 (e.g. 0.002)")
probability = float_range(*THRESHOLD_RANGE, "a probability between 0 and 1, exclusive (e.g. 0.5)")


# ---------------------------------------------------------------------------
# the parser and the options several commands share


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one line (raised, printed by ``main``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}; see '{self.prog} --help'")


def global_flags(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """Add ``--debug`` and ``-q/--quiet`` (``suppress``: for the copies after a command)."""
    default: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks of errors"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="no progress bars"
    )


def add_command(
    sub: Any, common: argparse.ArgumentParser, name: str, help: str, summary: str, epilog: str
) -> argparse.ArgumentParser:
    """A subcommand's parser: the global flags, its one-line help, summary and examples."""
    return sub.add_parser(
        name,
        parents=[common],
        formatter_class=FORMATTER,
        epilog=epilog,
        help=help,
        description=summary,
    )


def add_flags(parser: argparse.ArgumentParser, flags: dict[str, str]) -> None:
    """Add on/off options: ``{"--flag": "help"}``."""
    for flag, help in flags.items():
        parser.add_argument(flag, action="store_true", help=help)


def add_overwrite(parser: argparse.ArgumentParser, help: str) -> None:
    """The ``--overwrite`` flag, with the command's own explanation."""
    parser.add_argument("--overwrite", action="store_true", help=help)


def add_labels(parser: argparse.ArgumentParser, help: str) -> None:
    """``--labels dense|scribbles`` (default dense); the choices are the config's."""
    parser.add_argument("--labels", choices=LABEL_MODES, default="dense", help=help)


def add_classes(parser: argparse.ArgumentParser, default: int | None) -> None:
    """``--classes N`` in the config's range (``None``: not given)."""
    parser.add_argument(
        "--classes",
        type=int_range(*CLASSES_RANGE),
        default=default,
        metavar="N",
        help="1 for a binary model (default), else the number of classes",
    )


def plural(n: int, word: str) -> str:
    """``word`` with an ``s`` unless ``n`` is 1.

    Examples
    --------
    >>> plural(2, "mask")
    'masks'
    """
    return word if n == 1 else f"{word}s"


def first_few(items: Sequence[Any], n: int = 5) -> str:
    """The first ``n`` items joined by commas, ``...`` when there are more.

    Examples
    --------
    >>> first_few([1, 2, 3], 2)
    '1, 2 ...'
    """
    return ", ".join(str(x) for x in items[:n]) + (" ..." if len(items) > n else "")
