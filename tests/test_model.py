"""The UNet builder and its FLOP count."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from napari_cytounet.core import model as model_module
from napari_cytounet.core.config import UNetConfig
from napari_cytounet.core.model import BATCH_NORM_MOMENTUM, build_unet, flops_per_pixel


def layers_of(model, kind):
    import keras

    return [la for la in model.layers if isinstance(la, getattr(keras.layers, kind))]


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_output_shape_equals_input_shape(depth):
    cfg = UNetConfig(depth=depth, base_filters=2, batch_norm=False)
    model = build_unet(cfg)
    assert model.input_shape == (None, None, None, 1)
    assert model.output_shape == (None, None, None, 1)
    d = cfg.divisor
    x = np.random.default_rng(depth).random((2, d, 3 * d, 1)).astype(np.float32)
    assert tuple(model(x).shape) == (2, d, 3 * d, 1)
    x = np.zeros((1, 2 * d, d, 1), np.float32)
    assert tuple(model(x).shape) == (1, 2 * d, d, 1)


@pytest.mark.parametrize("size", [(4, 4), (8, 12), (36, 20), (64, 64)])
def test_various_sizes_depth_2(size):
    model = build_unet(UNetConfig(depth=2, base_filters=2, in_channels=2, classes=3))
    x = np.random.default_rng(0).random((1, *size, 2)).astype(np.float32)
    assert tuple(model(x).shape) == (1, *size, 3)


def test_binary_model_is_sigmoid_in_0_1():
    model = build_unet(UNetConfig(depth=2, base_filters=4))
    assert model.get_layer("probabilities").activation.__name__ == "sigmoid"
    x = np.random.default_rng(0).normal(0, 5, (2, 16, 16, 1)).astype(np.float32)
    y = np.asarray(model(x))
    assert y.dtype == np.float32 and y.min() >= 0 and y.max() <= 1


def test_multiclass_model_is_softmax_summing_to_1():
    model = build_unet(UNetConfig(depth=2, base_filters=4, in_channels=3, classes=3))
    assert model.get_layer("probabilities").activation.__name__ == "softmax"
    x = np.random.default_rng(0).normal(0, 5, (2, 16, 16, 3)).astype(np.float32)
    y = np.asarray(model(x))
    assert y.shape == (2, 16, 16, 3) and y.min() >= 0
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("depth", [2, 3])
def test_batch_norm_option(depth):
    with_bn = build_unet(UNetConfig(depth=depth, base_filters=2, batch_norm=True))
    without = build_unet(UNetConfig(depth=depth, base_filters=2, batch_norm=False))
    blocks = 2 * depth + 1  # down blocks, bottleneck, up blocks; two convolutions each
    bns = layers_of(with_bn, "BatchNormalization")
    assert len(bns) == 2 * blocks
    assert all(bn.momentum == BATCH_NORM_MOMENTUM for bn in bns)
    assert layers_of(without, "BatchNormalization") == []
    convs_bn = [c for c in layers_of(with_bn, "Conv2D") if "_conv" in c.name]
    convs = [c for c in layers_of(without, "Conv2D") if "_conv" in c.name]
    assert len(convs_bn) == len(convs) == 2 * blocks
    assert not any(c.use_bias for c in convs_bn)  # BatchNorm supplies the offset
    assert all(c.use_bias for c in convs)


def test_dropout_option():
    assert layers_of(build_unet(UNetConfig(depth=2, base_filters=2)), "Dropout") == []
    model = build_unet(UNetConfig(depth=2, base_filters=4, dropout=0.5, batch_norm=False))
    (drop,) = layers_of(model, "Dropout")
    assert drop.rate == 0.5
    x = np.random.default_rng(0).random((1, 16, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))  # inference
    assert not np.allclose(np.asarray(model(x, training=True)), np.asarray(model(x)))


@pytest.mark.parametrize(("l1", "l2"), [(0.0, 0.0), (1e-3, 0.0), (0.0, 1e-2), (1e-3, 1e-2)])
def test_regularisation_losses(l1, l2):
    model = build_unet(UNetConfig(depth=2, base_filters=2, l1=l1, l2=l2, batch_norm=False))
    if l1 == 0 and l2 == 0:
        assert model.losses == []
        return
    regularised = [la for la in model.layers if getattr(la, "kernel_regularizer", None)]
    # all 3x3 convolutions and the transposed convolutions, not the 1x1 output layer
    assert len(regularised) == 2 * (2 * 2 + 1) + 2
    assert "logits" not in {la.name for la in regularised}
    expected = sum(
        l1 * np.abs(la.kernel.numpy()).sum() + l2 * np.square(la.kernel.numpy()).sum()
        for la in regularised
    )
    assert float(sum(np.asarray(v) for v in model.losses)) == pytest.approx(expected, rel=1e-4)


def test_mixed_bfloat16_builds_and_outputs_float32():
    cfg = UNetConfig(depth=2, base_filters=4)
    reference = build_unet(cfg)
    mixed = build_unet(cfg, dtype_policy="mixed_bfloat16")
    assert mixed.get_layer("down0_conv1").dtype_policy.name == "mixed_bfloat16"
    assert mixed.get_layer("down0_conv1").compute_dtype == "bfloat16"
    assert mixed.get_layer("probabilities").dtype_policy.name == "float32"
    mixed.set_weights(reference.get_weights())  # variables stay float32
    x = np.random.default_rng(0).random((1, 16, 16, 1)).astype(np.float32)
    y = mixed(x)
    assert str(y.dtype) in ("float32", "<dtype: 'float32'>")
    np.testing.assert_allclose(np.asarray(y), np.asarray(reference(x)), atol=0.05)


def test_only_standard_layers():
    """Saved models must load in Keras safe mode: no Lambda or custom layers."""
    import keras

    model = build_unet(UNetConfig(depth=3, base_filters=2, dropout=0.1, l2=1e-4))
    for layer in model.layers:
        assert type(layer).__module__.startswith("keras."), type(layer)
        assert not isinstance(layer, keras.layers.Lambda)


# ---------------------------------------------------------------------------
# FLOPs


def counted_flops(cfg: UNetConfig, size: int = 64) -> float:
    """FLOPs per pixel counted from the built model's convolution kernels and output sizes."""
    import keras

    model = build_unet(cfg)
    kinds = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)
    convs = [la for la in model.layers if isinstance(la, kinds)]
    probe = keras.Model(model.input, [la.output for la in convs])
    outputs = probe(np.zeros((1, size, size, cfg.in_channels), np.float32))
    total = 0.0
    for layer, out in zip(convs, outputs):
        kh, kw, a, b = layer.kernel.shape
        pixels = out.shape[1] * out.shape[2]
        if isinstance(layer, keras.layers.Conv2DTranspose):
            # kernel (kh, kw, out, in): each output pixel gets one tap of in x out
            total += 2 * a * b * pixels
        else:
            total += 2 * kh * kw * a * b * pixels
    return total / (size * size)


@pytest.mark.parametrize(
    "cfg",
    [
        UNetConfig(depth=2, base_filters=4),
        UNetConfig(depth=3, base_filters=8, in_channels=3, classes=2),
        UNetConfig(depth=4, base_filters=16),
    ],
    ids=["d2f4", "d3f8rgb", "d4f16"],
)
def test_flops_per_pixel_matches_the_model(cfg):
    assert flops_per_pixel(cfg) == pytest.approx(counted_flops(cfg), rel=1e-9)


def test_flops_scale_about_4x_with_doubled_filters():
    for depth in (2, 3, 4):
        small = flops_per_pixel(UNetConfig(depth=depth, base_filters=8))
        large = flops_per_pixel(UNetConfig(depth=depth, base_filters=16))
        assert small > 0
        assert 3.8 < large / small <= 4.0


def test_flops_doctest_value():
    assert round(flops_per_pixel(UNetConfig(depth=2, base_filters=4))) == 3088
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(model_module, globs=vars(model_module).copy()):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def _with_batch_norm_statistics(model, seed=0):
    """Give every BatchNorm layer the non-trivial statistics a trained model has."""
    rng = np.random.default_rng(seed)
    for layer in layers_of(model, "BatchNormalization"):
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights(
            [
                rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                rng.normal(0.0, 0.1, beta.shape).astype(np.float32),
                rng.normal(0.0, 0.1, mean.shape).astype(np.float32),
                rng.uniform(0.5, 2.0, var.shape).astype(np.float32),
            ]
        )


@pytest.mark.parametrize("classes", [1, 3])
def test_folding_batch_norm_keeps_the_outputs(classes):
    import keras

    from napari_cytounet.core.model import fold_batch_norm

    keras.utils.set_random_seed(3)
    cfg = UNetConfig(depth=2, base_filters=4, classes=classes)
    model = build_unet(cfg)
    _with_batch_norm_statistics(model)
    folded = build_unet(UNetConfig(depth=2, base_filters=4, classes=classes, batch_norm=False))
    fold_batch_norm(model, folded)
    assert not layers_of(folded, "BatchNormalization")
    x = np.random.default_rng(1).random((2, 24, 32, 1)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(np.asarray(folded(x, training=False)), expected, atol=1e-5)


def test_folded_bfloat16_model_agrees_with_the_float32_original():
    from napari_cytounet.core.model import fold_batch_norm

    cfg = UNetConfig(depth=2, base_filters=4)
    model = build_unet(cfg)
    _with_batch_norm_statistics(model, seed=5)
    folded = build_unet(
        UNetConfig(depth=2, base_filters=4, batch_norm=False), dtype_policy="mixed_bfloat16"
    )
    fold_batch_norm(model, folded)
    x = np.random.default_rng(2).random((1, 32, 32, 1)).astype(np.float32)
    out = np.asarray(folded(x, training=False))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.asarray(model(x, training=False)), atol=0.03)


@pytest.mark.parametrize(
    "cfg",
    [
        UNetConfig(depth=2, base_filters=4),
        UNetConfig(depth=3, base_filters=4, in_channels=2, classes=3),
        UNetConfig(depth=2, base_filters=4, batch_norm=False, dropout=0.5),
    ],
    ids=["binary", "rgb-ish-3-classes", "no-batch-norm-dropout"],
)
def test_folded_graph_predicts_what_the_keras_model_predicts(cfg):
    import keras

    from napari_cytounet.core.folded_unet import FoldedUNet

    keras.utils.set_random_seed(11)
    model = build_unet(cfg)
    _with_batch_norm_statistics(model, seed=2)
    for layer in layers_of(model, "Conv2DTranspose"):  # non-zero biases, as after training
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, np.linspace(-0.2, 0.2, bias.size).astype(np.float32)])
    net = FoldedUNet(cfg, "float32")
    net.load(model)
    x = np.random.default_rng(4).random((2, 2 * cfg.divisor, 3 * cfg.divisor, cfg.in_channels))
    x = x.astype(np.float32)
    expected = np.asarray(model(x, training=False))
    got = np.asarray(net(x))
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_folded_graph_follows_retrained_weights_and_skips_unchanged_ones():
    from napari_cytounet.core.folded_unet import FoldedUNet

    cfg = UNetConfig(depth=2, base_filters=4)
    model = build_unet(cfg)
    net = FoldedUNet(cfg, "mixed_bfloat16")
    net.load(model)
    x = np.random.default_rng(0).random((1, 16, 16, 1)).astype(np.float32)
    before = np.asarray(net(x))
    kernel_var = net._vars["down0_conv1"][0]
    marker = kernel_var.numpy().copy()
    kernel_var.assign(kernel_var * 0)  # not from the model: a skipped load leaves it
    net.load(model)
    assert not np.any(kernel_var.numpy())
    kernel_var.assign(marker)
    model.set_weights([w * 1.1 for w in model.get_weights()])
    net.load(model)
    after = np.asarray(net(x))
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, np.asarray(model(x, training=False)), atol=0.03)


def test_transposed_kernel_as_pointwise_matches_the_transposed_convolution():
    import tensorflow as tf

    from napari_cytounet.core.folded_unet import transpose_as_pointwise

    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(2, 2, 3, 5)).astype(np.float32)  # (kh, kw, out, in)
    x = rng.normal(size=(1, 4, 6, 5)).astype(np.float32)
    expected = tf.nn.conv2d_transpose(x, kernel, (1, 8, 12, 3), 2, "SAME").numpy()
    pointwise = tf.nn.conv2d(x, transpose_as_pointwise(kernel), 1, "VALID")
    np.testing.assert_allclose(tf.nn.depth_to_space(pointwise, 2).numpy(), expected, atol=1e-5)
