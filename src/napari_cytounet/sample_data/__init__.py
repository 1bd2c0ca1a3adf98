"""Small real sample data shipped with the package (BBBC030v1, see README.md here)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
TRAIN_NAMES = ("cho21", "cho22", "cho23", "cho24")
VALIDATION_NAMES = ("cho01",)


def sample_paths(name: str) -> tuple[Path, Path]:
    """Return ``(image_path, mask_path)`` of a shipped BBBC030 sample, e.g. ``"cho21"``.

    Examples
    --------
    >>> image, mask = sample_paths("cho21")
    >>> image.name, mask.name
    ('cho21.png', 'cho21_mask.png')
    """
    image = SAMPLE_DIR / f"{name}.png"
    mask = SAMPLE_DIR / f"{name}_mask.png"
    if not image.exists() or not mask.exists():
        known = ", ".join(TRAIN_NAMES + VALIDATION_NAMES)
        raise FileNotFoundError(f"No shipped sample named {name!r}; known samples: {known}.")
    return image, mask
