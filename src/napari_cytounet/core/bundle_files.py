"""Saving and loading model bundles: the ``.keras`` archive with our JSON record inside.

:func:`save_bundle` writes the archive with ``cytounet.json`` (:data:`RECORD_NAME`)
inside it and a copy beside it (:func:`record_path`), atomically; :func:`load_bundle`
reads it back into a :class:`~.bundle.ModelBundle` (or imports a plain Keras 3 model
or a legacy HDF5 UNet). Re-exported by :mod:`napari_cytounet.core.bundle`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bundle_keras import _infer_unet_config, _keras_load, _load_tf_keras_h5
from .config import NormalizationConfig, TrainingConfig, UNetConfig
from .errors import ModelError
from .files import atomic_write, finish_before_interrupt

if TYPE_CHECKING:
    from .bundle import ModelBundle

__all__ = ["library_versions", "load_bundle", "record_path", "save_bundle"]

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
    from .bundle import ModelBundle  # here, not at the top: bundle imports this module

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

    from .bundle import ModelBundle

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
