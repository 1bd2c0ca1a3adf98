"""Checks of a training set before training (numpy, scipy and scikit-image).

A wrong training set wastes a training run at best. :func:`check_folders` (or
:func:`check_dataset` on arrays) finds the usual mistakes and reports each as an
:class:`Issue` with a severity and an actionable message:

=================  ========  ==========================================================
code               severity  meaning
=================  ========  ==========================================================
unpaired_image     warning   an image has no mask (it is left out of training)
unpaired_mask      warning   a mask has no image
unreadable         error     a file cannot be read (corrupt, truncated, coloured mask)
shape_mismatch     error     image and mask differ in height/width, or the mask is not 2D
nan_image          error     the image holds NaN or infinite values
constant_image     error     every pixel of the image has the same value
outline_only       error     the mask only draws object outlines (dense mode)
no_annotation      error     a scribble mask has no annotated pixel (scribbles mode)
invalid_labels     error     values outside the label convention (negative, fractional,
                             above ``max(classes, 2)`` in scribbles mode, or >= ``classes``
                             in a multi-class dense mask: the rule training applies)
empty_mask         warning   no foreground at all (dense mode)
all_foreground     warning   no background at all (dense mode)
non_binary         warning   a binary mask with antialiased/JPEG-like edge values (dense)
single_class       warning   scribbles of only one class (scribbles mode)
=================  ========  ==========================================================

Label conventions (see the architecture guide): dense masks use 0 = background
and any other value = foreground, so instance ids are fine; for ``classes >= 2``
the value is the class index. Scribbles use 0 = not annotated, 1 = background,
2.. = further classes (class index + 1), so the largest valid value is
``max(classes, 2)`` (2 for a binary model).

Examples
--------
>>> import numpy as np
>>> image = np.random.default_rng(0).random((64, 64))
>>> mask = np.zeros((64, 64), np.uint8); mask[10:30, 10:30] = 255
>>> check_pair(image, mask, name="a")
[]
>>> ring = mask.copy(); ring[12:28, 12:28] = 0
>>> [issue.code for issue in check_pair(image, ring, name="b")]
['outline_only']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .data import label_values_problem
from .errors import ConfigError, DataError
from .postprocess import _fill_holes_2d

__all__ = [
    "SEVERITY",
    "Issue",
    "QualityReport",
    "check_dataset",
    "check_folders",
    "check_pair",
    "is_outline_only",
    "outline_score",
]

SEVERITY = {
    "unpaired_image": "warning",
    "unpaired_mask": "warning",
    "unreadable": "error",
    "shape_mismatch": "error",
    "nan_image": "error",
    "constant_image": "error",
    "outline_only": "error",
    "no_annotation": "error",
    "invalid_labels": "error",
    "empty_mask": "warning",
    "all_foreground": "warning",
    "non_binary": "warning",
    "single_class": "warning",
}
"""Severity of each issue code: an ``"error"`` blocks training, a ``"warning"`` does not."""

OUTLINE_THRESHOLD = 0.5
"""Masks whose :func:`outline_score` is at least this are outline-only."""

_MIN_OUTLINE_PIXELS = 20  # fewer foreground pixels than this is too little evidence


@dataclass(frozen=True)
class Issue:
    """One problem found in a training set.

    Attributes
    ----------
    severity
        ``"error"`` (training would be wasted) or ``"warning"`` (worth a look).
    code
        Machine-readable kind, a key of :data:`SEVERITY`.
    item
        The image (file stem or name) concerned.
    message
        What is wrong and what to do, starting with the item's name.

    Examples
    --------
    >>> Issue.make("empty_mask", "cho05", "cho05: the mask is empty.").severity
    'warning'
    """

    severity: str
    code: str
    item: str
    message: str

    @classmethod
    def make(cls, code: str, item: str, message: str) -> Issue:
        """An issue with the severity that :data:`SEVERITY` gives its code."""
        return cls(SEVERITY[code], code, item, message)

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class QualityReport:
    """The result of a training-set check.

    Attributes
    ----------
    issues
        Every issue found, in the order of the items.
    n_pairs
        Number of image/mask pairs checked.

    Examples
    --------
    >>> report = QualityReport([Issue.make("empty_mask", "a", "a: the mask is empty.")], 3)
    >>> report.ok, len(report.warnings)
    (True, 1)
    >>> report.summary()
    '3 pairs checked: 0 errors, 1 warning'
    """

    issues: list[Issue]
    n_pairs: int

    @property
    def errors(self) -> list[Issue]:
        """Issues of severity ``"error"``."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Issues of severity ``"warning"``."""
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def codes(self) -> dict[str, int]:
        """Number of issues per code."""
        out: dict[str, int] = {}
        for issue in self.issues:
            out[issue.code] = out.get(issue.code, 0) + 1
        return out

    def summary(self) -> str:
        """One line: how many pairs, errors and warnings."""
        e, w = len(self.errors), len(self.warnings)
        pairs = f"{self.n_pairs} pair{'s' if self.n_pairs != 1 else ''} checked"
        return f"{pairs}: {e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"

    def format(self) -> str:
        """Human-readable report: errors then warnings, one line per issue, then a verdict.

        Examples
        --------
        >>> report = QualityReport([Issue.make("nan_image", "a", "a: NaN.")], 1)
        >>> print(report.format())
        Errors (1):
          [nan_image] a: NaN.
        FAILED: 1 pair checked: 1 error, 0 warnings. Fix the errors before training.
        """
        lines: list[str] = []
        for title, group in (("Errors", self.errors), ("Warnings", self.warnings)):
            if not group:
                continue
            lines.append(f"{title} ({len(group)}):")
            order = {code: k for k, code in enumerate(SEVERITY)}
            for issue in sorted(group, key=lambda i: order.get(i.code, len(order))):
                lines.append(f"  [{issue.code}] {issue.message}")
        if not self.ok:
            lines.append(f"FAILED: {self.summary()}. Fix the errors before training.")
        elif self.warnings:
            lines.append(f"OK with warnings: {self.summary()}. Training can go ahead.")
        else:
            lines.append(f"OK: {self.summary()}. No problem found.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# ---------------------------------------------------------------------------
# outline detection


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


# ---------------------------------------------------------------------------
# checks


def _spatial_shape(image: np.ndarray) -> tuple[int, ...]:
    """(H, W) of a 2D image or an (H, W, C) image with a few channels."""
    if image.ndim == 3 and image.shape[-1] <= 4:
        return image.shape[:2]
    return image.shape


def _reduce_identical_channels(mask: np.ndarray) -> np.ndarray:
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        rgb = mask[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0]
    return mask


def _check_image(image: np.ndarray, name: str) -> list[Issue]:
    issues: list[Issue] = []
    if image.dtype.kind == "f":
        finite = np.isfinite(image)
        if not finite.all():
            bad = int(image.size - finite.sum())
            issues.append(
                Issue.make(
                    "nan_image",
                    name,
                    f"{name}: the image has {bad} NaN or infinite pixel"
                    f"{'s' if bad != 1 else ''}; replace them (e.g. numpy.nan_to_num or Fiji "
                    "'Remove NaNs') or leave the image out.",
                )
            )
            values = image[finite]
        else:
            values = image
    else:
        values = image
    if values.size and values.min() == values.max():
        issues.append(
            Issue.make(
                "constant_image",
                name,
                f"{name}: every pixel of the image has the value {values.flat[0]!r}; it carries "
                "no information (blank or saturated acquisition?) — replace or remove it.",
            )
        )
    return issues


def _is_antialiased(mask: np.ndarray, fg: np.ndarray) -> tuple[bool, str]:
    """Intermediate values that sit on object edges: antialiasing or JPEG artefacts."""
    values, counts = np.unique(mask[fg], return_counts=True)
    if values.size <= 1:
        return False, ""
    dominant = values[np.argmax(counts)]
    minor = fg & (mask != dominant)
    n_minor = int(minor.sum())
    # pixels whose 4-neighbourhood holds another value
    edge = np.zeros(mask.shape, bool)
    diff_v = mask[1:, :] != mask[:-1, :]
    diff_h = mask[:, 1:] != mask[:, :-1]
    edge[1:, :] |= diff_v
    edge[:-1, :] |= diff_v
    edge[:, 1:] |= diff_h
    edge[:, :-1] |= diff_h
    on_edge = (minor & edge).sum() / n_minor
    share = n_minor / fg.sum()
    shown = ", ".join(str(v) for v in values[:5]) + (", ..." if values.size > 5 else "")
    # a stray pixel or two (< 0.5% of the foreground) is harmless: nonzero is foreground
    return bool(on_edge >= 0.9 and 0.005 <= share <= 0.5), shown


def _check_dense(mask: np.ndarray, name: str, classes: int) -> list[Issue]:
    issues: list[Issue] = []
    if mask.dtype.kind == "f" and not np.all(np.isfinite(mask)):
        return [
            Issue.make(
                "invalid_labels",
                name,
                f"{name}: the mask holds NaN or infinite values; masks must be integers "
                "(0 = background) — re-save it as an 8/16-bit image.",
            )
        ]
    if mask.dtype.kind in "fi" and mask.size and mask.min() < 0:
        return [
            Issue.make(
                "invalid_labels",
                name,
                f"{name}: the mask holds negative values (min {mask.min()}); use 0 for "
                "background and positive values for objects.",
            )
        ]
    fg = mask != 0
    n_fg = int(fg.sum())
    if n_fg == 0:
        issues.append(
            Issue.make(
                "empty_mask",
                name,
                f"{name}: the mask is empty (no foreground); the image only teaches background. "
                "Check that it is the right mask file, or keep it on purpose as a negative "
                "example.",
            )
        )
        return issues
    if n_fg == fg.size:
        issues.append(
            Issue.make(
                "all_foreground",
                name,
                f"{name}: the whole mask is foreground; the image teaches no background. Check "
                "that the mask is not inverted (background must be 0) or crop a region with "
                "background.",
            )
        )
    if classes >= 2:
        if mask.dtype.kind == "f" and not np.array_equal(mask, np.round(mask)):
            issues.append(
                Issue.make(
                    "invalid_labels",
                    name,
                    f"{name}: the class mask holds fractional values; save class indices "
                    f"0..{classes - 1} as integers.",
                )
            )
        elif problem := label_values_problem(int(mask.max()), "dense", classes):
            # the same rule as training (an error: training would fail on it)
            issues.append(Issue.make("invalid_labels", name, f"{name}: {problem}"))
    else:
        fractional = mask.dtype.kind == "f" and not np.array_equal(mask, np.round(mask))
        antialiased, shown = _is_antialiased(mask, fg)
        if fractional or antialiased:
            issues.append(
                Issue.make(
                    "non_binary",
                    name,
                    f"{name}: the mask is not binary (values {shown}): intermediate values on "
                    "object edges look like antialiasing or JPEG compression. Every nonzero "
                    "pixel counts as foreground; to be sure, threshold it (e.g. mask > 127) and "
                    "save it as PNG or TIFF, never JPEG.",
                )
            )
        evidence = _outline_evidence(fg)
        if evidence.score >= OUTLINE_THRESHOLD:
            pct = 100.0 * evidence.filled_fraction
            issues.append(
                Issue.make(
                    "outline_only",
                    name,
                    f"{name}: the mask only draws object outlines ({pct:.0f}% of the enclosed "
                    "area is filled); a UNet cannot learn what a cell is from outlines — fill "
                    "the objects (e.g. scipy.ndimage.binary_fill_holes or Fiji 'Fill Holes'), or "
                    "train anyway (cytounet train --force; in napari, 'Train despite "
                    "quality-check errors').",
                )
            )
    return issues


def _check_scribbles(mask: np.ndarray, name: str, classes: int) -> list[Issue]:
    # largest valid value, the rule of training (data.label_values_problem): 1 = background,
    # 2.. = further classes, so max(classes, 2)
    top = max(classes, 2)
    fractional = mask.dtype.kind == "f" and (
        not np.all(np.isfinite(mask)) or not np.array_equal(mask, np.round(mask))
    )
    if fractional or (mask.size and (mask.min() < 0 or mask.max() > top)):
        found = "fractional values" if fractional else f"values {mask.min()}..{mask.max()}"
        return [
            Issue.make(
                "invalid_labels",
                name,
                f"{name}: the scribbles hold {found}, but with {classes} class"
                f"{'es' if classes != 1 else ''} they must be 0 (not annotated), 1 (background)"
                f"{' or 2 (foreground)' if classes == 1 else f' or 2..{top} (classes)'}. "
                "Repaint with those label values, or use --labels dense for a full mask.",
            )
        ]
    present = np.unique(mask)
    present = present[present != 0]
    if present.size == 0:
        return [
            Issue.make(
                "no_annotation",
                name,
                f"{name}: nothing is annotated (all pixels are 0); paint some background (1) "
                "and foreground (2) strokes, or leave this image out.",
            )
        ]
    if present.size == 1:
        drawn = "background (1)" if present[0] == 1 else f"class {int(present[0])}"
        return [
            Issue.make(
                "single_class",
                name,
                f"{name}: only {drawn} is annotated; paint the other class too (background = 1, "
                "foreground = 2) so the image teaches the difference.",
            )
        ]
    return []


def _check_options(label_mode: str, classes: int) -> None:
    if label_mode not in ("dense", "scribbles"):
        raise ConfigError(f"label_mode must be 'dense' or 'scribbles', got {label_mode!r}.")
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 1:
        raise ConfigError(
            f"classes must be 1 (binary) or the number of classes >= 2, got {classes!r}."
        )


def check_pair(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    name: str = "",
    label_mode: str = "dense",
    classes: int = 1,
) -> list[Issue]:
    """Check one image and its mask.

    Parameters
    ----------
    image
        ``(H, W)`` or ``(H, W, C)`` image.
    mask
        ``(H, W)`` mask (an RGB mask with identical channels is accepted).
    name
        Name used in the messages (e.g. the file stem).
    label_mode
        ``"dense"`` (0 = background, nonzero = foreground or class index) or
        ``"scribbles"`` (0 = not annotated, 1 = background, 2+ = classes).
    classes
        1 for a binary model, else the number of classes.

    Returns
    -------
    list of Issue
        Empty when the pair looks fine.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.ones((8, 8))
    >>> [i.code for i in check_pair(img, np.zeros((8, 9)), name="x")]
    ['constant_image', 'shape_mismatch', 'empty_mask']
    """
    _check_options(label_mode, classes)
    name = name or "image"
    image = np.asarray(image)
    mask = _reduce_identical_channels(np.asarray(mask))
    if mask.ndim == 3 and image.ndim in (3, 4) and tuple(image.shape[:3]) == mask.shape:
        # a stack with a stack of masks: trained plane by plane, so checked plane by plane
        return [
            issue
            for k in range(mask.shape[0])
            for issue in check_pair(
                image[k], mask[k], name=f"{name} plane {k}", label_mode=label_mode,
                classes=classes,
            )
        ]  # fmt: skip
    issues = _check_image(image, name)
    if mask.ndim != 2:
        issues.append(
            Issue.make(
                "shape_mismatch",
                name,
                f"{name}: the mask has shape {mask.shape}, not (height, width); masks must be "
                "single-channel 2D images — save it as 8/16-bit grayscale.",
            )
        )
        return issues
    if _spatial_shape(image) != mask.shape:
        issues.append(
            Issue.make(
                "shape_mismatch",
                name,
                f"{name}: the image is {'x'.join(map(str, _spatial_shape(image)))} but the mask is "
                f"{'x'.join(map(str, mask.shape))} (height x width); they must match pixel for "
                "pixel — check that the mask belongs to this image and was not resized or cropped.",
            )
        )
    if mask.dtype.kind not in "biuf":
        issues.append(
            Issue.make(
                "invalid_labels", name, f"{name}: the mask has dtype {mask.dtype}; save integers."
            )
        )
        return issues
    if label_mode == "scribbles":
        issues.extend(_check_scribbles(mask, name, classes))
    else:
        issues.extend(_check_dense(mask, name, classes))
    return issues


def check_dataset(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    names: Sequence[str] | None = None,
    label_mode: str = "dense",
    classes: int = 1,
) -> QualityReport:
    """Check a training set given as arrays.

    Parameters
    ----------
    images, masks
        Sequences of the same length (image ``i`` goes with mask ``i``).
    names
        A name per pair for the messages (default ``"image 0"``, ``"image 1"``...).
    label_mode, classes
        As for :func:`check_pair`.

    Returns
    -------
    QualityReport

    Raises
    ------
    DataError
        If the sequences (or ``names``) differ in length.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((16, 16))
    >>> m = np.zeros((16, 16), np.uint8); m[4:12, 4:12] = 1
    >>> check_dataset([img, img], [m, np.zeros_like(m)], names=["a", "b"]).summary()
    '2 pairs checked: 0 errors, 1 warning'
    """
    _check_options(label_mode, classes)
    if len(images) != len(masks):
        raise DataError(
            f"Got {len(images)} images but {len(masks)} masks; pass one mask per image, "
            "in the same order."
        )
    if names is None:
        names = [f"image {i}" for i in range(len(images))]
    elif len(names) != len(images):
        raise DataError(f"Got {len(names)} names for {len(images)} images; pass one per image.")
    issues: list[Issue] = []
    for image, mask, name in zip(images, masks, names):
        issues.extend(
            check_pair(image, mask, name=str(name), label_mode=label_mode, classes=classes)
        )
    return QualityReport(issues, len(images))


def check_folders(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    *,
    label_mode: str = "dense",
    classes: int = 1,
) -> QualityReport:
    """Check a training set on disk: pairing, readability and every pair's content.

    Images are matched to masks by file stem with :func:`~napari_cytounet.core.io.pair_folders`.
    Unpaired files and unreadable files become issues (not exceptions), so one
    run lists every problem. Pairs are read one at a time, so memory stays low.

    Parameters
    ----------
    images_dir, masks_dir
        The folders of images and masks.
    label_mode, classes
        As for :func:`check_pair`.

    Returns
    -------
    QualityReport

    Raises
    ------
    DataError
        If a folder is missing or empty, or not a single image has a mask.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from napari_cytounet.core.io import write_image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> m = np.zeros((32, 32), np.uint8); m[8:24, 8:24] = 255
    >>> _ = write_image(root / "img" / "a.png", np.arange(1024, dtype=np.uint16).reshape(32, 32))
    >>> _ = write_image(root / "masks" / "a_mask.png", m)
    >>> _ = write_image(root / "masks" / "b.png", m)
    >>> report = check_folders(root / "img", root / "masks")
    >>> [(i.code, i.item) for i in report.issues]
    [('unpaired_mask', 'b')]
    """
    from .io import _read, pair_folders

    _check_options(label_mode, classes)
    pairing = pair_folders(images_dir, masks_dir)
    issues: list[Issue] = []
    for image_path, mask_path in pairing.pairs:
        name = image_path.stem
        arrays = []
        for path, what in ((image_path, "image"), (mask_path, "mask")):
            try:
                # masks are read like images (not with read_mask), so that a colour
                # mask is reported by check_pair rather than as unreadable
                arrays.append(_read(path, palette_indices=what == "mask"))
            except DataError as exc:
                issues.append(
                    Issue.make("unreadable", name, f"{name}: cannot read the {what}. {exc}")
                )
        if len(arrays) == 2:
            issues.extend(check_pair(*arrays, name=name, label_mode=label_mode, classes=classes))
    for path in pairing.unpaired_images:
        issues.append(
            Issue.make(
                "unpaired_image",
                path.stem,
                f"{path.stem}: the image '{path.name}' has no mask in '{masks_dir}' and is left "
                "out; add a mask with the same name (e.g. "
                f"{path.stem}.png or {path.stem}_mask.png) or move the image away.",
            )
        )
    for path in pairing.unpaired_masks:
        issues.append(
            Issue.make(
                "unpaired_mask",
                path.stem,
                f"{path.stem}: the mask '{path.name}' has no image of the same name in "
                f"'{images_dir}' and is ignored; rename it to match its image or remove it.",
            )
        )
    return QualityReport(issues, len(pairing.pairs))
