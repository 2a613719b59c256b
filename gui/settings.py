"""What the app remembers between sessions: recent projects, the window and its panels, the theme.

Stored with QSettings in an INI file in the TrainDesk home (``settings.ini``), versioned: a file
written by an older TrainDesk is migrated forward when it is opened, so nothing the user had is
lost and no key is read with an old meaning.

Versions
--------
0 (no ``version`` key)
    ``recent`` holds the recent projects as one ``|``-separated string, ``geometry`` the window.
1
    ``recent/projects`` is a list.
2
    the window's geometry lives under ``window/geometry``.

Keys added later without changing the meaning of any older one need no new version: the theme
(``view/theme``), the welcome (``welcome/seen``, ``welcome/show``), the panels' splitters and
tabs (``panels/...``, read back only when they still fit) and whether the Model page shows all
settings or the basic few (``view/all_settings``; absent: the basic few), and whether finished
runs are logged to MLflow and where (``tracking/mlflow``, ``tracking/mlflow_uri``; absent: not
logged, the local store).

Not here: the model folders added to the model library, which the command line shares; they
live in ``models.json``, owned by :mod:`ml.models.library`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from ml.system.resources import traindesk_home

SETTINGS_VERSION = 2
MAX_RECENT = 8


def settings_path() -> Path:
    return traindesk_home() / "settings.ini"


def open_settings() -> QSettings:
    """The app's settings, migrated to :data:`SETTINGS_VERSION`."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = QSettings(str(path), QSettings.Format.IniFormat)
    migrate(settings)
    return settings


def migrate(settings: QSettings) -> int:
    """Bring *settings* up to :data:`SETTINGS_VERSION`; return the version it was at."""
    try:
        found = int(settings.value("version", 0))
    except (TypeError, ValueError):
        found = 0
    if found < 1:
        legacy = settings.value("recent")
        if isinstance(legacy, str):
            settings.remove("recent")
            settings.setValue("recent/projects", [p for p in legacy.split("|") if p])
    if found < 2:
        geometry = settings.value("geometry")
        if geometry is not None:
            settings.remove("geometry")
            settings.setValue("window/geometry", geometry)
    if found != SETTINGS_VERSION:
        settings.setValue("version", SETTINGS_VERSION)
        settings.sync()
    return found


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # an INI list of one comes back as a plain string
        return [value] if value else []
    return [str(v) for v in value]


def recent_projects(settings: QSettings) -> list[str]:
    """The recent projects, newest first, that still exist."""
    return [p for p in _as_list(settings.value("recent/projects"))
            if Path(p).is_file()][:MAX_RECENT]


def add_recent(settings: QSettings, path: str | Path) -> list[str]:
    """Put *path* first in the recent projects (once); return the new list."""
    path = str(Path(path).resolve())
    projects = [path] + [p for p in _as_list(settings.value("recent/projects")) if p != path]
    projects = projects[:MAX_RECENT]
    settings.setValue("recent/projects", projects)
    settings.sync()
    return projects


def all_settings_shown(settings: QSettings) -> bool:
    """Whether the Model page shows every setting (else the basic few, the default)."""
    value = settings.value("view/all_settings", False)
    if isinstance(value, str):  # an INI file gives strings back
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def set_all_settings_shown(settings: QSettings, on: bool) -> None:
    """Remember whether the Model page shows every setting (*on*) or the basic few."""
    settings.setValue("view/all_settings", bool(on))
    settings.sync()
