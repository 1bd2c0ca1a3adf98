"""Run a foreign bioimage.io Keras model through bioimageio.core's prediction pipeline.

A :class:`BioimageioBundle` is a :class:`~.bundle.ModelBundle` whose prediction
is done by ``bioimageio.core`` with the package's own pre- and post-processing
(its normalisation, not ours). :func:`~.predict.iter_probabilities` hands such a
bundle's images to :meth:`BioimageioBundle.iter_probabilities`, so the CLI, the
widgets and the Python API predict with it like with any model. Each 2D plane is
padded (reflect) to the nearest size the model accepts, predicted in one piece
and cropped back. Such a model is for prediction only (it cannot be fine-tuned).

Examples
--------
>>> from napari_cytounet.core.bioimageio_io import load_bioimageio
>>> bundle = load_bioimageio("other-model.zip")  # doctest: +SKIP
>>> prob = predict_probabilities(bundle, image)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import ModelBundle
from .config import NormalizationConfig, UNetConfig
from .data import to_channels_last
from .errors import DataError, ModelError
from .events import PredictionProgress


def _axis_size(axis: Any) -> tuple[int, int]:
    """``(minimum, step)`` of a space axis; step 0 for a fixed size."""
    size = axis.size
    if isinstance(size, int):
        return size, 0
    if hasattr(size, "step"):
        return int(size.min), int(size.step)
    raise ModelError(
        f"Input axis {axis.id} has a size given by another tensor or the data ({size}); "
        "napari-cytounet runs models whose input sizes are fixed or parameterised."
    )


def valid_size(needed: int, minimum: int, step: int) -> int:
    """The smallest size ``minimum + n * step`` (``n >= 0``) that holds ``needed`` pixels.

    Examples
    --------
    >>> valid_size(100, 16, 16), valid_size(10, 16, 16), valid_size(64, 64, 0)
    (112, 16, 64)
    """
    if step == 0:
        return minimum
    return minimum + max(0, math.ceil((needed - minimum) / step)) * step


def _arrange(plane: np.ndarray, axes: Any) -> np.ndarray:
    """A ``(H, W, C)`` plane in the order of a model's input axes (batch of one)."""
    order = []
    space_seen = 0
    for axis in axes:
        if axis.type == "batch":
            continue
        if axis.type == "space":
            order.append(space_seen)
            space_seen += 1
        else:
            order.append(2)
    arranged = plane if 2 in order else plane[..., 0]
    perm = order if 2 in order else [o for o in order if o != 2]
    arranged = np.transpose(arranged, perm)
    for i, axis in enumerate(axes):
        if axis.type == "batch":
            arranged = np.expand_dims(arranged, i)
    return arranged


@dataclass
class BioimageioBundle(ModelBundle):
    """A bioimage.io model (Keras weights, 2D input) run by bioimageio.core; prediction only.

    Attributes
    ----------
    descr
        The bioimage.io model description.
    weight_format
        ``"keras_v3"`` or ``"keras_hdf5"``.
    """

    descr: Any = None
    weight_format: str = "keras_v3"
    _pipeline: Any = field(default=None, repr=False)

    @classmethod
    def from_description(cls, descr: Any, path: Path, fmt: str) -> BioimageioBundle:
        """Wrap a validated 0.5 model description (see :func:`~.bioimageio_io.load_bioimageio`)."""
        inp, out = descr.inputs[0], descr.outputs[0]
        space = [a for a in inp.axes if a.type == "space"]
        sizes = [_axis_size(a) for a in space]
        in_ch = next((len(a.channel_names) for a in inp.axes if a.type == "channel"), 1)
        classes = next((len(a.channel_names) for a in out.axes if a.type == "channel"), 1)
        step = max(s for _, s in sizes) or max(m for m, _ in sizes)
        depth = min(5, max(2, round(math.log2(max(step, 4)))))
        return cls(
            model=None,
            unet=UNetConfig(depth=depth, in_channels=in_ch, classes=classes),
            normalization=NormalizationConfig(),
            path=path,
            name=str(descr.name),
            legacy=True,
            fixed_input_size=None,  # its own sizes come from the description
            descr=descr,
            weight_format=fmt,
            extra={"bioimageio_package": str(path), "weights": fmt},
        )

    def __reduce__(self) -> tuple:
        """Pickle by path: the package is loaded again (e.g. in a worker process)."""
        return (load_external, (str(self.path),))

    def describe(self) -> str:
        """What the package is and how it is run."""
        inp, out = self.descr.inputs[0], self.descr.outputs[0]
        pre = ", ".join(p.id for p in inp.preprocessing if p.id != "ensure_dtype") or "none"
        post = ", ".join(p.id for p in out.postprocessing if p.id != "ensure_dtype") or "none"
        axes = ", ".join(str(a.id) for a in inp.axes)
        return "\n".join(
            [
                f"bioimage.io model {self.name!r}" + (f" ({self.path})" if self.path else ""),
                f"  {self.weight_format} weights run by bioimageio.core; input axes ({axes}), "
                f"{self.in_channels} channel(s) -> {self.classes} output channel(s)",
                f"  preprocessing: {pre}; postprocessing: {post}",
                "  prediction only (cannot be fine-tuned here)",
            ]
        )

    def pipeline(self) -> Any:
        """bioimageio.core's prediction pipeline for the package (created once)."""
        if self._pipeline is None:
            from bioimageio.core import create_prediction_pipeline

            try:
                self._pipeline = create_prediction_pipeline(
                    self.descr, weights_format=self.weight_format
                )
            except Exception as exc:
                raise ModelError(
                    f"bioimageio.core could not load {self.name!r} "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})."
                ) from exc
        return self._pipeline

    def predict_plane(self, plane: np.ndarray) -> np.ndarray:
        """Probabilities ``(H, W, classes)`` of one raw ``(H, W, C)`` plane."""
        from bioimageio.core.digest_spec import create_sample_for_model

        inp, out = self.descr.inputs[0], self.descr.outputs[0]
        h, w = plane.shape[:2]
        space = [a for a in inp.axes if a.type == "space"]
        target = [valid_size(n, *_axis_size(a)) for n, a in zip((h, w), space)]
        if target[0] < h or target[1] < w:
            raise DataError(
                f"{self.name!r} takes images of exactly {target[0]}x{target[1]} pixels; this "
                f"one is {h}x{w}. Crop it into pieces of that size."
            )
        pad = ((0, target[0] - h), (0, target[1] - w), (0, 0))
        mode = "reflect" if min(h, w) > max(pad[0][1], pad[1][1]) else "symmetric"
        padded = np.pad(plane.astype(np.float32), pad, mode=mode)
        sample = create_sample_for_model(self.descr, inputs=_arrange(padded, inp.axes))
        pipeline = self.pipeline()
        with contextlib.redirect_stdout(io.StringIO()):  # Keras' per-call progress bar
            result = pipeline.predict_sample_without_blocking(sample)
        data = result.members[out.id].data
        dims = [str(a.id) for a in out.axes]
        spatial = [str(a.id) for a in out.axes if a.type == "space"]
        channel = [str(a.id) for a in out.axes if a.type == "channel"]
        batch = [d for d in dims if d not in spatial + channel]
        array = np.asarray(data.isel({d: 0 for d in batch}).transpose(*spatial, *channel))
        if array.ndim == 2:
            array = array[..., None]
        if tuple(array.shape[:2]) != tuple(target):
            raise ModelError(
                f"{self.name!r} returns {array.shape[:2]} pixels for a {target[0]}x{target[1]} "
                "input; napari-cytounet runs models whose output has the input's size."
            )
        return array[:h, :w].astype(np.float32)

    def iter_probabilities(
        self, image: Any, *, channel_axis: int | None = None, **_: Any
    ) -> Iterator[PredictionProgress | np.ndarray]:
        """Like :func:`~.predict.iter_probabilities`: progress per plane, then the array.

        Tiling options of the project's predictor do not apply (ignored).
        """
        image = image if hasattr(image, "shape") else np.asarray(image)
        if channel_axis is not None:
            image = np.moveaxis(np.asarray(image), channel_axis % image.ndim, -1)
        spatial = 3 if (channel_axis is not None or self.in_channels > 1) else 2
        if image.ndim < spatial:
            raise DataError(f"Expected an image with 2 spatial axes, got {tuple(image.shape)}.")
        lead = tuple(image.shape[: image.ndim - spatial])
        h, w = image.shape[image.ndim - spatial : image.ndim - spatial + 2]
        planes = int(np.prod(lead)) if lead else 1
        shape = (*lead, h, w) + ((self.classes,) if self.classes > 1 else ())
        result = np.empty(shape, np.float32)
        yield PredictionProgress(done=0, total=planes, plane=0, planes=planes)
        for p, index in enumerate(np.ndindex(*lead) if lead else [()]):
            plane = to_channels_last(np.asarray(image[index]), self.in_channels)
            if np.issubdtype(plane.dtype, np.floating) and not np.isfinite(plane).all():
                raise DataError(f"Plane {index or 0} contains NaN or infinite values.")
            prob = self.predict_plane(plane)
            result[index] = prob[..., 0] if self.classes == 1 else prob
            yield PredictionProgress(done=p + 1, total=planes, plane=p + 1, planes=planes)
        yield result


def load_external(path: str | Path) -> BioimageioBundle:
    """Load a package to run through bioimageio.core (what unpickling a bundle calls).

    Examples
    --------
    >>> bundle = load_external("other-model.zip")  # doctest: +SKIP
    """
    from .bioimageio_io import load_bioimageio

    return load_bioimageio(path, runner="bioimageio")


def is_external(bundle: Any) -> bool:
    """Whether ``bundle`` predicts through bioimageio.core (not the project's tiled predictor)."""
    return isinstance(bundle, BioimageioBundle)
