"""Training on several devices: the ``devices`` setting, Mirrored and MultiWorkerMirrored.

Logical CPU devices and a multi-worker strategy must be set up before TensorFlow starts, and
this pytest process has usually started it already, so those runs happen in fresh processes
(``tests/devices_run.py``): the same tiny BatchNorm UNet, seed, data and global batch of 4,
trained for 3 steps on one device and on two.

Tolerance: Adam moves every weight by about the learning rate (1e-2) per step; the two runs
differ only in the order of float32 sums (measured: at most 3e-5 after 3 steps and BatchNorm
recalibration). ``atol=1e-4`` (1% of one step) is well above that noise and far below what a
wrong split gives: per-replica losses and BatchNorm statistics (no ``all_gather``, no
``synchronized``) moved weights by 6e-2 from the single-device run in the same setting.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_cytounet.core.config import TrainingConfig
from napari_cytounet.core.devices import parse_devices, select_distribution, tf_config_workers
from napari_cytounet.core.errors import ConfigError

RUN = Path(__file__).parent / "devices_run.py"
SRC = Path(__file__).resolve().parents[1] / "src"
ATOL = 1e-4


def run_fresh(tmp_path: Path, name: str, *args: str, env: dict | None = None, wait=True):
    """``devices_run.py`` in a fresh Python process; returns the process (or the results)."""
    out = tmp_path / f"{name}.npz"
    full_env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    full_env.update({"PYTHONPATH": str(SRC), "CYTOUNET_JIT": "0", **(env or {})})
    proc = subprocess.Popen(
        [sys.executable, str(RUN), str(out), *args],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return (proc, out) if not wait else finish(proc, out)


def finish(proc: subprocess.Popen, out: Path, timeout: float = 300):
    """Wait for a run; its weights (one list per run) and summaries."""
    log, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, log[-3000:]
    summaries = json.loads(out.with_suffix(".json").read_text())
    data = np.load(out)
    weights = [
        [data[f"w{k}_{i}"] for i in range(len([n for n in data.files if n.startswith(f"w{k}_")]))]
        for k in range(len(summaries))
    ]
    return weights, summaries


def max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b) > 0
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


# ---------------------------------------------------------------------------
# the setting


@pytest.mark.parametrize(
    ("value", "kind", "indices", "count"),
    [
        ("auto", "auto", None, None),
        ("CPU", "cpu", None, None),
        ("gpu:0, 1", "gpu", (0, 1), None),
        ("cpu:0,1", "cpu", (0, 1), None),
        ("all", "all", None, None),
        ("2", "count", None, 2),
        (3, "count", None, 3),
        ("workers", "workers", None, None),
    ],
)
def test_parse_devices(value, kind, indices, count):
    spec = parse_devices(value)
    assert (spec.kind, spec.indices, spec.count) == (kind, indices, count)


@pytest.mark.parametrize(
    "value", ["gpus", "gpu:", "gpu:a", "0", "-1", "gpu:0,0", "tpu:0", True, 1.5]
)
def test_bad_devices_value_is_a_clear_config_error(value):
    with pytest.raises(ConfigError, match="devices"):
        parse_devices(value)
    with pytest.raises(ConfigError, match="devices"):
        TrainingConfig(devices=value)


def test_config_keeps_devices_in_its_dict():
    cfg = TrainingConfig(devices="gpu:0,1")
    assert TrainingConfig.from_dict(cfg.to_dict()).devices == "gpu:0,1"
    assert TrainingConfig.from_dict({}).devices == "auto"  # records from before the setting


def test_tf_config_is_checked(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert tf_config_workers() == 0
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"index": 1}}')
    assert tf_config_workers() == 2
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {"index": 3}}')
    with pytest.raises(ConfigError, match="task index 3"):
        tf_config_workers()
    monkeypatch.setenv("TF_CONFIG", "not json")
    with pytest.raises(ConfigError, match="TF_CONFIG must be JSON"):
        tf_config_workers()


def test_devices_that_are_not_there_are_clear_errors(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has GPUs")
    tf.constant(1.0)  # TensorFlow is running: logical CPU devices can no longer be added
    assert select_distribution("auto").strategy is None  # one device: the plain path
    with pytest.raises(ConfigError, match="sees none"):
        select_distribution("gpu")
    with pytest.raises(ConfigError, match="fresh process"):
        select_distribution("cpu:0,5")
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        select_distribution("workers")
    one = select_distribution("cpu")
    assert one.name == "OneDeviceStrategy" and one.replicas == 1


# ---------------------------------------------------------------------------
# two logical CPU devices, and two worker processes


@pytest.fixture(scope="module")
def mirrored_runs(tmp_path_factory):
    """Two devices first (they must be set up before TensorFlow starts), then one; then a
    batch that does not split over two devices."""
    return run_fresh(
        tmp_path_factory.mktemp("mirrored"), "runs", "float32", "cpu:0,1", "auto", "cpu:0,1#3"
    )


def test_two_devices_train_like_one(mirrored_runs):
    (two, one, _), (two_summary, one_summary, _) = mirrored_runs
    assert max_difference(two, one) < ATOL
    np.testing.assert_allclose(two_summary["loss"], one_summary["loss"], rtol=1e-5)


def test_the_record_names_the_strategy_and_devices(mirrored_runs):
    _, (two, one, _) = mirrored_runs
    record = two["extra"]["devices"]
    assert record["strategy"] == "MirroredStrategy" and record["setting"] == "cpu:0,1"
    assert record["replicas"] == 2 and record["per_replica_batch"] * 2 == record["global_batch"]
    assert [d.split("device:")[-1] for d in record["devices"]] == ["CPU:0", "CPU:1"]
    assert "MirroredStrategy over 2 replica(s)" in two["extra"]["device"] in two["summary"]
    assert one["extra"]["devices"]["strategy"] == "none"
    # BatchNorm synchronises only while training: the saved model has plain layers
    assert two["saved_config"] and not any(two["saved_config"])


def test_a_batch_that_does_not_split_is_a_clear_error(mirrored_runs):
    odd = mirrored_runs[1][2]
    assert odd["type"] == "ConfigError"
    assert "batch size 3 does not split over 2 devices" in odd["error"]
    assert "multiple of 2" in odd["error"]


def test_multi_worker_training_from_tf_config(tmp_path):
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}

    def tf_config(index: int) -> str:
        return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})

    procs = [
        run_fresh(
            tmp_path,
            f"worker{i}",
            "float32",
            "workers",
            "cpu",
            wait=False,
            env={"TF_CONFIG": tf_config(i)},
        )
        for i in range(2)
    ]
    results = [finish(proc, out) for proc, out in procs]
    for (multi, one), (summary, _) in results:
        assert max_difference(multi, one) < ATOL  # each worker holds the same weights...
        record = summary["extra"]["devices"]
        assert record["strategy"] == "MultiWorkerMirroredStrategy"
        assert (record["workers"], record["replicas"]) == (2, 2)
    assert max_difference(results[0][0][0], results[1][0][0]) < 1e-6  # ...as the other
    # worker 0 is the chief (it saves the model), worker 1 is not
    assert [r[1][0]["extra"]["devices"]["chief"] for r in results] == [True, False]


def test_mixed_bfloat16_on_two_devices(tmp_path):
    """bfloat16 keeps 8 bits of mantissa: runs match to bfloat16 rounding, not float32's."""
    (two, one), (two_summary, one_summary) = run_fresh(
        tmp_path, "bf16", "mixed_bfloat16", "cpu:0,1", "auto"
    )
    assert two_summary["extra"]["precision"] == "mixed_bfloat16"
    np.testing.assert_allclose(two_summary["loss"], one_summary["loss"], rtol=1e-2)
    assert max_difference(two, one) < 0.2  # a handful of lr=1e-2 steps from bf16 rounding
