"""The interactive loop, played by a robot annotator, beside a random-forest baseline.

Round 0: the robot paints a stroke inside 30% of the cells and a dozen background
lines (0.2-0.5% of the pixels) and calls ``InteractiveSession.update(seconds=5)``.
Each correction round paints one stroke in each of the 5 largest wrong regions of
the current segmentation and calls ``update(seconds=20)``. The baseline is what
ilastik/APOC users get: ``multiscale_basic_features`` of the raw image and a
``RandomForestClassifier`` fitted on the same strokes (its own wrong regions are
corrected, so each method is corrected where it errs). For each round: annotated %,
learner seconds (wall time of the call), Dice on the image, mean Dice on other
images of the set.

The session applies the strokes to the mask it returns (``honour_strokes``: a
background stroke across an object removes it); ``model_dice`` is the UNet's own
mask without them. So that the comparison stays fair, the forest is played twice:
as ilastik/APOC show it (``forest``), and with the same stroke edits
(``forest_with_edits``).

Examples (from the repository root)::

    python benchmarks/interactive.py --images DIR/images --masks DIR/masks --image cho01
    python benchmarks/interactive.py --synthetic fluorescent
    python benchmarks/interactive.py --synthetic shifted-dic   # a look nothing was trained on
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import emit
from scipy import ndimage as ndi
from shifted_looks import SHIFTED_LOOKS

ROUND_SECONDS = (5.0, 20.0, 20.0)
#: The robot's first strokes: foreground strokes stop beyond this fraction of the pixels,
#: and the 12 background lines cover about this one.
FOREGROUND_FRACTION = 0.0025
BACKGROUND_FRACTION = 0.0015


def _line(shape, y, x, theta, length, region):
    """A 3-pixel-wide line through (y, x) at angle theta, clipped to ``region``."""
    from skimage.draw import line

    dy, dx = 0.5 * length * np.sin(theta), 0.5 * length * np.cos(theta)
    rr, cc = line(round(y - dy), round(x - dx), round(y + dy), round(x + dx))
    rr = np.concatenate([rr + o for o in (-1, 0, 1) for _ in (-1, 0, 1)])
    cc = np.concatenate([cc + o for _ in (-1, 0, 1) for o in (-1, 0, 1)])
    ok = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
    rr, cc = rr[ok], cc[ok]
    keep = region[rr, cc]
    return rr[keep], cc[keep]


def first_strokes(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """Strokes inside 30% of the cells and 12 background lines (scribbles 0/1/2)."""
    from skimage.measure import regionprops

    rng = np.random.default_rng(seed)
    cells, n = ndi.label(truth)
    out = np.zeros(truth.shape, np.uint8)
    inner = ndi.binary_erosion(truth, iterations=2)
    props = regionprops(cells)
    for p in rng.choice(props, max(1, round(0.3 * n)), replace=False):
        if np.count_nonzero(out) > FOREGROUND_FRACTION * truth.size:
            break  # many small cells: keep the strokes to 0.2-0.5% of the pixels
        region = inner & (cells == p.label)
        if not region.any():
            continue
        y, x = p.centroid
        rr, cc = _line(truth.shape, y, x, np.pi / 2 - p.orientation,
                       0.6 * p.axis_major_length, region)  # fmt: skip
        out[rr, cc] = 2
    far = ~ndi.binary_dilation(truth, iterations=5)
    ys, xs = np.nonzero(far)
    length = BACKGROUND_FRACTION * truth.size / (12 * 3)
    for _ in range(12):
        k = int(rng.integers(ys.size))
        rr, cc = _line(truth.shape, ys[k], xs[k], rng.uniform(0, np.pi), length, far)
        out[rr, cc] = 1
    return out


def correct(strokes: np.ndarray, pred: np.ndarray, truth: np.ndarray, n: int = 5) -> np.ndarray:
    """One stroke in each of the ``n`` largest wrong regions, with the true class."""
    from skimage.measure import regionprops

    out = strokes.copy()
    wrong, _ = ndi.label(pred != truth)
    props = sorted(regionprops(wrong), key=lambda p: p.area, reverse=True)[:n]
    for p in props:
        region = wrong == p.label
        core = ndi.binary_erosion(region, iterations=1)
        region = core if core.any() else region
        dist = ndi.distance_transform_edt(region)
        y, x = np.unravel_index(np.argmax(dist), dist.shape)
        rr, cc = _line(truth.shape, y, x, np.pi / 2 - p.orientation,
                       max(3.0, 0.6 * p.axis_major_length), region)  # fmt: skip
        out[rr, cc] = np.where(truth[rr, cc], 2, 1)
    return out


def load_set(args) -> tuple[list, list, list]:
    """Images, masks and names of the set."""
    if args.synthetic:
        from shifted_looks import shifted_look

        from napari_cytounet.core.looks import styled_cells

        look, draw, first = args.synthetic, styled_cells, 10_000
        if look.startswith("shifted-"):  # held out: settings the starter never saw
            look, draw, first = look.removeprefix("shifted-"), shifted_look, 20_000
        pairs = [draw((args.size, args.size), look, seed=first + 17 * k)
                 for k in range(args.others + 1)]  # fmt: skip
        names = [f"{args.synthetic}-{k}" for k in range(len(pairs))]
        return [p[0] for p in pairs], [p[1] > 0 for p in pairs], names
    from napari_cytounet.core.io import pair_folders
    from napari_cytounet.core.pairs import read_pairs

    names = pair_folders(args.images, args.masks).names
    if args.image not in names:
        sys.exit(f"error: --image {args.image} is not among the paired images ({len(names)})")
    order = [args.image] + [name for name in names if name != args.image]
    pairs = read_pairs(args.images, args.masks, names=order[: args.others + 1])
    return pairs.images, [mask > 0 for mask in pairs.masks], pairs.names


def session_settings(pairs: list[str]) -> Any:
    """``SessionSettings`` with ``NAME=VALUE`` overrides (typed as the defaults are)."""
    import dataclasses

    from napari_cytounet.core.errors import ConfigError
    from napari_cytounet.core.interactive import SessionSettings

    defaults, changes = SessionSettings(), {}
    fields = {f.name for f in dataclasses.fields(SessionSettings)}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in fields:
            sys.exit(f"error: --set {pair}: expected NAME=VALUE with NAME one of {sorted(fields)}")
        kind = type(getattr(defaults, name))
        try:
            changes[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError:
            sys.exit(f"error: --set {pair}: {name} takes a {kind.__name__}")
    try:
        return dataclasses.replace(defaults, **changes)
    except ConfigError as exc:
        sys.exit(f"error: --set: {exc}")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def play_session(images, masks, seconds, seed, settings=None) -> list[dict]:
    """The robot annotator through InteractiveSession."""
    from napari_cytounet.core.events import PreviewReady, RoundFinished
    from napari_cytounet.core.interactive import InteractiveSession
    from napari_cytounet.core.metrics import dice

    t_build = time.perf_counter()
    session = InteractiveSession(settings=settings)
    rows, strokes, mask = [], first_strokes(masks[0], seed), None
    for k, budget in enumerate(seconds):
        if k:
            strokes = correct(strokes, mask, masks[0])
        t0 = time.perf_counter()
        previews = {}
        for event in session.iter_update(images[0], strokes, budget):
            if isinstance(event, PreviewReady):
                previews[event.source] = (round(event.seconds, 2), dice(event.mask, masks[0]))
            if isinstance(event, RoundFinished):
                finished = event
        wall = time.perf_counter() - t0
        if k == 0:
            wall_first = time.perf_counter() - t_build
        mask = finished.mask
        model_dice = dice(finished.probabilities > 0.5, masks[0])
        others = [dice(session.segment(im), m) for im, m in zip(images[1:], masks[1:])]
        rows.append({
            "round": k, "budget": budget, "annotated_percent": 100 * float(np.mean(strokes > 0)),
            "seconds": round(wall, 2), "dice": round(dice(mask, masks[0]), 4),
            "model_dice": round(model_dice, 4),
            "others_dice": round(float(np.mean(others)), 4) if others else None,
            "adopted": finished.adopted, "steps": finished.steps,
            "views": session.rounds[-1]["views"],
            "score": _rounded(session.rounds[-1]["score"]),
            "previous_score": _rounded(session.rounds[-1]["previous_score"]),
            "anchor_agreement": _rounded(session.rounds[-1]["anchor_agreement"]),
            "previews": {s: {"seconds": v[0], "dice": round(v[1], 4)} for s, v in previews.items()},
        })  # fmt: skip
        print(f"session round {k}: {rows[-1]}", file=sys.stderr, flush=True)
    rows[0]["seconds_with_session_start"] = round(wall_first, 2)
    return rows


def forest_mask(forest, image: np.ndarray, strokes: np.ndarray, edits: bool) -> np.ndarray:
    """The forest's mask of ``image``; with ``edits``, the strokes applied as the session does."""
    if not edits:
        return forest.predict(image)
    from napari_cytounet.core.stroke_edits import honour_strokes

    prob = forest.predict_proba(image)
    return honour_strokes(prob > 0.5, prob, strokes)


def play_forest(images, masks, rounds, seed, feats_others, edits=False) -> list[dict]:
    """The same robot with a raw-feature random forest (the ilastik/APOC baseline).

    ``edits=True`` applies the strokes to its masks as the session does.
    """
    from napari_cytounet.core.metrics import dice
    from napari_cytounet.core.pixel_classifier import PixelClassifier

    rows, strokes, mask = [], first_strokes(masks[0], seed), None
    forest = PixelClassifier(normalise=False, n_estimators=100, max_depth=None, seed=seed)
    for k in range(rounds):
        if k:
            strokes = correct(strokes, mask, masks[0])
        t0 = time.perf_counter()
        forest.fit(images[0], strokes)
        mask = forest_mask(forest, images[0], strokes, edits)
        wall = time.perf_counter() - t0
        others = [dice(forest.predict(im, f), m)
                  for im, f, m in zip(images[1:], feats_others, masks[1:])]  # fmt: skip
        rows.append({
            "round": k, "annotated_percent": 100 * float(np.mean(strokes > 0)),
            "seconds": round(wall, 2), "dice": round(dice(mask, masks[0]), 4),
            "others_dice": round(float(np.mean(others)), 4) if others else None,
        })  # fmt: skip
        name = "forest with edits" if edits else "forest"
        print(f"{name} round {k}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    """Parse the arguments, play both learners, emit the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="folder of images")
    parser.add_argument("--masks", type=Path, help="folder of masks (paired by name)")
    parser.add_argument("--image", default="cho01", help="name of the image to annotate")
    looks = ("fluorescent", "dic", "phase", "bright", *(f"shifted-{k}" for k in SHIFTED_LOOKS))
    parser.add_argument("--synthetic", choices=looks,
                        help="use synthetic cells of this look instead of folders (shifted-*: "
                        "drawn with settings the starter model never saw)")  # fmt: skip
    parser.add_argument("--size", type=int, default=768, help="synthetic image side")
    parser.add_argument("--others", type=int, default=5, help="other images to score")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="SessionSettings to change, e.g. kept_fraction=1.0")  # fmt: skip
    parser.add_argument("--skip-forest", action="store_true", help="the session only")
    parser.add_argument("--json", type=Path, help="also write the JSON line here")
    args = parser.parse_args()
    settings = session_settings(args.set)
    if not args.synthetic and (args.images is None or args.masks is None):
        parser.error("give --images and --masks, or --synthetic LOOK")

    t_import = time.perf_counter()
    import tensorflow  # noqa: F401  (timed separately: the session imports it on first use)

    import_seconds = time.perf_counter() - t_import
    images, masks, names = load_set(args)
    session = play_session(images, masks, ROUND_SECONDS, args.seed, settings)
    from napari_cytounet.core.pixel_classifier import pixel_features

    forest = edited = None
    if not args.skip_forest:
        feats = [pixel_features(im, normalise=False) for im in images[1:]]
        forest = play_forest(images, masks, len(ROUND_SECONDS), args.seed, feats)
        edited = play_forest(images, masks, len(ROUND_SECONDS), args.seed, feats, edits=True)
    emit({
        "benchmark": "interactive", "data": args.synthetic or str(args.images),
        "image": names[0], "others": names[1:], "shape": list(masks[0].shape),
        "tensorflow_import_seconds": round(import_seconds, 2), "cpu_count": os.cpu_count(),
        "settings_changed": dict(p.split("=", 1) for p in args.set),
        "session": session, "forest": forest, "forest_with_edits": edited,
    }, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
