"""Make the screenshots of the documentation: real widgets, a real model, real data.

Run it from the repository root under a virtual X server (or on a desktop)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python3 scripts/make_screenshots.py

It opens a napari window, opens the BBBC030v1 samples shipped with the plugin,
drives the widgets the way a user would (the same public methods the GUI tests
use) and captures the whole window after each step:

==========================  ==========================================================
``quality-check.png``       Quality check on an outline-only mask (BBBC030 ``outlines``)
``train-widget.png``        Train UNet on ``cho21`` + mask with a time budget, live plot
``predict-widget.png``      Predict on the held-out image ``cho01``
``correction-before.png``   the prediction, zoomed on a mistake, brush selected
``correction-edited.png``   the same place after a brush and eraser fix
``correction-after.png``    after "Retrain with corrections": corrections layer + new result
``score-widget.png``        Score ``cho01 segmentation`` against ``cho01 mask``; errors layer
``model-widget.png``        Model: the saved model, its history and its training record
==========================  ==========================================================

Everything is seeded, and training is short: a time budget of one minute for the first model
(10 batches per epoch, so that the plot shows several epochs) and three epochs of "Retrain with
corrections" (``--quick``: 24 s and one epoch), about two and a half minutes in all on two CPU
cores. Training runs in the background as in napari, so timings, and with them the exact
curves and numbers, vary a little from run to run. Settings are read from and written to a
temporary folder, so the widgets show their defaults and your own napari-cytounet settings are
left alone. The model is saved to ``--model`` (default: ``cho-cells.keras`` in a
``napari-cytounet-docs`` folder of the temporary directory) and can be used with
``cytounet predict`` afterwards.

All five widgets are docked and shown one at a time; each scrolls inside its dock at the height
of the window.

The outline-only labels of the quality-check screenshot come from the full BBBC030 data set
(``--outlines``, default ``../shared/data/bbbc030/train/outlines/cho21.png`` beside the
repository). When that file
is missing, the script draws the outlines of the shipped ``cho21`` mask instead (the same
kind of labels: a thin line around each cell).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTLINES = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "bbbc030"
    / "train"
    / "outlines"
    / "cho21.png"
)
PLUGIN = "napari-cytounet"
WINDOW = (1500, 950)  # napari window size (width, height)
DOCK_WIDTH = 480
SEED = 0
MAX_BYTES = 400_000  # largest PNG written (they are downscaled/quantised to fit)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Example: xvfb-run -a -s "-screen 0 1600x1000x24" '
        "python3 scripts/make_screenshots.py --quick",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "images",
        help="folder for the PNG files (default: docs/images)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shorter training (24 s + 1 retraining epoch) for a quick check",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="time budget of the first training, in minutes (default 1.0, or 0.4 with --quick)",
    )
    parser.add_argument(
        "--retrain-epochs",
        type=int,
        default=None,
        help="epochs of 'Retrain with corrections' (default 3, or 1 with --quick)",
    )
    parser.add_argument(
        "--outlines",
        type=Path,
        default=DEFAULT_OUTLINES,
        help="an outline-only label image of cho21 for the quality check",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="where to save the trained model (default: a temporary folder)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="NAME",
        help="write only these screenshots (names without .png); the steps before them still run",
    )
    args = parser.parse_args(argv)
    if args.minutes is None:
        args.minutes = 0.4 if args.quick else 1.0
    if args.retrain_epochs is None:
        args.retrain_epochs = 1 if args.quick else 3
    return args


# ----------------------------------------------------------------------------------------------
# Qt helpers


def pump(seconds: float = 0.3) -> None:
    """Process Qt events for ``seconds``."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while True:
        QApplication.processEvents()
        if time.monotonic() >= end:
            break
        time.sleep(0.02)


def wait_until(condition, timeout: float, what: str) -> None:
    """Process Qt events until ``condition()`` is true; fail after ``timeout`` seconds."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        QApplication.processEvents()
        time.sleep(0.02)


class Shooter:
    """Captures the napari window into small PNG files and logs what it wrote."""

    def __init__(self, viewer, out: Path, only: list[str] | None) -> None:
        self.viewer = viewer
        self.out = out
        self.only = set(only) if only else None
        self.written: list[tuple[Path, int]] = []

    def __call__(self, name: str) -> Path | None:
        if self.only is not None and name not in self.only:
            return None
        pump(0.5)
        self._dismiss_toasts()
        pump(0.3)
        path = self.out / f"{name}.png"
        array = self.viewer.screenshot(canvas_only=False, flash=False)
        size = save_small_png(array, path)
        self.written.append((path, size))
        print(f"  wrote {path} ({size / 1000:.0f} kB)", flush=True)
        return path

    def _dismiss_toasts(self) -> None:
        """Close notification pop-ups (they would cover the canvas)."""
        try:
            from napari._qt.dialogs.qt_notification import NapariQtNotification
        except ImportError:  # pragma: no cover - other napari versions
            return
        from qtpy.QtWidgets import QApplication

        for widget in QApplication.topLevelWidgets() + self.viewer.window._qt_window.findChildren(
            NapariQtNotification
        ):
            if isinstance(widget, NapariQtNotification):
                widget.close()


def save_small_png(array, path: Path) -> int:
    """Save an RGB(A) screenshot as an optimised PNG under ``MAX_BYTES``; returns its size."""
    from PIL import Image

    image = Image.fromarray(array).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    width = image.width
    while True:
        candidate = (
            image
            if width == image.width
            else image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        )
        # 256 colours keep text and plots crisp and make the files several times smaller
        candidate = candidate.quantize(colors=256, method=Image.MEDIANCUT, dither=Image.NONE)
        candidate.save(path, optimize=True)
        size = path.stat().st_size
        if size <= MAX_BYTES or width <= 800:
            return size
        width = int(width * 0.9)


# ----------------------------------------------------------------------------------------------
# the story


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cytounet-screenshots-"))
    os.environ["CYTOUNET_SETTINGS_DIR"] = str(work / "settings")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    default_model = Path(tempfile.gettempdir()) / "napari-cytounet-docs" / "cho-cells.keras"
    model_path = args.model or default_model
    model_path.parent.mkdir(parents=True, exist_ok=True)
    random.seed(SEED)

    # napari's process never imports TensorFlow: the widgets train and predict in the engine
    # process (napari_cytounet.engine); training there is seeded by the widget (seed 0).
    import napari
    import numpy as np

    viewer = napari.Viewer(title="napari-cytounet", show=True)
    viewer.window.resize(*WINDOW)
    viewer.theme = "dark"
    pump(1.0)
    shoot = Shooter(viewer, args.out, args.only)
    docks: dict[str, object] = {}

    def show_dock(name: str, width: int = DOCK_WIDTH):
        """Dock (or show again) one widget of the plugin and hide the others."""
        from qtpy.QtCore import Qt

        for other, (dock, _) in docks.items():
            if other != name:
                dock.hide()
        if name not in docks:
            docks[name] = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        dock, widget = docks[name]
        dock.show()
        pump(0.2)
        viewer.window._qt_window.resizeDocks([dock], [width], Qt.Horizontal)
        pump(0.3)
        return widget

    def scroll_to(widget, first, last, margin: int = 6) -> None:
        """Scroll a scrollable dock widget to show ``first`` to ``last`` (or at least ``last``)."""
        from qtpy.QtWidgets import QScrollArea

        area = widget.scroll_area
        if not isinstance(area, QScrollArea):
            return
        inner = area.widget()
        top = first.native.mapTo(inner, first.native.rect().topLeft()).y() - margin
        bottom = last.native.mapTo(inner, last.native.rect().bottomLeft()).y() + margin
        height = area.viewport().height()
        area.verticalScrollBar().setValue(top if bottom - top <= height else bottom - height)
        area.horizontalScrollBar().setValue(0)
        pump(0.2)

    def only_visible(*names: str) -> None:
        for layer in viewer.layers:
            layer.visible = layer.name in names

    # dock every widget once; each is shown on its own below
    for name in ("Quality check", "Train UNet", "Predict", "Score", "Model"):
        show_dock(name)

    # -- the data ------------------------------------------------------------------------------
    print("Opening the BBBC030 samples…", flush=True)
    viewer.open_sample(PLUGIN, "bbbc030")
    viewer.open_sample(PLUGIN, "bbbc030_validation")
    image = viewer.layers["cho21"]
    mask = viewer.layers["cho21 mask"]
    val_image, val_mask = viewer.layers["cho01"], viewer.layers["cho01 mask"]

    # -- 1. the quality check on outline-only labels ----------------------------------------------
    print("Quality check on outline-only labels…", flush=True)
    outlines = read_outlines(args.outlines, np.asarray(mask.data))
    outline_layer = viewer.add_labels(outlines, name="cho21 outlines", opacity=1.0)
    outline_layer.colormap = single_color("#ffd60a")
    only_visible("cho21", "cho21 outlines")
    viewer.layers.selection.active = outline_layer
    check = show_dock("Quality check")
    check._image.value = image
    check._labels_layer.value = outline_layer
    check._mode.value = "dense"
    assert check.check(), "the quality check did not start"
    wait_until(lambda: not check.running, 120, "the quality check")
    assert check.report is not None and check.report.errors, "outlines were not flagged"
    zoom_to_box(viewer, (180, 170, 700, 600), shape=outlines.shape)  # five cells
    shoot("quality-check")
    viewer.layers.remove(outline_layer)

    # -- 2. training with a time budget, validation on the held-out image --------------------------
    print(f"Training for {args.minutes:g} min…", flush=True)
    only_visible("cho21", "cho21 mask")
    viewer.layers.selection.active = mask
    train = show_dock("Train UNet")
    fill_height(viewer, image, 0.4)
    train._image.value = image
    train._labels_layer.value = mask
    train._mode.value = "dense"
    train._val_image.value = val_image
    train._val_labels.value = val_mask
    train._start_from.value = "new"
    train._stop_by.value = "time"
    train._minutes.value = args.minutes
    train._steps.value = 10  # short epochs: more points on the plot of a one-minute run
    assert train.start(), "training did not start"
    budget = args.minutes * 60.0
    # capture while it runs, late enough for the curves to show several epochs
    wait_until(
        lambda: (
            not train.running or (len(train._plot.epoch_x) >= 2 and train._progress.value >= 880)
        ),
        budget + 300,
        "training progress",
    )
    pump(0.6)
    scroll_to(train, train.body[2], train._plot.widget)  # from the 'Add this pair' row to the plot
    shoot("train-widget")
    wait_until(lambda: not train.running, budget + 300, "the end of training")
    result = train.last_result
    assert result is not None, f"training failed: {train._status.value}"
    print(f"  {result.summary}", flush=True)

    # -- 3. predict the held-out image -----------------------------------------------------------
    print("Predicting cho01…", flush=True)
    only_visible("cho01")
    predict = show_dock("Predict")
    predict._image.value = val_image
    predict._source.value = "current"
    assert predict.predict(), "prediction did not start"
    wait_until(lambda: not predict.running, 300, "the prediction")
    segmentation = viewer.layers["cho01 segmentation"]
    segmentation.opacity = 0.5
    only_visible("cho01", "cho01 segmentation")
    viewer.layers.selection.active = segmentation
    viewer.reset_view()
    shoot("predict-widget")

    # -- 4. correct mistakes with the brush and the eraser, then retrain ---------------------------
    print("Correcting and retraining…", flush=True)
    truth = np.asarray(val_mask.data) > 0
    predicted = np.asarray(segmentation.data) > 0
    missed, spurious = pick_mistakes(predicted, truth)
    focus = missed if missed is not None else spurious
    box = focus_box(focus, size=170) if focus is not None else (0, 0, *truth.shape)
    zoom_to_box(viewer, box, shape=truth.shape)
    segmentation.mode = "paint"
    segmentation.brush_size = 15
    segmentation.selected_label = 1
    if focus is not None:
        point_at(viewer, focus)
    shoot("correction-before")
    # what a user does: paint label 1 over the part of the cell the model missed (the brush),
    # erase what is not cell around it and a speck elsewhere (the eraser)
    edited = np.array(segmentation.data, copy=True)
    if missed is not None:
        stroke = brush_stroke(missed, margin=10)
        edited[stroke & truth] = 1
        edited[stroke & ~truth] = 0
        print(f"  brush: painted {int(missed.sum())} missed pixels near {box}", flush=True)
    if spurious is not None:
        edited[spurious] = 0
        print(f"  eraser: erased a speck of {int(spurious.sum())} pixels", flush=True)
    segmentation.data = edited
    segmentation.mode = "erase"
    shoot("correction-edited")
    segmentation.mode = "pan_zoom"
    predict._retrain_epochs.value = args.retrain_epochs
    before = predict.predictions
    assert predict.retrain(), "retraining did not start"
    wait_until(
        lambda: predict.predictions > before and not predict.running,
        600,
        "retraining and the new prediction",
    )
    corrections = viewer.layers["cho01 corrections"]
    corrections.visible = True
    corrections.contour = 2
    corrections.opacity = 1.0
    corrections.colormap = single_color("#ffd60a")
    viewer.layers.selection.active = corrections
    shoot("correction-after")
    print(f"  {predict.last_training.summary}", flush=True)

    # -- 5. score against the hand-made mask ------------------------------------------------------
    print("Scoring…", flush=True)
    corrections.visible = False
    score = show_dock("Score", width=560)
    score._pred.value = segmentation
    score._truth.value = val_mask
    assert score.score(), "scoring did not start"
    wait_until(lambda: not score.running, 120, "scoring")
    errors = viewer.layers["cho01 segmentation errors"]
    errors.opacity = 1.0
    only_visible("cho01", "cho01 segmentation errors")
    viewer.layers.selection.active = errors
    zoom_to_box(viewer, (0, 560, 1032, 1376), shape=truth.shape, zoom=1.0)  # the right part
    shoot("score-widget")
    overall = score.table_data.overall
    print(f"  Dice {overall.dice:.3f}, object F1 {overall.object_f1:.3f}", flush=True)

    # -- 6. save the model; the Model widget ---------------------------------------------------
    print(f"Saving the model to {model_path}…", flush=True)
    model = show_dock("Model")
    assert model.save(model_path), "saving did not start"
    wait_until(lambda: not model.running, 120, "saving the model")
    assert model_path.is_file(), f"the model was not saved to {model_path}"
    model._load_path.value = model_path
    only_visible("cho01", "cho01 segmentation")
    viewer.layers.selection.active = segmentation
    viewer.reset_view()
    shoot("model-widget")

    seconds = time.monotonic() - started
    print(f"Done in {seconds:.0f} s; {len(shoot.written)} screenshot(s) in {args.out}:")
    for path, size in shoot.written:
        print(f"  {path.name:24s} {size / 1000:6.0f} kB")
    print(f"Model: {model_path} (try: cytounet predict {model_path} <images> -o <folder>)")
    viewer.close()
    return 0


# ----------------------------------------------------------------------------------------------
# helpers


def read_outlines(path: Path, mask):
    """Outline-only labels of cho21: the BBBC030 file, or the outlines of the shipped mask."""
    import numpy as np

    if path.is_file():
        import imageio.v3 as iio

        data = np.asarray(iio.imread(path))
        if data.ndim == 3:
            data = data[..., 0]
        print(f"  outlines from {path}", flush=True)
        return (data > 0).astype(np.uint8)
    from scipy import ndimage

    print(f"  {path} not found: drawing the outlines of the cho21 mask instead", flush=True)
    filled = mask > 0
    return (filled & ~ndimage.binary_erosion(filled, iterations=2)).astype(np.uint8)


def single_color(color: str):
    """A labels colormap that draws every nonzero label in ``color``."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={0: "transparent", None: color})


def pick_mistakes(predicted, truth):
    """Two mistakes a user would fix: ``(missed, spurious)`` boolean masks (or ``None``).

    *missed*: the largest part of an annotated cell that the prediction left out (painted
    with the brush). *spurious*: the largest small, isolated blob predicted where there is no
    cell (erased). Whole predicted cells that the hand-made mask lacks are not "fixed": some
    BBBC030 masks miss a cell, and erasing a real cell would teach the model a mistake.
    """
    from scipy import ndimage

    def largest(candidates, keep):
        regions, n = ndimage.label(candidates)
        best, best_size = None, 0
        for i in range(1, n + 1):
            region = regions == i
            size = int(region.sum())
            if size > best_size and keep(region, size):
                best, best_size = region, size
        return best

    near_truth = ndimage.binary_dilation(truth, iterations=3)
    missed = largest(
        ndimage.binary_opening(truth & ~predicted, iterations=2),
        lambda region, size: size >= 40,
    )
    spurious = largest(
        ndimage.binary_opening(predicted & ~truth, iterations=1),
        lambda region, size: size <= 800 and not (region & near_truth).any(),
    )
    if spurious is not None:  # erase a little around it, as an eraser stroke would
        spurious = ndimage.binary_dilation(spurious, iterations=3) & ~truth
    return missed, spurious


def brush_stroke(region, margin: int):
    """The pixels a brush stroke over ``region`` covers: its disc, ``margin`` pixels wider."""
    import numpy as np

    ys, xs = np.nonzero(region)
    cy, cx = ys.mean(), xs.mean()
    radius = np.sqrt(((ys - cy) ** 2 + (xs - cx) ** 2).max()) + margin
    yy, xx = np.ogrid[: region.shape[0], : region.shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def point_at(viewer, region) -> None:
    """Move the mouse pointer over ``region`` so that the brush outline is drawn there."""
    import numpy as np
    from qtpy.QtCore import QPoint
    from qtpy.QtGui import QCursor

    ys, xs = np.nonzero(region)
    canvas = viewer.window._qt_viewer.canvas.native
    cam = camera(viewer)
    cy, cx = cam.center[-2:]
    x = (xs.mean() - cx) * cam.zoom + canvas.width() / 2.0
    y = (ys.mean() - cy) * cam.zoom + canvas.height() / 2.0
    QCursor.setPos(canvas.mapToGlobal(QPoint(int(x), int(y))))
    pump(0.4)


def focus_box(region, size: int) -> tuple[int, int, int, int]:
    """A square box of ``size`` pixels centred on ``region``."""
    import numpy as np

    ys, xs = np.nonzero(region)
    cy, cx = int(ys.mean()), int(xs.mean())
    return cy - size // 2, cx - size // 2, cy + size // 2, cx + size // 2


def fill_height(viewer, layer, x: float) -> None:
    """Zoom so that the image fills the canvas's height, centred at ``x`` (fraction of width)."""
    height, width = layer.data.shape[-2:]
    cx = x * width
    zoom_to_box(viewer, (0, cx - 1, height, cx + 1), shape=(height, width), zoom=1.0)


def camera(viewer):
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def zoom_to_box(
    viewer, box: tuple[int, int, int, int], shape: tuple[int, int] | None = None, zoom: float = 0.95
) -> None:
    """Show the data box ``(y0, x0, y1, x1)`` (pixels of a layer of scale 1) on the canvas.

    With ``shape`` (of the image), the view is moved as little as needed to stay inside it.
    """
    pump(0.2)
    y0, x0, y1, x1 = box
    canvas = viewer.window._qt_viewer.canvas.native
    height, width = max(canvas.height(), 1), max(canvas.width(), 1)
    scale = zoom * min(height / max(y1 - y0, 1), width / max(x1 - x0, 1))
    cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
    if shape is not None:
        half_h, half_w = height / scale / 2.0, width / scale / 2.0
        if 2 * half_h < shape[0]:
            cy = min(max(cy, half_h - 0.5), shape[0] - half_h - 0.5)
        if 2 * half_w < shape[1]:
            cx = min(max(cx, half_w - 0.5), shape[1] - half_w - 0.5)
    cam = camera(viewer)
    cam.center = (cy, cx)
    cam.zoom = scale
    pump(0.2)


if __name__ == "__main__":
    sys.exit(main())
