"""The Model widget's "Export for bioimage.io" section and its background job.

:func:`add_export_section` appends the section to a widget's container: the
package file, the name, authors, licence and an optional citation, a sample
image layer for the test data and cover (default: the BBBC030 sample shipped
with the plugin), and the Export button. The export itself is
:func:`napari_cytounet.core.export.export_bioimageio`, run by :func:`export_job`
in the background. Without the optional libraries the section says how to
install them, and so does the button. Importing this module is free (no
TensorFlow, no bioimageio).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from magicgui.widgets import (
    CheckBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    PushButton,
    create_widget,
)

from napari_cytounet.engine import get_engine
from napari_cytounet.engine.events import Exported

from ._common import JobRunner, header, notify_exception, show_error, show_info, wrap_text
from ._jobs import start_job
from ._settings import bind

SECTION = "export"
INSTALL_HINT = "pip install 'napari-cytounet[bioimageio]'"


def bioimageio_available() -> bool:
    """Whether the optional bioimage.io libraries are installed (checked without importing)."""
    try:
        return all(importlib.util.find_spec(m) for m in ("bioimageio.spec", "bioimageio.core"))
    except (ImportError, ValueError, AttributeError):  # a module set to None counts as absent
        return False


def export_job(bundle: Any, path: Path, options: Any, sample: Any = None, overwrite: bool = False):
    """Export ``bundle`` to ``path`` in the engine process; yields its events, ending with
    :class:`~napari_cytounet.engine.events.Exported`.

    Examples
    --------
    >>> events = list(export_job(bundle, Path("cells.zip"), ExportOptions()))  # doctest: +SKIP
    """
    yield from get_engine().run(
        "export",
        bundle=bundle,
        path=Path(path),
        options=options,
        sample=sample,
        overwrite=overwrite,
    )


class ExportSection:
    """The export fields and button, bound to a session (see :func:`add_export_section`)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.runner = JobRunner("bioimage.io export")
        self.path = FileEdit(mode="w", filter="*.zip", label="Package")
        self.name = LineEdit(label="Name", tooltip="5-128 letters, digits, spaces, _ - + ( )")
        self.authors = LineEdit(label="Authors", tooltip="comma-separated names")
        self.license = LineEdit(value="CC-BY-4.0", label="Licence", tooltip="SPDX identifier")
        self.cite_text = LineEdit(label="Cite (text)", tooltip="your paper, optional")
        self.cite_doi = LineEdit(label="Cite (DOI)", tooltip="e.g. 10.1234/abcd")
        self.sample = create_widget(
            annotation="napari.layers.Image",
            label="Sample image",
            options={"nullable": True, "tooltip": "empty: the BBBC030 sample shipped with it"},
        )
        self.saved_model = CheckBox(value=True, text="Add TensorFlow SavedModel weights")
        self.overwrite = CheckBox(value=False, text="Replace an existing file")
        self.button = PushButton(text="Export for bioimage.io")
        self.status = Label(value="")
        wrap_text(self.status)
        for key, field in (("path", self.path), ("authors", self.authors)):
            bind(SECTION, key, field, convert=Path if key == "path" else None)
        bind(SECTION, "license", self.license)
        self.header = header("Export for bioimage.io")
        fields = [self.path, self.name, self.authors, self.license, self.cite_text]
        fields += [self.cite_doi, self.sample]
        self._widgets = [
            self.header,
            Container(widgets=fields, labels=True),
            self.saved_model,
            self.overwrite,
            self.button,
            self.status,
        ]
        self.button.changed.connect(lambda *_: self.export())
        session.changed.connect(self.refresh)
        self.refresh()

    def widgets(self) -> list[Any]:
        """The section's widgets, in order (its header first)."""
        return list(self._widgets)

    def refresh(self) -> None:
        """Enable the button only when there is a model and nothing is running."""
        if not bioimageio_available():
            self.status.value = f"Needs the optional bioimage.io libraries: {INSTALL_HINT}"
        bundle = self._session.bundle
        self.button.enabled = bundle is not None and not self.runner.running

    def options(self) -> Any:
        """The :class:`~napari_cytounet.core.export.ExportOptions` from the fields."""
        from napari_cytounet.core.export import ExportOptions

        authors = [a.strip() for a in self.authors.value.split(",") if a.strip()]
        return ExportOptions(
            name=self.name.value.strip() or None,
            authors=authors or ExportOptions().authors,
            license=self.license.value.strip() or ExportOptions().license,
            cite_text=self.cite_text.value.strip() or None,
            cite_doi=self.cite_doi.value.strip() or None,
            saved_model=bool(self.saved_model.value),
        )

    def export(self, path: str | Path | None = None) -> bool:
        """Export the session's current model to ``path`` (default: the Package field)."""
        if not bioimageio_available():
            show_error(f"Exporting to bioimage.io needs the optional libraries: {INSTALL_HINT}")
            return False
        bundle = self._session.bundle
        if bundle is None:
            show_error("There is no current model to export: train or load one first.")
            return False
        if self.runner.running:
            return False
        target = Path(path) if path is not None else self.path.value
        if not target or str(target) in ("", ".") or Path(target).is_dir():
            show_error("Choose a file name for the package (e.g. cells.bioimageio.zip).")
            return False
        self.path.value = Path(target)
        sample = self._sample_plane()
        try:
            options = self.options()
        except Exception as exc:  # a nonsense field value: say which
            notify_exception(exc, "Exporting")
            return False
        self.status.value = f"Exporting {Path(target).name}…"
        start_job(
            self.runner,
            export_job,
            bundle,
            Path(target),
            options,
            sample,
            bool(self.overwrite.value),
            what="Exporting to bioimage.io",
            status=self.status,
            failed="Export failed; nothing was written.",
            on_event=self._on_event,
            on_done=self.refresh,
        )
        self.refresh()  # the button is disabled while the export runs
        return True

    def _sample_plane(self) -> Any:
        """The first 2D plane (with colour channels, if RGB) of the chosen sample layer."""
        import numpy as np

        layer = self.sample.value
        if layer is None:
            return None
        data = layer.data[0] if layer.multiscale else layer.data
        lead = data.ndim - (3 if layer.rgb else 2)
        return np.asarray(data[(0,) * lead]) if lead > 0 else np.asarray(data)

    def _on_event(self, event: Any) -> None:
        if not isinstance(event, Exported):
            return
        result = event.result
        self.status.value = (
            f"Wrote {result.path.name} ({', '.join(result.weight_formats)}) "
            f"in {result.seconds:.1f} s."
        )
        show_info(f"Exported the model to {result.path}")


def add_export_section(container: Container, session: Any, after: Any = None) -> ExportSection:
    """Add the "Export for bioimage.io" section to ``container`` (after ``after``, or at the end).

    Examples
    --------
    >>> section = add_export_section(widget.body, session_for(viewer))  # doctest: +SKIP
    """
    section = ExportSection(session)
    index = len(container) if after is None else list(container).index(after) + 1
    for offset, widget in enumerate(section.widgets()):
        container.insert(index + offset, widget)
    return section
