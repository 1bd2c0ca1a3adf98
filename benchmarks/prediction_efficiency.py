"""Prediction efficiency and memory.

Efficiency = FLOPs per pixel of the model x pixels per second / the machine's
float32 matrix-multiply rate (numpy ``float32`` matmul, measured in the same
run). 1.0 would mean the convolutions run as fast as a large dense matmul.

Memory: peak resident memory (RSS) of a fresh process that loads a saved model
and predicts an 8192 x 8192 uint16 image with the default tiling.

Usage::

    python benchmarks/prediction_efficiency.py [--size 2048] [--big 8192]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import emit, peak_rss_gib
from large_data import tf_matmul_peak


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    """Best-of float32 matmul FLOP/s with numpy."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ a
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def _peak_rss_child(model_path: str, size: int, tile: int) -> None:
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.predict import predict_probabilities

    bundle = load_bundle(model_path)
    image = np.random.default_rng(0).integers(0, 4096, (size, size), dtype=np.uint16)
    t0 = time.perf_counter()
    prob = predict_probabilities(bundle, image, tile_size=tile)
    seconds = time.perf_counter() - t0
    peak = peak_rss_gib()
    print(
        json.dumps(
            {
                "peak_rss_gib": round(peak, 2),
                "seconds": round(seconds, 1),
                "shape": list(prob.shape),
                "dtype": str(prob.dtype),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--big", type=int, default=8192)
    parser.add_argument("--tile-size", type=int, default=None)
    parser.add_argument("--filters", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="tiles per batch")
    parser.add_argument(
        "--jit", choices=("auto", "on", "off"), default="auto", help="XLA for the prediction"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON line here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _peak_rss_child(args.child[0], int(args.child[1]), int(args.child[2]))
        return

    from napari_cytounet.core.bundle import ModelBundle, save_bundle
    from napari_cytounet.core.config import UNetConfig
    from napari_cytounet.core.model import build_unet, flops_per_pixel
    from napari_cytounet.core.precision import device_description, resolve_precision, use_xla
    from napari_cytounet.core.predict import DEFAULT_TILE_SIZE, TilePlan, predict_probabilities

    tile = args.tile_size or DEFAULT_TILE_SIZE
    jit = {"auto": None, "on": True, "off": False}[args.jit]
    options = {"tile_size": tile, "jit": jit}
    if args.batch_size:
        options["batch_size"] = args.batch_size
    unet = UNetConfig(base_filters=args.filters) if args.filters else UNetConfig()
    precision = resolve_precision("auto")
    bundle = ModelBundle(model=build_unet(unet, dtype_policy=precision), unet=unet)
    image = np.random.default_rng(0).integers(0, 4096, (args.size, args.size), dtype=np.uint16)
    predict_probabilities(bundle, image[:512, :512], **options)  # compile
    predict_probabilities(bundle, image, **options)  # warm up at this tile shape
    times = []
    for _ in range(5):  # best of 5, as the matmul peak it is divided by
        t0 = time.perf_counter()
        predict_probabilities(bundle, image, **options)
        times.append(time.perf_counter() - t0)
    seconds = min(times)
    pixels_per_second = image.size / seconds
    rate = matmul_rate()
    peak = tf_matmul_peak()
    peak_here = peak["bfloat16" if precision == "mixed_bfloat16" else "float32"]
    fpp = flops_per_pixel(unet)
    plan = TilePlan(args.size, args.size, unet.divisor, tile, None)

    with tempfile.TemporaryDirectory() as tmp:
        path = save_bundle(bundle, Path(tmp) / "model.keras")
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(path), str(args.big), str(tile)],
            capture_output=True,
            text=True,
            check=True,
        )
        big = json.loads(child.stdout.strip().splitlines()[-1])

    result = {
        "benchmark": "prediction_efficiency",
        "unet": unet.to_dict(),
        "precision": precision,
        "image": [args.size, args.size],
        "tile_size": tile,
        "tiles": plan.n_tiles,
        "computed_pixels_ratio": round(plan.computed_pixels / image.size, 3),
        "flops_per_pixel": round(fpp),
        "megapixels_per_second": round(pixels_per_second / 1e6, 3),
        "achieved_gflops": round(pixels_per_second * fpp / 1e9, 1),
        "numpy_float32_matmul_gflops": round(rate / 1e9, 1),
        "efficiency": round(pixels_per_second * fpp / rate, 3),
        "tf_matmul_gflops": peak,
        "efficiency_vs_tf_peak": round(pixels_per_second * fpp / 1e9 / peak_here, 3),
        "batch_size": options.get("batch_size"),
        "jit": args.jit,
        "big_image": [args.big, args.big],
        "big_image_peak_rss_gib": big["peak_rss_gib"],
        "big_image_seconds": big["seconds"],
        "xla": use_xla(),
        "device": device_description(),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
