"""Reading image and mask files into numpy arrays (tifffile and imageio only).

TIFFs are read with :mod:`tifffile` (compressed TIFFs, LZW included, work through
:mod:`imagecodecs`); other formats with :mod:`imageio.v3`. An RGB(A) file whose colour
channels are identical is a grayscale image and is returned as 2D; an alpha channel that
is fully opaque is dropped. Re-exported by :mod:`napari_cytounet.core.io`.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from napari_cytounet.core.io import write_labels
>>> p = write_labels(pathlib.Path(tempfile.mkdtemp()) / "cell.png", np.array([[0, 1], [2, 3]]))
>>> read_mask(p).tolist()
[[0, 1], [2, 3]]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "read_image", "read_mask"]

IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
"""File suffixes read as images (compared case-insensitively)."""

TIFF_EXTENSIONS = (".tif", ".tiff")


PathLike = str | os.PathLike


def _to_grayscale_if_identical(image: np.ndarray) -> np.ndarray:
    """Drop an opaque alpha channel and collapse identical colour channels."""
    if image.ndim == 3 and image.shape[-1] in (2, 4):
        alpha = image[..., -1]
        if image.dtype.kind in "ui":
            opaque = np.iinfo(image.dtype).max
        elif image.dtype.kind == "b":
            opaque = True
        else:
            opaque = 1.0
        if np.all(alpha == opaque):
            image = image[..., :-1]
    if image.ndim == 3 and image.shape[-1] in (1, 3):
        first = image[..., 0]
        if all(np.array_equal(first, image[..., c]) for c in range(1, image.shape[-1])):
            image = np.ascontiguousarray(first)
    return image


def read_image(path: PathLike) -> np.ndarray:
    """Read one image file into a numpy array.

    TIFFs (``.tif``/``.tiff``, compressed ones included) are read with tifffile,
    PNG and JPEG with imageio. Leading axes of length 1 (e.g. a single-page
    ``(1, H, W)`` TIFF) are dropped. An RGB(A) image whose colour channels are
    identical comes back as a 2D grayscale array, and a fully opaque alpha
    channel is dropped; genuinely coloured images stay ``(H, W, 3)``. The dtype
    of the file is kept.

    Parameters
    ----------
    path
        The file to read.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    DataError
        If the file does not exist, has an unsupported suffix, or cannot be
        decoded (corrupt, truncated, not really an image).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from napari_cytounet.core.io import write_image
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "rgb.png"
    >>> gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    >>> _ = write_image(p, np.dstack([gray, gray, gray]))
    >>> read_image(p).shape
    (3, 4)
    """
    return _read(path)


def _read(path: PathLike, palette_indices: bool = False) -> np.ndarray:
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(
            f"'{path}' is a folder, not an image file; give one image (or use list_images / "
            "read a folder's files one by one)."
        )
    if not path.is_file():
        raise DataError(f"Image file '{path}' does not exist; check the path.")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise DataError(
            f"'{path}' is not a supported image ({suffix or 'no suffix'}); "
            f"convert it to one of {', '.join(IMAGE_EXTENSIONS)}."
        )
    try:
        if suffix in TIFF_EXTENSIONS:
            import tifffile

            image = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            mode = None
            if palette_indices and suffix == ".png" and iio.immeta(path).get("mode") == "P":
                mode = "P"  # a palette label image: keep the indices, not the colours
            image = iio.imread(path, mode=mode)
        image = np.asarray(image)
    except Exception as exc:  # every decoder has its own exception types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"Cannot read image '{path}': {detail}. The file is corrupt, truncated or not a "
            f"real {suffix} image; re-export or re-copy it, or move it out of the folder."
        ) from exc
    if image.size == 0 or image.ndim < 2:
        raise DataError(
            f"Image '{path}' holds no pixels (shape {image.shape}); re-export it or remove it."
        )
    while image.ndim > 2 and image.shape[0] == 1:
        image = image[0]
    return _to_grayscale_if_identical(image)


def read_mask(path: PathLike, stack: bool = False) -> np.ndarray:
    """Read a mask or label image as a 2D array.

    With ``stack=True`` a ``(Z, H, W)`` stack of masks is accepted too (training takes
    stacks plane by plane). Like :func:`read_image`, an RGB(A) file with identical colour
    channels is a single-channel mask (many tools save masks that way). A palette PNG gives
    its palette indices (the label values), not its display colours.

    Parameters
    ----------
    path
        The file to read.

    Returns
    -------
    numpy.ndarray
        2D array ``(H, W)`` with the file's dtype.

    Raises
    ------
    DataError
        If the file cannot be read, is genuinely coloured, or is not 2D.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from napari_cytounet.core.io import write_image
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.png"
    >>> m = np.zeros((4, 4), np.uint8); m[1:3, 1:3] = 255
    >>> _ = write_image(p, np.dstack([m, m, m]))
    >>> read_mask(p).shape
    (4, 4)
    """
    mask = _read(path, palette_indices=True)
    if mask.ndim == 3 and mask.shape[-1] in (2, 3, 4):
        raise DataError(
            f"Mask '{path}' is a colour image (shape {mask.shape}); masks must be "
            "single-channel: 0 = background, other values = foreground or label ids. "
            "Save it as an 8/16-bit grayscale PNG or TIFF (e.g. Fiji: Image > Type > 8-bit)."
        )
    if mask.ndim != 2 and not (stack and mask.ndim == 3):
        raise DataError(
            f"Mask '{path}' has shape {mask.shape}, not a 2D (height, width) image; "
            "save one mask per 2D image."
        )
    return mask
