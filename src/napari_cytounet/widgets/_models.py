"""The "Model" widget: the session's current model — see it, load it, save it.

Train and Predict share one current model per viewer (see :mod:`._session`).
This widget shows what it is and how it was trained (its record and a plot of
its history), loads a ``.keras`` bundle (or a legacy ``.h5`` UNet) to make it
current, and saves the current model atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container, FileEdit, Label, PushButton, TextEdit

from napari_cytounet.core.errors import ModelError
from napari_cytounet.core.records import format_record

from ._common import (
    JobRunner,
    connect_shutdown,
    header,
    notify_exception,
    show_error,
    show_info,
    wrap_text,
)
from ._export import add_export_section
from ._jobs import ModelLoaded, load_job, start_job, start_save
from ._plot import TrainingPlot
from ._scroll import ScrollingDock
from ._session import session_for
from ._settings import bind, get_settings

if TYPE_CHECKING:
    import napari

SECTION = "model"


class ModelWidget(ScrollingDock):
    """Show, load and save the session's current model."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._session = session_for(viewer)
        self._runner = JobRunner("model file")

        self._summary = Label(value="")
        wrap_text(self._summary)
        self._load_path = FileEdit(
            mode="r", filter="*.keras *.h5 *.hdf5 *.zip *.yaml", label="Model file"
        )
        self._load_btn = PushButton(text="Load as current model")
        self._save_path = FileEdit(mode="w", filter="*.keras", label="Save as")
        self._save_btn = PushButton(text="Save current model")
        self._plot = TrainingPlot(viewer, height=220)
        self._record = TextEdit(value="")
        self._record.native.setReadOnly(True)
        self._record.native.setStyleSheet("font-family: monospace;")  # aligned history table
        self._record.native.setMinimumHeight(220)
        self.body.extend(
            [
                header("Current model"),
                self._summary,
                Container(widgets=[self._load_path], labels=True),
                self._load_btn,
                Container(widgets=[self._save_path], labels=True),
                self._save_btn,
                header("Training history"),
                self._plot.widget,
                header("Training record"),
                self._record,
            ]
        )
        bind(SECTION, "load_path", self._load_path, convert=Path)
        bind(SECTION, "save_path", self._save_path, convert=Path)
        self._load_btn.changed.connect(self._on_load_clicked)
        self._save_btn.changed.connect(self._on_save_clicked)
        self._session.changed.connect(self._on_session_changed)
        self._export = add_export_section(self.body, self._session, after=self._save_btn)
        connect_shutdown(self, self._runner, self._export.runner)
        self._on_session_changed()

    @property
    def running(self) -> bool:
        """Whether a load or save is running."""
        return self._runner.running

    def _on_session_changed(self) -> None:
        bundle = self._session.bundle
        self._summary.value = (
            self._session.describe().splitlines()[0] if bundle else (self._session.describe())
        )
        if bundle is not None and self._session.source:
            self._summary.value += f" — {self._session.source}"
        if self._session.busy:
            self._summary.value += f" (busy: {self._session.busy})"
        self._save_btn.enabled = bundle is not None and not self._runner.running
        self._record.value = format_record(bundle) if bundle is not None else ""
        if bundle is not None:
            self._plot.show_history(bundle.history or {})
        else:
            self._plot.reset()

    def _on_load_clicked(self, *_: Any) -> None:
        self.load()

    def load(self, path: str | Path | None = None) -> bool:
        """Load ``path`` (default: the 'Model file' field) as the current model, in a worker."""
        if self._runner.running:
            return False
        if self._session.busy:
            show_error(f"The current model is busy ({self._session.busy}); wait for it to finish.")
            return False
        path = Path(path) if path is not None else self._load_path.value
        if not path or not Path(path).is_file():
            notify_exception(ModelError(f"No model file at {path!s}; choose a .keras model file."))
            return False
        self._load_path.value = Path(path)
        self._summary.value = f"Loading {Path(path).name}…"
        return start_job(
            self._runner,
            load_job,
            Path(path),
            what="Loading the model",
            button=self._load_btn,
            status=self._summary,
            on_event=self._on_loaded,
            on_done=self._on_session_changed,
            stoppable=True,
        )

    def _on_loaded(self, event: Any) -> None:
        if not isinstance(event, ModelLoaded):
            return
        self._session.set_model(
            event.bundle, f"loaded from {event.path.resolve()}", training_pairs=[]
        )
        self._session.remember_file(event.path)
        get_settings().set("model", "folder", str(event.path.parent))
        show_info(f"Loaded {event.path.name}; it is now the current model.")

    def _on_save_clicked(self, *_: Any) -> None:
        self.save()

    def save(self, path: str | Path | None = None) -> bool:
        """Save the current model to ``path`` (default: the 'Save as' field), atomically."""
        target = start_save(
            self._session,
            self._runner,
            path if path is not None else self._save_path.value,
            on_saved=lambda _: None,
            on_done=self._on_session_changed,
        )
        if target is None:
            return False
        self._save_path.value = target
        self._save_btn.enabled = False
        return True
