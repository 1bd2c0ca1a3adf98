"""Typed progress events produced by long operations of the core.

Training and prediction are generators that yield these small dataclasses. The
napari widgets, the CLI progress bars and the tests all read them the same way,
so there is one source of truth for "how far along are we".

Examples
--------
>>> ev = BatchEnd(epoch=1, epochs=10, batch=5, batches=50, loss=0.3, dice=0.8,
...               elapsed=12.0, remaining=100.0, fraction=0.01)
>>> ev.fraction
0.01
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .bundle import ModelBundle
    from .quality import Issue, QualityReport

#: Issue codes of files left without a partner (their pair cannot be trained on).
UNPAIRED_CODES = ("unpaired_image", "unpaired_mask")


@dataclass(frozen=True)
class QualityChecked:
    """The quality check of a training run's data, before any training.

    The first event of :func:`~napari_cytounet.core.checked_training.iter_checked_training`:
    one :class:`~.quality.QualityReport` per checked set (``sets`` names them,
    ``"training"`` then ``"validation"``), ``sources`` says where each came from.
    ``blocking`` tells whether the run stops here unless forced.

    Examples
    --------
    >>> from napari_cytounet.core.quality import QualityReport
    >>> ev = QualityChecked((QualityReport([], 2),), ("training",), ("imgs + masks",))
    >>> ev.errors, ev.unpaired, ev.blocking
    (0, 0, False)
    """

    reports: tuple[QualityReport, ...]
    sets: tuple[str, ...]
    sources: tuple[str, ...]
    force: bool = False

    @property
    def issues(self) -> list[Issue]:
        """Every issue of every set, in order."""
        return [issue for report in self.reports for issue in report.issues]

    @property
    def errors(self) -> int:
        """Number of error-severity issues (they would waste a training run)."""
        return sum(len(report.errors) for report in self.reports)

    @property
    def error_codes(self) -> list[str]:
        """The distinct codes of the errors, sorted."""
        return sorted({issue.code for report in self.reports for issue in report.errors})

    @property
    def unpaired(self) -> int:
        """Number of files without a partner (left out of training)."""
        return sum(1 for issue in self.issues if issue.code in UNPAIRED_CODES)

    @property
    def blocking(self) -> bool:
        """True when errors or unpaired files stop the run (unless ``force``)."""
        return bool(self.errors or self.unpaired)


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
    fraction: float = 0.0  # progress of the run in [0, 1], computed by the core


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
    fraction: float = 0.0  # progress of the run in [0, 1], computed by the core


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
CheckedTrainingEvent = QualityChecked | TrainingEvent


@dataclass(frozen=True)
class PreviewReady:
    """A fast answer of an interactive round, before (or while) the UNet trains.

    ``source`` is ``"forest"`` (the pixel classifier fitted on the strokes) or
    ``"unet"`` (the current model, before this round's training).
    """

    mask: Any  # bool (H, W)
    probabilities: Any  # float32 (H, W) foreground probability
    source: str
    seconds: float  # since the call started


@dataclass(frozen=True)
class RoundProgress:
    """Training progress of an interactive round (emitted every few batches)."""

    steps: int
    loss: float
    elapsed: float  # seconds since the call started
    budget: float  # the call's time budget in seconds
    fraction: float  # elapsed / budget, in [0, 1]


@dataclass(frozen=True)
class RoundFinished:
    """The last event of an interactive round: the segmentation and whether training was kept.

    ``adopted`` is False when the weights trained in this round scored worse on
    the annotated pixels than the previous ones (``score`` vs ``previous_score``,
    balanced accuracy): the previous weights are kept and ``mask`` is theirs.
    """

    mask: Any  # bool (H, W)
    probabilities: Any  # float32 (H, W)
    adopted: bool
    score: float | None
    previous_score: float | None
    steps: int
    seconds: float
    round: int
    message: str


InteractiveEvent = PreviewReady | RoundProgress | RoundFinished
