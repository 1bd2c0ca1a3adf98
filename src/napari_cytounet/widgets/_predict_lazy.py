"""Lazy (zarr- or dask-backed) layers in the Predict widget: found by reference, never loaded.

A layer whose data is a zarr array, a dask array read straight from one (``da.from_zarr``,
``da.from_array(zarr_array)``), or a multiscale image of those (level 0), is segmented by
the engine from the store's *path*: the engine opens the store itself and runs
:func:`~napari_cytounet.core.zarr_io.iter_predict_to_zarr`, block by block, into a zarr
output, and napari shows that output as a lazy Labels layer. The stack never enters
napari's process, nor travels to the engine.

A dask array computed in memory (no zarr store behind it, or a store that was transformed)
cannot be handed over by reference; :func:`zarr_source` says how to save it as zarr first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from napari_cytounet.core.errors import DataError
from napari_cytounet.engine import get_engine

from . import _layers

#: Largest labels stack (bytes, as int32) that "Current plane only" builds in memory for a
#: lazy image; beyond it the plane-only result would itself not fit: write to zarr instead.
PLANE_ONLY_LIMIT = 1 << 30


def is_lazy(layer: Any) -> bool:
    """Whether the layer's full-resolution data is not a numpy array (zarr, dask...).

    Examples
    --------
    >>> class L:  # a stand-in for a napari layer
    ...     data, multiscale = np.zeros((2, 2)), False
    >>> is_lazy(L())
    False
    """
    return not isinstance(_layers.layer_array(layer), np.ndarray)


def _store_path(array: Any) -> Path | None:
    """The local folder of a zarr array (its store's root joined with its path), or None."""
    store = getattr(array, "store", None)
    root = getattr(store, "root", None)  # zarr's LocalStore
    if root is None and type(store).__name__ == "FsspecStore":
        fs = getattr(store.fs, "sync_fs", store.fs)
        protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if "file" in protocol or "local" in protocol:
            root = store.path
    if root is None:
        return None
    inner = str(getattr(array, "path", "") or "").strip("/")
    return Path(root) / inner if inner else Path(root)


def _zarr_in_graph(array: Any) -> Any:
    """The zarr array a dask array reads unchanged (``da.from_zarr``), or None."""
    import zarr

    graph = array.__dask_graph__()
    layers = getattr(graph, "layers", {"": graph})
    if len(layers) > 2:  # from_zarr makes two layers; more means the data were transformed
        return None
    for layer in layers.values():
        for value in layer.values():
            if isinstance(value, zarr.Array):
                return value
    return None


def _matches(path: Path, data: Any) -> bool:
    """Whether the zarr image at ``path`` (level 0 for OME-Zarr) is ``data``'s shape and dtype."""
    from napari_cytounet.core.zarr_io import open_zarr_image

    try:
        found, _ = open_zarr_image(path)
    except DataError:
        return False
    return tuple(found.shape) == tuple(data.shape) and np.dtype(found.dtype) == np.dtype(data.dtype)


def zarr_source(layer: Any) -> Path:
    """The zarr store (array folder, or OME-Zarr image) holding ``layer``'s level-0 data.

    Raises
    ------
    DataError
        If the data are not read from a local zarr store (e.g. a dask array computed in
        memory); the message says how to save it as zarr first.

    Examples
    --------
    >>> zarr_source(viewer.layers["stack"])  # doctest: +SKIP
    PosixPath('/data/stack.zarr')
    """
    try:
        import zarr
    except ImportError as exc:
        raise DataError(
            "Lazy prediction needs zarr and dask: pip install 'napari-cytounet[large]'."
        ) from exc

    data = _layers.layer_array(layer)
    candidates = []
    if isinstance(data, zarr.Array):
        candidates.append(_store_path(data))
    elif hasattr(data, "dask"):
        inner = _zarr_in_graph(data)
        if inner is not None:
            candidates.append(_store_path(inner))
    source_path = getattr(getattr(layer, "source", None), "path", None)
    if source_path:  # opened by a reader plugin (e.g. napari-ome-zarr): the store it read
        candidates.append(Path(source_path))
    for path in candidates:
        if path is not None and path.exists() and _matches(path, data):
            return path.resolve()
    raise DataError(
        f"{layer.name!r} is a {type(data).__module__.split('.')[0]} array that is not read "
        "unchanged from a zarr store on this computer, so it cannot be segmented lazily. Save "
        f"it as zarr first (in the console: dask.array.to_zarr(viewer.layers[{layer.name!r}]"
        ".data, 'stack.zarr')), open that store and predict it; or tick 'Current plane only' "
        "to segment the plane on screen."
    )


def default_output(source: Path, image_name: str) -> Path:
    """Where to write the segmentation of ``source``: beside it if that folder is writable,
    else in the settings folder.

    Examples
    --------
    >>> default_output(Path("/data/stack.zarr"), "stack").name  # doctest: +SKIP
    'stack-segmentation.zarr'
    """
    from ._settings import settings_dir

    stem = source.name.removesuffix(".zarr").removesuffix(".ome") or image_name
    name = f"{stem}-segmentation.zarr"
    if source.parent.is_dir() and os.access(source.parent, os.W_OK):
        return source.parent / name
    return settings_dir() / "predictions" / name


def check_output(output: Any, source: Path) -> Path:
    """The output path chosen in the widget, checked (raises DataError).

    Examples
    --------
    >>> check_output("", Path("/data/in.zarr"))  # doctest: +SKIP
    Traceback (most recent call last):
    DataError: Choose where to write the segmentation ...
    """
    path = Path(output).expanduser() if output else None
    if path is None or str(output) in ("", "."):
        raise DataError("Choose where to write the segmentation (a folder ending in .zarr).")
    path = path.resolve()
    if path == source or source in path.parents or path in source.parents:
        raise DataError(
            f"{path} is (or holds) the image's own store {source}; choose another output path."
        )
    return path


def plane_only_fits(layer: Any) -> None:
    """Raise DataError if the plane-only labels stack of a lazy layer would not fit in memory."""
    size = int(np.prod(_layers.spatial_shape(layer))) * 4
    if size > PLANE_ONLY_LIMIT:
        raise DataError(
            f"{layer.name!r} is too large to keep even its segmentation in memory "
            f"({size / 2**30:.1f} GB): tick 'Write to zarr' to segment it into a zarr store."
        )


def predict_zarr_job(
    bundle: Any,
    path: Path | None,
    source: Path,
    output: Path,
    channel_axis: int | None,
    params: dict[str, Any],
    stop: threading.Event | None = None,
) -> Iterator[Any]:
    """Segment the zarr image at ``source`` into the zarr store ``output``, in the engine.

    Only paths travel to the engine; it opens the store and writes block by block,
    yielding ``PredictionProgress`` then a ``ZarrPrediction``. Stopping keeps the
    finished blocks: the same call resumes.
    """
    yield from get_engine().run(
        "predict_zarr",
        bundle=bundle,
        path=path,
        source=Path(source),
        output=Path(output),
        channel_axis=channel_axis,
        params=params,
        stop=stop,
    )


def open_output(path: Path) -> Any:
    """The finished zarr output, opened lazily for a Labels layer (brush edits go to the store).

    Examples
    --------
    >>> open_output(Path("stack-segmentation.zarr")).shape  # doctest: +SKIP
    (3, 150, 200)
    """
    import zarr

    return zarr.open_array(str(path), mode="r+")
