"""The human-facing files of an exported bioimage.io package: README, cover image, history CSV.

Used by :func:`~.export.export_bioimageio`; kept apart so that the export
module holds the description itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .bundle import ModelBundle

PROJECT_URL = "https://github.com/napari-cytounet/napari-cytounet"


def write_cover(crop: np.ndarray, prob: np.ndarray, threshold: float, path: Path) -> Path:
    """Write a 2:1 PNG cover: the input, and the input with the mask overlaid in colour.

    ``crop`` is the raw ``(H, W, C)`` image, ``prob`` the network output
    ``(1, H, W, classes)``; pixels at or above ``threshold`` (or of a class > 0)
    are drawn in magenta with yellow outlines.

    Examples
    --------
    >>> write_cover(crop, prob, 0.5, Path("cover.png"))  # doctest: +SKIP
    """
    import imageio.v3 as iio

    gray = crop.astype(np.float32).mean(axis=-1)
    lo, hi = np.percentile(gray, [1.0, 99.8])
    gray = np.clip((gray - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat((gray * 255).astype(np.uint8)[..., None], 3, axis=-1)
    mask = prob[0, ..., 0] >= threshold if prob.shape[-1] == 1 else prob[0].argmax(-1) > 0
    overlay = rgb.astype(np.float32)
    overlay[mask] = 0.55 * overlay[mask] + 0.45 * np.array([255.0, 60.0, 200.0])
    edge = mask & ~(
        np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1)
    )
    overlay[edge] = (255.0, 255.0, 0.0)
    iio.imwrite(path, np.concatenate([rgb, overlay.astype(np.uint8)], axis=1))
    return path


def write_history_csv(bundle: ModelBundle, path: Path) -> Path | None:
    """Write the per-epoch training history as CSV; ``None`` (nothing written) without history.

    Examples
    --------
    >>> write_history_csv(bundle, Path("training_history.csv"))  # doctest: +SKIP
    """
    history = {k: v for k, v in (bundle.history or {}).items() if isinstance(v, list) and v}
    if not history:
        return None
    keys = sorted(history)
    rows = max(len(v) for v in history.values())
    lines = ["epoch," + ",".join(keys)]
    for i in range(rows):
        cells = [
            "" if i >= len(history[k]) or history[k][i] is None else f"{history[k][i]:.6g}"
            for k in keys
        ]
        lines.append(f"{i + 1}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def readme_text(bundle: ModelBundle, options: Any, formats: list[str]) -> str:
    """The package's README: the model, its input and output, how it was trained, how to run it.

    ``options`` is the :class:`~.export.ExportOptions` (name, description, threshold).

    Examples
    --------
    >>> print(readme_text(bundle, options, ["keras_v3"]))  # doctest: +SKIP
    """
    from .._version import __version__

    norm = bundle.normalization
    if norm.method == "percentile":
        prep = (
            f"per image and channel, the {norm.low:g}th percentile is mapped to 0 and the "
            f"{norm.high:g}th to 1 (`scale_range`, no clipping)"
        )
    else:
        prep = f"intensities divided by {norm.scale:g} (`scale_linear`)"
    activation = "sigmoid" if bundle.classes == 1 else "softmax"
    out = (
        f"foreground probability (sigmoid); threshold it at {options.threshold:g} for a mask"
        if bundle.classes == 1
        else f"{bundle.classes} class probabilities (softmax); the mask is the argmax"
    )
    return f"""# {options.name}

{options.description}

A 2D UNet (Ronneberger et al. 2015) trained with napari-cytounet {__version__}
({PROJECT_URL}).

## Inputs and outputs

- Input `raw`: axes (batch, y, x, channel), {bundle.in_channels} channel(s); height and
  width are multiples of {bundle.unet.divisor} (2**depth, depth {bundle.unet.depth}).
- Preprocessing: {prep}.
- Output `probabilities`: {out}. The {activation} is the network's last layer.
- Weights: {", ".join(formats)}.

## How it was trained

```
{bundle.describe()}
```

The full training record (settings, per-epoch history, a summary of the training
data with content hashes, library versions) is attached as `training_record.json`
(and the history as `training_history.csv`).

## Validation

napari-cytounet reports Dice on held-out validation patches during training
(`val_dice` in the history). To validate on your own data, predict held-out
images and compare the thresholded masks with manual masks, e.g. with
`cytounet score`.

## How to run it

- napari-cytounet: `cytounet predict PACKAGE.zip IMAGES -o OUT`, or load the
  package in the Model widget.
- Python: `bioimageio.core.predict(model="package.zip", inputs=image)`.
- deepImageJ, ilastik and other bioimage.io consumers: import the zip.
"""
