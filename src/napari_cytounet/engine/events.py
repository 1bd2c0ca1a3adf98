"""Typed events and errors of the engine that are not the core's own.

Importing this module is free (no TensorFlow, no Qt): napari's process unpickles
these when the engine sends them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_cytounet.core.errors import CytoUNetError


@dataclass(frozen=True)
class EngineStarting:
    """The engine process is starting (TensorFlow imports in it: a few seconds)."""


@dataclass(frozen=True)
class EngineReady:
    """The engine process is up; ``seconds`` it took to start (TensorFlow import included)."""

    seconds: float
    pid: int


@dataclass(frozen=True)
class JobCancelled:
    """The last event of a job stopped before it finished (nothing was produced)."""


@dataclass(frozen=True)
class ModelLoaded:
    """A job loaded a model file."""

    bundle: Any
    path: Path


@dataclass(frozen=True)
class ModelSaved:
    """A job saved a model; ``created`` and ``versions`` are what the file records."""

    path: Path
    created: str
    versions: dict[str, str]


@dataclass(frozen=True)
class LiveModel:
    """The model a live session has learned so far (``rounds`` rounds)."""

    bundle: Any
    rounds: int


@dataclass(frozen=True)
class Exported:
    """A job exported a model: an :class:`~napari_cytounet.core.export.ExportResult`."""

    result: Any


class EngineStopped(CytoUNetError):
    """The engine process ended while a job was running (crash, abort, kill).

    Examples
    --------
    >>> str(EngineStopped.from_returncode(-9)).split(";")[0]
    'The engine stopped (killed by signal SIGKILL)'
    """

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.returncode))

    @classmethod
    def from_returncode(cls, returncode: int | None) -> EngineStopped:
        """The error for an engine that ended with ``returncode`` (``None``: still unknown)."""
        return cls(
            f"The engine stopped ({describe_exit(returncode)}); your layers are safe. "
            "The next job starts a new engine.",
            returncode,
        )


class RemoteError(Exception):
    """An unexpected error in the engine whose own type cannot travel to napari's process.

    ``kind`` is the original type's name (e.g. a TensorFlow error).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, str(self).split(": ", 1)[-1]))


def describe_exit(returncode: int | None) -> str:
    """``-9`` -> ``"killed by signal SIGKILL"``; ``1`` -> ``"exit code 1"``.

    Examples
    --------
    >>> describe_exit(1)
    'exit code 1'
    """
    if returncode is None:
        return "its connection closed"
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"killed by signal {name}"
    return f"exit code {returncode}"
