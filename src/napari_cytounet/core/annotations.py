"""Annotations of an interactive session: label conventions, anchors, stroke-centred patches.

Helpers of :mod:`.interactive`, numpy only: how labels are read (scribbles or a
dense mask), how the pseudo-labels that anchor fine-tuning are chosen, how
patches are sampled around the strokes of every annotated image (replay), and
the score of a prediction on annotated pixels (the never-worse rule).

Examples
--------
>>> resolve_label_mode(np.array([[0, 1, 2]]))
'scribbles'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError

LABEL_MODES = ("auto", "scribbles", "dense")
#: Images larger than this are classified by the forest at half resolution.
FOREST_FULL_PIXELS = 600_000


@dataclass
class Annotation:
    """One annotated image of a session: normalised pixels, targets, forest features, anchors."""

    key: str
    x: np.ndarray  # float32 (H, W, C)
    target: np.ndarray  # uint8 class index
    weight: np.ndarray  # float32: 1 on annotated pixels
    image: np.ndarray
    features: np.ndarray | None = None
    scribbles: np.ndarray | None = None  # 0/1/2 for the forest
    probabilities: np.ndarray | None = None  # the adopted model's, when known
    pseudo: np.ndarray | None = None  # float32 weight of the pseudo-labels (0 = none)
    pseudo_target: np.ndarray | None = None  # uint8 class of the pseudo-labels
    first: np.ndarray | None = None  # bool: pixels annotated in the first round on this image
    newest: np.ndarray | None = None  # bool: pixels annotated in the latest call only
    sparse: bool = True  # scribbles (applied to the mask as edits), not a dense mask

    def set_labels(self, target: np.ndarray, weight: np.ndarray, correction: float = 1.0) -> None:
        """Take the labels of a new call: strokes added after the first call weigh ``correction``.

        Records :attr:`first` (the first call's strokes) and :attr:`newest` (the
        strokes this call added) and the forest's 0/1/2 scribbles.
        """
        annotated = weight > 0
        self.newest = annotated & ~(self.weight > 0)
        if self.first is None:
            self.first = annotated
        weight = np.where(annotated & ~self.first, correction, weight).astype(np.float32)
        self.target, self.weight = target, weight
        self.scribbles = np.where(annotated, target.astype(np.uint8) + 1, 0).astype(np.uint8)

    @property
    def corrected(self) -> bool:
        """Whether strokes were added after the first call (the rounds are corrections)."""
        return self.first is not None and bool(((self.weight > 0) & ~self.first).any())


def resolve_label_mode(labels: np.ndarray, label_mode: str = "auto") -> str:
    """``"scribbles"`` or ``"dense"`` for ``labels`` (see the module docstring).

    Examples
    --------
    >>> resolve_label_mode(np.array([[0, 1, 2]]))
    'scribbles'
    >>> resolve_label_mode(np.array([[0, 1, 1]]))
    'dense'
    """
    if label_mode not in LABEL_MODES:
        raise ConfigError(
            f"label_mode must be one of {', '.join(LABEL_MODES)}; got {label_mode!r}."
        )
    if label_mode != "auto":
        return label_mode
    values = np.unique(np.asarray(labels))
    if values.size and values.max() <= 2 and 2 in values:
        return "scribbles"
    return "dense"


def forest_step(image: np.ndarray) -> int:
    """Subsampling of an image for the forest: 2 above :data:`FOREST_FULL_PIXELS`."""
    h, w = np.shape(image)[:2]
    return 2 if h * w > FOREST_FULL_PIXELS else 1


def balanced_accuracy(prob: np.ndarray, target: np.ndarray, weight: np.ndarray) -> float | None:
    """Mean over the two classes of the accuracy on pixels of weight > 0 (None if one class only).

    Examples
    --------
    >>> balanced_accuracy(np.array([0.9, 0.2, 0.7]), np.array([1, 0, 0]), np.ones(3))
    0.75
    """
    annotated = weight > 0
    fg = annotated & (target > 0)
    bg = annotated & (target == 0)
    if not fg.any() or not bg.any():
        return None
    pred = prob > 0.5
    return 0.5 * (float(pred[fg].mean()) + float((~pred[bg]).mean()))


def set_anchors(
    entry: Annotation,
    forest: np.ndarray,
    weight: float,
    confidence: float,
    radius: float = 0.0,
) -> None:
    """Pseudo-labels: unannotated pixels the current UNet is sure of, unless the forest
    is sure of the opposite or a stroke contradicts them.

    They anchor the UNet to what it already gets right (no forgetting away
    from the strokes, no overfitting of 0.3% of the pixels); the forest,
    fitted on the newest strokes, vetoes anchors it confidently contradicts.
    With ``radius > 0`` the strokes veto too (:func:`contradicted`): a
    background stroke on a predicted object frees that whole object, a
    foreground stroke in predicted background frees the background within
    ``radius`` pixels, so corrections can spread over the wrong object.
    """
    entry.pseudo = np.zeros(forest.shape, np.float32)
    entry.pseudo_target = np.zeros(forest.shape, np.uint8)  # no anchors: nothing to keep
    if weight <= 0 or entry.probabilities is None:
        return
    hi, lo = confidence, 1.0 - confidence
    unet = entry.probabilities
    fg = (unet > hi) & (forest > lo)
    bg = (unet < lo) & (forest < hi)
    keep = (fg | bg) & (entry.weight == 0)
    if radius > 0:
        keep &= ~contradicted(unet > 0.5, entry.target, entry.weight, radius)
    entry.pseudo[keep] = weight
    entry.pseudo_target = fg.astype(np.uint8)


def contradicted(
    pred: np.ndarray, target: np.ndarray, weight: np.ndarray, radius: float
) -> np.ndarray:
    """Pixels whose predicted class a stroke of the other class disputes.

    The connected components of the predicted foreground that a background
    stroke touches, and the predicted background within ``radius`` pixels of a
    foreground stroke that lies in predicted background.

    Examples
    --------
    >>> pred = np.zeros((5, 9), bool); pred[1:4, 1:4] = True
    >>> target = np.zeros((5, 9), np.uint8); weight = np.zeros((5, 9), np.float32)
    >>> weight[2, 2] = 1  # a background stroke on the object
    >>> int(contradicted(pred, target, weight, 2).sum())
    9
    """
    from scipy import ndimage as ndi

    strokes = weight > 0
    out = np.zeros(pred.shape, bool)
    bg_on_fg = strokes & (target == 0) & pred
    if bg_on_fg.any():
        components, _ = ndi.label(pred)
        hit = np.unique(components[bg_on_fg])
        out |= np.isin(components, hit[hit > 0])
    fg_on_bg = strokes & (target > 0) & ~pred
    if fg_on_bg.any():
        near = ndi.distance_transform_edt(~fg_on_bg) <= radius
        out |= near & ~pred
    return out


def stroke_sampler(entries: list[Annotation], patch: int, seed: int, newest: float = 0.0) -> Any:
    """Patches centred on strokes of every annotated image (replay), pseudo-labels around.

    With ``newest > 0`` the strokes of the latest call (:attr:`Annotation.newest`)
    are that many times more likely to centre a patch than older strokes.
    """
    from .data import Example, PatchSampler

    examples = []
    for e in entries:
        pseudo = e.pseudo
        if pseudo is None or not pseudo.any():
            examples.append(Example(e.x, e.target, e.weight, e.key))
            continue
        target = np.where(e.weight > 0, e.target, e.pseudo_target).astype(np.uint8)
        examples.append(Example(e.x, target, np.maximum(e.weight, pseudo), e.key))
    sampler = PatchSampler(examples, patch, foreground_bias=0.5, seed=seed)
    # centre patches on the real strokes, not on pseudo-labels
    sizes = []
    for i, e in enumerate(entries):
        padded = sampler.weights[i].shape
        strokes = np.zeros(padded, bool)
        oy, ox = (padded[0] - e.weight.shape[0]) // 2, (padded[1] - e.weight.shape[1]) // 2
        strokes[oy : oy + e.weight.shape[0], ox : ox + e.weight.shape[1]] = e.weight > 0
        fg = np.zeros(padded, bool)
        fg[oy : oy + e.weight.shape[0], ox : ox + e.weight.shape[1]] = (e.weight > 0) & (
            e.target > 0
        )
        sampler.annotated[i] = np.flatnonzero(strokes.ravel())
        sampler.foreground[i] = np.flatnonzero(fg.ravel())
        if newest > 1 and e.newest is not None and e.newest.any() and e.first is not None:
            new = np.zeros(padded, bool)
            new[oy : oy + e.weight.shape[0], ox : ox + e.weight.shape[1]] = e.newest
            extra = round(newest) - 1
            new_idx = np.flatnonzero(new.ravel())
            new_fg = np.flatnonzero((new & fg).ravel())
            sampler.annotated[i] = np.concatenate([sampler.annotated[i]] + [new_idx] * extra)
            sampler.foreground[i] = np.concatenate([sampler.foreground[i]] + [new_fg] * extra)
        sizes.append(float(max(1, sampler.annotated[i].size)))
    sampler.image_p = np.asarray(sizes) / sum(sizes)
    return sampler
