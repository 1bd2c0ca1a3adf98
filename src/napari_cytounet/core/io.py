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

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError
from .files import atomic_write

IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
"""File suffixes read as images (compared case-insensitively)."""

TIFF_EXTENSIONS = (".tif", ".tiff")

MASK_SUFFIXES = ("_masks", "_mask", "_labels", "_label", "-masks", "-mask", "-labels", "-label")
"""Stem endings tolerated on mask files: ``cho01_mask.png`` pairs with ``cho01.png``."""

PathLike = str | os.PathLike

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_SUFFIXES",
    "Pairing",
    "list_images",
    "output_path",
    "pair_folders",
    "read_image",
    "read_mask",
    "write_image",
    "write_labels",
]


# ---------------------------------------------------------------------------
# listing


def _is_image_file(path: Path) -> bool:
    return (
        path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def _natural_key(path: Path) -> tuple:
    """Sort ``img2`` before ``img10`` (then by full name, for a total order)."""
    parts = re.split(r"(\d+)", path.name.lower())
    return (tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts), path.name)


def list_images(folder: PathLike) -> list[Path]:
    """List the image files of a folder, sorted by name.

    Files with a suffix in :data:`IMAGE_EXTENSIONS` (any case) are listed; hidden
    files and sub-folders are not. Names are sorted "naturally", so ``img2``
    comes before ``img10``.

    Parameters
    ----------
    folder
        The folder to list.

    Returns
    -------
    list of Path

    Raises
    ------
    DataError
        If the folder does not exist, is not a folder, or holds no image file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b10.png", "b2.TIF", "notes.txt"):
    ...     _ = (d / name).write_bytes(b"")
    >>> [p.name for p in list_images(d)]
    ['b2.TIF', 'b10.png']
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataError(f"Folder '{folder}' does not exist; check the path (typo? not mounted?).")
    if not folder.is_dir():
        raise DataError(
            f"'{folder}' is a file, not a folder; pass the folder that holds the images."
        )
    files = sorted((p for p in folder.iterdir() if _is_image_file(p)), key=_natural_key)
    if not files:
        others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))[:3]
        seen = f" (it holds e.g. {', '.join(others)})" if others else " (it is empty)"
        raise DataError(
            f"Folder '{folder}' holds no image{seen}; put .tif, .tiff, .png or .jpg files "
            "in it or point to the right folder."
        )
    return files


# ---------------------------------------------------------------------------
# reading


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


# ---------------------------------------------------------------------------
# pairing


@dataclass
class Pairing:
    """Images matched to masks by file stem.

    Attributes
    ----------
    pairs
        ``(image_path, mask_path)`` tuples, in the order of the image folder.
    unpaired_images
        Images without a mask.
    unpaired_masks
        Masks without an image.

    Examples
    --------
    >>> from pathlib import Path
    >>> p = Pairing([(Path("a/c1.png"), Path("m/c1_mask.png"))], [], [])
    >>> p.names
    ['c1']
    """

    pairs: list[tuple[Path, Path]]
    unpaired_images: list[Path] = field(default_factory=list)
    unpaired_masks: list[Path] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The stems of the paired images (used as item names in reports)."""
        return [image.stem for image, _ in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)


def _mask_key(stem: str) -> str | None:
    """The image stem a mask stem points to once a mask suffix is removed, else None."""
    low = stem.casefold()
    for suffix in MASK_SUFFIXES:
        if low.endswith(suffix) and len(low) > len(suffix):
            return low[: -len(suffix)]
    return None


def _examples(paths: Iterable[Path], n: int = 3) -> str:
    names = [p.name for p in paths][:n]
    return ", ".join(names) if names else "none"


def pair_folders(images_dir: PathLike, masks_dir: PathLike) -> Pairing:
    """Match the images of one folder to the masks of another by file stem.

    ``cho01.png`` pairs with ``cho01.tif``, ``cho01_mask.png``, ``CHO01_labels.tif``
    ...: stems are compared ignoring case and, on the mask side, a suffix from
    :data:`MASK_SUFFIXES`. An exact stem match wins over a suffixed one, so a
    second candidate mask is reported as unpaired. Both arguments may name the
    same folder: then files with a mask suffix are the masks and the others the
    images.

    Parameters
    ----------
    images_dir, masks_dir
        The two folders.

    Returns
    -------
    Pairing

    Raises
    ------
    DataError
        If a folder is missing or empty, if two images share a stem, or if not
        a single image has a mask (the message shows example names of both sides).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "img").mkdir(); (root / "lab").mkdir()
    >>> for n in ("img/a.png", "img/b.png", "lab/a_mask.png", "lab/z.png"):
    ...     _ = (root / n).write_bytes(b"")
    >>> p = pair_folders(root / "img", root / "lab")
    >>> p.names, [q.name for q in p.unpaired_images], [q.name for q in p.unpaired_masks]
    (['a'], ['b.png'], ['z.png'])
    """
    image_files = list_images(images_dir)
    mask_files = list_images(masks_dir)
    if Path(images_dir).resolve() == Path(masks_dir).resolve():
        mask_files = [p for p in image_files if _mask_key(p.stem) is not None]
        image_files = [p for p in image_files if _mask_key(p.stem) is None]
        if not mask_files or not image_files:
            raise DataError(
                f"Images and masks are both read from '{images_dir}', but it does not hold "
                "both images and masks named like 'cho01.png' + 'cho01_mask.png'; put the "
                "masks in their own folder."
            )

    by_stem: dict[str, Path] = {}
    for path in image_files:
        key = path.stem.casefold()
        if key in by_stem:
            raise DataError(
                f"Two images share the name '{path.stem}': '{by_stem[key].name}' and "
                f"'{path.name}' in '{images_dir}'; keep one or rename the other."
            )
        by_stem[key] = path

    exact: dict[str, Path] = {}
    suffixed: dict[str, list[Path]] = {}
    for path in mask_files:
        key = path.stem.casefold()
        if key in by_stem and key not in exact:
            exact[key] = path
        else:
            stripped = _mask_key(path.stem)
            suffixed.setdefault(stripped if stripped is not None else "\0" + key, []).append(path)

    pairs: list[tuple[Path, Path]] = []
    used: set[Path] = set()
    unpaired_images: list[Path] = []
    for key, image in by_stem.items():
        mask = exact.get(key)
        if mask is None and suffixed.get(key):
            mask = suffixed[key][0]
        if mask is None:
            unpaired_images.append(image)
        else:
            pairs.append((image, mask))
            used.add(mask)
    unpaired_masks = [p for p in mask_files if p not in used]

    if not pairs:
        raise DataError(
            f"No image in '{images_dir}' has a mask in '{masks_dir}'. Images and masks are "
            f"matched by file name (e.g. cho01.png with cho01.png or cho01_mask.png), but the "
            f"images are named like {_examples(image_files)} and the masks like "
            f"{_examples(mask_files)}; rename the files so the names match."
        )
    return Pairing(pairs, unpaired_images, unpaired_masks)


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
