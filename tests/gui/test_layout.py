"""Layout of the docked widgets: they scroll inside their docks and wrap their text."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import WIDGETS, dock

pytestmark = pytest.mark.gui


def test_tall_widgets_scroll_instead_of_growing_the_window(viewer, qtbot):
    """napari docks ``.native``; the contents must scroll inside it at any window height."""
    from qtpy.QtWidgets import QApplication, QScrollArea

    viewer.add_image(np.zeros((32, 32)), name="img")
    viewer.add_labels(np.zeros((32, 32), np.uint8), name="img mask")
    window = viewer.window._qt_window
    viewer.window.resize(1200, 700)
    widgets = [dock(viewer, name) for name in WIDGETS]
    for _ in range(10):
        QApplication.processEvents()
    viewer.window.resize(1200, 700)
    QApplication.processEvents()
    assert window.height() <= 720, "a docked widget forced the window taller than asked"
    for widget in widgets:
        assert isinstance(widget.scroll_area, QScrollArea)
        assert widget.scroll_area.widget() is widget.body.native
        # magicgui's own flag that says whether rows get a label column stays untouched
        assert widget._labels is False
    train = widgets[0]
    assert train.body.native.minimumSizeHint().height() > train.scroll_area.viewport().height()
    assert train.scroll_area.verticalScrollBar().maximum() > 0  # it really scrolls


def test_status_text_wraps_over_the_full_width(viewer):
    from qtpy.QtWidgets import QApplication

    widget = dock(viewer, "Quality check")
    viewer.window.resize(1400, 900)
    for _ in range(10):
        QApplication.processEvents()
    label = widget._verdict.native
    assert label.wordWrap()
    assert label.width() >= 0.8 * label.parentWidget().width()
