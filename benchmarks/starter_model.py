"""The starter model's answer before any stroke: Dice of the model alone, per set.

What a new :class:`~napari_cytounet.core.interactive.InteractiveSession` shows before it
has trained on anything: the shipped starter model (or any ``.keras`` bundle given with
``--model``, several to compare them in the same run) applied to

- every BBBC030 *validation* image (the starter never trained on them), and
- synthetic images of each look (``core.looks``; the seeds of ``benchmarks/interactive.py``,
  which the starter never saw, but the same generator as its synthetic training images),
- synthetic images drawn with settings ``core.looks`` never uses (``shifted_look``: blurrier,
  noisier, unevenly lit, other cell sizes), which neither the starter nor anything else in
  the project was trained or tuned on (since 2026-12-08 the starter's randomised DIC covers
  ``shifted_dic``'s settings; ``shifted_dic-bias`` is the DIC still held out),

with 1 view and with 8 flipped/rotated views (``core.views``), masks at probability 0.5.

Usage (from the repository root)::

    python benchmarks/starter_model.py --data ../shared/data/bbbc030 \
        --json benchmarks/results/starter_model.json
    python benchmarks/starter_model.py --model old.keras --model new.keras --data ...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _results import emit
from shifted_looks import SHIFTED_LOOKS, shifted_look


def _sets(args) -> dict[str, tuple[list, list, list]]:
    """The image sets to score: ``{name: (images, masks, names)}``."""
    from napari_cytounet.core.looks import LOOKS, styled_cells
    from napari_cytounet.core.pairs import read_pairs

    sets = {}
    if args.data is not None:
        split = args.data / "validation"
        pairs = read_pairs(split / "images", split / "masks")
        if not len(pairs):
            sys.exit(f"error: no image/mask pairs under {split}")
        masks = [m > 0 for m in pairs.masks]  # images: grey already (core.io_read)
        sets["bbbc030_validation"] = (list(pairs.images), masks, list(pairs.names))
    for prefix, draw, first_seed in (("synthetic", styled_cells, 10_000),
                                     ("shifted", shifted_look, 20_000)):  # fmt: skip
        for look in SHIFTED_LOOKS:
            if prefix == "synthetic" and look not in LOOKS:
                continue  # a held-out look only (dic-bias)
            drawn = [
                draw((768, 768), look, seed=first_seed + 17 * k) for k in range(args.synthetic)
            ]
            names = [f"{prefix}-{look}-{k}" for k in range(args.synthetic)]
            sets[f"{prefix}_{look}"] = ([d[0] for d in drawn], [d[1] > 0 for d in drawn], names)
    return sets


def score_model(path: Path | None, sets: dict, views: tuple[int, ...]) -> dict:
    """Mean (and per-image) Dice of one model on every set, for each number of views."""
    from napari_cytounet.core.bundle import load_bundle
    from napari_cytounet.core.interactive import STARTER_PATH
    from napari_cytounet.core.metrics import dice
    from napari_cytounet.core.predict import predict_probabilities

    path = STARTER_PATH if path is None else path
    bundle = load_bundle(path)
    out = {"model": str(path), "created": bundle.created, "sets": {}}
    for name, (images, masks, names) in sets.items():
        per_view = {}
        for n_views in views:
            t0 = time.perf_counter()
            scores = [
                float(dice(predict_probabilities(bundle, image, views=n_views) > 0.5, mask))
                for image, mask in zip(images, masks)
            ]
            per_view[str(n_views)] = {
                "mean_dice": round(float(np.mean(scores)), 4),
                "min_dice": round(float(np.min(scores)), 4),
                "at_least_0.95": int(np.sum(np.array(scores) >= 0.95)),
                "per_image": dict(zip(names, (round(s, 4) for s in scores))),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(f"{path.name} {name} views={n_views}: mean Dice {np.mean(scores):.4f}",
                  file=sys.stderr, flush=True)  # fmt: skip
        out["sets"][name] = per_view
    return out


def main() -> None:
    """Parse the arguments, score each model, emit the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, action="append", help="a .keras bundle (repeatable; default: starter)"
    )
    parser.add_argument("--data", type=Path, help="BBBC030 folder (its validation/ is scored)")
    parser.add_argument("--synthetic", type=int, default=6, help="synthetic images per look")
    parser.add_argument("--views", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--json", type=Path, help="also write the JSON line here")
    args = parser.parse_args()
    for path in args.model or []:
        if not path.is_file():
            parser.error(f"--model {path}: no such file")
    sets = _sets(args)
    models = [score_model(path, sets, tuple(args.views)) for path in (args.model or [None])]
    emit({"benchmark": "starter_model", "views": args.views, "models": models}, args.json)


if __name__ == "__main__":
    main()
