"""A dock widget whose contents scroll.

napari docks a magicgui widget's ``.native``; for ``Container(scrollable=True)``
that is the inner widget, not magicgui's ``QScrollArea``
(``root_native_widget``), so a tall widget does not scroll: it stretches the
whole napari window beyond the screen (napari/napari#4749, pyapp-kit/magicgui#431).
:class:`ScrollingDock` puts its own scroll area *inside* ``.native``: napari
docks the outer widget, and the contents (:attr:`ScrollingDock.body`) scroll
within the dock at any window height.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Container
from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QFrame, QScrollArea


class _FitWidth(QObject):
    """Keeps the scroll area as wide as its contents need whenever their layout changes."""

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self._scroll = scroll

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            bar = self._scroll.verticalScrollBar().sizeHint().width()
            self._scroll.setMinimumWidth(obj.minimumSizeHint().width() + bar + 2)
        return False


class ScrollingDock(Container):
    """A Container for napari's dock whose :attr:`body` scrolls vertically.

    Subclasses add their widgets to ``self.body`` (a plain ``Container``);
    :meth:`reset_choices` reaches them, so layer choices stay up to date.
    """

    def __init__(self, **body_kwargs: Any) -> None:
        super().__init__(labels=False, scrollable=False)
        self.margins = (0, 0, 0, 0)
        body_kwargs.setdefault("labels", False)
        self.body = Container(**body_kwargs)
        # keep the rows packed at the top when the dock is taller than they need (widgets
        # are inserted before this stretch: magicgui inserts at the index of its own list)
        self.body.native.layout().addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.body.native)
        self.native.layout().addWidget(scroll)
        self._fit_width = _FitWidth(scroll)  # as wide as the contents need, any height
        self.body.native.installEventFilter(self._fit_width)
        self.scroll_area = scroll

    def reset_choices(self, *args: Any) -> None:
        """Refresh the choices of every widget in the body (napari calls it when layers change)."""
        super().reset_choices(*args)
        self.body.reset_choices(*args)
