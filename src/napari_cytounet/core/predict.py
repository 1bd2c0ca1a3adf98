"""Tiled prediction of any image size, with overlap and smooth blending.

An image is normalised as in training, reflect-padded by a halo, and cut into
square tiles on a grid whose step is a multiple of ``2**depth`` (so every tile
sees the same pooling grid as the whole image would). Tiles are predicted in
batches and blended with a weight that is zero in a halo at each tile edge and
rises smoothly (sine-squared) across the rest of the overlap: pixels near a tile
border, where the network lacks context, are taken from the neighbouring tile.
The result matches an untiled prediction closely (see the tests) while memory
is bounded by the tile batch, whatever the image size.

Input of any dimensionality is treated as a series of 2D planes over the
leading axes (stacks, time series); an RGB/multichannel image has its channels
on ``channel_axis`` (the last axis by default when the model expects several
channels).

Examples
--------
>>> probabilities = predict_probabilities(bundle, image)  # doctest: +SKIP
>>> labels = segment(bundle, image, threshold=0.5, min_size=50)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .bundle import ModelBundle
from .config import DEFAULT_TILE_SIZE
from .data import channel_axis_for, check_dtype, normalization_params, to_channels_last
from .errors import ConfigError, DataError, ModelError
from .events import PredictionFinished, PredictionProgress
from .precision import use_xla
from .views import check_views, mean_over_views

#: Tiles per prediction batch. One 1024 x 1024 tile already fills the CPU; in float32 two tiles
#: per batch were no faster (1.16 vs 1.18 Mpx/s on 2 cores) and doubled the activations' memory
#: (3 x 6144^2 zarr stack: 2.04 GiB peak with 2 per batch).
DEFAULT_BATCH_SIZE = 1

_PREDICTORS: dict[tuple[int, bool], Any] = {}


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _round_down(value: int, multiple: int) -> int:
    return max(multiple, int(value // multiple * multiple))


def blend_ramp(length: int, overlap: int, halo: int) -> np.ndarray:
    """1D blending weight of a tile: 0 within ``halo`` of each edge, sine-squared rise to 1.

    The rise spans ``overlap - 2 * halo`` pixels, so two tiles overlapping by
    ``overlap`` pixels always have a positive total weight.

    Examples
    --------
    >>> w = blend_ramp(16, 8, 2)
    >>> float(w[0]), float(w[8])
    (0.0, 1.0)
    """
    d = np.minimum(np.arange(length), np.arange(length)[::-1]).astype(np.float64)
    halo = min(halo, max(0, (overlap - 1) // 2))
    rise = max(1, overlap - 2 * halo)
    t = np.clip((d - halo + 0.5) / rise, 0.0, 1.0)
    w = np.sin(0.5 * np.pi * t) ** 2
    w[d < halo] = 0.0
    return w.astype(np.float32)


def _predictor(model: Any, jit: bool) -> Callable[[np.ndarray], np.ndarray]:
    key = (id(model), jit)
    fn = _PREDICTORS.get(key)
    if fn is None:
        import tensorflow as tf

        @tf.function(jit_compile=jit, reduce_retracing=True)
        def run(x: Any) -> Any:
            return model(x, training=False)

        def fn(x: np.ndarray) -> np.ndarray:
            return np.asarray(run(x), dtype=np.float32)

        if len(_PREDICTORS) > 8:
            _PREDICTORS.clear()
        _PREDICTORS[key] = fn
    return fn


def _split_channels(image: Any, bundle: ModelBundle, channel_axis: int | None) -> tuple[Any, bool]:
    """The image with channels (if any) last, ``(..., H, W[, C])``, and whether it has them.

    Without ``channel_axis`` the model's input channels decide (:func:`channel_axis_for`).
    """
    image = image if hasattr(image, "shape") else np.asarray(image)
    if channel_axis is None:
        channel_axis = channel_axis_for(image.shape, bundle.in_channels)
    if channel_axis is not None:
        channel_axis = channel_axis % image.ndim
        if channel_axis != image.ndim - 1:
            image = np.moveaxis(np.asarray(image), channel_axis, -1)
        return image, True
    return image, False


def _plane_tiles(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    n = math.ceil((size - tile) / step) + 1
    return [i * step for i in range(n)]


def _axis_plan(
    span: int, tile: int | None, overlap: int, divisor: int
) -> tuple[int, int, list[int]]:
    """Tile length, step and origins along one axis, covering ``span`` evenly."""
    whole = _round_up(span, divisor)
    if tile is None or whole <= tile:
        return whole, whole, [0]
    n = math.ceil((span - overlap) / (tile - overlap))
    length = _round_up(math.ceil((span - overlap) / n) + overlap, divisor)
    step = length - overlap
    return length, step, [i * step for i in range(n)]


class TilePlan:
    """Geometry of tiled prediction for one plane size (exposed for tests and benchmarks).

    The plane is reflect-padded by ``halo`` pixels on each side and covered by
    ``n_tiles`` tiles of ``tile_h x tile_w`` (multiples of ``divisor``, at most
    ``tile_size``) that overlap by ``overlap`` pixels; tile sizes adapt so the
    tiles cover the plane evenly instead of wasting work on padding.
    """

    def __init__(
        self,
        height: int,
        width: int,
        divisor: int,
        tile_size: int | None,
        overlap: int | None,
        fixed: tuple[int, int] | None = None,
    ) -> None:
        if overlap is None:
            overlap = max(4 * divisor, 64)
            if fixed is not None:  # small fixed inputs (64x64): a quarter of the tile at most
                overlap = min(overlap, max(divisor, _round_down(min(fixed) // 4, divisor)))
        overlap = _round_up(int(overlap), divisor)
        halo = overlap * 3 // 8
        if fixed is not None and (height, width) == tuple(fixed):
            halo = 0  # exactly the model's input: one tile, as the model's authors ran it
        self.halo, self.overlap = halo, overlap
        span_h, span_w = height + 2 * halo, width + 2 * halo
        if fixed is not None:
            tile_h, tile_w = fixed
            if overlap >= min(tile_h, tile_w):
                raise DataError(
                    f"The model's fixed input {tile_h}x{tile_w} is too small for an overlap of "
                    f"{overlap}; pass a smaller overlap."
                )
            self.step_h, self.step_w = tile_h - overlap, tile_w - overlap
            self.ys = _plane_tiles(span_h, tile_h, self.step_h)
            self.xs = _plane_tiles(span_w, tile_w, self.step_w)
        else:
            t = None
            if tile_size is not None:
                t = _round_down(int(tile_size), divisor)
                if t <= overlap:
                    raise DataError(
                        f"tile_size {tile_size} must be larger than the overlap {overlap}; "
                        "use a larger tile or a smaller overlap."
                    )
            tile_h, self.step_h, self.ys = _axis_plan(span_h, t, overlap, divisor)
            tile_w, self.step_w, self.xs = _axis_plan(span_w, t, overlap, divisor)
        self.tile_h, self.tile_w = tile_h, tile_w
        self.padded_h = max(self.ys[-1] + tile_h, span_h)
        self.padded_w = max(self.xs[-1] + tile_w, span_w)
        self.height, self.width = height, width
        wy = blend_ramp(tile_h, overlap, halo) if len(self.ys) > 1 else np.ones(tile_h, np.float32)
        wx = blend_ramp(tile_w, overlap, halo) if len(self.xs) > 1 else np.ones(tile_w, np.float32)
        self.weight_y, self.weight_x = wy, wx

    @property
    def n_tiles(self) -> int:
        """Tiles per plane."""
        return len(self.ys) * len(self.xs)

    @property
    def computed_pixels(self) -> int:
        """Pixels the network computes per plane (tiles included overlap and padding)."""
        return self.n_tiles * self.tile_h * self.tile_w

    def origins(self) -> list[tuple[int, int]]:
        """Top-left corners of the tiles in padded coordinates."""
        return [(y, x) for y in self.ys for x in self.xs]


def _weight_sum(origins: list[int], ramp: np.ndarray, length: int) -> np.ndarray:
    total = np.zeros(max(length, origins[-1] + ramp.size), np.float32)
    for o in origins:
        total[o : o + ramp.size] += ramp
    return total


def _predict_plane(
    fn: Callable[[np.ndarray], np.ndarray],
    plane: np.ndarray,
    offset: np.ndarray,
    gain: np.ndarray,
    plan: TilePlan,
    out: np.ndarray,
    batch_size: int,
) -> Iterator[int]:
    """Predict one raw channels-last plane ``(H, W, C)`` into ``out``; yields tiles done per batch.

    Tiles are normalised on the fly from the reflect-padded raw plane (kept in
    its own dtype) and blended straight into ``out``; the blending weights form
    a separable grid, so their sum is an outer product of two 1D sums and no
    full-size weight image is needed. Peak memory beyond ``out`` is the padded
    raw plane plus one batch of tiles.
    """
    h, w = plan.height, plan.width
    halo = plan.halo
    pad_y = (halo, plan.padded_h - h - halo)
    pad_x = (halo, plan.padded_w - w - halo)
    mode = "reflect" if min(h, w) > 1 else "edge"
    padded = np.pad(plane, (pad_y, pad_x, (0, 0)), mode=mode)
    th, tw = plan.tile_h, plan.tile_w
    out[...] = 0.0
    origins = plan.origins()
    batch = np.zeros((batch_size, th, tw, padded.shape[-1]), np.float32)
    single = len(origins) == 1
    for start in range(0, len(origins), batch_size):
        chunk = origins[start : start + batch_size]
        n = 1 if single else batch_size
        for i, (y0, x0) in enumerate(chunk):
            fill_tile(batch[i], padded[y0 : y0 + th, x0 : x0 + tw], offset, gain)
        batch[len(chunk) :] = 0.0
        pred = fn(batch[:n])
        for i, (y0, x0) in enumerate(chunk):
            blend_tile(out, pred[i], plan, y0, x0)
        yield len(chunk)
    normalize_blend(out, plan)


def fill_tile(slot: np.ndarray, window: np.ndarray, offset: np.ndarray, gain: np.ndarray) -> None:
    """Write one raw tile into a float32 batch slot, normalised as ``(window - offset) * gain``.

    Examples
    --------
    >>> slot = np.empty((2, 2, 1), np.float32)
    >>> fill_tile(slot, np.full((2, 2, 1), 3), np.array([1.0]), np.array([0.5]))
    >>> float(slot[0, 0, 0])
    1.0
    """
    slot[...] = window
    slot -= offset
    slot *= gain


def blend_tile(
    out: np.ndarray, pred: np.ndarray, plan: TilePlan, y0: int, x0: int, top: int = 0, left: int = 0
) -> None:
    """Add the weighted prediction of the tile at padded ``(y0, x0)`` to ``out``.

    ``out`` ``(h, w, C)`` holds image rows ``top:top+h`` and columns ``left:left+w``
    (the whole plane by default, or one output block): only the part of the tile
    inside it is added, with the same float operations for any block layout.

    Examples
    --------
    >>> plan = TilePlan(40, 40, 4, 32, 8)
    >>> out = np.zeros((40, 40, 1), np.float32)
    >>> blend_tile(out, np.ones((plan.tile_h, plan.tile_w, 1), np.float32), plan, 0, 0)
    >>> bool(out[0, 0, 0] > 0)
    True
    """
    halo, th, tw = plan.halo, plan.tile_h, plan.tile_w
    # tile rows/columns that fall inside ``out`` (padded coords -> image coords)
    ty0, ty1 = max(y0, halo + top), min(y0 + th, halo + plan.height, halo + top + out.shape[0])
    tx0, tx1 = max(x0, halo + left), min(x0 + tw, halo + plan.width, halo + left + out.shape[1])
    if ty0 >= ty1 or tx0 >= tx1:
        return
    tile = pred[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]
    weight = np.outer(plan.weight_y[ty0 - y0 : ty1 - y0], plan.weight_x[tx0 - x0 : tx1 - x0])
    oy, ox = ty0 - halo - top, tx0 - halo - left
    out[oy : oy + ty1 - ty0, ox : ox + tx1 - tx0] += tile * weight[..., None]


def normalize_blend(out: np.ndarray, plan: TilePlan, top: int = 0, left: int = 0) -> None:
    """Divide blended ``out`` (image rows ``top:``, columns ``left:``) by the weight sums, in place.

    Examples
    --------
    >>> plan = TilePlan(40, 40, 4, 32, 8)
    >>> out = np.zeros((40, 40, 1), np.float32)
    >>> for y0, x0 in plan.origins():
    ...     blend_tile(out, np.ones((plan.tile_h, plan.tile_w, 1), np.float32), plan, y0, x0)
    >>> normalize_blend(out, plan)
    >>> bool(np.allclose(out, 1.0))
    True
    """
    h, w, halo = out.shape[0], out.shape[1], plan.halo
    norm_y = _weight_sum(plan.ys, plan.weight_y, plan.padded_h)[halo : halo + plan.height]
    norm_x = _weight_sum(plan.xs, plan.weight_x, plan.padded_w)[halo : halo + plan.width]
    inv_x = (1.0 / np.maximum(norm_x, 1e-12)).astype(np.float32)[left : left + w]
    for row in range(h):  # in place, row by row: no full-size temporary
        out[row] *= (inv_x / max(norm_y[top + row], 1e-12))[:, None]


def tile_predictor(
    bundle: ModelBundle, precision: str = "auto", jit: bool | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """The cached network call ``batch (B, H, W, C) -> probabilities`` used for tiles.

    Examples
    --------
    >>> fn = tile_predictor(bundle)  # doctest: +SKIP
    >>> fn(np.zeros((2, 256, 256, 1), np.float32)).shape  # doctest: +SKIP
    (2, 256, 256, 1)
    """
    if bundle.legacy:  # an arbitrary Keras model: run as saved
        return _predictor(bundle.inference_model(precision), False)
    # BatchNorm folded, transposed convolutions as pointwise ones (.folded_unet): 3x faster
    return _predictor(bundle.folded_unet(precision), use_xla(jit))


def iter_probabilities(
    bundle: ModelBundle,
    image: Any,
    *,
    channel_axis: int | None = None,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    overlap: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    precision: str = "auto",
    jit: bool | None = None,
    views: int = 1,
) -> Iterator[PredictionProgress | np.ndarray]:
    """Generator form of :func:`predict_probabilities`: yields progress, then the array."""
    if not isinstance(bundle, ModelBundle):
        raise ModelError("Expected a ModelBundle; load one with load_bundle(path).")
    if hasattr(bundle, "iter_probabilities"):  # a bioimage.io model run by bioimageio.core
        if views != 1:
            raise ConfigError(
                "views (test-time augmentation) works with napari-cytounet models only; "
                "use views=1 for a bioimage.io model."
            )
        yield from bundle.iter_probabilities(image, channel_axis=channel_axis)
        return
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}.")
    views = check_views(views)
    check_dtype(image if hasattr(image, "dtype") else np.asarray(image), "the image")
    image, has_channels = _split_channels(image, bundle, channel_axis)
    spatial_ndim = 3 if has_channels else 2
    if image.ndim < spatial_ndim:
        raise DataError(
            f"Expected an image with at least 2 spatial axes, got shape {tuple(image.shape)}."
        )
    lead_shape = tuple(image.shape[: image.ndim - spatial_ndim])
    h, w = image.shape[image.ndim - spatial_ndim : image.ndim - spatial_ndim + 2]
    if h < 1 or w < 1:
        raise DataError(f"The image is empty (shape {tuple(image.shape)}).")
    classes = bundle.classes
    plan = TilePlan(h, w, bundle.unet.divisor, tile_size, overlap, bundle.fixed_input_size)
    planes = int(np.prod(lead_shape)) if lead_shape else 1
    total = planes * plan.n_tiles
    fn = tile_predictor(bundle, precision, jit)
    if views > 1:  # each batch of tiles: the mean over flipped/rotated views
        one_view = fn

        def fn(batch: np.ndarray) -> np.ndarray:
            return mean_over_views(one_view, batch, views)

    out_shape = (*lead_shape, h, w) + ((classes,) if classes > 1 else ())
    result = np.empty(out_shape, np.float32)
    done = 0
    yield PredictionProgress(done=0, total=total, plane=0, planes=planes)
    for p, index in enumerate(np.ndindex(*lead_shape) if lead_shape else [()]):
        plane = to_channels_last(np.asarray(image[index]), bundle.in_channels)
        if np.issubdtype(plane.dtype, np.floating) and not np.isfinite(plane).all():
            raise DataError(
                f"Plane {index or 0} contains NaN or infinite values; fix the image first."
            )
        offset, gain = normalization_params(plane, bundle.normalization)
        # a view into the result: binary (H, W) gets a trailing class axis of 1
        target = result[index][..., None] if classes == 1 else result[index]
        for n_done in _predict_plane(fn, plane, offset, gain, plan, target, batch_size):
            done += n_done
            yield PredictionProgress(done=done, total=total, plane=p + 1, planes=planes)
        del plane
    yield result


def predict_probabilities(
    bundle: ModelBundle,
    image: Any,
    *,
    channel_axis: int | None = None,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    overlap: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[PredictionProgress], None] | None = None,
    precision: str = "auto",
    jit: bool | None = None,
    views: int = 1,
) -> np.ndarray:
    """Predict per-pixel probabilities for an image of any size.

    Parameters
    ----------
    bundle
        The model (see :func:`~.bundle.load_bundle`).
    image
        ``(..., H, W)`` for one-channel models, ``(..., H, W, C)`` with
        channels last (or on ``channel_axis``); numpy or dask. Leading axes
        are predicted plane by plane.
    channel_axis
        Axis holding colour channels, if any (e.g. ``-1`` for an RGB layer).
    tile_size
        Tile side in pixels (rounded down to a multiple of ``2**depth``);
        ``None`` predicts each plane in one piece.
    overlap
        Overlap between tiles (default ``max(2**(depth+2), 64)``).
    batch_size
        Tiles per network call.
    progress
        Called with a :class:`PredictionProgress` after each batch of tiles.
    precision
        ``"auto"``, ``"float32"`` or ``"mixed_bfloat16"``.
    jit
        Compile the network with XLA (default: on GPUs only; see
        :func:`~napari_cytounet.core.precision.use_xla`).
    views
        Average each tile's answer over 1, 2, 4 or 8 flipped/rotated views
        (test-time augmentation, :mod:`.views`): a little more accurate at object
        edges, ``views`` times the compute.

    Returns
    -------
    numpy.ndarray
        float32 probabilities ``(..., H, W)`` for a binary model, or
        ``(..., H, W, classes)`` for a multi-class model.

    Examples
    --------
    >>> prob = predict_probabilities(bundle, image, tile_size=512)  # doctest: +SKIP
    >>> prob.shape == image.shape  # doctest: +SKIP
    True
    """
    result = None
    for item in iter_probabilities(
        bundle,
        image,
        channel_axis=channel_axis,
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        precision=precision,
        jit=jit,
        views=views,
    ):
        if isinstance(item, PredictionProgress):
            if progress is not None:
                progress(item)
        else:
            result = item
    return result


def iter_segment(
    bundle: ModelBundle,
    image: Any,
    *,
    channel_axis: int | None = None,
    threshold: float = 0.5,
    min_size: int = 0,
    fill_holes: bool = True,
    instances: bool = False,
    split_touching: bool = False,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    overlap: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    precision: str = "auto",
    jit: bool | None = None,
    views: int = 1,
) -> Iterator[PredictionProgress | PredictionFinished]:
    """Predict and post-process, yielding progress and finally :class:`PredictionFinished`.

    This is the one prediction path of the widgets, the CLI and the demo. The final event
    holds ``probabilities`` (float32) and ``labels`` (uint8 mask, int32 instance labels, or
    a class map for multi-class models) with the input's leading and spatial shape.
    ``precision``, ``jit`` and ``views`` are as in :func:`predict_probabilities`.

    Examples
    --------
    >>> for event in iter_segment(bundle, image, min_size=50):  # doctest: +SKIP
    ...     print(type(event).__name__)
    PredictionProgress
    PredictionFinished
    """
    from .postprocess import postprocess

    t0 = time.perf_counter()
    tiling = {
        "channel_axis": channel_axis, "tile_size": tile_size, "overlap": overlap,
        "batch_size": batch_size, "precision": precision, "jit": jit, "views": views,
    }  # fmt: skip
    prob = None
    for item in iter_probabilities(bundle, image, **tiling):
        if isinstance(item, PredictionProgress):
            yield item
        else:
            prob = item
    labels = postprocess(
        prob,
        threshold,
        min_size=min_size,
        fill_holes=fill_holes,
        instances=instances,
        split_touching=split_touching,
        multiclass=bundle.classes > 1,
    )
    yield PredictionFinished(probabilities=prob, labels=labels, seconds=time.perf_counter() - t0)


def segment(bundle: ModelBundle, image: Any, **kwargs: Any) -> np.ndarray:
    """Predict and post-process in one call; returns labels (see :func:`iter_segment`).

    Examples
    --------
    >>> mask = segment(bundle, image, threshold=0.5, min_size=100)  # doctest: +SKIP
    """
    labels = None
    for event in iter_segment(bundle, image, **kwargs):
        if isinstance(event, PredictionFinished):
            labels = event.labels
    return labels
