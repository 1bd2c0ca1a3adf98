"""Which GUI tests must run in a pytest process of their own (see ``gui_targets``)."""

from __future__ import annotations

import os
from pathlib import Path

GUI_DIR = (Path(__file__).parent / "gui").resolve()


def within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it."""
    return path == folder or folder in path.parents


def gui_targets(config) -> list[str]:
    """The GUI tests this run asks for, when they must run in a pytest process of their own.

    TensorFlow and napari's OpenGL (Mesa) cannot share a process: TensorFlow's
    LLVM clashes with Mesa's, and a viewer opened after ``import tensorflow``
    crashes. The core tests import TensorFlow (many at collection), so when a
    run covers both, the GUI tests are not collected here but run by
    ``tests/test_gui_process.py`` in a fresh ``python -m pytest`` (which never
    imports TensorFlow: the widgets use the engine process). A run of GUI tests
    only (``python -m pytest tests/gui``) runs them here. Returns ``[]`` when
    nothing has to move.
    """
    if os.environ.get("CYTOUNET_GUI_CHILD"):
        return []
    root = Path(str(config.invocation_params.dir))
    args = [str(a) for a in config.args] or ["."]
    paths = [(root / a.split("::")[0]).resolve() for a in args]
    gui = [str(p) + a[len(a.split("::")[0]) :] for a, p in zip(args, paths) if within(p, GUI_DIR)]
    covers_gui = [p for p in paths if within(GUI_DIR, p)]  # "tests", "." ...
    if not any(not within(p, GUI_DIR) for p in paths):
        return []  # GUI tests only: they run in this process
    return [str(GUI_DIR)] if covers_gui else gui
