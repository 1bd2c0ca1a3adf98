"""Segment a numpy, zarr or dask image into a zarr store, block by block, resumably.

:func:`iter_predict_to_zarr` runs the lazy graph of :mod:`.lazy` on a dask
scheduler in two stages. Stage 1, per output block: the blended probabilities
are thresholded (or arg-maxed for multi-class models) and saved as the block's
marker file, bit-packed, in ``OUTPUT/.cytounet-partial/done``. Stage 2, per
plane, once its blocks are done: the plane's mask, read back from the block
files (this run's and an interrupted earlier run's alike), is post-processed
on the whole plane as in :func:`~.postprocess.postprocess` (fill holes, remove
small objects, instance labels) and the final plane is written.
The result is identical to the in-memory :func:`~.predict.segment`.

Each finished block and plane leaves its marker file (one file per task, written
whole or not at all, so concurrent workers never write the same file); a run
that is interrupted and started again with the same settings skips them. A
finished store has ``attrs["cytounet"]["complete"] = True`` and no scratch.

Examples
--------
>>> for event in iter_predict_to_zarr("cells.keras", "stack.zarr", "masks.zarr"):  # doctest: +SKIP
...     print(event)
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import ModelBundle
from .chunk_cache import CHUNKS
from .errors import ConfigError, DataError
from .events import PredictionProgress
from .lazy import PlaneGraph, block_grid, iter_blocks, prepare
from .predict import DEFAULT_BATCH_SIZE, DEFAULT_TILE_SIZE

PARTIAL = ".cytounet-partial"
SCRATCH_FORMAT = 2  # 2: one .npy file per block (bit-packed masks); 1: a zarr mask array


@dataclass(frozen=True)
class ZarrPrediction:
    """The final event of :func:`iter_predict_to_zarr`: where and what was written."""

    path: Path
    shape: tuple[int, ...]
    dtype: str
    blocks: int  # blocks predicted in this run
    skipped: int  # blocks (and planes) found done by an earlier run
    seconds: float


def open_zarr_image(path: str | os.PathLike) -> tuple[Any, list[str] | None]:
    """Open a zarr array, or level 0 of an OME-Zarr image; returns it and its axis names.

    Raises
    ------
    DataError
        If there is no zarr array (or OME-Zarr image) at ``path``.

    Examples
    --------
    >>> array, axes = open_zarr_image("image.ome.zarr")  # doctest: +SKIP
    >>> axes  # doctest: +SKIP
    ['c', 'y', 'x']
    """
    import zarr

    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"No zarr store at {p}; check the path.")
    try:
        node = zarr.open(str(p), mode="r")
    except Exception as exc:  # zarr raises several types for a folder that is not a store
        raise DataError(
            f"{p} is not a zarr array or OME-Zarr image ({type(exc).__name__}: {exc})."
        ) from exc
    if isinstance(node, zarr.Array):
        return node, None
    attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        names = sorted(node.array_keys())
        hint = f" (arrays in it: {', '.join(names)})" if names else ""
        raise DataError(
            f"{p} is a zarr group without OME-Zarr 'multiscales' metadata; give the path of an "
            f"array inside it{hint}."
        )
    level0 = multiscales[0]["datasets"][0]["path"]
    axes = multiscales[0].get("axes")
    names = [a["name"] if isinstance(a, dict) else str(a) for a in axes] if axes else None
    return node[level0], names


def _settings(spec, source, plan, block, batch_size, opts: dict) -> dict:
    return {
        "model": spec.path,
        "model_mtime_ns": spec.mtime_ns,
        "model_size": spec.size,
        "precision": spec.precision,
        "input_shape": [*source.lead_shape, source.height, source.width],
        "tile": [plan.tile_h, plan.tile_w],
        "overlap": plan.overlap,
        "batch_size": batch_size,
        "block_size": block,
        "scratch": SCRATCH_FORMAT,
        **opts,
    }


def _open_output(path: Path, shape: tuple, chunks: tuple, dtype: str, settings: dict):
    """Create the output (and scratch), or reopen one started with the same settings.

    Returns ``(out, labels, complete)``: ``labels`` is the instance-label scratch
    (None without ``instances``), ``complete`` whether an earlier run finished.
    """
    import zarr

    partial = path / PARTIAL
    if path.exists():
        try:
            out = zarr.open_array(str(path), mode="r+")
            record = dict(out.attrs).get("cytounet", {})
        except Exception:
            record = {}
        if not record:
            raise DataError(
                f"{path} exists and is not a cytounet output; choose another output path."
            )
        if record.get("settings") != settings:
            raise DataError(
                f"{path} holds a run with other settings (model, input or options); delete it "
                "or choose another output path to start afresh."
            )
        if record.get("complete"):
            return out, None, True
        labels = zarr.open_array(str(partial / "labels"), mode="r+") if dtype == "int32" else None
        return out, labels, False
    if not os.access(_nearest_existing(path), os.W_OK):
        raise DataError(f"Cannot write {path}: its folder is not writable.")
    attrs = {"cytounet": {"settings": settings, "complete": False}}
    # scratch first: an output without scratch is never left half-made
    (partial / "done").mkdir(parents=True, exist_ok=True)
    labels = None
    if dtype == "int32":
        labels = zarr.create_array(
            store=str(partial / "labels"), shape=shape, chunks=chunks, dtype=dtype, fill_value=0
        )
    out = zarr.create_array(
        store=str(path), shape=shape, chunks=chunks, dtype=dtype, fill_value=0, attributes=attrs
    )
    return out, labels, False


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _write_block(
    top: int, left: int, prob: np.ndarray, threshold: float, multiclass: bool, marker: str
) -> int:
    """Stage 1: save the thresholded (or arg-maxed) block as its marker file.

    The marker is the block's mask in ``.npy`` form (bit-packed along rows for
    binary models: 1088^2 px in 148 kB), written whole or not at all. Stage 2
    reads the plane back from these files, this run's blocks and an earlier
    run's alike. (Handing the masks over in memory instead let them pile up:
    dask runs the blocks of several planes before their post-processing, and
    peak RSS grew with the number of planes.)
    """
    mask = np.argmax(prob, axis=-1) if multiclass else prob[..., 0] > threshold
    mask = mask.astype(np.uint8) if multiclass else np.packbits(mask, axis=-1)
    tmp = f"{marker}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, mask)
    os.replace(tmp, marker)  # atomic: a marker is always a whole block
    return 1


def _block_file(flat: int, top: int, left: int) -> str:
    """The name of a block's marker file (its mask) in the ``done`` folder."""
    return f"b-{flat}-{top}-{left}"


def _plane_mask(shape: tuple, marks: str, flat: int, grid: list, multiclass: bool) -> np.ndarray:
    """The plane's mask, assembled from its block files."""
    mask = np.empty(shape, np.uint8)
    for top, left, bh, bw in grid:
        saved = np.load(Path(marks) / _block_file(flat, top, left))
        block = saved if multiclass else np.unpackbits(saved, axis=-1, count=bw)
        mask[top : top + bh, left : left + bw] = block
    return mask


def _finish_plane(
    out: Any,
    index: tuple,
    flat: int,
    grid: list,
    opts: dict,
    classes: int,
    marks: str,
    *blocks: int,
) -> int:
    """Stage 2: post-process one whole plane from its block files, write it, then its marker.

    Instance labels (1..n per plane) go to the labels scratch and the marker holds
    ``n``: stage 3 (:func:`_offset_plane`) numbers them on from the planes before.
    """
    from .postprocess import postprocess

    marker = str(Path(marks) / f"p-{flat}")
    shape = out.shape[len(index) : len(index) + 2]
    mask = _plane_mask(shape, marks, flat, grid, classes > 1)
    # 0/1 above any threshold in (0, 1) as the probabilities were; a one-hot class map has
    # their argmax. uint8, not float32: a quarter of the memory for a whole plane
    prob = np.eye(classes, dtype=np.uint8)[mask] if classes > 1 else mask
    labels = postprocess(
        prob,
        opts["threshold"],
        min_size=opts["min_size"],
        fill_holes=opts["fill_holes"],
        instances=opts["instances"],
        split_touching=opts["split_touching"],
        multiclass=classes > 1,
    )
    if classes == 1 and not opts["instances"]:
        labels = labels * np.uint8(opts["mask_value"])
    out[index] = labels.astype(out.dtype, copy=False)
    if opts["instances"]:
        tmp = Path(f"{marker}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(str(int(labels.max(initial=0))))
        os.replace(tmp, marker)  # atomic: a marker always holds a whole count
    else:
        Path(marker).touch()
    return 1


def _offset_plane(labels: Any, out: Any, index: tuple, flat: int, marks: str, *done: int) -> int:
    """Stage 3 (instances): number the plane's labels on from the planes before it.

    Labels are consecutive over the whole stack, as in the in-memory path. It reads
    the labels scratch, never ``out``, so a repeated (resumed) run gives the same.
    """
    offset = sum(int((Path(marks) / f"p-{q}").read_text()) for q in range(flat))
    plane = np.asarray(labels[index])
    out[index] = np.where(plane > 0, plane + offset, 0).astype(np.int32)
    (Path(marks) / f"o-{flat}").touch()
    return 1


def _graph(bundle, spec, source, plan, out, labels, block, batch_size, opts, done, marks):
    """The sink tasks still to run (block writes, plane finishes, label offsets) and the
    count of blocks skipped."""
    import dask

    token = uuid.uuid4().hex[:12]
    classes, tasks, skipped = bundle.classes, [], 0
    graphs: dict[int, tuple] = {}
    writes: dict[int, list] = {}
    grid = block_grid(source.height, source.width, block)
    for flat, index, (top, left, bh, bw) in iter_blocks(source, block):
        if f"p-{flat}" in done:
            skipped += 1
            continue
        if flat not in graphs:
            graphs[flat] = (
                index,
                PlaneGraph(source, index, plan, spec, bundle.normalization, batch_size, token),
            )
            writes[flat] = []
        name = _block_file(flat, top, left)
        if name in done:
            skipped += 1
            continue
        prob = graphs[flat][1].block(top, left, bh, bw, classes)
        writes[flat].append(
            dask.delayed(_write_block, pure=False)(
                top,
                left,
                prob,
                opts["threshold"],
                classes > 1,
                str(marks / name),
                dask_key_name=f"cytounet-write-{token}-{name}",
            )
        )
    finishes: list = []
    for flat, (index, _) in graphs.items():
        tasks.extend(writes[flat])
        finishes.append(
            dask.delayed(_finish_plane, pure=False)(
                out if labels is None else labels,
                index,
                flat,
                grid,
                opts,
                classes,
                str(marks),
                *writes[flat],
                dask_key_name=f"cytounet-finish-{token}-{flat}",
            )
        )
    tasks.extend(finishes)
    if labels is not None:  # instances: consecutive labels over the stack (stage 3)
        indices = np.ndindex(*source.lead_shape) if source.lead_shape else [()]
        for flat, index in enumerate(indices):
            if f"o-{flat}" in done:
                continue
            tasks.append(
                dask.delayed(_offset_plane, pure=False)(
                    labels,
                    out,
                    index,
                    flat,
                    str(marks),
                    *finishes,
                    dask_key_name=f"cytounet-offset-{token}-{flat}",
                )
            )
    return tasks, skipped


def connect(scheduler: Any, timeout: float = 3.0) -> Any:
    """A ``dask.distributed`` client for ``tcp://host:port`` (raises ConfigError if none answers).

    Examples
    --------
    >>> client = connect("tcp://127.0.0.1:8786")  # doctest: +SKIP
    """
    from distributed import Client

    try:
        return Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"No dask scheduler answers at {scheduler} (within {timeout:g} s); start one with "
            "'dask scheduler' and workers with 'dask worker ADDRESS', or use --scheduler threads."
        ) from exc


class _Stopped(Exception):
    """Raised in dask's scheduling loop to stop a local run (the generator was closed)."""


def _run(tasks: list, scheduler: Any) -> Iterator[None]:
    """Run the sink tasks on ``scheduler``; yields once per finished task.

    Closing the generator stops the run: no new task starts (local schedulers)
    or the futures are cancelled (a cluster); finished blocks keep their markers.
    """
    if not tasks:
        return
    if isinstance(scheduler, str) and scheduler in ("threads", "processes", "sync"):
        yield from _run_local(tasks, scheduler)
        return
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else connect(scheduler)
    futures = []
    try:
        futures = client.compute(tasks)
        for future in as_completed(futures):
            future.result()
            yield None
    finally:
        client.cancel([f for f in futures if not f.done()])
        if client is not scheduler:
            client.close()


def _run_local(tasks: list, scheduler: str) -> Iterator[None]:
    import dask
    from dask.callbacks import Callback

    events: queue.Queue = queue.Queue()
    sinks = {t.key for t in tasks}
    failure: list[BaseException] = []
    stop = threading.Event()

    class _Progress(Callback):
        def _pretask(self, key, dsk, state):
            if stop.is_set():
                raise _Stopped

        def _posttask(self, key, result, dsk, state, worker_id):
            if key in sinks:
                events.put(key)

    def work() -> None:
        try:
            with _Progress():
                dask.compute(*tasks, scheduler=scheduler)
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
        finally:
            events.put(None)

    thread = threading.Thread(target=work, name="cytounet-zarr", daemon=True)
    thread.start()
    try:
        while events.get() is not None:
            yield None
    finally:
        stop.set()
        thread.join()
    if failure and not isinstance(failure[0], _Stopped):
        raise failure[0]


def _check_before_writing(bundle, spec, scheduler, threshold, min_size, instances) -> Any:
    """Check the options and reach the scheduler before anything is written."""
    from .postprocess import postprocess

    postprocess(
        np.zeros((4, 4, bundle.classes) if bundle.classes > 1 else (4, 4), np.float32),
        threshold,
        min_size=min_size,
        instances=instances,
        multiclass=bundle.classes > 1,
    )
    if isinstance(scheduler, str) and scheduler in ("threads", "processes", "sync"):
        if scheduler == "processes" and spec.path.startswith("memory:"):
            raise ConfigError("Save the model first: worker processes load it from its file.")
        return scheduler
    if spec.path.startswith("memory:"):
        raise ConfigError("Save the model first: cluster workers load it from its file.")
    return connect(scheduler) if isinstance(scheduler, str) else scheduler


def iter_predict_to_zarr(
    model: ModelBundle | str | os.PathLike,
    image: Any,
    output: str | os.PathLike,
    *,
    scheduler: Any = "threads",
    channel_axis: int | None = None,
    threshold: float = 0.5,
    min_size: int = 0,
    fill_holes: bool = True,
    instances: bool = False,
    split_touching: bool = False,
    mask_value: int = 1,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    overlap: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    block_size: int | None = None,
    precision: str = "auto",
    jit: bool | None = None,
) -> Iterator[PredictionProgress | ZarrPrediction]:
    """Segment ``image`` into the zarr array ``output``; yields progress, then the result.

    Same options and same result as :func:`~.predict.iter_segment` (binary masks
    are written as 0/``mask_value``), with the output chunked ``(1, ..., block,
    block)``. ``scheduler`` is ``"threads"``, ``"processes"``, ``"sync"``, the
    address of a ``dask.distributed`` scheduler or a ``Client``. Started again on
    an unfinished output with the same settings, it resumes where it stopped.

    Examples
    --------
    >>> for event in iter_predict_to_zarr("m.keras", "in.zarr", "out.zarr"):  # doctest: +SKIP
    ...     pass
    >>> event.shape  # doctest: +SKIP
    (3, 6144, 6144)
    """
    t0 = time.perf_counter()
    instances = instances or split_touching
    bundle, spec, source, plan = prepare(
        model,
        image,
        channel_axis=channel_axis,
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        precision=precision,
        jit=jit,
    )
    where = _check_before_writing(bundle, spec, scheduler, threshold, min_size, instances)
    try:
        yield from _predict(
            bundle,
            spec,
            source,
            plan,
            where,
            output,
            batch_size,
            t0,
            block_size or tile_size,
            {
                "threshold": float(threshold),
                "min_size": int(min_size),
                "fill_holes": bool(fill_holes),
                "instances": bool(instances),
                "split_touching": bool(split_touching),
                "mask_value": int(mask_value),
            },
        )
    finally:
        if where is not scheduler:  # a client this function connected
            where.close()


def _predict(bundle, spec, source, plan, scheduler, output, batch_size, t0, block_size, opts):
    """The body of :func:`iter_predict_to_zarr` once the inputs are checked."""
    instances = opts["instances"]
    block = int(block_size or max(source.height, source.width))
    dtype = "int32" if instances else "uint8"
    shape = (*source.lead_shape, source.height, source.width)
    chunks = (1,) * len(source.lead_shape) + (min(block, source.height), min(block, source.width))
    path = Path(output).expanduser().resolve()
    out, labels, complete = _open_output(
        path, shape, chunks, dtype, _settings(spec, source, plan, block, batch_size, opts)
    )
    total_blocks = sum(1 for _ in iter_blocks(source, block))
    planes = int(np.prod(source.lead_shape)) if source.lead_shape else 1
    if complete:
        yield ZarrPrediction(path, shape, dtype, 0, total_blocks, time.perf_counter() - t0)
        return
    marks = path / PARTIAL / "done"
    done = set(os.listdir(marks))
    tasks, skipped = _graph(
        bundle, spec, source, plan, out, labels, block, batch_size, opts, done, marks
    )
    total = len(tasks)
    yield PredictionProgress(done=0, total=total, plane=0, planes=planes)
    try:
        for count, _ in enumerate(_run(tasks, scheduler), start=1):
            yield PredictionProgress(done=count, total=total, plane=0, planes=planes)
    finally:
        CHUNKS.drop(source.token)  # this process's decoded input chunks (workers' stay bounded)
    record = dict(out.attrs)["cytounet"]
    out.attrs["cytounet"] = {**record, "complete": True}
    shutil.rmtree(path / PARTIAL, ignore_errors=True)
    predicted = sum(1 for t in tasks if "-write-" in str(t.key))
    yield ZarrPrediction(path, shape, dtype, predicted, skipped, time.perf_counter() - t0)


def predict_to_zarr(
    model: ModelBundle | str | os.PathLike,
    image: Any,
    output: str | os.PathLike,
    *,
    progress: Callable[[PredictionProgress], None] | None = None,
    **kwargs: Any,
) -> ZarrPrediction:
    """Run :func:`iter_predict_to_zarr` to the end; returns its :class:`ZarrPrediction`.

    Examples
    --------
    >>> result = predict_to_zarr("cells.keras", "stack.zarr", "masks.zarr")  # doctest: +SKIP
    """
    result = None
    for event in iter_predict_to_zarr(model, image, output, **kwargs):
        if isinstance(event, PredictionProgress):
            if progress is not None:
                progress(event)
        else:
            result = event
    return result
