"""Training a UNet: a generator of typed progress events, ending with the model.

:func:`train` runs in three parts: :func:`prepare_training` (data, model, a
warm :class:`Trainer` with the compiled steps), :func:`run_epochs` (the
generator of progress events, honouring the stop event and the time budget) and
:func:`finish_training` (best weights, BatchNorm recalibration, the bundle). A
warm interactive session reuses one :class:`Trainer` across rounds. :func:`train`
runs a compiled training step batch by batch, yielding :class:`~.events.BatchEnd` after
every batch and :class:`~.events.EpochEnd` after every epoch. It stops after the
epochs, after the time budget, or within one batch of ``stop.set()``, and always
ends with :class:`~.events.TrainingFinished`, whose bundle holds the best weights
seen (lowest validation loss, or training loss without validation data).

Short runs and BatchNorm: moving statistics lag behind fast-changing weights,
so a model that trains well can predict badly in inference mode. We use a
momentum of 0.9 during training and, at the end, recompute the statistics
exactly for the final weights over a few training batches
(:func:`recalibrate_batch_norm`), keeping the recalibrated statistics only if
they do not make validation worse.

Examples
--------
>>> from napari_cytounet.core.synthetic import synthetic_cells  # doctest: +SKIP
>>> image, labels = synthetic_cells((128, 128))  # doctest: +SKIP
>>> for event in train([image], [labels], TrainingConfig(epochs=2)):  # doctest: +SKIP
...     print(type(event).__name__)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .bundle import ModelBundle, library_versions
from .config import TrainingConfig, UNetConfig
from .data import (
    PatchSampler,
    fixed_patches,
    make_dataset,
    prepare_examples,
    summarize_data,
)
from .errors import ConfigError, DataError, ModelError
from .events import BatchEnd, EpochEnd, TrainingCheckpoint, TrainingFinished, TrainingStarted
from .trainer import Trainer

#: Batches used to recompute BatchNorm statistics at the end of training.
RECALIBRATION_BATCHES = 8
#: The learning rate decays (cosine) to this fraction of its start value.
FINAL_LR_FRACTION = 0.05


def resolve_jit(jit: bool | None) -> bool:
    """Whether to compile with XLA: ``jit`` when given, else ``CYTOUNET_JIT``, else GPUs only.

    The one rule for training and prediction (see :func:`.precision.use_xla`).

    Examples
    --------
    >>> resolve_jit(False)
    False
    """
    from .precision import use_xla

    return use_xla(jit)


_use_jit = resolve_jit  # the former private name


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _lr_factor(progress: float) -> float:
    progress = min(max(progress, 0.0), 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * cosine


def recalibrate_batch_norm(model: Any, batches: Sequence[np.ndarray]) -> int:
    """Recompute BatchNorm moving statistics exactly for the current weights.

    Runs the model in training mode over ``batches`` with a momentum schedule
    that makes each moving statistic the plain average over all batches.
    Returns the number of BatchNorm layers updated.
    """
    import keras

    layers = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    if not layers or not batches:
        return 0
    saved = [la.momentum for la in layers]
    try:
        for k, x in enumerate(batches):
            for la in layers:
                la.momentum = k / (k + 1.0)  # running mean of the batch statistics
            model(x, training=True)
    finally:
        for la, m in zip(layers, saved):
            la.momentum = m
    return len(layers)


def _bn_state(model: Any) -> list[np.ndarray]:
    import keras

    return [
        v.numpy()
        for la in model.layers
        if isinstance(la, keras.layers.BatchNormalization)
        for v in (la.moving_mean, la.moving_variance)
    ]


def _set_bn_state(model: Any, state: list[np.ndarray]) -> None:
    import keras

    it = iter(state)
    for la in model.layers:
        if isinstance(la, keras.layers.BatchNormalization):
            la.moving_mean.assign(next(it))
            la.moving_variance.assign(next(it))


def _check_arguments(config: Any, unet: Any, validation: Any, initial: Any, stop: Any) -> None:
    """API misuse gets the project's own errors, saying how to call :func:`train`."""
    if config is not None and not isinstance(config, TrainingConfig):
        raise ConfigError(
            f"config must be a TrainingConfig, got {type(config).__name__}; for a dict use "
            "TrainingConfig.from_dict(d) (or TrainingConfig(**d))."
        )
    if unet is not None and not isinstance(unet, UNetConfig):
        raise ConfigError(
            f"unet must be a UNetConfig, got {type(unet).__name__}; for a dict use "
            "UNetConfig.from_dict(d)."
        )
    if initial is not None and not isinstance(initial, ModelBundle):
        raise ModelError(
            f"initial must be a ModelBundle, got {type(initial).__name__}; load one with "
            "load_bundle(path)."
        )
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise ConfigError(
            f"stop must be a threading.Event (set it to stop), got {stop!r}; create one with "
            "threading.Event() and call .set() on it from another thread."
        )
    if validation is not None and not (
        isinstance(validation, (tuple, list))
        and len(validation) == 2
        and all(isinstance(v, (list, tuple, np.ndarray)) for v in validation)
    ):
        raise DataError(
            "validation must be a pair (images, labels) of two lists of arrays, got "
            f"{type(validation).__name__}; e.g. validation=([image1, image2], [mask1, mask2])."
        )


@dataclass
class TrainingRun:
    """The state of one training run between :func:`prepare_training`, :func:`run_epochs`
    and :func:`finish_training`."""

    config: TrainingConfig
    unet: UNetConfig
    trainer: Trainer
    batches: Iterator[tuple[np.ndarray, np.ndarray]]
    precision: str
    use_jit: bool
    started: TrainingStarted
    images: Sequence[np.ndarray]
    labels: Sequence[np.ndarray]
    names: Sequence[str] | None = None
    validation: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None
    validation_names: Sequence[str] | None = None
    initial: ModelBundle | None = None
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    history: dict[str, list[Any]] = field(default_factory=dict)
    best_score: float = math.inf
    best_weights: list[np.ndarray] | None = None
    best_epoch: int = 0
    patches: int = 0
    epoch: int = 0
    reason: str = "epochs"
    seconds: float = 0.0
    distribution: Any = None  # devices.Distribution

    def fraction(self, steps_done: int, elapsed: float) -> float:
        """Progress in [0, 1]: the larger of the epochs done and the time used."""
        cfg = self.config
        fractions = [0.0]
        if cfg.epochs is not None:
            fractions.append(steps_done / (cfg.epochs * cfg.steps_per_epoch))
        if cfg.max_time is not None:
            fractions.append(elapsed / float(cfg.max_time))
        return min(1.0, max(fractions))

    def remaining(self, steps_done: int, elapsed: float, per_batch: float | None) -> float | None:
        """Estimated seconds left (``None`` when unknown)."""
        cfg = self.config
        options = []
        if cfg.max_time is not None:
            options.append(max(0.0, float(cfg.max_time) - elapsed))
        if cfg.epochs is not None and per_batch is not None:
            options.append(max(0, cfg.epochs * cfg.steps_per_epoch - steps_done) * per_batch)
        return min(options) if options else None


def _check_initial(initial: ModelBundle) -> None:
    if initial.legacy:
        raise ModelError(
            f"{initial.name} is a legacy/foreign model (prediction only); "
            "start a new model instead of continuing from it."
        )


def _prepare_data(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    config: TrainingConfig,
    unet: UNetConfig | None,
    initial: ModelBundle | None,
    names: Sequence[str] | None,
    validation: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None,
    validation_names: Sequence[str] | None,
) -> tuple[list, list, UNetConfig]:
    classes = unet.classes if unet is not None else 1
    in_channels = unet.in_channels if initial is not None else None
    norm = config.normalization
    examples = prepare_examples(
        images, labels, mode=config.labels, classes=classes, norm=norm,
        in_channels=in_channels, names=names,
    )  # fmt: skip
    channels = examples[0].image.shape[-1]
    if unet is None:
        unet = UNetConfig(in_channels=channels)
    elif unet.in_channels != channels:
        unet = replace(unet, in_channels=channels)
    val_examples = []
    if validation is not None and len(validation[0]):
        val_examples = prepare_examples(
            validation[0], validation[1], mode=config.labels, classes=classes, norm=norm,
            in_channels=channels, names=validation_names,
        )  # fmt: skip
    return examples, val_examples, unet


def prepare_training(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    config: TrainingConfig | None = None,
    unet: UNetConfig | None = None,
    *,
    validation: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
    initial: ModelBundle | None = None,
    names: Sequence[str] | None = None,
    validation_names: Sequence[str] | None = None,
    jit: bool | None = None,
) -> TrainingRun:
    """First part of :func:`train`: check the data, build the model and the warm trainer.

    Takes the arguments of :func:`train` (see there). Raises ``DataError``,
    ``ConfigError`` or ``ModelError`` before any training.

    Examples
    --------
    >>> run = prepare_training([image], [labels], TrainingConfig(epochs=1))  # doctest: +SKIP
    >>> events = list(run_epochs(run)); finished = finish_training(run)  # doctest: +SKIP
    """
    import keras

    from .devices import select_for_training
    from .model import build_unet
    from .precision import resolve_precision

    config = config if config is not None else TrainingConfig()
    config.validate()
    if initial is not None:
        _check_initial(initial)
        unet = initial.unet
        config = replace(config, normalization=initial.normalization)
    examples, val_examples, unet = _prepare_data(
        images, labels, config, unet, initial, names, validation, validation_names
    )
    config = replace(config, patch_size=_round_up(config.patch_size, unet.divisor))
    # the strategy first: a multi-worker one must start before other TensorFlow work
    distribution, use_jit = select_for_training(config.devices, config.batch_size, resolve_jit(jit))
    seed = int(config.seed)
    keras.utils.set_random_seed(seed)
    precision = resolve_precision(config.precision)
    with distribution.scope():
        model = build_unet(unet, dtype_policy=precision)
        if initial is not None:
            try:
                model.set_weights(initial.model.get_weights())
            except ValueError as exc:
                raise ModelError(
                    f"Cannot continue from {initial.name}: its weights do not fit its recorded "
                    f"architecture ({exc}). Start a new model."
                ) from exc
        trainer = Trainer(
            model, unet.classes, config.loss, config.learning_rate, use_jit, distribution
        )
    sampler = PatchSampler(
        examples, config.patch_size, foreground_bias=config.foreground_bias, seed=seed
    )
    dataset = make_dataset(sampler, config.batch_size, augment_data=config.augment, seed=seed)
    val_x = val_y = None
    if val_examples and config.validation_patches > 0:
        val_x, val_y = fixed_patches(
            val_examples, config.patch_size, config.validation_patches, seed=seed + 7,
            foreground_bias=config.foreground_bias,
        )  # fmt: skip
    started = TrainingStarted(
        epochs=config.epochs, max_time=config.max_time, batches=config.steps_per_epoch,
        patch_size=config.patch_size, batch_size=config.batch_size, precision=precision,
        n_images=len(examples), n_validation=len(val_examples),
        parameters=int(model.count_params()),
    )  # fmt: skip
    history_keys = ("loss", "dice", "val_loss", "val_dice", "elapsed", "patches", "learning_rate")
    return TrainingRun(
        config=config, unet=unet, trainer=trainer, batches=iter(dataset), precision=precision,
        use_jit=use_jit, started=started, images=images, labels=labels, names=names,
        validation=validation, validation_names=validation_names, initial=initial,
        val_x=val_x, val_y=val_y, history={k: [] for k in history_keys},
        distribution=distribution,
    )  # fmt: skip


def _end_epoch(run: TrainingRun, losses: list[float], dices: list[float], t0: float) -> EpochEnd:
    """Score the epoch, remember the best weights and extend the history."""
    cfg, trainer = run.config, run.trainer
    val_loss, val_dice = trainer.evaluate(run.val_x, run.val_y, cfg.batch_size)
    elapsed = time.perf_counter() - t0
    train_loss = float(np.mean(losses))
    score = val_loss if val_loss is not None else train_loss
    is_best = score < run.best_score
    if is_best:
        run.best_score, run.best_epoch = score, run.epoch
        run.best_weights = [w.copy() for w in trainer.model.get_weights()]
    values = {
        "loss": train_loss, "dice": float(np.mean(dices)), "val_loss": val_loss,
        "val_dice": val_dice, "elapsed": elapsed, "patches": run.patches,
        "learning_rate": float(trainer.optimizer.learning_rate.numpy()),
    }  # fmt: skip
    for key, value in values.items():
        run.history[key].append(value)
    return EpochEnd(
        epoch=run.epoch, epochs=cfg.epochs, loss=train_loss, dice=values["dice"],
        val_loss=val_loss, val_dice=val_dice, elapsed=elapsed, remaining=None,
        is_best=is_best, patches=run.patches,
    )  # fmt: skip


def run_epochs(
    run: TrainingRun, stop: threading.Event | None = None
) -> Iterator[TrainingStarted | BatchEnd | EpochEnd]:
    """Second part of :func:`train`: the epochs, as a generator of progress events.

    Yields :class:`TrainingStarted`, then :class:`BatchEnd` after every batch and
    :class:`EpochEnd` after every epoch, each carrying ``fraction`` (progress in
    [0, 1], computed here once for every front end). Stops after the epochs,
    after ``config.max_time`` seconds or within one batch of ``stop.set()``;
    ``run.reason`` says which.
    """
    cfg = run.config
    stop = stop or threading.Event()
    steps = cfg.steps_per_epoch
    yield run.started
    t0 = time.perf_counter()
    max_epochs = cfg.epochs if cfg.epochs is not None else 10**9
    per_batch = None  # seconds per batch, for time estimates
    done = 0
    while run.epoch < max_epochs:
        run.epoch += 1
        losses: list[float] = []
        dices: list[float] = []
        for batch in range(1, steps + 1):
            lr = float(cfg.learning_rate) * _lr_factor(run.fraction(done, time.perf_counter() - t0))
            x, y = next(run.batches)
            loss, dice = run.trainer.step(x, y, lr)
            losses.append(loss)
            dices.append(dice)
            done += 1
            run.patches += cfg.batch_size
            elapsed = time.perf_counter() - t0
            if done >= 3:  # skip compilation when timing batches
                recent = elapsed / done
                per_batch = recent if per_batch is None else 0.8 * per_batch + 0.2 * recent
            yield BatchEnd(
                epoch=run.epoch, epochs=cfg.epochs, batch=batch, batches=steps,
                loss=float(np.mean(losses)), dice=float(np.mean(dices)), elapsed=elapsed,
                remaining=run.remaining(done, elapsed, per_batch),
                fraction=run.fraction(done, elapsed),
            )  # fmt: skip
            if stop.is_set():
                run.reason = "stopped"
                break
            if cfg.max_time is not None and elapsed >= float(cfg.max_time):
                run.reason = "time"
                break
        ended = _end_epoch(run, losses, dices, t0)
        yield replace(
            ended,
            remaining=run.remaining(done, ended.elapsed, per_batch),
            fraction=1.0 if run.reason != "epochs" else run.fraction(done, ended.elapsed),
        )
        if run.reason in ("stopped", "time"):
            break
    run.seconds = time.perf_counter() - t0


def _recalibrate(run: TrainingRun) -> bool:
    """Exact BatchNorm statistics for the final weights, kept unless validation gets worse."""
    model, trainer, bs = run.trainer.model, run.trainer, run.config.batch_size
    before = _bn_state(model)
    score_before = trainer.evaluate(run.val_x, run.val_y, bs)[0]
    recalibrate_batch_norm(model, [next(run.batches)[0] for _ in range(RECALIBRATION_BATCHES)])
    score_after = trainer.evaluate(run.val_x, run.val_y, bs)[0]
    # keep the exact statistics unless they are clearly worse on validation
    # (a few fixed patches are a noisy judge; 5% tolerance)
    if score_before is not None and score_after is not None and score_after > 1.05 * score_before:
        _set_bn_state(model, before)  # the running statistics were better: keep them
        return False
    return True


def finish_training(run: TrainingRun) -> TrainingFinished:
    """Third part of :func:`train`: best weights, BatchNorm recalibration and the bundle."""
    from .precision import device_description

    cfg, unet, model = run.config, run.unet, run.trainer.model
    if run.best_weights is not None:
        model.set_weights(run.best_weights)
    recalibrated = False
    if unet.batch_norm and run.patches > 0:
        recalibrated = _recalibrate(run)
    final_val_loss, final_val_dice = run.trainer.evaluate(run.val_x, run.val_y, cfg.batch_size)
    seconds = run.seconds
    pps = run.patches / seconds if seconds > 0 else 0.0
    p = cfg.patch_size
    distribution = run.distribution
    where = (distribution.label() if distribution is not None else None) or device_description()
    summary = (
        f"Trained {run.patches:,} patches of {p}x{p} in {seconds:.1f} s ({pps:.2f} patches/s) "
        f"on {where} with {run.precision}; {run.epoch} epoch(s), "
        f"best epoch {run.best_epoch}"
    )
    if final_val_dice is not None:
        summary += f", validation Dice {final_val_dice:.3f}"
    summary += f" (stopped: {run.reason})."
    data_summary = {"train": summarize_data(run.images, run.labels, run.names)}
    if run.validation is not None and len(run.validation[0]):
        data_summary["validation"] = summarize_data(*run.validation, run.validation_names)
    data_summary["count"] = data_summary["train"]["count"]
    initial = run.initial
    bundle = ModelBundle(
        model=model, unet=unet, normalization=cfg.normalization, label_mode=cfg.labels,
        training=cfg, history=run.history, data_summary=data_summary,
        versions=library_versions(), name=initial.name if initial is not None else "cytounet",
        extra={
            "precision": run.precision, "device": where, "xla": run.use_jit,
            "devices": distribution.describe(cfg.batch_size) if distribution else None,
            "seconds": round(seconds, 2), "patches": run.patches,
            "patches_per_second": round(pps, 3), "best_epoch": run.best_epoch,
            "stop_reason": run.reason, "batch_norm_recalibrated": recalibrated,
            "final_val_loss": final_val_loss, "final_val_dice": final_val_dice,
            "fine_tuned_from": str(initial.path) if initial is not None and initial.path else None,
        },
    )  # fmt: skip
    bundle.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return TrainingFinished(
        bundle=bundle, reason=run.reason, epochs_run=run.epoch, patches=run.patches,
        patch_size=p, seconds=seconds, best_epoch=run.best_epoch, summary=summary,
        history=run.history,
    )  # fmt: skip


def train(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    config: TrainingConfig | None = None,
    unet: UNetConfig | None = None,
    *,
    validation: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
    initial: ModelBundle | None = None,
    stop: threading.Event | None = None,
    names: Sequence[str] | None = None,
    validation_names: Sequence[str] | None = None,
    jit: bool | None = None,
    checkpoints: bool = False,
) -> Iterator[TrainingStarted | BatchEnd | EpochEnd | TrainingCheckpoint | TrainingFinished]:
    """Train a UNet and yield progress events; the last event carries the model.

    Runs :func:`prepare_training`, :func:`run_epochs` and :func:`finish_training`.

    Parameters
    ----------
    images, labels
        Training pairs: 2D images ``(H, W)`` or ``(H, W, C)`` and 2D integer
        labels of the same height and width (see :mod:`.data` for the
        dense/scribbles conventions set by ``config.labels``).
    config
        Training settings (:class:`TrainingConfig`; defaults if ``None``).
    unet
        Architecture of a new model (default :class:`UNetConfig`, with
        ``in_channels`` taken from the images). Ignored when ``initial`` is given.
    validation
        Optional ``(images, labels)`` scored after every epoch on fixed patches.
    initial
        A bundle to continue training from (fine-tuning): its architecture and
        normalisation are kept and its weights are the starting point. The
        bundle itself is not modified.
    stop
        Set this event to stop within one batch; the run still ends with a
        :class:`TrainingFinished` holding the best weights so far.
    names, validation_names
        Names of the images, for messages and the data summary.
    jit
        Compile the training step with XLA (default: on GPUs only, see
        :func:`~napari_cytounet.core.precision.use_xla`; the environment
        variable ``CYTOUNET_JIT=1``/``0`` overrides).
    checkpoints
        Also yield a :class:`~.events.TrainingCheckpoint` (the best weights so
        far, as a bundle) after every best epoch.

    Yields
    ------
    TrainingStarted, BatchEnd, EpochEnd, TrainingFinished

    Raises
    ------
    DataError, ConfigError, ModelError
        Before training starts, for unusable data or settings.
    """
    _check_arguments(config, unet, validation, initial, stop)
    run = prepare_training(
        images, labels, config, unet, validation=validation, initial=initial, names=names,
        validation_names=validation_names, jit=jit,
    )  # fmt: skip
    for event in run_epochs(run, stop):
        yield event
        if checkpoints and isinstance(event, EpochEnd) and event.is_best:
            yield _checkpoint(run)
    yield finish_training(run)


def _checkpoint(run: TrainingRun) -> TrainingCheckpoint:
    """The best weights so far as a bundle value (for callers that may lose the run)."""
    initial = run.initial
    return TrainingCheckpoint(
        epoch=run.best_epoch,
        bundle=ModelBundle.from_weights(
            [w.copy() for w in run.best_weights],
            run.unet,
            normalization=run.config.normalization,
            label_mode=run.config.labels,
            training=run.config,
            history={k: list(v) for k, v in run.history.items()},
            name=initial.name if initial is not None else "cytounet",
            extra={"checkpoint_epoch": run.best_epoch, "stop_reason": "checkpoint"},
        ),
    )


def train_model(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    config: TrainingConfig | None = None,
    unet: UNetConfig | None = None,
    *,
    callback: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> TrainingFinished:
    """Run :func:`train` to the end and return its :class:`TrainingFinished` event.

    ``callback`` (optional) receives every event on the way.

    Examples
    --------
    >>> result = train_model([image], [labels], TrainingConfig(epochs=1))  # doctest: +SKIP
    >>> result.bundle.unet.depth  # doctest: +SKIP
    4
    """
    finished = None
    for event in train(images, labels, config, unet, **kwargs):
        if callback is not None:
            callback(event)
        if isinstance(event, TrainingFinished):
            finished = event
    if finished is None:  # pragma: no cover - train always ends with TrainingFinished
        raise ConfigError("Training ended without a result.")
    return finished
