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

import os
import re
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
    try:
        import bioimageio.core  # noqa: F401
        import bioimageio.spec  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            f"{what} needs the optional bioimage.io libraries ({exc.name or exc} is missing); "
            f"install them with: {INSTALL_HINT}"
        ) from exc


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
