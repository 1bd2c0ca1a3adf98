"""The decoded-chunk cache that lazy prediction reads zarr inputs through."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest
import zarr

from napari_cytounet.core.chunk_cache import ChunkCache, cached_window, chunk_shape
from napari_cytounet.core.lazy import as_source


@pytest.fixture(params=[((2, 37, 53), (1, 10, 7), (1,)), ((41, 29, 3), (8, 16, 3), ())])
def chunked(request, tmp_path):
    shape, chunks, index = request.param
    data = np.random.default_rng(1).integers(0, 4000, shape).astype(np.uint16)
    z = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=shape, chunks=chunks, dtype="u2")
    z[:] = data
    return data, z, chunks[len(index) : len(index) + 2], index


def test_windows_equal_direct_reads_and_decode_each_chunk_once(chunked) -> None:
    data, z, plane_chunks, index = chunked
    cache = ChunkCache()
    rng = np.random.default_rng(0)
    h, w = data.shape[len(index) : len(index) + 2]
    for _ in range(60):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0 + 1, h + 1)), int(rng.integers(x0 + 1, w + 1))
        got = cache.window(z, plane_chunks, "t", index, slice(y0, y1), slice(x0, x1))
        assert np.array_equal(got, data[(*index, slice(y0, y1), slice(x0, x1))])
    grid = -(-h // plane_chunks[0]) * -(-w // plane_chunks[1])
    assert cache.misses <= grid  # a roomy cache decodes each chunk at most once
    assert cache.hits > 0


@pytest.mark.parametrize("step", [1, 2, 3, 5, 11])
def test_strided_sample_equals_numpy(chunked, step) -> None:
    data, z, plane_chunks, index = chunked
    got = ChunkCache().strided(z, plane_chunks, "t", index, step)
    assert np.array_equal(got, data[(*index, slice(None, None, step), slice(None, None, step))])


def test_bound_in_bytes_is_kept_and_sources_never_mix(chunked) -> None:
    data, z, plane_chunks, index = chunked
    chunk_bytes = plane_chunks[0] * plane_chunks[1] * 2 * (data.shape[-1] if not index else 1)
    cache = ChunkCache(max_bytes=3 * chunk_bytes)
    full = (slice(None), slice(None))
    assert np.array_equal(cache.window(z, plane_chunks, "a", index, *full), data[index])
    assert cache._bytes <= 3 * chunk_bytes
    other = zarr.create_array(store={}, shape=z.shape, chunks=z.chunks, dtype="u2")
    other[:] = data + 1
    assert np.array_equal(cache.window(other, plane_chunks, "b", index, *full), data[index] + 1)
    cache.drop("b")
    assert all(key[0] == "a" for key in cache._chunks)


def test_numpy_and_dask_are_read_directly_and_sources_pickle(chunked) -> None:
    data, z, plane_chunks, index = chunked
    assert chunk_shape(data) is None
    assert chunk_shape(z) == z.chunks
    source = as_source(z, in_channels=3 if not index else 1)
    clone = pickle.loads(pickle.dumps(source))  # what a worker process receives
    assert clone.token == source.token
    assert np.array_equal(
        cached_window(clone.array, plane_chunks, clone.token, index, slice(0, 5), slice(2, 9)),
        data[(*index, slice(0, 5), slice(2, 9))],
    )


class _SlowChunks:
    """A chunked array whose reads take a while and are counted (or fail), for thread tests."""

    def __init__(self, data: np.ndarray, chunks: tuple, fail: bool = False) -> None:
        self.data, self.chunks, self.fail = data, chunks, fail
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.reads = 0
        self._lock = threading.Lock()

    def __getitem__(self, key):
        with self._lock:
            self.reads += 1
        time.sleep(0.02)  # long enough for every thread to miss the chunk at once
        if self.fail:
            raise OSError("chunk is corrupt")
        return self.data[key]


def _at_once(n: int, fn) -> list:
    """Run ``fn`` in ``n`` threads released together; their results or exceptions."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    return results


def test_threads_that_miss_together_decode_each_chunk_once() -> None:
    data = np.arange(40 * 40, dtype=np.uint16).reshape(40, 40)
    array = _SlowChunks(data, (20, 20))
    cache = ChunkCache()
    full = (slice(3, 37), slice(5, 31))  # all four chunks
    results = _at_once(6, lambda: cache.window(array, (20, 20), "t", (), *full))
    assert all(np.array_equal(r, data[full]) for r in results)
    assert array.reads == 4 and cache.misses == 4


def test_a_failed_decode_raises_in_every_waiting_thread_and_leaves_nothing_behind() -> None:
    data = np.zeros((20, 20), np.uint16)
    array = _SlowChunks(data, (20, 20), fail=True)
    cache = ChunkCache()
    results = _at_once(4, lambda: cache.window(array, (20, 20), "t", (), slice(0, 5), slice(0, 5)))
    assert all(isinstance(r, OSError) for r in results)
    assert not cache._chunks and not cache._loading
    array.fail = False  # the next read tries again
    got = cache.window(array, (20, 20), "t", (), slice(0, 5), slice(0, 5))
    assert np.array_equal(got, data[:5, :5])
