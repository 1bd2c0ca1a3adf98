"""Sample data for napari (npe2 ``sample_data`` contributions).

Each function returns napari layer data tuples ``(data, kwargs, layer_type)``:

- a real BBBC030 image of CHO cells (DIC) with its hand-made mask (shipped in
  :mod:`napari_cytounet.sample_data`; Ljosa et al., Nature Methods 2012, and
  Koos et al., Scientific Reports 2016), and a second, held-out one;
- synthetic cells of any size with their exact instance labels (or scribbles
  drawn from them), and a small synthetic 3D stack.

Examples
--------
>>> layers = synthetic_cells(shape=(128, 128))
>>> [kind for _, _, kind in layers]
['image', 'labels']
"""

from __future__ import annotations

from typing import Any

import numpy as np

LayerData = tuple[Any, dict[str, Any], str]


def _bbbc030(name: str) -> list[LayerData]:
    import imageio.v3 as iio

    from napari_cytounet.sample_data import sample_paths

    image_path, mask_path = sample_paths(name)
    image = np.asarray(iio.imread(image_path))
    if image.ndim == 3:  # identical colour channels: keep one
        image = image[..., 0]
    mask = np.asarray(iio.imread(mask_path))
    if mask.ndim == 3:
        mask = mask[..., 0]
    labels = (mask > 0).astype(np.uint8)
    source = "BBBC030v1 (Broad Bioimage Benchmark Collection; Koos et al. 2016)"
    return [
        (image, {"name": name, "colormap": "gray", "metadata": {"source": source}}, "image"),
        (
            labels,
            {"name": f"{name} mask", "opacity": 0.4, "metadata": {"source": source}},
            "labels",
        ),
    ]


def bbbc030_cho() -> list[LayerData]:
    """BBBC030 image ``cho21`` (1032 x 1376 DIC) and its filled cell mask (1 = cell)."""
    return _bbbc030("cho21")


def bbbc030_validation() -> list[LayerData]:
    """BBBC030 image ``cho01`` with its mask, held out from training (for validation/scoring)."""
    return _bbbc030("cho01")


def synthetic_cells(shape: tuple[int, int] = (512, 512), seed: int = 0) -> list[LayerData]:
    """Synthetic cells (any ``shape``, default 512 x 512) and their ground-truth instance labels."""
    from napari_cytounet.core.synthetic import synthetic_cells as make

    image, labels = make(shape=tuple(shape), seed=seed)
    return [
        (image, {"name": "synthetic cells", "colormap": "gray"}, "image"),
        (labels, {"name": "synthetic cells ground truth", "opacity": 0.5}, "labels"),
    ]


def synthetic_scribbles(shape: tuple[int, int] = (512, 512), seed: int = 0) -> list[LayerData]:
    """Synthetic cells with sparse scribbles (1 = background, 2 = cell) to train from."""
    from napari_cytounet.core.synthetic import scribbles_from_labels
    from napari_cytounet.core.synthetic import synthetic_cells as make

    image, labels = make(shape=tuple(shape), seed=seed)
    scribbles = scribbles_from_labels(labels, seed=seed)
    return [
        (image, {"name": "synthetic cells", "colormap": "gray"}, "image"),
        (scribbles, {"name": "synthetic cells scribbles"}, "labels"),
        (
            labels,
            {"name": "synthetic cells ground truth", "opacity": 0.5, "visible": False},
            "labels",
        ),
    ]


def synthetic_stack(
    n_planes: int = 5, shape: tuple[int, int] = (128, 128), seed: int = 0
) -> list[LayerData]:
    """A small synthetic 3D stack (5 x 128 x 128 by default) and its ground-truth labels."""
    from napari_cytounet.core.synthetic import synthetic_stack as make

    stack, labels = make(n_planes=n_planes, shape=tuple(shape), seed=seed)
    return [
        (stack, {"name": "synthetic stack", "colormap": "gray"}, "image"),
        (labels, {"name": "synthetic stack ground truth", "opacity": 0.5}, "labels"),
    ]
