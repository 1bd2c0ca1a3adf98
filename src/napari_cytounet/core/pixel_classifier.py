"""A random-forest pixel classifier on multiscale filter features (the fast first answer).

This is what ilastik, APOC and napari-convpaint do: per-pixel features
(Gaussian-smoothed intensity, edges and texture at several scales, from
:func:`skimage.feature.multiscale_basic_features`) and a
:class:`sklearn.ensemble.RandomForestClassifier` fitted on the annotated pixels.
It answers in about a second, so the interactive session shows it while the UNet
trains, and its confident pixels serve the UNet as extra (pseudo-)labels.

Unlike those tools, the features here are computed on the *normalised* image
(percentiles, as the UNet sees it; ``normalise=True``), so a forest fitted on one
image still works on another image of the same set whose brightness differs.
``normalise=False`` gives the raw-feature forest users of those tools get (the
benchmark's baseline).

Examples
--------
>>> import numpy as np
>>> from napari_cytounet.core.synthetic import synthetic_cells, scribbles_from_labels
>>> image, labels = synthetic_cells((96, 96), seed=0)
>>> forest = PixelClassifier().fit(image, scribbles_from_labels(labels, fraction=0.02))
>>> forest.predict_proba(image).shape
(96, 96)
"""

from __future__ import annotations

import numpy as np

from .config import NormalizationConfig
from .data import normalize_image, to_channels_last
from .errors import DataError

#: Scales of the filter features (the Gaussian sigmas run from 1 to this, in pixels).
SIGMA_MAX = 16.0
#: Annotated pixels used per class when fitting (a random subsample beyond this).
MAX_PIXELS_PER_CLASS = 20_000


def pixel_features(
    image: np.ndarray, *, normalise: bool = True, sigma_max: float = SIGMA_MAX
) -> np.ndarray:
    """Per-pixel multiscale features, float32 ``(H, W, F)``.

    Parameters
    ----------
    image
        ``(H, W)`` or ``(H, W, C)``.
    normalise
        Compute the features on the percentile-normalised image (default) or
        on the raw intensities (what pixel-classifier tools do).
    sigma_max
        Largest Gaussian scale.

    Examples
    --------
    >>> pixel_features(np.zeros((32, 32))).shape[:2]
    (32, 32)
    """
    from skimage.feature import multiscale_basic_features

    if normalise:
        x = normalize_image(image, NormalizationConfig())
    else:
        x = to_channels_last(image).astype(np.float32)
    features = multiscale_basic_features(
        x, intensity=True, edges=True, texture=True, sigma_min=1.0, sigma_max=sigma_max,
        num_sigma=5, channel_axis=-1,
    )  # fmt: skip
    return features.astype(np.float32, copy=False)


class PixelClassifier:
    """A random forest on :func:`pixel_features`, fitted on scribbles.

    Parameters
    ----------
    normalise
        Features of the normalised image (default) or of the raw one.
    n_estimators, max_depth
        Size of the forest (small by default: an answer in about a second).
    seed
        Random state of the forest and of the pixel subsample.

    Examples
    --------
    >>> from napari_cytounet.core.synthetic import synthetic_cells, scribbles_from_labels
    >>> image, labels = synthetic_cells((64, 64), seed=1)
    >>> mask = PixelClassifier().fit(image, scribbles_from_labels(labels)).predict(image)
    >>> mask.dtype.name
    'bool'
    """

    def __init__(
        self,
        *,
        normalise: bool = True,
        n_estimators: int = 40,
        max_depth: int | None = 14,
        seed: int = 0,
    ) -> None:
        self.normalise = normalise
        self.n_estimators = int(n_estimators)
        self.max_depth = None if max_depth is None else int(max_depth)
        self.seed = int(seed)
        self.forest = None
        self._cache: tuple[int, tuple, np.ndarray] | None = None

    def features(self, image: np.ndarray) -> np.ndarray:
        """Features of ``image``, cached for the last image seen (same array, same shape)."""
        key = (id(image), np.shape(image))
        if self._cache is not None and self._cache[:2] == key:
            return self._cache[2]
        features = pixel_features(image, normalise=self.normalise)
        self._cache = (key[0], key[1], features)
        return features

    def fit(
        self,
        images: np.ndarray | list[np.ndarray],
        scribbles: np.ndarray | list[np.ndarray],
        features: list[np.ndarray] | None = None,
    ) -> PixelClassifier:
        """Fit on the annotated pixels (0 = not annotated, 1 = background, 2 = foreground).

        ``images``/``scribbles`` may be single arrays or lists of them; ``features``
        (one array per image) skips recomputing them.

        Raises
        ------
        DataError
            If nothing is annotated or only one class is.
        """
        from sklearn.ensemble import RandomForestClassifier

        images = images if isinstance(images, list) else [images]
        scribbles = scribbles if isinstance(scribbles, list) else [scribbles]
        xs, ys = [], []
        rng = np.random.default_rng(self.seed)
        for k, (image, lab) in enumerate(zip(images, scribbles)):
            feats = features[k] if features is not None else self.features(image)
            lab = np.asarray(lab)
            if lab.shape != feats.shape[:2]:
                raise DataError(
                    f"Scribbles of shape {lab.shape} do not match the image's {feats.shape[:2]}."
                )
            for value in np.unique(lab[lab > 0]):
                rr, cc = np.nonzero(lab == value)
                if rr.size > MAX_PIXELS_PER_CLASS:
                    pick = rng.choice(rr.size, MAX_PIXELS_PER_CLASS, replace=False)
                    rr, cc = rr[pick], cc[pick]
                xs.append(feats[rr, cc])
                ys.append(np.full(rr.size, value, np.int64))
        if not xs:
            raise DataError("Nothing is annotated: paint some background and foreground first.")
        y = np.concatenate(ys)
        if np.unique(y).size < 2:
            raise DataError("Paint both background (1) and foreground (2) before segmenting.")
        self.forest = RandomForestClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth, n_jobs=-1,
            random_state=self.seed, class_weight="balanced",
        )  # fmt: skip
        self.forest.fit(np.concatenate(xs), y)
        return self

    def predict_proba(self, image: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Foreground probability (the sum over classes >= 2), float32 ``(H, W)``."""
        if self.forest is None:
            raise DataError("The pixel classifier is not fitted yet; call fit() first.")
        feats = features if features is not None else self.features(image)
        h, w, f = feats.shape
        proba = self.forest.predict_proba(feats.reshape(-1, f))
        fg = proba[:, np.asarray(self.forest.classes_) >= 2].sum(axis=1)
        return fg.reshape(h, w).astype(np.float32)

    def predict(self, image: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Foreground mask (probability > 0.5), bool ``(H, W)``."""
        return self.predict_proba(image, features) > 0.5
