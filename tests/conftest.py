"""Shared fixtures: tiny synthetic data, tiny models and one short training run.

Everything is seeded and small so the core tests stay fast and deterministic on
2 CPU cores. The trained run is session-scoped: several test modules (training,
prediction, bundle) inspect the same result instead of training again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gui_process import GUI_DIR, gui_targets, within


def pytest_ignore_collect(collection_path, config):
    """Leave the GUI tests to their own process when this run also imports TensorFlow."""
    if within(Path(collection_path), GUI_DIR) and gui_targets(config):
        return True
    return None


def make_disks(
    shape: tuple[int, int] = (96, 96),
    *,
    n: int = 6,
    radius: tuple[float, float] = (6, 10),
    seed: int = 0,
    noise: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Bright disks (instance labels 1..n) on a dark noisy background.

    Returns a float32 image and int32 instance labels.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    labels = np.zeros(shape, np.int32)
    margin = int(radius[1])
    for i in range(n):
        cy = rng.integers(margin, h - margin)
        cx = rng.integers(margin, w - margin)
        r = rng.uniform(*radius)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i + 1
    image = 0.2 + 0.6 * (labels > 0) + rng.normal(0.0, noise, shape)
    return image.astype(np.float32), labels


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2.0 * (pred & truth).sum() / total)


@pytest.fixture(scope="session")
def disks():
    """The :func:`make_disks` factory."""
    return make_disks


@pytest.fixture(scope="session")
def dice_score():
    """The :func:`dice` helper."""
    return dice


@pytest.fixture
def tiny_unet():
    """A depth-2 UNet with 4 base filters (a few thousand parameters)."""
    from napari_cytounet.core.config import UNetConfig

    return UNetConfig(depth=2, base_filters=4)


@pytest.fixture
def make_bundle():
    """Factory: an untrained, seeded :class:`ModelBundle` for a UNet config."""

    def factory(unet: Any, seed: int = 0, **kwargs: Any) -> Any:
        import keras

        from napari_cytounet.core.bundle import ModelBundle
        from napari_cytounet.core.model import build_unet

        keras.utils.set_random_seed(seed)
        return ModelBundle(model=build_unet(unet), unet=unet, **kwargs)

    return factory


@dataclass
class TrainedRun:
    """A finished short training run and the data it saw."""

    events: list
    finished: Any
    image: np.ndarray
    labels: np.ndarray
    val_image: np.ndarray
    val_labels: np.ndarray
    config: Any


@pytest.fixture(scope="session")
def trained_run() -> TrainedRun:
    """A depth-2 BatchNorm UNet trained 3 x 10 batches of 4 patches (32 x 32), with validation."""
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.core.training import train

    image, labels = make_disks(seed=0)
    val_image, val_labels = make_disks(seed=1)
    config = TrainingConfig(
        epochs=3,
        steps_per_epoch=10,
        patch_size=32,
        batch_size=4,
        learning_rate=1e-2,
        seed=0,
        precision="float32",
        validation_patches=8,
    )
    events = list(
        train(
            [image],
            [labels],
            config,
            UNetConfig(depth=2, base_filters=4),
            validation=([val_image], [val_labels]),
            jit=False,
        )
    )
    return TrainedRun(events, events[-1], image, labels, val_image, val_labels, config)
