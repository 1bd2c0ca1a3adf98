"""Where the tests find the BBBC030 data set (real DIC images of CHO cells with masks).

The full set (20 training and 20 validation images with ``masks/`` and the
original outline-only ``outlines/``) lives outside the repository, by default
in ``../shared/data/bbbc030`` beside it; ``CYTOUNET_BBBC030`` points elsewhere.
Tests that need all of it are skipped without it. Tests that only need a few
images fall back to the sample shipped in the package (cho21-cho24, cho01 with
their masks), whose outline-only labels are drawn from the masks the way the
original ones are: a thin line along each cell's border.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def full_bbbc030() -> Path | None:
    """The folder of the full BBBC030 set, or ``None`` if it is not on this machine.

    ``CYTOUNET_BBBC030``, when set, is the only place looked at (set it to ``none``
    to run the tests as on a machine without the data).
    """
    env = os.environ.get("CYTOUNET_BBBC030")
    candidate = Path(env) if env else ROOT.parent / "shared" / "data" / "bbbc030"
    return candidate if (candidate / "train" / "images").is_dir() else None


def outlines_of(mask: np.ndarray) -> np.ndarray:
    """Outline-only labels (255 on a 1-2 px line along every object's border) of a mask."""
    from skimage.segmentation import find_boundaries

    return (find_boundaries(np.asarray(mask) > 0, mode="inner") * 255).astype(np.uint8)


def read_sample(split: str, kind: str, name: str) -> np.ndarray:
    """One ``kind`` ("images", "masks" or "outlines") of BBBC030 image ``name``.

    From the full set when available, else from the sample shipped in the package.
    """
    import imageio.v3 as iio

    full = full_bbbc030()
    if full is not None:
        return np.asarray(iio.imread(full / split / kind / f"{name}.png"))
    from napari_cytounet.sample_data import sample_paths

    image_path, mask_path = sample_paths(name)
    if kind == "images":
        return np.asarray(iio.imread(image_path))
    mask = np.asarray(iio.imread(mask_path))
    return mask if kind == "masks" else outlines_of(mask)
