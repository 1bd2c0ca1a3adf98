"""Data preparation: normalisation, label targets, patches, augmentation, tf.data, summaries."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cytounet.core.config import NormalizationConfig
from napari_cytounet.core.data import (
    PatchSampler,
    augment,
    content_hash,
    fixed_patches,
    labels_to_targets,
    make_batches,
    make_dataset,
    normalize_image,
    prepare_examples,
    summarize_data,
    to_channels_last,
)
from napari_cytounet.core.errors import DataError

# ---------------------------------------------------------------------------
# normalisation


def test_percentile_normalisation_maps_low_and_high_percentiles_to_0_and_1():
    rng = np.random.default_rng(0)
    image = rng.gamma(2.0, 300.0, (64, 80)).astype(np.uint16)
    norm = NormalizationConfig(low=2.0, high=98.0)
    out = normalize_image(image, norm)
    assert out.dtype == np.float32 and out.shape == (64, 80, 1)
    lo, hi = np.percentile(image.astype(np.float64), [2.0, 98.0])
    np.testing.assert_allclose(out[..., 0], (image - lo) / (hi - lo), rtol=1e-5, atol=1e-5)
    assert np.percentile(out, 2.0) == pytest.approx(0.0, abs=1e-5)
    assert np.percentile(out, 98.0) == pytest.approx(1.0, abs=1e-5)
    # no clipping: the brightest pixels exceed 1
    assert out.max() > 1.0 and out.min() < 0.0


def test_normalisation_is_per_channel():
    rng = np.random.default_rng(1)
    image = np.stack([rng.random((20, 20)) * 10, rng.random((20, 20)) * 1000 + 5], -1)
    out = normalize_image(image, NormalizationConfig(low=0.0, high=100.0))
    assert out.shape == (20, 20, 2)
    np.testing.assert_allclose(out.min(axis=(0, 1)), [0, 0], atol=1e-6)
    np.testing.assert_allclose(out.max(axis=(0, 1)), [1, 1], atol=1e-6)


def test_scale_normalisation_divides():
    image = np.array([[0, 51, 255]], np.uint8)
    out = normalize_image(image, NormalizationConfig(method="scale", scale=255.0))
    np.testing.assert_allclose(out[..., 0], [[0.0, 0.2, 1.0]], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_constant_image_maps_to_zeros(dtype):
    out = normalize_image(np.full((16, 16), 7, dtype))
    assert out.shape == (16, 16, 1)
    assert np.all(out == 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_image_is_a_data_error(bad):
    image = np.ones((8, 8), np.float32)
    image[2, 5] = bad
    with pytest.raises(DataError, match="NaN or infinite"):
        normalize_image(image)


def test_rgb_with_identical_channels_becomes_one_channel():
    gray = np.random.default_rng(2).integers(0, 255, (12, 14), dtype=np.uint8)
    rgb = np.stack([gray] * 3, -1)
    assert to_channels_last(rgb).shape == (12, 14, 1)
    rgba = np.concatenate([rgb, np.full((12, 14, 1), 255, np.uint8)], -1)
    assert to_channels_last(rgba).shape == (12, 14, 1)
    np.testing.assert_array_equal(normalize_image(rgb), normalize_image(gray))


def test_colour_image_keeps_its_channels_or_is_averaged_for_a_grey_model():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, (10, 11, 3), dtype=np.uint8)
    assert to_channels_last(rgb).shape == (10, 11, 3)
    assert to_channels_last(rgb, 3).shape == (10, 11, 3)
    grey = to_channels_last(rgb, 1)
    assert grey.shape == (10, 11, 1)
    np.testing.assert_allclose(grey[..., 0], rgb.astype(np.float32).mean(-1), rtol=1e-6)


def test_channel_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="channel"):
        normalize_image(np.zeros((10, 10)), in_channels=3)
    with pytest.raises(DataError, match="channel"):
        to_channels_last(np.zeros((10, 10, 2)), in_channels=3)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5)])
def test_wrong_dimensionality_is_a_data_error(shape):
    with pytest.raises(DataError, match="2D"):
        to_channels_last(np.zeros(shape))


# ---------------------------------------------------------------------------
# labels


def test_dense_binary_labels_accept_instance_ids():
    labels = np.array([[0, 1, 7], [0, 0, 300]], np.int32)
    target, weight = labels_to_targets(labels, "dense")
    assert target.dtype == np.uint8 and weight.dtype == np.float32
    assert target.tolist() == [[0, 1, 1], [0, 0, 1]]
    assert np.all(weight == 1)


def test_dense_multiclass_labels_are_class_indices():
    labels = np.array([[0, 1, 2]])
    target, weight = labels_to_targets(labels, "dense", classes=3)
    assert target.tolist() == [[0, 1, 2]] and np.all(weight == 1)
    with pytest.raises(DataError, match=r"0\.\.2"):
        labels_to_targets(np.array([[0, 3]]), "dense", classes=3)


def test_scribbles_binary_and_multiclass():
    target, weight = labels_to_targets(np.array([[0, 1, 2]]), "scribbles")
    assert target.tolist() == [[0, 0, 1]] and weight.tolist() == [[0.0, 1.0, 1.0]]
    target, weight = labels_to_targets(np.array([[0, 1, 2, 3]]), "scribbles", classes=3)
    assert target.tolist() == [[0, 0, 1, 2]] and weight.tolist() == [[0, 1, 1, 1]]
    with pytest.raises(DataError, match="dense mode"):
        labels_to_targets(np.array([[0, 1, 3]]), "scribbles")


def test_label_types():
    target, _ = labels_to_targets(np.array([[True, False]]))
    assert target.tolist() == [[1, 0]]
    target, _ = labels_to_targets(np.array([[0.0, 2.0]]))  # integer-valued floats are fine
    assert target.tolist() == [[0, 1]]


@pytest.mark.parametrize(
    ("labels", "mode", "match"),
    [
        (np.zeros((2, 2, 2), int), "dense", "2D"),
        (np.array([[0.5, 1.0]]), "dense", "integer"),
        (np.array([[np.nan, 1.0]]), "dense", "integer"),
        (np.array([[-1, 1]]), "dense", "negative"),
        (np.array([[0, 1]]), "sparse", "Unknown labels mode"),
    ],
)
def test_bad_labels_are_data_errors(labels, mode, match):
    with pytest.raises(DataError, match=match):
        labels_to_targets(labels, mode)


# ---------------------------------------------------------------------------
# examples


def test_prepare_examples_validates_pairs(disks):
    image, labels = disks((40, 40), n=2)
    examples = prepare_examples([image], [labels], names=["a.tif"])
    assert examples[0].image.shape == (40, 40, 1) and examples[0].name == "a.tif"
    with pytest.raises(DataError, match="No training images"):
        prepare_examples([], [])
    with pytest.raises(DataError, match="2 images but 1"):
        prepare_examples([image, image], [labels])
    with pytest.raises(DataError, match=r"a\.tif"):
        prepare_examples([image], [labels[:, :30]], names=["a.tif"])
    with pytest.raises(DataError, match="Nothing is annotated"):
        prepare_examples([image], [np.zeros_like(labels)], mode="scribbles")
    # all images must share the channels of the first one
    two = np.stack([image, image[::-1]], -1)
    with pytest.raises(DataError, match="channel"):
        prepare_examples([image, two], [labels, labels])
    rgb = np.stack([image, image[::-1], image.T], -1)
    with pytest.raises(DataError, match="channel"):
        prepare_examples([rgb, image], [labels, labels])


# ---------------------------------------------------------------------------
# patches


def sampler_for(image, labels, patch=32, mode="dense", **kwargs):
    return PatchSampler(prepare_examples([image], [labels], mode=mode), patch, **kwargs)


def test_patch_sampler_is_deterministic_for_a_seed(disks):
    image, labels = disks((80, 90))
    a = sampler_for(image, labels, seed=7).sample(6)
    b = sampler_for(image, labels, seed=7).sample(6)
    c = sampler_for(image, labels, seed=8).sample(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_patches_are_cut_from_the_image_with_matching_targets(disks):
    image, labels = disks((80, 90))
    x, y = sampler_for(image, labels, seed=0).sample(8)
    assert x.shape == (8, 32, 32, 1) and y.shape == (8, 32, 32, 2)
    assert x.dtype == y.dtype == np.float32
    norm = normalize_image(image)[..., 0]
    target = (labels > 0).astype(np.float32)
    for b in range(8):
        # find the patch in the image and check its targets come from the same place
        hits = [
            (t, left)
            for t in range(80 - 31)
            for left in range(90 - 31)
            if np.array_equal(norm[t, left : left + 32], x[b, 0, :, 0])
            and np.array_equal(norm[t : t + 32, left], x[b, :, 0, 0])
        ]
        assert hits, b
        t, left = hits[0]
        np.testing.assert_array_equal(y[b, ..., 0], target[t : t + 32, left : left + 32])
        assert np.all(y[b, ..., 1] == 1)


def test_foreground_bias_one_always_includes_foreground():
    image = np.zeros((200, 200), np.float32)
    labels = np.zeros((200, 200), np.int32)
    labels[150:153, 20:23] = 1  # a single 3x3 object
    image[labels > 0] = 1.0
    _, y = sampler_for(image, labels, foreground_bias=1.0, seed=0).sample(32)
    assert all(y[b, ..., 0].any() for b in range(32))
    _, y = sampler_for(image, labels, foreground_bias=0.0, seed=0).sample(32)
    assert sum(y[b, ..., 0].any() for b in range(32)) < 8


def test_patches_favour_annotated_pixels_for_scribbles():
    image = np.random.default_rng(0).random((200, 200)).astype(np.float32)
    scribbles = np.zeros((200, 200), np.int32)
    scribbles[10, 150:170] = 1
    scribbles[180:190, 30] = 2
    sampler = sampler_for(image, scribbles, mode="scribbles", foreground_bias=0.0, seed=0)
    _, y = sampler.sample(32)
    assert all(y[b, ..., 1].sum() > 0 for b in range(32))


def test_small_images_are_padded_with_weight_zero():
    image = np.random.default_rng(0).random((20, 24)).astype(np.float32) + 1.0
    labels = np.ones((20, 24), np.int32)
    x, y = sampler_for(image, labels, seed=0).sample(3)
    assert x.shape == (3, 32, 32, 1)
    for b in range(3):
        weight = y[b, ..., 1]
        assert weight.sum() == 20 * 24
        rows, cols = np.nonzero(weight)
        assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (20, 24)
        assert np.all(x[b, ..., 0][weight == 0] == 0)  # zero padding
        assert np.all(y[b, ..., 0][weight == 0] == 0)


def test_fixed_patches_are_reproducible(disks):
    image, labels = disks((64, 64))
    examples = prepare_examples([image], [labels])
    a = fixed_patches(examples, 32, 5, seed=3)
    b = fixed_patches(examples, 32, 5, seed=3)
    assert a[0].shape == (5, 32, 32, 1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# ---------------------------------------------------------------------------
# augmentation


def test_augment_keeps_images_and_targets_aligned():
    rng = np.random.default_rng(0)
    classes = np.zeros((8, 16, 16), np.float32)
    classes[:, 2:5, 3:12] = 1  # an asymmetric bar...
    classes[:, 9:14, 10] = 1  # ...and a stem: every rotation/flip looks different
    x = classes[..., None].copy()
    y = np.stack([classes, classes], -1)
    x_aug, y_aug = augment(x.copy(), y.copy(), rng)
    changed = 0
    for b in range(8):
        fg, bg = y_aug[b, ..., 0] == 1, y_aug[b, ..., 0] == 0
        np.testing.assert_array_equal(y_aug[b, ..., 0], y_aug[b, ..., 1])
        assert fg.sum() == classes[b].sum()
        # intensity jitter is affine: one value on the class-1 pixels, another on class 0
        on, off = np.unique(x_aug[b, ..., 0][fg]), np.unique(x_aug[b, ..., 0][bg])
        assert on.size == 1 and off.size == 1
        assert -0.1 <= off[0] <= 0.1 and 0.7 <= on[0] <= 1.35 and on[0] > off[0]
        changed += not np.array_equal(y_aug[b, ..., 0], classes[b])
    assert changed >= 4  # flips and rotations did happen


def test_augmented_batches_are_seeded(disks):
    image, labels = disks((64, 64))
    examples = prepare_examples([image], [labels])
    runs = []
    for _ in range(2):
        batches = make_batches(PatchSampler(examples, 32, seed=1), 4, seed=1)
        runs.append([next(batches) for _ in range(2)])
    for (xa, ya), (xb, yb) in zip(*runs):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


# ---------------------------------------------------------------------------
# tf.data


def test_make_dataset_yields_batches_of_the_right_shape(disks):
    image, labels = disks((64, 64))
    rgb = np.stack([image, image[::-1], image[:, ::-1]], -1)
    examples = prepare_examples([rgb], [labels])
    dataset = make_dataset(PatchSampler(examples, 32, seed=2), 4, seed=2)
    expected = make_batches(PatchSampler(examples, 32, seed=2), 4, seed=2)
    for (x, y), (ex, ey) in zip(dataset.take(2), expected):
        assert tuple(x.shape) == (4, 32, 32, 3) and tuple(y.shape) == (4, 32, 32, 2)
        assert x.dtype.name == "float32" and y.dtype.name == "float32"
        np.testing.assert_array_equal(x.numpy(), ex)
        np.testing.assert_array_equal(y.numpy(), ey)


# ---------------------------------------------------------------------------
# summary


def test_summarize_data_hashes_follow_the_content(disks):
    image, labels = disks((32, 32), n=2)
    summary = summarize_data([image], [labels], names=["one"])
    assert summary["count"] == 1
    item = summary["items"][0]
    assert item["name"] == "one" and item["shape"] == [32, 32] and item["dtype"] == "float32"
    assert item["labels_shape"] == [32, 32]
    assert item["annotated_fraction"] == pytest.approx(float((labels > 0).mean()))
    assert item["image_sha256"] == content_hash(image)
    assert summarize_data([image.copy()], [labels.copy()], ["one"]) == summary

    changed = image.copy()
    changed[5, 5] += 1
    other = summarize_data([changed], [labels])["items"][0]
    assert other["image_sha256"] != item["image_sha256"]
    assert other["labels_sha256"] == item["labels_sha256"]
    relabelled = labels.copy()
    relabelled[0, 0] = 9
    assert (
        summarize_data([image], [relabelled])["items"][0]["labels_sha256"] != item["labels_sha256"]
    )
    # same bytes, different shape or dtype: different hash
    assert content_hash(image.reshape(16, 64)) != content_hash(image)
    assert content_hash(image.view(np.int32)) != content_hash(image)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int16])
def test_fast_integer_percentiles_equal_numpys_bit_for_bit(dtype):
    from napari_cytounet.core.data import percentiles

    rng = np.random.default_rng(np.dtype(dtype).itemsize)
    info = np.iinfo(dtype)
    for size in (1, 2, 7, 100, 4097):
        for _ in range(20):
            lo = int(rng.integers(info.min, info.max))
            hi = int(rng.integers(lo, info.max + 1))
            values = rng.integers(lo, hi + 1, size).astype(dtype)
            qs = (0.0, 1.0, 50.0, 99.8, 100.0, float(rng.uniform(0, 100)))
            expected = tuple(float(v) for v in np.percentile(values.astype(np.float64), qs))
            assert percentiles(values, qs) == expected


def test_float_percentiles_are_numpys():
    from napari_cytounet.core.data import percentiles

    values = np.random.default_rng(0).normal(size=(30, 40)).astype(np.float32)
    assert percentiles(values, (1.0, 99.8)) == tuple(
        float(v) for v in np.percentile(values.astype(np.float64), (1.0, 99.8))
    )
