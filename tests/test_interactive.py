"""InteractiveSession: time budget, label conventions, continuing, never-worse rule."""

from __future__ import annotations

import pickle
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from napari_cytounet.core.errors import ConfigError, DataError
from napari_cytounet.core.events import PreviewReady, RoundFinished
from napari_cytounet.core.interactive import (
    STARTER_PATH,
    InteractiveSession,
    SessionSettings,
    resolve_label_mode,
)
from napari_cytounet.core.pixel_classifier import PixelClassifier
from napari_cytounet.core.synthetic import scribbles_from_labels, synthetic_cells


@pytest.fixture(scope="module")
def data():
    image, labels = synthetic_cells((96, 96), seed=3)
    return image, labels, scribbles_from_labels(labels, fraction=0.03, seed=1)


@pytest.fixture(scope="module")
def tiny_bundle():
    from napari_cytounet.core.bundle import ModelBundle
    from napari_cytounet.core.config import UNetConfig
    from napari_cytounet.core.model import build_unet

    unet = UNetConfig(depth=2, base_filters=4, batch_norm=False)
    return ModelBundle(model=build_unet(unet), unet=unet, name="tiny")


def tiny_session(bundle, **settings) -> InteractiveSession:
    defaults = {"patch_size": 32, "batch_size": 2, "learning_rate": 3e-3}
    return InteractiveSession(bundle, settings=SessionSettings(**{**defaults, **settings}))


def test_label_modes():
    assert resolve_label_mode(np.array([[0, 1, 2]])) == "scribbles"
    assert resolve_label_mode(np.array([[0, 1, 1]])) == "dense"  # a binary mask
    assert resolve_label_mode(np.array([[0, 3, 7]])) == "dense"  # instance ids
    assert resolve_label_mode(np.array([[0, 1, 2]]), "dense") == "dense"
    with pytest.raises(ConfigError, match="label_mode"):
        resolve_label_mode(np.zeros(2), "sparse")


def test_update_time_budget_events_and_continuing(tiny_bundle, data):
    image, _, scribbles = data
    session = tiny_session(tiny_bundle)
    before = [w.copy() for w in session.bundle.model.get_weights()]
    session.warm_up()  # traced now, so the first round trains even on a busy machine
    assert all(np.array_equal(a, b) for a, b in zip(session.bundle.model.get_weights(), before))
    events = list(session.iter_update(image, scribbles, seconds=6.0))
    sources = [e.source for e in events if isinstance(e, PreviewReady)]
    assert sources == ["unet", "forest"]
    finished = events[-1]
    assert isinstance(finished, RoundFinished) and finished.steps > 0
    assert finished.mask.shape == image.shape and finished.mask.dtype == bool
    for event in events:  # the engine process sends them across: all picklable
        assert type(pickle.loads(pickle.dumps(event))) is type(event)
    # continuing: the trained weights are the next round's start; the tiny bundle is untouched
    after = session.bundle.model.get_weights()
    assert finished.adopted and any(not np.array_equal(a, b) for a, b in zip(after, before))
    assert all(np.array_equal(a, b) for a, b in zip(tiny_bundle.model.get_weights(), before))
    start = time.perf_counter()
    session.update(image, scribbles, seconds=2.0)
    assert time.perf_counter() - start < 2.0 + 0.5  # a warm round honours its budget
    rounds = session.rounds
    assert [r["round"] for r in rounds] == [0, 1] and rounds[1]["steps"] > rounds[0]["steps"] / 4
    assert session.segment(image).shape == image.shape
    mask = session.probabilities(image) > 0.5  # the model's own, before the strokes are applied
    # it learned: the strokes score better than chance, and never worse than at the start
    score = 0.5 * (mask[scribbles == 2].mean() + (~mask[scribbles == 1]).mean())
    assert score > 0.6 and score >= rounds[0]["previous_score"] - 0.002


def test_dense_mask_and_zero_seconds(tiny_bundle, data):
    image, labels, _ = data
    session = tiny_session(tiny_bundle)
    finished = list(session.iter_update(image, labels, seconds=0))[-1]  # instance ids: dense
    assert finished.steps == 0 and not finished.adopted and "No training" in finished.message
    assert np.array_equal(finished.mask, session.segment(image, views=1))  # the fast answer


def test_bad_labels_are_refused(tiny_bundle, data):
    image, _, scribbles = data
    session = tiny_session(tiny_bundle)
    with pytest.raises(DataError, match="both background"):
        session.update(image, np.where(scribbles == 2, 2, 0), seconds=1)
    with pytest.raises(DataError, match="do not match"):
        session.update(image, scribbles[:50], seconds=1)
    with pytest.raises(ConfigError, match="seconds"):
        session.update(image, scribbles, seconds=-1)
    with pytest.raises(ConfigError, match="model must be"):
        InteractiveSession(model=42)


def test_never_worse_rule(tiny_bundle, data):
    image, _, scribbles = data
    session = tiny_session(tiny_bundle)
    session.warm_up()
    session.update(image, scribbles, seconds=6.0)
    good = session.segment(image)
    kept = [w.copy() for w in session.bundle.model.get_weights()]
    session.settings.learning_rate = 0.9  # a wrecking round
    session._trainer.optimizer.learning_rate.assign(0.9)
    finished = list(session.iter_update(image, scribbles, seconds=3.0))[-1]
    assert finished.steps > 0 and not finished.adopted
    assert "kept the previous model" in finished.message
    assert np.array_equal(finished.mask, good)
    now = session.bundle.model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(now, kept))
    assert session.rounds[-1]["adopted"] is False


def test_anchors_hold_trades_a_clear_stroke_gain_for_a_few_anchors():
    from napari_cytounet.core.interactive_round import anchors_hold

    s = SessionSettings()  # anchor_agreement 0.98, anchor_floor 0.95
    assert anchors_hold(0.80, 0.80, 0.98, s)  # enough anchors kept
    assert anchors_hold(0.80, 0.80, None, s)  # no anchors at all
    assert not anchors_hold(0.80, 0.81, 0.97, s)  # a small gain does not pay for 1% of anchors
    assert anchors_hold(0.78, 0.90, 0.97, s)  # measured: a starter wrong on an unseen look
    assert anchors_hold(0.58, 0.83, 0.958, s)
    assert not anchors_hold(0.58, 0.83, 0.949, s)  # never below the floor, whatever the gain
    assert not anchors_hold(None, 0.90, 0.97, s)  # no score before: no gain to trade
    strict = SessionSettings(anchor_floor=0.98)
    assert not anchors_hold(0.58, 0.83, 0.97, strict)  # floor = agreement: the old rule
    with pytest.raises(ConfigError, match="anchor_floor"):
        SessionSettings(anchor_floor=0.99)
    with pytest.raises(ConfigError, match="anchor_floor"):
        SessionSettings(anchor_floor=-0.1)


def test_rounds_answer_with_the_mean_of_views(tiny_bundle, data):
    image, _, scribbles = data
    session = tiny_session(tiny_bundle)
    session.warm_up()
    finished = list(session.iter_update(image, scribbles, seconds=4.0))[-1]
    assert finished.steps > 0 and session.rounds[-1]["views"] == 8
    # the round's answer is the model's 8-view answer, not the one-view one
    np.testing.assert_allclose(finished.probabilities, session.probabilities(image), atol=1e-5)
    assert not np.allclose(finished.probabilities, session.probabilities(image, views=1))
    with pytest.raises(ConfigError, match="views must be one of"):
        session.segment(image, views=5)
    with pytest.raises(ConfigError, match="views must be one of"):
        SessionSettings(views=0)


def test_stop_and_bundle_round_trip(tiny_bundle, data, tmp_path):
    from napari_cytounet.core.bundle import load_bundle, save_bundle
    from napari_cytounet.core.predict import predict_probabilities

    image, _, scribbles = data
    session = tiny_session(tiny_bundle)
    stop = threading.Event()
    stop.set()
    finished = list(session.iter_update(image, scribbles, seconds=5.0, stop=stop))[-1]
    assert finished.steps == 0
    session.warm_up()
    session.update(image, scribbles, seconds=6.0)
    path = save_bundle(session.bundle, tmp_path / "live.keras")
    loaded = load_bundle(path)
    assert loaded.extra["interactive"]["rounds"][-1]["steps"] > 0
    # the session's answer is the mean over its views: Predict with as many views gives it
    views = session.settings.views
    assert views == 8
    prob = predict_probabilities(loaded, image, precision="float32", tile_size=None, views=views)
    model_mask = session.probabilities(image) > 0.5
    assert np.mean((prob > 0.5) == model_mask) > 0.99
    again = InteractiveSession(path, settings=SessionSettings(patch_size=32, batch_size=2))
    assert np.array_equal(again.segment(image), model_mask)  # not annotated there: no edits


def test_starter_model_is_shipped_and_documented():
    from napari_cytounet.core.bundle import load_bundle

    assert STARTER_PATH.is_file() and STARTER_PATH.stat().st_size < 2_000_000
    record = load_bundle(STARTER_PATH).extra["starter"]
    assert "validation" in record["never_trained_on"]
    assert not any(name in record["trained_on"]["bbbc030_train"] for name in ("cho01", "cho20"))


def test_forest_on_normalised_features_transfers(data):
    image, labels, scribbles = data
    brighter = image * 3.0 + 0.5  # the same picture from another camera setting
    normalised = PixelClassifier().fit(image, scribbles)
    raw = PixelClassifier(normalise=False).fit(image, scribbles)
    truth = labels > 0

    def agree(mask):
        return float((mask == truth).mean())

    assert agree(normalised.predict(brighter)) > 0.9
    assert agree(normalised.predict(brighter)) > agree(raw.predict(brighter)) + 0.1
    with pytest.raises(DataError, match="both background"):
        PixelClassifier().fit(image, np.where(scribbles == 1, 1, 0))


def test_synthetic_looks_share_exact_labels():
    from napari_cytounet.core.looks import LOOKS, styled_cells

    pictures = {look: styled_cells((64, 64), look, seed=2) for look in LOOKS}
    first = pictures["dic"][1]
    for look, (image, labels) in pictures.items():
        assert image.shape == (64, 64) and np.array_equal(labels, first)
        fg, bg = labels > 0, labels == 0
        if look in ("fluorescent", "bright"):  # bright cells on a darker background
            assert image[fg].mean() > image[bg].mean()
        if look == "phase":  # dark cells
            assert image[fg].mean() < image[bg].mean()
    assert pictures["fluorescent"][0].dtype == np.uint16
    with pytest.raises(ConfigError, match="look must be one of"):
        styled_cells((64, 64), "confocal")


def test_strokes_release_the_anchors_they_contradict():
    from napari_cytounet.core.annotations import Annotation, contradicted, set_anchors

    pred = np.zeros((40, 40), bool)
    pred[5:15, 5:15] = True  # an object the user says is background
    pred[25:35, 25:35] = True  # an object nobody disputes
    target = np.zeros((40, 40), np.uint8)
    weight = np.zeros((40, 40), np.float32)
    weight[10, 6:14] = 1  # background stroke across the first object
    target[30, 5], weight[30, 5] = 1, 1  # foreground stroke in predicted background
    out = contradicted(pred, target, weight, radius=3)
    assert out[5:15, 5:15].all() and not out[25:35, 25:35].any()
    assert out[30, 8] and out[27, 5] and not out[30, 9] and not out[0, 39]
    entry = Annotation("k", np.zeros((40, 40, 1), np.float32), target, weight, None)
    entry.probabilities = np.where(pred, 0.99, 0.01).astype(np.float32)
    forest = np.full((40, 40), 0.5, np.float32)
    set_anchors(entry, forest, 1.0, 0.9)
    assert entry.pseudo[5:15, 5:15].sum() == 100 - 8  # without a radius: anchored but strokes
    set_anchors(entry, forest, 1.0, 0.9, radius=3)
    assert not entry.pseudo[5:15, 5:15].any() and entry.pseudo[25:35, 25:35].all()
    assert entry.pseudo[0, 39] == 1 and entry.pseudo[30, 8] == 0


def test_corrections_weigh_more_and_centre_more_patches(tiny_bundle, data):
    from napari_cytounet.core.annotations import stroke_sampler

    image, labels, scribbles = data
    session = tiny_session(tiny_bundle, correction_weight=3.0, newest_bias=8.0)
    entry = session._remember(image, scribbles)
    assert entry.newest.sum() == entry.first.sum() == (scribbles > 0).sum()
    corrected = scribbles.copy()
    corrected[40:44, 40:44] = np.where(labels[40:44, 40:44] > 0, 2, 1)
    entry = session._remember(image, corrected)
    new = (corrected > 0) & (scribbles == 0)
    assert new.any() and np.array_equal(entry.newest, new)
    assert np.all(entry.weight[new] == 3.0) and np.all(entry.weight[scribbles > 0] == 1.0)
    plain = stroke_sampler([entry], 32, 0, newest=1.0)
    biased = stroke_sampler([entry], 32, 0, newest=8.0)
    assert biased.annotated[0].size == plain.annotated[0].size + 7 * new.sum()


def test_a_round_keeps_the_chosen_fraction_of_its_step(tiny_bundle, data):
    image, _, scribbles = data

    class Watched(InteractiveSession):
        """Records the weights before the round and at the end of its fine-tuning."""

        def _finish(self, entry, before, state, t0):
            self.before = [w.copy() for w in state.record["backup"]]
            self.tuned = [w.copy() for w in self._model.get_weights()]
            return super()._finish(entry, before, state, t0)

    settings = SessionSettings(
        patch_size=32, batch_size=2, learning_rate=3e-3, kept_fraction=0.5, familiar_score=0.0,
        unfamiliar_score=0.0,
    )  # fmt: skip
    session = Watched(tiny_bundle, settings=settings)
    session.warm_up()
    finished = list(session.iter_update(image, scribbles, seconds=4.0))[-1]
    assert finished.steps > 0 and finished.adopted
    kept = session.bundle.model.get_weights()
    moved = 0.0
    for now, old, tuned in zip(kept, session.before, session.tuned):
        np.testing.assert_allclose(now, old + 0.5 * (tuned - old), rtol=1e-5, atol=1e-6)
        moved += float(np.abs(tuned - old).sum())
    assert moved > 0  # the round did train: halfway is not where it started
    with pytest.raises(ConfigError, match="kept_fraction"):
        SessionSettings(kept_fraction=0.0)
    # an image the model scores badly on (this untrained one: any) keeps the whole step
    unfamiliar = replace(settings, familiar_score=1.0, unfamiliar_score=1.0)
    session = Watched(tiny_bundle, settings=unfamiliar)
    session.warm_up()
    finished = list(session.iter_update(image, scribbles, seconds=4.0))[-1]
    assert finished.steps > 0 and finished.adopted
    assert session.rounds[-1]["unfamiliarity"] == 1.0 and session.rounds[-1]["kept_fraction"] == 1
    for now, tuned in zip(session.bundle.model.get_weights(), session.tuned):
        np.testing.assert_array_equal(now, tuned)
    with pytest.raises(ConfigError, match="unfamiliar_score"):
        SessionSettings(familiar_score=0.8, unfamiliar_score=0.9)
    with pytest.raises(ConfigError, match="unfamiliar_learning_rate"):
        SessionSettings(unfamiliar_learning_rate=0.0)


def test_pseudo_labels_can_be_turned_off(tiny_bundle, data):
    image, _, scribbles = data
    session = tiny_session(tiny_bundle, pseudo_weight=0.0)
    session.warm_up()
    finished = list(session.iter_update(image, scribbles, seconds=3.0))[-1]
    assert finished.steps > 0  # trained on the strokes alone
    assert session.rounds[-1]["anchor_agreement"] is None  # no anchors to keep
    assert finished.mask.shape == image.shape[:2]
