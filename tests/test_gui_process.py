"""The GUI tests, in a pytest process of their own, when this run also runs the core tests.

napari's OpenGL (Mesa) and TensorFlow cannot share a process (their LLVMs
clash; a viewer opened after ``import tensorflow`` crashes), and the core tests
import TensorFlow. So ``python -m pytest`` leaves ``tests/gui`` out of its own
collection (see ``gui_targets`` in gui_process.py) and this test runs it in a fresh
``python -m pytest``, whose output appears live. ``python -m pytest tests/gui``
runs the GUI tests directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gui_process import gui_targets

pytestmark = pytest.mark.gui


def test_gui_tests_in_their_own_process(pytestconfig, capsys):
    targets = gui_targets(pytestconfig)
    if not targets:
        pytest.skip("no GUI tests to move: none in this run, or they run in this process")
    command = [sys.executable, "-m", "pytest", *targets, "-p", "no:cacheprovider", "-q"]
    if pytestconfig.option.markexpr:
        command += ["-m", pytestconfig.option.markexpr]
    if pytestconfig.option.maxfail:
        command += [f"--maxfail={pytestconfig.option.maxfail}"]
    if pytestconfig.option.capture == "no":
        command += ["-s"]
    if pytestconfig.option.durations:
        command += [f"--durations={pytestconfig.option.durations}"]
    env = dict(os.environ, CYTOUNET_GUI_CHILD="1")
    with capsys.disabled():
        print(f"\n--- GUI tests in their own process: {' '.join(command[1:])}", flush=True)
        code = subprocess.call(command, cwd=Path(__file__).parent.parent, env=env)
        print("--- end of the GUI tests' process", flush=True)
    if code == 5:
        pytest.skip("no GUI test selected")
    assert code == 0, f"the GUI tests failed (pytest exit code {code}): see their output above"
