"""Training on several devices: choosing a ``tf.distribute`` strategy from a ``devices`` setting.

The setting (``TrainingConfig.devices``, ``cytounet train --devices``) is a short string:

``"auto"`` (default)
    ``TF_CONFIG`` naming several workers: ``MultiWorkerMirroredStrategy``; else two or more
    visible GPUs: ``MirroredStrategy`` over all of them; else one device and no strategy
    (exactly the single-device path).
``"cpu"``
    The CPU only, even where GPUs are visible (``OneDeviceStrategy``).
``"gpu"``, ``"all"``
    Every visible GPU (``"all"``: every CPU device where no GPU is visible).
``"gpu:0,1"``, ``"cpu:0,1"``
    Those devices. Several CPU devices are *logical* devices that share the same cores (for
    tests; no speed-up): they are configured on request if TensorFlow has not started yet.
``"2"`` (a count)
    The first N GPUs (CPU devices where no GPU is visible).
``"workers"``
    ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG`` (an error if it is not set).

The batch size stays the *global* batch: each of N replicas computes 1/N of every batch (it
must divide evenly). Results equal a single device's up to float rounding: the loss and the
Dice are computed on the whole batch gathered from all replicas (``all_gather``, whose gradient
returns each replica its slice), BatchNorm uses statistics of the whole batch
(``synchronized=True`` during training), and the optimizer sums the replicas' gradients of
``loss / N``. XLA is not used with several replicas (variables on several devices cannot be
compiled into one XLA program); mixed bfloat16 works unchanged (no loss scaling needed).

Examples
--------
>>> parse_devices("gpu:0,1")
DeviceSpec(kind='gpu', indices=(0, 1), count=None)
>>> parse_devices("auto").kind
'auto'
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = [
    "DeviceSpec",
    "Distribution",
    "distributed_train_step",
    "parse_devices",
    "select_distribution",
    "select_for_training",
]

_log = logging.getLogger("napari_cytounet")

DEVICES_HELP = (
    "'auto', 'cpu', 'gpu', 'all', 'gpu:0,1', 'cpu:0,1', a device count such as '2', "
    "or 'workers' (MultiWorkerMirroredStrategy from TF_CONFIG)"
)
#: Cached strategies by resolved devices: a process may create a multi-worker one only once.
_STRATEGIES: dict[tuple[str, ...], Any] = {}


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed ``devices`` setting (no TensorFlow needed).

    ``kind`` is one of ``auto``, ``cpu``, ``gpu``, ``all``, ``count`` and ``workers``;
    ``indices`` lists device numbers (``gpu:0,1``), ``count`` a number of devices.
    """

    kind: str
    indices: tuple[int, ...] | None = None
    count: int | None = None


def parse_devices(value: Any) -> DeviceSpec:
    """Check a ``devices`` setting and parse it; a :class:`ConfigError` says what is allowed.

    Examples
    --------
    >>> parse_devices(2)
    DeviceSpec(kind='count', indices=None, count=2)
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"devices must be {DEVICES_HELP}; got {value!r}.")
    text = str(value).strip().lower().replace(" ", "")
    if text in ("auto", "cpu", "gpu", "all", "workers"):
        return DeviceSpec(text)
    if text.isdigit():
        if int(text) < 1:
            raise ConfigError(f"devices: a device count must be at least 1, got {value!r}.")
        return DeviceSpec("count", count=int(text))
    match = re.fullmatch(r"(cpu|gpu):(\d+(?:,\d+)*)", text)
    if match is None:
        raise ConfigError(f"devices must be {DEVICES_HELP}; got {value!r}.")
    indices = tuple(int(i) for i in match.group(2).split(","))
    if len(set(indices)) != len(indices):
        raise ConfigError(f"devices: {value!r} names a device twice.")
    return DeviceSpec(match.group(1), indices=indices)


def tf_config_workers() -> int:
    """Workers named in the ``TF_CONFIG`` environment variable (0 where it is unset).

    Raises :class:`ConfigError` for a ``TF_CONFIG`` that is not a valid cluster description.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return 0
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        index = int(config["task"]["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host1:port", '
            f'"host2:port"]}}, "task": {{"type": "worker", "index": 0}}}}; ({exc}).'
        ) from None
    if not isinstance(workers, list) or not workers or not 0 <= index < len(workers):
        raise ConfigError(
            f"TF_CONFIG: task index {index} does not name one of the {len(workers)} worker(s)."
        )
    return len(workers)


@dataclass
class Distribution:
    """The strategy chosen for a training run (``strategy`` is ``None`` on the plain path).

    Examples
    --------
    >>> Distribution(None, "auto", "none", ["CPU:0"]).replicas
    1
    """

    strategy: Any
    setting: str
    name: str
    devices: list[str]
    workers: int = 1
    is_chief: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def replicas(self) -> int:
        """Replicas in sync: each computes ``1 / replicas`` of every batch."""
        return 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync)

    def scope(self) -> contextlib.AbstractContextManager:
        """The strategy's scope (nothing on the plain path): build the model and optimizer here."""
        return contextlib.nullcontext() if self.strategy is None else self.strategy.scope()

    def check_batch(self, batch_size: int) -> None:
        """The global batch must split evenly over the replicas."""
        if batch_size % self.replicas:
            raise ConfigError(
                f"batch size {batch_size} does not split over {self.replicas} devices "
                f"({self.name}); use a multiple of {self.replicas}, e.g. "
                f"{max(self.replicas, batch_size // self.replicas * self.replicas)}."
            )

    def label(self) -> str | None:
        """One line for summaries (``None`` on the plain path)."""
        if self.strategy is None:
            return None
        where = ", ".join(d.split("device:")[-1] for d in self.devices)
        workers = f" on {self.workers} workers" if self.workers > 1 else ""
        return f"{self.name} over {self.replicas} replica(s){workers} ({where})"

    def describe(self, batch_size: int) -> dict[str, Any]:
        """What was used, for the model's record."""
        return {
            "setting": self.setting,
            "strategy": self.name,
            "devices": list(self.devices),
            "replicas": self.replicas,
            "workers": self.workers,
            "chief": self.is_chief,
            "global_batch": int(batch_size),
            "per_replica_batch": int(batch_size) // self.replicas,
            "notes": list(self.notes),
        }


def _ensure_cpu_devices(count: int) -> list[str]:
    """``count`` logical CPU devices, configured now if TensorFlow has not started yet."""
    import tensorflow as tf

    # read the configuration without starting TensorFlow's runtime (listing logical devices would)
    physical = tf.config.list_physical_devices("CPU")
    configured = tf.config.get_logical_device_configuration(physical[0])
    if len(configured or [None]) < count:
        try:
            tf.config.set_logical_device_configuration(
                physical[0], [tf.config.LogicalDeviceConfiguration()] * count
            )
        except RuntimeError:
            raise ConfigError(
                f"devices asks for {count} CPU devices, but TensorFlow already runs with "
                f"{len(configured or [None])}; logical CPU devices (for tests: they share the same "
                "cores) can only be set up in a fresh process, e.g. `cytounet train --devices "
                "cpu:0,1`."
            ) from None
    logical = tf.config.list_logical_devices("CPU")
    return [d.name for d in logical]


def _resolve(spec: DeviceSpec) -> tuple[str, list[str]]:
    """The kind of strategy (``none``, ``one``, ``mirrored``, ``workers``) and its devices."""
    import tensorflow as tf

    # physical, not logical, devices: listing logical ones would start the runtime, after which
    # neither a multi-worker strategy nor logical CPU devices can be set up
    gpus = []
    if spec.kind != "cpu":
        gpus = [f"/gpu:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]
    if spec.kind == "workers" or (spec.kind == "auto" and tf_config_workers() > 1):
        if tf_config_workers() == 0:
            raise ConfigError(
                "devices='workers' needs the TF_CONFIG environment variable describing the "
                "cluster (see the docs page 'Large data and clusters')."
            )
        return "workers", []
    if spec.kind == "auto":
        return ("mirrored", gpus) if len(gpus) > 1 else ("none", [])
    if spec.kind == "cpu":
        indices = spec.indices or (0,)
        available = _ensure_cpu_devices(max(indices) + 1)
        return ("mirrored" if len(indices) > 1 else "one"), [available[i] for i in indices]
    if not gpus and spec.kind == "gpu":
        raise ConfigError("devices asks for GPUs, but TensorFlow sees none; use 'auto' or 'cpu'.")
    pool = gpus
    if not gpus:  # 'all' or a count where there is no GPU: the CPU devices
        pool = _ensure_cpu_devices(spec.count or 1)
    indices = spec.indices or tuple(range(spec.count or len(pool)))
    if max(indices) >= len(pool):
        raise ConfigError(
            f"devices asks for device(s) {list(indices)}, but only {len(pool)} are visible "
            f"({', '.join(pool)})."
        )
    chosen = [pool[i] for i in indices]
    return ("mirrored" if len(chosen) > 1 else "one"), chosen


def select_distribution(devices: Any = "auto") -> Distribution:
    """Choose (and create, once per process) the strategy for a ``devices`` setting.

    Raises
    ------
    ConfigError
        For a bad setting, devices that are not there, or a strategy that cannot start in this
        process (multi-worker training and logical CPU devices need a fresh process).

    Examples
    --------
    >>> select_distribution("auto").strategy is None  # on a machine with at most one GPU
    True
    """
    import tensorflow as tf

    spec = parse_devices(devices)
    kind, chosen = _resolve(spec)
    if kind == "none":
        return Distribution(None, str(devices), "none", [])
    key = (kind, *chosen)
    if key not in _STRATEGIES:
        try:
            if kind == "workers":
                _STRATEGIES[key] = tf.distribute.MultiWorkerMirroredStrategy()
            elif kind == "one":
                _STRATEGIES[key] = tf.distribute.OneDeviceStrategy(chosen[0])
            else:
                _STRATEGIES[key] = tf.distribute.MirroredStrategy(chosen)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"Cannot start training on devices={devices!r}: {exc}. Multi-worker training "
                "must start in a fresh process (the command line, not the napari widget)."
            ) from None
    strategy = _STRATEGIES[key]
    resolver = getattr(strategy, "cluster_resolver", None)
    workers, chief = 1, True
    if kind == "workers" and resolver is not None:
        workers = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
        chief = resolver.task_type in (None, "chief") or (
            resolver.task_type == "worker" and resolver.task_id == 0
        )
    names = list(getattr(strategy.extended, "worker_devices", chosen))
    name = {"workers": "MultiWorkerMirroredStrategy", "one": "OneDeviceStrategy"}.get(
        kind, "MirroredStrategy"
    )
    return Distribution(strategy, str(devices), name, names, workers=workers, is_chief=chief)


def select_for_training(devices: Any, batch_size: int, jit: bool) -> tuple[Distribution, bool]:
    """The distribution for a training run, and whether XLA stays on (off under a strategy).

    Examples
    --------
    >>> select_for_training("auto", 16, False)[1]
    False
    """
    distribution = select_distribution(devices)
    distribution.check_batch(batch_size)
    if jit and distribution.strategy is not None:
        note = "XLA off: a tf.distribute strategy's variables cannot be compiled into one program"
        distribution.notes.append(note)
        _log.info("%s (%s).", note, distribution.name)
        jit = False
    return distribution, jit


@contextlib.contextmanager
def synchronized_batch_norm(model: Any, on: bool = True) -> Iterator[None]:
    """BatchNorm layers use whole-batch statistics across replicas while this is active."""
    import keras

    layers = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    saved = [la.synchronized for la in layers]
    for la in layers:
        la.synchronized = on
    try:
        yield
    finally:
        for la, value in zip(layers, saved):
            la.synchronized = value


def distributed_train_step(
    distribution: Distribution,
    model: Any,
    optimizer: Any,
    loss_fn: Callable[[Any, Any], Any],
    dice_fn: Callable[[Any, Any], Any],
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """A training step over the replicas that matches one step on one device.

    Takes global batches ``(x, y)``, gives each replica its slice and returns the loss and Dice
    of the whole batch. Built once; BatchNorm statistics are synchronised while it is traced.

    Examples
    --------
    >>> step = distributed_train_step(dist, model, opt, loss, dice)  # doctest: +SKIP
    >>> loss, dice = step(x, y)  # doctest: +SKIP
    """
    import tensorflow as tf

    strategy, n = distribution.strategy, distribution.replicas

    def replica_step(x: Any, y: Any) -> tuple[Any, Any]:
        context = tf.distribute.get_replica_context()
        # explicit placement (the inputs too, through tf.identity): in a tf.function, a
        # multi-worker strategy's collectives need tensors with a device ("destinations can
        # not be empty" otherwise)
        replica = tf.get_static_value(context.replica_id_in_sync_group)
        local = strategy.extended.worker_devices  # this worker's devices, in replica order
        with tf.device(local[int(replica or 0) % len(local)]):
            return _replica_body(context, tf.identity(x), tf.identity(y))

    def _replica_body(context: Any, x: Any, y: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            # the loss of the whole batch on every replica; all_gather's gradient gives each
            # replica back the slice of its own predictions, and the optimizer sums over replicas
            whole_pred = context.all_gather(pred, axis=0)
            whole_y = context.all_gather(y, axis=0)
            value = loss_fn(whole_y, whole_pred)
            total = value + tf.add_n(model.losses) if model.losses else value
            scaled = total / n
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return value, dice_fn(whole_y, whole_pred)

    @tf.function(reduce_retracing=True)
    def step(x: Any, y: Any) -> tuple[Any, Any]:
        with synchronized_batch_norm(model):
            loss, dice = strategy.run(replica_step, args=(x, y))
        # every replica computed the same whole-batch values: take the first one here
        return strategy.experimental_local_results(loss)[0], strategy.experimental_local_results(
            dice
        )[0]

    def split(batch: Any) -> Any:
        per = int(batch.shape[0]) // n

        def part(context: Any) -> Any:
            start = context.replica_id_in_sync_group * per
            return batch[start : start + per]

        return strategy.experimental_distribute_values_from_function(part)

    def run(x: Any, y: Any) -> tuple[Any, Any]:
        if int(x.shape[0]) % n:
            distribution.check_batch(int(x.shape[0]))
        return step(split(x), split(y))

    return run
