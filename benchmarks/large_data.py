"""Large data: zarr in, zarr out, memory, a local dask.distributed cluster, and throughput.

Measures, with the default model (UNetConfig(): depth 4, 16 filters, precision "auto"):

* ``peak``: TensorFlow's own matmul rate on this machine (4096^2, float32 and bfloat16,
  oneDNN), the peak that prediction is compared with in the precision it uses;
* ``in_memory``: ``predict_probabilities`` on a ``--size``^2 image of blobs: Mpx/s,
  GFLOP/s and efficiency against that peak, for a few tile sizes and batch sizes (the
  levers), ``segment`` (the same plus thresholding and hole filling), and the network
  alone on the same tiles (what normalisation and blending cost);
* ``zarr``: the same image in a zarr store, like for like: its probabilities through
  ``lazy_probabilities`` against in-memory ``predict_probabilities``, and its segmentation
  into a zarr store (``predict_to_zarr``, threads) against in-memory ``segment`` (and,
  as recorded before 2026-12-08, against in-memory probabilities). The four jobs run in
  ``ROUNDS`` interleaved rounds; each ratio is given from the best times and as the
  median of the rounds' own ratios (``*_median_of_rounds``), which drift cancels in;
* ``stack``: a ``--planes`` x ``--plane``^2 uint16 zarr stack segmented into a zarr output
  in a fresh process: seconds and peak RSS;
* ``rss_vs_size``: peak RSS of fresh processes for stacks of ``--sizes`` GB on disk;
* ``cluster``: the stack through ``dask scheduler`` + ``dask worker`` processes started
  from the command line on 127.0.0.1, with 1 then 2 workers: identical masks, seconds,
  throughput ratio and each worker's peak RSS.

Everything is written to a temporary folder that is removed at the end. The machine's
load (``os.getloadavg``) is recorded, since other work skews the timings.

Usage::

    python benchmarks/large_data.py                 # quick: 2048^2 planes, small sizes
    python benchmarks/large_data.py --full --json benchmarks/results/large_data.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import emit, peak_rss_gib

SRC = str(Path(__file__).resolve().parents[1] / "src")


ROUNDS = 9  # interleaved rounds of the four zarr-section jobs


def _log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    return env


def tf_matmul_peak(n: int = 4096, repeats: int = 5) -> dict:
    """Best-of matmul GFLOP/s of TensorFlow (oneDNN) in float32 and bfloat16."""
    import tensorflow as tf

    out = {}
    for dtype in ("float32", "bfloat16"):
        a = tf.cast(tf.random.stateless_uniform((n, n), seed=(0, 1)), dtype)
        fn = tf.function(lambda x: tf.linalg.matmul(x, x))
        fn(a).numpy()
        best = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(a).numpy()
            best = max(best, 2 * n**3 / (time.perf_counter() - t0))
        out[dtype] = round(best / 1e9, 1)
    return out


def blob_plane(size: int, rng: np.random.Generator) -> np.ndarray:
    """A uint16 plane of cell-like blobs on noise (about one blob per 200^2 px)."""
    yy, xx = np.ogrid[:size, :size]
    plane = rng.normal(800, 60, (size, size)).astype(np.float32)
    for cy, cx in rng.integers(0, size, (size * size // 40000, 2)):
        r = int(rng.integers(8, 20))
        y0, x0 = max(cy - r, 0), max(cx - r, 0)
        sub = plane[y0 : cy + r, x0 : cx + r]
        disk = (yy[y0 : cy + r] - cy) ** 2 + (xx[:, x0 : cx + r] - cx) ** 2 <= r * r
        sub[disk] += 900
    return np.clip(plane, 0, 65535).astype(np.uint16)


def write_stack(path: Path, planes: int, size: int, chunk: int = 1024) -> None:
    """A uint16 zarr stack of :func:`blob_plane` planes, written plane by plane."""
    import zarr

    z = zarr.create_array(
        store=str(path), shape=(planes, size, size), chunks=(1, chunk, chunk), dtype="uint16"
    )
    rng = np.random.default_rng(0)
    for p in range(planes):
        z[p] = blob_plane(size, rng)


def _child(model: str, source: str, output: str, scheduler: str) -> None:
    """Run in a fresh process: segment ``source`` into ``output``; print seconds and peak RSS."""
    from napari_cytounet.core.lazy import resolve_model
    from napari_cytounet.core.zarr_io import open_zarr_image, predict_to_zarr

    array, _ = open_zarr_image(source)
    t0 = time.perf_counter()
    resolve_model(model)  # load once (cached): timed apart from the prediction
    t1 = time.perf_counter()
    predict_to_zarr(model, array, output, scheduler=scheduler, mask_value=255)
    seconds = time.perf_counter() - t1
    kib_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rss = {"rss": peak_rss_gib(), "rss_children": kib_children / 2**20}
    print(json.dumps({"seconds": seconds, "load_seconds": t1 - t0, **rss}))


def run_child(model: Path, source: Path, output: Path, scheduler: str = "threads") -> dict:
    cmd = [sys.executable, __file__, "--child", str(model), str(source), str(output), scheduler]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_memory(bundle, image: np.ndarray, tiles: list[int], batches: list[int]) -> list[dict]:
    """Mpx/s of predict_probabilities and of segment per (tile, batch), and of the network."""
    from napari_cytounet.core.predict import (
        TilePlan,
        predict_probabilities,
        segment,
        tile_predictor,
    )

    size = image.shape[0]
    rows = []
    for tile in tiles:
        for batch in batches:
            kw = {"tile_size": tile, "batch_size": batch}
            _log(f"in memory, tile {tile}, batch {batch}")
            predict_probabilities(bundle, image, **kw)  # compile and warm up
            seconds = min(_timed(predict_probabilities, bundle, image, **kw) for _ in range(5))
            seg = min(_timed(segment, bundle, image, **kw) for _ in range(5))
            plan = TilePlan(size, size, bundle.unet.divisor, tile, None)
            fn = tile_predictor(bundle)
            x = np.zeros((batch, plan.tile_h, plan.tile_w, 1), np.float32)
            calls = -(-plan.n_tiles // batch)
            fn(x)
            net = min(_timed(_calls, fn, x, calls) for _ in range(5))
            rows.append(
                {
                    "tile_size": tile,
                    "batch_size": batch,
                    "tiles": plan.n_tiles,
                    "seconds": round(seconds, 2),
                    "megapixels_per_second": round(size * size / seconds / 1e6, 3),
                    "segment_seconds": round(seg, 2),
                    "segment_megapixels_per_second": round(size * size / seg / 1e6, 3),
                    "network_only_seconds": round(net, 2),
                }
            )
    return rows


def _calls(fn, x: np.ndarray, calls: int) -> None:
    for _ in range(calls):
        fn(x)


def _timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def _worker_peak_rss_gib() -> float:
    """``VmHWM`` of a worker process (see ``_results.peak_rss_gib``), self-contained: dask
    sends this function by value, and the workers cannot import the benchmarks' modules."""
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:")) / 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(model: Path, stack: Path, tmp: Path, reference, memory_limit: str) -> dict:
    """Scheduler + 1 then 2 workers from the command line; seconds, identity, worker RSS."""
    import zarr
    from distributed import Client

    from napari_cytounet.core.zarr_io import open_zarr_image, predict_to_zarr

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    sched = ["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    worker = ["dask", "worker", address, "--nworkers", "1", "--nthreads", "1"]
    worker += ["--memory-limit", memory_limit, "--no-dashboard"]
    procs = [subprocess.Popen(sched, env=_env(), stderr=subprocess.DEVNULL)]
    result: dict = {"memory_limit": memory_limit}
    array, _ = open_zarr_image(stack)
    try:
        time.sleep(3)
        for n in (1, 2):
            procs.append(subprocess.Popen(worker, env=_env(), stderr=subprocess.DEVNULL))
            with Client(address, timeout="30s") as client:
                client.wait_for_workers(n, timeout=120)
                warm = zarr.create_array(
                    store=str(tmp / f"warm{n}.zarr"), shape=(n, 256, 256), dtype="uint16"
                )
                predict_to_zarr(model, warm, tmp / f"warm{n}-out.zarr", scheduler=client)
                out = tmp / f"cluster{n}.zarr"
                seconds = _timed(
                    predict_to_zarr, model, array, out, scheduler=client, mask_value=255
                )
                rss = client.run(_worker_peak_rss_gib)
            same = bool(np.array_equal(zarr.open_array(str(out))[:], reference))
            _log(f"cluster, {n} worker(s): {seconds:.1f} s, identical {same}")
            result[f"workers_{n}"] = {
                "seconds": round(seconds, 1),
                "identical_to_single_process": same,
                "worker_peak_rss_gib": [round(v, 2) for v in rss.values()],
            }
        ratio = result["workers_1"]["seconds"] / result["workers_2"]["seconds"]
        result["throughput_ratio_2_vs_1"] = round(ratio, 2)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    return result


def on_disk(tmp: Path, bundle, args, best: dict, plane: int, sizes, eff, result: dict) -> None:
    """The zarr, stack, RSS-series and cluster measurements, in ``tmp``."""
    import zarr

    from napari_cytounet.core.bundle import save_bundle
    from napari_cytounet.core.lazy import lazy_probabilities
    from napari_cytounet.core.predict import predict_probabilities, segment
    from napari_cytounet.core.zarr_io import predict_to_zarr

    model = save_bundle(bundle, tmp / "model.keras")
    image = blob_plane(args.size, np.random.default_rng(0))
    zin = zarr.create_array(
        store=str(tmp / "img.zarr"), shape=image.shape, chunks=(1024, 1024), dtype="uint16"
    )
    zin[:] = image
    kw = {"tile_size": best["tile_size"], "batch_size": best["batch_size"]}
    runs = itertools.count()
    jobs = {  # like for like, interleaved so that the machine's drift hits all alike
        "probabilities_in_memory": lambda: predict_probabilities(bundle, image, **kw),
        "probabilities_zarr": lambda: lazy_probabilities(model, zin, **kw).compute(),
        "segment_in_memory": lambda: segment(bundle, image, **kw),
        "segment_zarr": lambda: predict_to_zarr(model, zin, tmp / f"z{next(runs)}.zarr", **kw),
    }
    for job in jobs.values():
        job()  # warm up
    seconds = {name: [] for name in jobs}
    for _ in range(ROUNDS):
        for name, job in jobs.items():
            seconds[name].append(_timed(job))
    mpx = {name: args.size**2 / min(times) / 1e6 for name, times in seconds.items()}

    def paired(zarr_job: str, memory_job: str) -> float:
        # the median over rounds of each round's ratio: a round's jobs run back to back,
        # so the machine's drift (which moved the best times by 10-20% within an hour
        # here) mostly cancels within the round
        ratios = [m / z for z, m in zip(seconds[zarr_job], seconds[memory_job])]
        return round(float(np.median(ratios)), 3)

    result["zarr"] = {
        **kw,
        "repeats": ROUNDS,
        "megapixels_per_second": round(mpx["segment_zarr"], 3),
        "efficiency_vs_tf_peak": eff(mpx["segment_zarr"]),
        **{f"{name}_megapixels_per_second": round(v, 3) for name, v in mpx.items()},
        "probabilities_ratio_to_in_memory": round(
            mpx["probabilities_zarr"] / mpx["probabilities_in_memory"], 3
        ),
        "segment_ratio_to_in_memory_segment": round(
            mpx["segment_zarr"] / mpx["segment_in_memory"], 3
        ),
        "ratio_to_in_memory": round(mpx["segment_zarr"] / mpx["probabilities_in_memory"], 3),
        "probabilities_ratio_median_of_rounds": paired(
            "probabilities_zarr", "probabilities_in_memory"
        ),
        "segment_ratio_median_of_rounds": paired("segment_zarr", "segment_in_memory"),
    }
    _log(f"zarr: {result['zarr']}")
    stack = tmp / "stack.zarr"
    write_stack(stack, args.planes, plane)
    _log(f"stack {args.planes} x {plane}^2 written")
    one = run_child(model, stack, tmp / "stack-out.zarr")
    gb = args.planes * plane * plane * 2 / 1e9
    result["stack"] = {
        "shape": [args.planes, plane, plane],
        "gb": round(gb, 3),
        "seconds": round(one["seconds"], 1),
        "model_load_seconds": round(one["load_seconds"], 1),
        "megapixels_per_second": round(gb / 2 * 1e3 / one["seconds"], 3),
        "peak_rss_gib": round(one["rss"], 2),
    }
    _log(f"stack: {result['stack']}")
    reference = zarr.open_array(str(tmp / "stack-out.zarr"))[:]
    if "series" not in args.skip:
        series = []
        for size_gb in sizes:
            n = max(1, round(size_gb * 1e9 / (plane * plane * 2)))
            path = tmp / f"series-{n}.zarr"
            write_stack(path, n, plane)
            r = run_child(model, path, tmp / f"series-{n}-out.zarr")
            series.append(
                {
                    "planes": n,
                    "gb": round(n * plane * plane * 2 / 1e9, 3),
                    "seconds": round(r["seconds"], 1),
                    "peak_rss_gib": round(r["rss"], 2),
                }
            )
            _log(f"series: {series[-1]}")
            for done in (path, tmp / f"series-{n}-out.zarr"):
                shutil.rmtree(done, ignore_errors=True)
        result["rss_vs_size"] = series
    if "cluster" not in args.skip:
        result["cluster"] = cluster(model, stack, tmp, reference, args.memory_limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="3 x 6144^2 stack, 0.25-2 GB series")
    parser.add_argument("--size", type=int, default=2048, help="in-memory test image side")
    parser.add_argument("--plane", type=int, default=None, help="stack plane side")
    parser.add_argument("--planes", type=int, default=3)
    parser.add_argument("--sizes", type=float, nargs="*", default=None, help="GB per stack")
    parser.add_argument("--tiles", type=int, nargs="*", default=None, help="default: the default")
    parser.add_argument("--batches", type=int, nargs="*", default=[1])
    parser.add_argument("--memory-limit", default="2GiB")
    parser.add_argument("--skip", nargs="*", default=[], help="parts to skip, e.g. cluster")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    plane = args.plane or (6144 if args.full else 2048)
    sizes = (
        args.sizes if args.sizes is not None else ([0.25, 0.5, 1, 2] if args.full else [0.05, 0.1])
    )

    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.config import UNetConfig
    from napari_cytounet.core.model import build_unet, flops_per_pixel
    from napari_cytounet.core.precision import device_description, resolve_precision

    load = [round(x, 2) for x in os.getloadavg()]
    unet = UNetConfig()
    precision = resolve_precision("auto")
    import keras

    keras.utils.set_random_seed(0)  # the masks (and so the post-processing) are the same each run
    bundle = ModelBundle(model=build_unet(unet, dtype_policy=precision), unet=unet)
    fpp = flops_per_pixel(unet)
    peak = tf_matmul_peak()
    peak_used = peak["bfloat16" if "bfloat16" in precision else "float32"]
    result: dict = {
        "benchmark": "large_data",
        "unet": unet.to_dict(),
        "precision": precision,
        "device": device_description(),
        "load_average_start": load,
        "tf_matmul_gflops": peak,
        "flops_per_pixel": round(fpp),
    }

    def eff(mpx: float) -> float:
        return round(mpx * 1e6 * fpp / (peak_used * 1e9), 3)

    from napari_cytounet.core.config import DEFAULT_TILE_SIZE

    image = blob_plane(args.size, np.random.default_rng(0))
    rows = in_memory(bundle, image, args.tiles or [DEFAULT_TILE_SIZE], args.batches)
    for row in rows:
        row["efficiency_vs_tf_peak"] = eff(row["megapixels_per_second"])
        net_mpx = args.size**2 / row["network_only_seconds"] / 1e6
        row["network_only_efficiency"] = eff(net_mpx)
    result["in_memory"] = rows
    best = max(rows, key=lambda r: r["megapixels_per_second"])

    with tempfile.TemporaryDirectory(prefix="cytounet-large-") as tmp_text:
        on_disk(Path(tmp_text), bundle, args, best, plane, sizes, eff, result)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    emit(result, args.json)


if __name__ == "__main__":
    main()
