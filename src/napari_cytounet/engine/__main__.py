"""Entry point of the engine process: ``python -m napari_cytounet.engine ADDRESS``."""

from __future__ import annotations

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
