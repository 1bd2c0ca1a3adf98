"""The content checks of one image/mask pair: the image, a dense mask, a scribble mask.

Each check returns a list of :class:`~.quality_report.Issue` (empty when fine);
:func:`~napari_cytounet.core.quality.check_pair` calls them. The issue codes are
described in :mod:`napari_cytounet.core.quality`.
"""

from __future__ import annotations

import numpy as np

from .data import label_values_problem
from .quality_outlines import OUTLINE_THRESHOLD, _outline_evidence
from .quality_report import Issue


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
    invalid = _invalid_dense_values(mask, name)
    if invalid:
        return invalid
    issues: list[Issue] = []
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
        issues.extend(_check_class_values(mask, name, classes))
    else:
        issues.extend(_check_binary(mask, fg, name))
    return issues


def _invalid_dense_values(mask: np.ndarray, name: str) -> list[Issue]:
    """NaN, infinite or negative values: the mask cannot be checked further."""
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
    return []


def _check_class_values(mask: np.ndarray, name: str, classes: int) -> list[Issue]:
    """A multi-class dense mask holds class indices ``0..classes-1``."""
    if mask.dtype.kind == "f" and not np.array_equal(mask, np.round(mask)):
        return [
            Issue.make(
                "invalid_labels",
                name,
                f"{name}: the class mask holds fractional values; save class indices "
                f"0..{classes - 1} as integers.",
            )
        ]
    if problem := label_values_problem(int(mask.max()), "dense", classes):
        # the same rule as training (an error: training would fail on it)
        return [Issue.make("invalid_labels", name, f"{name}: {problem}")]
    return []


def _check_binary(mask: np.ndarray, fg: np.ndarray, name: str) -> list[Issue]:
    """A binary dense mask: edge values of antialiasing or JPEG, or outlines only."""
    issues: list[Issue] = []
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
