"""The warm session of the human-in-the-loop: paint, look, correct, in seconds.

:class:`InteractiveSession` keeps one model built, its training step and its
prediction compiled, between rounds. Each :meth:`~InteractiveSession.update` (or
:meth:`~InteractiveSession.iter_update`) takes the current labels of an image and,
within ``seconds`` of wall time for the whole call:

1. shows a fast answer: the current UNet's prediction (the starter model's on the
   first round), and a random forest fitted on the strokes (:mod:`.pixel_classifier`);
2. fine-tunes the UNet on the strokes of every image annotated so far (replay), plus
   anchors (unannotated pixels the UNet is sure of, unless the forest or a stroke
   contradicts them), with BatchNorm statistics frozen; strokes added after the first
   call (corrections) weigh more and centre more patches;
3. keeps half of the round's change of the weights (``kept_fraction``: an average of
   the weights before and after, which keeps what the model knew of other images),
   predicts the image and keeps the new weights only if they score at least as well
   on the annotated pixels and keep the anchors (``adopted`` on the last event says
   which; a round that is not adopted changes nothing);
4. applies the strokes to the mask it returns (:func:`.stroke_edits.honour_strokes`):
   a background stroke across a predicted object removes it, a foreground stroke
   brings back the half-seen part of an object around it, and stroke pixels take their
   class. The model's probabilities, and its segmentation of other images, are its own.

A new session starts from the starter model shipped in the package (a small UNet
pretrained on the BBBC030 training images and synthetic cells of several looks; see
``scripts/train_starter_model.py``), so the first answer is a UNet's.

Labels: ``label_mode="scribbles"`` reads 0 = not annotated, 1 = background,
2 = foreground; ``"dense"`` reads a full mask (0 = background, anything else =
foreground). ``"auto"`` (default) reads scribbles when the values are within
{0, 1, 2} and 2 occurs, and a dense mask otherwise (values above 2, or only 0
and 1); a dense mask with exactly two objects numbered 1 and 2 would be read as
scribbles, so pass ``label_mode="dense"`` for such masks.

Examples
--------
>>> from napari_cytounet.core.synthetic import synthetic_cells, scribbles_from_labels
>>> image, labels = synthetic_cells((128, 128), seed=0)  # doctest: +SKIP
>>> session = InteractiveSession()  # doctest: +SKIP
>>> scribbles = scribbles_from_labels(labels, fraction=0.01)  # doctest: +SKIP
>>> mask = session.update(image, scribbles, seconds=5)  # doctest: +SKIP
>>> mask.shape  # doctest: +SKIP
(128, 128)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .annotations import Annotation, balanced_accuracy, resolve_label_mode
from .config import PRECISIONS, NormalizationConfig, UNetConfig
from .data import content_hash, labels_to_targets, normalize_image
from .errors import ConfigError, DataError
from .events import PreviewReady, RoundFinished, RoundProgress
from .interactive_round import (
    FEATURE_SECONDS_PER_PIXEL,
    FOREST_SECONDS_PER_PIXEL,
    PREDICT_SECONDS_PER_PIXEL,
    PROGRESS_SECONDS,
    _Round,
    _RoundSteps,
    unfamiliarity,
)
from .precision import resolve_precision
from .views import check_views, mean_over_views

#: At most this share of a round's budget goes to averaging views of its answer.
ANSWER_SHARE = 0.25

#: Architecture of the starter model (and of new models when it is missing).
STARTER_UNET = UNetConfig(depth=3, base_filters=12, in_channels=1, classes=1, batch_norm=False)
#: The starter model file shipped in the package.
STARTER_PATH = Path(__file__).resolve().parents[1] / "models" / "starter.keras"
#: Seconds the first training step is expected to take (it traces the step).
TRACE_SECONDS = 2.0
#: Images up to this many pixels are predicted in one compiled call (larger: tiled).
WHOLE_IMAGE_PIXELS = 4_000_000

__all__ = [
    "FEATURE_SECONDS_PER_PIXEL",
    "FOREST_SECONDS_PER_PIXEL",
    "PREDICT_SECONDS_PER_PIXEL",
    "PROGRESS_SECONDS",
    "STARTER_PATH",
    "STARTER_UNET",
    "TRACE_SECONDS",
    "WHOLE_IMAGE_PIXELS",
    "InteractiveSession",
    "SessionSettings",
]


@dataclass
class SessionSettings:
    """How an :class:`InteractiveSession` fine-tunes (the defaults were measured).

    Attributes
    ----------
    patch_size, batch_size
        Training patches (fixed shape: the step is traced once).
    learning_rate
        Adam learning rate for fine-tuning (lower than for training anew).
    pseudo_weight
        Loss weight of the forest's confident pixels (0 disables pseudo-labels).
    pseudo_confidence
        A pixel is a pseudo-label where the forest's probability is beyond this
        (or below 1 minus this).
    tolerance
        A round is adopted unless its score on the annotated pixels drops by more.
    anchor_agreement, anchor_floor
        ... and unless its balanced accuracy on the pseudo-labels (pixels the
        forest and the previous UNet agreed on) falls below ``anchor_agreement``: a
        round that fixes the strokes by breaking what was right elsewhere is not
        adopted. A round that raised the score on the strokes by more than it lost on
        the anchors may keep as few as ``anchor_floor`` of them
        (:func:`.interactive_round.anchors_hold`): the anchors are what the previous
        model believed, and where it was confidently wrong they hold its errors.
    correction_learning_rate, correction_weight, newest_bias
        Rounds on an image after its first are corrections: peak learning rate (cosine
        decay to a tenth within the round), loss weight of the strokes added after the
        first call (first strokes: 1), and how many times likelier the latest call's
        strokes are to centre a patch.
    release_radius
        Strokes free the anchors they contradict (:func:`.annotations.contradicted`):
        a background stroke its whole predicted object, a foreground stroke the
        predicted background within this many pixels (0: off).
    kept_fraction
        How much of a round's change of the weights is kept: the round ends at
        ``previous + kept_fraction * (fine-tuned - previous)``, an average in weight
        space of the model before and after the round (as WiSE-FT does between a
        pretrained and a fine-tuned model). Fine-tuning on one image's strokes
        fits that image; half the step keeps most of that and what the model knew of
        other images (measured: BBBC030 ``cho07``, other images 0.947 -> 0.910 at 1.0,
        0.947 -> 0.936 at 0.5, the same Dice on the image). 1.0: keep the whole step.
    familiar_score, unfamiliar_score, unfamiliar_learning_rate
        A round whose image the model scores well on (balanced accuracy on the annotated
        pixels at or above ``familiar_score`` before the round) trains as above; one it
        scores at or below ``unfamiliar_score`` on keeps its whole step and peaks at
        ``unfamiliar_learning_rate``; linear between (:func:`.interactive_round.unfamiliarity`).
        Measured on a DIC look nothing was trained on (2026-12-08): Dice after the two
        corrections 0.887 and 0.894 without it, 0.906-0.915 with it (other images 0.878
        -> 0.888-0.891). BBBC030 ``cho01`` and ``cho04`` and the synthetic phase and
        fluorescent sets ended as before; a peak of 2e-3 lost ``cho01`` 0.009 (other
        images 0.012). ``unfamiliar_score = familiar_score = 0`` turns it off.
    honour_strokes
        Apply the strokes to the masks of the images they were painted on
        (:func:`.stroke_edits.honour_strokes`); False: the model's masks as they are.
    views
        Each answer after a round of training is the mean over up to this many
        flipped/rotated views of the image (1, 2, 4 or 8; :mod:`.views`): 8 views
        cost 8 predictions and gained 0.005-0.013 Dice on synthetic DIC, phase and
        fluorescent images. A round uses fewer (halving) when they would take more
        than a quarter of its budget (:data:`ANSWER_SHARE`) or leave no time to
        train; the first answer of a new image uses one view, to come fast.
    precision
        ``"auto"`` (bfloat16 where it is faster: GPUs from Ampere on, CPUs with AMX;
        see :func:`.precision.resolve_precision`), ``"float32"`` or ``"mixed_bfloat16"``,
        for training and prediction. The weights stay float32, and the saved bundle is
        float32 whatever this is.
    seed
        Seed of the patch sampling and of the forest.
    """

    patch_size: int = 128
    batch_size: int = 8
    learning_rate: float = 3e-4
    correction_learning_rate: float = 3e-4
    correction_weight: float = 3.0
    newest_bias: float = 4.0
    release_radius: float = 20.0
    pseudo_weight: float = 1.0
    pseudo_confidence: float = 0.9
    tolerance: float = 0.002
    anchor_agreement: float = 0.98
    anchor_floor: float = 0.95
    kept_fraction: float = 0.5
    familiar_score: float = 0.9
    unfamiliar_score: float = 0.8
    unfamiliar_learning_rate: float = 1e-3
    honour_strokes: bool = True
    views: int = 8
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_views(self.views)
        if self.precision not in PRECISIONS:  # checked here without importing TensorFlow
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}."
            )
        if not 0.0 <= self.anchor_floor <= self.anchor_agreement <= 1.0:
            raise ConfigError(
                "anchor_floor and anchor_agreement must satisfy 0 <= anchor_floor <= "
                f"anchor_agreement <= 1; got {self.anchor_floor!r} and {self.anchor_agreement!r}."
            )
        if not 0.0 < self.kept_fraction <= 1.0:
            raise ConfigError(
                "kept_fraction must be in (0, 1] (1: keep the whole step), "
                f"got {self.kept_fraction!r}."
            )
        if not 0.0 <= self.unfamiliar_score <= self.familiar_score <= 1.0:
            raise ConfigError(
                "unfamiliar_score and familiar_score must satisfy 0 <= unfamiliar_score <= "
                f"familiar_score <= 1; got {self.unfamiliar_score!r} and {self.familiar_score!r}."
            )
        if not self.unfamiliar_learning_rate > 0:
            raise ConfigError(
                f"unfamiliar_learning_rate must be > 0, got {self.unfamiliar_learning_rate!r}."
            )


def _load_model(model: Any) -> Any:
    """A ModelBundle from ``None`` (starter), a bundle, or a path."""
    from .bundle import ModelBundle, load_bundle

    if model is None:
        if STARTER_PATH.is_file():
            return load_bundle(STARTER_PATH)
        return None
    if isinstance(model, ModelBundle):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_bundle(model)
    raise ConfigError(
        "model must be None, a ModelBundle or the path of a .keras file; "
        f"got {type(model).__name__}."
    )


class InteractiveSession(_RoundSteps):
    """A warm UNet for the interactive loop: ``update(image, labels, seconds) -> mask``.

    Parameters
    ----------
    model
        ``None`` (the shipped starter model, or a new small UNet if it is
        missing), a :class:`~.bundle.ModelBundle` (its weights are copied; the
        bundle is not modified) or the path of a saved ``.keras`` bundle.
    settings
        Fine-tuning settings (:class:`SessionSettings`).
    label_mode
        ``"auto"``, ``"scribbles"`` or ``"dense"`` (see the module docstring).

    Examples
    --------
    >>> session = InteractiveSession()  # doctest: +SKIP
    >>> mask = session.update(image, scribbles, seconds=5)  # doctest: +SKIP
    >>> other = session.segment(another_image)  # doctest: +SKIP
    >>> save_bundle(session.bundle, "cells.keras")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any = None,
        *,
        settings: SessionSettings | None = None,
        label_mode: str = "auto",
    ) -> None:
        resolve_label_mode(np.zeros(1, np.uint8), label_mode)  # validate early
        self.settings = settings or SessionSettings()
        self.label_mode = label_mode
        self._source = _load_model(model)
        if self._source is not None and self._source.legacy:
            raise ConfigError(
                f"{self._source.name} is a legacy model (prediction only); start a new session "
                "from the starter model or a model trained with napari-cytounet."
            )
        self.unet = self._source.unet if self._source is not None else STARTER_UNET
        self.normalization = (
            self._source.normalization if self._source is not None else NormalizationConfig()
        )
        self._model = None
        self._policy = "float32"
        self._trainer = None
        self._predict_fn = None
        self._view: Any = None  # a ModelBundle of the live model, for prediction
        self._annotated: dict[str, Annotation] = {}
        self._forest = None
        self._rounds: list[dict[str, Any]] = []
        self._predict_seconds: dict[tuple[int, int, int], float] = {}
        self._step_seconds = 0.1
        self._trace_seconds = TRACE_SECONDS
        self._tracer: threading.Thread | None = None

    # ------------------------------------------------------------------ warm state

    def _warm(self) -> None:
        """Build the model, the trainer and the prediction function once."""
        if self._model is not None:
            return
        import keras

        from .bundle import ModelBundle
        from .model import build_unet
        from .predict import tile_predictor
        from .trainer import Trainer

        keras.utils.set_random_seed(self.settings.seed)
        self._policy = resolve_precision(self.settings.precision)
        model = build_unet(self.unet, dtype_policy=self._policy)
        if self._source is not None:
            model.set_weights(self._source.model.get_weights())
        for layer in model.layers:  # short rounds: keep BatchNorm statistics fixed
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        self._model = model
        self._trainer = Trainer(model, self.unet.classes, "bce_dice", self.settings.learning_rate)
        # predictions go through the folded graph (.folded_unet, 3x faster in bfloat16),
        # refreshed from the trained weights before each prediction
        self._view = ModelBundle(model=model, unet=self.unet, normalization=NormalizationConfig(
            method="scale", scale=1.0))  # fmt: skip
        self._predict_fn = tile_predictor(self._view, self._policy, jit=False)

    def _probabilities(self, x: np.ndarray, views: int | None = None) -> np.ndarray:
        """Foreground probability of a normalised image ``(H, W, C)`` with the current weights.

        ``views`` (default :attr:`SessionSettings.views`) flipped/rotated copies are
        predicted and averaged (:func:`.views.mean_over_views`).
        """
        views = self.settings.views if views is None else views
        h, w = x.shape[:2]
        if h * w > WHOLE_IMAGE_PIXELS:
            from .predict import predict_probabilities

            prob = predict_probabilities(self._view, x, precision=self._policy, views=views)
            return self._foreground(prob)
        from .predict import TilePlan, tile_predictor

        # the same reflected halo and padding as predict.py's single tile: what the user sees
        # live is what the saved model predicts (borders included)
        plan = TilePlan(h, w, self.unet.divisor, None, None)
        halo, mode = plan.halo, "reflect" if min(h, w) > 1 else "edge"
        pads = ((halo, plan.padded_h - h - halo), (halo, plan.padded_w - w - halo), (0, 0))
        padded = np.pad(x, pads, mode=mode)
        t0 = time.perf_counter()
        tile_predictor(self._view, self._policy, jit=False)  # the current weights, no retrace
        out = mean_over_views(self._predict_fn, padded[None], views)[0]
        out = out[halo : halo + h, halo : halo + w]
        elapsed = time.perf_counter() - t0
        key = (h, w, views)
        if key in self._predict_seconds:  # the first call may have traced: time the next ones
            self._predict_seconds[key] = elapsed
            self._predict_seconds[(h, w, 1)] = elapsed / views  # views cost one each
        elif (h, w, 1) not in self._predict_seconds:  # the first call of this size traced
            self._predict_seconds[key] = PREDICT_SECONDS_PER_PIXEL * h * w * views
            # tracing the training step costs a few times tracing the prediction
            self._trace_seconds = max(TRACE_SECONDS, 2.0 * elapsed / views)
        else:  # traced before, unless the axes swapped (8 views): at most what it took
            self._predict_seconds[key] = min(elapsed, PREDICT_SECONDS_PER_PIXEL * h * w * views)
            one = self._predict_seconds[(h, w, 1)]
            self._predict_seconds[(h, w, 1)] = min(one, elapsed / views)
        return self._foreground(out)

    def _foreground(self, prob: np.ndarray) -> np.ndarray:
        prob = np.asarray(prob, np.float32)
        if prob.ndim == 3:
            prob = prob[..., 0] if prob.shape[-1] == 1 else 1.0 - prob[..., 0]
        return prob

    # ------------------------------------------------------------------ inputs

    def _normalise(self, image: np.ndarray) -> np.ndarray:
        return normalize_image(image, self.normalization, self.unet.in_channels)

    def _remember(self, image: np.ndarray, labels: np.ndarray) -> Annotation:
        """Store (or replace) the annotations of ``image``; return its entry."""
        image = np.asarray(image)
        labels = np.asarray(labels)
        if labels.shape != image.shape[:2]:
            raise DataError(
                f"labels of shape {labels.shape} do not match the image's {image.shape[:2]}; "
                "labels must cover the image pixel for pixel."
            )
        mode = resolve_label_mode(labels, self.label_mode)
        target, weight = labels_to_targets(labels, mode, self.unet.classes)
        if not weight.any() or not (target[weight > 0] > 0).any() or (target[weight > 0] > 0).all():
            raise DataError(
                "Paint both background (1) and foreground (2) before segmenting "
                "(or give a mask with both background and objects)."
            )
        key = content_hash(image)
        entry = self._annotated.get(key)
        if entry is None:
            entry = Annotation(key, self._normalise(image), target, weight, image)
            self._annotated[key] = entry
            entry.weight = np.zeros_like(weight)  # nothing annotated before this call
        entry.sparse = mode == "scribbles"
        entry.set_labels(target, weight, self.settings.correction_weight)
        return entry

    # ------------------------------------------------------------------ public

    def warm_up(self, wait: bool = True) -> None:
        """Build the model and trace the training step now, so that rounds need not.

        The first :meth:`update` calls it with ``wait=False`` once its first answer is
        out: the step is traced in a background thread while the user paints (steps with
        a learning rate of 0 and pixel weights 0: the weights do not change).

        Examples
        --------
        >>> session = InteractiveSession(); session.warm_up()  # doctest: +SKIP
        """
        self._warm()
        if self._tracer is None:
            # Not a daemon: TensorFlow running in a daemon thread when the interpreter
            # exits aborts the process (rc 134); exit waits for these three steps instead.
            self._tracer = threading.Thread(target=self._trace_step, name="cytounet-trace")
            self._tracer.start()
        if wait:
            self._tracer.join()

    def _trace_step(self) -> None:
        s = self.settings
        patch = self._patch_size()
        x = np.zeros((s.batch_size, patch, patch, self.unet.in_channels), np.float32)
        y = np.zeros((s.batch_size, patch, patch, 2), np.float32)
        for k in range(3):
            started = time.perf_counter()
            self._trainer.step(x, y, 0.0)
            if k:
                self._step_seconds = time.perf_counter() - started

    def _patch_size(self) -> int:
        divisor = self.unet.divisor
        return max(divisor, self.settings.patch_size // divisor * divisor)

    def iter_update(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        seconds: float = 5.0,
        stop: threading.Event | None = None,
    ) -> Iterator[PreviewReady | RoundProgress | RoundFinished]:
        """Learn from ``labels`` for at most ``seconds``; yield events, ending with the mask.

        Yields :class:`~.events.PreviewReady` (the current UNet's answer, then
        the forest's), :class:`~.events.RoundProgress` every few batches and
        finally :class:`~.events.RoundFinished` with the mask. ``seconds`` is the
        wall time of the whole call (0: no training, the current model's
        answer). ``stop.set()`` ends training early; the round still finishes.

        Raises
        ------
        DataError, ConfigError
            For unusable images or labels, before anything changes.

        Examples
        --------
        >>> for event in session.iter_update(image, scribbles, 5.0):  # doctest: +SKIP
        ...     print(type(event).__name__)
        """
        t0 = time.perf_counter()
        seconds = float(seconds)
        if not np.isfinite(seconds) or seconds < 0:
            raise ConfigError(f"seconds must be a number >= 0, got {seconds!r}.")
        stop = stop or threading.Event()
        entry = self._remember(image, labels)
        self._warm()
        if entry.probabilities is None:  # the model's answer before this round
            entry.probabilities = self._probabilities(entry.x, views=1)  # fast: first answer
            mask = self._shown(entry, entry.probabilities)
            yield PreviewReady(mask, entry.probabilities, "unet", time.perf_counter() - t0)
        self.warm_up(wait=False)  # after the first answer, not competing with it
        before = balanced_accuracy(entry.probabilities, entry.target, entry.weight)
        state = _Round(views=self._affordable_views(entry, t0, seconds))
        state.record["unfamiliarity"] = unfamiliarity(before, self.settings)
        if self._time_to_train(entry, t0, seconds, state.views):
            prob = self._forest_preview(entry)
            yield PreviewReady(self._shown(entry, prob), prob, "forest", time.perf_counter() - t0)
            yield from self._train(entry, t0, seconds, stop, state)
        yield self._finish(entry, before, state, t0)

    def _affordable_views(self, entry: Annotation, t0: float, seconds: float) -> int:
        """Views of this round's answer: as many as the settings ask, halved until they cost
        at most :data:`ANSWER_SHARE` of the budget and leave time to train."""
        h, w = entry.x.shape[:2]
        views = self.settings.views
        one_view = self._answer_seconds(h, w, 1)
        while views > 1 and (
            views * one_view > ANSWER_SHARE * seconds
            or not self._time_to_train(entry, t0, seconds, views)
        ):
            views //= 2
        return views

    def update(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        seconds: float = 5.0,
        stop: threading.Event | None = None,
    ) -> np.ndarray:
        """Learn from ``labels`` for at most ``seconds`` of wall time; return the mask.

        Parameters
        ----------
        image
            2D image ``(H, W)`` or ``(H, W, C)``.
        labels
            Scribbles (0 = not annotated, 1 = background, 2 = foreground) or a
            dense mask, ``(H, W)``; see ``label_mode``.
        seconds
            Wall-time budget of the whole call, first call included (0: no
            training, the current model's answer).
        stop
            Set it to end training early.

        Returns
        -------
        numpy.ndarray
            bool ``(H, W)``, True = foreground.

        Examples
        --------
        >>> mask = InteractiveSession().update(image, scribbles, seconds=5)  # doctest: +SKIP
        """
        finished = None
        for event in self.iter_update(image, labels, seconds, stop):
            if isinstance(event, RoundFinished):
                finished = event
        return finished.mask  # type: ignore[union-attr]

    def segment(self, image: np.ndarray, views: int | None = None) -> np.ndarray:
        """The current model's segmentation of any image, bool ``(H, W)``.

        An image annotated in this session gets its strokes applied, as in
        :meth:`update` (see :attr:`SessionSettings.honour_strokes`). ``views``
        (default :attr:`SessionSettings.views`) is the number of flipped/rotated
        views averaged; 1 is the fastest.

        Examples
        --------
        >>> mask = session.segment(other_image)  # doctest: +SKIP
        """
        self._warm()
        prob = self.probabilities(image, views)
        entry = self._annotated.get(content_hash(np.asarray(image)))
        return prob > 0.5 if entry is None else self._shown(entry, prob)

    def probabilities(self, image: np.ndarray, views: int | None = None) -> np.ndarray:
        """The current model's foreground probability of ``image``, float32 ``(H, W)``.

        ``views`` as in :meth:`segment`.
        """
        views = self.settings.views if views is None else check_views(views)
        self._warm()
        return self._probabilities(self._normalise(image), views)

    @property
    def rounds(self) -> list[dict[str, Any]]:
        """The record of every round so far (seconds, steps, scores, adopted)."""
        return [dict(r) for r in self._rounds]

    @property
    def bundle(self) -> Any:
        """A :class:`~.bundle.ModelBundle` of the current weights (a copy), ready to save.

        Its ``extra["interactive"]`` records the rounds; ``load_bundle`` and
        ``predict`` use it like any other model.

        Examples
        --------
        >>> save_bundle(session.bundle, "cells.keras")  # doctest: +SKIP
        """
        from .bundle import ModelBundle, library_versions
        from .model import build_unet

        self._warm()
        model = build_unet(self.unet, dtype_policy="float32")
        model.set_weights(self._model.get_weights())
        source = self._source
        return ModelBundle(
            model=model, unet=self.unet, normalization=self.normalization,
            label_mode="scribbles", training=None, versions=library_versions(),
            name=source.name if source is not None else "cytounet",
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            data_summary={"count": len(self._annotated),
                          "annotated_pixels": [int((e.weight > 0).sum())
                                               for e in self._annotated.values()]},
            extra={"interactive": {
                "started_from": str(source.path) if source is not None and source.path else None,
                "settings": dict(vars(self.settings)), "rounds": self.rounds}},
        )  # fmt: skip
