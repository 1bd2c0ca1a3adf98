"""The "Quality check" widget: find problems in training labels before training.

It runs :func:`napari_cytounet.core.quality.check_dataset` on an Image + Labels
pair (every annotated plane of a stack) and lists what it finds: labels that
only draw outlines, empty or all-foreground masks, shapes that do not match,
constant images, scribbles of one class only... The Train widget runs the same
check before every training run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label, PushButton, TextEdit, create_widget

from napari_cytounet.core.errors import CytoUNetError

from . import _layers
from ._common import (
    LABEL_MODES,
    JobRunner,
    connect_shutdown,
    header,
    notify_exception,
    show_error,
    show_info,
    show_warning,
    wrap_text,
)
from ._jobs import start_job
from ._scroll import ScrollingDock
from ._settings import bind

if TYPE_CHECKING:
    import napari

SECTION = "check"


def check_job(images: list[Any], labels: list[Any], names: list[str], mode: str):
    """Run the quality check in a worker thread; yields the report."""
    from napari_cytounet.core.quality import check_dataset

    yield check_dataset(images, labels, names=names, label_mode=mode)


class QualityCheckWidget(ScrollingDock):
    """Check an Image + Labels pair for outline-only, empty or mismatched labels."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._runner = JobRunner("quality check")
        self.report: Any = None  # the last QualityReport

        self._image = create_widget(annotation="napari.layers.Image", label="Image")
        self._labels_layer = create_widget(annotation="napari.layers.Labels", label="Labels")
        self._mode = ComboBox(label="Labels are", choices=LABEL_MODES, value="dense")
        self._check_btn = PushButton(text="Check")
        self._verdict = Label(value="Choose an image and its labels, then Check.")
        wrap_text(self._verdict)
        self._details = TextEdit(value="")
        self._details.native.setReadOnly(True)
        self._details.native.setMinimumHeight(120)
        self.body.extend(
            [
                header("Training pair"),
                Container(widgets=[self._image, self._labels_layer, self._mode], labels=True),
                self._check_btn,
                header("Findings"),
                self._verdict,
                self._details,
            ]
        )
        bind(SECTION, "mode", self._mode)
        self._check_btn.changed.connect(self._on_check_clicked)
        connect_shutdown(self, self._runner)

    @property
    def running(self) -> bool:
        """Whether the check is running."""
        return self._runner.running

    def _on_check_clicked(self, *_: Any) -> None:
        self.check()

    def check(self) -> bool:
        """Run the check in a worker; returns False (and notifies) for an invalid choice."""
        if self._runner.running:
            return False
        try:
            images, labels, names = _layers.training_pairs(
                self._image.value, self._labels_layer.value
            )
        except CytoUNetError as exc:
            notify_exception(exc)
            self._verdict.value = str(exc)
            return False
        self._verdict.value = f"Checking {len(images)} image(s)…"
        return start_job(
            self._runner,
            check_job,
            images,
            labels,
            names,
            self._mode.value,
            what="The quality check",
            button=self._check_btn,
            status=self._verdict,
            failed="The check failed: see the notification.",
            on_event=self._on_event,
        )

    def _on_event(self, event: Any) -> None:
        self.report = event
        self._details.value = event.format()
        if event.errors:
            self._verdict.value = f"✗ {event.summary()}: fix the errors before training."
            show_error(f"Quality check: {event.summary()}. {event.errors[0].message}")
        elif event.warnings:
            self._verdict.value = f"⚠ {event.summary()}: worth a look."
            show_warning(f"Quality check: {event.summary()}. {event.warnings[0].message}")
        else:
            self._verdict.value = f"✓ {event.summary()}: ready to train."
            show_info(f"Quality check: {event.summary()}.")


__all__ = ["QualityCheckWidget", "show_error"]
