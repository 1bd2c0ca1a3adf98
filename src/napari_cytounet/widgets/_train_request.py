"""The Train UNet widget's training request: the chosen layers and settings as one value.

:func:`build_training_request` turns the layer pairs, the validation pair, the settings and
where training starts from into the :class:`~napari_cytounet.engine.jobs.TrainingRequest` that
travels to the engine, and raises a :class:`~napari_cytounet.core.errors.CytoUNetError` that
says what to change for any bad choice. It runs in napari's main thread and only does fast
checks; the quality check and training run in the engine. Part of the Train widget
(:mod:`._train`); no other widget imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_cytounet.core.errors import DataError, ModelError

from . import _layers
from ._jobs import TrainingRequest


@dataclass(frozen=True)
class StartingPoint:
    """Where training starts: a new model, the current model or a model file.

    Attributes
    ----------
    start
        ``"new"``, ``"current"`` or ``"file"``.
    unet
        The :class:`~napari_cytounet.core.config.UNetConfig` of a new model.
    current
        The session's current model (a bundle), or ``None``.
    model_file
        The model file to continue from.

    Examples
    --------
    >>> StartingPoint("file", model_file="cells.keras").start
    'file'
    """

    start: str
    unet: Any = None
    current: Any = None
    model_file: Any = None


def collect_pairs(pairs: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any], list[str], list]:
    """Images, labels and names of every annotated plane of ``pairs``, and the pairs' names.

    Examples
    --------
    >>> images, labels, names, pair_names = collect_pairs(  # doctest: +SKIP
    ...     [(viewer.layers["cells"], viewer.layers["cells mask"])]
    ... )
    >>> names, pair_names  # doctest: +SKIP
    (['cells'], [('cells', 'cells mask')])
    """
    images: list[Any] = []
    labels: list[Any] = []
    names: list[str] = []
    pair_names = []
    for image, lab in pairs:
        imgs, labs, nms = _layers.training_pairs(image, lab)
        images += imgs
        labels += labs
        names += nms
        pair_names.append((image.name, lab.name))
    return images, labels, names, pair_names


def collect_validation(
    val_image: Any, val_labels: Any, pairs: list[tuple[Any, Any]]
) -> tuple[Any, list[str] | None, tuple[str, str] | None]:
    """The validation arrays, their names and the pair's names (all ``None`` without one).

    Examples
    --------
    >>> collect_validation(None, None, [])
    (None, None, None)
    """
    if (val_image is None) != (val_labels is None):
        raise DataError("Choose both a validation image and its labels, or neither.")
    if val_image is None:
        return None, None, None
    if any(val_labels is lab for _, lab in pairs):
        raise DataError(
            f"{val_labels.name!r} is used for training; validate on labels the model "
            "does not train on (or set validation to none)."
        )
    vi, vl, validation_names = _layers.training_pairs(val_image, val_labels)
    return (vi, vl), validation_names, (val_image.name, val_labels.name)


def starting_fields(point: StartingPoint) -> dict[str, Any]:
    """The request's ``unet``, ``initial`` or ``model_path`` for ``point`` (checked).

    Examples
    --------
    >>> starting_fields(StartingPoint("new", unet="config"))
    {'unet': 'config'}
    >>> starting_fields(StartingPoint("current"))
    Traceback (most recent call last):
    ...
    napari_cytounet.core.errors.ModelError: There is no current model to continue from: ...
    """
    if point.start == "new":
        return {"unet": point.unet}
    if point.start == "current":
        if point.current is None:
            raise ModelError(
                "There is no current model to continue from: train a new one first, or load "
                "one (start from 'file', or the Model widget)."
            )
        return {"initial": point.current}
    path = point.model_file
    if not path or not Path(path).is_file():
        raise ModelError(f"No model file at {path!s}; choose a .keras model to continue from.")
    return {"model_path": Path(path)}


def build_training_request(
    pairs: list[tuple[Any, Any]],
    validation: tuple[Any, Any],
    config: Any,
    point: StartingPoint,
    *,
    force: bool = False,
) -> TrainingRequest:
    """The :class:`TrainingRequest` of the Train widget's choices.

    Parameters
    ----------
    pairs
        (Image layer, Labels layer) pairs to train on; every annotated plane of a stack.
    validation
        The validation (Image layer, Labels layer), or ``(None, None)``.
    config
        The :class:`~napari_cytounet.core.config.TrainingConfig`.
    point
        Where training starts (:class:`StartingPoint`).
    force
        Train despite errors of the quality check.

    Raises
    ------
    CytoUNetError
        For any bad choice, with a message that says what to change.

    Examples
    --------
    >>> request = build_training_request(  # doctest: +SKIP
    ...     [(viewer.layers["cells"], viewer.layers["cells mask"])], (None, None),
    ...     TrainingConfig(epochs=2), StartingPoint("new", unet=UNetConfig(depth=2)),
    ... )
    >>> request.names  # doctest: +SKIP
    ['cells']
    """
    images, labels, names, pair_names = collect_pairs(pairs)
    val_data, validation_names, validation_pair = collect_validation(*validation, pairs)
    return TrainingRequest(
        images=images,
        labels=labels,
        names=names,
        config=config,
        validation=val_data,
        validation_names=validation_names,
        force=bool(force),
        pair_names=pair_names,
        validation_pair=validation_pair,
        **starting_fields(point),
    )


def model_source(request: TrainingRequest | None) -> str:
    """How the session describes the model a finished ``request`` made.

    Examples
    --------
    >>> model_source(None)
    'trained in this session'
    """
    fresh = request is None or (request.initial is None and request.model_path is None)
    return "trained in this session" if fresh else "fine-tuned in this session"
