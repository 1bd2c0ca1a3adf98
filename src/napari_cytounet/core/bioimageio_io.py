"""Shared helpers for bioimage.io model packages: the optional libraries and offline validation.

bioimage.io packages are written and read with the ``bioimageio.spec`` and
``bioimageio.core`` libraries (the ``napari-cytounet[bioimageio]`` extra). This
module imports them on demand with a clear message when they are missing, and
builds the validation context that lets them work without a network: only the
checks that would contact the internet (HEAD requests to the URLs written in a
description, such as citation links) are switched off, by listing those URLs as
known files; local files are still checked, hashes included.

Examples
--------
>>> is_bioimageio_source("cells.bioimageio.zip"), is_bioimageio_source("cells.keras")
(True, False)
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .errors import ModelError

#: How to install the optional libraries (shown in every "missing extra" message).
INSTALL_HINT = "pip install 'napari-cytounet[bioimageio]'"
#: File names of a bioimage.io description inside a package or folder.
DESCRIPTION_NAMES = ("rdf.yaml", "bioimageio.yaml")
_URL = re.compile(r"https?://[^\s'\"<>]+")


class MissingExtraError(ModelError):
    """The optional bioimage.io libraries are not installed."""


def require_bioimageio(what: str = "bioimage.io export and import") -> None:
    """Raise :class:`MissingExtraError` unless ``bioimageio.core`` and ``bioimageio.spec`` import.

    Examples
    --------
    >>> require_bioimageio()  # doctest: +SKIP
    """
    import importlib

    try:
        importlib.import_module("bioimageio.spec")
        importlib.import_module("bioimageio.core")
    except ImportError as exc:
        raise MissingExtraError(
            f"{what} needs the optional bioimage.io libraries ({exc.name or exc} is missing); "
            f"install them with: {INSTALL_HINT}"
        ) from exc
    keep_tensorflow_backend()


def keep_tensorflow_backend() -> None:
    """Make bioimageio.core run Keras on TensorFlow and leave ``KERAS_BACKEND`` as the core set it.

    bioimageio.core reads ``KERAS_BACKEND`` once, when it is first imported (its default is
    "torch"), and writes that value into ``os.environ`` when its Keras backend loads. Imported
    before this package, it would turn every process started afterwards (the engine, Dask
    workers, ``cytounet`` subprocesses) into a Keras-on-PyTorch process that fails without torch.
    """
    os.environ["KERAS_BACKEND"] = "tensorflow"
    try:
        from bioimageio.core._settings import settings
    except ImportError:  # a release without that module reads the environment only
        return
    with contextlib.suppress(AttributeError, ValueError, TypeError):  # frozen or renamed
        settings.keras_backend = "tensorflow"


def is_bioimageio_source(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a bioimage.io package (``.zip``) or description (``rdf.yaml``).

    Only the name is looked at; a ``.keras`` or ``.h5`` model is not one.
    """
    name = Path(path).name.lower()
    return name.endswith(".zip") or name.endswith((".yaml", ".yml"))


def urls_in(value: Any) -> set[str]:
    """All http(s) URLs in a nested structure of dicts, lists and strings (a description).

    Examples
    --------
    >>> sorted(urls_in({"cite": [{"url": "https://example.org/a"}], "x": ["see http://b.io"]}))
    ['http://b.io', 'https://example.org/a']
    """
    found: set[str] = set()
    if isinstance(value, str):
        found.update(m.rstrip(".,;)") for m in _URL.findall(value))
    elif isinstance(value, dict):
        for item in value.values():
            found |= urls_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= urls_in(item)
    return found


def offline_context(root: Path | Any, urls: set[str] | None = None, **kwargs: Any) -> Any:
    """A bioimageio validation context that checks local files but contacts no server.

    Parameters
    ----------
    root
        Folder (or open zip file) that relative file names are resolved against.
    urls
        The URLs in the description; they are recorded as known files, which is
        bioimageio.spec's documented way of skipping their download/HEAD check.
    **kwargs
        Further :class:`bioimageio.spec.ValidationContext` fields.
    """
    from bioimageio.spec import ValidationContext

    known = dict.fromkeys(sorted(urls or ()))
    return ValidationContext(
        root=root,
        perform_io_checks=True,
        known_files=known,
        log_warnings=False,
        progressbar=False,
        **kwargs,
    )


def read_description_text(path: Path) -> tuple[str, str]:
    """The YAML text of a package's description and its name inside the zip (or folder).

    Raises
    ------
    ModelError
        If the zip is corrupt or holds no ``rdf.yaml``/``bioimageio.yaml``.
    """
    import zipfile

    if path.suffix.lower() == ".zip":
        if not zipfile.is_zipfile(path):
            raise ModelError(
                f"{path.name} is corrupt or truncated (not a valid zip archive); "
                "download or export the bioimage.io package again."
            )
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                for candidate in DESCRIPTION_NAMES:
                    if candidate in names:
                        return archive.read(candidate).decode("utf-8"), candidate
        except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path.name} is corrupt ({exc}); download it again.") from exc
        raise ModelError(
            f"{path.name} is not a bioimage.io package: it holds no rdf.yaml or "
            "bioimageio.yaml. Choose a .bioimageio.zip model package."
        )
    try:
        return path.read_text(encoding="utf-8"), path.name
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"Cannot read {path}: {exc}.") from exc


def load_package_description(path: str | os.PathLike) -> Any:
    """Load and validate a package's description offline (see :func:`offline_context`).

    Local files are checked (existence and SHA-256); the URLs written in the
    description are recorded as known files, so no server is contacted.

    Raises
    ------
    ModelError
        If the package is corrupt or its description is invalid (the first errors are quoted).
    """
    require_bioimageio("Reading a bioimage.io package")
    from bioimageio.spec import InvalidDescr, load_description

    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"No bioimage.io package at {path}; check the path.")
    text, _ = read_description_text(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        descr = load_description(  # older formats (0.4) are converted to the current one
            path,
            format_version="latest",
            perform_io_checks=True,
            known_files=dict.fromkeys(urls_in(text)),
        )
    if isinstance(descr, InvalidDescr):
        errors = descr.validation_summary.errors
        detail = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors[:3])
        raise ModelError(f"{path.name} is not a valid bioimage.io description ({detail}).")
    return descr


@contextlib.contextmanager
def _working_dir(path: str | os.PathLike) -> Any:
    """Run the block in ``path`` (``contextlib.chdir`` of Python 3.11)."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def test_package(path: str | os.PathLike, weight_format: str | None = None) -> Any:
    """Run ``bioimageio.core.test_model`` on a package, offline; returns its validation summary.

    The summary's ``status`` is ``"passed"`` when the package reproduces its test
    outputs with every weights format (or ``weight_format`` only). The test runs
    in a temporary working folder: bioimageio.core unpacks TensorFlow weights
    into the current folder.

    Examples
    --------
    >>> test_package("cells.bioimageio.zip").status  # doctest: +SKIP
    'passed'
    """
    from bioimageio.core import test_model

    descr = load_package_description(Path(path).expanduser().resolve())
    with (
        tempfile.TemporaryDirectory(prefix="cytounet-test-model-") as tmp,
        _working_dir(tmp),
        _environment_kept(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)
        return test_model(descr, weight_format=weight_format)


@contextlib.contextmanager
def _environment_kept():
    """Undo what ``test_model`` writes into ``os.environ`` for the processes started later.

    It sets ``TF_ENABLE_ONEDNN_OPTS=0`` (and bioimageio.core may set ``KERAS_BACKEND``):
    this process's TensorFlow has read its settings already, but Dask workers and the
    engine started afterwards would compute with other kernels than this process.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        for name, value in saved.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


# ---------------------------------------------------------------------------
# import

#: Weight formats napari-cytounet runs (through Keras/TensorFlow).
SUPPORTED_WEIGHTS = ("keras_v3", "keras_hdf5")


def _weights_file(descr: Any, fmt: str, folder: Path) -> Path:
    """Copy a weights entry out of the package into ``folder``; return the file."""
    import shutil

    entry = getattr(descr.weights, fmt)
    try:
        reader = entry.get_reader()
        target = folder / (reader.original_file_name or f"weights.{fmt}")
        with target.open("wb") as fh:
            shutil.copyfileobj(reader, fh)
    except Exception as exc:
        raise ModelError(
            f"Cannot read the {fmt} weights of {descr.name!r} ({type(exc).__name__}: {exc}); "
            "if they are a download link, fetch the complete .zip package instead."
        ) from exc
    return target


def _is_ours(descr: Any) -> bool:
    config = descr.config
    extra = getattr(config, "model_extra", None) or {}
    if isinstance(config, dict):
        extra = config
    return "napari_cytounet" in extra and getattr(descr.weights, "keras_v3", None) is not None


def _space_and_channel(tensor: Any, what: str, name: str) -> tuple[list[Any], Any]:
    """The spatial axes and the channel axis (or None) of a 0.5 tensor; refuses 3D/time/index."""
    space = [a for a in tensor.axes if a.type == "space"]
    channel = next((a for a in tensor.axes if a.type == "channel"), None)
    others = [a.type for a in tensor.axes if a.type not in ("batch", "space", "channel")]
    if len(space) != 2 or others:
        axes = ", ".join(str(a.id) for a in tensor.axes)
        raise ModelError(
            f"{name}: its {what} has axes ({axes}); napari-cytounet runs bioimage.io models "
            "with a 2D image input (batch, y, x and optionally channel) only."
        )
    return space, channel


def _check_supported(descr: Any, name: str) -> str:
    """The weight format to use; :class:`ModelError` for packages we cannot run."""
    if descr.type != "model":
        raise ModelError(f"{name} describes a {descr.type}, not a model.")
    if not str(descr.format_version).startswith("0.5"):
        raise ModelError(
            f"{name} uses bioimage.io model format {descr.format_version}, which could not be "
            "converted to format 0.5; napari-cytounet reads format 0.5 (and 0.4) packages."
        )
    present = [fmt for fmt, entry in descr.weights if entry is not None]
    usable = [fmt for fmt in SUPPORTED_WEIGHTS if fmt in present]
    if not usable:
        raise ModelError(
            f"{name} has {', '.join(present) or 'no'} weights; napari-cytounet runs bioimage.io "
            f"models with {' or '.join(SUPPORTED_WEIGHTS)} weights (Keras/TensorFlow). Run this "
            "one with bioimageio.core or a tool that supports its format."
        )
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise ModelError(
            f"{name} has {len(descr.inputs)} inputs and {len(descr.outputs)} outputs; "
            "napari-cytounet runs models with one image input and one output."
        )
    _space_and_channel(descr.inputs[0], "input", name)
    _space_and_channel(descr.outputs[0], "output", name)
    return usable[0]


def load_bioimageio(path: str | os.PathLike, *, runner: str = "auto") -> Any:
    """Load a bioimage.io model package (``.zip``) or description (``rdf.yaml``) for prediction.

    Parameters
    ----------
    path
        The package or its ``rdf.yaml``.
    runner
        ``"auto"``: a package exported by napari-cytounet becomes the original
        :class:`~.bundle.ModelBundle` (same masks as the ``.keras``); any other
        Keras package runs through bioimageio.core's pipeline with its own pre-
        and post-processing. ``"bioimageio"`` uses that pipeline for our own
        packages too.

    Returns
    -------
    ModelBundle
        A bundle for :func:`~.predict.predict_probabilities` and the widgets.

    Raises
    ------
    MissingExtraError
        Without the ``napari-cytounet[bioimageio]`` extra.
    ModelError
        Corrupt packages, and packages that are not 2D Keras models (the message
        says what is supported).

    Examples
    --------
    >>> bundle = load_bioimageio("cells.bioimageio.zip")  # doctest: +SKIP
    """
    import tempfile

    from .bundle import load_bundle

    if runner not in ("auto", "bioimageio"):
        raise ModelError(f"runner must be 'auto' or 'bioimageio', got {runner!r}.")
    require_bioimageio("Loading a bioimage.io model package")
    path = Path(path).expanduser()
    descr = load_package_description(path)
    fmt = _check_supported(descr, path.name)
    if runner == "auto" and _is_ours(descr):
        with tempfile.TemporaryDirectory(prefix="cytounet-import-") as tmp:
            bundle = load_bundle(_weights_file(descr, "keras_v3", Path(tmp)))
        bundle.path = path
        bundle.extra = {**bundle.extra, "bioimageio_package": str(path)}
        return bundle
    from .bioimageio_run import BioimageioBundle

    return BioimageioBundle.from_description(descr, path, fmt)
