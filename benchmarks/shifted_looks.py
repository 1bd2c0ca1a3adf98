"""Synthetic cells drawn with settings ``core.looks`` never uses: held-out looks.

The starter model is trained on ``core.looks`` pictures (other seeds), so scores on them
flatter it. :func:`shifted_look` draws the same three modalities blurrier, noisier,
unevenly lit and with other cell sizes, settings that nothing in the project was trained
or tuned on: ``benchmarks/starter_model.py`` and ``benchmarks/interactive.py
--synthetic shifted-dic`` (or ``shifted-phase``, ``shifted-fluorescent``) use them.
"""

from __future__ import annotations

import numpy as np

#: The looks :func:`shifted_look` draws.
SHIFTED_LOOKS = ("fluorescent", "dic", "phase")


def shifted_look(shape: tuple[int, int], look: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A look drawn with settings outside those of ``core.looks`` (held out from training)."""
    from scipy import ndimage as ndi

    from napari_cytounet.core.looks import dic_relief
    from napari_cytounet.core.synthetic import synthetic_cells

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
