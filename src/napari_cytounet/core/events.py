"""Typed progress events produced by long operations of the core.

Training and prediction are generators that yield these small dataclasses. The
napari widgets, the CLI progress bars and the tests all read them the same way,
so there is one source of truth for "how far along are we".

Examples
--------
>>> ev = BatchEnd(epoch=1, epochs=10, batch=5, batches=50, loss=0.3, dice=0.8,
...               elapsed=12.0, remaining=100.0)
>>> round(ev.fraction, 3)
0.01
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .bundle import ModelBundle


@dataclass(frozen=True)
class TrainingStarted:
    """Emitted once the data are ready and the model is built, before the first batch."""

    epochs: int | None
    max_time: float | None
    batches: int
    patch_size: int
    batch_size: int
    precision: str
    n_images: int
    n_validation: int
    parameters: int


@dataclass(frozen=True)
class BatchEnd:
    """Emitted after every training batch; ``loss``/``dice`` are running means of the epoch."""

    epoch: int  # 1-based
    epochs: int | None
    batch: int  # 1-based within the epoch
    batches: int
    loss: float
    dice: float
    elapsed: float  # seconds since training started
    remaining: float | None  # estimated seconds left (None when unknown)
    fraction: float = field(default=0.0)

    def __post_init__(self) -> None:
        if self.fraction == 0.0 and self.epochs:
            done = (self.epoch - 1) * self.batches + self.batch
            object.__setattr__(self, "fraction", done / (self.epochs * self.batches))


@dataclass(frozen=True)
class EpochEnd:
    """Emitted after every epoch with training and (when available) validation metrics."""

    epoch: int  # 1-based
    epochs: int | None
    loss: float
    dice: float
    val_loss: float | None
    val_dice: float | None
    elapsed: float
    remaining: float | None
    is_best: bool
    patches: int  # patches trained on so far


@dataclass(frozen=True)
class TrainingCheckpoint:
    """The best weights so far, as a bundle value (only with ``train(..., checkpoints=True)``).

    Yielded right after an :class:`EpochEnd` that is the best so far, so a caller
    that loses the run (the engine process killed) still has the best model.
    """

    epoch: int
    bundle: ModelBundle


@dataclass(frozen=True)
class TrainingFinished:
    """The last event of a training run; carries the trained model bundle.

    ``reason`` is one of ``"epochs"``, ``"time"`` or ``"stopped"``. The bundle
    holds the best weights seen (by validation loss if there was validation data,
    else by training loss).
    """

    bundle: ModelBundle
    reason: str
    epochs_run: int
    patches: int
    patch_size: int
    seconds: float
    best_epoch: int
    summary: str
    history: dict[str, list[float]]

    @property
    def patches_per_second(self) -> float:
        """Training throughput of the run."""
        return self.patches / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class PredictionProgress:
    """Emitted while predicting: ``done`` of ``total`` tiles (over all planes)."""

    done: int
    total: int
    plane: int = 0
    planes: int = 1

    @property
    def fraction(self) -> float:
        """Fraction of the work done, in [0, 1]."""
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class PredictionFinished:
    """The last event of a prediction: probabilities (float32) and, if asked, labels."""

    probabilities: Any
    labels: Any = None
    seconds: float = 0.0


TrainingEvent = TrainingStarted | BatchEnd | EpochEnd | TrainingCheckpoint | TrainingFinished
