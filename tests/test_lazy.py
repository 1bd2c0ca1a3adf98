"""Lazy zarr/dask prediction: identical to the in-memory path, resumable, on a real cluster.

A tiny untrained UNet (depth 2, 4 filters, fixed seed) is enough: identity is
checked on its raw probabilities (bit for bit) and on the post-processed masks.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

from napari_cytounet.core.errors import ConfigError, DataError  # noqa: E402
from napari_cytounet.core.lazy import lazy_probabilities, pad_index  # noqa: E402
from napari_cytounet.core.predict import predict_probabilities, segment  # noqa: E402
from napari_cytounet.core.zarr_io import (  # noqa: E402
    PARTIAL,
    iter_predict_to_zarr,
    open_zarr_image,
    predict_to_zarr,
)

KW = {"tile_size": 64, "overlap": 16, "batch_size": 2}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    from napari_cytounet.core.bundle import ModelBundle, save_bundle
    from napari_cytounet.core.config import UNetConfig
    from napari_cytounet.core.model import build_unet

    keras.utils.set_random_seed(0)
    cfg = UNetConfig(depth=2, base_filters=4)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return save_bundle(ModelBundle(model=build_unet(cfg), unet=cfg), path)


@pytest.fixture(scope="module")
def bundle(model_path: Path):
    from napari_cytounet.core.bundle import load_bundle

    return load_bundle(model_path)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, object]:
    """3 planes of 150 x 200 uint16 with cell-like blobs, in a zarr store (64 px chunks)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:150, :200]
    planes = []
    for p in range(3):
        img = rng.normal(800, 60, (150, 200))
        for _ in range(8):
            cy, cx, r = rng.integers(10, 140), rng.integers(10, 190), rng.integers(5, 14)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] += 900 + 100 * p
        planes.append(img)
    image = np.clip(np.stack(planes), 0, 65535).astype(np.uint16)
    path = tmp_path_factory.mktemp("data") / "stack.zarr"
    z = zarr.create_array(store=str(path), shape=image.shape, chunks=(1, 64, 64), dtype="uint16")
    z[:] = image
    return image, z


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_pad_index_matches_numpy_pad(size: int) -> None:
    positions = np.arange(-40, size + 40)
    mode = "reflect" if size > 1 else "edge"
    expected = np.pad(np.arange(size), (40, 40), mode=mode)
    assert np.array_equal(pad_index(positions, size), expected)


@pytest.mark.parametrize("block", [48, 64, 100, 1000])
def test_lazy_probabilities_identical_to_in_memory(bundle, model_path, stack, block) -> None:
    image, z = stack
    reference = predict_probabilities(bundle, image, **KW)
    lazy = lazy_probabilities(model_path, z, block_size=block, **KW)
    assert lazy.shape == reference.shape
    assert lazy.chunks[1][0] == min(block, 150)
    assert np.array_equal(lazy.compute(scheduler="threads"), reference)


def test_dask_input_and_odd_geometry_identical(bundle, stack) -> None:
    image, _ = stack
    # a dask array with chunks unrelated to the tiles, a plane of one tile, a 1-row plane
    dimage = da.from_array(image, chunks=(2, 37, 53))
    kw = {**KW, "batch_size": 3}
    lazy = lazy_probabilities(bundle, dimage, block_size=70, **kw).compute(scheduler="sync")
    assert np.array_equal(lazy, predict_probabilities(bundle, image, **kw))
    small = image[0, :40, :50]
    assert np.array_equal(
        lazy_probabilities(bundle, small, **KW).compute(),
        predict_probabilities(bundle, small, **KW),
    )
    row = image[0, :1, :150]
    assert np.array_equal(
        lazy_probabilities(bundle, row, block_size=32, **KW).compute(),
        predict_probabilities(bundle, row, **KW),
    )


@pytest.mark.parametrize("instances", [False, True])
def test_zarr_output_identical_to_segment(bundle, model_path, stack, tmp_path, instances) -> None:
    image, z = stack
    opts = {"min_size": 20, "instances": instances}
    expected = segment(bundle, image, **opts, **KW)
    result = predict_to_zarr(model_path, z, tmp_path / "out.zarr", block_size=48, **opts, **KW)
    out = zarr.open_array(str(result.path))
    assert out.chunks == (1, 48, 48)
    assert out.dtype == (np.int32 if instances else np.uint8)
    assert np.array_equal(out[:], expected)
    assert expected.max() > 0  # the comparison is not trivially between empty masks
    assert dict(out.attrs)["cytounet"]["complete"] is True
    assert not (result.path / PARTIAL).exists()
    assert result.blocks == 3 * 4 * 5 and result.skipped == 0


def test_resume_after_stopped_run(bundle, model_path, stack, tmp_path) -> None:
    image, z = stack
    out_path = tmp_path / "out.zarr"
    kw = {**KW, "block_size": 32, "min_size": 10, "mask_value": 255}
    events = iter_predict_to_zarr(model_path, z, out_path, scheduler="threads", **kw)
    for seen, _event in enumerate(events, start=1):
        if seen == 6:  # stop after 5 finished tasks: like Ctrl-C in the CLI
            events.close()
            break
    out = zarr.open_array(str(out_path))
    assert dict(out.attrs)["cytounet"]["complete"] is False
    done = list((out_path / PARTIAL / "done").iterdir())
    assert 5 <= len(done) < 3 * 5 * 7
    result = predict_to_zarr(model_path, z, out_path, scheduler="threads", **kw)
    assert result.skipped >= 5
    assert result.blocks + result.skipped >= 3 * 5 * 7
    expected = segment(bundle, image, min_size=10, **KW) * np.uint8(255)
    assert np.array_equal(zarr.open_array(str(out_path))[:], expected)
    # a finished output: nothing to do; other settings: refused, nothing touched
    again = predict_to_zarr(model_path, z, out_path, scheduler="threads", **kw)
    assert again.blocks == 0
    with pytest.raises(DataError, match="other settings"):
        predict_to_zarr(model_path, z, out_path, **{**kw, "min_size": 11})
    assert np.array_equal(zarr.open_array(str(out_path))[:], expected)


@pytest.mark.slow
def test_resume_of_a_partly_written_plane_and_refusal_of_the_old_scratch(
    bundle, model_path, stack, tmp_path
) -> None:
    image, z = stack
    out_path = tmp_path / "out.zarr"
    kw = {**KW, "block_size": 32, "scheduler": "sync"}
    events = iter_predict_to_zarr(model_path, z, out_path, **kw)
    for seen, _event in enumerate(events, start=1):
        if seen == 4:  # 3 blocks written, their plane not finished
            events.close()
            break
    done = sorted(p.name for p in (out_path / PARTIAL / "done").iterdir())
    assert len(done) >= 3 and all(name.startswith("b-") for name in done)  # no plane done
    for name in done:  # each block bit-packed along its rows: 8 px to a byte
        saved = np.load(out_path / PARTIAL / "done" / name)
        left = int(name.split("-")[3])
        width = min(32, z.shape[-1] - left)
        assert saved.dtype == np.uint8 and saved.shape[1] == -(-width // 8)
    result = predict_to_zarr(model_path, z, out_path, **kw)  # plane 0 from files and new blocks
    assert result.skipped == len(done)
    assert np.array_equal(zarr.open_array(str(out_path))[:], segment(bundle, image, **KW))
    # an unfinished output of the earlier scratch format (a zarr mask) is refused, not misread
    old = tmp_path / "old.zarr"
    events = iter_predict_to_zarr(model_path, z, old, **kw)
    next(events), next(events)
    events.close()
    arr = zarr.open_array(str(old), mode="r+")
    record = dict(arr.attrs)["cytounet"]
    arr.attrs["cytounet"] = {**record, "settings": {**record["settings"], "scratch": 1}}
    with pytest.raises(DataError, match="other settings"):
        predict_to_zarr(model_path, z, old, **kw)


def test_local_cluster_of_two_processes_identical(bundle, model_path, stack, tmp_path) -> None:
    from distributed import Client, LocalCluster

    image, z = stack
    expected = segment(bundle, image, min_size=20, **KW)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        result = predict_to_zarr(
            model_path, z, tmp_path / "out.zarr", scheduler=client, min_size=20, **KW
        )
        # each worker loaded the model once (cached per process)
        loaded = client.run(lambda: len(__import__("napari_cytounet.core.lazy")
                                        .core.lazy._WORKER_MODELS))  # fmt: skip
    assert np.array_equal(zarr.open_array(str(result.path))[:], expected)
    assert all(n <= 1 for n in loaded.values())
    assert sum(loaded.values()) >= 1


def test_bad_inputs(model_path, tmp_path) -> None:
    with pytest.raises(DataError, match="No zarr store"):
        open_zarr_image(tmp_path / "missing.zarr")
    complex_z = zarr.create_array(store=str(tmp_path / "c.zarr"), shape=(8, 8), dtype="complex64")
    with pytest.raises(DataError, match="dtype complex64"):
        predict_to_zarr(model_path, complex_z, tmp_path / "o1.zarr", **KW)
    assert not (tmp_path / "o1.zarr").exists()
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("raw", shape=(8, 8), dtype="uint8")
    with pytest.raises(DataError, match="arrays in it: raw"):
        open_zarr_image(tmp_path / "g.zarr")
    good = zarr.create_array(store=str(tmp_path / "u.zarr"), shape=(70, 70), dtype="uint8")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="No dask scheduler answers"):
        predict_to_zarr(model_path, good, tmp_path / "o2.zarr", scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "o2.zarr").exists()
    (tmp_path / "foreign.zarr").mkdir()
    with pytest.raises(DataError, match="not a cytounet output"):
        predict_to_zarr(model_path, good, tmp_path / "foreign.zarr", **KW)


def test_cli_ome_zarr_to_zarr(bundle, model_path, stack, tmp_path, capsys) -> None:
    from napari_cytounet.cli import main

    image, _ = stack
    group = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    level0 = group.create_array("0", shape=image.shape, chunks=(1, 64, 64), dtype="uint16")
    level0[:] = image
    axes = [{"name": "z", "type": "space"}, {"name": "y", "type": "space"}, {"name": "x"}]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0"}]}]
    out = tmp_path / "masks.zarr"
    args = ["predict", str(model_path), str(tmp_path / "img.ome.zarr"), "-o", str(out), "-q"]
    assert main([*args, "--tile-size", "128"]) == 0
    expected = segment(bundle, image, tile_size=128) * np.uint8(255)
    assert np.array_equal(zarr.open_array(str(out))[:], expected)
    assert "12 blocks predicted" in capsys.readouterr().out
    assert main([*args, "--tile-size", "128"]) == 0  # finished: nothing to redo
    assert "0 blocks predicted, 12 found done earlier" in capsys.readouterr().out
    assert main([*args, "--tile-size", "128", "--scheduler", "nowhere"]) == 2
    # an array inside a store, whose path does not end in .zarr, is found by its metadata
    inner = ["predict", str(model_path), str(tmp_path / "img.ome.zarr" / "0"), "-q"]
    assert main([*inner, "-o", str(tmp_path / "m2.zarr"), "--tile-size", "128"]) == 0
    assert np.array_equal(zarr.open_array(str(tmp_path / "m2.zarr"))[:], expected)
    assert main(["predict", str(model_path), str(tmp_path / "no.zarr"), "-o", str(out)]) == 1
    tif_args = ["predict", str(model_path), str(tmp_path / "x.png"), "-o", "d", "--scheduler"]
    assert main([*tif_args, "threads"]) == 2
    assert "--scheduler applies to zarr data" in capsys.readouterr().err
