"""``python -m napari_cytounet.cli``: the ``cytounet`` command.

Examples
--------
>>> import subprocess, sys  # doctest: +SKIP
>>> subprocess.run([sys.executable, "-m", "napari_cytounet.cli", "--version"])  # doctest: +SKIP
"""

import sys

from . import main

sys.exit(main())
