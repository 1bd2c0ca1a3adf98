"""Helpers of the GUI tests (imported by the tests and conftest)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np

PLUGIN = "napari-cytounet"
WIDGETS = ("Train UNet", "Predict", "Score", "Quality check", "Model")
#: Generous limit for background jobs (TensorFlow's first import and compile included).
JOB_TIMEOUT_MS = 120_000


def dock(viewer, name: str):
    """Dock a widget of the plugin the way the Plugins menu does; returns the widget."""
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


class Notes:
    """Notifications shown during a test."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __call__(self, notification: Any) -> None:
        self.items.append(notification)

    def of(self, severity: str) -> list[str]:
        return [str(n.message) for n in self.items if str(n.severity).lower() == severity]

    @property
    def errors(self) -> list[str]:
        return self.of("error")

    @property
    def warnings(self) -> list[str]:
        return self.of("warning")

    @property
    def infos(self) -> list[str]:
        return self.of("info")


def snapshot(viewer) -> list[tuple[str, str, tuple[int, ...], str]]:
    """Names, types, shapes and content hashes of all layers (to prove nothing changed)."""
    out = []
    for layer in viewer.layers:
        data = np.asarray(layer.data)
        digest = hashlib.sha1(np.ascontiguousarray(data).tobytes()).hexdigest()
        out.append((layer.name, type(layer).__name__, data.shape, digest))
    return out


def wait_idle(qtbot, widget, timeout: int = JOB_TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def cells(shape=(96, 96), seed=0):
    from napari_cytounet.core.synthetic import synthetic_cells

    return synthetic_cells(shape, radius=(6, 12), seed=seed)


def tiny_settings(widget, *, epochs: int = 2, steps: int = 3) -> None:
    """A tiny model and schedule on the Train widget."""
    widget._start_from.value = "new"
    widget._depth.value = 2
    widget._filters.value = 4
    widget._patch.value = 32
    widget._batch.value = 2
    widget._steps.value = steps
    widget._stop_by.value = "epochs"
    widget._epochs.value = epochs


class _Keeper:
    """Holds the engine between tests, as a second viewer would (one TensorFlow start)."""


#: What holds the engine for the whole GUI session (see conftest's ``_engine_kept``).
ENGINE_KEEPER = _Keeper()

_MODEL_LOCK = threading.Lock()
_MODELS: dict[int, Any] = {}


def engine_job(job: str, **kwargs: Any) -> list[Any]:
    """Run a job in the engine process and return its events (as the widgets' jobs do)."""
    from napari_cytounet.engine import get_engine

    return list(get_engine().run(job, **kwargs))


def save_model(bundle: Any, path: Any) -> Any:
    """Save ``bundle`` to ``path`` in the engine (this process never imports TensorFlow)."""
    return engine_job("save", bundle=bundle, path=path)[-1].path


def tiny_bundle(channels: int = 1):
    """A tiny trained model (cached per session, trained in the engine) for prediction tests."""
    from napari_cytounet.core.config import TrainingConfig, UNetConfig
    from napari_cytounet.engine.jobs import TrainingRequest

    with _MODEL_LOCK:
        if channels not in _MODELS:
            image, labels = cells((64, 64))
            if channels > 1:
                image = np.stack([image] * channels, axis=-1) * np.linspace(0.5, 1, channels)
            request = TrainingRequest(
                images=[image],
                labels=[labels],
                names=["tiny"],
                config=TrainingConfig(
                    epochs=2, steps_per_epoch=3, patch_size=32, batch_size=2, validation_patches=0
                ),
                unet=UNetConfig(depth=2, base_filters=4, in_channels=channels),
            )
            _MODELS[channels] = engine_job("train", request=request)[-1].bundle
        return _MODELS[channels]
