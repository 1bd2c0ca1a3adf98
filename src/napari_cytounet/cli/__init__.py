"""The ``cytounet`` command line: train, predict, score, check, demo and export.

A thin face over :mod:`napari_cytounet.core`: it parses options, reads and
writes files, draws progress bars and turns every problem into one line on
standard error. The work itself is done by the core. Each command is a module
of this package that builds its own subparser (``add_parser``) and runs it
(``run``); :mod:`._common` holds what they share.

Exit codes

* ``0``: success.
* ``1``: a problem with the data or the model (missing or empty folder, unpaired
  or unreadable files, a training set that fails the quality check, a corrupt or
  incompatible model), or ``check`` found an error-severity problem.
* ``2``: a nonsense command line (unknown option, negative epochs, threshold 2,
  depth 9, ``--lr 0``, an output path that is a folder...).
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
import sys
from collections.abc import Sequence

from .._version import __version__
from ..core.errors import ConfigError, CytoUNetError
from . import check, demo, export, predict, score, train
from ._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    FORMATTER,
    PROG,
    Interrupted,
    Parser,
    UsageError,
    global_flags,
    one_line,
)
from .progress import TrainingProgress, graceful_stop
from .train import model_output_path

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROBLEM",
    "EXIT_USAGE",
    "TrainingProgress",
    "UsageError",
    "build_parser",
    "graceful_stop",
    "main",
    "model_output_path",
]

#: The commands, in the order of ``cytounet --help``.
COMMANDS = (train, predict, score, check, demo, export)

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
    """The ``cytounet`` argument parser (exposed for documentation and tests).

    Examples
    --------
    >>> build_parser().parse_args(["check", "imgs", "masks"]).classes
    1
    """
    parser = Parser(
        prog=PROG, description=MAIN_DESCRIPTION, epilog=MAIN_EPILOG, formatter_class=FORMATTER
    )
    parser.add_argument(
        "--version", action="version", version=f"{PROG} (napari-cytounet) {__version__}"
    )
    global_flags(parser)
    common = Parser(add_help=False)  # the global flags after the command: train ... --debug
    global_flags(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in COMMANDS:
        command.add_parser(sub, common)
    return parser


# ---------------------------------------------------------------------------
# entry point


def _traceback(exc: BaseException) -> None:
    import traceback

    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def _fail(exc: BaseException | str, code: int, debug: bool) -> int:
    if debug and isinstance(exc, BaseException):
        _traceback(exc)
    sys.stdout.flush()
    print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr, flush=True)
    return code


def _run(argv: list[str]) -> int:
    """Parse and run; raises the errors that :func:`main` turns into exit codes."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if args.command is None:
        raise UsageError(
            "choose a command: train, predict, score, check, demo or export; see 'cytounet --help'"
        )
    return int(args.func(args))


def _crash_message(exc: BaseException) -> tuple[str, int]:
    """One line and the exit code for an error that is not the CLI's or the core's own."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C); nothing more was written", EXIT_INTERRUPTED
    if isinstance(exc, MemoryError):
        return "out of memory; use a smaller --tile-size, --batch-size or --patch-size", 1
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{where}; check the path, free space and permissions", 1
    return (
        f"unexpected {type(exc).__name__}: {exc} (this is a bug: run again with --debug "
        "and report the traceback)",
        EXIT_PROBLEM,
    )


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
        return _run(argv)
    except (UsageError, ConfigError) as exc:  # ConfigError: a nonsense value caught by the core
        return _fail(exc, EXIT_USAGE, debug)
    except CytoUNetError as exc:
        return _fail(exc, EXIT_PROBLEM, debug)
    except Interrupted as exc:
        return _fail(exc, EXIT_INTERRUPTED, debug)
    except (KeyboardInterrupt, Exception) as exc:
        if debug:
            _traceback(exc)
        message, code = _crash_message(exc)
        return _fail(message, code, False)
