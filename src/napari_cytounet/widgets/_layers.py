"""Translating napari layers to arrays for the core, and results back into layers.

Nothing here is an algorithm: these helpers pick the right array out of a layer
(first level of a multiscale image, channels last for RGB), split stacks into
the annotated 2D planes the core trains on, and create or update output layers
in place so that re-running a widget never piles up layers. Output layers keep
the source layer's ``scale`` and ``translate``.

Output layers are named after their image (``"cells segmentation"``,
``"cells probability"``, ``"cells corrections"``); see :func:`output_name`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_cytounet.core.errors import DataError

#: Suffixes of the layers the widgets create.
SEGMENTATION = "segmentation"
PROBABILITY = "probability"
CORRECTIONS = "corrections"
ERRORS = "errors"
#: ``layer.metadata`` key with the small tag that says which widget made a layer, and from what.
META_KEY = "napari-cytounet"


def output_name(image_name: str, what: str) -> str:
    """Name of an output layer: ``output_name("cells", "segmentation")`` = ``"cells segmentation"``.

    Outputs are found again by this name, so re-running updates them.
    """
    return f"{image_name} {what}"


def layer_array(layer: Any) -> Any:
    """The full-resolution data of a layer (level 0 of a multiscale layer)."""
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return data


def is_rgb(layer: Any) -> bool:
    """Whether the layer is an RGB(A) image (its last axis holds colours)."""
    return bool(getattr(layer, "rgb", False))


def spatial_shape(layer: Any) -> tuple[int, ...]:
    """Shape of the layer without the colour axis of an RGB image."""
    shape = tuple(int(n) for n in layer_array(layer).shape)
    return shape[:-1] if is_rgb(layer) else shape


def leading_shape(layer: Any) -> tuple[int, ...]:
    """Shape of the axes before the last two (planes of a stack; ``()`` for 2D)."""
    return spatial_shape(layer)[:-2]


def check_pair(image_layer: Any, labels_layer: Any) -> None:
    """Raise :class:`DataError` unless the labels cover the image pixel for pixel."""
    if image_layer is None:
        raise DataError(
            "Choose an image layer first (open an image or a sample via File > Open Sample)."
        )
    if labels_layer is None:
        raise DataError(
            f"Choose a labels layer for {image_layer.name!r} (create one with the 'new labels "
            "layer' button and paint, or open the mask)."
        )
    img_shape = spatial_shape(image_layer)
    lab_shape = spatial_shape(labels_layer)
    if len(img_shape) < 2:
        raise DataError(f"{image_layer.name!r} is not an image (shape {img_shape}).")
    if img_shape != lab_shape:
        raise DataError(
            f"Labels {labels_layer.name!r} have shape {lab_shape} but image {image_layer.name!r} "
            f"has {img_shape}; choose the labels drawn on this image."
        )


def _plane_name(name: str, index: tuple[int, ...]) -> str:
    if not index:
        return name
    return f"{name} [plane {','.join(str(i) for i in index)}]"


def annotated_planes(labels: Any) -> list[tuple[int, ...]]:
    """Indices over the leading axes of the planes that hold any nonzero label."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return [()] if labels.any() else []
    axes = tuple(range(labels.ndim - 2, labels.ndim))
    found = np.asarray(labels != 0).any(axis=axes)
    return [tuple(int(i) for i in idx) for idx in np.argwhere(found)]


def training_pairs(
    image_layer: Any,
    labels_layer: Any,
    *,
    planes: Sequence[tuple[int, ...]] | None = None,
    labels_data: Any = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """2D ``(images, labels, names)`` for the core from an Image + Labels pair.

    A 2D pair gives one item; a stack gives one item per annotated plane (or per
    plane in ``planes``). ``labels_data`` replaces the layer's data (e.g. the
    labels converted to scribbles).

    Raises
    ------
    DataError
        If the layers do not match or nothing is annotated.
    """
    check_pair(image_layer, labels_layer)
    image = layer_array(image_layer)
    labels = np.asarray(layer_array(labels_layer) if labels_data is None else labels_data)
    if planes is None:
        planes = annotated_planes(labels)
    if not planes:
        raise DataError(
            f"Labels {labels_layer.name!r} are empty: paint some cells (and, for scribbles, "
            "background) on the image first."
        )
    images, masks, names = [], [], []
    for index in planes:
        images.append(np.asarray(image[index]))
        masks.append(np.asarray(labels[index]))
        names.append(_plane_name(image_layer.name, index))
    return images, masks, names


def plane_at_cursor(viewer: Any, layer: Any) -> tuple[int, ...]:
    """Index over the leading axes of the plane of ``layer`` shown in the viewer."""
    lead = leading_shape(layer)
    if not lead:
        return ()
    ndim = len(spatial_shape(layer))
    point = list(viewer.dims.point)[-ndim:]
    try:
        coords = layer.world_to_data(point)
    except Exception:  # pragma: no cover - older napari
        coords = point
    return tuple(int(np.clip(round(float(c)), 0, n - 1)) for c, n in zip(coords, lead))


def find_layer(viewer: Any, name: str, kind: type | None = None) -> Any:
    """The layer called ``name`` (of type ``kind``), or ``None``."""
    for layer in viewer.layers:
        if layer.name == name and (kind is None or isinstance(layer, kind)):
            return layer
    return None


def _geometry(source: Any) -> dict[str, Any]:
    return {"scale": tuple(source.scale), "translate": tuple(source.translate)}


def _fit_dtype(array: np.ndarray, dtype: Any) -> np.ndarray:
    return array.astype(np.result_type(array.dtype, dtype), copy=False)


def _put_layer(
    viewer: Any,
    kind: str,
    name: str,
    data: np.ndarray,
    source: Any,
    index: tuple[int, ...] | None,
    tag: dict[str, Any] | None,
    **kwargs: Any,
) -> Any:
    """Create the ``kind`` ("labels" or "image") layer ``name`` or update it in place."""
    from napari.layers import Image, Labels

    layer = find_layer(viewer, name, Labels if kind == "labels" else Image)
    full_shape = spatial_shape(source)
    if index is not None and len(full_shape) > 2:
        if layer is not None and tuple(layer.data.shape) == full_shape:
            full = _fit_dtype(np.array(layer.data, copy=True), data.dtype)
        else:
            full = np.zeros(full_shape, data.dtype)
        full[index] = data
        data = full
    geometry = _geometry(source)
    if layer is None:
        add = viewer.add_labels if kind == "labels" else viewer.add_image
        layer = add(data, name=name, **geometry, **kwargs)
    else:
        layer.data = data
        layer.scale = geometry["scale"]
        layer.translate = geometry["translate"]
    if tag is not None:
        layer.metadata[META_KEY] = dict(tag)
    return layer


def put_labels(
    viewer: Any,
    name: str,
    data: np.ndarray,
    source: Any,
    *,
    index: tuple[int, ...] | None = None,
    tag: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Create the Labels layer ``name`` or update it in place; returns the layer.

    With ``index``, ``data`` is one plane written into a stack the shape of
    ``source`` (created with zeros if needed). The layer gets ``source``'s scale
    and translate.
    """
    return _put_layer(viewer, "labels", name, data, source, index, tag, **kwargs)


def put_image(
    viewer: Any,
    name: str,
    data: np.ndarray,
    source: Any,
    *,
    index: tuple[int, ...] | None = None,
    tag: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Create the Image layer ``name`` or update it in place (see :func:`put_labels`)."""
    return _put_layer(viewer, "image", name, data, source, index, tag, **kwargs)


def as_scribbles(labels: np.ndarray) -> np.ndarray:
    """A dense mask in scribble coding: every pixel annotated, 1 = background, 2 = cell."""
    labels = np.asarray(labels)
    return np.where(labels != 0, 2, 1).astype(np.uint8)


def merge_corrections(
    current: np.ndarray,
    predicted: np.ndarray | None,
    previous: np.ndarray | None = None,
    previous_edits: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Combine the user's latest edits with the earlier ones; returns ``(corrections, edits)``.

    ``current`` is the segmentation layer as the user left it and ``predicted``
    what the model wrote there; pixels that differ are the new edits. Earlier
    edits (``previous_edits``, with their values in ``previous``) that the user
    has not touched again are kept, so no edit is ever lost to a later
    prediction. Without ``predicted`` the whole layer counts as edited.
    """
    current = np.asarray(current)
    if predicted is None or np.shape(predicted) != current.shape:
        edits = np.ones(current.shape, bool)
    else:
        edits = current != np.asarray(predicted)
    corrections = np.array(current, copy=True)
    if (
        previous is not None
        and previous_edits is not None
        and np.shape(previous) == current.shape
        and np.shape(previous_edits) == current.shape
    ):
        keep = previous_edits & ~edits
        corrections = _fit_dtype(corrections, np.asarray(previous).dtype)
        corrections[keep] = np.asarray(previous)[keep]
        edits = edits | previous_edits
    return corrections, edits


def edited_planes(edits: np.ndarray) -> list[tuple[int, ...]]:
    """Leading indices of the planes of a stack in which the user changed anything."""
    return annotated_planes(np.asarray(edits))
