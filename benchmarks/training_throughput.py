"""Training throughput: the cytounet pipeline vs a plain float32 Keras ``fit`` on numpy patches.

Both train the same UNet (the default architecture) on patches of the same size
and batch size cut from BBBC030. The baseline is what a Keras user writes first:
``model.compile(Adam, binary cross-entropy)`` and ``model.fit(x, y)`` on
pre-cut numpy arrays, in float32. The cytounet figure is measured inside
:func:`napari_cytounet.core.training.train` (patch sampling, augmentation,
``tf.data`` prefetch, BCE+Dice loss, XLA-compiled step, mixed precision where
the hardware has it), excluding the first batches (compilation) from both.

Efficiency: the pipeline's FLOP rate (3 x the forward convolutions per patch: forward, and the
backward pass's gradients for inputs and weights) divided by TensorFlow's own matmul peak on this
machine (4096^2, oneDNN) in the precision used (``efficiency_vs_tf_peak``; the float32 run is
divided by the float32 peak).

Usage::

    python benchmarks/training_throughput.py [--patch-size 128] [--batch-size 16] [--steps 40]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _results import emit
from large_data import tf_matmul_peak

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CYTOUNET_BBBC030", ROOT.parent / "shared" / "data" / "bbbc030"))
WARMUP = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON line here")
    args = parser.parse_args()

    import keras

    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.data import PatchSampler, prepare_examples
    from napari_cytounet.core.events import BatchEnd, TrainingFinished
    from napari_cytounet.core.model import build_unet, flops_per_pixel
    from napari_cytounet.core.pairs import read_pairs
    from napari_cytounet.core.precision import device_description, use_xla
    from napari_cytounet.core.training import train

    names = sorted(p.stem for p in (DATA / "train" / "images").glob("*.png"))[:6]
    pairs = read_pairs(DATA / "train" / "images", DATA / "train" / "masks", names=names)
    images, masks = pairs.images, pairs.masks
    ps, bs, steps = args.patch_size, args.batch_size, args.steps
    unet = UNetConfig()

    # --- baseline: plain float32 Keras fit on numpy patches -------------------------------
    sampler = PatchSampler(prepare_examples(images, masks), ps, seed=0)
    x, y = sampler.sample(bs * (steps + WARMUP))
    y = y[..., :1]
    keras.utils.set_random_seed(0)
    model = build_unet(unet, dtype_policy="float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    model.fit(x[: bs * WARMUP], y[: bs * WARMUP], batch_size=bs, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(x[bs * WARMUP :], y[bs * WARMUP :], batch_size=bs, epochs=1, verbose=0)
    baseline = bs * steps / (time.perf_counter() - t0)
    del model

    # --- cytounet pipeline -----------------------------------------------------------------
    def pipeline(precision: str) -> tuple[float, str]:
        config = TrainingConfig(
            epochs=1,
            steps_per_epoch=steps + WARMUP,
            patch_size=ps,
            batch_size=bs,
            precision=precision,
            validation_patches=0,
        )
        marks = {}
        used = precision
        for event in train(images, masks, config, unet):
            if isinstance(event, BatchEnd) and event.batch in (WARMUP, WARMUP + steps):
                marks[event.batch] = event.elapsed
            elif isinstance(event, TrainingFinished):
                used = event.bundle.extra["precision"]
        return bs * steps / (marks[WARMUP + steps] - marks[WARMUP]), used

    ours, precision = pipeline(args.precision)
    result = {
        "benchmark": "training_throughput",
        "patch_size": ps,
        "batch_size": bs,
        "steps_timed": steps,
        "baseline_keras_fit_float32_patches_per_s": round(baseline, 2),
        "cytounet_patches_per_s": round(ours, 2),
        "cytounet_precision": precision,
        "speedup": round(ours / baseline, 2),
        "xla": use_xla(),
    }
    if precision != "float32":  # what the same pipeline does in float32, for the record
        ours32, _ = pipeline("float32")
        result["cytounet_float32_patches_per_s"] = round(ours32, 2)
        result["speedup_float32"] = round(ours32 / baseline, 2)
    peak = tf_matmul_peak()
    flops_per_patch = 3 * flops_per_pixel(unet) * ps * ps  # forward + backward (2x forward)
    result["tf_matmul_gflops"] = peak
    result["training_gflops_per_patch"] = round(flops_per_patch / 1e9, 3)
    runs = [(ours, precision)]
    if "cytounet_float32_patches_per_s" in result:
        runs.append((result["cytounet_float32_patches_per_s"], "float32"))
    for rate, used in runs:
        name = "bfloat16" if "bfloat16" in used else "float32"
        achieved = rate * flops_per_patch / 1e9
        result[f"achieved_gflops_{name}"] = round(achieved, 1)
        result[f"efficiency_vs_tf_peak_{name}"] = round(achieved / peak[name], 3)
    result["device"] = device_description()
    emit(result, args.json)


if __name__ == "__main__":
    main()
