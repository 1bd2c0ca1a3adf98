"""Reading a folder of images and a folder of masks into matched lists.

:func:`read_pairs` is the one reader of image/mask folder pairs for the CLI, the
demo, the scripts and the benchmarks: files are matched by name with
:func:`~napari_cytounet.core.io.pair_folders` (``cho01.png`` with ``cho01.png``
or ``cho01_mask.png``). :func:`read_checked_pairs` reads the same pairs once and
runs the quality check on them as it goes, so a check-then-train run reads every
file a single time.

Examples
--------
>>> data = read_pairs("train/images", "train/masks")  # doctest: +SKIP
>>> len(data.images) == len(data.masks) == len(data.names)  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .io_folders import Pairing, pair_folders
from .io_read import read_image, read_mask

PathLike = str | os.PathLike


@dataclass
class PairedData:
    """Images and masks read from two folders, matched by name.

    Attributes
    ----------
    images, masks
        The arrays, image ``i`` with mask ``i`` (masks may be ``(Z, H, W)`` stacks).
    names
        The image file stems, one per pair.
    pairing
        The matching, with the files that have no partner.
    problems
        Only from :func:`read_checked_pairs`: pairs that the quality check reads but
        training cannot use (a colour mask...), by name, with the reason.

    Examples
    --------
    >>> import numpy as np
    >>> data = PairedData([np.zeros((4, 4))], [np.zeros((4, 4))], ["a"], Pairing([]))
    >>> len(data)
    1
    """

    images: list[Any]
    masks: list[Any]
    names: list[str]
    pairing: Pairing
    problems: dict[str, DataError] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def training_arrays(self) -> tuple[list[Any], list[Any]]:
        """``(images, masks)`` for training; raises the first reading problem (DataError)."""
        if self.problems:
            raise next(iter(self.problems.values()))
        return self.images, self.masks


def _select(pairing: Pairing, names: Sequence[str] | None) -> list[tuple[Path, Path]]:
    """The pairs named by ``names`` (image stems, in that order), or all of them."""
    if names is None:
        return list(pairing.pairs)
    by_name = {image.stem: (image, mask) for image, mask in pairing.pairs}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise DataError(
            f"No image/mask pair named {', '.join(missing)} (found {', '.join(by_name)}); "
            "check the names."
        )
    return [by_name[name] for name in names]


def read_pairs(
    images_dir: PathLike, masks_dir: PathLike, *, names: Sequence[str] | None = None
) -> PairedData:
    """Read the images of one folder and their masks from another (or the same) folder.

    Parameters
    ----------
    images_dir, masks_dir
        The folders; files are matched by name (see
        :func:`~napari_cytounet.core.io.pair_folders`). Files without a partner are
        left out (see ``PairedData.pairing``).
    names
        Only these image stems, in this order (default: every pair, in the order of
        the image folder).

    Returns
    -------
    PairedData

    Raises
    ------
    DataError
        A missing or empty folder, no pair at all, an unknown name, or an unreadable
        image or mask (a colour mask, a corrupt file...).

    Examples
    --------
    >>> from napari_cytounet.sample_data import SAMPLE_DIR
    >>> data = read_pairs(SAMPLE_DIR, SAMPLE_DIR, names=["cho01"])
    >>> data.names, data.images[0].shape == data.masks[0].shape
    (['cho01'], True)
    """
    pairing = pair_folders(images_dir, masks_dir)
    images, masks, stems = [], [], []
    for image_path, mask_path in _select(pairing, names):
        images.append(read_image(image_path))
        masks.append(read_mask(mask_path, stack=True))  # stacks: trained plane by plane
        stems.append(image_path.stem)
    return PairedData(images, masks, stems, pairing)


def pairing_issues(pairing: Pairing, images_dir: PathLike, masks_dir: PathLike) -> list[Any]:
    """The quality issues of the files without a partner (``unpaired_image``/``_mask``).

    Examples
    --------
    >>> issues = pairing_issues(Pairing([], [Path("i/b.png")], []), "i", "m")
    >>> [(i.code, i.item) for i in issues]
    [('unpaired_image', 'b')]
    """
    from .quality import Issue

    issues = [
        Issue.make(
            "unpaired_image",
            path.stem,
            f"{path.stem}: the image '{path.name}' has no mask in '{masks_dir}' and is left "
            "out; add a mask with the same name (e.g. "
            f"{path.stem}.png or {path.stem}_mask.png) or move the image away.",
        )
        for path in pairing.unpaired_images
    ]
    issues += [
        Issue.make(
            "unpaired_mask",
            path.stem,
            f"{path.stem}: the mask '{path.name}' has no image of the same name in "
            f"'{images_dir}' and is ignored; rename it to match its image or remove it.",
        )
        for path in pairing.unpaired_masks
    ]
    return issues


def _read_for_check(image_path: Path, mask_path: Path) -> tuple[list[Any], Any, Any]:
    """The raw arrays the check needs, the mask for training, and the problems met.

    Returns ``(arrays, training_mask, problem)``: ``arrays`` holds what could be read
    (the image, then the mask as stored, e.g. a colour mask the check reports);
    ``problem`` is a ``(what, DataError)`` of a file that cannot be read at all, or
    ``None``; ``training_mask`` is ``None`` with the DataError that keeps the mask
    from training instead.
    """
    try:
        image = read_image(image_path)
    except DataError as exc:
        return [], None, ("image", exc)
    try:
        mask = read_mask(mask_path, stack=True)
        return [image, mask], mask, None
    except DataError as refusal:
        try:  # read as stored, so that the check can say what is wrong with it
            return [image, read_image(mask_path)], refusal, None
        except DataError as exc:
            return [image], None, ("mask", exc)


def read_checked_pairs(
    images_dir: PathLike,
    masks_dir: PathLike,
    *,
    label_mode: str = "dense",
    classes: int = 1,
) -> tuple[PairedData, Any]:
    """Read every pair once and run the quality check on it as it is read.

    The report is the one :func:`~napari_cytounet.core.quality.check_folders` gives
    (unpaired and unreadable files become issues, not exceptions); the arrays are
    kept for training. Pairs that cannot be trained on are listed in
    ``PairedData.problems`` (:meth:`PairedData.training_arrays` raises the first).

    Parameters
    ----------
    images_dir, masks_dir
        The folders of images and masks.
    label_mode, classes
        As for :func:`~napari_cytounet.core.quality.check_pair`.

    Returns
    -------
    tuple of (PairedData, QualityReport)

    Examples
    --------
    >>> from napari_cytounet.sample_data import SAMPLE_DIR
    >>> data, report = read_checked_pairs(SAMPLE_DIR, SAMPLE_DIR)
    >>> len(data), report.ok
    (5, True)
    """
    from .quality import Issue, QualityReport, check_dataset, check_pair

    check_dataset([], [], label_mode=label_mode, classes=classes)  # refuses bad options first
    pairing = pair_folders(images_dir, masks_dir)
    data = PairedData([], [], [], pairing)
    issues: list[Issue] = []
    for image_path, mask_path in pairing.pairs:
        name = image_path.stem
        arrays, training_mask, problem = _read_for_check(image_path, mask_path)
        if problem is not None:
            what, exc = problem
            issues.append(Issue.make("unreadable", name, f"{name}: cannot read the {what}. {exc}"))
            data.problems[name] = exc
        else:
            issues.extend(check_pair(*arrays, name=name, label_mode=label_mode, classes=classes))
            if isinstance(training_mask, DataError):
                data.problems[name] = training_mask
        data.images.append(arrays[0] if arrays else None)
        data.masks.append(None if isinstance(training_mask, DataError) else training_mask)
        data.names.append(name)
    issues.extend(pairing_issues(pairing, images_dir, masks_dir))
    return data, QualityReport(issues, len(pairing.pairs))
