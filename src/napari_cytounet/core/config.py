"""Plain settings for the model, the normalisation and training (no TensorFlow).

These dataclasses are what the CLI, the widgets and the model bundle exchange.
Each validates itself and serialises to and from JSON-ready dicts, so a saved
model records exactly how it was built and trained.

Examples
--------
>>> cfg = UNetConfig(depth=3, base_filters=8)
>>> cfg.divisor
8
>>> UNetConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError

LABEL_MODES = ("dense", "scribbles")
LOSSES = ("bce", "dice", "bce_dice")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
#: The devices settings the Train widget offers (the CLI's ``--devices`` takes any value that
#: :mod:`.devices` parses, e.g. ``gpu:0,1`` or ``workers``), with their labels.
DEVICE_CHOICES = {
    "auto": "auto (all GPUs when several)",
    "cpu": "CPU only",
    "gpu": "all GPUs",
}
NORMALIZATION_METHODS = ("percentile", "scale")

# Inclusive limits of every numeric setting: the one source for the configs' checks, the CLI's
# argument types and the widgets' spin boxes. The seed fits a Qt spin box (a C int).
DEPTH_RANGE = (2, 5)
FILTERS_RANGE = (1, 256)
CLASSES_RANGE = (1, 255)
PATCH_RANGE = (16, 2048)
BATCH_RANGE = (1, 1024)
SEED_RANGE = (0, 2**31 - 1)
TILE_RANGE = (32, 16384)
# Open intervals (both ends excluded) of the probability-like settings.
LEARNING_RATE_RANGE = (0.0, 1.0)
THRESHOLD_RANGE = (0.0, 1.0)

#: Tile side of prediction in pixels (bounds memory; see :mod:`.predict`). 1024 plus the
#: default overlap (64 px, of which 2 x 24 px halo): an image of k x 1024 pixels a side is
#: then covered by k tiles per axis. With 1024 a 2048^2 image took 3 x 3 tiles of 752 px
#: (1.21 pixels computed per pixel) instead of 2 x 2 of 1088 (1.13), and ran 0.83x as fast.
DEFAULT_TILE_SIZE = 1088


def _number(name: str, value: Any) -> float:
    """``value`` as a finite float, or a :class:`ConfigError` naming the setting."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {value!r}.")
    return number


def _is_int(value: Any) -> bool:
    """True for Python and numpy integers (but not booleans)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_range(name: str, value: Any, limits: tuple[int, int]) -> None:
    if not _is_int(value) or not limits[0] <= value <= limits[1]:
        raise ConfigError(
            f"{name} must be an integer from {limits[0]} to {limits[1]}, got {value!r}."
        )


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a UNet.

    Parameters
    ----------
    depth
        Number of down-sampling steps (2-5). Inputs are padded internally to a
        multiple of ``2**depth``.
    base_filters
        Filters of the first level; each level down doubles them.
    in_channels
        Channels of the input image (1 for grayscale, 3 for RGB...).
    classes
        1 for a binary model (sigmoid output); >= 2 for a softmax over classes
        (class 0 is background).
    batch_norm
        Batch normalisation after each convolution.
    dropout
        Dropout rate at the bottleneck (0 disables it).
    l1, l2
        Kernel regularisation strengths (0 disables them).
    """

    depth: int = 4
    base_filters: int = 16
    in_channels: int = 1
    classes: int = 1
    batch_norm: bool = True
    dropout: float = 0.0
    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        _check_range("depth", self.depth, DEPTH_RANGE)
        _check_range("base_filters", self.base_filters, FILTERS_RANGE)
        if not _is_int(self.in_channels) or self.in_channels < 1:
            raise ConfigError(f"in_channels must be a positive integer, got {self.in_channels!r}.")
        if not _is_int(self.classes) or not CLASSES_RANGE[0] <= self.classes <= CLASSES_RANGE[1]:
            raise ConfigError(
                f"classes must be 1 (binary) or the number of classes, 2 to {CLASSES_RANGE[1]}; "
                f"got {self.classes!r}."
            )
        if not 0.0 <= _number("dropout", self.dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}.")
        if _number("l1", self.l1) < 0 or _number("l2", self.l2) < 0:
            raise ConfigError("l1 and l2 regularisation must be >= 0.")

    @property
    def divisor(self) -> int:
        """Image sizes the network accepts without padding are multiples of this."""
        return 2**self.depth

    @property
    def output_channels(self) -> int:
        """Channels of the network output (1 for binary, ``classes`` otherwise)."""
        return self.classes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        """Build from :meth:`to_dict` output (unknown keys are ignored)."""
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True)
class NormalizationConfig:
    """How raw intensities are mapped to network inputs; stored with every model.

    ``method="percentile"`` maps, per image and channel, the ``low`` percentile
    to 0 and the ``high`` percentile to 1 (values outside are not clipped).
    ``method="scale"`` divides by ``scale`` (used for legacy models trained on
    images divided by 255).
    """

    method: str = "percentile"
    low: float = 1.0
    high: float = 99.8
    scale: float = 255.0

    def __post_init__(self) -> None:
        if self.method not in NORMALIZATION_METHODS:
            raise ConfigError(
                f"normalisation method must be one of {NORMALIZATION_METHODS}, got {self.method!r}."
            )
        if not 0.0 <= _number("low", self.low) < _number("high", self.high) <= 100.0:
            raise ConfigError(
                f"percentiles must satisfy 0 <= low < high <= 100, got {self.low}, {self.high}."
            )
        if _number("scale", self.scale) <= 0:
            raise ConfigError(f"scale must be > 0, got {self.scale}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalizationConfig:
        """Build from :meth:`to_dict` output (unknown keys are ignored)."""
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True)
class TrainingConfig:
    """How to train.

    Training stops after ``epochs`` epochs or after ``max_time`` seconds,
    whichever comes first (set either to ``None`` to disable it; at least one
    must be set). An epoch is ``steps_per_epoch`` batches of random patches.
    ``batch_size`` is the global batch; ``devices`` chooses where training runs (see
    :mod:`.devices`: ``"auto"``, ``"cpu"``, ``"gpu:0,1"``, ``"workers"``...).
    Frozen like the other configs: derive a changed copy with ``dataclasses.replace``.

    Examples
    --------
    >>> from dataclasses import replace
    >>> replace(TrainingConfig(epochs=5), learning_rate=1e-3).learning_rate
    0.001
    """

    epochs: int | None = 20
    max_time: float | None = None
    steps_per_epoch: int = 25
    patch_size: int = 128
    batch_size: int = 16
    learning_rate: float = 2e-3
    loss: str = "bce_dice"
    labels: str = "dense"
    seed: int = 0
    precision: str = "auto"
    augment: bool = True
    validation_patches: int = 32
    foreground_bias: float = 0.5
    devices: str = "auto"
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)

    def __post_init__(self) -> None:
        if isinstance(self.normalization, dict):
            norm = NormalizationConfig.from_dict(self.normalization)
            object.__setattr__(self, "normalization", norm)  # frozen: only while building
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` with an actionable message for nonsense values."""
        if self.epochs is None and self.max_time is None:
            raise ConfigError("Set a number of epochs or a time budget (max_time), or both.")
        if self.epochs is not None and (not _is_int(self.epochs) or self.epochs < 1):
            raise ConfigError(f"epochs must be a positive integer, got {self.epochs!r}.")
        if self.max_time is not None and not _number("max_time", self.max_time) > 0:
            raise ConfigError(
                f"max_time must be a positive number of seconds, got {self.max_time!r}."
            )
        if not _is_int(self.steps_per_epoch) or self.steps_per_epoch < 1:
            raise ConfigError(
                f"steps_per_epoch must be a positive integer, got {self.steps_per_epoch!r}."
            )
        _check_range("patch_size", self.patch_size, PATCH_RANGE)
        _check_range("batch_size", self.batch_size, BATCH_RANGE)
        lo, hi = LEARNING_RATE_RANGE
        if not lo < _number("learning rate", self.learning_rate) < hi:
            raise ConfigError(
                f"learning rate must be between 0 and 1 (try 1e-3), got {self.learning_rate!r}."
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}; got {self.loss!r}.")
        if self.labels not in LABEL_MODES:
            raise ConfigError(f"labels must be 'dense' or 'scribbles', got {self.labels!r}.")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}."
            )
        if not 0.0 <= _number("foreground_bias", self.foreground_bias) <= 1.0:
            raise ConfigError(f"foreground_bias must be in [0, 1], got {self.foreground_bias!r}.")
        if not _is_int(self.validation_patches) or self.validation_patches < 0:
            raise ConfigError("validation_patches must be a non-negative integer.")
        _check_range("seed", self.seed, SEED_RANGE)
        from .devices import parse_devices  # no TensorFlow

        parse_devices(self.devices)
        if not isinstance(self.normalization, NormalizationConfig):
            raise ConfigError(
                "normalization must be a NormalizationConfig or its dict, "
                f"got {self.normalization!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the settings."""
        data = asdict(self)
        data["normalization"] = self.normalization.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """Build from :meth:`to_dict` output (unknown keys are ignored)."""
        return cls(**_known_fields(cls, data))
