"""Choosing float32 or mixed bfloat16 for the hardware at hand.

``mixed_bfloat16`` keeps float32 weights but computes in bfloat16. It is only
faster where the hardware has native bfloat16 arithmetic: x86 CPUs with
AVX512-BF16 or AMX, and GPUs of compute capability 8.0 (Ampere) or newer.
Elsewhere TensorFlow emulates it, which is several times *slower* than float32
(measured: 8x slower on an AVX2-only CPU), so ``"auto"`` picks float32 there.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

from .errors import ConfigError

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """Feature flags of the CPU (Linux ``/proc/cpuinfo``); empty where unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bf16() -> bool:
    """True if the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def cpu_bf16_is_faster() -> bool:
    """True if bfloat16 beats float32 on this CPU: it has AMX-BF16 tile units.

    AVX512-BF16 alone is not enough. Measured on a 2-core AVX512-BF16 CPU without AMX
    (2026-12-02): TensorFlow's 4096^2 matmul ran at 161 GFLOP/s in bfloat16 against 305 in
    float32, training the default UNet at 16.6 patches/s against 24.3, and prediction at
    0.87 Mpx/s against 1.26. With AMX the same matmul reached 844 GFLOP/s against 484.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return "amx_bf16" in cpu_flags()


@functools.lru_cache(maxsize=1)
def gpu_has_bf16() -> bool:
    """True if TensorFlow sees a GPU with native bfloat16 (compute capability >= 8.0)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        if capability and tuple(capability) >= (8, 0):
            return True
    return False


@functools.lru_cache(maxsize=1)
def has_gpu() -> bool:
    """True if TensorFlow sees at least one GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def use_xla(jit: bool | None = None) -> bool:
    """Whether to compile training and prediction steps with XLA.

    ``jit`` wins when given; then the environment variable ``CYTOUNET_JIT``
    (``1``/``0``); by default XLA is used on GPUs only. On CPUs TensorFlow's
    oneDNN kernels beat XLA's: measured on a 2-core AVX512-BF16 CPU, XLA made
    training 2x slower in float32 (7.7 vs 15.5 patches/s of 128 px) and 4x
    slower in bfloat16, and prediction 1.5x slower in bfloat16.
    """
    if jit is not None:
        return bool(jit)
    env = os.environ.get("CYTOUNET_JIT", "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    return has_gpu()


def resolve_precision(requested: str = "auto") -> str:
    """Turn ``"auto"``, ``"float32"`` or ``"mixed_bfloat16"`` into a Keras dtype policy name.

    The environment variable ``CYTOUNET_PRECISION`` overrides ``"auto"``.

    Examples
    --------
    >>> resolve_precision("float32")
    'float32'
    """
    if requested == "auto":
        requested = os.environ.get("CYTOUNET_PRECISION", "auto")
    if requested in ("float32", "mixed_bfloat16"):
        return requested
    if requested != "auto":
        raise ConfigError(
            f"precision must be 'auto', 'float32' or 'mixed_bfloat16', got {requested!r}."
        )
    if has_gpu():
        return "mixed_bfloat16" if gpu_has_bf16() else "float32"
    return "mixed_bfloat16" if cpu_bf16_is_faster() else "float32"


def device_description() -> str:
    """One line naming the device TensorFlow computes on (for summaries and records)."""
    if has_gpu():
        import tensorflow as tf

        gpu = tf.config.list_physical_devices("GPU")[0]
        name = tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")
        return f"GPU ({name})"
    return f"CPU ({os.cpu_count()} cores{', bf16' if cpu_has_bf16() else ''})"
