"""Choosing float32 or mixed bfloat16."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from napari_cytounet.core.errors import ConfigError
from napari_cytounet.core.precision import (
    cpu_flags,
    cpu_has_bf16,
    device_description,
    has_gpu,
    resolve_precision,
)


def proc_cpuinfo_has_bf16() -> bool:
    """Independent reading of /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return platform.machine().lower() in ("x86_64", "amd64") and bool(
        flags & {"avx512_bf16", "amx_bf16"}
    )


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv("CYTOUNET_PRECISION", raising=False)


@pytest.mark.parametrize("name", ["float32", "mixed_bfloat16"])
def test_explicit_precision_is_kept(name):
    assert resolve_precision(name) == name


@pytest.mark.parametrize("bad", ["float16", "bf16", "", "FLOAT32", None, 32])
def test_bad_precision_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision(bad)


def test_cpu_bf16_detection_matches_proc_cpuinfo():
    assert cpu_has_bf16() == proc_cpuinfo_has_bf16()
    if Path("/proc/cpuinfo").exists():
        assert cpu_flags()  # Linux always lists some flags
        assert ("avx512_bf16" in cpu_flags()) <= cpu_has_bf16()


def proc_cpuinfo_has_amx_bf16() -> bool:
    """Independent reading of /proc/cpuinfo: AMX-BF16 tile units."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return platform.machine().lower() in ("x86_64", "amd64") and "amx_bf16" in text.split()


def test_auto_picks_bf16_on_cpus_only_with_amx():
    """AVX512-BF16 without AMX ran bfloat16 slower than float32 (see cpu_bf16_is_faster)."""
    if has_gpu():
        pytest.skip("GPU present: auto follows the GPU's compute capability")
    expected = "mixed_bfloat16" if proc_cpuinfo_has_amx_bf16() else "float32"
    assert resolve_precision("auto") == expected
    assert resolve_precision() == expected
    if not proc_cpuinfo_has_bf16():  # e.g. an AVX2-only machine
        assert resolve_precision("auto") == "float32"


@pytest.mark.parametrize("forced", ["float32", "mixed_bfloat16"])
def test_environment_overrides_auto_only(monkeypatch, forced):
    monkeypatch.setenv("CYTOUNET_PRECISION", forced)
    assert resolve_precision("auto") == forced
    other = "float32" if forced == "mixed_bfloat16" else "mixed_bfloat16"
    assert resolve_precision(other) == other  # an explicit choice wins


def test_bad_environment_value_is_a_config_error(monkeypatch):
    monkeypatch.setenv("CYTOUNET_PRECISION", "half")
    with pytest.raises(ConfigError, match="half"):
        resolve_precision("auto")


def test_device_description():
    text = device_description()
    assert text.startswith("GPU (") if has_gpu() else text.startswith("CPU (")
    assert ("bf16" in text) == (cpu_has_bf16() and not has_gpu())
