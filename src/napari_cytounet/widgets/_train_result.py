"""The Train UNet widget's "Result" section: save the current model, show its record.

:class:`TrainingResult` holds the "Save as" field, the Save button (saving runs in the engine
through :func:`~._jobs.start_save`, atomically) and the training record of the session's
current model, shown on demand. Part of the Train widget (:mod:`._train`); no other widget
imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.widgets import Container, FileEdit, Label, PushButton, TextEdit

from napari_cytounet.core.records import format_record

from ._common import JobRunner, show_error
from ._jobs import start_save


class TrainingResult:
    """Save the session's current model and show its training record.

    Parameters
    ----------
    session
        The viewer's :class:`~._session.SessionModel` (its current model is saved and shown).
    status
        The widget's status line, which says what saving does.
    on_done
        Called when a save has ended (the widget updates its buttons).

    Examples
    --------
    >>> result = TrainingResult(session_for(viewer), status, on_done=refresh)  # doctest: +SKIP
    >>> result.save("cells.keras")  # doctest: +SKIP
    True
    """

    def __init__(self, session: Any, status: Label, *, on_done: Callable[[], None]) -> None:
        self._session = session
        self._status = status
        self._on_done = on_done
        self.saver = JobRunner("saving")
        self.save_path = FileEdit(mode="w", filter="*.keras", label="Save as")
        self.save_btn = PushButton(text="Save model")
        self.record_btn = PushButton(text="Show training record")
        self.record = TextEdit(value="")
        self.record.native.setReadOnly(True)
        self.record.native.setStyleSheet("font-family: monospace;")  # aligned history table
        self.record.native.setMinimumHeight(180)
        self.record_shown = False
        self.save_btn.changed.connect(lambda *_: self.save())
        self.record_btn.changed.connect(self._on_record_clicked)

    def widgets(self) -> list[Any]:
        """The section's rows, in order (without its header)."""
        return [
            Container(widgets=[self.save_path], labels=True),
            Container(widgets=[self.save_btn, self.record_btn], layout="horizontal", labels=False),
            self.record,
        ]

    def refresh(self, *, training: bool) -> None:
        """Enable the buttons for the session's current model; refresh a shown record."""
        has_model = self._session.bundle is not None
        self.save_btn.enabled = has_model and not training
        self.record_btn.enabled = has_model
        if self.record_shown and has_model:
            self.record.value = format_record(self._session.bundle)

    def save(self, path: str | Path | None = None) -> bool:
        """Save the current model to ``path`` (default: the 'Save as' field) in a worker."""
        target = start_save(
            self._session,
            self.saver,
            path if path is not None else self.save_path.value,
            on_saved=self._on_saved,
            on_done=self._on_done,
        )
        if target is None:
            return False
        self.save_path.value = target
        self.save_btn.enabled = False
        self._status.value = f"Saving {target.name}…"
        return True

    def _on_saved(self, path: Path | None) -> None:
        if path is None:
            self._status.value = "Saving failed: see the notification."
        else:
            self._status.value = f"Saved the model to {path}."

    def show_record(self, show: bool = True) -> None:
        """Show (or hide) the training record of the current model."""
        self.record_shown = bool(show) and self._session.bundle is not None
        self.record.visible = self.record_shown
        self.record_btn.text = (
            "Hide training record" if self.record_shown else "Show training record"
        )
        if self.record_shown:
            self.record.value = format_record(self._session.bundle)

    def _on_record_clicked(self, *_: Any) -> None:
        if self._session.bundle is None:
            show_error("There is no model yet: train or load one first.")
            return
        self.show_record(not self.record_shown)
