"""The release check: build, twine check, install the wheel into a fresh venv, open napari.

Runs ``scripts/check_release.sh`` (about a minute or two: it builds the sdist and
wheel and starts napari under Xvfb). Marked ``release`` so that it can be
selected (``pytest -m release``) or skipped (``pytest -m "not release"``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_release.sh"

pytestmark = [pytest.mark.release, pytest.mark.slow]


def _missing_tools() -> list[str]:
    missing = [m for m in ("build", "twine") if importlib.util.find_spec(m) is None]
    missing += [t for t in ("bash", "xvfb-run") if shutil.which(t) is None]
    return missing


@pytest.mark.skipif(sys.platform != "linux", reason="the release check runs on Linux (Xvfb)")
def test_release_check_passes(tmp_path: Path) -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip(
            f"the release check needs {', '.join(missing)} "
            "(pip install build twine; apt-get install xvfb xauth)"
        )
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    # the viewer runs under its own xvfb-run: do not inherit pytest-xvfb's display choice
    env.pop("CHECK_RELEASE_USE_DISPLAY", None)
    proc = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"scripts/check_release.sh failed:\n{output[-6000:]}"
    assert "RELEASE CHECK PASSED" in proc.stdout, output[-6000:]
