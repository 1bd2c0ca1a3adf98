"""`import napari_cytounet` is cheap and free of TensorFlow, Keras and napari."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys

import pytest

import napari_cytounet

HEAVY = ("tensorflow", "keras", "napari", "torch", "jax")

PROBE = """
import json, sys, time
t0 = time.perf_counter()
import napari_cytounet
seconds = time.perf_counter() - t0
{extra}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(json.dumps({{"seconds": seconds, "heavy": heavy}}))
"""


def probe(extra: str = "") -> dict:
    code = PROBE.format(extra=extra, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_is_light():
    result = probe()
    print(f"import napari_cytounet: {result['seconds'] * 1000:.0f} ms")  # benchmarks/import_time.py
    assert result["heavy"] == []  # no TensorFlow, Keras, napari, torch or jax: the slow imports


def test_light_core_modules_do_not_import_tensorflow():
    modules = [
        "config",
        "errors",
        "events",
        "data",
        "precision",
        "model",
        "losses",
        "bundle",
        "training",
        "predict",
        "records",
    ]
    extra = "\n".join(f"import napari_cytounet.core.{m}" for m in modules)
    extra += "\nimport napari_cytounet.engine, napari_cytounet.engine.jobs"
    extra += "\nnapari_cytounet.UNetConfig, napari_cytounet.TrainingConfig, napari_cytounet.train"
    assert probe(extra)["heavy"] == []


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(napari_cytounet._LAZY[name]) is not None


@pytest.mark.parametrize("name", sorted(napari_cytounet._LAZY))
def test_lazy_attributes_resolve(name):
    if not _module_exists(name):
        pytest.skip(f"{napari_cytounet._LAZY[name]} is not written yet")
    value = getattr(napari_cytounet, name)
    module = importlib.import_module(napari_cytounet._LAZY[name])
    assert value is getattr(module, name)
    assert name in dir(napari_cytounet)


def test_unknown_attribute_and_dir():
    with pytest.raises(AttributeError, match="no_such_thing"):
        napari_cytounet.no_such_thing  # noqa: B018
    assert dir(napari_cytounet) == sorted(napari_cytounet.__all__)
    assert "__version__" in napari_cytounet.__all__
    assert isinstance(napari_cytounet.__version__, str) and napari_cytounet.__version__
