"""Training a UNet: a generator of typed progress events, ending with the model.

:func:`train` prepares the data, builds (or continues) a model and runs a
compiled training step batch by batch, yielding :class:`~.events.BatchEnd` after
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
from dataclasses import replace
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
from .events import (
    BatchEnd,
    EpochEnd,
    TrainingCheckpoint,
    TrainingFinished,
    TrainingStarted,
)

#: Batches used to recompute BatchNorm statistics at the end of training.
RECALIBRATION_BATCHES = 8
#: The learning rate decays (cosine) to this fraction of its start value.
FINAL_LR_FRACTION = 0.05


def _use_jit(jit: bool | None) -> bool:
    from .precision import use_xla

    return use_xla(jit)


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
    import keras
    import tensorflow as tf

    from .losses import get_loss, hard_dice
    from .model import build_unet
    from .precision import device_description, resolve_precision

    _check_arguments(config, unet, validation, initial, stop)
    config = replace(config) if config is not None else TrainingConfig()
    config.validate()
    stop = stop or threading.Event()

    if initial is not None:
        if initial.legacy:
            raise ModelError(
                f"{initial.name} is a legacy/foreign model (prediction only); "
                "start a new model instead of continuing from it."
            )
        unet = initial.unet
        norm = initial.normalization
        config.normalization = norm
        if config.labels != initial.label_mode and initial.label_mode:
            pass  # continuing with another label mode is fine: targets mean the same classes
    else:
        norm = config.normalization
    classes = unet.classes if unet is not None else 1
    in_channels = unet.in_channels if initial is not None else None
    examples = prepare_examples(
        images,
        labels,
        mode=config.labels,
        classes=classes,
        norm=norm,
        in_channels=in_channels,
        names=names,
    )
    channels = examples[0].image.shape[-1]
    if unet is None:
        unet = UNetConfig(in_channels=channels)
    elif unet.in_channels != channels:
        unet = replace(unet, in_channels=channels)
    val_examples = []
    if validation is not None:
        val_images, val_labels = validation
        if len(val_images):
            val_examples = prepare_examples(
                val_images,
                val_labels,
                mode=config.labels,
                classes=classes,
                norm=norm,
                in_channels=channels,
                names=validation_names,
            )

    config.patch_size = _round_up(config.patch_size, unet.divisor)
    seed = int(config.seed)
    keras.utils.set_random_seed(seed)
    precision = resolve_precision(config.precision)
    use_jit = _use_jit(jit)

    model = build_unet(unet, dtype_policy=precision)
    if initial is not None:
        try:
            model.set_weights(initial.model.get_weights())
        except ValueError as exc:
            raise ModelError(
                f"Cannot continue from {initial.name}: its weights do not fit its recorded "
                f"architecture ({exc}). Start a new model."
            ) from exc

    sampler = PatchSampler(
        examples, config.patch_size, foreground_bias=config.foreground_bias, seed=seed
    )
    dataset = make_dataset(sampler, config.batch_size, augment_data=config.augment, seed=seed)
    batches = iter(dataset)
    val_x = val_y = None
    if val_examples and config.validation_patches > 0:
        val_x, val_y = fixed_patches(
            val_examples,
            config.patch_size,
            config.validation_patches,
            seed=seed + 7,
            foreground_bias=config.foreground_bias,
        )

    loss_fn = get_loss(config.loss, unet.classes)
    optimizer = keras.optimizers.Adam(learning_rate=float(config.learning_rate))
    optimizer.build(model.trainable_variables)
    n_classes = unet.classes

    @tf.function(jit_compile=use_jit, reduce_retracing=True)
    def train_step(x: Any, y: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = loss_fn(y, pred)
            total = loss + tf.add_n(model.losses) if model.losses else loss
        grads = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, hard_dice(y, pred, n_classes)

    @tf.function(jit_compile=use_jit, reduce_retracing=True)
    def eval_step(x: Any, y: Any) -> tuple[Any, Any]:
        pred = model(x, training=False)
        return loss_fn(y, pred), hard_dice(y, pred, n_classes)

    def evaluate() -> tuple[float | None, float | None]:
        if val_x is None:
            return None, None
        bs = config.batch_size
        n_full = len(val_x) // bs * bs
        if n_full == 0:  # fewer patches than a batch: one call
            loss, dice = eval_step(val_x, val_y)
            return float(loss), float(dice)
        losses, dices = [], []
        for start in range(0, n_full, bs):  # full batches only: one compiled shape
            loss, dice = eval_step(val_x[start : start + bs], val_y[start : start + bs])
            losses.append(float(loss))
            dices.append(float(dice))
        return float(np.mean(losses)), float(np.mean(dices))

    steps = config.steps_per_epoch
    yield TrainingStarted(
        epochs=config.epochs,
        max_time=config.max_time,
        batches=steps,
        patch_size=config.patch_size,
        batch_size=config.batch_size,
        precision=precision,
        n_images=len(examples),
        n_validation=len(val_examples),
        parameters=int(model.count_params()),
    )

    history: dict[str, list[Any]] = {
        "loss": [],
        "dice": [],
        "val_loss": [],
        "val_dice": [],
        "elapsed": [],
        "patches": [],
        "learning_rate": [],
    }
    best_score = math.inf
    best_weights: list[np.ndarray] | None = None
    best_epoch = 0
    patches = 0
    reason = "epochs"
    t0 = time.perf_counter()
    epoch = 0
    max_epochs = config.epochs if config.epochs is not None else 10**9
    per_batch = None  # seconds per batch, for time estimates

    def progress(step_in_run: int, elapsed: float) -> float:
        fractions = []
        if config.epochs is not None:
            fractions.append(step_in_run / (config.epochs * steps))
        if config.max_time is not None:
            fractions.append(elapsed / float(config.max_time))
        return max(fractions)

    def remaining(step_in_run: int, elapsed: float) -> float | None:
        options = []
        if config.max_time is not None:
            options.append(max(0.0, float(config.max_time) - elapsed))
        if config.epochs is not None and per_batch is not None:
            options.append(max(0, config.epochs * steps - step_in_run) * per_batch)
        return min(options) if options else None

    global_step = 0
    while epoch < max_epochs:
        epoch += 1
        losses, dices = [], []
        batch = 0
        for batch in range(1, steps + 1):
            elapsed = time.perf_counter() - t0
            optimizer.learning_rate.assign(
                float(config.learning_rate) * _lr_factor(progress(global_step, elapsed))
            )
            x, y = next(batches)
            loss, dice = train_step(x, y)
            loss, dice = float(loss), float(dice)
            if not math.isfinite(loss):
                raise DataError(
                    "Training diverged (the loss became NaN/inf); lower the learning rate "
                    "or check the images for extreme values."
                )
            losses.append(loss)
            dices.append(dice)
            global_step += 1
            patches += config.batch_size
            elapsed = time.perf_counter() - t0
            if global_step >= 3:  # skip compilation when timing batches
                recent = elapsed / global_step
                per_batch = recent if per_batch is None else 0.8 * per_batch + 0.2 * recent
            yield BatchEnd(
                epoch=epoch,
                epochs=config.epochs,
                batch=batch,
                batches=steps,
                loss=float(np.mean(losses)),
                dice=float(np.mean(dices)),
                elapsed=elapsed,
                remaining=remaining(global_step, elapsed),
            )
            if stop.is_set():
                reason = "stopped"
                break
            if config.max_time is not None and elapsed >= float(config.max_time):
                reason = "time"
                break
        val_loss, val_dice = evaluate()
        elapsed = time.perf_counter() - t0
        train_loss = float(np.mean(losses))
        score = val_loss if val_loss is not None else train_loss
        is_best = score < best_score
        if is_best:
            best_score, best_epoch = score, epoch
            best_weights = [w.copy() for w in model.get_weights()]
        history["loss"].append(train_loss)
        history["dice"].append(float(np.mean(dices)))
        history["val_loss"].append(val_loss)
        history["val_dice"].append(val_dice)
        history["elapsed"].append(elapsed)
        history["patches"].append(patches)
        history["learning_rate"].append(float(optimizer.learning_rate.numpy()))
        yield EpochEnd(
            epoch=epoch,
            epochs=config.epochs,
            loss=train_loss,
            dice=float(np.mean(dices)),
            val_loss=val_loss,
            val_dice=val_dice,
            elapsed=elapsed,
            remaining=remaining(global_step, elapsed),
            is_best=is_best,
            patches=patches,
        )
        if checkpoints and is_best and best_weights is not None:
            yield TrainingCheckpoint(
                epoch=epoch,
                bundle=ModelBundle.from_weights(
                    best_weights,
                    unet,
                    normalization=norm,
                    label_mode=config.labels,
                    training=config,
                    history={k: list(v) for k, v in history.items()},
                    name=initial.name if initial is not None else "cytounet",
                    extra={"checkpoint_epoch": epoch, "stop_reason": "checkpoint"},
                ),
            )
        if reason in ("stopped", "time"):
            break
    train_seconds = time.perf_counter() - t0

    if best_weights is not None:
        model.set_weights(best_weights)
    recalibrated = False
    if unet.batch_norm and not (reason == "stopped" and stop.is_set() and patches == 0):
        before = _bn_state(model)
        score_before = evaluate()[0]
        recal = [next(batches)[0] for _ in range(RECALIBRATION_BATCHES)]
        recalibrate_batch_norm(model, recal)
        score_after = evaluate()[0]
        recalibrated = True
        # keep the exact statistics unless they are clearly worse on validation
        # (a few fixed patches are a noisy judge; 5% tolerance)
        if (
            score_before is not None
            and score_after is not None
            and score_after > 1.05 * score_before
        ):
            _set_bn_state(model, before)  # the running statistics were better: keep them
            recalibrated = False
    final_val_loss, final_val_dice = evaluate()

    pps = patches / train_seconds if train_seconds > 0 else 0.0
    p = config.patch_size
    summary = (
        f"Trained {patches:,} patches of {p}x{p} in {train_seconds:.1f} s ({pps:.2f} patches/s) "
        f"on {device_description()} with {precision}; {epoch} epoch(s), best epoch {best_epoch}"
    )
    if final_val_dice is not None:
        summary += f", validation Dice {final_val_dice:.3f}"
    summary += f" (stopped: {reason})."

    data_summary = {"train": summarize_data(images, labels, names)}
    if validation is not None and len(validation[0]):
        data_summary["validation"] = summarize_data(validation[0], validation[1], validation_names)
    data_summary["count"] = data_summary["train"]["count"]
    bundle = ModelBundle(
        model=model,
        unet=unet,
        normalization=norm,
        label_mode=config.labels,
        training=config,
        history=history,
        data_summary=data_summary,
        versions=library_versions(),
        name=initial.name if initial is not None else "cytounet",
        extra={
            "precision": precision,
            "device": device_description(),
            "xla": use_jit,
            "seconds": round(train_seconds, 2),
            "patches": patches,
            "patches_per_second": round(pps, 3),
            "best_epoch": best_epoch,
            "stop_reason": reason,
            "batch_norm_recalibrated": recalibrated,
            "final_val_loss": final_val_loss,
            "final_val_dice": final_val_dice,
            "fine_tuned_from": str(initial.path) if initial is not None and initial.path else None,
        },
    )
    bundle.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    yield TrainingFinished(
        bundle=bundle,
        reason=reason,
        epochs_run=epoch,
        patches=patches,
        patch_size=p,
        seconds=train_seconds,
        best_epoch=best_epoch,
        summary=summary,
        history=history,
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
