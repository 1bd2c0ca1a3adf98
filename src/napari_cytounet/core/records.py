"""A model's training record as text, and telling model files and records apart.

Nothing here needs TensorFlow: napari's process and the command line print
records of bundles whose Keras model lives elsewhere (see
:mod:`napari_cytounet.engine`).

Examples
--------
>>> is_model_file("notes.txt")
False
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from .bundle import LEGACY_SUFFIXES, RECORD_NAME

if TYPE_CHECKING:
    from .bundle import ModelBundle


def format_record(bundle: ModelBundle) -> str:
    """The training record of a bundle as text: description, settings, data, history.

    Needs no TensorFlow (the GUI and the CLI print it).

    Examples
    --------
    >>> print(format_record(load_bundle("cells.keras")))  # doctest: +SKIP
    """
    record = bundle.record()
    history = record.pop("history", {}) or {}
    lines = [bundle.describe(), ""]
    extra = record.get("extra") or {}
    if extra.get("seconds") is not None:
        lines.append(
            f"Trained {extra.get('patches', '?')} patches in {extra['seconds']} s "
            f"({extra.get('patches_per_second', '?')} patches/s) on {extra.get('device', '?')} "
            f"with {extra.get('precision', '?')}; stopped: {extra.get('stop_reason', '?')}."
        )
        lines.append("")
    loss = history.get("loss") or []
    if loss:
        lines.append("epoch    loss   Dice  val loss  val Dice")

        def cell(key: str, i: int, width: int) -> str:
            values = history.get(key) or []
            value = values[i] if i < len(values) else None
            if isinstance(value, (int, float)):
                return f"{value:{width}.4f}"
            return " " * (width - 1) + "-"

        for i in range(len(loss)):
            lines.append(
                f"{i + 1:5d} {cell('loss', i, 7)} {cell('dice', i, 6)} "
                f"{cell('val_loss', i, 9)} {cell('val_dice', i, 9)}"
            )
        lines.append("")
    lines.append("Record (also stored inside the .keras file and beside it as .json):")
    lines.append(json.dumps(record, indent=2, default=str))
    return "\n".join(lines)


def is_model_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a model file (a Keras archive or an HDF5 model) that may be replaced.

    Examples
    --------
    >>> is_model_file("notes.txt")
    False
    """
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() in LEGACY_SUFFIXES:
        import h5py

        try:
            with h5py.File(path, "r") as fh:
                return "model_config" in fh.attrs or "model_weights" in fh
        except OSError:
            return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names & {"config.json", RECORD_NAME, "metadata.json"})


def is_record_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a napari-cytounet JSON record (written beside a saved model)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("napari-cytounet")
