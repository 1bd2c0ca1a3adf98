"""The session's current model, shared by all widgets of one viewer.

A trained model is a value (a :class:`~napari_cytounet.core.bundle.ModelBundle`);
the session only says which one is *current*: the Train widget sets it, the
Predict widget uses it, the Model widget loads and saves it. It also remembers
which layer pairs the current model learned from, so that "Retrain with
corrections" can train on the corrections *plus* the other pairs, and the last
prediction written to each segmentation layer, so that user edits can be told
apart from the model's output and are never lost.

There is one session per viewer; it holds no reference to the viewer or its
layers (only layer names), so closing the viewer frees everything.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

if TYPE_CHECKING:
    from napari_cytounet.core.bundle import ModelBundle


@dataclass
class PredictionRecord:
    """What was last written to an image's segmentation layer, and what the user changed."""

    prediction: np.ndarray  # labels as written by the last prediction
    edits: np.ndarray | None = None  # pixels the user has changed so far (kept in corrections)


@dataclass
class SessionModel:
    """The current model of a viewer and what it was trained on."""

    changed = Signal()

    bundle: ModelBundle | None = None
    source: str = ""  # "trained", "retrained ...", or the file it was loaded from
    training_pairs: list[tuple[str, str]] = field(default_factory=list)  # (image, labels) names
    validation_pair: tuple[str, str] | None = None
    records: dict[str, PredictionRecord] = field(default_factory=dict)  # by image layer name
    busy: str = ""  # what is running on the model ("training"...), "" when idle
    file_key: tuple[str, float] | None = None  # (path, mtime) the current model came from

    def set_model(
        self,
        bundle: ModelBundle | None,
        source: str,
        *,
        training_pairs: list[tuple[str, str]] | None = None,
        validation_pair: tuple[str, str] | None = None,
    ) -> None:
        """Make ``bundle`` the current model and tell the widgets."""
        self.bundle = bundle
        self.source = source
        self.file_key = None
        if training_pairs is not None:
            self.training_pairs = list(training_pairs)
            self.validation_pair = validation_pair
        self.changed.emit()

    def set_busy(self, what: str) -> None:
        """Mark a job on the current model as running (``""`` when it ends)."""
        self.busy = what
        self.changed.emit()

    def refuse_if_busy(self) -> bool:
        """Notify and return True when a job runs on the current model (a new one must wait)."""
        if not self.busy:
            return False
        from napari.utils.notifications import show_error

        show_error(f"The current model is busy ({self.busy}); wait for it to finish or stop it.")
        return True

    def describe(self) -> str:
        """Multi-line text about the current model (or how to get one)."""
        if self.bundle is None:
            return "No model yet: train one with 'Train UNet' or load a .keras file."
        text = self.bundle.describe()
        if self.source:
            text += f"\n  source: {self.source}"
        if self.training_pairs:
            pairs = ", ".join(f"{i} + {lab}" for i, lab in self.training_pairs)
            text += f"\n  learned from layers: {pairs}"
        return text

    def remember_file(self, path: Any) -> None:
        """Note that the current model is the content of ``path`` (just loaded or saved)."""
        self.file_key = _file_key(path)

    def matches_file(self, path: Any) -> bool:
        """Whether the current model is the unchanged content of the file ``path``."""
        return (
            self.bundle is not None
            and self.file_key is not None
            and (self.file_key == _file_key(path))
        )


def _file_key(path: Any) -> tuple[str, float] | None:
    from pathlib import Path

    try:
        resolved = Path(path).expanduser().resolve()
        return str(resolved), resolved.stat().st_mtime
    except OSError:
        return None


_SESSIONS: dict[int, SessionModel] = {}


def session_for(viewer: Any) -> SessionModel:
    """The session of ``viewer`` (created on first use, dropped with the viewer)."""
    real = getattr(viewer, "__wrapped__", viewer)  # napari hands plugins a proxy
    key = id(real)
    session = _SESSIONS.get(key)
    if session is None:
        session = SessionModel()
        _SESSIONS[key] = session
        with contextlib.suppress(TypeError):  # not weak-referenceable: kept for the process
            weakref.finalize(real, _SESSIONS.pop, key, None)
    return session
