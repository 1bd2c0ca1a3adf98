"""Import TensorFlow safely inside napari (Linux: keep its LLVM apart from the GL driver's).

TensorFlow's wheels export their own copy of LLVM. Mesa's OpenGL drivers
(llvmpipe, radeonsi, ... - what napari's canvas uses on most Linux machines
without a proprietary driver, and always under Xvfb) load the system's
``libLLVM``. When both meet in one process the dynamic linker binds one's calls
to the other's functions and the process crashes with a segmentation fault
(tensorflow/tensorflow#61696, #119254). In napari the GL context exists before
the first training, so TensorFlow is the one to load second: importing it with
``RTLD_DEEPBIND`` makes its libraries use their own symbols first, which avoids
the crash.

Every widget job calls :func:`import_tensorflow` before it touches a core module
that needs TensorFlow. Importing this module itself is free (no TensorFlow).
"""

from __future__ import annotations

import os
import sys
import threading

_LOCK = threading.Lock()


def import_tensorflow() -> None:
    """Import TensorFlow (once), with ``RTLD_DEEPBIND`` on Linux."""
    if "tensorflow" in sys.modules:
        return
    with _LOCK:
        if "tensorflow" in sys.modules:
            return
        deepbind = getattr(os, "RTLD_DEEPBIND", 0)
        if (
            not sys.platform.startswith("linux")
            or not deepbind
            or os.environ.get("CYTOUNET_NO_DEEPBIND")
        ):
            import tensorflow

            return
        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | deepbind)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.setdlopenflags(flags)
