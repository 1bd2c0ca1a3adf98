"""The Predict widget on lazy (zarr- and dask-backed) images: a zarr output, never loaded whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import dock, engine_job, wait_idle

pytestmark = pytest.mark.gui
zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")

PARAMS = {
    "threshold": 0.5,
    "min_size": 0,
    "fill_holes": True,
    "instances": False,
    "split_touching": False,
}


def _stack(path: Path, planes: int, shape=(150, 200)) -> np.ndarray:
    """A uint16 stack of synthetic cells written to a zarr array at ``path`` (one chunk a plane)."""
    from napari_cytounet.core.synthetic import synthetic_cells

    data = np.stack(
        [
            (synthetic_cells(shape, radius=(6, 12), seed=s)[0] * 4000).astype(np.uint16)
            for s in range(planes)
        ]
    )
    z = zarr.create_array(store=str(path), shape=data.shape, chunks=(1, *shape), dtype="uint16")
    z[:] = data
    return data


def _expected(bundle, image) -> np.ndarray:
    """The in-memory (numpy) path's masks for the same image, asked of the engine."""
    events = engine_job(
        "predict", bundle=bundle, path=None, image=image, channel_axis=None, params=dict(PARAMS)
    )
    return np.asarray(events[-1].labels)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class _SourceReads:
    """Counts the chunks of one dask array computed in this (napari's) process per compute."""

    def __init__(self, array) -> None:
        from dask.callbacks import Callback

        name = array.name
        self.per_compute: list[int] = []

        class _Count(Callback):
            def _start(inner, dsk):
                keys = [k for k in dsk if isinstance(k, tuple) and k and k[0] == name]
                self.per_compute.append(len(keys))

        self.callback = _Count()


def test_zarr_backed_dask_layer_to_zarr_matches_numpy(viewer, qtbot, notes, with_model, tmp_path):
    from napari.layers import Labels

    source = tmp_path / "stack.zarr"
    data = _stack(source, 3)
    lazy = da.from_zarr(str(source))
    image = viewer.add_image(lazy, name="stack", scale=(1.0, 0.5, 0.25), translate=(0, 5, -3))
    widget = dock(viewer, "Predict")
    widget._image.value = image
    assert not widget._to_zarr.native.isHidden() and not widget._zarr_box.native.isHidden()
    assert Path(widget._zarr_path.value) == tmp_path / "stack-segmentation.zarr"
    assert str(source) in widget._zarr_info.value

    reads = _SourceReads(lazy)
    with reads.callback:
        assert widget.predict()
        wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    # napari's process read at most the plane it shows, never the stack (the engine read it)
    assert max(reads.per_compute, default=0) <= 1, reads.per_compute
    seg = viewer.layers["stack segmentation"]
    assert isinstance(seg, Labels)
    assert not isinstance(seg.data, np.ndarray) and isinstance(seg.data, zarr.Array)
    assert Path(str(seg.data.store.root)) == tmp_path / "stack-segmentation.zarr"
    np.testing.assert_allclose(seg.scale, image.scale)
    np.testing.assert_allclose(seg.translate, image.translate)
    assert seg.metadata["napari-cytounet"]["role"] == "segmentation"
    expected = _expected(with_model.bundle, data)
    masks = np.asarray(seg.data[:])
    np.testing.assert_array_equal(masks, expected)
    assert masks.any() and not masks.all()
    assert widget._progress.value == 1000 and widget.predictions == 1
    assert "Wrote 'stack segmentation'" in widget._status.value

    # predicting again with the same settings finds the finished store and the same layer
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    assert widget.last_result.blocks == 0 and widget.last_result.skipped == 3
    assert [la.name for la in viewer.layers] == ["stack", "stack segmentation"]
    assert viewer.layers["stack segmentation"] is seg


def test_bad_targets_and_sources_refused_untouched(viewer, qtbot, notes, with_model, tmp_path):
    source = tmp_path / "stack.zarr"
    _stack(source, 2, shape=(64, 64))
    image = viewer.add_image(zarr.open_array(str(source), mode="r"), name="plain zarr")
    widget = dock(viewer, "Predict")
    widget._image.value = image
    assert not widget._to_zarr.native.isHidden()

    # an existing zarr store of the user's (no cytounet record) is refused and left as it was
    foreign = tmp_path / "mine.zarr"
    z = zarr.create_array(store=str(foreign), shape=(2, 64, 64), dtype="uint8")
    z[:] = 7
    before = _digest(foreign)
    widget._zarr_path.value = foreign
    assert widget.predict()
    wait_idle(qtbot, widget)
    assert any("is not a cytounet output" in e for e in notes.errors), notes.errors
    assert _digest(foreign) == before
    assert [la.name for la in viewer.layers] == ["plain zarr"]

    # the image's own store as the output
    widget._zarr_path.value = source
    assert not widget.predict()
    assert "the image's own store" in notes.errors[-1]

    # averaging views is not there for zarr yet: refused, nothing written
    widget._zarr_path.value = tmp_path / "views.zarr"
    widget._views.value = True
    assert not widget.predict()
    assert "untick 'Average 8 views'" in notes.errors[-1]
    assert not (tmp_path / "views.zarr").exists()
    widget._views.value = False

    # "Write to zarr" off: a lazy stack is not loaded whole into memory
    widget._to_zarr.value = False
    assert not widget.predict()
    assert "Tick 'Write to zarr'" in notes.errors[-1]

    # a dask array computed in memory has no store to hand over: told how to save it
    widget._to_zarr.value = True
    memory = viewer.add_image(da.ones((2, 64, 64), dtype=np.uint16) * 3, name="in memory")
    widget._image.value = memory
    assert "cannot be segmented lazily" in widget._zarr_info.value
    assert not widget.predict()
    assert "to_zarr" in notes.errors[-1] and "Current plane only" in notes.errors[-1]
    assert [la.name for la in viewer.layers] == ["plain zarr", "in memory"]

    # ...but its plane on screen can be segmented (one plane read)
    widget._plane_only.value = True
    assert widget.predict()
    wait_idle(qtbot, widget)
    seg = viewer.layers["in memory segmentation"]
    assert seg.data.shape == (2, 64, 64) and not seg.data[1].any()


def test_stop_then_predict_again_resumes(viewer, qtbot, notes, with_model, tmp_path):
    source = tmp_path / "long.zarr"
    data = _stack(source, 40, shape=(96, 96))
    image = viewer.add_image(da.from_zarr(str(source)), name="long")
    widget = dock(viewer, "Predict")
    widget._image.value = image
    output = Path(widget._zarr_path.value)

    def _stop_early(value: int) -> None:
        if 0 < value < 1000 and widget._predict_btn.text == "Cancel":
            widget._predict_btn.native.click()  # "Cancel" while it runs
            assert widget._predict_btn.text == "Stopping…"

    widget._progress.changed.connect(_stop_early)
    assert widget.predict()
    wait_idle(qtbot, widget)
    widget._progress.changed.disconnect(_stop_early)
    assert not notes.errors, notes.errors
    assert "resume" in widget._status.value and str(output) in widget._status.value
    assert [la.name for la in viewer.layers] == ["long"]  # no half-written layer
    record = dict(zarr.open_array(str(output), mode="r").attrs)["cytounet"]
    assert record["complete"] is False
    done = len(list((output / ".cytounet-partial" / "done").iterdir()))
    assert done > 0

    assert widget.predict()
    wait_idle(qtbot, widget)
    assert not notes.errors, notes.errors
    result = widget.last_result
    assert result.skipped > 0 and result.blocks > 0, result  # resumed, not restarted
    assert result.skipped + result.blocks <= 40
    seg = viewer.layers["long segmentation"]
    np.testing.assert_array_equal(np.asarray(seg.data[:]), _expected(with_model.bundle, data))
    assert dict(seg.data.attrs)["cytounet"]["complete"] is True


def test_zarr_source_finds_the_store_or_says_why_not(viewer, tmp_path):
    """Which lazy layers the engine can read by reference (no model run: fast)."""
    from napari_cytounet.core.errors import DataError
    from napari_cytounet.widgets._predict_lazy import default_output, zarr_source

    # an OME-Zarr-like multiscale group opened as a multiscale layer: level 0's array
    group = zarr.open_group(str(tmp_path / "image.ome.zarr"), mode="w")
    level0 = group.create_array("0", shape=(2, 64, 64), chunks=(1, 32, 32), dtype="uint16")
    group.create_array("1", shape=(2, 32, 32), chunks=(1, 32, 32), dtype="uint16")
    levels = [da.from_zarr(group["0"]), da.from_zarr(group["1"])]
    layer = viewer.add_image(levels, multiscale=True, name="ome")
    assert zarr_source(layer) == (tmp_path / "image.ome.zarr" / "0").resolve()
    assert level0.shape == (2, 64, 64)
    assert (
        default_output(tmp_path / "image.ome.zarr", "ome") == tmp_path / "image-segmentation.zarr"
    )

    # transformed after reading (rechunked, scaled): not the store's data, so not read from it
    for name, data in [
        ("rechunked", da.from_zarr(group["0"]).rechunk((2, 64, 64))),
        ("scaled", da.from_zarr(group["0"]) * 2),
    ]:
        with pytest.raises(DataError, match="not read unchanged from a zarr store"):
            zarr_source(viewer.add_image(data, name=name))
