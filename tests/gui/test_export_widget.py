"""The Model widget's "Export for bioimage.io" section, in a real napari viewer."""

from __future__ import annotations

import sys
import zipfile

import pytest
from gui_helpers import JOB_TIMEOUT_MS, dock, snapshot

pytestmark = pytest.mark.gui
pytest.importorskip("bioimageio.core", reason="needs the napari-cytounet[bioimageio] extra")


def test_export_section_writes_a_package_and_loads_it_back(
    viewer, with_model, notes, qtbot, tmp_path
):
    from napari_cytounet.core.io import read_image
    from napari_cytounet.sample_data import sample_paths

    widget = dock(viewer, "Model")
    section = widget._export
    assert section.button.enabled
    viewer.add_image(read_image(sample_paths("cho01")[0])[:300, :400], name="cho01")
    widget.reset_choices()
    section.sample.value = viewer.layers["cho01"]
    section.name.value = "CHO cells from the GUI"
    section.authors.value = "A. Biologist, B. Coder"
    section.saved_model.value = False
    before = snapshot(viewer)
    target = tmp_path / "gui.bioimageio.zip"
    assert section.export(target)
    qtbot.waitUntil(lambda: not section.runner.running, timeout=JOB_TIMEOUT_MS)
    assert not notes.errors, notes.errors
    assert target.is_file() and "Wrote gui.bioimageio.zip (keras_v3)" in section.status.value
    with zipfile.ZipFile(target) as archive:
        rdf = archive.read("rdf.yaml").decode()
    assert "A. Biologist" in rdf and "B. Coder" in rdf and "CHO cells from the GUI" in rdf
    assert snapshot(viewer) == before  # no layer touched

    # an existing package is not replaced unless asked
    assert section.export(target)
    qtbot.waitUntil(lambda: not section.runner.running, timeout=JOB_TIMEOUT_MS)
    assert "already exists" in notes.errors[-1]

    # the package loads back as the current model
    assert widget.load(target)
    qtbot.waitUntil(lambda: not widget.running, timeout=JOB_TIMEOUT_MS)
    assert with_model.bundle.path == target
    assert f"loaded from {target.resolve()}" in with_model.source


def test_export_without_the_extra_says_how_to_install(
    viewer, with_model, notes, monkeypatch, tmp_path
):
    for name in [m for m in sys.modules if m.startswith("bioimageio")] + ["bioimageio"]:
        monkeypatch.setitem(sys.modules, name, None)
    widget = dock(viewer, "Model")
    section = widget._export
    assert "pip install 'napari-cytounet[bioimageio]'" in section.status.value
    assert not section.export(tmp_path / "x.zip")
    assert "pip install 'napari-cytounet[bioimageio]'" in notes.errors[-1]
    assert not (tmp_path / "x.zip").exists()
