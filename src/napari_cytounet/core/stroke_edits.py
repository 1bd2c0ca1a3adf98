"""The user's strokes as edits of the segmentation they were painted on.

A stroke says what the user wants *on this image*, at once, whatever the model has
learned so far. :func:`honour_strokes` applies the strokes to a predicted mask:

- a background stroke across the middle of a predicted cell removes the whole cell,
  unless a foreground stroke lies in it too: painting background across a cell deletes
  it, as a click deletes a mask in cellpose's GUI. Across the middle: the stroke passes
  within ``centre_reach`` of the cell's depth (its largest distance to the edge) from
  its middle (where the depth is within 10% of the deepest), and is at least
  ``min_extent`` of its width long. Cells are the watershed basins of the object's
  depth, so a stroke across one of two merged cells removes that cell only (a stroke
  through the middles of neighbouring cells of one object, too short in each, removes
  them when it is long enough across them together: one cell with two tops). A stroke
  along a rim, across a bridge or a gap between cells, or a short dab (a hole between
  touching cells) clears its own pixels;
- a foreground stroke where the mask says background adds the pixels connected to it
  where the model's foreground probability is above ``grow_threshold``, within
  ``grow_radius`` pixels of the stroke: painting inside a missed part of a cell brings
  back the part the model half-saw (strokes inside predicted objects add nothing);
- every stroke pixel takes the stroke's class.

Objects are found on the mask with each stroke pixel replaced by its nearest unannotated
pixel, so that a model which has learned the stroke pixels themselves (a random forest
fits them exactly) still has the object the stroke was painted on.

The model is not changed: its probabilities, the saved model and the segmentation of
other images are the model's own. Only scribbles (sparse labels) are applied this way;
a dense mask would replace the prediction outright.

Examples
--------
>>> import numpy as np
>>> mask = np.zeros((9, 9), bool); mask[2:7, 2:7] = True
>>> scribbles = np.zeros((9, 9), np.uint8); scribbles[4, 2:7] = 1  # across the object
>>> honour_strokes(mask, mask.astype(np.float32), scribbles).any()
np.False_
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["honour_strokes"]

#: A background stroke removes a cell when it passes this fraction of the cell's depth
#: from its middle ...
CENTRE_REACH = 0.6
#: ... and spans this fraction of its width (twice its depth): shorter dabs clear themselves.
MIN_EXTENT = 0.4
#: A foreground stroke adds connected pixels within this many pixels of itself ...
GROW_RADIUS = 20.0
#: ... where the foreground probability is above this.
GROW_THRESHOLD = 0.2


def _cells_of(inside: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """The cells of one predicted object: basins of its distance to the edge.

    Two touching cells merged into one object meet at a neck; the watershed of the
    depth, from maxima that stand at least a quarter of the deepest point above the
    neck, splits them there. A single cell keeps one basin.
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    peaks = h_maxima(depth, max(1.0, 0.25 * float(depth.max())))
    # 8-connected: the top of a cell's depth is often a diagonal ridge of equal values.
    markers, _ = ndi.label(peaks, structure=np.ones((3, 3), bool))
    return watershed(-depth, markers, mask=inside)


def _remove_crossed_cells(
    mask: np.ndarray,
    background: np.ndarray,
    foreground: np.ndarray,
    centre_reach: float,
    min_extent: float,
) -> None:
    """Clear, in place, the cells of ``mask`` a background stroke crosses through the middle."""
    objects, _ = ndi.label(mask)
    crossed = np.unique(objects[background])
    boxes = ndi.find_objects(objects)
    for label in crossed[crossed > 0].tolist():
        box = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in boxes[label - 1])
        inside = objects[box] == label
        depth = ndi.distance_transform_edt(inside)
        cells = _cells_of(inside, depth)
        stroke, kept = background[box] & inside, foreground[box]
        passed = []  # cells the stroke passes through the middle of, but too short in each
        for cell in np.unique(cells[stroke]).tolist():
            part = cells == cell
            if not cell or (kept & part).any():
                continue
            near, long = _crossing(stroke & part, np.where(part, depth, 0.0), centre_reach,
                                   min_extent)  # fmt: skip
            if near and long:
                mask[box][part] = False
            elif near:
                passed.append(part)
        # One cell the watershed cut in two (a long ridge with two tops): a stroke through
        # the middle of both halves is short in each, but long across the two together.
        if len(passed) > 1:
            union = np.logical_or.reduce(passed)
            if _long(stroke & union, float(depth[union].max()), min_extent):
                mask[box][union] = False


def _crossing(
    stroke: np.ndarray, depth: np.ndarray, centre_reach: float, min_extent: float
) -> tuple[bool, bool]:
    """Whether ``stroke`` passes near the middle of the cell whose depth is ``depth`` (0
    outside), and whether it is long enough there.

    The middle is the cell's ridge (depth within 10% of the deepest point): for a long
    cell, anywhere along its axis.
    """
    deepest = float(depth.max())
    to_ridge = ndi.distance_transform_edt(depth < 0.9 * deepest)
    near = float(to_ridge[stroke].min()) <= centre_reach * deepest
    return near, _long(stroke, deepest, min_extent)


def _long(stroke: np.ndarray, deepest: float, min_extent: float) -> bool:
    """Whether ``stroke`` spans ``min_extent`` of the width (twice ``deepest``)."""
    rows, cols = np.nonzero(stroke)
    return float(np.hypot(np.ptp(rows), np.ptp(cols))) >= min_extent * 2 * deepest


def _grow_from_strokes(
    mask: np.ndarray,
    probabilities: np.ndarray,
    foreground: np.ndarray,
    radius: float,
    threshold: float,
) -> None:
    """Add, in place, the likely-foreground pixels connected to a stroke in predicted background."""
    missed = foreground & ~mask
    if not missed.any():
        return
    rows, cols = np.nonzero(missed)
    top, left = max(0, rows.min() - int(radius) - 1), max(0, cols.min() - int(radius) - 1)
    box = (slice(top, rows.max() + int(radius) + 2), slice(left, cols.max() + int(radius) + 2))
    strokes = missed[box]
    near = ndi.distance_transform_edt(~strokes) <= radius
    candidates = (near & (probabilities[box] > threshold) & ~mask[box]) | strokes
    regions, _ = ndi.label(candidates)
    reached = np.unique(regions[strokes])
    mask[box] |= np.isin(regions, reached[reached > 0])


def honour_strokes(
    mask: np.ndarray,
    probabilities: np.ndarray,
    scribbles: np.ndarray,
    *,
    centre_reach: float = CENTRE_REACH,
    min_extent: float = MIN_EXTENT,
    grow_radius: float = GROW_RADIUS,
    grow_threshold: float = GROW_THRESHOLD,
) -> np.ndarray:
    """The segmentation ``mask`` with the user's strokes applied (a new bool array).

    Parameters
    ----------
    mask
        Predicted segmentation ``(H, W)``, non-zero = foreground.
    probabilities
        The model's foreground probability ``(H, W)`` behind ``mask``.
    scribbles
        ``(H, W)``: 0 = not annotated, 1 = background, 2 = foreground.
    centre_reach, min_extent
        A background stroke removes a cell when it passes within ``centre_reach``
        times the cell's depth of its middle (depth within 10% of the deepest) and
        spans ``min_extent`` of its width (twice the depth). ``centre_reach=0``: only
        through the middle itself.
    grow_radius, grow_threshold
        A foreground stroke in predicted background adds the connected pixels
        within ``grow_radius`` pixels of it whose probability is above
        ``grow_threshold`` (radius 0: off).

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``.

    Examples
    --------
    >>> mask = np.zeros((5, 5), bool)
    >>> scribbles = np.zeros((5, 5), np.uint8); scribbles[2, 2] = 2
    >>> int(honour_strokes(mask, np.zeros((5, 5)), scribbles).sum())
    1
    """
    out = np.asarray(mask).astype(bool, copy=True)
    scribbles = np.asarray(scribbles)
    if scribbles.shape != out.shape:
        raise ValueError(f"scribbles {scribbles.shape} do not match the mask {out.shape}.")
    probabilities = np.asarray(probabilities)
    background, foreground = scribbles == 1, scribbles == 2
    annotated = background | foreground
    if annotated.any() and not annotated.all():
        out, probabilities = _without_fitted_strokes(out, probabilities, annotated)
    if background.any() and out.any():
        _remove_crossed_cells(out, background, foreground, centre_reach, min_extent)
    if foreground.any() and grow_radius > 0:
        _grow_from_strokes(out, probabilities, foreground, grow_radius, grow_threshold)
    out[background] = False
    out[foreground] = True
    return out


def _without_fitted_strokes(
    mask: np.ndarray, probabilities: np.ndarray, annotated: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``mask`` and ``probabilities`` with each stroke pixel given its nearest unannotated pixel's.

    A model that has fitted the stroke pixels themselves (a random forest does, a UNet
    partly) cuts a background stroke out of the object it crosses, or marks only the
    stroke of a missed cell: the object is then not found under the stroke. Judged by
    the pixels beside them, strokes meet the objects they were painted on.
    """
    rows, cols = ndi.distance_transform_edt(annotated, return_distances=False, return_indices=True)
    return mask[rows, cols], probabilities[rows, cols]
