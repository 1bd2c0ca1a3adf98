"""Progress bars and Ctrl-C handling of ``cytounet train`` and ``cytounet demo``.

Examples
--------
>>> progress = TrainingProgress(quiet=True)
>>> progress.finished is None
True
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ._common import PROG, fmt_seconds, say


class TrainingProgress:
    """Callable that turns training events into a tqdm bar and a few printed lines.

    Used by ``cytounet train`` and ``cytounet demo``; pass it as the callback of
    :func:`~napari_cytounet.core.training.train_model` or call it on each event.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.max_time: float | None = None
        self.val_dice: float | None = None
        self.finished: Any = None

    def __call__(self, event: Any) -> None:
        from ..core.events import BatchEnd, EpochEnd, TrainingFinished, TrainingStarted

        if isinstance(event, TrainingStarted):
            self._started(event)
        elif isinstance(event, BatchEnd):
            self._batch(event)
        elif isinstance(event, EpochEnd):
            if event.val_dice is not None:
                self.val_dice = event.val_dice
        elif isinstance(event, TrainingFinished):
            self.finished = event
            self.close()

    def _started(self, event: Any) -> None:
        self.max_time = event.max_time
        plan = []
        if event.epochs is not None:
            plan.append(f"{event.epochs} epoch(s) of {event.batches} batches")
        if event.max_time is not None:
            plan.append(f"{event.max_time:g} s")
        val = f", validating on {event.n_validation}" if event.n_validation else ""
        say(
            f"Training on {event.n_images} image(s){val}: {event.parameters:,} parameters, "
            f"patches {event.patch_size}x{event.patch_size}, batch {event.batch_size}, "
            f"{event.precision}; stops after {' or '.join(plan)}."
        )
        if not self.quiet:
            from tqdm import tqdm

            tty = getattr(sys.stderr, "isatty", lambda: False)()
            self.bar = tqdm(
                total=1000,
                file=sys.stderr,
                leave=True,
                dynamic_ncols=True,
                mininterval=0.5 if tty else 10.0,
                bar_format="{percentage:3.0f}%|{bar:20}| {desc}",
            )

    def _batch(self, event: Any) -> None:
        if self.bar is None:
            return
        fraction = event.fraction
        if self.max_time:
            fraction = max(fraction, event.elapsed / self.max_time)
        val = f"{self.val_dice:.3f}" if self.val_dice is not None else "-"
        epochs = event.epochs if event.epochs is not None else "?"
        self.bar.set_description_str(
            f"epoch {event.epoch}/{epochs} loss {event.loss:.4f} dice {event.dice:.3f} "
            f"val dice {val} | {fmt_seconds(event.elapsed)} elapsed, "
            f"{fmt_seconds(event.remaining)} left",
            refresh=False,
        )
        self.bar.update(max(0, min(1000, int(1000 * fraction)) - self.bar.n))

    def close(self) -> None:
        """Close the bar (idempotent)."""
        if self.bar is not None:
            if self.finished is not None:
                self.bar.update(1000 - self.bar.n)
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """Within the block, the first Ctrl-C sets the yielded event; the second raises.

    Only installs a handler in the main thread (elsewhere the event simply never
    fires); the previous handler is restored on exit.
    """
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            f"\n{PROG}: stopping after this batch; the best model so far will be saved "
            "(press Ctrl-C again to abort without saving).",
            file=sys.stderr,
            flush=True,
        )

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
