"""Errors that napari-cytounet shows to users.

Every error raised where input enters the core is a :class:`CytoUNetError` (or a
subclass) whose message says what was wrong *and* what to do about it. Each face
shows it its own way: the CLI prints it on one line and exits non-zero, the
widgets show a napari notification.
"""

from __future__ import annotations


class CytoUNetError(Exception):
    """A problem with the user's input, data or model, with a message that says how to fix it."""


class DataError(CytoUNetError):
    """Images or labels that cannot be used (missing, unpaired, corrupt, wrong shape...)."""


class ModelError(CytoUNetError):
    """A model file that cannot be loaded or does not fit the data."""


class ConfigError(CytoUNetError, ValueError):
    """A setting with a nonsense value (negative epochs, depth 9, ...)."""
