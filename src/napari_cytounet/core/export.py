"""Export a model bundle as a bioimage.io model package (spec 0.5), for other tools to run.

The package (one ``.bioimageio.zip``) holds the network as ``keras_v3`` weights
(the bundle's own ``.keras`` file, record included) and, when TensorFlow can
write it, a TensorFlow SavedModel converted from them as a second weights entry;
input and output axes ``(batch, y, x, channel)`` whose spatial sizes are
parameterised by the UNet depth (minimum and step ``2**depth``); preprocessing
that reproduces the project's normalisation (``scale_range`` with the stored
percentiles per image and channel, no clipping; or ``scale_linear`` for legacy
``/ 255`` models); test input and output arrays cut from a real image; a cover
image; a README that says how the model was trained; the training record as
attachments; and authors, licence and citations.

Writing, validating and zipping the description is left to ``bioimageio.spec``;
``bioimageio.core.test_model`` runs the package (see :func:`test_package`).

Examples
--------
>>> from napari_cytounet.core.bundle import load_bundle
>>> result = export_bioimageio(load_bundle("cells.keras"), "cells.bioimageio.zip")  # doctest: +SKIP
>>> result.weight_formats  # doctest: +SKIP
('keras_v3', 'tensorflow_saved_model_bundle')
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import string
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bioimageio_io import (
    offline_context,
    require_bioimageio,
    test_package,
    urls_in,
)
from .bundle import ModelBundle, save_bundle
from .data import normalize_image, to_channels_last
from .errors import DataError, ModelError
from .export_docs import PROJECT_URL, readme_text, write_cover, write_history_csv

UNET_DOI = "10.1007/978-3-319-24574-4_28"
UNET_CITATION = (
    "Ronneberger O, Fischer P, Brox T (2015). U-Net: Convolutional Networks for Biomedical "
    "Image Segmentation. MICCAI 2015, LNCS 9351:234-241."
)
PROJECT_CITATION = "napari-cytounet: interactive UNet segmentation of microscopy images in napari."
DEFAULT_AUTHOR = "napari-cytounet user"
DEFAULT_LICENSE = "CC-BY-4.0"
#: Largest side of the test input cut from the sample image.
TEST_SIZE = 256
PACKAGE_SUFFIX = ".bioimageio.zip"
NAME_CHARACTERS = string.ascii_letters + string.digits + "_+- ()"


@dataclass
class ExportOptions:
    """What the user says about the model; every field has a sensible default.

    Attributes
    ----------
    name
        Model name shown on bioimage.io (default: the bundle's name).
    description
        One or two sentences about what the model segments.
    authors
        Names of the people who trained the model.
    license
        SPDX licence identifier (``CC-BY-4.0`` by default, as bioimage.io recommends).
    cite_text, cite_doi, cite_url
        An extra citation (e.g. your paper); the UNet and napari-cytounet are always cited.
    tags
        Extra search tags.
    threshold
        Probability threshold for the masks (stated in the description, used for the cover).
    saved_model
        Also write a TensorFlow SavedModel weights entry converted from the Keras weights.
    """

    name: str | None = None
    description: str | None = None
    authors: list[str] = field(default_factory=lambda: [DEFAULT_AUTHOR])
    license: str = DEFAULT_LICENSE
    cite_text: str | None = None
    cite_doi: str | None = None
    cite_url: str | None = None
    tags: list[str] = field(default_factory=list)
    threshold: float = 0.5
    saved_model: bool = True


@dataclass
class ExportResult:
    """What :func:`export_bioimageio` wrote.

    Attributes
    ----------
    path
        The package (``.bioimageio.zip``).
    weight_formats
        Weight entries in the package, e.g. ``("keras_v3", "tensorflow_saved_model_bundle")``.
    seconds
        Wall time of the export.
    notes
        Anything left out and why (e.g. a SavedModel TensorFlow could not write).
    """

    path: Path
    weight_formats: tuple[str, ...]
    seconds: float
    notes: list[str] = field(default_factory=list)


def package_path(text: str | os.PathLike, overwrite: bool = True) -> Path:
    """Validate the target of an export; ``.bioimageio.zip`` is appended if the name lacks ``.zip``.

    Raises
    ------
    ModelError
        If the name is a folder, its folder is missing or read-only, or the file
        exists and ``overwrite`` is false.

    Examples
    --------
    >>> package_path("/tmp/cells").name
    'cells.bioimageio.zip'
    """
    path = Path(text).expanduser()
    if path.is_dir():
        raise ModelError(f"{path} is a folder; name the package, e.g. {path / 'model'}.zip")
    if path.suffix.lower() != ".zip":
        path = path.with_name(path.name + PACKAGE_SUFFIX)
    if not path.parent.is_dir():
        raise ModelError(f"Cannot export: folder {path.parent} does not exist; create it first.")
    if not os.access(path.parent, os.W_OK):
        raise ModelError(f"Cannot export: folder {path.parent} is not writable; choose another.")
    if path.exists() and not overwrite:
        raise ModelError(
            f"{path} already exists; choose another name or allow replacing it (--overwrite)."
        )
    return path


def default_sample_image() -> np.ndarray:
    """The shipped BBBC030 validation image ``cho01`` (DIC, CHO cells), as uint8 ``(H, W)``."""
    from ..sample_data import sample_paths
    from .io import read_image

    return read_image(sample_paths("cho01")[0])


def test_crop(image: np.ndarray, bundle: ModelBundle, size: int = TEST_SIZE) -> np.ndarray:
    """A centred ``(S, S, C)`` crop of a real image for the test arrays (S a multiple of 2**depth).

    Raises
    ------
    DataError
        If the image is smaller than ``2**depth`` pixels or has the wrong channels.
    """
    plane = to_channels_last(np.asarray(image), bundle.in_channels)
    divisor = bundle.unet.divisor
    if bundle.fixed_input_size is not None:
        side_h, side_w = bundle.fixed_input_size
    else:
        side = min(size, plane.shape[0], plane.shape[1]) // divisor * divisor
        side_h = side_w = side
    minimum = divisor + (2 * halo(bundle) if bundle.fixed_input_size is None else 0)
    if side_h < minimum or side_h > plane.shape[0] or side_w > plane.shape[1]:
        raise DataError(
            f"The sample image {plane.shape[:2]} is too small for this model "
            f"(needs at least {max(minimum, side_h)}x{max(minimum, side_w)} pixels)."
        )
    y0 = (plane.shape[0] - side_h) // 2
    x0 = (plane.shape[1] - side_w) // 2
    return plane[y0 : y0 + side_h, x0 : x0 + side_w]


def halo(bundle: ModelBundle) -> int:
    """Pixels cropped from each side of the package's output (its input is padded by as many).

    A multiple of ``2**depth`` (so padded sizes stay valid) and at least 16: the
    image border is then predicted with mirrored context (as by the project's own
    tiled predictor) instead of the network's zero padding.

    Examples
    --------
    >>> from napari_cytounet.core.config import UNetConfig
    >>> [halo(ModelBundle(None, UNetConfig(depth=d))) for d in (2, 4, 5)]
    [16, 16, 32]
    """
    return max(16, bundle.unet.divisor)


def reference_output(bundle: ModelBundle, crop: np.ndarray, pad: int = 0) -> np.ndarray:
    """The network's float32 output ``(1, H, W, classes)`` for a raw ``(H, W, C)`` crop.

    With ``pad=0``: the crop normalised as in training and predicted in one
    piece, which is how bioimageio.core's ``test_model`` reproduces the test
    output (no padding, no cropping). With ``pad=halo(bundle)``: what a
    bioimage.io runner predicts with the package (the crop padded symmetrically
    by the halo, normalised with the padded image's percentiles, predicted, the
    halo cropped away).
    """
    padded = np.pad(crop, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric") if pad else crop
    x = normalize_image(padded, bundle.normalization, bundle.in_channels)[None]
    model = bundle.inference_model("float32")
    out = np.asarray(model(x, training=False), dtype=np.float32)
    return out[:, pad : out.shape[1] - pad, pad : out.shape[2] - pad]


def _axes(bundle: ModelBundle) -> tuple[list[Any], list[Any]]:
    from bioimageio.spec.model import v0_5

    divisor = bundle.unet.divisor
    fixed = bundle.fixed_input_size

    def space(axis: str, i: int) -> Any:
        minimum = 2 * halo(bundle) + divisor  # the output halo is cropped from both sides
        size = fixed[i] if fixed is not None else v0_5.ParameterizedSize(min=minimum, step=divisor)
        return v0_5.SpaceInputAxis(id=v0_5.AxisId(axis), size=size)

    channels = [v0_5.Identifier(f"channel{c}") for c in range(bundle.in_channels)]
    if bundle.in_channels == 1:
        channels = [v0_5.Identifier("raw")]
    inputs = [
        v0_5.BatchAxis(),
        space("y", 0),
        space("x", 1),
        v0_5.ChannelAxis(channel_names=channels),
    ]
    classes = (
        [v0_5.Identifier("foreground")]
        if bundle.classes == 1
        else [v0_5.Identifier(f"class{c}") for c in range(bundle.classes)]
    )
    ref = v0_5.TensorId("raw")

    def space_out(axis: str) -> Any:
        size = v0_5.SizeReference(tensor_id=ref, axis_id=v0_5.AxisId(axis))
        if fixed is not None:
            return v0_5.SpaceOutputAxis(id=v0_5.AxisId(axis), size=size)
        return v0_5.SpaceOutputAxisWithHalo(id=v0_5.AxisId(axis), size=size, halo=halo(bundle))

    outputs = [
        v0_5.BatchAxis(),
        space_out("y"),
        space_out("x"),
        v0_5.ChannelAxis(channel_names=classes),
    ]
    return inputs, outputs


def _preprocessing(bundle: ModelBundle) -> list[Any]:
    from bioimageio.spec.model import v0_5

    norm = bundle.normalization
    if norm.method == "percentile":
        kwargs = v0_5.ScaleRangeKwargs(
            axes=(v0_5.AxisId("y"), v0_5.AxisId("x")),
            min_percentile=float(norm.low),
            max_percentile=float(norm.high),
        )
        return [v0_5.ScaleRangeDescr(kwargs=kwargs)]
    return [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=1.0 / norm.scale))]


def _tensors(bundle: ModelBundle, crop: np.ndarray, ref: np.ndarray, work: Path) -> tuple:
    from bioimageio.spec.model import v0_5

    inputs_axes, output_axes = _axes(bundle)
    np.save(work / "test_input.npy", crop[None].astype(np.float32))
    np.save(work / "test_output.npy", ref)
    inp = v0_5.InputTensorDescr(
        id=v0_5.TensorId("raw"),
        description="raw image (any intensity range; normalised by the preprocessing)",
        axes=inputs_axes,
        test_tensor=v0_5.FileDescr(source=work / "test_input.npy"),
        data=v0_5.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=_preprocessing(bundle),
    )
    out = v0_5.OutputTensorDescr(
        id=v0_5.TensorId("probabilities"),
        description="per-pixel probabilities"
        + (" of foreground (sigmoid)" if bundle.classes == 1 else " of each class (softmax)"),
        axes=output_axes,
        test_tensor=v0_5.FileDescr(source=work / "test_output.npy"),
        data=v0_5.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )
    return inp, out


def _saved_model(bundle: ModelBundle, work: Path) -> Path:
    """Convert the Keras model to a zipped TensorFlow SavedModel.

    Its ``serve`` endpoint (also the default serving signature) returns a dict
    ``{"probabilities": tensor}``, the output form bioimageio.core's TensorFlow 2
    runner and deepImageJ read.
    """
    import shutil

    import keras
    import tensorflow as tf

    model = bundle.inference_model("float32")
    folder = work / "tf_saved_model"
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec([None, None, None, bundle.in_channels], tf.float32, name="raw")
    archive.add_endpoint(
        name="serve",
        fn=lambda raw: {"probabilities": model(raw, training=False)},
        input_signature=[spec],
    )
    with contextlib.redirect_stdout(io.StringIO()):
        archive.write_out(str(folder), verbose=False)
    zipped = shutil.make_archive(str(work / "tf_saved_model_bundle"), "zip", folder)
    shutil.rmtree(folder, ignore_errors=True)
    return Path(zipped)


def _weights(bundle: ModelBundle, options: ExportOptions, work: Path, notes: list[str]) -> Any:
    import keras
    import tensorflow as tf
    from bioimageio.spec.model import v0_5

    copy = dataclasses.replace(bundle, path=None)
    keras_file = save_bundle(copy, work / "weights.keras")
    record = keras_file.with_suffix(".json")
    record.rename(work / "training_record.json")
    keras_v3 = v0_5.KerasV3WeightsDescr(
        source=keras_file,
        keras_version=v0_5.Version(keras.__version__),
        backend=("tensorflow", v0_5.Version(tf.__version__)),
        comment="napari-cytounet model bundle (.keras with its record cytounet.json inside)",
    )
    saved = None
    if options.saved_model:
        try:
            saved = v0_5.TensorflowSavedModelBundleWeightsDescr(
                source=_saved_model(bundle, work),
                parent="keras_v3",
                tensorflow_version=v0_5.Version(tf.__version__),
                comment="converted from the keras_v3 weights with keras.Model.export",
            )
        except Exception as exc:  # a conversion failure must not lose the main export
            notes.append(f"TensorFlow SavedModel left out ({type(exc).__name__}: {exc}).")
    return v0_5.WeightsDescr(keras_v3=keras_v3, tensorflow_saved_model_bundle=saved)


def _citations(options: ExportOptions) -> list[Any]:
    from bioimageio.spec.model import v0_5

    cite = [
        v0_5.CiteEntry(text=UNET_CITATION, doi=v0_5.Doi(UNET_DOI)),
        v0_5.CiteEntry(text=PROJECT_CITATION, url=PROJECT_URL),
    ]
    if options.cite_text or options.cite_doi or options.cite_url:
        if not (options.cite_doi or options.cite_url):
            raise ModelError("A citation needs a DOI or a URL as well as its text.")
        cite.append(
            v0_5.CiteEntry(
                text=options.cite_text or "Please cite",
                doi=v0_5.Doi(options.cite_doi) if options.cite_doi else None,
                url=options.cite_url or None,
            )
        )
    return cite


def _describe(
    bundle: ModelBundle, options: ExportOptions, work: Path, tensors: tuple, notes: list[str]
) -> Any:
    from bioimageio.spec.model import v0_5

    from .._version import __version__

    weights = _weights(bundle, options, work, notes)
    formats = [name for name, entry in weights if entry is not None]
    (work / "README.md").write_text(readme_text(bundle, options, formats))
    attachments = [v0_5.FileDescr(source=work / "training_record.json")]
    csv = write_history_csv(bundle, work / "training_history.csv")
    if csv is not None:
        attachments.append(v0_5.FileDescr(source=csv))
    tags = ["unet", "segmentation", "2d", "keras", "napari-cytounet", *options.tags]
    return v0_5.ModelDescr(
        name=options.name,
        description=options.description,
        authors=[v0_5.Author(name=a) for a in options.authors],
        cite=_citations(options),
        license=v0_5.LicenseId(options.license),
        documentation=v0_5.FileDescr(source=work / "README.md"),
        covers=[v0_5.FileDescr(source=work / "cover.png")],
        tags=list(dict.fromkeys(tags)),
        git_repo=PROJECT_URL,
        inputs=[tensors[0]],
        outputs=[tensors[1]],
        weights=weights,
        attachments=attachments,
        config={"napari_cytounet": {"version": __version__, "record": "training_record.json"}},
    )


def _check_name(name: str | None, bundle: ModelBundle) -> str:
    """The user's name if valid on bioimage.io (else refused), or one made from the bundle's."""
    if name is not None and name.strip():
        name = name.strip()
        bad = sorted(set(name) - set(NAME_CHARACTERS))
        if bad or not 5 <= len(name) <= 128:
            raise ModelError(
                f"Model name {name!r} is not valid on bioimage.io: use 5-128 letters, digits, "
                "spaces, '_', '-', '+' or parentheses"
                + (f" (not {''.join(bad)!r})." if bad else ".")
            )
        return name
    base = "".join(c if c in NAME_CHARACTERS else " " for c in (bundle.name or "")).strip()
    base = " ".join(base.split())[:100] or "cytounet"
    return base if len(base) >= 5 else f"{base} UNet"


def _check_options(bundle: ModelBundle, options: ExportOptions) -> ExportOptions:
    name = _check_name(options.name, bundle)
    authors = [a.strip() for a in options.authors if a and a.strip()] or [DEFAULT_AUTHOR]
    if not 0.0 < float(options.threshold) < 1.0:
        raise ModelError(f"threshold must be between 0 and 1, got {options.threshold!r}.")
    description = (options.description or "").strip() or (
        f"UNet segmentation of {'cells' if bundle.classes == 1 else f'{bundle.classes} classes'}"
        " in 2D microscopy images, trained with napari-cytounet."
    )
    return dataclasses.replace(options, name=name, authors=authors, description=description)


def export_bioimageio(
    bundle: ModelBundle,
    path: str | os.PathLike,
    options: ExportOptions | None = None,
    *,
    sample_image: np.ndarray | None = None,
    overwrite: bool = True,
) -> ExportResult:
    """Write ``bundle`` as a bioimage.io model package (``.bioimageio.zip``), atomically.

    Parameters
    ----------
    bundle
        The model to export (a ``.keras`` bundle or an imported legacy model).
    path
        Target ``.zip`` file (``.bioimageio.zip`` is appended when the name lacks ``.zip``);
        an existing file is replaced only when the new package is complete.
    options
        Name, authors, licence, citation, threshold... (defaults: :class:`ExportOptions`).
    sample_image
        A real image like the training images, for the test arrays and the cover
        (default: the shipped BBBC030 image ``cho01``, for one-channel models).
    overwrite
        Replace an existing package (only once the new one is complete).

    Returns
    -------
    ExportResult
        The package path, its weight formats, the time taken and any notes.

    Raises
    ------
    MissingExtraError
        If ``bioimageio.spec``/``bioimageio.core`` are not installed.
    ModelError, DataError
        Bad target, options or sample image; nothing is written then.

    Examples
    --------
    >>> options = ExportOptions(authors=["A. Biologist"])
    >>> export_bioimageio(bundle, "cells.zip", options)  # doctest: +SKIP
    """
    require_bioimageio("Exporting to bioimage.io")
    import bioimageio.spec

    t0 = time.perf_counter()
    if not isinstance(bundle, ModelBundle) or getattr(bundle, "model", None) is None:
        if getattr(bundle, "descr", None) is not None:  # run by bioimageio.core
            raise ModelError(
                f"{bundle.name!r} was loaded from a bioimage.io package made elsewhere; share "
                "that package itself (it cannot be exported again from here)."
            )
        raise ModelError("Nothing to export: load or train a napari-cytounet model first.")
    target = package_path(path, overwrite)
    options = _check_options(bundle, options or ExportOptions())
    if sample_image is None:
        if bundle.in_channels != 1:
            raise DataError(
                f"The model expects {bundle.in_channels} channels: give a sample image like its "
                "training images for the test data and the cover."
            )
        sample_image = default_sample_image()
    crop = test_crop(sample_image, bundle)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cytounet-export-") as tmp:
        work = Path(tmp)
        ref = reference_output(bundle, crop)
        pad = halo(bundle) if bundle.fixed_input_size is None else 0
        write_cover(
            crop, reference_output(bundle, crop, pad), options.threshold, work / "cover.png"
        )
        with offline_context(work, {PROJECT_URL, *urls_in(options.cite_url or "")}):
            tensors = _tensors(bundle, crop, ref, work)
            descr = _describe(bundle, options, work, tensors, notes)
            partial = target.with_name(f".{target.name}.partial.zip")
            try:
                with warnings.catch_warnings():  # spec's notes on re-reading file entries
                    warnings.simplefilter("ignore", UserWarning)
                    bioimageio.spec.save_bioimageio_package(descr, output_path=partial)
                os.replace(partial, target)
            finally:
                with contextlib.suppress(OSError):
                    partial.unlink()
    formats = tuple(name for name, entry in descr.weights if entry is not None)
    return ExportResult(target, formats, time.perf_counter() - t0, notes)


__all__ = [
    "ExportOptions",
    "ExportResult",
    "default_sample_image",
    "export_bioimageio",
    "halo",
    "package_path",
    "reference_output",
    "test_crop",
    "test_package",
]
