"""Screenshot of the Model widget's "Export for bioimage.io" section, in a real napari window.

Run it from the repository root under a virtual X server (it needs the
``napari-cytounet[bioimageio]`` extra)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python3 scripts/screenshot_export.py

It trains a small UNet on the BBBC030 samples shipped with the plugin (90 s on
two CPU cores), saves it, loads it in the Model widget the way a user does,
fills in the export fields, clicks "Export for bioimage.io", opens the cover
image of the written package in the viewer and captures the window as
``docs/images/export-widget.png``. Settings go to a temporary folder.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_screenshots import DOCK_WIDTH, PLUGIN, WINDOW, Shooter, pump, wait_until

ROOT = Path(__file__).resolve().parents[1]


def train_model(path: Path, seconds: float) -> Path:
    """A depth-3 UNet trained on the shipped samples for ``seconds``, saved to ``path``."""
    from napari_cytounet.core.bundle import save_bundle
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.pairs import read_pairs
    from napari_cytounet.core.training import train
    from napari_cytounet.sample_data import SAMPLE_DIR, TRAIN_NAMES

    pairs = read_pairs(SAMPLE_DIR, SAMPLE_DIR, names=TRAIN_NAMES)
    images, masks = pairs.images, pairs.masks
    config = TrainingConfig(
        epochs=None,
        max_time=seconds,
        steps_per_epoch=10,
        patch_size=128,
        batch_size=8,
        learning_rate=2e-3,
        seed=0,
    )
    finished = list(train(images, masks, config, UNetConfig(depth=3, base_filters=8)))[-1]
    finished.bundle.name = "CHO cells DIC"
    return save_bundle(finished.bundle, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--train-seconds", type=float, default=90.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cytounet-export-shot-"))
    os.environ["CYTOUNET_SETTINGS_DIR"] = str(work / "settings")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import napari
    from qtpy.QtCore import Qt

    viewer = napari.Viewer(title="napari-cytounet", show=True)
    viewer.window.resize(*WINDOW)
    viewer.theme = "dark"
    pump(1.0)
    print("Training a small model (in a process of its own: no TensorFlow beside napari)…")
    t0 = time.monotonic()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        model = pool.submit(train_model, work / "cho-cells.keras", args.train_seconds).result()
    print(f"  {time.monotonic() - t0:.0f} s", flush=True)

    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Model")
    viewer.window._qt_window.resizeDocks([dock], [DOCK_WIDTH], Qt.Horizontal)
    viewer.open_sample(PLUGIN, "bbbc030_validation")
    widget.reset_choices()
    widget.load(model)
    wait_until(lambda: not widget.running, 120, "loading the model")
    section = widget._export
    section.name.value = "CHO cells DIC (napari-cytounet)"
    section.authors.value = "A. Biologist, B. Coder"
    section.sample.value = viewer.layers["cho01"]
    target = work / "cho-cells.bioimageio.zip"
    section.export(target)
    wait_until(lambda: not section.runner.running, 300, "the export")
    print(f"  {section.status.value}", flush=True)
    with zipfile.ZipFile(target) as archive:
        archive.extract("cover.png", work)
    for layer in list(viewer.layers):
        layer.visible = False
    viewer.open(work / "cover.png", name="cover.png (from the package)")
    pump(0.5)
    cover = viewer.layers[-1].data
    viewer.camera.center = (cover.shape[0] / 2, cover.shape[1] / 2)
    viewer.camera.zoom = 0.95 * 670 / cover.shape[1]  # the canvas is ~670 px wide here
    area = widget.scroll_area
    inner = area.widget()
    top = section.header.native.mapTo(inner, section.header.native.rect().topLeft())
    area.verticalScrollBar().setValue(top.y() - 6)
    pump(0.5)
    Shooter(viewer, args.out, None)("export-widget")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
