"""Reading and writing folders of images and masks (tifffile and imageio only).

Conventions

* Image files are ``.tif``, ``.tiff``, ``.png``, ``.jpg`` and ``.jpeg`` (any case);
  hidden files (names starting with ``.``, e.g. macOS ``._cho01.png``) are ignored.
* TIFFs are read with :mod:`tifffile` (compressed TIFFs, LZW included, work through
  :mod:`imagecodecs`); other formats with :mod:`imageio.v3`.
* An RGB(A) file whose colour channels are identical is a grayscale image and is
  returned as 2D; an alpha channel that is fully opaque is dropped.
* Images are matched to masks by file stem, ignoring case and a mask suffix such
  as ``_mask`` or ``_labels`` (see :data:`MASK_SUFFIXES`).
* Writes are atomic: the data go to a temporary file in the destination folder,
  which then replaces the destination with :func:`os.replace`. A crash never
  leaves a half-written file, and an existing file of the same name is
  **overwritten** (outputs belong in an output folder, never beside the user's
  own labels).

Writing lives here; reading in :mod:`.io_read` and listing and pairing folders in
:mod:`.io_folders`, whose public names this module re-exports.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> p = write_labels(folder / "cell.png", np.array([[0, 1], [2, 3]]))
>>> read_mask(p).tolist()
[[0, 1], [2, 3]]
>>> output_path(folder / "out", "/data/images/cho01.png", suffix=".tif").name
'cho01.tif'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .files import atomic_write
from .io_read import (
    TIFF_EXTENSIONS,
    PathLike,
    _read,  # noqa: F401  (imported from here by quality.check_folders)
)

# in the order of the API reference
# isort: off
from .io_read import IMAGE_EXTENSIONS, read_image, read_mask
from .io_folders import MASK_SUFFIXES, Pairing, list_images, pair_folders

# isort: on

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_SUFFIXES",
    "Pairing",
    "list_images",
    "output_path",
    "pair_folders",
    "read_image",
    "read_mask",
    "read_pairs",
    "write_image",
    "write_labels",
]


# ---------------------------------------------------------------------------
# writing


def _atomic_write(path: Path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it.

    See :func:`napari_cytounet.core.files.atomic_write` (permissions follow the umask; a
    replaced file keeps its mode; orphans of killed runs are cleaned up).
    """
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"Cannot create the output folder '{path.parent}': {exc}; choose a writable folder."
        ) from exc
    return atomic_write(path, write)


def _write_tiff(tmp: Path, array: np.ndarray, rgb: bool = False) -> None:
    import tifffile

    photometric = "rgb" if rgb else "minisblack"
    tifffile.imwrite(tmp, array, compression="zlib", photometric=photometric)


def _write_imageio(tmp: Path, array: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(tmp, array)


def write_image(path: PathLike, array: np.ndarray) -> Path:
    """Write an array as an image file, atomically.

    The format follows the suffix: ``.tif``/``.tiff`` writes a zlib-compressed
    TIFF of any dtype and shape (integer ``(H, W, 3|4)`` arrays as RGB(A), all
    else as grayscale planes, so a ``(3, H, W)`` stack stays a stack);
    ``.png`` takes uint8 or uint16 (and bool, saved as 0/1 uint8), 2D or
    ``(H, W, 3|4)``; ``.jpg``/``.jpeg`` takes uint8 only (lossy: never use it
    for masks). Missing parent folders are created and an
    existing file is overwritten.

    Parameters
    ----------
    path
        Destination file.
    array
        The pixels.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    DataError
        If the suffix is not supported or the dtype does not fit the format.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "prob.tif"
    >>> write_image(p, np.full((8, 8), 0.25, np.float32)).name
    'prob.tif'
    >>> float(read_image(p)[0, 0])
    0.25
    """
    path = Path(path).expanduser()
    array = np.asarray(array)
    suffix = path.suffix.lower()
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if suffix in TIFF_EXTENSIONS:
        rgb = array.ndim == 3 and array.shape[-1] in (3, 4) and array.dtype.kind in "ui"
        return _atomic_write(path, lambda tmp: _write_tiff(tmp, array, rgb))
    if suffix == ".png":
        if array.dtype not in (np.uint8, np.uint16):
            raise DataError(
                f"Cannot write {array.dtype} data to the PNG '{path}' (PNG holds 8/16-bit "
                "integers); write a .tif instead or convert the data first."
            )
    elif suffix in (".jpg", ".jpeg"):
        if array.dtype != np.uint8:
            raise DataError(
                f"Cannot write {array.dtype} data to the JPEG '{path}' (8-bit only); "
                "write a .tif or .png instead."
            )
    else:
        raise DataError(
            f"Cannot write '{path}': unsupported suffix '{suffix or '(none)'}'; "
            "use .tif, .png or .jpg."
        )
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
        raise DataError(
            f"Cannot write an array of shape {array.shape} as '{path.name}': PNG/JPEG hold "
            "(H, W) or (H, W, 3|4) images; write a .tif for stacks."
        )
    return _atomic_write(path, lambda tmp: _write_imageio(tmp, array))


def write_labels(path: PathLike, labels: np.ndarray) -> Path:
    """Write a mask or label image losslessly, atomically, with the smallest dtype.

    Values must be non-negative integers (bool is saved as 0/1). With a ``.png``
    suffix the file is an 8-bit PNG when the values fit in uint8, a 16-bit PNG
    when they fit in uint16, and an error otherwise (use ``.tif``). With a
    ``.tif``/``.tiff`` suffix it is a zlib-compressed TIFF of uint8, uint16 or
    uint32, and any shape (stacks too). JPEG is refused: it is lossy. Missing
    parent folders are created and an existing file is overwritten.

    Parameters
    ----------
    path
        Destination file (``.png``, ``.tif`` or ``.tiff``).
    labels
        Integer or bool array.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    DataError
        For negative or non-integer values, values too large for the format, or
        an unsupported suffix.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> lab = np.zeros((5, 5), np.int32); lab[1:3, 1:3] = 300
    >>> p = write_labels(d / "labels.tif", lab)
    >>> read_mask(p).dtype, int(read_mask(p).max())
    (dtype('uint16'), 300)
    """
    path = Path(path).expanduser()
    labels = np.asarray(labels)
    suffix = path.suffix.lower()
    if suffix not in (".png", *TIFF_EXTENSIONS):
        raise DataError(
            f"Cannot write labels to '{path}': use a .png or .tif file "
            "(JPEG is lossy and would change label values)."
        )
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise DataError(
                f"Labels for '{path.name}' are not whole numbers; threshold or round them "
                "before saving (e.g. postprocess(prob))."
            )
    elif labels.dtype.kind not in "ui":
        raise DataError(f"Labels must be integers or bool, got dtype {labels.dtype}.")
    lo = labels.min() if labels.size else 0
    hi = labels.max() if labels.size else 0
    if lo < 0:
        raise DataError(
            f"Labels for '{path.name}' contain negative values (min {lo}); label ids must be "
            ">= 0 (0 = background)."
        )
    for dtype in (np.uint8, np.uint16, np.uint32):
        if hi <= np.iinfo(dtype).max:
            break
    else:
        raise DataError(f"Label values up to {hi} do not fit in 32 bits; relabel them.")
    if suffix == ".png" and dtype == np.uint32:
        raise DataError(
            f"Labels up to {hi} do not fit in a 16-bit PNG; write '{path.with_suffix('.tif')}' "
            "instead."
        )
    labels = labels.astype(dtype, copy=False)
    if suffix == ".png":
        if labels.ndim != 2:
            raise DataError(
                f"A PNG holds one 2D label image, got shape {labels.shape}; write a .tif."
            )
        return _atomic_write(path, lambda tmp: _write_imageio(tmp, labels))
    return _atomic_write(path, lambda tmp: _write_tiff(tmp, labels))


def output_path(out_dir: PathLike, source_path: PathLike, suffix: str = ".tif") -> Path:
    """The output file for an input image: same stem, new suffix, in ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder (not created here).
    source_path
        The input image file.
    suffix
        Suffix of the output, with its dot (``".tif"``, ``".png"``). It may carry
        a tag before the extension, e.g. ``"_prob.tif"``.

    Returns
    -------
    Path

    Examples
    --------
    >>> output_path("out", "in/cho01.png").as_posix()
    'out/cho01.tif'
    >>> output_path("out", "in/cho01.png", "_prob.tif").name
    'cho01_prob.tif'
    """
    if not suffix or suffix[0] not in "._-" or "." not in suffix:
        raise DataError(
            f"Output suffix must contain a file extension such as '.tif', got {suffix!r}."
        )
    return Path(out_dir) / f"{Path(source_path).stem}{suffix}"


# The one reader of image/mask folder pairs lives in .pairs (it reads with the functions above);
# imported last so that .pairs finds them here.
from .pairs import PairedData as PairedData  # noqa: E402
from .pairs import read_pairs as read_pairs  # noqa: E402
