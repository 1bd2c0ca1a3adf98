"""napari's side of the engine: start the engine process, send jobs, receive their events.

One :class:`Engine` per process (:func:`get_engine`). It starts the engine
process on the first job (``python -m napari_cytounet.engine``, which avoids
``multiprocessing``'s spawn re-running napari's ``__main__``) and talks to it over a
``multiprocessing.connection`` (a Unix socket, or a named pipe on Windows)
authenticated with a random key given on the child's stdin. A dispatcher
thread routes the engine's messages to the jobs by id. If the engine dies,
every running job ends with :class:`EngineStopped` and the next job starts a
new engine.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from .events import EngineReady, EngineStarting, EngineStopped

_log = logging.getLogger("napari_cytounet")

#: Seconds to wait for a new engine to import TensorFlow and say it is ready.
START_TIMEOUT = 300.0


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ info/warning chatter in napari's console
    env["KERAS_BACKEND"] = "tensorflow"  # the engine's core is TensorFlow's (whatever set it)
    env.pop("QT_QPA_PLATFORM", None)
    # the engine imports the package napari's process imported (also from a source tree)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    paths = [package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


#: TensorFlow's start-up chatter that its log level does not silence (absl info and warnings
#: written before absl is initialised, CUDA probing on machines without a GPU driver).
_NOISE = re.compile(
    r"^(?:[IW]\d{4} |WARNING: All log messages before absl|E\d{4} .*(?:cuInit|cuda_platform))"
)


def _forward_stderr(stream: Any) -> None:
    """Copy the engine's stderr to ours (its errors and crash reports), without TF's noise."""
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        if _NOISE.match(line) or sys.stderr is None:
            continue
        with contextlib.suppress(Exception):
            sys.stderr.write(line)
            sys.stderr.flush()
    stream.close()


class _Process:
    """One running engine process and its connection."""

    def __init__(self) -> None:
        from multiprocessing.connection import Listener

        authkey = secrets.token_bytes(32)
        self.listener = Listener(authkey=authkey)
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "napari_cytounet.engine", str(self.listener.address)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_child_env(),
        )
        threading.Thread(
            target=_forward_stderr, args=(self.popen.stderr,), daemon=True, name="engine-stderr"
        ).start()
        assert self.popen.stdin is not None
        self.popen.stdin.write(authkey.hex().encode() + b"\n")
        self.popen.stdin.close()
        self.conn = self._accept(authkey)
        self.send_lock = threading.Lock()
        self.ready = threading.Event()
        self.info: dict[str, Any] = {}
        self.dead = False

    def _accept(self, authkey: bytes) -> Any:
        """Accept the engine's connection; give up if it exits (or hangs) before connecting."""
        from multiprocessing.connection import Client

        result: dict[str, Any] = {}

        def accept() -> None:
            try:
                result["conn"] = self.listener.accept()
            except Exception as exc:  # the wake-up call below, or a failed handshake
                result["error"] = exc

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        end = time.monotonic() + START_TIMEOUT
        while thread.is_alive() and self.popen.poll() is None and time.monotonic() < end:
            thread.join(0.05)
        if thread.is_alive():  # wake accept() up with a connection of our own
            with contextlib.suppress(Exception):
                Client(self.listener.address, authkey=authkey).close()
            thread.join(5)
        self.listener.close()
        conn = result.get("conn")
        if conn is None or self.popen.poll() is not None:
            if conn is not None:
                conn.close()
            self.kill()
            raise EngineStopped.from_returncode(self.popen.poll())
        return conn

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, message: tuple[Any, ...]) -> None:
        with self.send_lock:
            self.conn.send(message)

    def returncode(self, wait: float = 5.0) -> int | None:
        try:
            return self.popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.returncode()


class Engine:
    """The engine process of this (napari's) process, started on demand.

    :meth:`run` is a generator of a job's events, to iterate in a worker thread
    (it blocks while waiting for the engine). It yields :class:`EngineStarting`
    and :class:`EngineReady` first when it has to start the engine.
    """

    def __init__(self) -> None:
        self._proc: _Process | None = None
        self._lock = threading.Lock()  # one start at a time
        self._queues: dict[int, queue.Queue[tuple[Any, ...]]] = {}
        self._next_id = 0
        self._holders: weakref.WeakSet[Any] = weakref.WeakSet()
        self.starts = 0  # engines started by this process (for tests and figures)
        self._prestarting = False
        self.last_start_seconds: float | None = None

    # -- lifetime ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The engine process's id, ``None`` when none runs."""
        proc = self._proc
        return proc.pid if proc is not None and not proc.dead else None

    @property
    def alive(self) -> bool:
        """Whether an engine process runs (and is connected)."""
        proc = self._proc
        return proc is not None and not proc.dead and proc.popen.poll() is None

    def _ensure(self) -> Iterator[Any]:
        if self.alive:
            return
        yield EngineStarting()  # never yield while holding the lock: the consumer may stop here
        with self._lock:
            if self.alive:  # another job started it meanwhile
                return
            if self._proc is not None:
                self._proc.kill()
            proc = _Process()
            threading.Thread(
                target=self._dispatch, args=(proc,), daemon=True, name="cytounet-engine"
            ).start()
            end = time.monotonic() + START_TIMEOUT
            while not proc.ready.wait(0.05):
                if proc.dead or time.monotonic() > end:
                    proc.kill()
                    raise EngineStopped.from_returncode(proc.popen.poll())
            self._proc = proc
            self.starts += 1
            self.last_start_seconds = time.perf_counter() - proc.started
        yield EngineReady(self.last_start_seconds, proc.pid)

    def _dispatch(self, proc: _Process) -> None:
        """Route the engine's messages to their jobs until its connection ends."""
        while True:
            try:
                message = proc.conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # an event napari's process cannot read: its job fails
                _log.exception("could not read a message of the engine")
                continue
            kind = message[0]
            if kind == "ready":
                proc.info = message[1]
                proc.ready.set()
                continue
            target = self._queues.get(message[1])
            if target is not None:
                target.put(message)
        proc.dead = True
        proc.conn.close()
        code = proc.returncode()
        if code is None:  # connection lost but the process lingers: end it
            proc.kill()
            code = proc.popen.poll()
        for target in list(self._queues.values()):
            target.put(("died", None, code))

    def hold(self, owner: Any) -> None:
        """Keep the engine for ``owner`` (a widget); see :meth:`release`."""
        self._holders.add(owner)

    def prestart(self) -> None:
        """Start the engine process now, in the background, if none runs.

        The widgets that run models call it when they open, so TensorFlow loads (a few
        seconds) while the user chooses layers and paints, not after the first click.
        ``CYTOUNET_ENGINE_PRESTART=0`` turns it off. If every holder is gone by the time the
        engine is up, it stops again.
        """
        if os.environ.get("CYTOUNET_ENGINE_PRESTART", "1") == "0":
            return
        if self.alive or self._prestarting:
            return
        self._prestarting = True

        def start() -> None:
            try:
                for _ in self._ensure():
                    pass
            except Exception:  # the first job will start it again and report why
                _log.exception("could not start the engine in the background")
            finally:
                self._prestarting = False
            if not self._holders:
                self.shutdown()

        threading.Thread(target=start, daemon=True, name="cytounet-engine-prestart").start()

    def release(self, owner: Any) -> None:
        """``owner`` is done; with no owner left the engine stops (in the background)."""
        self._holders.discard(owner)
        if not self._holders and self._proc is not None:
            threading.Thread(target=self.shutdown, daemon=True).start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the engine process (running jobs end with :class:`EngineStopped`)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, EOFError, ValueError):
            proc.send(("shutdown",))
        if proc.returncode(timeout) is None:
            proc.kill()

    # -- jobs ----------------------------------------------------------------------------------
    def run(self, job: str, *, stop: threading.Event | None = None, **kwargs: Any) -> Iterator[Any]:
        """Run ``job`` (``"train"``, ``"predict"``, ``"load"``, ``"save"``) in the engine.

        Yields the job's events as the engine sends them; raises what the job
        raised, or :class:`EngineStopped` if the engine ended meanwhile. Setting
        ``stop`` asks the job to stop (training keeps its best weights; other
        jobs end with :class:`~.events.JobCancelled`). Closing the generator
        early also stops the job.
        """
        yield from self._ensure()
        proc = self._proc
        if proc is None:
            raise EngineStopped.from_returncode(None)
        with self._lock:
            self._next_id += 1
            job_id = self._next_id
        inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._queues[job_id] = inbox
        finished = stop_sent = False
        try:
            self._send(proc, ("job", job_id, job, kwargs))
            while True:
                if stop is not None and stop.is_set() and not stop_sent:
                    stop_sent = True  # checked at every message: a flood of events must not
                    self._send(proc, ("stop", job_id))  # hold a stop request back
                try:
                    message = inbox.get(timeout=0.05)
                except queue.Empty:
                    if proc.dead and inbox.empty():
                        message = ("died", job_id, proc.returncode(0.5))
                    else:
                        continue
                kind = message[0]
                if kind == "event":
                    yield message[2]
                    continue
                finished = True
                if kind == "error":
                    exc, details = message[2], message[3]
                    if hasattr(exc, "add_note"):  # Python >= 3.11
                        exc.add_note(f"In the engine process:\n{details}")
                    raise exc
                if kind == "died":
                    raise EngineStopped.from_returncode(message[2])
                return  # "end"
        finally:
            self._queues.pop(job_id, None)
            if not finished and not proc.dead:
                with contextlib.suppress(OSError, EOFError, ValueError):
                    proc.send(("stop", job_id))

    @staticmethod
    def _send(proc: _Process, message: tuple[Any, ...]) -> None:
        try:
            proc.send(message)
        except (OSError, EOFError) as exc:  # the engine is gone
            raise EngineStopped.from_returncode(proc.returncode(1.0)) from exc


_ENGINE: Engine | None = None
_ENGINE_LOCK = threading.Lock()


def get_engine() -> Engine:
    """The engine of this process (created on first use; its process starts with a job)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = Engine()
            atexit.register(_ENGINE.shutdown)
        return _ENGINE


def shutdown_engine() -> None:
    """Stop this process's engine, if one runs (the next job starts a new one)."""
    if _ENGINE is not None:
        _ENGINE.shutdown()
