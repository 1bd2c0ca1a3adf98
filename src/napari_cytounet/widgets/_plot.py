"""A live plot of the training loss and Dice (training and validation) in the dock.

It is a matplotlib ``FigureCanvasQTAgg`` wrapped as a magicgui widget. It reads
the core's typed events (:class:`~napari_cytounet.core.events.BatchEnd`,
:class:`~napari_cytounet.core.events.EpochEnd`) or a finished model's history,
and redraws at most a few times a second so that the window stays responsive.
"""

from __future__ import annotations

import time
from typing import Any

from magicgui.widgets import EmptyWidget

# colours that read well on napari's dark and light themes
TRAIN_COLOR = "#4fa3ff"
VAL_COLOR = "#ff9f43"
#: Minimum seconds between two redraws while training.
REDRAW_INTERVAL = 0.4


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
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        from qtpy.QtWidgets import QVBoxLayout

        background, foreground = _theme_colors(viewer)
        self.figure = Figure(figsize=(3.6, height / 80), dpi=80, facecolor=background)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(height)
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
        for ax, ylabel, batch, epoch, val in (
            (self.ax_loss, "loss", self.batch_loss, self.loss, self.val_loss),
            (self.ax_dice, "Dice", self.batch_dice, self.dice, self.val_dice),
        ):
            ax.clear()
            self._style(ax, ylabel)
            if batch:
                ax.plot(self.batch_x, batch, color=TRAIN_COLOR, alpha=0.35, lw=1)
            if epoch:
                ax.plot(self.epoch_x, epoch, "o-", color=TRAIN_COLOR, ms=3, lw=1.5,
                        label="training")
            if val:
                ax.plot(self.val_x, val, "s--", color=VAL_COLOR, ms=3, lw=1.5,
                        label="validation")
            if epoch or val:
                legend = ax.legend(fontsize=7, loc="best", frameon=False)
                for text in legend.get_texts():
                    text.set_color(self._fg)
        self.ax_dice.set_xlabel("epoch", color=self._fg, fontsize=9)
        self.ax_dice.set_ylim(-0.02, 1.02)
        self.ax_loss.tick_params(labelbottom=False)
        if not (self.batch_x or self.epoch_x):
            self.ax_loss.text(0.5, 0.5, "loss and Dice appear here while training",
                              transform=self.ax_loss.transAxes, ha="center", va="center",
                              color=self._fg, alpha=0.6, fontsize=8)
        self.canvas.draw_idle()

    @property
    def points(self) -> int:
        """Number of batch and epoch points plotted (for tests)."""
        return len(self.batch_x) + len(self.epoch_x)
