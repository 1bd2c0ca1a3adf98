"""napari-cytounet: train, predict and score a Keras UNet on napari layers.

Importing this package is cheap: it never imports TensorFlow, Keras or napari.
The public names below are resolved lazily on first access, so that napari can
read the plugin manifest at start-up without paying for a TensorFlow import.

Examples
--------
>>> import napari_cytounet
>>> napari_cytounet.__version__  # doctest: +SKIP
'0.1.0'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it (imported only when the name is used)
_LAZY = {
    "UNetConfig": "napari_cytounet.core.config",
    "TrainingConfig": "napari_cytounet.core.config",
    "NormalizationConfig": "napari_cytounet.core.config",
    "CytoUNetError": "napari_cytounet.core.errors",
    "build_unet": "napari_cytounet.core.model",
    "train": "napari_cytounet.core.training",
    "train_model": "napari_cytounet.core.training",
    "InteractiveSession": "napari_cytounet.core.interactive",
    "predict_probabilities": "napari_cytounet.core.predict",
    "segment": "napari_cytounet.core.predict",
    "postprocess": "napari_cytounet.core.postprocess",
    "score": "napari_cytounet.core.metrics",
    "check_dataset": "napari_cytounet.core.quality",
    "ModelBundle": "napari_cytounet.core.bundle",
    "load_bundle": "napari_cytounet.core.bundle",
    "save_bundle": "napari_cytounet.core.bundle",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .core.bundle import ModelBundle, load_bundle, save_bundle
    from .core.config import NormalizationConfig, TrainingConfig, UNetConfig
    from .core.errors import CytoUNetError
    from .core.interactive import InteractiveSession
    from .core.metrics import score
    from .core.model import build_unet
    from .core.postprocess import postprocess
    from .core.predict import predict_probabilities, segment
    from .core.quality import check_dataset
    from .core.training import train, train_model
