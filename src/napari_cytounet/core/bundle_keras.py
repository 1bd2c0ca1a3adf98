"""Loading Keras model files safely: ``.keras`` archives and legacy tf.keras HDF5 UNets.

Loading uses Keras safe mode, which refuses models that would run arbitrary Python
code (``Lambda`` layers holding bytecode); failures become a
:class:`~.errors.ModelError` that says what to do. A tf.keras (Keras 2) HDF5 file
whose layer options Keras 3 rejects is loaded from a sanitised copy. For a model
without our record, the UNet architecture is inferred from the network. Used by
:mod:`.bundle_files`; knows nothing of bundles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import UNetConfig
from .errors import ModelError


def _unsafe_message(path: Path) -> str:
    return (
        f"Refused to load {path.name}: it contains Python code (a Lambda layer or custom "
        "function) that would run on loading. Only load such a file if you trust its author, "
        "and re-save it without Lambda layers."
    )


def _keras_load(path: Path) -> Any:
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        text = str(exc)
        if "safe_mode" in text or "unsafe" in text.lower() or "lambda" in text.lower():
            raise ModelError(_unsafe_message(path)) from exc
        if "Could not locate" in text or "Unknown layer" in text or "custom" in text.lower():
            raise ModelError(
                f"Cannot load {path.name}: it uses layers or objects this version does not know "
                f"({text.splitlines()[0][:160]}). Re-save it with standard Keras layers."
            ) from exc
        raise ModelError(
            f"Cannot load {path.name}: the file is corrupt or not a Keras model "
            f"({type(exc).__name__}: {text.splitlines()[0][:160] if text else 'no details'}). "
            "Choose a .keras model saved by napari-cytounet or Keras 3."
        ) from exc


def _infer_unet_config(model: Any) -> tuple[UNetConfig, tuple[int, int] | None]:
    """Best-effort architecture of a foreign model (for legacy HDF5 UNets)."""
    import keras

    in_shape = model.input_shape
    if isinstance(in_shape, list):
        raise ModelError("Models with several inputs are not supported; use a single-input UNet.")
    if len(in_shape) != 4:
        raise ModelError(
            f"Expected a 2D segmentation model with input (batch, H, W, channels), got {in_shape}."
        )
    out_shape = model.output_shape
    if isinstance(out_shape, list) or len(out_shape) != 4:
        raise ModelError(
            f"Expected an image-shaped output (batch, H, W, classes), got {out_shape}; "
            "this does not look like a segmentation model."
        )
    pools = sum(isinstance(la, keras.layers.MaxPooling2D) for la in model.layers)
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    depth = min(5, max(2, pools))
    filters = int(convs[0].filters) if convs else 16
    fixed = None
    if in_shape[1] is not None and in_shape[2] is not None:
        fixed = (int(in_shape[1]), int(in_shape[2]))
    config = UNetConfig(
        depth=depth,
        base_filters=max(1, min(256, filters)),
        in_channels=int(in_shape[3] or 1),
        classes=int(out_shape[3] or 1),
        batch_norm=any(isinstance(la, keras.layers.BatchNormalization) for la in model.layers),
    )
    return config, fixed


_BASE_LAYER_KEYS = {
    "name",
    "trainable",
    "dtype",
    "autocast",
    "input_shape",
    "batch_input_shape",
    "input_dim",
    "batch_size",
    "activity_regularizer",
}


def _sanitise_layers(layers: list[dict[str, Any]], dropped: dict[str, list[str]]) -> None:
    """Drop the config keys tf-keras wrote that Keras 3's layer of the same class rejects."""
    import inspect

    import keras

    for layer in layers:
        config = layer.get("config", {})
        if isinstance(config.get("layers"), list):  # a nested model
            _sanitise_layers(config["layers"], dropped)
            continue
        cls = getattr(keras.layers, str(layer.get("class_name")), None)
        if cls is None or layer.get("class_name") == "InputLayer":
            continue
        allowed = set(inspect.signature(cls.__init__).parameters) | _BASE_LAYER_KEYS
        for key in [k for k in config if k not in allowed]:
            del config[key]
            dropped.setdefault(str(layer["class_name"]), [])
            if key not in dropped[str(layer["class_name"])]:
                dropped[str(layer["class_name"])].append(key)


def _load_tf_keras_h5(path: Path) -> tuple[Any, dict[str, list[str]]]:
    """Load a tf-keras (Keras 2) full-model HDF5 file in Keras 3.

    tf-keras wrote layer options that Keras 3 does not have (``groups`` on
    ``Conv2DTranspose``, ...), and Keras 3 refuses the whole file for them. When the plain
    load fails, the file is copied to a temporary folder, the unknown keys (all defaults of
    tf-keras, which Keras 3 does not implement) are removed from its ``model_config``, and
    the copy is loaded with the same safe mode. The keys removed are returned.
    """
    import shutil
    import tempfile

    import h5py

    try:
        return _keras_load(path), {}
    except ModelError as first:
        with h5py.File(path, "r") as fh:
            config = json.loads(fh.attrs["model_config"])
        dropped: dict[str, list[str]] = {}
        _sanitise_layers(config.get("config", {}).get("layers", []), dropped)
        if not dropped:
            raise first
        with tempfile.TemporaryDirectory(prefix="cytounet-h5-") as folder:
            copy = Path(folder) / path.name
            shutil.copyfile(path, copy)
            with h5py.File(copy, "r+") as fh:
                fh.attrs["model_config"] = json.dumps(config)
            return _keras_load(copy), dropped
