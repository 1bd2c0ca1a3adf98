"""Training: learning, events, stopping, best weights, fine-tuning, seeding, BatchNorm."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from napari_cytounet.core.config import TrainingConfig, UNetConfig
from napari_cytounet.core.data import normalize_image
from napari_cytounet.core.errors import ConfigError, DataError, ModelError
from napari_cytounet.core.events import BatchEnd, EpochEnd, TrainingFinished, TrainingStarted
from napari_cytounet.core.training import _use_jit, recalibrate_batch_norm, train, train_model

#: No BatchNorm: cheaper to trace, and no recalibration to blur what a test checks.
PLAIN = UNetConfig(depth=2, base_filters=4, batch_norm=False)


@pytest.fixture(autouse=True)
def _no_xla(monkeypatch):
    """Most runs skip XLA compilation (slow on CPU); one test opts back in with jit=True."""
    monkeypatch.setenv("CYTOUNET_JIT", "0")


def small_config(**kwargs) -> TrainingConfig:
    base = dict(
        epochs=1,
        steps_per_epoch=3,
        patch_size=32,
        batch_size=4,
        learning_rate=1e-2,
        seed=0,
        precision="float32",
    )
    base.update(kwargs)
    return TrainingConfig(**base)


def predict_full(bundle, image, training: bool = False) -> np.ndarray:
    """Whole-image probabilities straight from the network (96 x 96 needs no padding)."""
    x = normalize_image(image, bundle.normalization, bundle.in_channels)[None]
    return np.asarray(bundle.model(x, training=training))[0, ..., 0]


# ---------------------------------------------------------------------------
# one shared run (conftest.trained_run): events, learning, best weights, BatchNorm


def test_events_come_in_order_with_consistent_counts(trained_run):
    events, cfg = trained_run.events, trained_run.config
    code = "".join(
        {TrainingStarted: "S", BatchEnd: "B", EpochEnd: "E", TrainingFinished: "F"}[type(e)]
        for e in events
    )
    assert re.fullmatch(r"S(B{10}E){3}F", code), code

    started, finished = events[0], events[-1]
    assert started.batches == cfg.steps_per_epoch == 10
    assert (started.patch_size, started.batch_size) == (32, 4)
    assert started.n_images == 1 and started.n_validation == 1
    assert started.precision == "float32"
    assert started.parameters == finished.bundle.model.count_params() > 0

    batches = [e for e in events if isinstance(e, BatchEnd)]
    assert [(b.epoch, b.batch) for b in batches] == [
        (ep, b) for ep in (1, 2, 3) for b in range(1, 11)
    ]
    assert all(b.batches == 10 and b.epochs == 3 for b in batches)
    elapsed = [b.elapsed for b in batches]
    assert elapsed == sorted(elapsed)
    fractions = [b.fraction for b in batches]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert all(np.isfinite(b.loss) and 0.0 <= b.dice <= 1.0 for b in batches)

    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert [e.patches for e in epochs] == [40, 80, 120]
    # the epoch's loss is the running mean reported by its last batch
    for ep in epochs:
        last = [b for b in batches if b.epoch == ep.epoch][-1]
        assert ep.loss == pytest.approx(last.loss) and ep.dice == pytest.approx(last.dice)
        assert ep.val_loss is not None and ep.val_dice is not None

    assert finished.reason == "epochs"
    assert finished.epochs_run == 3 and finished.patches == 120 and finished.patch_size == 32
    assert finished.seconds > 0 and finished.patches_per_second > 0
    for key in ("loss", "dice", "val_loss", "val_dice", "elapsed", "patches", "learning_rate"):
        assert len(finished.history[key]) == 3, key
    assert finished.history["patches"] == [40, 80, 120]
    # cosine decay of the learning rate
    lrs = finished.history["learning_rate"]
    assert lrs[0] > lrs[1] > lrs[2] > 0 and lrs[0] <= cfg.learning_rate


def test_summary_line_reports_throughput(trained_run):
    finished = trained_run.finished
    summary = finished.summary
    assert "patches/s" in summary
    assert "120 patches of 32x32" in summary
    assert "(stopped: epochs)" in summary
    rate = float(re.search(r"\(([\d.]+) patches/s\)", summary).group(1))
    assert rate == pytest.approx(finished.patches_per_second, rel=0.01, abs=0.01)


def test_tiny_model_learns_the_disks(trained_run, dice_score):
    events, finished = trained_run.events, trained_run.finished
    first = next(e for e in events if isinstance(e, BatchEnd))
    assert finished.history["loss"][-1] < 0.7 * first.loss
    prob = predict_full(finished.bundle, trained_run.image)
    learned = dice_score(prob > 0.5, trained_run.labels > 0)
    assert learned > 0.8, learned
    assert learned > first.dice
    assert finished.bundle.extra["final_val_dice"] > 0.8


def test_best_epoch_is_consistent_with_history(trained_run):
    finished = trained_run.finished
    val_loss = finished.history["val_loss"]
    assert finished.best_epoch == int(np.argmin(val_loss)) + 1
    flags = [e.is_best for e in trained_run.events if isinstance(e, EpochEnd)]
    assert flags[0] is True
    assert max(i + 1 for i, f in enumerate(flags) if f) == finished.best_epoch
    assert finished.bundle.extra["best_epoch"] == finished.best_epoch


def test_saved_model_predicts_as_well_in_inference_mode(trained_run, dice_score):
    """BatchNorm statistics are recalibrated: inference mode is as good as training mode."""
    import keras

    bundle = trained_run.finished.bundle
    truth = trained_run.labels > 0
    inference = dice_score(predict_full(bundle, trained_run.image) > 0.5, truth)
    clone = keras.models.clone_model(bundle.model)  # training-mode calls move the statistics
    clone.set_weights(bundle.model.get_weights())
    xin = normalize_image(trained_run.image, bundle.normalization)[None]
    training = dice_score(np.asarray(clone(xin, training=True))[0, ..., 0] > 0.5, truth)
    assert training > 0.7, training
    assert inference >= training - 0.05, (inference, training)


def test_recalibration_repairs_lagging_statistics(trained_run, dice_score):
    """Statistics left at their initial values (0/1) ruin inference; recalibration repairs them."""
    import keras

    from napari_cytounet.core.data import PatchSampler, make_batches, prepare_examples

    bundle = trained_run.finished.bundle
    model = keras.models.clone_model(bundle.model)
    model.set_weights(bundle.model.get_weights())
    x = normalize_image(trained_run.val_image)[None]
    truth = trained_run.val_labels > 0
    training = dice_score(np.asarray(model(x, training=True))[0, ..., 0] > 0.5, truth)
    for layer in model.layers:  # after the training-mode call, which moves them
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.zeros(layer.moving_mean.shape))
            layer.moving_variance.assign(np.ones(layer.moving_variance.shape))

    def inference() -> float:
        return dice_score(np.asarray(model(x, training=False))[0, ..., 0] > 0.5, truth)

    assert inference() < training - 0.1  # the BatchNorm trap of short runs
    examples = prepare_examples([trained_run.image], [trained_run.labels])
    batches = make_batches(PatchSampler(examples, 32, seed=3), 4, seed=3)
    assert recalibrate_batch_norm(model, [next(batches)[0] for _ in range(8)]) == 10
    assert inference() >= training - 0.05, (inference(), training)


def test_recalibrate_batch_norm_sets_exact_mean_of_batch_statistics():
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 2))
    conv = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    bn = keras.layers.BatchNormalization(momentum=0.99, name="bn")(conv)
    model = keras.Model(inputs, bn)
    features = keras.Model(inputs, conv)
    rng = np.random.default_rng(0)
    batches = [rng.normal(k, 1.0 + k, (2, 8, 8, 2)).astype(np.float32) for k in range(4)]

    assert recalibrate_batch_norm(model, batches) == 1
    layer = model.get_layer("bn")
    acts = [np.asarray(features(x)) for x in batches]
    expected_mean = np.mean([a.mean(axis=(0, 1, 2)) for a in acts], axis=0)
    expected_var = np.mean([a.var(axis=(0, 1, 2)) for a in acts], axis=0)
    np.testing.assert_allclose(layer.moving_mean.numpy(), expected_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), expected_var, rtol=1e-3, atol=1e-5)
    assert layer.momentum == pytest.approx(0.99)  # restored


def test_recalibrate_batch_norm_without_batch_norm_is_a_no_op():
    from napari_cytounet.core.model import build_unet

    model = build_unet(PLAIN)
    before = [w.copy() for w in model.get_weights()]
    assert recalibrate_batch_norm(model, [np.zeros((1, 8, 8, 1), np.float32)]) == 0
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# seeded runs without BatchNorm: reproducibility, best weights, fine-tuning, XLA


@pytest.fixture(scope="module")
def plain_runs(disks):
    """Two identical seeded runs (no BatchNorm, with validation)."""
    image, labels = disks(seed=0)
    val = disks(seed=1)
    runs = []
    for _ in range(2):
        cfg = small_config(epochs=3, steps_per_epoch=3, validation_patches=8)
        events = list(
            train([image], [labels], cfg, PLAIN, validation=([val[0]], [val[1]]), jit=False)
        )
        runs.append(events)
    return runs, image, labels


def test_seeded_runs_are_reproducible(plain_runs):
    (a, b), _, _ = plain_runs
    losses_a = [e.loss for e in a if isinstance(e, BatchEnd)]
    losses_b = [e.loss for e in b if isinstance(e, BatchEnd)]
    assert len(losses_a) == 9
    np.testing.assert_allclose(losses_a, losses_b, rtol=1e-6)
    np.testing.assert_allclose(a[-1].history["val_loss"], b[-1].history["val_loss"], rtol=1e-6)
    for wa, wb in zip(a[-1].bundle.model.get_weights(), b[-1].bundle.model.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_bundle_holds_the_best_epochs_weights(plain_runs):
    """Without BatchNorm nothing is recalibrated: kept weights score exactly the best val loss."""
    (a, _), _, _ = plain_runs
    finished = a[-1]
    val_loss = finished.history["val_loss"]
    assert finished.best_epoch == int(np.argmin(val_loss)) + 1
    assert finished.bundle.extra["batch_norm_recalibrated"] is False
    assert finished.bundle.extra["final_val_loss"] == pytest.approx(
        val_loss[finished.best_epoch - 1], rel=1e-6
    )


def test_fine_tuning_starts_from_initial_weights_and_leaves_it_alone(plain_runs):
    (a, _), image, labels = plain_runs
    initial = a[-1].bundle
    before = [w.copy() for w in initial.model.get_weights()]
    # a learning rate so small that the weights cannot move measurably
    cfg = small_config(epochs=1, steps_per_epoch=2, learning_rate=1e-9)
    events = []
    result = train_model(
        [image],
        [labels],
        cfg,
        UNetConfig(depth=3, base_filters=8),
        initial=initial,
        jit=False,
        callback=events.append,
    )
    assert isinstance(events[0], TrainingStarted) and events[-1] is result
    assert result.bundle.extra["fine_tuned_from"] is None  # the initial bundle was never saved
    tuned = result.bundle
    assert tuned.model is not initial.model
    assert tuned.unet == initial.unet  # the given architecture is ignored when fine-tuning
    assert tuned.normalization == initial.normalization
    for w0, w1 in zip(before, tuned.model.get_weights()):
        np.testing.assert_allclose(w1, w0, atol=1e-6)
    for w0, w1 in zip(before, initial.model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    # the same first batch (same seed) scores better than it did from a fresh initialisation
    first_fresh = next(e for e in a if isinstance(e, BatchEnd))
    first_tuned = next(e for e in events if isinstance(e, BatchEnd))
    assert first_tuned.loss < first_fresh.loss


def test_fine_tuning_refuses_legacy_models(plain_runs):
    from dataclasses import replace

    (a, _), image, labels = plain_runs
    legacy = replace(a[-1].bundle, legacy=True)
    with pytest.raises(ModelError, match="legacy"):
        next(train([image], [labels], small_config(), initial=legacy, jit=False))


def test_xla_compiled_run_matches_eager_run(plain_runs):
    """jit=True compiles the step with XLA and computes the same first batches."""
    (a, _), image, labels = plain_runs
    cfg = small_config(epochs=1, steps_per_epoch=2)
    events = list(train([image], [labels], cfg, PLAIN, jit=True))
    finished = events[-1]
    assert isinstance(finished, TrainingFinished) and finished.bundle.extra["xla"] is True
    xla = [e.loss for e in events if isinstance(e, BatchEnd)]
    eager = [e.loss for e in a if isinstance(e, BatchEnd)][:2]
    np.testing.assert_allclose(xla, eager, rtol=1e-3)


def test_jit_switch_reads_environment(monkeypatch):
    monkeypatch.setenv("CYTOUNET_JIT", "0")
    assert _use_jit(None) is False
    assert _use_jit(True) is True
    monkeypatch.setenv("CYTOUNET_JIT", "1")
    assert _use_jit(None) is True
    assert _use_jit(False) is False
    monkeypatch.setenv("CYTOUNET_JIT", "off")
    assert _use_jit(None) is False
    monkeypatch.delenv("CYTOUNET_JIT")
    from napari_cytounet.core.precision import has_gpu

    assert _use_jit(None) is has_gpu()  # XLA by default on GPUs only (slower than oneDNN on CPU)


# ---------------------------------------------------------------------------
# stopping


def test_stop_event_stops_within_one_batch(disks):
    image, labels = disks(seed=0)
    stop = threading.Event()
    cfg = small_config(epochs=5, steps_per_epoch=10)
    events = []
    for event in train([image], [labels], cfg, PLAIN, stop=stop, jit=False):
        events.append(event)
        if isinstance(event, BatchEnd) and event.batch == 3:
            stop.set()
    batches = [e for e in events if isinstance(e, BatchEnd)]
    assert len(batches) == 3
    assert isinstance(events[-2], EpochEnd) and events[-2].patches == 12
    finished = events[-1]
    assert isinstance(finished, TrainingFinished)
    assert finished.reason == "stopped" and finished.patches == 12 and finished.epochs_run == 1
    assert "(stopped: stopped)" in finished.summary
    # the bundle is usable
    from napari_cytounet.core.predict import predict_probabilities

    prob = predict_probabilities(finished.bundle, image[:40, :50], tile_size=None, jit=False)
    assert prob.shape == (40, 50) and prob.dtype == np.float32
    assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1


def test_time_budget_stops_on_time(disks):
    image, labels = disks(seed=0)
    cfg = small_config(epochs=None, max_time=0.5, steps_per_epoch=50)
    events = list(train([image], [labels], cfg, PLAIN, jit=False))
    finished = events[-1]
    assert finished.reason == "time"
    batches = [e for e in events if isinstance(e, BatchEnd)]
    # only the batch that crossed the budget ends past it; nothing runs after
    assert batches[-1].elapsed >= 0.5
    assert all(b.elapsed < 0.5 for b in batches[:-1])
    assert finished.patches == 4 * len(batches) and finished.epochs_run == 1
    assert all(b.epochs is None and b.remaining is not None and b.remaining <= 0.5 for b in batches)
    assert isinstance(events[-2], EpochEnd)


# ---------------------------------------------------------------------------
# scribbles


def test_scribbles_train_with_unannotated_pixels_ignored(disks, dice_score):
    """A few strokes per disk: if unannotated pixels counted as background, disks would vanish."""
    image, labels = disks(seed=0)
    scribbles = np.zeros_like(labels)
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]]
    for i in range(1, labels.max() + 1):
        cy, cx = np.argwhere(labels == i).mean(axis=0).round().astype(int)
        scribbles[cy - 1 : cy + 2, cx - 1 : cx + 2] = 2  # 3x3 of foreground in each disk
    background = (labels == 0) & ((yy % 24 == 3) | (xx % 24 == 3))  # sparse background lines
    scribbles[background] = 1
    assert (scribbles > 0).mean() < 0.2

    cfg = small_config(labels="scribbles", epochs=1, steps_per_epoch=30, foreground_bias=0.5)
    finished = train_model([image], [scribbles], cfg, PLAIN, jit=False)
    bundle = finished.bundle
    assert bundle.label_mode == "scribbles"
    prob = predict_full(bundle, image)
    truth = labels > 0
    recall = (prob[truth] > 0.5).mean()
    assert recall > 0.6, recall  # far beyond the 9 annotated pixels per disk
    assert dice_score(prob > 0.5, truth) > 0.6


# ---------------------------------------------------------------------------
# bad input is refused before training starts


@pytest.mark.parametrize(
    "case",
    [
        "no images",
        "count mismatch",
        "shape mismatch",
        "nothing annotated",
        "nan image",
        "validation shape mismatch",
        "bad labels",
    ],
)
def test_bad_input_raises_before_training(case, disks):
    image, labels = disks((40, 40), n=2, seed=0)
    cfg = small_config()
    kwargs = {}
    mode_cfg = cfg
    if case == "no images":
        args = ([], [])
    elif case == "count mismatch":
        args = ([image, image], [labels])
    elif case == "shape mismatch":
        args = ([image], [labels[:30]])
    elif case == "nothing annotated":
        args = ([image], [np.zeros_like(labels)])
        mode_cfg = small_config(labels="scribbles")
    elif case == "nan image":
        bad = image.copy()
        bad[3, 3] = np.nan
        args = ([bad], [labels])
    elif case == "validation shape mismatch":
        args = ([image], [labels])
        kwargs["validation"] = ([image], [labels[:, :20]])
    else:
        args = ([image], [labels.astype(np.float32) + 0.5])
    gen = train(*args, mode_cfg, PLAIN, jit=False, **kwargs)
    with pytest.raises(DataError) as info:
        next(gen)  # the very first event: nothing was yielded
    assert len(str(info.value)) > 20


def test_config_changed_into_nonsense_is_refused(disks):
    image, labels = disks((40, 40), n=2, seed=0)
    cfg = small_config()
    object.__setattr__(cfg, "batch_size", 0)  # frozen: only a deliberate bypass gets here
    with pytest.raises(ConfigError, match="batch_size"):
        next(train([image], [labels], cfg, PLAIN, jit=False))


def test_channel_mismatch_with_initial_model_is_refused(plain_runs):
    (a, _), image, _ = plain_runs
    two_channel = np.stack([image, image[::-1]], axis=-1)
    with pytest.raises(DataError, match="channel"):
        next(
            train(
                [two_channel],
                [np.ones(image.shape, int)],
                small_config(),
                initial=a[-1].bundle,
                jit=False,
            )
        )
