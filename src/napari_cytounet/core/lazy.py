"""Lazy prediction of dask and zarr arrays, block by block, on any dask scheduler.

The tiles of a plane follow the same global :class:`~.predict.TilePlan` as the
in-memory path. A dask graph reads, per batch of tiles, only the input windows
those tiles need (the tile and its reflect-padded halo), predicts the batch in
full batches of the same size, and blends each output block from the tiles that
overlap it, in the same tile order and normalised by the same separable weight
sums: every pixel sees the same float operations as in
:func:`~.predict.predict_probabilities`, so the result is identical. The
per-plane normalisation uses the same strided subsample of the plane.

Dask runs the graph (``threads``, ``processes`` or a ``dask.distributed``
cluster); each worker process loads the model once (cached by path, size and
modification time). Memory is bounded by the tile, batch and block sizes (and,
for the post-processing of :func:`iter_predict_to_zarr`, one plane), not by the
number of planes.

Examples
--------
>>> prob = lazy_probabilities("cells.keras", dask_stack)  # doctest: +SKIP
>>> prob[0].compute().shape  # doctest: +SKIP
(6144, 6144)
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import ModelBundle
from .chunk_cache import cached_strided, cached_window, chunk_shape
from .errors import DataError, ModelError
from .predict import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_TILE_SIZE,
    TilePlan,
    blend_tile,
    fill_tile,
    normalize_blend,
    tile_predictor,
)

_WORKER_MODELS: dict[tuple, Any] = {}
_BUNDLES: dict[tuple, ModelBundle] = {}  # bundles loaded by path in this (client) process
_MODELS_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelSpec:
    """How a worker finds the model: its file (with size and mtime) and the precision.

    Workers cache the loaded model per process under :attr:`key`, so a model file
    that changes on disk is loaded again rather than served stale.

    Examples
    --------
    >>> spec = ModelSpec.of("cells.keras")  # doctest: +SKIP
    >>> spec.key[0].endswith("cells.keras")  # doctest: +SKIP
    True
    """

    path: str
    mtime_ns: int = 0
    size: int = 0
    precision: str = "auto"
    jit: bool | None = None

    @classmethod
    def of(cls, path: str | os.PathLike, precision: str = "auto", jit: bool | None = None):
        """The spec of the model file at ``path`` (raises ModelError if it is missing)."""
        p = Path(path).expanduser().resolve()
        if not p.is_file():
            raise ModelError(f"No model file at {p}; check the path or train one first.")
        st = p.stat()
        return cls(str(p), st.st_mtime_ns, st.st_size, precision, jit)

    @property
    def key(self) -> tuple:
        """Cache key of the loaded model in a worker process."""
        return (self.path, self.mtime_ns, self.size, self.precision, self.jit)


def worker_predictor(spec: ModelSpec) -> Any:
    """The tile predictor of ``spec``, loaded once per process (thread-safe).

    Examples
    --------
    >>> fn = worker_predictor(ModelSpec.of("cells.keras"))  # doctest: +SKIP
    """
    with _MODELS_LOCK:
        fn = _WORKER_MODELS.get(spec.key)
        if fn is None:
            if spec.path.startswith("memory:"):
                raise ModelError(
                    "This model exists only in the client's memory; save it (save_bundle) and "
                    "pass the file's path to predict on worker processes or a cluster."
                )
            from .bundle import load_bundle

            fn = _serialised(tile_predictor(load_bundle(spec.path), spec.precision, spec.jit))
            _WORKER_MODELS[spec.key] = fn
    return fn


def _serialised(fn: Any) -> Any:
    """One network call at a time per process: TensorFlow already uses every core per call,
    and concurrent first calls would trace the function several times."""
    lock = threading.Lock()

    def call(batch: np.ndarray) -> np.ndarray:
        with lock:
            return fn(batch)

    return call


def resolve_model(
    model: ModelBundle | str | os.PathLike, precision: str = "auto", jit: bool | None = None
) -> tuple[ModelBundle, ModelSpec]:
    """Load (or take) the bundle and its :class:`ModelSpec`; registers it for this process.

    Examples
    --------
    >>> bundle, spec = resolve_model("cells.keras")  # doctest: +SKIP
    """
    if isinstance(model, ModelBundle):
        bundle = model
        if bundle.path is not None and Path(bundle.path).is_file():
            spec = ModelSpec.of(bundle.path, precision, jit)
        else:
            # the bundle's uid, not id(): a resumed run must not take another model for this one
            key = getattr(bundle, "uid", None) or id(bundle)
            spec = ModelSpec(f"memory:{key}", precision=precision, jit=jit)
    else:
        from .bundle import load_bundle

        spec = ModelSpec.of(model, precision, jit)
        bundle = _BUNDLES.get(spec.key[:3])
        if bundle is None:
            bundle = _BUNDLES[spec.key[:3]] = load_bundle(spec.path)
    with _MODELS_LOCK:
        if spec.key not in _WORKER_MODELS:
            _WORKER_MODELS[spec.key] = _serialised(tile_predictor(bundle, precision, jit))
    return bundle, spec


# ---------------------------------------------------------------------------
# sources


@dataclass(frozen=True)
class _Source:
    """An array (numpy, zarr or dask) seen as planes ``(..., H, W, C)``."""

    array: Any
    lead_shape: tuple[int, ...]
    height: int
    width: int
    channels: int
    has_channel_axis: bool
    token: str = ""  # names this source's chunks in chunk_cache.CHUNKS

    @property
    def is_dask(self) -> bool:
        return hasattr(self.array, "dask")

    def window(self, index: tuple, ys: slice, xs: slice) -> Any:
        """A lazy (dask) or deferred read of a window of one plane.

        Unit-step windows of a zarr (or other chunked) array are assembled from
        decoded chunks cached per process, so overlapping tiles decode each
        chunk once (:mod:`.chunk_cache`).
        """
        if self.is_dask:
            return self.array[(*index, ys, xs)]
        import dask

        chunks = chunk_shape(self.array)
        if chunks is not None and ys.step in (None, 1) and xs.step in (None, 1):
            plane = chunks[len(index) : len(index) + 2]
            return dask.delayed(cached_window, pure=False)(
                self.array, plane, self.token, index, ys, xs
            )
        return dask.delayed(_read_window, pure=False)(self.array, index, ys, xs)

    def sample(self, index: tuple, step: int) -> Any:
        """The strided subsample ``plane[::step, ::step]`` used for normalisation."""
        chunks = chunk_shape(self.array)  # None for numpy and dask
        if chunks is not None and step > 1:
            import dask

            plane = chunks[len(index) : len(index) + 2]
            return dask.delayed(cached_strided, pure=False)(
                self.array, plane, self.token, index, step
            )
        return self.window(index, slice(None, None, step), slice(None, None, step))


def _read_window(array: Any, index: tuple, ys: slice, xs: slice) -> np.ndarray:
    return np.asarray(array[(*index, ys, xs)])


def as_source(image: Any, in_channels: int, channel_axis: int | None = None) -> _Source:
    """Check an array for lazy prediction and describe its planes (raises DataError).

    Examples
    --------
    >>> as_source(np.zeros((3, 64, 64), np.uint16), 1).lead_shape
    (3,)
    """
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "uif":
        raise DataError(
            f"The image has dtype {dtype}; lazy prediction needs integer or float pixels. "
            "Convert the array (e.g. to uint16 or float32) first."
        )
    if channel_axis is not None:
        channel_axis = channel_axis % image.ndim
        if channel_axis != image.ndim - 1:
            import dask.array as da

            arr = image if hasattr(image, "dask") else da.from_array(image, chunks=image.chunks)
            image = da.moveaxis(arr, channel_axis, -1)
    has_channels = channel_axis is not None or in_channels > 1
    spatial = 3 if has_channels else 2
    if image.ndim < spatial:
        raise DataError(
            f"Expected an image with at least 2 spatial axes, got shape {tuple(image.shape)}."
        )
    channels = image.shape[-1] if has_channels else 1
    if channels != in_channels:
        raise DataError(
            f"The image has {channels} channel(s) but the model expects {in_channels}; lazy "
            "prediction needs the model's channel count on the channel axis (convert first)."
        )
    lead = tuple(int(n) for n in image.shape[: image.ndim - spatial])
    h, w = (int(n) for n in image.shape[image.ndim - spatial : image.ndim - spatial + 2])
    if h < 1 or w < 1 or 0 in lead:
        raise DataError(f"The image is empty (shape {tuple(image.shape)}).")
    return _Source(image, lead, h, w, channels, has_channels, uuid.uuid4().hex)


def pad_index(positions: np.ndarray, size: int) -> np.ndarray:
    """Image indices of padded positions, as ``np.pad`` reflect (``edge`` when ``size == 1``).

    Examples
    --------
    >>> pad_index(np.arange(-2, 5), 3).tolist()
    [2, 1, 0, 1, 2, 1, 0]
    """
    if size == 1:
        return np.zeros_like(positions)
    period = 2 * (size - 1)
    i = np.mod(positions, period)
    return np.where(i >= size, period - i, i)


def _tile_index(plan: TilePlan, y0: int, x0: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the raw plane that make the tile at padded ``(y0, x0)``."""
    edge = min(plan.height, plan.width) <= 1
    ys = np.arange(y0 - plan.halo, y0 - plan.halo + plan.tile_h)
    xs = np.arange(x0 - plan.halo, x0 - plan.halo + plan.tile_w)
    if edge:  # np.pad mode "edge" (a 1-pixel-high or -wide plane)
        return np.clip(ys, 0, plan.height - 1), np.clip(xs, 0, plan.width - 1)
    return pad_index(ys, plan.height), pad_index(xs, plan.width)


# ---------------------------------------------------------------------------
# tasks (run on workers)


def _norm_params(sample: np.ndarray, height: int, width: int, norm: Any) -> tuple:
    """Normalisation of a plane from its strided subsample, by the in-memory code path."""
    from .data import normalization_params

    sample = sample[..., None] if sample.ndim == 2 else sample
    return normalization_params(_SampledPlane(sample, height, width), norm)


class _SampledPlane:
    """A plane of which only ``plane[::step, ::step]`` is read (by normalization_params)."""

    def __init__(self, sample: np.ndarray, height: int, width: int) -> None:
        self._sample = sample
        self.shape = (height, width, sample.shape[-1])
        self.dtype = sample.dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        return self._sample


def _predict_batch(
    spec: ModelSpec,
    plan: TilePlan,
    tiles: list[tuple[np.ndarray, np.ndarray]],
    windows: list[np.ndarray],
    params: tuple,
    batch_size: int,
    where: str,
) -> np.ndarray:
    """Predict one batch of tiles from their raw windows; returns ``(n, th, tw, classes)``."""
    fn = worker_predictor(spec)
    offset, gain = params
    first = windows[0][..., None] if windows[0].ndim == 2 else windows[0]
    batch = np.zeros((batch_size, plan.tile_h, plan.tile_w, first.shape[-1]), np.float32)
    for i, ((ry, rx), win) in enumerate(zip(tiles, windows)):
        win = win[..., None] if win.ndim == 2 else win
        if win.dtype.kind == "f" and not np.isfinite(win).all():
            raise DataError(f"{where} contains NaN or infinite values; fix the image first.")
        fill_tile(batch[i], win[ry][:, rx], offset, gain)
    n = 1 if plan.n_tiles == 1 else batch_size
    return fn(batch[:n])[: len(tiles)]


def _blend_block(
    plan: TilePlan, top: int, left: int, shape: tuple, refs: list, batches: dict
) -> np.ndarray:
    """Blend the tiles overlapping one output block; returns ``(bh, bw, classes)`` float32."""
    out = np.zeros(shape, np.float32)
    for k, i, y0, x0 in refs:
        blend_tile(out, batches[k][i], plan, y0, x0, top, left)
    normalize_blend(out, plan, top, left)
    return out


# ---------------------------------------------------------------------------
# graph


def block_grid(height: int, width: int, block: int) -> list[tuple[int, int, int, int]]:
    """Output blocks ``(top, left, height, width)`` of a plane, row by row.

    Examples
    --------
    >>> block_grid(5, 3, 4)
    [(0, 0, 4, 3), (4, 0, 1, 3)]
    """
    return [
        (t, left, min(block, height - t), min(block, width - left))
        for t in range(0, height, block)
        for left in range(0, width, block)
    ]


class PlaneGraph:
    """The dask tasks that predict the blocks of one plane (tiles shared between blocks).

    Examples
    --------
    >>> g = PlaneGraph(source, (0,), plan, spec, bundle.normalization, 2, "tok")  # doctest: +SKIP
    >>> g.block(0, 0, 256, 256)  # doctest: +SKIP
    Delayed('cytounet-block-tok-0-0-0')
    """

    def __init__(self, source, index, plan, spec, norm, batch_size, token) -> None:
        import dask

        self.source, self.index, self.plan = source, index, plan
        self.spec, self.batch_size = spec, batch_size
        self.name = f"{token}-{'-'.join(map(str, index)) or '0'}"
        self.where = f"Plane {index or 0}"
        h, w = source.height, source.width
        step = max(1, int(np.sqrt(h * w / 2_000_000)))  # as core.data.normalization_params
        self.params = dask.delayed(_norm_params, pure=False)(
            source.sample(index, step), h, w, norm, dask_key_name=f"cytounet-norm-{self.name}"
        )
        self.origins = plan.origins()
        self._batches: dict[int, Any] = {}

    def _batch(self, k: int) -> Any:
        import dask

        if k not in self._batches:
            plan, src = self.plan, self.source
            chunk = self.origins[k * self.batch_size : (k + 1) * self.batch_size]
            tiles, windows = [], []
            for y0, x0 in chunk:
                iy, ix = _tile_index(plan, y0, x0)
                ys, xs = (
                    slice(int(iy.min()), int(iy.max()) + 1),
                    slice(int(ix.min()), int(ix.max()) + 1),
                )
                tiles.append((iy - ys.start, ix - xs.start))
                windows.append(src.window(self.index, ys, xs))
            self._batches[k] = dask.delayed(_predict_batch, pure=False)(
                self.spec,
                plan,
                tiles,
                windows,
                self.params,
                self.batch_size,
                self.where,
                dask_key_name=f"cytounet-batch-{self.name}-{k}",
            )
        return self._batches[k]

    def block(self, top: int, left: int, bh: int, bw: int, classes: int) -> Any:
        """The delayed float32 probabilities ``(bh, bw, classes)`` of one block."""
        import dask

        plan, refs = self.plan, []
        for t, (y0, x0) in enumerate(self.origins):
            r0, r1 = max(y0 - plan.halo, 0), min(y0 - plan.halo + plan.tile_h, plan.height)
            c0, c1 = max(x0 - plan.halo, 0), min(x0 - plan.halo + plan.tile_w, plan.width)
            if r0 < top + bh and r1 > top and c0 < left + bw and c1 > left:
                refs.append((t // self.batch_size, t % self.batch_size, y0, x0))
        batches = {k: self._batch(k) for k in sorted({r[0] for r in refs})}
        return dask.delayed(_blend_block, pure=False)(
            plan,
            top,
            left,
            (bh, bw, classes),
            refs,
            batches,
            dask_key_name=f"cytounet-block-{self.name}-{top}-{left}",
        )


def prepare(
    model: ModelBundle | str | os.PathLike,
    image: Any,
    *,
    channel_axis: int | None = None,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    overlap: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    precision: str = "auto",
    jit: bool | None = None,
) -> tuple[ModelBundle, ModelSpec, _Source, TilePlan]:
    """Check the inputs of a lazy prediction: the bundle, its spec, the source and the plan.

    Examples
    --------
    >>> bundle, spec, source, plan = prepare("cells.keras", stack)  # doctest: +SKIP
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}.")
    bundle, spec = resolve_model(model, precision, jit)
    source = as_source(image, bundle.in_channels, channel_axis)
    plan = TilePlan(
        source.height,
        source.width,
        bundle.unet.divisor,
        tile_size,
        overlap,
        bundle.fixed_input_size,
    )
    return bundle, spec, source, plan


def lazy_probabilities(
    model: ModelBundle | str | os.PathLike,
    image: Any,
    *,
    channel_axis: int | None = None,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    overlap: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    block_size: int | None = None,
    precision: str = "auto",
    jit: bool | None = None,
) -> Any:
    """Probabilities of a numpy, zarr or dask image as a lazy dask array.

    Identical to :func:`~.predict.predict_probabilities` on the same data, but
    nothing is read or predicted until blocks are computed, and each block
    reads only the windows of its tiles. ``block_size`` (default: the tile
    size) sets the output chunks ``(1, ..., block, block)``. With worker
    processes or a cluster, pass the model as a path (workers load it once each).

    Examples
    --------
    >>> import dask.array as da  # doctest: +SKIP
    >>> prob = lazy_probabilities("cells.keras", da.from_zarr("stack.zarr"))  # doctest: +SKIP
    >>> prob.to_zarr("probabilities.zarr")  # doctest: +SKIP
    """
    import dask.array as da

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
    block = int(block_size or tile_size or max(source.height, source.width))
    classes = bundle.classes
    token = uuid.uuid4().hex[:12]
    planes = []
    for index in np.ndindex(*source.lead_shape) if source.lead_shape else [()]:
        graph = PlaneGraph(source, index, plan, spec, bundle.normalization, batch_size, token)
        rows: dict[int, list] = {}
        for top, left, bh, bw in block_grid(source.height, source.width, block):
            arr = da.from_delayed(
                graph.block(top, left, bh, bw, classes), (bh, bw, classes), dtype=np.float32
            )
            rows.setdefault(top, []).append(arr if classes > 1 else arr[..., 0])
        planes.append(da.block([rows[t] for t in sorted(rows)]))
    stacked = da.stack(planes) if source.lead_shape else planes[0]
    return stacked.reshape(*source.lead_shape, *stacked.shape[1 if source.lead_shape else 0 :])


def iter_blocks(source: _Source, block: int) -> Iterator[tuple[int, tuple, tuple]]:
    """Enumerate ``(flat plane number, plane index, block)`` over all planes.

    Examples
    --------
    >>> src = as_source(np.zeros((2, 5, 5), np.uint8), 1)
    >>> len(list(iter_blocks(src, 4)))
    8
    """
    indices = np.ndindex(*source.lead_shape) if source.lead_shape else [()]
    for flat, index in enumerate(indices):
        for blk in block_grid(source.height, source.width, block):
            yield flat, index, blk
