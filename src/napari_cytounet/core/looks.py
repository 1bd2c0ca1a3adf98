"""Synthetic cells in the looks of common microscopy modalities.

:func:`synthetic_cells` draws bright textured cells; :func:`styled_cells` renders
the same exact labels as a fluorescent-nuclei picture (bright smooth blobs on a
dark background, 16-bit camera counts), a DIC picture (relief: one side of every
cell bright, the other dark, on grey; the cell interior about as grey as the
background) or a phase-contrast picture (dark cells with a bright halo). They are
used to pretrain the starter model and to benchmark the interactive loop on
looks the project has no real images of.

Examples
--------
>>> image, labels = styled_cells((96, 96), "dic", seed=0)
>>> image.shape, labels.shape
((96, 96), (96, 96))
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .errors import ConfigError
from .synthetic import synthetic_cells

#: The looks :func:`styled_cells` can draw.
LOOKS = ("fluorescent", "dic", "phase", "bright")


def dic_relief(height: np.ndarray, angle: float) -> np.ndarray:
    """DIC's relief of an optical-height map: its slope along the shear ``angle``, in [-1, 1].

    Examples
    --------
    >>> relief = dic_relief(np.outer(np.ones(8), np.arange(8.0)), 0.0)  # height rises along x
    >>> bool(np.allclose(relief, 1.0, atol=1e-5))
    True
    """
    gy, gx = np.gradient(height)
    relief = np.cos(angle) * gx + np.sin(angle) * gy
    return relief / (np.abs(relief).max() + 1e-6)


def styled_cells(
    shape: tuple[int, int] = (256, 256),
    look: str = "dic",
    *,
    radius: tuple[float, float] = (8, 20),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic image of cells drawn in the look of a microscopy modality.

    Parameters
    ----------
    shape
        ``(height, width)``.
    look
        One of :data:`LOOKS`: ``"fluorescent"`` (uint16 nuclei-like blobs),
        ``"dic"`` (float32 relief), ``"phase"`` (float32 dark cells with halos)
        or ``"bright"`` (the plain :func:`synthetic_cells` picture).
    radius
        ``(min, max)`` cell radius in pixels.
    seed
        Seed of the random generator.

    Returns
    -------
    image, labels : numpy.ndarray
        The picture and its int32 instance labels (0 = background).

    Examples
    --------
    >>> image, labels = styled_cells((64, 64), "fluorescent", seed=1)
    >>> image.dtype.name
    'uint16'
    """
    if look not in LOOKS:
        raise ConfigError(f"look must be one of {', '.join(LOOKS)}; got {look!r}.")
    bright, labels = synthetic_cells(shape, radius=radius, noise=0.0, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    fg = (labels > 0).astype(np.float32)
    noise = rng.standard_normal(fg.shape).astype(np.float32)
    if look == "bright":
        image = np.clip(bright + 0.1 * noise, 0, 1).astype(np.float32)
    elif look == "fluorescent":
        blob = ndi.gaussian_filter(bright * fg, 1.5)
        counts = 100 + 3000 * blob * rng.uniform(0.5, 1.5)
        image = rng.poisson(counts).astype(np.float32) + 20 * noise
        image = np.clip(image, 0, 65535).astype(np.uint16)
    elif look == "dic":
        height = ndi.gaussian_filter(fg + 0.3 * (bright - bright.mean()) * fg, 2.0)
        relief = dic_relief(height, rng.uniform(0, 2 * np.pi))
        image = (0.5 + 0.35 * relief + 0.04 * noise).astype(np.float32)
    else:  # phase
        soft = ndi.gaussian_filter(fg, 1.0)
        halo = ndi.gaussian_filter(fg, 4.0) - soft
        image = (0.6 - 0.35 * soft * (0.7 + 0.3 * bright) + 0.5 * np.clip(halo, 0, None)).astype(
            np.float32
        )
        image += 0.05 * noise
    return image, labels
