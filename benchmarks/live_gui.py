"""The live loop as a user feels it: from the click in napari to a useful mask, beside a forest.

A real napari window (run under ``xvfb-run``) with the Train UNet widget. The robot annotator
of ``benchmarks/interactive.py`` paints its first strokes into a Labels layer while the user
would be painting (``--paint-seconds``, during which the engine starts in the background, as
it does when the widget opens), then clicks **Live**. The clock runs from the click to each
answer the widget writes into the segmentation layer. Each correction round paints one stroke
in each of the 5 largest wrong regions into the same layer, with no click: the clock runs from
the paint to the first answer that learned from it. Beside it, in the same run and the same
process, a random forest on multiscale filter features of the raw image (what ilastik and
APOC fit) learns from the same kind of strokes, corrected where it errs, and is timed from the
"click" to its mask; and again with the stroke edits the live UNet's masks get
(``forest_with_edits``). Screenshots of the window go to ``docs/images/`` with ``--screenshots``.

Examples (from the repository root)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/live_gui.py
    xvfb-run -a python benchmarks/live_gui.py --images DIR/images --masks DIR/masks --image cho01
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _results import emit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Seconds per live round after the first (the widget's "Seconds per round").
ROUND_SECONDS = 4.0
#: Correction rounds after the first answer.
CORRECTIONS = 2


def load(args) -> tuple[np.ndarray, np.ndarray, str]:
    """The image to annotate and its true mask (default: the BBBC030 sample shipped)."""
    from napari_cytounet.core.pairs import read_pairs

    if args.images is None:
        from napari_cytounet.sample_data import SAMPLE_DIR

        pairs = read_pairs(SAMPLE_DIR, SAMPLE_DIR, names=["cho01"])
        return pairs.images[0], pairs.masks[0] > 0, "cho01 (sample)"
    pairs = read_pairs(args.images, args.masks, names=[args.image])
    return pairs.images[0], pairs.masks[0] > 0, args.image


def pump_until(condition, timeout: float) -> float:
    """Process Qt events until ``condition()``; returns the seconds it took."""
    from qtpy.QtWidgets import QApplication

    t0 = time.perf_counter()
    while not condition():
        QApplication.processEvents()
        time.sleep(0.005)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("the live loop did not answer in time")
    return time.perf_counter() - t0


def play_live(viewer, widget, image, truth, args, shots) -> list[dict]:
    """Click Live, then correct twice; the time from each action to its answer."""
    from interactive import correct, first_strokes

    from napari_cytounet.core.metrics import dice

    strokes_layer = viewer.add_labels(np.zeros(truth.shape, np.uint8), name="cho01 strokes")
    widget._image.value = viewer.layers["cho01"]
    widget._labels_layer.value = strokes_layer
    widget._start_from.value = "new"
    widget._mode.value = "scribbles"
    live = widget.live
    live.seconds.value = ROUND_SECONDS
    t_open = time.perf_counter()
    strokes = first_strokes(truth, args.seed)
    pump_until(lambda: time.perf_counter() - t_open > args.paint_seconds, args.paint_seconds + 5)
    strokes_layer.data = strokes
    rows = []
    t_click = time.perf_counter()
    live.start()
    first = pump_until(lambda: "cho01 segmentation" in viewer.layers, 300)
    seg = viewer.layers["cho01 segmentation"]
    rows.append(row("first answer", first, dice(seg.data > 0, truth), strokes))
    settled = pump_until(lambda: live.rounds >= 1, 300) + first
    rows.append(row("round 0 finished", settled, dice(seg.data > 0, truth), strokes))
    shots("live-first-answer")
    for k in range(1, CORRECTIONS + 1):
        strokes = correct(strokes, seg.data > 0, truth)
        strokes_layer.data = strokes
        t_paint = time.perf_counter()
        version = live._version
        pump_until(lambda v=version: live._sent_version >= v and live.runner.running, 300)
        started = live.rounds  # the round that learns from this paint is running now
        pump_until(lambda n=started: live.rounds > n, 300)
        seconds = time.perf_counter() - t_paint
        rows.append(row(f"correction {k}", seconds, dice(seg.data > 0, truth), strokes))
        rows[-1]["adopted"] = bool(live.last_round.adopted)
    shots("live-after-corrections")
    live.stop()
    pump_until(lambda: not live.live and live.button.enabled, 120)
    rows.append({"total_seconds_from_click": round(time.perf_counter() - t_click, 2)})
    return rows


def row(what: str, seconds: float, score: float, strokes: np.ndarray) -> dict:
    """One line of the table (and of stderr, to follow the run)."""
    out = {
        "step": what,
        "seconds": round(seconds, 2),
        "dice": round(float(score), 4),
        "annotated_percent": round(100 * float(np.mean(strokes > 0)), 3),
    }
    print(out, file=sys.stderr, flush=True)
    return out


def play_forest(image, truth, seed, edits: bool = False) -> list[dict]:
    """The ilastik/APOC baseline on the same robot, timed from the 'click' to its mask.

    ``edits=True`` applies the strokes to its masks as the live UNet's are
    (:func:`~napari_cytounet.core.stroke_edits.honour_strokes`).
    """
    from interactive import correct, first_strokes, forest_mask

    from napari_cytounet.core.metrics import dice
    from napari_cytounet.core.pixel_classifier import PixelClassifier

    forest = PixelClassifier(normalise=False, n_estimators=100, max_depth=None, seed=seed)
    strokes, rows, mask = first_strokes(truth, seed), [], None
    for k in range(CORRECTIONS + 1):
        if k:
            strokes = correct(strokes, mask, truth)
        t0 = time.perf_counter()
        forest.fit(image, strokes)
        mask = forest_mask(forest, image, strokes, edits)
        what = ("first answer" if k == 0 else f"correction {k}") + (" with edits" if edits else "")
        rows.append(row(f"forest {what}", time.perf_counter() - t0, dice(mask, truth), strokes))
    return rows


def main() -> None:
    """Open napari, play the live loop and the forest, emit the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="folder of images (default: the sample)")
    parser.add_argument("--masks", type=Path, help="folder of masks, paired by name")
    parser.add_argument("--image", default="cho01", help="name of the image to annotate")
    parser.add_argument(
        "--paint-seconds",
        type=float,
        default=10.0,
        help="seconds the user paints before clicking Live (the engine starts meanwhile)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--screenshots", action="store_true", help="write docs/images/live-*.png")
    parser.add_argument("--json", type=Path, help="also write the JSON line here")
    args = parser.parse_args()

    import napari
    from make_screenshots import save_small_png
    from qtpy.QtCore import Qt

    image, truth, name = load(args)
    viewer = napari.Viewer(title="napari-cytounet", show=True)
    viewer.window.resize(1600, 1000)
    viewer.add_image(image, name="cho01")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-cytounet", "Train UNet")
    viewer.window._qt_window.resizeDocks([dock], [480], Qt.Horizontal)

    def shots(stem: str) -> None:
        if args.screenshots:
            path = ROOT / "docs" / "images" / f"{stem}.png"
            save_small_png(viewer.screenshot(canvas_only=False, flash=False), path)
            print(f"wrote {path}", file=sys.stderr)

    live_rows = play_live(viewer, widget, image, truth, args, shots)
    forest_rows = play_forest(image, truth, args.seed)
    forest_edit_rows = play_forest(image, truth, args.seed, edits=True)
    viewer.close()
    emit(
        {
            "benchmark": "live_gui",
            "image": name,
            "shape": list(truth.shape),
            "paint_seconds": args.paint_seconds,
            "round_seconds": ROUND_SECONDS,
            "live": live_rows,
            "forest": forest_rows,
            "forest_with_edits": forest_edit_rows,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
