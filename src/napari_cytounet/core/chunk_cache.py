"""Windows of a chunked array (zarr, h5py) read through a small cache of decoded chunks.

The tiles of a plane overlap each other and straddle chunk borders: a 1088 px
tile on 1024 px chunks touches four chunks, and each chunk is shared by up to
four tiles. Reading every window straight from zarr decodes each chunk about
four times (measured on a 2048^2 uint16 plane: 36 ms for the four windows
against 8 ms for the whole plane). Zarr keeps no decoded chunks, so this module
does: a least-recently-used store of decoded chunks, bounded in bytes, per
process and shared by the threads of a dask ``threads`` scheduler. Tiles run row
by row, so a bound of a few chunk rows is enough for a hit on every shared chunk.

Examples
--------
>>> import numpy as np
>>> cache = ChunkCache(max_bytes=1 << 20)
>>> a = np.arange(36, dtype=np.uint8).reshape(6, 6)
>>> cache.window(a, (3, 3), "a", (), slice(2, 5), slice(1, 4)).tolist()
[[13, 14, 15], [19, 20, 21], [25, 26, 27]]
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

DEFAULT_MAX_BYTES = 128 * 2**20  # a whole 8k^2 uint16 plane; two chunk rows of a 32k-wide one


def chunk_shape(array: Any) -> tuple[int, ...] | None:
    """The chunk shape (every axis) of a chunked array that is not numpy or dask, or None.

    Examples
    --------
    >>> chunk_shape(np.zeros((4, 4)))  # numpy: no chunks, read directly
    """
    if isinstance(array, np.ndarray) or hasattr(array, "dask"):
        return None
    chunks = getattr(array, "chunks", None)
    if not isinstance(chunks, tuple) or len(chunks) != array.ndim:
        return None
    if not all(isinstance(c, (int, np.integer)) and c > 0 for c in chunks):
        return None
    return tuple(int(c) for c in chunks)


class ChunkCache:
    """Decoded chunks of chunked arrays, least recently used first out, at most ``max_bytes``.

    Chunks are keyed by the caller's ``token`` (one per source array), the plane
    index and the chunk's row and column, so arrays never mix. A chunk is decoded
    by one thread at a time: a thread that misses a chunk another thread is
    decoding waits for it. (The first tasks of a plane all start at once and
    want the same chunks: without the wait, a 2048^2 plane's four chunks were
    decoded five times over, 70 ms before the first tile could start.)
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._chunks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Event] = {}
        self.hits = self.misses = 0

    def window(
        self, array: Any, chunks: tuple[int, int], token: str, index: tuple, ys: slice, xs: slice
    ) -> np.ndarray:
        """``array[(*index, ys, xs)]`` (unit-step slices) assembled from cached chunks.

        ``chunks`` is the chunk height and width of the two plane axes, which
        follow ``index`` in ``array``; any axes after them are read whole.
        """
        ch, cw = chunks
        y0, y1, _ = ys.indices(array.shape[len(index)])
        x0, x1, _ = xs.indices(array.shape[len(index) + 1])
        trailing = array.shape[len(index) + 2 :]
        out = np.empty((y1 - y0, x1 - x0, *trailing), array.dtype)
        for cy in range(y0 // ch, -(-y1 // ch)):
            for cx in range(x0 // cw, -(-x1 // cw)):
                chunk = self._chunk(array, token, index, cy * ch, cx * cw, ch, cw)
                r0, r1 = max(y0, cy * ch), min(y1, (cy + 1) * ch)
                c0, c1 = max(x0, cx * cw), min(x1, (cx + 1) * cw)
                out[r0 - y0 : r1 - y0, c0 - x0 : c1 - x0] = chunk[
                    r0 - cy * ch : r1 - cy * ch, c0 - cx * cw : c1 - cx * cw
                ]
        return out

    def strided(
        self, array: Any, chunks: tuple[int, int], token: str, index: tuple, step: int
    ) -> np.ndarray:
        """``array[(*index, ::step, ::step)]``, chunk by chunk through the cache.

        It decodes each chunk once, as a strided zarr read would, and leaves the
        chunks cached for the tiles that follow (as many as the bound holds).
        """
        ch, cw = chunks
        h, w = array.shape[len(index) : len(index) + 2]
        trailing = array.shape[len(index) + 2 :]
        out = np.empty((-(-h // step), -(-w // step), *trailing), array.dtype)
        for cy in range(-(-h // ch)):
            r0 = -(-cy * ch // step) * step  # first sampled row in this chunk row
            for cx in range(-(-w // cw)):
                c0 = -(-cx * cw // step) * step
                if r0 >= min(h, (cy + 1) * ch) or c0 >= min(w, (cx + 1) * cw):
                    continue
                part = self._chunk(array, token, index, cy * ch, cx * cw, ch, cw)
                part = part[r0 - cy * ch :: step, c0 - cx * cw :: step]
                out[
                    r0 // step : r0 // step + part.shape[0], c0 // step : c0 // step + part.shape[1]
                ] = part
        return out

    def _chunk(self, array, token, index, top, left, ch, cw) -> np.ndarray:
        key = (token, index, top, left)
        while True:
            with self._lock:
                chunk = self._chunks.get(key)
                if chunk is not None:
                    self._chunks.move_to_end(key)
                    self.hits += 1
                    return chunk
                loading = self._loading.get(key)
                if loading is None:  # this thread decodes it
                    self.misses += 1
                    loading = self._loading[key] = threading.Event()
                    break
            loading.wait()  # another thread decodes it; then look again (a hit, or
            # its decoding failed and this thread tries, and raises, itself)
        try:
            chunk = np.asarray(array[(*index, slice(top, top + ch), slice(left, left + cw))])
            with self._lock:
                self._chunks[key] = chunk
                self._bytes += chunk.nbytes
                while self._bytes > self.max_bytes and len(self._chunks) > 1:
                    _, old = self._chunks.popitem(last=False)
                    self._bytes -= old.nbytes
        finally:
            with self._lock:
                del self._loading[key]
            loading.set()
        return chunk

    def drop(self, token: str) -> None:
        """Drop the chunks of one source (at the end of a run)."""
        with self._lock:
            for key in [k for k in self._chunks if k[0] == token]:
                self._bytes -= self._chunks.pop(key).nbytes


CHUNKS = ChunkCache()
"""The cache of this process, used by :mod:`.lazy` for zarr and other chunked inputs."""


def cached_window(
    array: Any, chunks: tuple[int, int], token: str, index: tuple, ys: slice, xs: slice
) -> np.ndarray:
    """:meth:`ChunkCache.window` through the cache of the process it runs in.

    A function, not the bound method: dask sends tasks to worker processes by
    pickling them, and each worker keeps its own cache.
    """
    return CHUNKS.window(array, chunks, token, index, ys, xs)


def cached_strided(
    array: Any, chunks: tuple[int, int], token: str, index: tuple, step: int
) -> np.ndarray:
    """:meth:`ChunkCache.strided` through the cache of the process it runs in."""
    return CHUNKS.strided(array, chunks, token, index, step)
