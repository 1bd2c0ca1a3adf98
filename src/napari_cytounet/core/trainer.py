"""A model with its optimizer and compiled steps, kept warm across training runs.

:func:`~.training.train` uses one per run; the interactive session keeps one for
all its rounds, so nothing is traced twice.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import DataError

__all__ = ["Trainer"]


class Trainer:
    """A model with its optimizer and compiled training/evaluation steps, kept warm.

    Build it once and call :meth:`step` with batches of the same shape: the
    steps are traced once and reused, across training runs too (the
    interactive session keeps one for all its rounds).

    Parameters
    ----------
    model
        The Keras model to train (modified in place).
    classes
        Output classes of the model (1 = binary).
    loss
        Loss name (see :func:`~.losses.get_loss`).
    learning_rate
        Initial learning rate; :meth:`step` may set another one per batch.
    jit
        Compile the steps with XLA.
    distribution
        A :class:`~.devices.Distribution` with a strategy: the training step runs on its
        replicas (build the model, and this trainer, inside its ``scope()``).

    Examples
    --------
    >>> trainer = Trainer(build_unet(UNetConfig(depth=2, base_filters=4)))  # doctest: +SKIP
    >>> loss, dice = trainer.step(x, y, learning_rate=1e-3)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        classes: int = 1,
        loss: str = "bce_dice",
        learning_rate: float = 2e-3,
        jit: bool = False,
        distribution: Any = None,
    ) -> None:
        import keras
        import tensorflow as tf

        from .losses import get_loss, hard_dice

        self.model = model
        loss_fn = get_loss(loss, classes)
        self.optimizer = keras.optimizers.Adam(learning_rate=float(learning_rate))
        self.optimizer.build(model.trainable_variables)
        optimizer = self.optimizer

        @tf.function(jit_compile=jit, reduce_retracing=True)
        def train_step(x: Any, y: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                value = loss_fn(y, pred)
                total = value + tf.add_n(model.losses) if model.losses else value
            grads = tape.gradient(total, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return value, hard_dice(y, pred, classes)

        @tf.function(jit_compile=jit, reduce_retracing=True)
        def eval_step(x: Any, y: Any) -> tuple[Any, Any]:
            pred = model(x, training=False)
            return loss_fn(y, pred), hard_dice(y, pred, classes)

        if distribution is not None and distribution.strategy is not None:
            from .devices import distributed_train_step

            train_step = distributed_train_step(
                distribution, model, optimizer, loss_fn, lambda y, p: hard_dice(y, p, classes)
            )
        self._train_step, self._eval_step = train_step, eval_step

    def step(self, x: Any, y: Any, learning_rate: float | None = None) -> tuple[float, float]:
        """Train on one batch; return its loss and hard Dice.

        Raises
        ------
        DataError
            If the loss became NaN or infinite.
        """
        if learning_rate is not None:
            self.optimizer.learning_rate.assign(float(learning_rate))
        loss, dice = self._train_step(x, y)
        loss, dice = float(loss), float(dice)
        if not math.isfinite(loss):
            raise DataError(
                "Training diverged (the loss became NaN/inf); lower the learning rate "
                "or check the images for extreme values."
            )
        return loss, dice

    def evaluate(
        self, x: np.ndarray | None, y: np.ndarray | None, batch_size: int
    ) -> tuple[float | None, float | None]:
        """Mean loss and hard Dice over fixed patches (full batches: one compiled shape)."""
        if x is None:
            return None, None
        n_full = len(x) // batch_size * batch_size
        if n_full == 0:  # fewer patches than a batch: one call
            loss, dice = self._eval_step(x, y)
            return float(loss), float(dice)
        losses, dices = [], []
        for start in range(0, n_full, batch_size):
            loss, dice = self._eval_step(
                x[start : start + batch_size], y[start : start + batch_size]
            )
            losses.append(float(loss))
            dices.append(float(dice))
        return float(np.mean(losses)), float(np.mean(dices))
