"""Where the app keeps its preferences: an INI file through QSettings, plus the recent-files list.

Every widget gets its QSettings from `app_settings()`, so tests (and portable installs) redirect all
of them at once with `QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)`.
The file holds paths, window geometry and choices; never results or images.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "libreface"
APPLICATION = "libreface-gui"
MAX_RECENT = 10
"""Most entries of the File > Open Recent menu."""


def app_settings() -> QSettings:
    """The app's QSettings (INI format, user scope: ~/.config/libreface/libreface-gui.ini on Linux)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def read_list(settings: QSettings, key: str) -> list[str]:
    """A list of strings stored under `key` (QSettings returns a str for one-element lists)."""
    value = settings.value(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


class RecentFiles:
    """Most recently opened videos / CSVs, newest first, at most `MAX_RECENT`, persisted in QSettings."""

    KEY = "recent/files"

    def __init__(self, settings: QSettings | None = None) -> None:
        self._settings = settings or app_settings()

    def paths(self) -> list[str]:
        """Recent paths that still exist, newest first."""
        return [p for p in read_list(self._settings, self.KEY) if Path(p).exists()]

    def add(self, path: str | Path) -> None:
        """Put `path` first (moving it up if it is already listed)."""
        p = str(Path(path).resolve())
        items = [p] + [q for q in read_list(self._settings, self.KEY) if q != p]
        self._settings.setValue(self.KEY, items[:MAX_RECENT])

    def clear(self) -> None:
        self._settings.remove(self.KEY)
