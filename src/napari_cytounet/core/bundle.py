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

:class:`ModelBundle` is defined here; saving and loading live in :mod:`.bundle_files`
and the loading of Keras model files in :mod:`.bundle_keras`. This module re-exports
their public names.

Examples
--------
>>> bundle = load_bundle("cells.keras")  # doctest: +SKIP
>>> print(bundle.describe())  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .bundle_files import FORMAT_VERSION, LEGACY_SUFFIXES, RECORD_NAME
from .bundle_keras import _keras_load
from .config import NormalizationConfig, TrainingConfig, UNetConfig

# in the order of the API reference
# isort: off
from .bundle_files import library_versions, record_path, save_bundle, load_bundle

# isort: on

__all__ = [
    "FORMAT_VERSION",
    "LEGACY_SUFFIXES",
    "RECORD_NAME",
    "ModelBundle",
    "library_versions",
    "load_bundle",
    "record_path",
    "save_bundle",
]


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

    def folded_unet(self, precision: str = "auto") -> Any:
        """The fast prediction graph (:class:`.folded_unet.FoldedUNet`) with the current weights.

        Built once per dtype policy and refreshed from the live model on every call
        (a few milliseconds), so prediction after training in place is never stale.
        Not for legacy models (use :meth:`inference_model`).
        """
        from .folded_unet import FoldedUNet
        from .precision import resolve_precision

        policy = resolve_precision(precision)
        key = f"folded:{policy}"
        net = self._inference_models.get(key)
        if net is None:
            net = FoldedUNet(self.unet, policy)
            self._inference_models[key] = net
        net.load(self.model)
        return net

    def inference_model(self, precision: str = "auto") -> Any:
        """The model to predict with: this machine's best dtype policy, BatchNorm folded.

        Models built with BatchNorm are predicted by a copy without it, each BatchNorm
        folded into its convolution (:func:`.model.fold_batch_norm`: the same outputs to
        float rounding, 2.7x faster in ``mixed_bfloat16``). The copy is built once per
        policy and refreshed from the live model's weights on every call, so a model
        trained in place after an earlier prediction is never predicted stale.
        """
        from .precision import resolve_precision

        policy = resolve_precision(precision)
        if self.legacy:
            return self.model
        if self.unet.batch_norm:
            from .model import build_unet, fold_batch_norm

            folded = self._inference_models.get(policy)
            if folded is None:
                folded = build_unet(replace(self.unet, batch_norm=False), dtype_policy=policy)
                self._inference_models[policy] = folded
            fold_batch_norm(self.model, folded)
            return folded
        current = getattr(getattr(self.model, "dtype_policy", None), "name", "float32")
        first_conv = next((la for la in self.model.layers if la.name.endswith("_conv1")), None)
        if first_conv is not None:
            current = first_conv.dtype_policy.name
        if current == policy:
            return self.model
        if policy not in self._inference_models:
            from .model import build_unet

            rebuilt = build_unet(self.unet, dtype_policy=policy)
            self._inference_models[policy] = rebuilt
        self._inference_models[policy].set_weights(self.model.get_weights())
        return self._inference_models[policy]


ModelBundle.model = property(  # type: ignore[assignment]
    ModelBundle._get_model, ModelBundle._set_model, doc="The live ``keras.Model`` (built lazily)."
)
