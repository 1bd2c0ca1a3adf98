"""Folders of images and masks: listing image files and pairing images with masks by name.

Hidden files (names starting with ``.``, e.g. macOS ``._cho01.png``) are ignored;
names sort "naturally" (``img2`` before ``img10``). Images are matched to masks by
file stem, ignoring case and a mask suffix such as ``_mask`` or ``_labels`` (see
:data:`MASK_SUFFIXES`). Re-exported by :mod:`napari_cytounet.core.io`.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "img").mkdir(); (root / "lab").mkdir()
>>> for n in ("img/a.png", "lab/a_mask.png"):
...     _ = (root / n).write_bytes(b"")
>>> pair_folders(root / "img", root / "lab").names
['a']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError
from .io_read import IMAGE_EXTENSIONS, PathLike

__all__ = ["MASK_SUFFIXES", "Pairing", "list_images", "pair_folders"]

MASK_SUFFIXES = ("_masks", "_mask", "_labels", "_label", "-masks", "-mask", "-labels", "-label")
"""Stem endings tolerated on mask files: ``cho01_mask.png`` pairs with ``cho01.png``."""


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
