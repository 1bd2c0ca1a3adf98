"""Import time of ``napari_cytounet`` in a fresh interpreter, and what it pulls in.

Usage::

    python benchmarks/import_time.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from _results import emit

CHILD = (
    "import sys, time; t0 = time.perf_counter(); import napari_cytounet; "
    "dt = time.perf_counter() - t0; "
    "heavy = [m for m in ('tensorflow', 'keras', 'napari', 'qtpy', 'PyQt5') if m in sys.modules]; "
    "print(dt, ','.join(heavy))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON line here")
    args = parser.parse_args()
    times, heavy = [], ""
    for _ in range(args.repeats):
        out = subprocess.run(
            [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
        ).stdout.split()
        times.append(float(out[0]))
        heavy = out[1] if len(out) > 1 else ""
    emit(
        {
            "benchmark": "import_time",
            "best_seconds": round(min(times), 4),
            "median_seconds": round(sorted(times)[len(times) // 2], 4),
            "heavy_modules_imported": heavy.split(",") if heavy else [],
        },
        args.json,
    )


if __name__ == "__main__":
    main()
