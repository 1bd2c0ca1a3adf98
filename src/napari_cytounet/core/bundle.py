"""A trained model as a value: the Keras model plus everything needed to reuse it.

On disk a bundle is one ``.keras`` file (the Keras zip archive) with our JSON
record stored *inside* it as ``cytounet.json``, and a copy of that record
beside it (``MODEL.json``) for people and scripts to read. The record holds the
architecture, normalisation, label mode, classes, patch size, training history,
a summary of the training data (counts, shapes, content hashes), versions and
date.

Saving is atomic: the archive is written to a temporary file in the target
folder and renamed over the old one only when complete, so an interrupted save
leaves the previous model intact. Loading uses Keras safe mode, which refuses
models that would run arbitrary Python code (``Lambda`` layers holding
bytecode). Legacy ``.h5``/``.hdf5`` UNets saved by tf.keras (as cytounet and
zhixuhao/unet did) load for prediction, with intensities scaled by 1/255 as
those projects trained them.

Examples
--------
>>> bundle = load_bundle("cells.keras")  # doctest: +SKIP
>>> print(bundle.describe())  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import NormalizationConfig, TrainingConfig, UNetConfig
from .errors import ModelError
from .files import atomic_write, finish_before_interrupt

RECORD_NAME = "cytounet.json"
FORMAT_VERSION = 1
LEGACY_SUFFIXES = (".h5", ".hdf5")


def library_versions() -> dict[str, str]:
    """Versions of this package, TensorFlow, Keras, numpy and Python."""
    import keras
    import numpy
    import tensorflow as tf

    from .._version import __version__

    return {
        "napari-cytounet": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


@dataclass
class ModelBundle:
    """A Keras UNet with its settings, normalisation and training record.

    A bundle is also a picklable *value*: pickling keeps its weights (a list of
    numpy arrays; the ``.keras`` archive for legacy models) instead of the live
    Keras model, which is rebuilt on first use of :attr:`model`. So a process
    that never touches :attr:`model` (napari's, see :mod:`napari_cytounet.engine`)
    can hold, describe and pass on bundles without importing TensorFlow.

    Attributes
    ----------
    model
        The ``keras.Model`` (input ``(B, H, W, C)``, output probabilities); built
        lazily from the weights after unpickling.
    unet
        Its architecture.
    normalization
        How raw images are normalised before prediction (as in training).
    label_mode
        ``"dense"`` or ``"scribbles"``: how its training labels were drawn.
    training
        The training settings, ``None`` for imported legacy models.
    history
        Per-epoch ``loss``, ``dice``, ``val_loss``, ``val_dice``, ``elapsed``.
    data_summary
        Counts, shapes and content hashes of the training (and validation) data.
    """

    model: Any = field(repr=False, compare=False)
    unet: UNetConfig
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    label_mode: str = "dense"
    training: TrainingConfig | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    data_summary: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    path: Path | None = None
    name: str = "cytounet"
    legacy: bool = False
    fixed_input_size: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _inference_models: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    uid: str = field(default_factory=lambda: uuid.uuid4().hex, init=False, compare=False)

    # -- the model as a value ------------------------------------------------------------------
    def _get_model(self) -> Any:
        model = self.__dict__.get("_model")
        if model is None and self.__dict__.get("_frozen") is not None:
            model = self._materialize()
        return model

    def _set_model(self, value: Any) -> None:
        self.__dict__["_model"] = value
        self.__dict__["_frozen"] = None
        self.__dict__.setdefault("_inference_models", {}).clear()

    @property
    def materialized(self) -> bool:
        """Whether the live Keras model exists in this process (no TensorFlow needed to ask)."""
        return self.__dict__.get("_model") is not None

    def weights(self) -> list[Any]:
        """The model's weights as numpy arrays (without building the model when unpickled)."""
        frozen = self.__dict__.get("_frozen")
        if self.__dict__.get("_model") is None and frozen is not None and frozen[0] == "weights":
            return list(frozen[1])
        return [w.copy() for w in self.model.get_weights()]

    def _materialize(self) -> Any:
        kind, payload = self.__dict__["_frozen"]
        if kind == "weights":
            from .model import build_unet

            model = build_unet(self.unet)
            model.set_weights(payload)
        else:  # a legacy model: its .keras archive
            fd, tmp = tempfile.mkstemp(suffix=".keras")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                model = _keras_load(Path(tmp))
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.__dict__["_model"] = model
        self.__dict__["_frozen"] = None
        return model

    def _frozen_model(self) -> tuple[str, Any] | None:
        frozen = self.__dict__.get("_frozen")
        model = self.__dict__.get("_model")
        if model is None:
            return frozen
        if not self.legacy:
            return ("weights", [w.copy() for w in model.get_weights()])
        fd, tmp = tempfile.mkstemp(suffix=".keras")
        os.close(fd)
        try:
            model.save(tmp)
            return ("archive", Path(tmp).read_bytes())
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_model", "_frozen")}
        state["_inference_models"] = {}
        state["_frozen"] = self._frozen_model()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__["_model"] = None

    @classmethod
    def from_weights(cls, weights: list[Any], unet: UNetConfig, **fields: Any) -> ModelBundle:
        """A bundle of ``unet`` with these weights; the Keras model is built on first use.

        Examples
        --------
        >>> from napari_cytounet.core.config import UNetConfig
        >>> b = ModelBundle.from_weights([], UNetConfig(depth=2, base_filters=4))
        >>> b.materialized
        False
        """
        bundle = cls(model=None, unet=unet, **fields)
        bundle.__dict__["_frozen"] = ("weights", list(weights))
        return bundle

    @property
    def classes(self) -> int:
        """Number of output classes (1 = binary)."""
        return self.unet.classes

    @property
    def in_channels(self) -> int:
        """Number of input channels the model expects."""
        return self.unet.in_channels

    @property
    def patch_size(self) -> int | None:
        """Patch size the model was trained on (``None`` if unknown)."""
        return self.training.patch_size if self.training else None

    def record(self) -> dict[str, Any]:
        """The JSON-ready record stored with the model."""
        return {
            "format": "napari-cytounet model bundle",
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "unet": self.unet.to_dict(),
            "normalization": self.normalization.to_dict(),
            "label_mode": self.label_mode,
            "classes": self.classes,
            "patch_size": self.patch_size,
            "training": self.training.to_dict() if self.training else None,
            "history": self.history,
            "data": self.data_summary,
            "versions": self.versions,
            "legacy": self.legacy,
            "extra": self.extra,
        }

    def describe(self) -> str:
        """A short human-readable description of the model and how it was trained."""
        u = self.unet
        lines = [
            f"Model {self.name!r}" + (f" ({self.path})" if self.path else ""),
            f"  UNet depth {u.depth}, {u.base_filters} base filters, {u.in_channels} input "
            f"channel(s), {'binary' if u.classes == 1 else f'{u.classes} classes'}"
            f"{', batch norm' if u.batch_norm else ''}"
            f"{f', dropout {u.dropout}' if u.dropout else ''}",
            f"  labels: {self.label_mode}; normalisation: {self.normalization.method}"
            + (
                f" ({self.normalization.low}-{self.normalization.high} percentiles)"
                if self.normalization.method == "percentile"
                else f" (/ {self.normalization.scale:g})"
            ),
        ]
        if self.training:
            t = self.training
            lines.append(
                f"  trained: patch {t.patch_size}, batch {t.batch_size}, lr {t.learning_rate:g}, "
                f"loss {t.loss}, seed {t.seed}"
            )
        if self.history.get("loss"):
            epochs = len(self.history["loss"])
            last = f"  history: {epochs} epoch(s), final loss {self.history['loss'][-1]:.4f}"
            if self.history.get("dice"):
                last += f", Dice {self.history['dice'][-1]:.3f}"
            val = [v for v in self.history.get("val_dice", []) if v is not None]
            if val:
                last += f", best validation Dice {max(val):.3f}"
            lines.append(last)
        if self.data_summary:
            lines.append(f"  data: {self.data_summary.get('count', '?')} training image(s)")
        if self.created:
            lines.append(f"  created {self.created}")
        if self.legacy:
            lines.append("  legacy model imported from HDF5 (prediction only)")
        return "\n".join(lines)

    def inference_model(self, precision: str = "auto") -> Any:
        """The model with the dtype policy best for this machine (rebuilt and cached if needed)."""
        from .precision import resolve_precision

        policy = resolve_precision(precision)
        if self.legacy:
            return self.model
        current = getattr(getattr(self.model, "dtype_policy", None), "name", "float32")
        first_conv = next((la for la in self.model.layers if la.name.endswith("_conv1")), None)
        if first_conv is not None:
            current = first_conv.dtype_policy.name
        if current == policy:
            return self.model
        if policy not in self._inference_models:
            from .model import build_unet

            rebuilt = build_unet(self.unet, dtype_policy=policy)
            rebuilt.set_weights(self.model.get_weights())
            self._inference_models[policy] = rebuilt
        return self._inference_models[policy]


ModelBundle.model = property(  # type: ignore[assignment]
    ModelBundle._get_model, ModelBundle._set_model, doc="The live ``keras.Model`` (built lazily)."
)


# ---------------------------------------------------------------------------
# saving


def record_path(model_path: str | os.PathLike) -> Path:
    """Path of the JSON record written beside a model file (``MODEL.json``)."""
    return Path(model_path).with_suffix(".json")


def save_bundle(bundle: ModelBundle, path: str | os.PathLike) -> Path:
    """Save a bundle as ``path`` (``.keras``) plus ``path.json``, atomically.

    Parameters
    ----------
    bundle
        The bundle to save. Its ``path`` is updated.
    path
        Target file; ``.keras`` is appended if missing.

    Returns
    -------
    Path
        The path of the ``.keras`` file.

    Raises
    ------
    ModelError
        If the folder does not exist or is not writable. The previous file at
        ``path`` (if any) is untouched on any failure.
    """
    path = Path(path).expanduser()
    if path.suffix != ".keras":
        path = path.with_name(path.name + ".keras")
    if not path.parent.is_dir():
        raise ModelError(
            f"Cannot save the model: folder {path.parent} does not exist; create it first."
        )
    if not os.access(path.parent, os.W_OK):
        raise ModelError(
            f"Cannot save the model: folder {path.parent} is not writable; choose another."
        )
    if not bundle.created:
        bundle.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if not bundle.versions:
        bundle.versions = library_versions()
    record = bundle.record()
    text = json.dumps(record, indent=2, default=_json_default)

    def write(tmp: Path) -> None:
        bundle.model.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(RECORD_NAME, text)

    try:
        with finish_before_interrupt("saving the model"):
            atomic_write(path, write)
            atomic_write(record_path(path), text)
    except OSError as exc:
        raise ModelError(f"Could not save the model to {path}: {exc.strerror or exc}.") from exc
    bundle.path = path
    return path


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------------
# loading


def _read_record(path: Path) -> dict[str, Any] | None:
    """The record inside the archive (else the one beside it); None for a plain Keras model.

    A record that is there but unreadable is reported, never silently ignored: without it
    the model would run with guessed normalisation and give wrong masks.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if RECORD_NAME in archive.namelist():
                record = json.loads(archive.read(RECORD_NAME))
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                return record
    except (zipfile.BadZipFile, OSError, KeyError):
        pass
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ModelError(
            f"{path.name} has a corrupt napari-cytounet record ({RECORD_NAME} inside the "
            f"file: {exc}); re-save the model from the session that trained it, or restore "
            "the file from a backup."
        ) from exc
    beside = record_path(path)
    if beside.is_file():
        try:
            record = json.loads(beside.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{path.name}: its record {beside.name} is corrupt ({exc}); restore it, or "
                "move it away to load the model as a plain Keras model."
            ) from exc
        return record if isinstance(record, dict) else None
    return None


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


def load_bundle(path: str | os.PathLike) -> ModelBundle:
    """Load a model bundle (``.keras``) or a legacy tf.keras HDF5 UNet (``.h5``/``.hdf5``).

    A bioimage.io package (``.zip`` or ``rdf.yaml``) is loaded by
    :func:`~.bioimageio_io.load_bioimageio`.

    Raises
    ------
    ModelError
        Missing, corrupt or truncated file; a model that would run arbitrary
        code on loading; or a model that is not a 2D segmentation network.

    Examples
    --------
    >>> bundle = load_bundle("cells.keras")  # doctest: +SKIP
    >>> bundle.unet.depth  # doctest: +SKIP
    4
    """
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise ModelError(f"load_bundle needs the path of a model file (.keras, .h5), got {path!r}.")
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"No model file at {path}; check the path or train a model first.")
    if path.is_file() and path.suffix.lower() in (".zip", ".yaml", ".yml"):  # bioimage.io
        from .bioimageio_io import load_bioimageio

        return load_bioimageio(path)
    if path.is_dir():
        raise ModelError(f"{path} is a folder; choose a .keras model file.")
    suffix = path.suffix.lower()
    if suffix in LEGACY_SUFFIXES:
        return _load_legacy(path)
    if suffix != ".keras":
        raise ModelError(
            f"{path.name} is not a model file: use a .keras bundle (or a legacy .h5/.hdf5 UNet)."
        )
    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path.name} is corrupt or truncated (not a valid .keras archive); "
            "re-save or re-download it."
        )
    model = _keras_load(path)
    record = _read_record(path)
    if record is None:  # a plain Keras 3 model: accept it, inferring what we can
        unet, fixed = _infer_unet_config(model)
        return ModelBundle(
            model=model,
            unet=unet,
            path=path,
            name=path.stem,
            fixed_input_size=fixed,
            legacy=True,
            normalization=NormalizationConfig(method="percentile"),
        )
    try:
        unet = UNetConfig.from_dict(record["unet"])
        bundle = ModelBundle(
            model=model,
            unet=unet,
            normalization=NormalizationConfig.from_dict(record.get("normalization", {})),
            label_mode=record.get("label_mode", "dense"),
            training=TrainingConfig.from_dict(record["training"])
            if record.get("training")
            else None,
            history=record.get("history", {}),
            data_summary=record.get("data", {}),
            versions=record.get("versions", {}),
            created=record.get("created", ""),
            path=path,
            name=record.get("name") or path.stem,
            legacy=bool(record.get("legacy", False)),
            extra=record.get("extra", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"{path.name} has a damaged napari-cytounet record ({exc}); re-save the model."
        ) from exc
    _check_model_matches(bundle)
    return bundle


def _check_model_matches(bundle: ModelBundle) -> None:
    in_channels = bundle.model.input_shape[-1]
    classes = bundle.model.output_shape[-1]
    if in_channels != bundle.unet.in_channels or classes != bundle.unet.classes:
        raise ModelError(
            f"{bundle.name}: the record says {bundle.unet.in_channels} channel(s) -> "
            f"{bundle.unet.classes} class(es) but the network has {in_channels} -> {classes}; "
            "the file was edited or mixed up. Re-save the model."
        )


def _load_legacy(path: Path) -> ModelBundle:
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            has_config = "model_config" in fh.attrs
    except OSError as exc:
        raise ModelError(f"{path.name} is corrupt or not an HDF5 model file ({exc}).") from exc
    if not has_config:
        raise ModelError(
            f"{path.name} holds weights only (no architecture); load it into the matching "
            "network in Python and save it as .keras, or use a full-model .h5 file."
        )
    model, dropped = _load_tf_keras_h5(path)
    unet, fixed = _infer_unet_config(model)
    extra: dict[str, Any] = {"source_format": "legacy HDF5 (tf.keras)"}
    if dropped:
        extra["ignored_tf_keras_keys"] = dropped
    if fixed is not None:
        extra["fixed_input"] = (
            f"{fixed[0]}x{fixed[1]} input: images are cut into overlapping {fixed[0]}x{fixed[1]} "
            "tiles (fully convolutional over any image size); cytounet resized images to that "
            "size instead"
        )
    return ModelBundle(
        model=model,
        unet=unet,
        normalization=NormalizationConfig(method="scale", scale=255.0),
        label_mode="dense",
        path=path,
        name=path.stem,
        legacy=True,
        fixed_input_size=fixed,
        extra=extra,
    )


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
