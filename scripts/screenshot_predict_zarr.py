"""Screenshot of the Predict widget segmenting a zarr-backed stack into a zarr store.

Run it from the repository root under a virtual X server (or on a desktop)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python3 scripts/screenshot_predict_zarr.py

It writes three BBBC030 validation images (gray, ``cho01``-``cho03``) to a zarr array in a
temporary folder, opens it in napari as a lazy dask layer (``dask.array.from_zarr``), segments
it with the starter model shipped in the package through the Predict widget ("Write to zarr"),
and saves the whole window, with the lazy ``... segmentation`` layer, to
``docs/images/predict-zarr.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CYTOUNET_BBBC030", ROOT.parent / "shared" / "data" / "bbbc030"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "predict-zarr.png")
    args = parser.parse_args(argv)
    os.environ.setdefault("CYTOUNET_SETTINGS_DIR", tempfile.mkdtemp(prefix="cytounet-shot-"))

    import dask.array as da
    import napari
    import numpy as np
    import zarr
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_screenshots import save_small_png

    folder = Path(tempfile.mkdtemp(prefix="cytounet-zarr-shot-"))
    planes = [
        np.asarray(Image.open(DATA / "validation" / "images" / f"cho0{i}.png").convert("L"))
        for i in (1, 2, 3)
    ]
    stack = np.stack(planes)
    store = zarr.create_array(
        store=str(folder / "cho-stack.zarr"), shape=stack.shape, chunks=(1, 512, 512), dtype="uint8"
    )
    store[:] = stack

    viewer = napari.Viewer(title="napari-cytounet: lazy prediction into zarr")
    viewer.window._qt_window.resize(1500, 950)
    image = viewer.add_image(da.from_zarr(str(folder / "cho-stack.zarr")), name="cho-stack")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cytounet", "Predict")
    widget._image.value = image
    widget._source.value = "file"
    widget._model_file.value = ROOT / "src" / "napari_cytounet" / "models" / "starter.keras"
    assert widget.predict(), "the prediction did not start"
    end = time.monotonic() + 600
    while widget.running and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.05)
    seg = viewer.layers["cho-stack segmentation"]
    print(type(seg.data).__name__, seg.data.shape, widget._status.value)
    seg.opacity = 0.5
    viewer.dims.set_current_step(0, 1)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    size = save_small_png(shot, args.out)
    print(f"{args.out} ({size / 1024:.0f} kB)")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
