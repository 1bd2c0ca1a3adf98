"""Every widget docks into a real viewer; every sample opens; the manifest is consistent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import PLUGIN, WIDGETS, dock

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_copies_are_identical():
    top = (ROOT / "napari.yaml").read_bytes()
    shipped = (ROOT / "src" / "napari_cytounet" / "napari.yaml").read_bytes()
    assert top == shipped, "napari.yaml and src/napari_cytounet/napari.yaml must be identical"


def test_manifest_is_valid_and_lists_the_widgets():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(ROOT / "src" / "napari_cytounet" / "napari.yaml")
    assert manifest.name == PLUGIN
    assert manifest.display_name == "CytoUNet"
    assert set(manifest.categories) == {"Segmentation", "Annotation"}
    names = {w.display_name for w in manifest.contributions.widgets}
    assert names == set(WIDGETS)
    assert len(manifest.contributions.sample_data) == 5


def test_widget_modules_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import napari_cytounet\n"
        "assert 'tensorflow' not in sys.modules\n"
        "import napari_cytounet.widgets._train, napari_cytounet.widgets._predict\n"
        "import napari_cytounet.widgets._score, napari_cytounet.widgets._check\n"
        "import napari_cytounet.widgets._models, napari_cytounet._sample_data\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.gui
def test_every_widget_docks_and_sees_the_layers(viewer):
    viewer.add_image(np.zeros((32, 32), np.float32), name="img")
    viewer.add_labels(np.zeros((32, 32), np.uint8), name="img labels")
    widgets = [dock(viewer, name) for name in WIDGETS]
    assert len({id(w) for w in widgets}) == len(WIDGETS)
    for widget in widgets:
        if hasattr(widget, "_image"):
            assert widget._image.value is not None and widget._image.value.name == "img"
    # docking again returns the same widget instead of a second copy
    assert dock(viewer, "Predict") is widgets[1]
    # the layer lists follow the viewer
    viewer.add_image(np.zeros((32, 32), np.float32), name="other")
    assert "other" in [la.name for la in widgets[0]._image.choices]


SAMPLES = {
    "bbbc030": {"cho21": ((1032, 1376), "Image"), "cho21 mask": ((1032, 1376), "Labels")},
    "bbbc030_validation": {
        "cho01": ((1032, 1376), "Image"),
        "cho01 mask": ((1032, 1376), "Labels"),
    },
    "synthetic_cells": {
        "synthetic cells": ((512, 512), "Image"),
        "synthetic cells ground truth": ((512, 512), "Labels"),
    },
    "synthetic_scribbles": {
        "synthetic cells": ((512, 512), "Image"),
        "synthetic cells scribbles": ((512, 512), "Labels"),
        "synthetic cells ground truth": ((512, 512), "Labels"),
    },
    "synthetic_stack": {
        "synthetic stack": ((5, 128, 128), "Image"),
        "synthetic stack ground truth": ((5, 128, 128), "Labels"),
    },
}


def test_samples_cover_the_manifest():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(ROOT / "src" / "napari_cytounet" / "napari.yaml")
    assert {s.key for s in manifest.contributions.sample_data} == set(SAMPLES)


@pytest.mark.gui
def test_every_sample_opens(viewer):
    for key, expected in SAMPLES.items():
        viewer.layers.clear()
        viewer.open_sample(PLUGIN, key)
        check_sample(viewer, key, expected)


def check_sample(viewer, key, expected):
    found = {layer.name: (tuple(layer.data.shape), type(layer).__name__) for layer in viewer.layers}
    assert found == expected, (key, found)
    for layer in viewer.layers:
        data = np.asarray(layer.data)
        if type(layer).__name__ == "Labels":
            assert np.issubdtype(data.dtype, np.integer) and data.max() >= 1, layer.name
        else:
            assert data.std() > 0, layer.name  # a real picture, not a blank
    if key == "bbbc030":
        assert set(np.unique(viewer.layers["cho21 mask"].data)) == {0, 1}
    if key == "synthetic_scribbles":
        assert set(np.unique(viewer.layers["synthetic cells scribbles"].data)) == {0, 1, 2}
        assert not viewer.layers["synthetic cells ground truth"].visible
