"""Shared output of the benchmark scripts: one JSON line on stdout, optionally a file too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(result: dict[str, Any], path: Path | None = None) -> None:
    """Print ``result`` as one JSON line and, if ``path`` is given, write it there too."""
    line = json.dumps(result)
    print(line, flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line + "\n")


def peak_rss_gib() -> float:
    """Peak resident memory of this process in GiB: ``VmHWM`` of ``/proc/self/status``.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux keeps that across ``fork`` and
    ``execve``, so a fresh child process started by a big parent reports at least the
    parent's resident size at the fork (a child of a 2 GiB parent reads 2.03 GiB while
    its own high-water mark is 14 MB). ``VmHWM`` belongs to the address space, which
    ``execve`` replaces. Falls back to ``ru_maxrss`` where ``/proc`` is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB -> GiB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
