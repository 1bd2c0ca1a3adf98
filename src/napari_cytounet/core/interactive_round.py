"""One round of the interactive loop: forest preview, fine-tuning on a budget, the never-worse rule.

:class:`~.interactive.InteractiveSession` inherits these steps from :class:`_RoundSteps`;
:meth:`~.interactive.InteractiveSession.iter_update` runs them in order:

1. :meth:`~_RoundSteps._time_to_train`: whether the budget leaves time to train;
2. :meth:`~_RoundSteps._forest_preview`: the random forest's answer, and the anchors it
   confirms (:func:`.annotations.set_anchors`);
3. :meth:`~_RoundSteps._train`: fine-tuning steps until the budget, less the final
   prediction, is spent;
4. :meth:`~_RoundSteps._finish`: the prediction, and the weights kept only if they score
   at least as well on the annotated pixels and keep the anchors; the mask it returns has
   the strokes applied (:meth:`~_RoundSteps._shown`).

The constants below model how long each part takes before it is measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .annotations import Annotation, balanced_accuracy, forest_step, set_anchors, stroke_sampler
from .errors import DataError
from .events import RoundFinished, RoundProgress
from .stroke_edits import honour_strokes

if TYPE_CHECKING:
    from .interactive import SessionSettings

#: First guess of the prediction time (seconds per pixel) before it is measured.
PREDICT_SECONDS_PER_PIXEL = 0.5e-6
#: Guesses of the forest's cost (features once per image; fitting and predicting each round).
FEATURE_SECONDS_PER_PIXEL = 1.0e-6
FOREST_SECONDS_PER_PIXEL = 1.0e-6
#: Seconds between two :class:`RoundProgress` events.
PROGRESS_SECONDS = 0.25


@dataclass
class _Round:
    steps: int = 0
    loss: float = float("nan")
    views: int = 1  # of the round's answer
    record: dict[str, Any] = field(default_factory=dict)


def anchors_hold(
    before: float | None, after: float | None, anchor: float | None, settings: SessionSettings
) -> bool:
    """Whether a round kept enough of the anchors (the pixels the UNet was sure of).

    At least ``settings.anchor_agreement`` of them must keep their class, unless the round
    raised the score on the annotated pixels by more than it lost on the anchors and still
    kept ``settings.anchor_floor`` of them. The strokes are the user's word; the anchors are
    only what the previous model believed, and a model that is confidently wrong (a look it
    has not seen) believes its errors: without the trade, every round that fixes them would
    be refused (measured: 3 of 3 rounds, stroke score 0.52 -> 0.88, anchors 0.966).

    Examples
    --------
    >>> from napari_cytounet.core.interactive import SessionSettings
    >>> s = SessionSettings()
    >>> anchors_hold(0.80, 0.81, 0.99, s), anchors_hold(0.80, 0.81, 0.97, s)
    (True, False)
    >>> anchors_hold(0.58, 0.83, 0.964, s), anchors_hold(0.58, 0.83, 0.90, s)
    (True, False)
    """
    if anchor is None or anchor >= settings.anchor_agreement:
        return True
    gain = 0.0 if before is None or after is None else after - before
    return anchor >= settings.anchor_floor and gain > settings.anchor_agreement - anchor


def unfamiliarity(before: float | None, settings: SessionSettings) -> float:
    """How far the model is from the annotated image, from 0 (familiar) to 1 (unfamiliar).

    ``before`` is the model's balanced accuracy on the annotated pixels before the
    round: 0 at or above ``settings.familiar_score``, 1 at or below
    ``settings.unfamiliar_score``, linear between. A round on an unfamiliar image keeps
    more of its step and trains at a higher learning rate (:meth:`_RoundSteps._train`,
    :meth:`_RoundSteps._finish`): half steps at a low rate protect what the model knew
    of a look it already segments well, and starve one it has never seen (measured
    before the corrections of BBBC030 ``cho07``: 0.906 and 0.904; of a DIC look nothing
    was trained on: 0.775 and 0.740).

    Examples
    --------
    >>> from napari_cytounet.core.interactive import SessionSettings
    >>> s = SessionSettings()
    >>> [round(unfamiliarity(b, s), 2) for b in (None, 0.95, 0.9, 0.85, 0.8, 0.6)]
    [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]
    """
    high, low = settings.familiar_score, settings.unfamiliar_score
    if before is None or before >= high:
        return 0.0
    if before <= low:
        return 1.0
    return float((high - before) / (high - low))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class _RoundSteps:
    """The steps of a round of :class:`~.interactive.InteractiveSession` (a mixin).

    They read and update the session's warm state, declared here; the session provides
    ``_probabilities``, ``_patch_size`` and ``warm_up``.
    """

    settings: SessionSettings
    _annotated: dict[str, Annotation]
    _forest: Any
    _model: Any
    _trainer: Any
    _rounds: list[dict[str, Any]]
    _predict_seconds: dict[tuple[int, int, int], float]
    _step_seconds: float
    _trace_seconds: float
    _tracer: threading.Thread | None

    def _shown(self, entry: Annotation, prob: np.ndarray) -> np.ndarray:
        """The mask the user sees for ``entry``: ``prob > 0.5`` with the strokes applied."""
        mask = prob > 0.5
        if self.settings.honour_strokes and entry.sparse and entry.scribbles is not None:
            mask = honour_strokes(mask, prob, entry.scribbles)
        return mask

    def _keep_part_of_step(self, previous: list[np.ndarray], fraction: float) -> None:
        """Set the weights to ``previous + fraction * (current - previous)``."""
        current = self._model.get_weights()
        blended = [old + fraction * (new - old) for old, new in zip(previous, current)]
        self._model.set_weights(blended)

    def _forest_preview(self, entry: Annotation) -> np.ndarray:
        """Fit the forest on every annotated image; return the probability of ``entry``.

        Large images are classified at half resolution (features cost 4x less;
        the probability is upsampled), which is plenty for a preview and for
        pseudo-labels away from object borders.
        """
        from .pixel_classifier import PixelClassifier, pixel_features

        entries = list(self._annotated.values())
        step = {e.key: forest_step(e.image) for e in entries}
        for e in entries:
            if e.features is None:
                e.features = pixel_features(e.image[:: step[e.key], :: step[e.key]])
        forest = PixelClassifier(seed=self.settings.seed)
        forest.fit([e.image for e in entries],
                   [e.scribbles[:: step[e.key], :: step[e.key]] for e in entries],
                   features=[e.features for e in entries])  # fmt: skip
        self._forest = forest
        f = step[entry.key]
        prob = forest.predict_proba(entry.image, entry.features)
        if f > 1:
            h, w = entry.x.shape[:2]
            prob = np.repeat(np.repeat(prob, f, axis=0), f, axis=1)[:h, :w]
        s = self.settings
        set_anchors(entry, prob, s.pseudo_weight, s.pseudo_confidence, s.release_radius)
        return prob

    def _answer_seconds(self, h: int, w: int, views: int) -> float:
        """Measured (else guessed) seconds of an answer of ``views`` views."""
        one_view = self._predict_seconds.get((h, w, 1), PREDICT_SECONDS_PER_PIXEL * h * w)
        return self._predict_seconds.get((h, w, views), one_view * views)

    def _time_to_train(self, entry: Annotation, t0: float, seconds: float, views: int) -> bool:
        """Whether the budget leaves time for the forest, a few training steps and the answer."""
        h, w = entry.x.shape[:2]
        pixels = h * w / forest_step(entry.image) ** 2
        forest = 0.0 if entry.features is not None else FEATURE_SECONDS_PER_PIXEL * pixels
        forest += FOREST_SECONDS_PER_PIXEL * pixels
        tracing = self._tracer is not None and self._tracer.is_alive()
        steps = 5 * self._step_seconds + (self._trace_seconds if tracing else 0.0)
        answer = self._answer_seconds(h, w, views)
        return time.perf_counter() - t0 + forest + steps + answer < seconds

    def _train(
        self, entry: Annotation, t0: float, seconds: float, stop: threading.Event, state: _Round
    ) -> Iterator[RoundProgress]:
        """Fine-tune until the budget, less the final prediction, is spent."""
        from .data import make_batches

        s = self.settings
        deadline = t0 + seconds
        h, w = entry.x.shape[:2]
        finish_cost = 1.3 * self._answer_seconds(h, w, state.views)
        finish_cost += 0.05
        correcting = entry.corrected  # a correction round: a schedule of its own
        far = state.record.get("unfamiliarity", 0.0)
        peak = s.correction_learning_rate + far * (
            max(s.unfamiliar_learning_rate, s.correction_learning_rate) - s.correction_learning_rate
        )
        sampler = stroke_sampler(list(self._annotated.values()), self._patch_size(),
                                 s.seed + len(self._rounds), s.newest_bias)  # fmt: skip
        batches = make_batches(sampler, s.batch_size, seed=s.seed + len(self._rounds))
        self.warm_up(wait=True)  # traced in the background since the first call
        state.record["backup"] = [v.copy() for v in self._model.get_weights()]
        last_event = begun = time.perf_counter()
        while not stop.is_set():
            expected = self._step_seconds
            if time.perf_counter() + expected + finish_cost > deadline:
                break
            x, y = next(batches)
            started = time.perf_counter()
            rate = s.learning_rate
            if correcting:  # cosine from the peak to a tenth of it over the round
                done = (started - begun) / max(1e-6, deadline - begun)
                rate = peak * (0.55 + 0.45 * np.cos(np.pi * min(1.0, done)))
            try:
                state.loss, _ = self._trainer.step(x, y, rate)
            except DataError:  # the loss became NaN: this round is not adopted
                state.record["diverged"] = True
                state.steps += 1
                break
            took = time.perf_counter() - started
            state.steps += 1
            self._step_seconds = 0.7 * self._step_seconds + 0.3 * took
            if time.perf_counter() - last_event > PROGRESS_SECONDS:
                last_event = time.perf_counter()
                elapsed = last_event - t0
                yield RoundProgress(state.steps, state.loss, elapsed, seconds,
                                    min(1.0, elapsed / seconds))  # fmt: skip

    def _finish(
        self, entry: Annotation, before: float | None, state: _Round, t0: float
    ) -> RoundFinished:
        """Predict, apply the never-worse rule, record the round."""
        s = self.settings
        after = None
        adopted = False
        if state.steps:
            far = state.record.get("unfamiliarity", 0.0)
            kept = s.kept_fraction + far * (1.0 - s.kept_fraction)
            state.record["kept_fraction"] = kept
            if kept != 1.0:  # part of the step: between the old and new weights
                self._keep_part_of_step(state.record["backup"], kept)
            prob = self._probabilities(entry.x, state.views)
            after = balanced_accuracy(prob, entry.target, entry.weight)
            adopted = before is None or after is None or after >= before - s.tolerance
            anchor = None if entry.pseudo is None else balanced_accuracy(
                prob, entry.pseudo_target, entry.pseudo)  # fmt: skip
            state.record["anchor"] = anchor
            state.record["anchors_hold"] = anchors_hold(before, after, anchor, s)
            adopted = adopted and state.record["anchors_hold"]
            adopted = adopted and not state.record.get("diverged", False)
            if adopted:
                for other in self._annotated.values():
                    other.probabilities = None  # the weights changed
                entry.probabilities = prob
            else:
                self._model.set_weights(state.record["backup"])
        prob = entry.probabilities
        anchor, n = state.record.get("anchor"), state.steps
        if not n:
            message = "No training in this round (no time left for it); the current model's answer."
        elif adopted:
            message = f"Trained {n} batches; kept (annotated: {_fmt(before)} -> {_fmt(after)})."
        elif not state.record.get("anchors_hold", True):
            message = (f"Trained {n} batches but they changed pixels that were right before "
                       f"(agreement {_fmt(anchor)}); kept the previous model.")  # fmt: skip
        else:
            message = (f"Trained {n} batches but the annotated pixels scored worse "
                       f"({_fmt(before)} -> {_fmt(after)}); kept the previous model.")  # fmt: skip
        seconds = time.perf_counter() - t0
        self._rounds.append({
            "round": len(self._rounds), "seconds": round(seconds, 3), "steps": state.steps,
            "patches": state.steps * s.batch_size, "adopted": adopted, "score": after,
            "previous_score": before, "annotated_pixels": int((entry.weight > 0).sum()),
            "anchor_agreement": state.record.get("anchor"),
            "unfamiliarity": state.record.get("unfamiliarity", 0.0),
            "kept_fraction": state.record.get("kept_fraction"),
            "views": state.views if state.steps else None,
        })  # fmt: skip
        return RoundFinished(
            mask=self._shown(entry, prob), probabilities=prob, adopted=adopted,
            score=after if adopted or after is None else before, previous_score=before,
            steps=state.steps, seconds=seconds, round=len(self._rounds) - 1, message=message,
        )  # fmt: skip
