"""The jobs the engine runs: each a generator of typed events around one core function.

They run in the engine process (TensorFlow is imported there). Bundles that
come back from napari's process are matched to the live ones by ``uid``
(:func:`warm`), so the same model is never rebuilt between jobs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import ModelLoaded, ModelSaved


@dataclass
class TrainingRequest:
    """Everything a training job needs (picklable: it travels to the engine).

    Examples
    --------
    >>> from napari_cytounet.core.config import TrainingConfig
    >>> TrainingRequest(images=[], labels=[], names=[], config=TrainingConfig()).force
    False
    """

    images: list[Any]
    labels: list[Any]
    names: list[str]
    config: Any  # TrainingConfig
    unet: Any = None  # UNetConfig for a new model
    initial: Any = None  # ModelBundle to continue from
    model_path: Path | None = None  # model file to continue from (loaded in the engine)
    validation: tuple[list[Any], list[Any]] | None = None
    validation_names: list[str] | None = None
    force: bool = False
    pair_names: list[tuple[str, str]] = field(default_factory=list)
    validation_pair: tuple[str, str] | None = None


#: Live bundles of this engine by uid, newest last (a few: each holds a Keras model).
_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def warm(bundle: Any) -> Any:
    """The live bundle with ``bundle``'s uid if this engine has it, else ``bundle`` (cached)."""
    if bundle is None:
        return None
    with _CACHE_LOCK:
        live = _CACHE.get(bundle.uid)
        if live is None:
            live = _CACHE[bundle.uid] = bundle
        _CACHE.move_to_end(bundle.uid)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return live


def _load(path: Path) -> Iterator[Any]:
    from napari_cytounet.core.bundle import load_bundle

    bundle = warm(load_bundle(path))
    yield ModelLoaded(bundle, Path(path))


def load_job(path: Path, stop: threading.Event) -> Iterator[Any]:
    """Load a model file; yields :class:`ModelLoaded`."""
    yield from _load(path)


def save_job(bundle: Any, path: Path, stop: threading.Event) -> Iterator[Any]:
    """Save a bundle (atomically); yields :class:`ModelSaved`."""
    from napari_cytounet.core.bundle import save_bundle

    live = warm(bundle)
    saved = save_bundle(live, path)
    yield ModelSaved(saved, live.created, dict(live.versions))


def predict_job(
    bundle: Any,
    path: Path | None,
    image: Any,
    channel_axis: int | None,
    params: dict[str, Any],
    stop: threading.Event,
) -> Iterator[Any]:
    """Load the model if ``bundle`` is ``None``, then segment ``image`` (events of the core)."""
    from napari_cytounet.core.predict import iter_segment

    if bundle is None:
        for event in _load(path):
            bundle = event.bundle
            yield event
    yield from iter_segment(warm(bundle), image, channel_axis=channel_axis, **params)


def predict_zarr_job(
    bundle: Any,
    path: Path | None,
    source: Path,
    output: Path,
    channel_axis: int | None,
    params: dict[str, Any],
    stop: threading.Event,
) -> Iterator[Any]:
    """Segment the zarr image at ``source`` (level 0 of an OME-Zarr) into the zarr ``output``.

    Block by block on dask's threads (:func:`~napari_cytounet.core.zarr_io.iter_predict_to_zarr`):
    progress, then a ``ZarrPrediction``. Closing the job keeps the finished blocks, and the
    same request resumes. Loads the model from ``path`` first when ``bundle`` is ``None``.
    """
    from napari_cytounet.core.zarr_io import iter_predict_to_zarr, open_zarr_image

    if bundle is None:
        for event in _load(path):
            bundle = event.bundle
            yield event
    image, _ = open_zarr_image(source)
    yield from iter_predict_to_zarr(
        warm(bundle), image, output, channel_axis=channel_axis, scheduler="threads", **params
    )


def train_job(request: TrainingRequest, stop: threading.Event) -> Iterator[Any]:
    """Quality check, then training (with checkpoints of the best weights).

    Yields :class:`~napari_cytounet.core.events.QualityChecked` first (the rules of
    :func:`~napari_cytounet.core.checked_training.check_then_train`) and stops there
    if it found errors and ``request.force`` is false: the widget says why.
    """
    from napari_cytounet.core.events import QualityChecked, TrainingFinished
    from napari_cytounet.core.quality import check_dataset
    from napari_cytounet.core.training import train

    unet = request.unet if request.unet is not None else getattr(request.initial, "unet", None)
    classes = unet.classes if unet is not None else 1  # a model file's: checked by its loader
    report = check_dataset(
        request.images,
        request.labels,
        names=request.names,
        label_mode=request.config.labels,
        classes=classes,
    )
    checked = QualityChecked((report,), ("training",), ("layers",), force=request.force)
    yield checked
    if checked.errors and not request.force:
        return
    initial = warm(request.initial)
    if request.model_path is not None:
        for event in _load(request.model_path):
            initial = event.bundle
            yield event
    for event in train(
        request.images,
        request.labels,
        request.config,
        request.unet,
        validation=request.validation,
        validation_names=request.validation_names,
        initial=initial,
        stop=stop,
        names=request.names,
        checkpoints=True,
    ):
        if isinstance(event, TrainingFinished):
            warm(event.bundle)  # the next prediction with it finds the live model
        yield event


def export_job(
    bundle: Any,
    path: Path,
    options: Any,
    sample: Any,
    overwrite: bool,
    stop: threading.Event,
) -> Iterator[Any]:
    """Export a bundle as a bioimage.io package; yields :class:`~.events.Exported`."""
    from napari_cytounet.core.export import export_bioimageio

    from .events import Exported

    live = warm(bundle)
    yield Exported(export_bioimageio(live, path, options, sample_image=sample, overwrite=overwrite))


#: Live (interactive) sessions of this engine by key, newest last: each keeps its model warm.
_LIVE: OrderedDict[str, Any] = OrderedDict()
_LIVE_SIZE = 2
_LIVE_LOCK = threading.Lock()


def live_update_job(
    key: str,
    image: Any,
    labels: Any,
    seconds: float,
    initial: Any,
    stop: threading.Event,
) -> Iterator[Any]:
    """One round of the live loop: learn from ``labels`` for ``seconds``, answer for ``image``.

    The :class:`~napari_cytounet.core.interactive.InteractiveSession` of ``key`` is made on
    the first round (from ``initial``, or the starter model when ``None``) and kept warm
    between rounds. Yields the session's events, ending with ``RoundFinished``.
    """
    from napari_cytounet.core.interactive import InteractiveSession

    start = warm(initial) if initial is not None else None
    with _LIVE_LOCK:  # every job runs in a thread of its own: one cache update at a time
        session = _LIVE.get(key)
        if session is None:
            session = InteractiveSession(start)
            _LIVE[key] = session
            while len(_LIVE) > _LIVE_SIZE:
                _LIVE.popitem(last=False)
        _LIVE.move_to_end(key)
    yield from session.iter_update(image, labels, seconds=seconds, stop=stop)


def live_model_job(key: str, stop: threading.Event) -> Iterator[Any]:
    """The model of live session ``key``, as a bundle value (:class:`~.events.LiveModel`)."""
    from napari_cytounet.core.errors import ModelError

    from .events import LiveModel

    session = _LIVE.get(key)
    if session is None:
        raise ModelError(
            "The live session is gone (the engine restarted); start Live again to train one."
        )
    yield LiveModel(bundle=warm(session.bundle), rounds=len(session.rounds))


def live_close_job(key: str, stop: threading.Event) -> Iterator[Any]:
    """Forget live session ``key`` (frees its model)."""
    _LIVE.pop(key, None)
    yield from ()


#: Job name -> generator function (every one takes ``stop``, a threading.Event).
JOBS: dict[str, Callable[..., Iterator[Any]]] = {
    "load": load_job,
    "save": save_job,
    "predict": predict_job,
    "predict_zarr": predict_zarr_job,
    "train": train_job,
    "export": export_job,
    "live_update": live_update_job,
    "live_model": live_model_job,
    "live_close": live_close_job,
}
