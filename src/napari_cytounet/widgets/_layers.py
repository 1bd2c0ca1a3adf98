"""Translating napari layers to arrays for the core, and results back into layers.

Nothing here is an algorithm: these helpers pick the right array out of a layer
(first level of a multiscale image, channels last for RGB), split stacks into
the annotated 2D planes the core trains on, and create or update output layers
in place so that re-running a widget never piles up layers. Output layers keep
the source layer's geometry.

Output layers are named after their image (``"cells segmentation"``,
``"cells probability"``, ``"cells corrections"``; see :func:`output_name`) and found again by the
tag in their metadata (:func:`find_output`), never by name alone. They keep the image's whole
geometry (scale, translate, rotate, shear, affine, units, axis labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_cytounet.core.errors import DataError
from napari_cytounet.core.labels import (  # re-exported: the widgets' array helpers live in core
    annotated_planes,
    as_scribbles,
    edited_planes,
    fit_dtype,
    merge_corrections,
)

__all__ = [
    "annotated_planes",
    "as_scribbles",
    "check_pair",
    "edited_planes",
    "find_layer",
    "find_output",
    "layer_array",
    "merge_corrections",
    "output_name",
    "put_image",
    "put_labels",
    "training_pairs",
]

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


#: Layer attributes that place data in the world; outputs copy all of them from their image.
GEOMETRY = ("scale", "translate", "rotate", "shear", "affine", "units", "axis_labels")


def geometry(source: Any) -> dict[str, Any]:
    """The whole world placement of ``source``: scale, translate, rotate, shear, affine, units
    and axis labels (those this napari version has), ready to pass to ``add_labels``."""
    found = {}
    for name in GEOMETRY:
        value = getattr(source, name, None)
        if value is None:
            continue
        if name == "affine":
            value = value.affine_matrix
        elif name in ("rotate", "shear"):
            value = np.asarray(value)
        else:
            value = tuple(value)
        found[name] = value
    return found


def _tag_of(layer: Any) -> dict[str, Any]:
    tag = getattr(layer, "metadata", {}).get(META_KEY)
    return tag if isinstance(tag, dict) else {}


def find_output(viewer: Any, image: Any, role: str, kind: type | None = None) -> Any:
    """The output layer of ``role`` (``"segmentation"``...) made from ``image``, or ``None``.

    Outputs are found by the tag the widgets put in their metadata, not by name: a layer of
    the user's that happens to be called ``"cells segmentation"`` is never taken for ours
    (and never overwritten), and renaming an output or its image does not lose it.
    """
    image_id = str(getattr(image, "unique_id", ""))
    by_name = None
    for layer in viewer.layers:
        tag = _tag_of(layer)
        if tag.get("role") != role or (kind is not None and not isinstance(layer, kind)):
            continue
        if image_id and tag.get("image_id") == image_id:
            return layer
        if by_name is None and not tag.get("image_id") and tag.get("image") == image.name:
            by_name = layer  # tagged by an older version, before image ids
    return by_name


def output_tag(image: Any, role: str) -> dict[str, Any]:
    """The metadata tag of an output of ``role`` made from ``image`` (see :func:`find_output`)."""
    return {"role": role, "image": image.name, "image_id": str(getattr(image, "unique_id", ""))}


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

    layer_type = Labels if kind == "labels" else Image
    role = (tag or {}).get("role")
    layer = find_output(viewer, source, role, layer_type) if role else None
    full_shape = spatial_shape(source)
    if index is not None and len(full_shape) > 2:
        if _write_plane(layer, index, data, full_shape):
            return layer
        full = np.zeros(full_shape, data.dtype)
        if layer is not None and tuple(layer.data.shape) == full_shape:
            full = fit_dtype(np.array(layer.data, copy=True), data.dtype)
        full[index] = data
        data = full
    placement = geometry(source)
    if layer is None:
        add = viewer.add_labels if kind == "labels" else viewer.add_image
        layer = add(data, name=name, **placement, **kwargs)
    else:
        layer.data = data
        for attribute, value in placement.items():
            setattr(layer, attribute, value)
    if tag is not None:
        layer.metadata[META_KEY] = dict(tag)
    return layer


def _write_plane(layer: Any, index: tuple[int, ...], data: np.ndarray, shape: tuple) -> bool:
    """Write one plane into an existing output stack in place (no copy of the stack)."""
    if layer is None or tuple(layer.data.shape) != shape or not isinstance(layer.data, np.ndarray):
        return False
    if np.result_type(layer.data.dtype, data.dtype) != layer.data.dtype:
        return False  # the stack's dtype cannot hold the new values: copy into a wider one
    layer.data[index] = data
    layer.refresh()
    return True


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
