"""Train a tiny UNet on given ``devices`` in a fresh process (logical devices, TF_CONFIG).

Used by ``tests/test_devices.py``: logical CPU devices and multi-worker strategies must be set
up before TensorFlow starts, which in the pytest process it already has.

Usage::

    python tests/devices_run.py OUT.npz PRECISION DEVICES[#BATCH] [DEVICES[#BATCH] ...]

For each DEVICES it trains the same tiny model (same seed, data and global batch) and writes
its final weights (``w{run}_{i}``) to OUT.npz and the record's ``extra`` and losses to
OUT.json; a :class:`~napari_cytounet.core.errors.CytoUNetError` is written there as
``{"error": message}``.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def train_once(devices: str, precision: str, batch: int = 4) -> tuple[list[np.ndarray], dict]:
    """Three steps of a tiny BatchNorm UNet on ``devices``; the weights and a summary."""
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.synthetic import synthetic_cells
    from napari_cytounet.core.training import train_model

    images, masks = zip(*(synthetic_cells((64, 64), seed=s) for s in (1, 2)))
    config = TrainingConfig(
        epochs=1, steps_per_epoch=3, patch_size=32, batch_size=batch, learning_rate=1e-2, seed=0,
        precision=precision, validation_patches=4, devices=devices,
    )  # fmt: skip
    unet = UNetConfig(depth=2, base_filters=4)
    result = train_model(
        list(images), list(masks), config, unet, validation=([images[0]], [masks[0]]), jit=False
    )
    bundle = result.bundle
    summary = {
        "extra": bundle.extra,
        "loss": result.history["loss"],
        "summary": result.summary,
        "saved_config": [
            la.get("config", {}).get("synchronized")
            for la in bundle.model.get_config()["layers"]
            if la.get("class_name") == "BatchNormalization"
        ],
    }
    return [np.asarray(w) for w in bundle.model.get_weights()], summary


def main() -> None:
    """Run every DEVICES given on the command line; write OUT.npz and OUT.json."""
    from napari_cytounet.core.errors import CytoUNetError

    out, precision, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
    arrays: dict[str, np.ndarray] = {}
    summaries = []
    for k, devices in enumerate(runs):
        try:
            devices, _, batch = devices.partition("#")  # "cpu:0,1#3": batch size 3
            weights, summary = train_once(devices, precision, int(batch or 4))
        except CytoUNetError as exc:
            summaries.append({"error": str(exc), "type": type(exc).__name__})
            continue
        arrays.update({f"w{k}_{i}": w for i, w in enumerate(weights)})
        summaries.append(summary)
    np.savez(out, **arrays)
    with open(out.replace(".npz", ".json"), "w") as f:
        json.dump(summaries, f, default=str)


if __name__ == "__main__":
    main()
