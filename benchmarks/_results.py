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
