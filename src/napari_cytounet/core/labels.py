"""Label arrays the widgets exchange with the core: scribbles, corrections, annotated planes.

These helpers are numpy only (no napari, no TensorFlow), so the widgets, the CLI and the tests
share them and they can be tested without Qt.

Examples
--------
>>> import numpy as np
>>> as_scribbles(np.array([[0, 3]])).tolist()
[[1, 2]]
>>> annotated_planes(np.array([[[0, 0]], [[0, 1]]]))
[(1,)]
"""

from __future__ import annotations

import numpy as np


def annotated_planes(labels: np.ndarray) -> list[tuple[int, ...]]:
    """Indices over the leading axes of the planes that hold any nonzero label.

    A 2D array gives ``[()]`` when anything is labelled, else ``[]``.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return [()] if labels.any() else []
    axes = tuple(range(labels.ndim - 2, labels.ndim))
    found = np.asarray(labels != 0).any(axis=axes)
    return [tuple(int(i) for i in idx) for idx in np.argwhere(found)]


def edited_planes(edits: np.ndarray) -> list[tuple[int, ...]]:
    """Leading indices of the planes of a stack in which the user changed anything."""
    return annotated_planes(np.asarray(edits))


def as_scribbles(labels: np.ndarray) -> np.ndarray:
    """A dense mask in scribble coding: every pixel annotated, 1 = background, 2 = cell."""
    labels = np.asarray(labels)
    return np.where(labels != 0, 2, 1).astype(np.uint8)


def fit_dtype(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` in a dtype that holds its values and those of ``dtype`` (no copy if it does)."""
    return array.astype(np.result_type(array.dtype, dtype), copy=False)


def merge_corrections(
    current: np.ndarray,
    predicted: np.ndarray | None,
    previous: np.ndarray | None = None,
    previous_edits: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Combine the user's latest edits with the earlier ones; returns ``(corrections, edits)``.

    ``current`` is the segmentation layer as the user left it and ``predicted``
    what the model wrote there; pixels that differ are the new edits. Earlier
    edits (``previous_edits``, with their values in ``previous``) that the user
    has not touched again are kept, so no edit is ever lost to a later
    prediction. Without ``predicted`` the whole layer counts as edited.

    Examples
    --------
    >>> predicted = np.array([[0, 1, 1]])
    >>> corrections, edits = merge_corrections(np.array([[1, 1, 0]]), predicted)
    >>> edits.tolist()
    [[True, False, True]]
    """
    current = np.asarray(current)
    if predicted is None or np.shape(predicted) != current.shape:
        edits = np.ones(current.shape, bool)
    else:
        edits = current != np.asarray(predicted)
    corrections = np.array(current, copy=True)
    if (
        previous is not None
        and previous_edits is not None
        and np.shape(previous) == current.shape
        and np.shape(previous_edits) == current.shape
    ):
        keep = previous_edits & ~edits
        corrections = fit_dtype(corrections, np.asarray(previous).dtype)
        corrections[keep] = np.asarray(previous)[keep]
        edits = edits | previous_edits
    return corrections, edits
