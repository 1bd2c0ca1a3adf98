"""From probabilities to masks and instance labels (numpy, scipy and scikit-image).

Every function takes 2D ``(H, W)`` arrays or nD arrays, which are treated as a
series of independent 2D planes over the leading axes (a z-stack or a time
series is processed plane by plane: objects never connect across planes).
Connectivity inside a plane is 8 (pixels touching by a corner belong together),
like :func:`skimage.measure.label`.

Examples
--------
>>> import numpy as np
>>> prob = np.zeros((20, 20), np.float32)
>>> prob[2:8, 2:8] = 0.9; prob[4, 4] = 0.2   # an object with a hole
>>> prob[15, 15] = 0.9                        # a speck
>>> mask = postprocess(prob, min_size=5)
>>> mask.dtype, int(mask.sum())
(dtype('uint8'), 36)
>>> labels = postprocess(prob, instances=True)
>>> labels.dtype, int(labels.max())
(dtype('int32'), 2)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .errors import ConfigError, DataError

__all__ = [
    "fill_holes",
    "label_instances",
    "postprocess",
    "remove_small_objects",
    "threshold",
]


def _plane_structure(ndim: int) -> np.ndarray:
    """8-connectivity inside the last two axes, no connection along leading axes."""
    structure = np.zeros((3,) * ndim, bool)
    centre = (1,) * (ndim - 2)
    structure[(*centre, slice(None), slice(None))] = True
    return structure


def _as_mask(mask, what: str = "mask") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim < 2:
        raise DataError(f"Expected a 2D {what} (H, W) or a stack of them, got shape {mask.shape}.")
    if mask.dtype.kind == "f" and not np.all(np.isfinite(mask)):
        raise DataError(f"The {what} contains NaN or infinite values; clean it first.")
    return mask != 0 if mask.dtype != bool else mask


def _check_prob(prob, multiclass: bool = False) -> np.ndarray:
    prob = np.asarray(prob)
    if prob.dtype.kind not in "fiub":
        raise DataError(f"Probabilities must be numbers, got dtype {prob.dtype}.")
    need = 3 if multiclass else 2
    if prob.ndim < need:
        shape = "(..., H, W, classes)" if multiclass else "(..., H, W)"
        raise DataError(f"Expected probabilities of shape {shape}, got shape {prob.shape}.")
    if prob.dtype.kind == "f" and not np.all(np.isfinite(prob)):
        raise DataError(
            "The probabilities contain NaN or infinite values; the model output is broken "
            "(check the input image for NaNs or retrain the model)."
        )
    return prob


def _check_threshold(value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"threshold must be a number in (0, 1), got {value!r}.") from None
    if not 0.0 < value < 1.0:
        raise ConfigError(
            f"threshold must be between 0 and 1 (exclusive), got {value}; 0.5 is the usual "
            "choice, lower it to get more foreground."
        )
    return value


def _check_min_size(min_size) -> int:
    if isinstance(min_size, bool) or not float(min_size).is_integer() or min_size < 0:
        raise ConfigError(
            f"min_size must be a whole number of pixels >= 0 (0 keeps everything), "
            f"got {min_size!r}."
        )
    return int(min_size)


def threshold(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Foreground where the probability is strictly above ``threshold``.

    Parameters
    ----------
    prob
        Probabilities, any shape with at least 2 dimensions.
    threshold
        In (0, 1).

    Returns
    -------
    numpy.ndarray
        bool array of the same shape.

    Raises
    ------
    ConfigError
        If the threshold is not in (0, 1).
    DataError
        If the probabilities are not finite.

    Examples
    --------
    >>> import numpy as np
    >>> threshold(np.array([[0.2, 0.5, 0.7]])).tolist()
    [[False, False, True]]
    """
    t = _check_threshold(threshold)
    return _check_prob(prob) > t


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes (background fully enclosed by foreground) in each 2D plane.

    Parameters
    ----------
    mask
        Binary mask (nonzero = foreground), 2D or a stack of 2D planes.

    Returns
    -------
    numpy.ndarray
        bool array of the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.ones((5, 5), bool); ring[2, 2] = False
    >>> bool(fill_holes(ring)[2, 2])
    True
    """
    mask = _as_mask(mask)
    out = np.empty(mask.shape, bool)
    for index in np.ndindex(mask.shape[:-2]):
        out[index] = _fill_holes_2d(mask[index])
    return out


def _fill_holes_2d(mask: np.ndarray) -> np.ndarray:
    """Same result as :func:`scipy.ndimage.binary_fill_holes`, a few times faster.

    Background pieces (4-connected) that do not touch the image border are holes.
    """
    background, n = ndi.label(~mask)
    if n == 0:
        return mask.copy()
    border = np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    outside = np.zeros(n + 1, bool)
    outside[border] = True
    outside[0] = True  # the foreground itself
    return mask | ~outside[background]


def _remove_small_labels(labels: np.ndarray, min_size: int) -> np.ndarray:
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    return np.where(small[labels], 0, labels)


def remove_small_objects(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Remove objects smaller than ``min_size`` pixels from each 2D plane.

    A binary mask (bool, or only 0 and one other value) is split into
    8-connected objects per plane; an integer label image (several distinct
    nonzero values) keeps its ids and loses the labels whose area (in the whole
    array) is below ``min_size``.

    Parameters
    ----------
    mask
        Binary mask or integer label image, 2D or a stack.
    min_size
        Objects with fewer pixels than this are removed; 0 turns it off.

    Returns
    -------
    numpy.ndarray
        bool for a binary input, else labels with the input's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((6, 6), bool); m[0:3, 0:3] = True; m[5, 5] = True
    >>> int(remove_small_objects(m, 4).sum())
    9
    """
    min_size = _check_min_size(min_size)
    arr = np.asarray(mask)
    if arr.ndim < 2:
        raise DataError(f"Expected a 2D mask or a stack of them, got shape {arr.shape}.")
    if arr.dtype.kind in "ui" and np.count_nonzero(np.unique(arr)) > 1:  # label image
        if min_size == 0:
            return arr.copy()
        return _remove_small_labels(arr, min_size).astype(arr.dtype, copy=False)
    binary = _as_mask(arr)
    if min_size <= 1:
        return binary.copy()
    labels, _ = ndi.label(binary, structure=_plane_structure(binary.ndim))
    return _remove_small_labels(labels, min_size) > 0


def _typical_radius(distance: np.ndarray, labels: np.ndarray, n: int) -> float:
    """Median over objects of their largest distance to the background."""
    if n == 0:
        return 1.0
    peaks = ndi.maximum(distance, labels, index=np.arange(1, n + 1))
    return float(np.median(peaks))


def _split_plane(mask: np.ndarray, min_distance: int | None) -> np.ndarray:
    """Distance-transform watershed of one 2D plane; returns labels 1..n."""
    from skimage.feature import peak_local_max
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    structure = np.ones((3, 3), bool)
    cc, n = ndi.label(mask, structure=structure)
    if n == 0:
        return cc
    distance = ndi.distance_transform_edt(mask)
    radius = _typical_radius(distance, cc, n)
    if min_distance is None:
        min_distance = max(2, round(0.5 * radius))
    # peaks at least `min_distance` apart...
    peaks = peak_local_max(
        distance, min_distance=int(min_distance), labels=cc, exclude_border=False
    )
    # ...and one marker per "dome": peaks on the same plateau or ridge, or less than
    # h deeper than the saddle between them, belong to one object
    h = max(1.0, 0.1 * radius)
    domes, _ = ndi.label(h_maxima(distance, h) > 0, structure=structure)
    keep = np.unique(domes[peaks[:, 0], peaks[:, 1]]) if len(peaks) else np.array([], int)
    keep = keep[keep > 0]
    lookup = np.zeros(domes.max() + 1, cc.dtype)
    lookup[keep] = np.arange(1, keep.size + 1)
    markers = lookup[domes]
    out = watershed(-distance, markers, mask=mask)
    # objects that got no marker keep their connected component
    missing = mask & (out == 0)
    if missing.any():
        extra, _ = ndi.label(missing, structure=structure)
        out = np.where(missing, extra + out.max() * (extra > 0), out)
    return out


def _relabel_sequential(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels)
    if ids.size and ids[0] == 0 and ids[-1] == ids.size - 1:
        return labels.astype(np.int32, copy=False)
    lookup = np.zeros(int(ids[-1]) + 1, np.int32)
    nonzero = ids[ids != 0]
    lookup[nonzero] = np.arange(1, nonzero.size + 1, dtype=np.int32)
    return lookup[labels]


def label_instances(
    mask: np.ndarray, split_touching: bool = False, min_distance: int | None = None
) -> np.ndarray:
    """Label the objects of a binary mask, optionally splitting touching ones.

    Without splitting, objects are 8-connected components of each 2D plane. With
    ``split_touching=True`` each plane is segmented by a watershed of its
    distance transform: markers are the local maxima of the Euclidean distance
    to the background (:func:`skimage.feature.peak_local_max`, at least
    ``min_distance`` pixels apart, and maxima on one plateau or ridge merged), so
    two round cells touching by a narrow neck become two labels while one
    elongated cell stays whole.

    Labels are consecutive and unique over the whole array (plane 1 continues
    where plane 0 stopped), so a stack can be shown as one napari Labels layer.

    Parameters
    ----------
    mask
        Binary mask (nonzero = foreground), 2D or a stack of 2D planes.
    split_touching
        Split touching objects with a distance-transform watershed.
    min_distance
        Smallest distance in pixels between two object centres when splitting.
        Default: half the typical object radius (the median over objects of
        their largest distance to the background), at least 2.

    Returns
    -------
    numpy.ndarray
        int32 labels, 0 = background.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:40, :60]
    >>> two = ((yy - 20) ** 2 + (xx - 18) ** 2 < 144) | ((yy - 20) ** 2 + (xx - 40) ** 2 < 144)
    >>> int(label_instances(two).max()), int(label_instances(two, split_touching=True).max())
    (1, 2)
    """
    mask = _as_mask(mask)
    if min_distance is not None and (
        isinstance(min_distance, bool) or int(min_distance) != min_distance or min_distance < 1
    ):
        raise ConfigError(
            f"min_distance must be a whole number of pixels >= 1, got {min_distance!r}."
        )
    if not split_touching:
        labels, _ = ndi.label(mask, structure=_plane_structure(mask.ndim))
        return labels.astype(np.int32, copy=False)
    out = np.zeros(mask.shape, np.int64)
    offset = 0
    for index in np.ndindex(mask.shape[:-2]):
        plane = _split_plane(mask[index], min_distance).astype(np.int64)
        plane[plane > 0] += offset
        out[index] = plane
        offset = max(offset, int(plane.max()))
    return _relabel_sequential(out)


def _fill_holes_classes(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Give enclosed background pixels the class that encloses them."""
    out = classes.copy()
    for k in range(1, n_classes):
        filled = fill_holes(classes == k)
        out[filled & (out == 0)] = k
    return out


def postprocess(
    prob: np.ndarray,
    threshold: float = 0.5,
    *,
    min_size: int = 0,
    fill_holes: bool = True,
    instances: bool = False,
    split_touching: bool = False,
    multiclass: bool = False,
) -> np.ndarray:
    """Turn network probabilities into a mask, instance labels or a class map.

    Binary models: the probability is thresholded, holes are filled, objects
    below ``min_size`` pixels are removed (in that order) and the result is a
    0/1 ``uint8`` mask, or ``int32`` instance labels with ``instances=True``
    (see :func:`label_instances`).

    Multi-class models (``multiclass=True``): ``prob`` is ``(..., H, W, C)``
    softmax output and the result is the ``uint8`` argmax class map (class 0 =
    background); ``threshold`` is not used. Per foreground class, background
    holes enclosed by the class are given to it and regions below ``min_size``
    become background.

    nD input is processed as a series of 2D planes over the leading axes.

    Parameters
    ----------
    prob
        Binary: probabilities ``(..., H, W)``. Multi-class: ``(..., H, W, C)``.
    threshold
        Foreground where ``prob > threshold``; in (0, 1).
    min_size
        Remove objects with fewer pixels (0 = keep all).
    fill_holes
        Fill background holes inside objects.
    instances
        Return instance labels instead of a binary mask (binary models only).
    split_touching
        With ``instances``, split touching objects (distance-transform watershed).
    multiclass
        ``prob`` holds one channel per class on its last axis.

    Returns
    -------
    numpy.ndarray
        ``uint8`` 0/1 mask, ``int32`` labels or ``uint8`` class map, of the
        input's shape (without the class axis).

    Raises
    ------
    ConfigError
        For a threshold outside (0, 1), a negative ``min_size``, or
        ``instances`` with ``multiclass``.
    DataError
        For probabilities that are not finite or have the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> prob = np.zeros((2, 10, 10)); prob[:, 2:5, 2:5] = 0.8
    >>> postprocess(prob).sum(axis=(1, 2)).tolist()
    [9, 9]
    >>> soft = np.zeros((4, 4, 3)); soft[..., 0] = 0.5; soft[:2, :2, 2] = 0.9
    >>> postprocess(soft, multiclass=True)[0].tolist()
    [2, 2, 0, 0]
    """
    t = _check_threshold(threshold)
    min_size = _check_min_size(min_size)
    prob = _check_prob(prob, multiclass)
    if multiclass:
        if instances or split_touching:
            raise ConfigError(
                "instances/split_touching work on binary models; for a class map, label one "
                "class at a time: label_instances(classes == k)."
            )
        n_classes = prob.shape[-1]
        if not 2 <= n_classes <= 255:
            raise DataError(
                f"A multi-class output needs 2 to 255 class channels on its last axis, got "
                f"{n_classes} (shape {prob.shape}); for a binary model use multiclass=False."
            )
        classes = np.argmax(prob, axis=-1).astype(np.uint8)
        if fill_holes:
            classes = _fill_holes_classes(classes, n_classes)
        if min_size > 1:
            structure = _plane_structure(classes.ndim)
            for k in range(1, n_classes):
                labels, _ = ndi.label(classes == k, structure=structure)
                small = _remove_small_labels(labels, min_size)
                classes[(labels > 0) & (small == 0)] = 0
        return classes

    mask = prob > t
    if fill_holes:
        mask = _fill_holes_impl(mask)
    if min_size > 1:
        mask = remove_small_objects(mask, min_size)
    if instances:
        return label_instances(mask, split_touching=split_touching)
    return mask.astype(np.uint8)


_fill_holes_impl = fill_holes  # `postprocess` has an argument of the same name
