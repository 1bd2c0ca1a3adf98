"""Preparing images and labels for the network: normalisation, targets, patches.

Everything here is numpy (TensorFlow is imported only by :func:`make_dataset`).
Patches are cut and augmented in numpy with a seeded generator, so a training
run is reproducible; ``tf.data`` only wraps the generator and prefetches batches
so that patch preparation overlaps with the network's work.

Label conventions (see the architecture guide)

* dense: 0 = background, anything else = foreground (instance ids allowed) for a
  binary model; for ``classes >= 2`` the value is the class index.
* scribbles: 0 = not annotated (ignored by the loss), 1 = background,
  2 = foreground, 3+ = further classes.

Examples
--------
>>> import numpy as np
>>> img = np.arange(100, dtype=np.uint16).reshape(10, 10)
>>> x = normalize_image(img, NormalizationConfig())
>>> x.dtype, x.shape
(dtype('float32'), (10, 10, 1))
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import NormalizationConfig
from .errors import DataError, ModelError
from .percentiles import percentiles

# ---------------------------------------------------------------------------
# images


def channel_axis_for(shape: Sequence[int], in_channels: int, name: str = "the image") -> int | None:
    """Where the channels of an image of ``shape`` are, for a model with ``in_channels``.

    The one rule used by the API, the CLI and the widgets:

    * one-channel model: ``(..., H, W)`` has no channel axis (leading axes are planes);
      an RGB(A) image ``(H, W, 3|4)`` is used as its mean intensity (``-1``); ``(H, W, 1)``
      is one channel (``-1``); a short last axis of 2 or 5-8 values after a long one
      (``(256, 256, 2)``) is channels, which a one-channel model cannot take: refused,
      instead of being read as 256 planes of 256x2 pixels;
    * ``C``-channel model: channels last (``-1``) or, failing that, channels first
      (``(..., C, H, W)``, ``-3``); anything else is refused.

    Raises
    ------
    ModelError
        The image's channels do not fit the model; the message says why.

    Examples
    --------
    >>> channel_axis_for((256, 256), 1) is None
    True
    >>> channel_axis_for((2, 256, 256), 2)
    -3
    """
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    looks_like_channels = ndim >= 3 and shape[-1] <= 8 and shape[-2] >= 4 * shape[-1]
    if in_channels == 1:
        if not looks_like_channels:
            return None
        if shape[-1] in (1, 3, 4) and ndim == 3:
            return -1
        if shape[-1] == 1:
            return -1
        raise ModelError(
            f"{name} has shape {shape}: its last axis looks like {shape[-1]} channels, but "
            "the model takes one-channel images. Pick one channel (in napari: split the "
            "channels; in Python: image[..., k]) or train a model on "
            f"{shape[-1]}-channel images (--in-channels {shape[-1]})."
        )
    if ndim >= 3 and shape[-1] == in_channels:
        return -1
    if ndim >= 3 and shape[-3] == in_channels:
        return -3
    kind = "a grayscale image" if ndim == 2 else f"of shape {shape}"
    raise ModelError(
        f"The model expects {in_channels}-channel images (channels last or first) but {name} "
        f"is {kind}; use a model trained on images like these, or give the image with "
        f"{in_channels} channels."
    )


def to_channels_last(image: np.ndarray, in_channels: int | None = None) -> np.ndarray:
    """Return a 2D image as ``(H, W, C)``.

    ``(H, W)`` becomes ``(H, W, 1)``; ``(H, W, C)`` is kept. An RGB(A) image whose
    colour channels are identical is reduced to one channel, and a colour image
    given to a one-channel model is converted to its mean intensity.

    Raises
    ------
    DataError
        If the image is not 2D (+ channels) or its channels do not fit ``in_channels``.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    elif image.ndim != 3:
        raise DataError(
            f"Expected a 2D image (H, W) or (H, W, channels), got shape {image.shape}; "
            "split stacks into planes first."
        )
    channels = image.shape[-1]
    if channels in (3, 4) and in_channels != channels:
        rgb = image[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            image = rgb[..., :1]
        elif in_channels == 1:
            image = rgb.astype(np.float32).mean(axis=-1, keepdims=True)
    if in_channels is not None and image.shape[-1] != in_channels:
        raise DataError(
            f"The image has {image.shape[-1]} channel(s) but the model expects {in_channels}; "
            "use a model trained on images like this one, or convert the image."
        )
    return image


def normalization_params(
    image: np.ndarray, norm: NormalizationConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(offset, gain)`` so that ``(image - offset) * gain`` is the network input.

    ``image`` is channels-last ``(H, W, C)`` in any dtype. Percentiles are
    estimated on a regular subsample of at most ~2 megapixels, so huge images
    cost no extra memory. A constant channel gets a gain of 0.

    Raises
    ------
    DataError
        If the image holds NaN or infinite values.
    """
    norm = norm or NormalizationConfig()
    channels = image.shape[-1]
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 2_000_000)))
    sample = np.asarray(image[::step, ::step])
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(sample).all():
        raise DataError("The image contains NaN or infinite values; fix or crop the image first.")
    if norm.method == "scale":
        return np.zeros(channels, np.float32), np.full(channels, 1.0 / norm.scale, np.float32)
    offset = np.zeros(channels, np.float32)
    gain = np.zeros(channels, np.float32)
    for c in range(channels):
        lo, hi = percentiles(sample[..., c], (norm.low, norm.high))
        offset[c] = lo
        gain[c] = 0.0 if hi - lo < 1e-12 else 1.0 / (hi - lo)
    return offset, gain


def normalize_image(
    image: np.ndarray, norm: NormalizationConfig | None = None, in_channels: int | None = None
) -> np.ndarray:
    """Normalise a 2D image to float32 ``(H, W, C)`` for the network.

    With the percentile method, each channel's ``low`` percentile maps to 0 and
    its ``high`` percentile to 1 (no clipping). A constant channel maps to 0.

    Raises
    ------
    DataError
        If the image holds NaN or infinite values.
    """
    image = to_channels_last(image, in_channels)
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise DataError("The image contains NaN or infinite values; fix or crop the image first.")
    offset, gain = normalization_params(image, norm)
    out = image.astype(np.float32, copy=True)
    out -= offset
    out *= gain
    return out


# ---------------------------------------------------------------------------
# labels


def label_values_problem(largest: int, mode: str, classes: int) -> str | None:
    """Why labels whose largest value is ``largest`` cannot train this model, or None.

    The one rule for the quality check and for training: dense labels of a
    ``classes >= 2`` model are class indices ``0..classes-1``; scribbles are
    0 (not annotated), 1 (background), ``2..max(classes, 2)`` (classes). Dense
    binary masks take any value (nonzero = foreground).

    Examples
    --------
    >>> label_values_problem(255, "dense", 1) is None
    True
    >>> "0..2" in label_values_problem(255, "dense", 3)
    True
    """
    if mode == "dense" and classes >= 2 and largest >= classes:
        hint = " (0/255 masks are binary: use 1 class)" if largest == 255 else ""
        return (
            f"the labels hold value {largest} but a {classes}-class model expects class "
            f"indices 0..{classes - 1}{hint}; relabel the masks or set the number of classes "
            "to match."
        )
    top = max(classes, 2)
    if mode == "scribbles" and largest > top:
        return (
            f"scribbles must be 0 (not annotated), 1 (background), 2..{top} (classes); found "
            f"{largest}. Use dense mode for instance masks, or set the number of classes."
        )
    return None


def labels_to_targets(
    labels: np.ndarray, mode: str = "dense", classes: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a label image into ``(class_index uint8, weight float32)`` maps.

    ``weight`` is 0 where the loss must ignore the pixel (unannotated scribble
    pixels) and 1 elsewhere.

    Examples
    --------
    >>> t, w = labels_to_targets(np.array([[0, 1, 2]]), "scribbles")
    >>> t.tolist(), w.tolist()
    ([[0, 0, 1]], [[0.0, 1.0, 1.0]])
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise DataError(f"Labels must be 2D (H, W), got shape {labels.shape}.")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0):
            labels = labels.astype(np.int64)
        else:
            raise DataError("Labels must hold integer values (0 = background / not annotated).")
    if labels.size and labels.min() < 0:
        raise DataError("Labels must not be negative.")
    if mode == "dense":
        if classes == 1:
            target = (labels > 0).astype(np.uint8)
        else:
            problem = label_values_problem(int(labels.max(initial=0)), mode, classes)
            if problem:
                raise DataError(problem)
            target = labels.astype(np.uint8)
        weight = np.ones(labels.shape, np.float32)
    elif mode == "scribbles":
        problem = label_values_problem(int(labels.max(initial=0)), mode, classes)
        if problem:
            raise DataError(problem)
        weight = (labels > 0).astype(np.float32)
        target = np.where(labels > 0, labels - 1, 0).astype(np.uint8)
    else:
        raise DataError(f"Unknown labels mode {mode!r}; use 'dense' or 'scribbles'.")
    return target, weight


def content_hash(array: np.ndarray) -> str:
    """Short SHA-256 of an array's shape, dtype and bytes (for the data summary)."""
    h = hashlib.sha256()
    arr = np.ascontiguousarray(array)
    h.update(str((arr.shape, arr.dtype.str)).encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------
# training examples and patches


@dataclass
class Example:
    """One normalised training image with its targets."""

    image: np.ndarray  # float32 (H, W, C)
    target: np.ndarray  # uint8 (H, W) class index
    weight: np.ndarray  # float32 (H, W), 0 = ignore
    name: str = ""


def check_dtype(array: Any, what: str) -> None:
    """Refuse arrays that are not real numbers (complex, object, text), saying what to do.

    Examples
    --------
    >>> check_dtype(np.zeros((2, 2), np.uint8), "image")
    >>> check_dtype(np.zeros((2, 2), np.complex64), "image")
    Traceback (most recent call last):
    ...
    napari_cytounet.core.errors.DataError: image holds complex numbers (complex64) ...
    """
    dtype = getattr(array, "dtype", None)
    if dtype is None:
        dtype = np.asarray(array).dtype
    if dtype.kind == "c":
        raise DataError(
            f"{what} holds complex numbers ({dtype}) and a UNet needs real intensities; "
            "convert it first, e.g. np.abs(image) for the magnitude or image.real."
        )
    if dtype.kind not in "biuf":
        raise DataError(
            f"{what} has data type {dtype}, not numbers; give a numeric array "
            "(e.g. np.asarray(image, dtype=np.float32)) read from an image file."
        )


def split_stacks(
    images: list[Any], labels: list[Any], names: list[str]
) -> tuple[list[Any], list[Any], list[str]]:
    """Train 3D stacks plane by plane: a ``(Z, H, W)`` image with ``(Z, H, W)`` labels
    becomes Z pairs named ``"NAME plane k"``; 2D pairs pass through unchanged.

    Examples
    --------
    >>> x, y, n = split_stacks([np.zeros((3, 8, 8))], [np.ones((3, 8, 8), int)], ["s"])
    >>> len(x), n[1]
    (3, 's plane 1')
    """
    out_x, out_y, out_n = [], [], []
    for image, lab, name in zip(images, labels, names):
        shape = getattr(image, "shape", None)
        lab_shape = getattr(lab, "shape", None)
        if shape is not None and lab_shape is not None and len(lab_shape) == 3:
            if tuple(shape[:3]) == tuple(lab_shape) and len(shape) in (3, 4):
                for k in range(lab_shape[0]):
                    out_x.append(np.asarray(image[k]))
                    out_y.append(np.asarray(lab[k]))
                    out_n.append(f"{name} plane {k}")
                continue
            raise DataError(
                f"{name}: labels of shape {tuple(lab_shape)} for an image of shape "
                f"{tuple(shape)}. Stacks are trained plane by plane, so a (Z, H, W) image "
                "needs (Z, H, W) labels; give labels for every plane, or 2D pairs."
            )
        out_x.append(image)
        out_y.append(lab)
        out_n.append(name)
    return out_x, out_y, out_n


def prepare_examples(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    mode: str = "dense",
    classes: int = 1,
    norm: NormalizationConfig | None = None,
    in_channels: int | None = None,
    names: Sequence[str] | None = None,
) -> list[Example]:
    """Validate and normalise image/label pairs.

    Raises
    ------
    DataError
        No pairs, unequal counts, shapes that do not match, or nothing annotated.
    """
    images, labels = list(images), list(labels)
    if not images:
        raise DataError("No training images were given; add at least one image with labels.")
    if len(images) != len(labels):
        raise DataError(f"Got {len(images)} images but {len(labels)} label images; pair them 1:1.")
    names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(images))]
    images, labels, names = split_stacks(images, labels, names)
    examples = []
    channels = in_channels
    for image, lab, name in zip(images, labels, names):
        check_dtype(image, f"{name} (image)")
        check_dtype(lab, f"{name} (labels)")
        x = normalize_image(image, norm, channels)
        channels = x.shape[-1]
        lab = np.asarray(lab)
        if lab.shape != x.shape[:2]:
            raise DataError(
                f"{name}: labels of shape {lab.shape} do not match the image's "
                f"{x.shape[:2]}; labels must cover the image pixel for pixel."
            )
        target, weight = labels_to_targets(lab, mode, classes)
        examples.append(Example(x, target, weight, name))
    if not any(ex.weight.any() for ex in examples):
        raise DataError("Nothing is annotated: paint some background and foreground first.")
    return examples


def _pad_to(array: np.ndarray, size: int) -> np.ndarray:
    ph, pw = max(0, size - array.shape[0]), max(0, size - array.shape[1])
    if ph == 0 and pw == 0:
        return array
    pad = [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, mode="constant")


class PatchSampler:
    """Cut random training patches, favouring annotated and foreground pixels.

    A patch is centred on a random foreground pixel with probability
    ``foreground_bias``, otherwise on a random annotated pixel (for dense labels
    every pixel is annotated). Images smaller than the patch are zero-padded
    with weight 0 (ignored by the loss).

    Parameters
    ----------
    examples
        Output of :func:`prepare_examples`.
    patch_size
        Side of the square patches.
    foreground_bias
        Probability of centring a patch on a foreground pixel.
    seed
        Seed of the random generator; the same seed gives the same patches.
    """

    def __init__(
        self,
        examples: Sequence[Example],
        patch_size: int,
        *,
        foreground_bias: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.patch_size = int(patch_size)
        self.rng = np.random.default_rng(seed)
        self.foreground_bias = float(foreground_bias)
        self.images, self.targets, self.weights = [], [], []
        self.annotated, self.foreground, self.sizes = [], [], []
        for ex in examples:
            img = _pad_to(ex.image, self.patch_size)
            tgt = _pad_to(ex.target, self.patch_size)
            wgt = _pad_to(ex.weight, self.patch_size)
            self.images.append(img)
            self.targets.append(tgt)
            self.weights.append(wgt)
            annotated = np.flatnonzero(wgt.ravel() > 0)
            self.annotated.append(annotated if annotated.size < wgt.size else None)
            self.foreground.append(np.flatnonzero(((tgt > 0) & (wgt > 0)).ravel()))
            self.sizes.append(float(max(1, annotated.size)))
        # pick images in proportion to their annotated pixels
        total = sum(self.sizes)
        self.image_p = np.array([s / total for s in self.sizes])
        self.channels = self.images[0].shape[-1]

    def _centre(self, i: int) -> tuple[int, int]:
        width = self.images[i].shape[1]
        fg = self.foreground[i]
        if fg.size and self.rng.random() < self.foreground_bias:
            flat = fg[self.rng.integers(fg.size)]
        elif self.annotated[i] is not None:
            flat = self.annotated[i][self.rng.integers(self.annotated[i].size)]
        else:
            h, w = self.images[i].shape[:2]
            return int(self.rng.integers(h)), int(self.rng.integers(w))
        return int(flat // width), int(flat % width)

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x, y)``: x float32 ``(B, P, P, C)``; y float32 ``(B, P, P, 2)``.

        ``y[..., 0]`` is the class index and ``y[..., 1]`` the pixel weight.
        """
        p = self.patch_size
        x = np.empty((batch_size, p, p, self.channels), np.float32)
        y = np.empty((batch_size, p, p, 2), np.float32)
        for b in range(batch_size):
            i = int(self.rng.choice(len(self.images), p=self.image_p))
            h, w = self.images[i].shape[:2]
            cy, cx = self._centre(i)
            # jitter the centre so objects are not always in the middle of the patch
            cy += int(self.rng.integers(-p // 4, p // 4 + 1))
            cx += int(self.rng.integers(-p // 4, p // 4 + 1))
            top = int(np.clip(cy - p // 2, 0, h - p))
            left = int(np.clip(cx - p // 2, 0, w - p))
            x[b] = self.images[i][top : top + p, left : left + p]
            y[b, ..., 0] = self.targets[i][top : top + p, left : left + p]
            y[b, ..., 1] = self.weights[i][top : top + p, left : left + p]
        return x, y


def augment(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random flips, 90-degree rotations and intensity jitter, per sample (in place where possible).

    Intensity jitter scales by a factor in [0.8, 1.25] and shifts by up to
    +-0.1, on normalised images.
    """
    for b in range(x.shape[0]):
        k = int(rng.integers(4))
        flip = bool(rng.integers(2))
        xb, yb = np.rot90(x[b], k), np.rot90(y[b], k)
        if flip:
            xb, yb = xb[:, ::-1], yb[:, ::-1]
        x[b], y[b] = xb.copy(), yb.copy()
        scale = np.float32(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        shift = np.float32(rng.uniform(-0.1, 0.1))
        x[b] *= scale
        x[b] += shift
    return x, y


def make_batches(
    sampler: PatchSampler, batch_size: int, *, augment_data: bool = True, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless iterator of (augmented) batches from a sampler."""
    rng = np.random.default_rng(seed + 1)
    while True:
        x, y = sampler.sample(batch_size)
        if augment_data:
            x, y = augment(x, y, rng)
        yield x, y


def make_dataset(
    sampler: PatchSampler,
    batch_size: int,
    *,
    augment_data: bool = True,
    seed: int = 0,
    prefetch: int = 2,
) -> Any:
    """A ``tf.data.Dataset`` of endless batches that prepares patches ahead of the model."""
    import tensorflow as tf

    p, c = sampler.patch_size, sampler.channels
    signature = (
        tf.TensorSpec((batch_size, p, p, c), tf.float32),
        tf.TensorSpec((batch_size, p, p, 2), tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(
        lambda: make_batches(sampler, batch_size, augment_data=augment_data, seed=seed),
        output_signature=signature,
    )
    return dataset.prefetch(prefetch)


def fixed_patches(
    examples: Sequence[Example],
    patch_size: int,
    count: int,
    *,
    seed: int = 1234,
    foreground_bias: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, reproducible set of patches (e.g. for validation), without augmentation."""
    sampler = PatchSampler(examples, patch_size, foreground_bias=foreground_bias, seed=seed)
    return sampler.sample(count)


def summarize_data(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Counts, shapes, dtypes, foreground fractions and content hashes of a data set."""
    names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(images))]
    items = []
    for image, lab, name in zip(images, labels, names):
        image, lab = np.asarray(image), np.asarray(lab)
        items.append(
            {
                "name": str(name),
                "shape": list(image.shape),
                "dtype": str(image.dtype),
                "labels_shape": list(lab.shape),
                "annotated_fraction": float(np.mean(lab > 0)),
                "image_sha256": content_hash(image),
                "labels_sha256": content_hash(lab),
            }
        )
    return {"count": len(items), "items": items}
