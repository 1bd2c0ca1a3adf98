"""Synthetic cells drawn with settings ``core.looks`` never uses: held-out looks.

The starter model is trained on ``core.looks`` pictures (other seeds), so scores on them
flatter it. :func:`shifted_look` draws the same three modalities blurrier, noisier,
unevenly lit and with other cell sizes, settings that nothing in the project was trained
or tuned on: ``benchmarks/starter_model.py`` and ``benchmarks/interactive.py
--synthetic shifted-dic`` (or ``shifted-phase``, ``shifted-fluorescent``) use them.

``dic-bias`` (added 2026-12-08, before the starter trained on randomised DIC settings that
cover ``shifted-dic``'s) is DIC drawn another way again, so that a held-out DIC stays held
out: a bias retardation (part of the optical height shows as brightness, so the two sides of
a cell are not mirror images), smaller and more elongated cells, a vignetted field and
photon (Poisson) noise instead of Gaussian.
"""

from __future__ import annotations

import numpy as np

#: The looks :func:`shifted_look` draws.
SHIFTED_LOOKS = ("fluorescent", "dic", "phase", "dic-bias")


def shifted_look(shape: tuple[int, int], look: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A look drawn with settings outside those of ``core.looks`` (held out from training)."""
    from scipy import ndimage as ndi

    from napari_cytounet.core.looks import dic_relief
    from napari_cytounet.core.synthetic import synthetic_cells

    if look == "dic-bias":
        return _biased_dic(shape, seed)
    bright, labels = synthetic_cells(shape, radius=(10, 28), noise=0.0, seed=seed)
    rng = np.random.default_rng(seed + 5000)
    fg = (labels > 0).astype(np.float32)
    noise = rng.standard_normal(fg.shape).astype(np.float32)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    light = 1.0 + 0.25 * (yy - 0.5) - 0.2 * (xx - 0.5)  # uneven illumination
    if look == "dic":  # softer relief, more noise than core.looks' DIC
        height = ndi.gaussian_filter(fg + 0.5 * (bright - bright.mean()) * fg, 3.5)
        relief = dic_relief(height, rng.uniform(0, 2 * np.pi))
        image = light * (0.5 + 0.25 * relief) + 0.07 * noise
    elif look == "phase":  # wider halo, paler cells
        soft = ndi.gaussian_filter(fg, 1.5)
        halo = ndi.gaussian_filter(fg, 7.0) - soft
        image = light * (0.6 - 0.2 * soft * (0.6 + 0.4 * bright) + 0.35 * np.clip(halo, 0, None))
        image = image + 0.08 * noise
    else:  # fluorescent: dim, blurred, on a glowing background
        blob = ndi.gaussian_filter(bright * fg, 2.5)
        counts = light * (300 + 700 * blob)
        return np.clip(rng.poisson(counts) + 30 * noise, 0, 65535).astype(np.uint16), labels
    return image.astype(np.float32), labels


def _biased_dic(shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """DIC with a bias retardation, elongated cells, vignetting and photon noise."""
    from scipy import ndimage as ndi

    from napari_cytounet.core.looks import dic_relief
    from napari_cytounet.core.synthetic import synthetic_cells

    bright, labels = synthetic_cells(shape, radius=(6, 18), noise=0.0, seed=seed)
    # stretch the picture along a random axis: cells 1.6x longer than wide on average
    rng = np.random.default_rng(seed + 7000)
    h, w = shape
    tall = rng.random() < 0.5
    zoom = (1.6, 1.0) if tall else (1.0, 1.6)
    bright = ndi.zoom(bright, zoom, order=1)[:h, :w]
    labels = ndi.zoom(labels, zoom, order=0)[:h, :w]
    fg = (labels > 0).astype(np.float32)
    height = ndi.gaussian_filter(fg * (1.0 + 0.6 * (bright - bright.mean())), 2.5)
    relief = dic_relief(height, rng.uniform(0, 2 * np.pi))
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (0.5 * max(h, w)) ** 2
    field = 1.0 - 0.3 * r2  # vignetting
    image = field * (0.45 + 0.3 * relief + 0.05 * height)
    photons = rng.poisson(np.clip(image, 0, None) * 150.0)
    return (photons / 150.0).astype(np.float32), labels.astype(np.int32)
