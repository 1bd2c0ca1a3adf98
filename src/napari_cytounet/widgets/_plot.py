"""A live plot of the training loss and Dice (training and validation) in the dock.

The figure is drawn by matplotlib's Agg renderer in a background thread (one
shared thread for all plots); the dock only shows the finished picture.
Drawing the figure in the GUI thread took 60-80 ms on an idle machine and
several hundred milliseconds while TensorFlow kept the CPU cores busy, long
enough to freeze the window at every update; now an update costs the GUI
thread about a millisecond. Updates are coalesced: while one picture is
being drawn, newer data wait for it and are drawn next. The plot reads the
core's typed events (:class:`~napari_cytounet.core.events.BatchEnd`,
:class:`~napari_cytounet.core.events.EpochEnd`) or a finished model's history,
and redraws at most a few times a second.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from magicgui.widgets import EmptyWidget
from qtpy.QtCore import QObject, QSize, Qt, Signal
from qtpy.QtGui import QColor, QImage, QPainter, QPixmap
from qtpy.QtWidgets import QSizePolicy, QWidget

# colours that read well on napari's dark and light themes
TRAIN_COLOR = "#4fa3ff"
VAL_COLOR = "#ff9f43"
#: Minimum seconds between two redraws while training.
REDRAW_INTERVAL = 0.4
#: Dots per inch of the figure (at a device pixel ratio of 1).
DPI = 80
#: Width in pixels of a plot that is not on screen yet.
DEFAULT_WIDTH = 288

_log = logging.getLogger(__name__)
_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The one thread that draws every plot (matplotlib figures are drawn one at a time)."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cytounet-plot")
        return _EXECUTOR


class _Bridge(QObject):
    """Carries a finished picture from the drawing thread to the GUI thread (queued signal)."""

    rendered = Signal(object)


def _theme_colors(viewer: Any) -> tuple[str, str]:
    """``(background, foreground)`` of the viewer's theme (dark napari theme by default)."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return theme.background.as_hex(), theme.text.as_hex()
    except Exception:  # pragma: no cover - unknown theme
        return "#262930", "#f0f1f2"


class TrainingPlot:
    """Loss and Dice per epoch, plus the running values of the epoch in progress."""

    def __init__(self, viewer: Any = None, height: int = 260) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from qtpy.QtWidgets import QVBoxLayout

        background, foreground = _theme_colors(viewer)
        self._height = height
        self.figure = Figure(
            figsize=(DEFAULT_WIDTH / DPI, height / DPI), dpi=DPI, facecolor=background
        )
        self._agg = FigureCanvasAgg(self.figure)
        # shows the picture drawn in the background thread
        self.canvas = _PictureWidget(height, background, self._on_resized)
        self.widget = EmptyWidget()
        layout = self.widget.native.layout()
        if layout is None:
            layout = QVBoxLayout()
            self.widget.native.setLayout(layout)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.widget.native.setMinimumHeight(height)
        self._fg = foreground
        self._bg = background
        self.ax_loss = self.figure.add_subplot(2, 1, 1)
        self.ax_dice = self.figure.add_subplot(2, 1, 2, sharex=self.ax_loss)
        self.figure.subplots_adjust(left=0.17, right=0.97, top=0.93, bottom=0.14, hspace=0.12)
        self._last_draw = 0.0
        self._busy = False  # a picture is being drawn
        self._again = False  # newer data arrived meanwhile: draw once more
        self._closed = False
        self._shown_size: tuple[int, int] | None = None
        self.renders = 0  # pictures shown so far (for tests)
        self._bridge = _Bridge()
        self._bridge.rendered.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self.canvas.destroyed.connect(self._on_destroyed)
        self.reset()

    # -- data ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Clear the plot for a new run."""
        self.batch_x: list[float] = []
        self.batch_loss: list[float] = []
        self.batch_dice: list[float] = []
        self.epoch_x: list[float] = []
        self.loss: list[float] = []
        self.dice: list[float] = []
        self.val_x: list[float] = []
        self.val_loss: list[float] = []
        self.val_dice: list[float] = []
        self._redraw(force=True)

    def add_batch(self, event: Any) -> None:
        """Add the running loss/Dice of a :class:`BatchEnd` event."""
        self.batch_x.append(event.epoch - 1 + event.batch / max(event.batches, 1))
        self.batch_loss.append(event.loss)
        self.batch_dice.append(event.dice)
        self._redraw()

    def add_epoch(self, event: Any) -> None:
        """Add the epoch's training (and validation) values of an :class:`EpochEnd` event."""
        self.epoch_x.append(float(event.epoch))
        self.loss.append(event.loss)
        self.dice.append(event.dice)
        if event.val_loss is not None:
            self.val_x.append(float(event.epoch))
            self.val_loss.append(event.val_loss)
            self.val_dice.append(event.val_dice)
        self._redraw(force=True)

    def show_history(self, history: dict[str, list[Any]]) -> None:
        """Show the per-epoch history of a finished model."""
        self.reset()
        loss = history.get("loss", []) or []
        dice = history.get("dice", []) or []
        self.epoch_x = [float(i + 1) for i in range(len(loss))]
        self.loss = list(loss)
        self.dice = list(dice)
        for i, (vl, vd) in enumerate(
            zip(history.get("val_loss", []) or [], history.get("val_dice", []) or [])
        ):
            if vl is not None:
                self.val_x.append(float(i + 1))
                self.val_loss.append(vl)
                self.val_dice.append(vd)
        self._redraw(force=True)

    # -- drawing ------------------------------------------------------------------------------
    def _style(self, ax: Any, ylabel: str) -> None:
        ax.set_facecolor(self._bg)
        ax.tick_params(colors=self._fg, labelsize=8)
        for spine in ax.spines.values():
            spine.set_color(self._fg)
            spine.set_alpha(0.4)
        ax.set_ylabel(ylabel, color=self._fg, fontsize=9)
        ax.grid(True, alpha=0.15, color=self._fg)

    def _redraw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < REDRAW_INTERVAL:
            return
        self._last_draw = now
        self._request()

    def _size(self) -> tuple[int, int, float]:
        """``(width, height, device pixel ratio)`` of the label (a default while hidden)."""
        if self._closed or not self.canvas.isVisible():
            return DEFAULT_WIDTH, self._height, 1.0
        ratio = float(self.canvas.devicePixelRatioF())
        return max(self.canvas.width(), 120), max(self.canvas.height(), 60), ratio

    def _request(self) -> None:
        """Draw the current data in the background thread (or once the running draw is done)."""
        if self._closed:
            return
        if self._busy:
            self._again = True
            return
        data = {
            "batch_x": list(self.batch_x),
            "batch_loss": list(self.batch_loss),
            "batch_dice": list(self.batch_dice),
            "epoch_x": list(self.epoch_x),
            "loss": list(self.loss),
            "dice": list(self.dice),
            "val_x": list(self.val_x),
            "val_loss": list(self.val_loss),
            "val_dice": list(self.val_dice),
        }
        self._busy = True
        self._again = False
        try:
            _executor().submit(self._render, data, *self._size())
        except RuntimeError:  # the interpreter is exiting: the drawing thread is gone
            self._busy = False
            self._closed = True

    def _render(self, data: dict[str, list[float]], width: int, height: int, ratio: float) -> None:
        """Draw the figure into an RGBA buffer (background thread) and hand it to the GUI."""
        picture = None
        try:
            picture = self._draw(data, width, height, ratio)
        except Exception:  # never let a plot problem break training
            _log.exception("napari-cytounet: drawing the training plot failed")
        with contextlib.suppress(RuntimeError):  # RuntimeError: the widget is gone
            self._bridge.rendered.emit(picture)

    def _draw(
        self, d: dict[str, list[float]], width: int, height: int, ratio: float
    ) -> tuple[bytes, int, int, float]:
        self.figure.set_dpi(DPI * ratio)
        self.figure.set_size_inches(width / DPI, height / DPI)
        fg = self._fg
        # fixed legend corners where the curves rarely are (loss falls, Dice rises);
        # matplotlib's "best" searches every point at each draw
        for ax, ylabel, batch, epoch, val, corner in (
            (self.ax_loss, "loss", d["batch_loss"], d["loss"], d["val_loss"], "upper right"),
            (self.ax_dice, "Dice", d["batch_dice"], d["dice"], d["val_dice"], "lower right"),
        ):
            ax.clear()
            self._style(ax, ylabel)
            if batch:
                ax.plot(d["batch_x"], batch, color=TRAIN_COLOR, alpha=0.35, lw=1)
            if epoch:
                ax.plot(
                    d["epoch_x"], epoch, "o-", color=TRAIN_COLOR, ms=3, lw=1.5, label="training"
                )
            if val:
                ax.plot(d["val_x"], val, "s--", color=VAL_COLOR, ms=3, lw=1.5, label="validation")
            if epoch or val:
                legend = ax.legend(fontsize=7, loc=corner, frameon=False)
                for text in legend.get_texts():
                    text.set_color(fg)
        self.ax_dice.set_xlabel("epoch", color=fg, fontsize=9)
        self.ax_dice.set_ylim(-0.02, 1.02)
        self.ax_loss.tick_params(labelbottom=False)
        if not (d["batch_x"] or d["epoch_x"]):
            self.ax_loss.text(
                0.5,
                0.5,
                "loss and Dice appear here while training",
                transform=self.ax_loss.transAxes,
                ha="center",
                va="center",
                color=fg,
                alpha=0.6,
                fontsize=8,
            )
        self._agg.draw()
        buffer = self._agg.buffer_rgba()
        h, w = buffer.shape[:2]
        return bytes(buffer), w, h, ratio

    def _show(self, picture: Any) -> None:
        """Show a finished picture (GUI thread); draw again if newer data are waiting."""
        self._busy = False
        if self._closed:
            return
        if picture is not None:
            data, w, h, ratio = picture
            image = QImage(data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(ratio)
            try:
                self.canvas.set_pixmap(pixmap)
            except RuntimeError:  # the label was deleted
                self._closed = True
                return
            self._shown_size = (round(w / ratio), round(h / ratio))
            self.renders += 1
        if self._again:
            self._request()

    def _on_resized(self) -> None:
        if self._closed or not self.canvas.isVisible():
            return
        width, height, _ = self._size()
        if (
            self._shown_size is None
            or abs(self._shown_size[0] - width) > 2
            or (abs(self._shown_size[1] - height) > 2)
        ):
            self._request()

    def _on_destroyed(self, *_: Any) -> None:
        self._closed = True

    @property
    def rendering(self) -> bool:
        """Whether a picture is being drawn (or waits to be)."""
        return self._busy or self._again

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait (processing Qt events) until the latest data are on screen; ``True`` if they are."""
        from qtpy.QtWidgets import QApplication

        end = time.monotonic() + timeout
        while self.rendering and not self._closed and time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.005)
        return not self.rendering

    @property
    def points(self) -> int:
        """Number of batch and epoch points plotted (for tests)."""
        return len(self.batch_x) + len(self.epoch_x)


class _PictureWidget(QWidget):
    """Paints a pixmap at its top left; its size never depends on the picture (no resize loops)."""

    def __init__(self, height: int, background: str, resized: Any) -> None:
        super().__init__()
        self._pixmap = QPixmap()
        self._background = QColor(background)
        self._resized = resized
        self._hint = QSize(DEFAULT_WIDTH, height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(height)
        self.setMinimumWidth(120)

    def sizeHint(self) -> Any:
        return self._hint

    def minimumSizeHint(self) -> Any:
        return QSize(120, self._hint.height())

    def pixmap(self) -> Any:
        """The picture shown."""
        return self._pixmap

    def set_pixmap(self, pixmap: Any) -> None:
        """Show ``pixmap``."""
        self._pixmap = pixmap
        self.update()

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self._background)
        if not self._pixmap.isNull():
            painter.drawPixmap(0, 0, self._pixmap)
        painter.end()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._resized()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._resized()
