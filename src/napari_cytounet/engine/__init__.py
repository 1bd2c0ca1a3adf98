"""The engine: the core run in a child process of its own.

TensorFlow ships its own LLVM, and Mesa's OpenGL drivers (napari's canvas under
Xvfb and on most Linux desktops) load the system's; in one process they clash,
and TensorFlow tracing in a thread of napari's process has crashed napari. So
napari's process never imports TensorFlow: the widgets send picklable requests
(a job name and its arguments) to an engine process and receive the core's
typed events back. A crash, an abort or a kill of the engine ends the running
job with :class:`EngineStopped` (a notification in napari); the next job starts
a new engine.

Importing this package is free (no TensorFlow, no Qt).

Examples
--------
>>> from napari_cytounet.engine import get_engine
>>> for event in get_engine().run("load", path="cells.keras"):  # doctest: +SKIP
...     print(event)
"""

from __future__ import annotations

from .client import Engine, get_engine, shutdown_engine
from .events import (
    EngineReady,
    EngineStarting,
    EngineStopped,
    JobCancelled,
    ModelLoaded,
    ModelSaved,
    RemoteError,
)

__all__ = [
    "Engine",
    "EngineReady",
    "EngineStarting",
    "EngineStopped",
    "JobCancelled",
    "ModelLoaded",
    "ModelSaved",
    "RemoteError",
    "get_engine",
    "shutdown_engine",
]
