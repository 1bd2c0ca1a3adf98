"""Safe file writing: the one atomic-write helper every writer of the package uses.

:func:`atomic_write` writes to a temporary file beside the destination, flushes it to disk,
gives it the right permissions and renames it over the destination with :func:`os.replace`.
A crash, Ctrl-C or full disk at any moment leaves either the old file or the new one, never
a half-written file.

* **Permissions.** A new file gets ``0o666 & ~umask`` (``0644`` with the usual umask), like
  any other program's output; a replaced file keeps its own mode.
* **Temporary names.** ``.NAME.cytounet-tmp-PID.SUFFIX`` (hidden, the suffix kept so that
  writers which pick the format from the suffix work). A process killed with SIGKILL cannot
  clean up, so the next write into the same folder removes every such file whose process
  is gone (:func:`remove_orphans`).

Examples
--------
>>> from pathlib import Path
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> atomic_write(folder / "notes.txt", "hello\\n").read_text()
'hello\\n'
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path

TMP_TAG = ".cytounet-tmp-"
_TMP_RE = re.compile(r"^\..+\.cytounet-tmp-(\d+)(\.[^.]*)?$")
_cleaned: set[str] = set()
_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode(path: Path) -> int:
    """Mode for a file written at ``path``: the existing file's, else ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def temp_path(path: Path) -> Path:
    """The temporary name used while ``path`` is written (recognised by :func:`remove_orphans`)."""
    return path.with_name(f".{path.name}{TMP_TAG}{os.getpid()}{path.suffix}")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of our temporary file names."""
    return _TMP_RE.match(name) is not None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM)
        return True
    return True


def remove_orphans(folder: Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by writers that died (e.g. SIGKILL).

    Only names made by :func:`temp_path` whose process no longer exists are removed.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TMP_RE.match(entry.name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _clean_once(folder: Path) -> None:
    key = str(folder.resolve())
    with _lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_orphans(folder)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, content: bytes | str | Callable[[Path], object]) -> Path:
    """Write ``path`` atomically; the previous file (if any) survives any failure.

    Parameters
    ----------
    path
        Destination file. Its folder must exist.
    content
        Bytes or text to write, or a function ``write(tmp_path)`` that writes the file
        itself (image writers, ``keras.Model.save``). The function must create
        ``tmp_path``, whose suffix is that of ``path``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        From the writer or the file system (full disk, permissions); the temporary file
        is removed and the destination is untouched.

    Examples
    --------
    >>> import tempfile
    >>> p = atomic_write(Path(tempfile.mkdtemp()) / "a.bin", b"\\x00\\x01")
    >>> p.read_bytes()
    b'\\x00\\x01'
    """
    path = Path(path)
    _clean_once(path.parent)
    tmp = temp_path(path)
    mode = new_file_mode(path)
    try:
        if callable(content):
            content(tmp)
        else:
            data = content.encode() if isinstance(content, str) else bytes(content)
            with open(tmp, "wb") as fh:
                fh.write(data)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def finish_before_interrupt(what: str):
    """Hold back Ctrl-C (SIGINT) until the block is done, then raise it.

    Used around saves: a Ctrl-C pressed while a model is being written must not throw the
    trained model away. Outside the main thread (where signal handlers cannot be set) the
    block runs unchanged.

    Examples
    --------
    >>> with finish_before_interrupt("saving the model"):
    ...     pass
    """
    import signal
    import sys

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum, frame):
        if not received:
            print(f"\nCtrl-C received while {what}: finishing that first.", file=sys.stderr)
        received.append(signum)

    try:
        previous = signal.signal(signal.SIGINT, hold)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


# ---------------------------------------------------------------------------
# whose files: a folder's record of the files napari-cytounet wrote there

MANIFEST_NAME = ".cytounet-outputs.json"


def _manifest(folder: Path) -> dict:
    import json

    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"program": "napari-cytounet", "files": []}
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return {"program": "napari-cytounet", "files": []}
    return data


def foreign_files(folder: Path, targets: list[Path]) -> list[Path]:
    """The ``targets`` that exist in ``folder`` but were not written there by this program.

    A folder's outputs are listed in its ``.cytounet-outputs.json`` (written by
    :func:`claim_outputs` before any output is written), so a rerun may replace them while
    a user's own files (ground-truth masks, a report of theirs) are recognised as foreign.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "a.png").write_bytes(b"mine")
    4
    >>> foreign_files(folder, [folder / "a.png", folder / "b.png"])  # doctest: +ELLIPSIS
    [...a.png')]
    >>> claim_outputs(folder, [folder / "b.png"], "predict")
    >>> (folder / "b.png").write_bytes(b"ours")
    4
    >>> foreign_files(folder, [folder / "b.png"])
    []
    """
    ours = set(_manifest(folder).get("files", []))
    found = []
    for target in targets:
        relative = target.relative_to(folder).as_posix()
        if relative not in ours and (target.exists() or target.is_symlink()):
            found.append(target)
    return found


def claim_outputs(folder: Path, targets: list[Path], command: str) -> None:
    """Record ``targets`` as this program's outputs in ``folder`` (before writing them).

    Written first, so that a run stopped half-way (Ctrl-C, SIGKILL, full disk) still lets
    the next run recognise and replace what it wrote.
    """
    import json

    data = _manifest(folder)
    files = set(data.get("files", []))
    files.update(t.relative_to(folder).as_posix() for t in targets)
    data.update(program="napari-cytounet", command=command, files=sorted(files))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / MANIFEST_NAME, json.dumps(data, indent=1) + "\n")


def refuse_foreign(folder: Path, targets: list[Path], option: str, what: str) -> None:
    """Raise :class:`~napari_cytounet.core.errors.DataError` naming files a run would replace.

    ``option`` is how the user allows it (``--overwrite``), ``what`` the kind of output.
    """
    from .errors import DataError

    foreign = foreign_files(folder, targets)
    if foreign:
        shown = ", ".join(p.name for p in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise DataError(
            f"{folder} already holds {len(foreign)} file(s) that the {what} would replace "
            f"and that napari-cytounet did not write ({shown}); choose an empty or new folder, "
            f"or pass {option} to replace them."
        )
