"""Check a training set, then train on it: one event stream, each file read once.

:func:`iter_checked_training` (folders, for the CLI) and :func:`check_then_train`
(arrays, for the engine and the widgets) share the rules and the events. The
first reads the image and mask folders (and the validation folders, if any)
once, running the quality check as it reads. Both yield a
:class:`~.events.QualityChecked` event with the reports. When the check finds
errors or files without a partner, the run stops there with a
:class:`~.errors.DataError` unless ``force``; otherwise the training events of
:func:`~.training.train` follow, on the arrays already read. Nothing here
imports TensorFlow before the check has passed.

Examples
--------
>>> for event in iter_checked_training("imgs", "masks", TrainingConfig(epochs=1)):  # doctest: +SKIP
...     print(type(event).__name__)
QualityChecked
TrainingStarted
...
TrainingFinished
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .config import TrainingConfig, UNetConfig
from .errors import DataError
from .events import CheckedTrainingEvent, QualityChecked
from .pairs import PairedData, read_checked_pairs

if TYPE_CHECKING:  # pragma: no cover
    from .bundle import ModelBundle

PathLike = str | os.PathLike


def refusal_message(checked: QualityChecked, force_hint: str = "force=True") -> str | None:
    """Why a checked training set is refused (None when it is not), with the way out.

    Errors come first (they would waste the run; outline-only masks get a hint),
    then files without a partner (they would silently be left out).

    Examples
    --------
    >>> from napari_cytounet.core.quality import QualityReport
    >>> refusal_message(QualityChecked((QualityReport([], 1),), ("training",), ("a + b",)))
    """
    if checked.errors:
        codes = checked.error_codes
        hint = " (outline-only masks: fill the objects)" if "outline_only" in codes else ""
        return (
            f"the quality check found {checked.errors} error(s) ({', '.join(codes)}){hint}, "
            f"see the report above; fix them, or pass {force_hint} to train anyway."
        )
    if checked.unpaired:
        return (
            f"{checked.unpaired} file(s) have no partner (see the report above) and would be "
            "left out of training; add or rename the missing files, or pass "
            f"{force_hint} to train on the pairs only."
        )
    return None


def iter_checked_training(
    images_dir: PathLike,
    masks_dir: PathLike,
    config: TrainingConfig | None = None,
    unet: UNetConfig | None = None,
    *,
    validation_dirs: tuple[PathLike, PathLike] | None = None,
    initial: ModelBundle | Callable[[], ModelBundle] | None = None,
    force: bool = False,
    force_hint: str = "force=True",
    stop: threading.Event | None = None,
    jit: bool | None = None,
) -> Iterator[CheckedTrainingEvent]:
    """Check the training (and validation) folders, then train: the typed event stream.

    Parameters
    ----------
    images_dir, masks_dir
        Folders of training images and their masks (matched by name).
    config, unet
        As for :func:`~.training.train`; ``config.labels`` and ``unet.classes`` also
        set the rules of the check.
    validation_dirs
        ``(images_dir, masks_dir)`` of validation data, checked the same way.
    initial
        A model to continue training, or a function returning one: called only once
        the check has passed, so a refused set never loads a model.
    force
        Train despite errors and unpaired files (on the pairs only).
    force_hint
        How the caller spells ``force`` in the refusal message (the CLI: ``--force``).
    stop, jit
        As for :func:`~.training.train`.

    Yields
    ------
    QualityChecked, then the events of :func:`~.training.train`.

    Raises
    ------
    DataError
        After :class:`~.events.QualityChecked`, when the check refuses the set and
        ``force`` is False, or when a pair cannot be read for training at all.

    Examples
    --------
    >>> events = iter_checked_training("imgs", "masks", force=True)  # doctest: +SKIP
    >>> next(events).errors  # doctest: +SKIP
    0
    """
    config = config if config is not None else TrainingConfig()
    classes = unet.classes if unet is not None else 1
    folders = [("training", images_dir, masks_dir)]
    if validation_dirs is not None:
        folders.append(("validation", *validation_dirs))
    data: list[PairedData] = []
    reports = []
    for _, images, masks in folders:
        read, report = read_checked_pairs(images, masks, label_mode=config.labels, classes=classes)
        data.append(read)
        reports.append(report)
    checked = QualityChecked(
        tuple(reports),
        tuple(what for what, _, _ in folders),
        tuple(f"{images} + {masks}" for _, images, masks in folders),
        force=force,
    )
    yield checked
    _refuse(checked, force_hint)
    images, masks = data[0].training_arrays()
    validation = data[1].training_arrays() if len(data) > 1 else None
    yield from _train(
        images, masks, config, unet, initial, validation=validation, names=data[0].names,
        validation_names=data[1].names if len(data) > 1 else None, stop=stop, jit=jit,
    )  # fmt: skip


def check_then_train(
    images: Sequence[Any],
    labels: Sequence[Any],
    config: TrainingConfig | None = None,
    unet: UNetConfig | None = None,
    *,
    names: Sequence[str] | None = None,
    validation: tuple[Sequence[Any], Sequence[Any]] | None = None,
    validation_names: Sequence[str] | None = None,
    initial: ModelBundle | Callable[[], ModelBundle] | None = None,
    force: bool = False,
    force_hint: str = "force=True",
    **train_options: Any,
) -> Iterator[CheckedTrainingEvent]:
    """Check training arrays (and validation arrays), then train: the same rules and events.

    The in-memory twin of :func:`iter_checked_training` (for layers rather than
    folders): yields :class:`~.events.QualityChecked` (one report per set, checked
    with :func:`~.quality.check_dataset`), raises :class:`~.errors.DataError` when it
    finds errors and ``force`` is False, else yields the events of
    :func:`~.training.train`, to which ``train_options`` (``stop``, ``jit``,
    ``checkpoints``) go.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((32, 32))
    >>> mask = np.zeros((32, 32), np.uint8); mask[8:24, 8:24] = 1
    >>> next(check_then_train([image], [mask], names=["a"])).errors
    0
    """
    from .quality import check_dataset

    config = config if config is not None else TrainingConfig()
    rules = {"label_mode": config.labels, "classes": unet.classes if unet is not None else 1}
    reports = [check_dataset(images, labels, names=names, **rules)]
    if validation is not None:
        reports.append(check_dataset(*validation, names=validation_names, **rules))
    sets = ("training", "validation")[: len(reports)]
    checked = QualityChecked(tuple(reports), sets, sets, force=force)
    yield checked
    _refuse(checked, force_hint)
    yield from _train(
        images, labels, config, unet, initial, validation=validation, names=names,
        validation_names=validation_names, **train_options,
    )  # fmt: skip


def _refuse(checked: QualityChecked, force_hint: str) -> None:
    """Raise the refusal (DataError) of a blocking check that was not forced."""
    refusal = refusal_message(checked, force_hint)
    if refusal is not None and not checked.force:
        raise DataError(refusal)


def _train(
    images: Sequence[Any],
    labels: Sequence[Any],
    config: TrainingConfig,
    unet: UNetConfig | None,
    initial: Any,
    **options: Any,
) -> Iterator[Any]:
    """Load the initial model if it is a loader, then the events of :func:`~.training.train`."""
    if callable(initial):
        initial = initial()
    from .training import train

    yield from train(images, labels, config, unet, initial=initial, **options)
