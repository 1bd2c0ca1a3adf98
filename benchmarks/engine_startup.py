"""The engine process: start-up (TensorFlow's import in it), first prediction, warm prediction.

A fresh engine is started ``--repeats`` times from this (TensorFlow-free) process, as napari's
process does on its first job: the script times the start, the first prediction with a saved
default-size model (its load included, as in "Predict with a model file"), and a second
prediction with the same model (warm: nothing rebuilt). It also checks that this process never
imported TensorFlow.

Usage::

    python benchmarks/engine_startup.py [--repeats 3] [--size 512]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _results import emit


def _once(model: Path, image, engine) -> dict[str, float]:
    t0 = time.perf_counter()
    events = list(engine.run("load", path=model))  # starts the engine, then loads
    ready = next(e for e in events if type(e).__name__ == "EngineReady").seconds
    bundle = events[-1].bundle
    args = {"path": None, "image": image, "channel_axis": None, "params": {}}
    list(engine.run("predict", bundle=bundle, **args))
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    list(engine.run("predict", bundle=bundle, **args))
    warm = time.perf_counter() - t1
    engine.shutdown()
    return {"start": ready, "first_prediction": first, "warm_prediction": warm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON line here")
    args = parser.parse_args()
    import numpy as np

    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.synthetic import synthetic_cells
    from napari_cytounet.engine import Engine
    from napari_cytounet.engine.jobs import TrainingRequest

    image, labels = synthetic_cells((args.size, args.size), seed=0)
    engine = Engine()
    request = TrainingRequest(
        images=[image],
        labels=[labels],
        names=["cells"],
        config=TrainingConfig(epochs=1, steps_per_epoch=1, batch_size=2, validation_patches=0),
        unet=UNetConfig(),  # the default model (depth 4, 16 filters)
    )
    bundle = list(engine.run("train", request=request))[-1].bundle
    model = Path(tempfile.mkdtemp()) / "default.keras"
    list(engine.run("save", bundle=bundle, path=model))
    engine.shutdown()
    runs = [_once(model, np.asarray(image), engine) for _ in range(args.repeats)]
    median = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    emit(
        {
            "benchmark": "engine_startup",
            "image": [args.size, args.size],
            "repeats": args.repeats,
            "median_seconds": median,
            "runs": [{k: round(v, 2) for k, v in r.items()} for r in runs],
            "tensorflow_in_this_process": "tensorflow" in sys.modules,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
