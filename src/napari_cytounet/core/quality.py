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

import numpy as np

from .errors import ConfigError, DataError
from .quality_checks import (
    _check_dense,
    _check_image,
    _check_scribbles,
    _reduce_identical_channels,
    _spatial_shape,
)

# in the order of the API reference
# isort: off
from .quality_report import SEVERITY, Issue, QualityReport
from .quality_outlines import OUTLINE_THRESHOLD, OutlineEvidence, outline_score, is_outline_only

# isort: on

__all__ = [
    "OUTLINE_THRESHOLD",
    "SEVERITY",
    "Issue",
    "OutlineEvidence",
    "QualityReport",
    "check_dataset",
    "check_folders",
    "check_pair",
    "is_outline_only",
    "outline_score",
]


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
    from .pairs import pairing_issues

    issues.extend(pairing_issues(pairing, images_dir, masks_dir))
    return QualityReport(issues, len(pairing.pairs))
