"""Autosave: unsaved work survives a crash, a kill or a power cut.

A moment after every edit, the project is written to ``<home>/autosave/<pid>.json`` (atomically:
a kill during the write leaves the previous autosave). The user's own ``.tdproj`` is never touched
by this - it changes only when they save. When the project is saved, or the app closes normally,
the autosave file is removed, so a file left behind means the app did not end cleanly.

At the next start :func:`find_orphans` returns those left-behind files whose process is gone (two
TrainDesk windows never take each other's work), and the window restores the newest one and says
so. Restored work is unsaved: Save writes it to the project's own file, as before the crash.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot

from ml.errors import TrainDeskError
from ml.runs.project import Project
from ml.system.fileio import atomic_write_json
from ml.system.resources import traindesk_home

AUTOSAVE_FORMAT = "traindesk-autosave"
AUTOSAVE_VERSION = 1
#: Edits within this long are written together (typing a number is one edit, not five).
DELAY_MS = 800

log = logging.getLogger("traindesk.autosave")


def autosave_dir() -> Path:
    return traindesk_home() / "autosave"


def _process_started(pid: int) -> float | None:
    """When process *pid* started (seconds since the epoch); None if it is not running."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


@dataclass
class Orphan:
    """Unsaved work left behind by a TrainDesk that did not close cleanly."""

    file: Path
    project: Project
    saved_at: _dt.datetime

    @property
    def when(self) -> str:
        return self.saved_at.strftime("%d %b %Y at %H:%M")


def find_orphans(folder: Path | None = None) -> list[Orphan]:
    """Autosaves whose process has ended, newest first. Unreadable files are skipped and
    logged (they are never half-written: every write is atomic), and left for a person to see."""
    folder = folder or autosave_dir()
    found = []
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
            if doc.get("format") != AUTOSAVE_FORMAT:
                raise ValueError("not an autosave")
            started = _process_started(int(doc["pid"]))
            if started is not None and abs(started - float(doc["process_started"])) < 1.0:
                continue  # that TrainDesk is still running: its work is its own
            project = Project.from_dict(doc["project"])
            if doc.get("project_path"):
                project.path = Path(doc["project_path"])
            saved_at = _dt.datetime.fromtimestamp(float(doc["saved_at"]))
        except (OSError, ValueError, KeyError, TypeError, TrainDeskError) as exc:
            log.warning("Skipping unreadable autosave %s: %s", file, exc)
            continue
        found.append(Orphan(file, project, saved_at))
    return sorted(found, key=lambda o: o.saved_at, reverse=True)


class Autosaver(QObject):
    """Writes *state*'s project a moment after each edit, while it has unsaved changes.

    Parameters
    ----------
    state : gui.state.ProjectState
        Its ``edited`` signal schedules a write; ``dirty_changed(False)`` (saved, or a project
        opened) removes the file.
    folder : Path, optional
        Where autosaves go (default ``<home>/autosave``).
    """

    def __init__(self, state, folder: Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.folder = folder or autosave_dir()
        self.file = self.folder / f"{os.getpid()}.json"
        self._started = _process_started(os.getpid()) or 0.0
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DELAY_MS)
        self.timer.timeout.connect(self.write_now)
        state.edited.connect(self.timer.start)
        state.dirty_changed.connect(self._on_dirty_changed)
        #: The last write failed (a full disk): said once in the log, retried at the next edit.
        self.failing = False

    @Slot(bool)
    def _on_dirty_changed(self, dirty: bool) -> None:
        if dirty:
            self.timer.start()
        else:
            self.discard()

    @Slot()
    def write_now(self) -> Path | None:
        """Write the autosave now (if there is unsaved work); return the file or None."""
        self.timer.stop()
        if not self.state.dirty:
            return None
        project = self.state.project
        doc = {"format": AUTOSAVE_FORMAT, "version": AUTOSAVE_VERSION, "pid": os.getpid(),
               "process_started": self._started,
               "saved_at": _dt.datetime.now().timestamp(),
               "project_path": str(project.path) if project.path else None,
               # Absolute paths: the autosave folder is not where the data lives.
               "project": project.to_dict()}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.file, doc)
        except (OSError, TrainDeskError) as exc:
            if not self.failing:
                log.warning("Autosave failed (will retry at the next change): %s", exc)
            self.failing = True
            return None
        self.failing = False
        return self.file

    @Slot()
    def discard(self) -> None:
        """Nothing unsaved any more (saved, discarded, closed cleanly): remove the file."""
        self.timer.stop()
        try:
            self.file.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("Could not remove the autosave %s: %s", self.file, exc)
