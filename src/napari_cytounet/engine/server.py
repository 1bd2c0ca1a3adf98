"""The engine process: receives jobs from napari's process and sends their events back.

The main thread reads the connection (jobs, stop requests, shutdown); every job
runs in a thread of its own (as the widgets' jobs did in napari's process, so a
prediction can run while a model trains), sending each event as it comes. When
the connection closes (napari's process ended or was killed) the engine exits
at once.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import sys
import threading
import time
import traceback
from typing import Any

#: Jobs that end by themselves when asked to stop (training keeps its best weights, a live
#: round still answers); every other job is closed at its next event after a stop request.
STOPS_ITSELF = frozenset({"train", "live_update"})


class _Server:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.send_lock = threading.Lock()
        self.stops: dict[int, threading.Event] = {}

    def send(self, message: tuple[Any, ...]) -> None:
        with self.send_lock:
            try:
                self.conn.send(message)
            except (OSError, EOFError):  # napari's process is gone
                os._exit(0)

    def run_job(self, job_id: int, name: str, kwargs: dict[str, Any]) -> None:
        from .events import JobCancelled
        from .jobs import JOBS

        stop = self.stops[job_id]
        generator = None
        try:
            generator = JOBS[name](stop=stop, **kwargs)
            for event in generator:
                self.send_event(job_id, event)
                if stop.is_set() and name not in STOPS_ITSELF:
                    generator.close()
                    self.send(("event", job_id, JobCancelled()))
                    break
        except Exception as exc:  # sent to napari's process, shown there
            self.send(("error", job_id, portable(exc), traceback.format_exc()))
        finally:
            self.stops.pop(job_id, None)
            self.send(("end", job_id))

    def send_event(self, job_id: int, event: Any) -> None:
        try:
            payload = pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TypeError(f"cannot send {type(event).__name__} to napari: {exc}") from exc
        self.send(("event", job_id, _Pickled(payload)))

    def serve(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):  # napari's process closed the connection or died
                os._exit(0)
            kind = message[0]
            if kind == "job":
                _, job_id, name, kwargs = message
                self.stops[job_id] = threading.Event()
                threading.Thread(
                    target=self.run_job, args=(job_id, name, kwargs), daemon=True
                ).start()
            elif kind == "stop":
                stop = self.stops.get(message[1])
                if stop is not None:
                    stop.set()
            elif kind == "shutdown":
                for stop in list(self.stops.values()):
                    stop.set()
                self.conn.close()
                sys.stderr.flush()
                os._exit(0)


class _Pickled:
    """An event pickled once in the job's thread (so a failure is the job's, not the reader's)."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __reduce__(self) -> tuple[Any, ...]:
        return (pickle.loads, (self.payload,))


def portable(exc: BaseException) -> BaseException:
    """``exc`` if napari's process can unpickle it without TensorFlow, else a RemoteError."""
    from .events import RemoteError

    module = type(exc).__module__
    if module == "builtins" or module.startswith("napari_cytounet"):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:
            pass
    return RemoteError(type(exc).__name__, str(exc))


def main(argv: list[str]) -> int:
    """Connect to napari's process at ``argv[0]`` (authkey on stdin), warm up, serve jobs."""
    from multiprocessing.connection import Client

    faulthandler.enable()
    authkey = bytes.fromhex(sys.stdin.readline().strip())
    conn = Client(argv[0], authkey=authkey)
    t0 = time.perf_counter()
    import tensorflow as tf  # warm up now, not in the first job

    tf.get_logger().setLevel("ERROR")  # retracing notes etc. are not for napari's console

    import napari_cytounet.core.training  # noqa: F401

    conn.send(("ready", {"pid": os.getpid(), "seconds": time.perf_counter() - t0}))
    _Server(conn).serve()
    return 0
