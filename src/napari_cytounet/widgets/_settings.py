"""Settings that persist between napari sessions (model folder, epochs, threshold...).

They live in one small JSON file, ``settings.json``, in the user's configuration
folder (``platformdirs.user_config_dir("napari-cytounet")``, or Qt's
``AppConfigLocation`` if platformdirs is missing). Set the environment variable
``CYTOUNET_SETTINGS_DIR`` to use another folder (the tests do). A missing,
unreadable or corrupt file just means defaults; writes are atomic.

Examples
--------
>>> settings = get_settings()  # doctest: +SKIP
>>> settings.set("predict", "threshold", 0.4)  # doctest: +SKIP
>>> settings.get("predict", "threshold", 0.5)  # doctest: +SKIP
0.4
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..core.files import atomic_write

ENV_VAR = "CYTOUNET_SETTINGS_DIR"
FILE_NAME = "settings.json"

_log = logging.getLogger(__name__)


def settings_dir() -> Path:
    """Folder of the settings file (``$CYTOUNET_SETTINGS_DIR`` or the user config folder)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - napari depends on platformdirs
        from qtpy.QtCore import QStandardPaths

        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppConfigLocation)
        return Path(base) / "napari-cytounet"
    return Path(platformdirs.user_config_dir("napari-cytounet", appauthor=False))


class Settings:
    """A JSON file of ``{section: {key: value}}`` that is rewritten on every change."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else settings_dir() / FILE_NAME
        self._data: dict[str, dict[str, Any]] = self._load()
        self._warned = False

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def get(self, section: str, key: str, default: Any = None) -> Any:
        """The stored value, or ``default`` when there is none."""
        return self._data.get(section, {}).get(key, default)

    def set(self, section: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable value and write the file."""
        if isinstance(value, Path):
            value = str(value)
        if self._data.get(section, {}).get(key) == value:
            return
        self._data.setdefault(section, {})[key] = value
        self.save()

    def section(self, section: str) -> dict[str, Any]:
        """A copy of one section."""
        return dict(self._data.get(section, {}))

    def save(self) -> None:
        """Write the file atomically; failures are logged once, never raised."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self._data, indent=2, sort_keys=True, default=str)
            atomic_write(self.path, text)
        except OSError as exc:
            if not self._warned:
                _log.warning("napari-cytounet: could not save settings to %s: %s", self.path, exc)
                self._warned = True


_current: Settings | None = None


def get_settings() -> Settings:
    """The settings object for the current settings folder (re-read if the folder changed)."""
    global _current
    path = settings_dir() / FILE_NAME
    if _current is None or _current.path != path:
        _current = Settings(path)
    return _current


def bind(section: str, key: str, widget: Any, *, convert: Any = None) -> None:
    """Restore ``widget.value`` from the settings and save it whenever it changes.

    ``convert`` turns the stored JSON value back into a widget value (e.g.
    :class:`pathlib.Path`). Stored values the widget refuses are ignored.
    """
    settings = get_settings()
    stored = settings.get(section, key)
    if stored is not None:
        with contextlib.suppress(Exception):
            widget.value = convert(stored) if convert is not None else stored

    def _save(value: Any) -> None:
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, (str, int, float, bool)) or value is None:
            get_settings().set(section, key, value)

    widget.changed.connect(_save)
