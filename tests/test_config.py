"""Settings validate themselves with helpful messages and round-trip through dicts/JSON."""

from __future__ import annotations

import json
import math

import pytest

from napari_cytounet.core.config import NormalizationConfig, TrainingConfig, UNetConfig
from napari_cytounet.core.errors import ConfigError, CytoUNetError

NONSENSE = [
    # (class, settings, words the message must contain)
    (UNetConfig, dict(depth=1), "depth"),
    (UNetConfig, dict(depth=6), "2 to 5"),
    (UNetConfig, dict(depth=2.5), "depth"),
    (UNetConfig, dict(depth="3"), "depth"),
    (UNetConfig, dict(depth=None), "depth"),
    (UNetConfig, dict(base_filters=0), "base_filters"),
    (UNetConfig, dict(base_filters=300), "base_filters"),
    (UNetConfig, dict(base_filters=4.0), "base_filters"),
    (UNetConfig, dict(in_channels=0), "in_channels"),
    (UNetConfig, dict(in_channels=-3), "in_channels"),
    (UNetConfig, dict(classes=0), "classes"),
    (UNetConfig, dict(dropout=-0.1), "dropout"),
    (UNetConfig, dict(dropout=1.0), "dropout"),
    (UNetConfig, dict(dropout=math.nan), "dropout"),
    (UNetConfig, dict(dropout="high"), "dropout"),
    (UNetConfig, dict(dropout=None), "dropout"),
    (UNetConfig, dict(l1=-1e-3), "l1"),
    (UNetConfig, dict(l2=-1.0), "l2"),
    (UNetConfig, dict(l1=math.nan), "l1"),
    (UNetConfig, dict(l2=math.inf), "l2"),
    (UNetConfig, dict(l1="x"), "l1"),
    (NormalizationConfig, dict(method="zscore"), "method"),
    (NormalizationConfig, dict(low=50, high=50), "low < high"),
    (NormalizationConfig, dict(low=-1), "percentiles"),
    (NormalizationConfig, dict(high=101), "percentiles"),
    (NormalizationConfig, dict(low=math.nan), "low"),
    (NormalizationConfig, dict(low="1%"), "low"),
    (NormalizationConfig, dict(scale=0), "scale"),
    (NormalizationConfig, dict(scale=-255), "scale"),
    (NormalizationConfig, dict(scale=math.nan), "scale"),
    (NormalizationConfig, dict(scale="x"), "scale"),
    (TrainingConfig, dict(epochs=None, max_time=None), "epochs"),
    (TrainingConfig, dict(epochs=0), "epochs"),
    (TrainingConfig, dict(epochs=-5), "epochs"),
    (TrainingConfig, dict(epochs=1.5), "epochs"),
    (TrainingConfig, dict(max_time=0), "max_time"),
    (TrainingConfig, dict(max_time=-10), "max_time"),
    (TrainingConfig, dict(max_time=math.nan), "max_time"),
    (TrainingConfig, dict(max_time="soon"), "max_time"),
    (TrainingConfig, dict(steps_per_epoch=0), "steps_per_epoch"),
    (TrainingConfig, dict(patch_size=8), "patch_size"),
    (TrainingConfig, dict(patch_size=4096), "patch_size"),
    (TrainingConfig, dict(patch_size=64.0), "patch_size"),
    (TrainingConfig, dict(batch_size=0), "batch_size"),
    (TrainingConfig, dict(batch_size=5000), "batch_size"),
    (TrainingConfig, dict(learning_rate=0), "learning rate"),
    (TrainingConfig, dict(learning_rate=1.5), "learning rate"),
    (TrainingConfig, dict(learning_rate=-1e-3), "learning rate"),
    (TrainingConfig, dict(learning_rate=math.nan), "learning rate"),
    (TrainingConfig, dict(learning_rate="fast"), "learning rate"),
    (TrainingConfig, dict(learning_rate=None), "learning rate"),
    (TrainingConfig, dict(loss="mse"), "bce_dice"),
    (TrainingConfig, dict(labels="sparse"), "scribbles"),
    (TrainingConfig, dict(precision="float16"), "mixed_bfloat16"),
    (TrainingConfig, dict(foreground_bias=1.5), "foreground_bias"),
    (TrainingConfig, dict(foreground_bias=-0.1), "foreground_bias"),
    (TrainingConfig, dict(foreground_bias="x"), "foreground_bias"),
    (TrainingConfig, dict(validation_patches=-1), "validation_patches"),
    (TrainingConfig, dict(validation_patches=2.5), "validation_patches"),
    (TrainingConfig, dict(seed=-1), "seed"),
    (TrainingConfig, dict(seed=2**40), "seed"),
    (TrainingConfig, dict(seed="a"), "seed"),
    (TrainingConfig, dict(seed=1.5), "seed"),
    (TrainingConfig, dict(normalization="x"), "normalization"),
    (TrainingConfig, dict(normalization={"method": "bad"}), "method"),
]


@pytest.mark.parametrize(
    ("cls", "settings", "words"),
    NONSENSE,
    ids=[f"{c.__name__}-{'-'.join(f'{k}={v!r}' for k, v in s.items())}" for c, s, _ in NONSENSE],
)
def test_nonsense_raises_config_error_with_a_helpful_message(cls, settings, words):
    with pytest.raises(ConfigError) as info:
        cls(**settings)
    message = str(info.value)
    assert words in message
    assert len(message) > 15 and "\n" not in message  # one line, says what is wrong
    assert isinstance(info.value, CytoUNetError) and isinstance(info.value, ValueError)


def test_defaults_are_valid():
    UNetConfig()
    NormalizationConfig()
    TrainingConfig().validate()
    TrainingConfig(epochs=None, max_time=60.0).validate()


def test_training_config_is_frozen_and_changes_are_validated():
    from dataclasses import FrozenInstanceError, replace

    cfg = TrainingConfig()
    with pytest.raises(FrozenInstanceError):
        cfg.learning_rate = 3.0
    with pytest.raises(ConfigError, match="learning rate"):
        replace(cfg, learning_rate=3.0)
    assert replace(cfg, learning_rate=1e-3).learning_rate == 1e-3 and cfg.learning_rate == 2e-3


def test_unet_properties():
    cfg = UNetConfig(depth=3, classes=4)
    assert cfg.divisor == 8 and cfg.output_channels == 4
    with pytest.raises(AttributeError):
        cfg.depth = 4  # frozen


@pytest.mark.parametrize(
    "config",
    [
        UNetConfig(),
        UNetConfig(
            depth=5,
            base_filters=32,
            in_channels=3,
            classes=4,
            batch_norm=False,
            dropout=0.3,
            l1=1e-5,
            l2=1e-4,
        ),
        NormalizationConfig(),
        NormalizationConfig(method="scale", scale=65535.0),
        TrainingConfig(),
        TrainingConfig(
            epochs=None,
            max_time=120.0,
            labels="scribbles",
            loss="dice",
            precision="mixed_bfloat16",
            seed=42,
            normalization=NormalizationConfig(low=0.5, high=99.5),
        ),
    ],
)
def test_dict_round_trip(config):
    data = config.to_dict()
    again = type(config).from_dict(json.loads(json.dumps(data)))
    assert again == config
    assert again.to_dict() == data


def test_training_config_accepts_normalisation_as_dict_and_ignores_unknown_keys():
    data = TrainingConfig(seed=3).to_dict()
    assert isinstance(data["normalization"], dict)
    data["from_a_future_version"] = True
    cfg = TrainingConfig.from_dict(data)
    assert isinstance(cfg.normalization, NormalizationConfig) and cfg.seed == 3
    assert UNetConfig.from_dict({"depth": 3, "colour": "blue"}) == UNetConfig(depth=3)
