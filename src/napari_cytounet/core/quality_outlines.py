"""Outline detection: does a mask draw object outlines rather than filled objects?

A UNet trained on outlines learns to draw lines (or nothing), not cells;
:func:`outline_score` measures how outline-like a mask is and
:func:`is_outline_only` applies the cut-off :data:`OUTLINE_THRESHOLD`. Re-exported
by :mod:`napari_cytounet.core.quality`.

Examples
--------
>>> import numpy as np
>>> filled = np.zeros((50, 50), bool); filled[10:40, 10:40] = True
>>> is_outline_only(filled)
False
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .errors import DataError
from .postprocess import _fill_holes_2d

__all__ = ["OUTLINE_THRESHOLD", "OutlineEvidence", "is_outline_only", "outline_score"]

OUTLINE_THRESHOLD = 0.5
"""Masks whose :func:`outline_score` is at least this are outline-only."""

_MIN_OUTLINE_PIXELS = 20  # fewer foreground pixels than this is too little evidence


@dataclass(frozen=True)
class OutlineEvidence:
    """The measurements behind :func:`outline_score` (see there)."""

    solid: float  # fraction of foreground pixels that survive erosion by a 3x3 cross
    filled_fraction: float  # drawn area / area after filling holes
    curvy: float  # fraction of pixels in elongated, curve-like pieces (nan: not needed)
    score: float


def _curve_fraction(fg: np.ndarray) -> float:
    """Fraction of foreground pixels in pieces much longer than they are wide."""
    labels, n = ndi.label(fg, structure=np.ones((3, 3), bool))
    if n == 0:
        return 0.0
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(float)
    extent = np.array(
        [max(s[0].stop - s[0].start, s[1].stop - s[1].start) for s in ndi.find_objects(labels)],
        float,
    )
    # a straight 1-pixel line of length L gives L, a disk gives about 1.3
    elongation = extent**2 / area
    return float(area[elongation >= 3.0].sum() / area.sum())


def _erode_cross(fg: np.ndarray) -> np.ndarray:
    """Binary erosion by a 3x3 cross (outside the image counts as background)."""
    out = fg.copy()
    out[0, :] = out[-1, :] = out[:, 0] = out[:, -1] = False
    out[1:, :] &= fg[:-1, :]
    out[:-1, :] &= fg[1:, :]
    out[:, 1:] &= fg[:, :-1]
    out[:, :-1] &= fg[:, 1:]
    return out


def _outline_evidence(mask: np.ndarray) -> OutlineEvidence:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise DataError(f"Expected a 2D mask, got shape {mask.shape}; check one plane at a time.")
    fg = mask != 0
    drawn = int(fg.sum())
    if drawn < _MIN_OUTLINE_PIXELS or drawn == fg.size:
        return OutlineEvidence(1.0, 1.0, 0.0, 0.0)
    solid = _erode_cross(fg).sum() / drawn
    filled_fraction = drawn / _fill_holes_2d(fg).sum()
    enclosed = 1.0 - filled_fraction  # share of the enclosed area left undrawn
    # thin: nothing survives erosion (1-2 px lines); a filled object keeps most pixels
    thin = float(np.clip(1.0 - solid / 0.7, 0.0, 1.0))
    enclosure = float(np.clip(enclosed / 0.6, 0.0, 1.0))
    # open curves enclose nothing: then elongated pieces are the evidence
    curvy = _curve_fraction(fg) if thin > 0 and enclosure < 1.0 else float("nan")
    shape_evidence = max(enclosure, 0.0 if np.isnan(curvy) else curvy)
    # thick closed outlines survive erosion but still leave most of what they enclose empty
    score = max(thin * shape_evidence, float(np.clip((enclosed - 0.3) / 0.4, 0.0, 1.0)))
    return OutlineEvidence(float(solid), float(filled_fraction), curvy, float(score))


def outline_score(mask: np.ndarray) -> float:
    """How much a mask looks like object outlines rather than filled objects.

    Two kinds of evidence are combined:

    * thinness: the fraction ``solid`` of foreground pixels that survive a binary
      erosion by a 3x3 cross (``disk(1)``): about 0 for 1-2 pixel lines, 0.9
      for filled cells;
    * shape: the share of the area enclosed by the drawing that is left
      undrawn (from :func:`scipy.ndimage.binary_fill_holes`; about 0.9 for closed
      outlines, 0 for filled objects), or, for open curves that enclose
      nothing, the share of pixels in elongated pieces (bounding-box extent
      squared over area >= 3, which separates lines from small round blobs).

    ``score = max(thin * shape, clip((enclosed - 0.3) / 0.4, 0, 1))`` with
    ``thin = clip(1 - solid / 0.7, 0, 1)``. Thin closed or open curves score
    about 1, thick closed outlines score by how much they leave empty, filled
    objects (even tiny ones, or ones with small holes) score about 0. Masks
    with fewer than 20 foreground pixels, or no background, score 0.

    Parameters
    ----------
    mask
        2D mask or label image (nonzero = foreground).

    Returns
    -------
    float
        In [0, 1]; :func:`is_outline_only` flags scores >= 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> filled = np.zeros((50, 50), bool); filled[10:40, 10:40] = True
    >>> outline = filled.copy(); outline[11:39, 11:39] = False
    >>> outline_score(filled), outline_score(outline)
    (0.0, 1.0)
    """
    return _outline_evidence(mask).score


def is_outline_only(mask: np.ndarray) -> bool:
    """True when a mask only draws object outlines instead of filled objects.

    A UNet trained on such masks learns to draw lines (or nothing), not cells.
    See :func:`outline_score` for the evidence; the cut-off is
    :data:`OUTLINE_THRESHOLD` (0.5). On the BBBC030 set every ``outlines/``
    file scores 1.0 and every filled ``masks/`` file 0.0.

    Parameters
    ----------
    mask
        2D mask or label image (nonzero = foreground).

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> r = np.hypot(yy - 32, xx - 32)
    >>> is_outline_only(r < 20), is_outline_only(np.abs(r - 20) < 0.7)
    (False, True)
    """
    return outline_score(mask) >= OUTLINE_THRESHOLD
