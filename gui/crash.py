"""What happens when something goes wrong that nobody planned for.

- Everything logged goes to a rotating file (``<TrainDesk home>/logs/traindesk.log``, five
  backups of 1 MB), whose path Help shows.
- An unhandled exception first saves the open project (to its own file, or to a recovery copy
  when it was never saved), then shows one plain message with the traceback under "Show
  Details...", and is logged.
"""

from __future__ import annotations

import datetime as _dt
import logging
import sys
import traceback
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path

from ml.system.resources import traindesk_home

LOG_BYTES = 1_000_000
LOG_BACKUPS = 5
_handler: RotatingFileHandler | None = None

log = logging.getLogger("traindesk")


def log_path() -> Path:
    """The current log file."""
    return traindesk_home() / "logs" / "traindesk.log"


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Send the log to the rotating file (once per process); None when it cannot be written."""
    global _handler
    path = log_path()
    if _handler is not None and Path(_handler.baseFilename) == path.resolve():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                      encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    stop_logging()
    for other in root.handlers:  # the console keeps showing warnings only
        if type(other) is logging.StreamHandler and other.level == logging.NOTSET:
            other.setLevel(logging.WARNING)
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
    _handler = handler
    return path


def stop_logging() -> None:
    """Close the log file (tests; a new TrainDesk home)."""
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler.close()
        _handler = None


def save_before_crash(window) -> Path | None:
    """Save *window*'s project so an error cannot lose it: to its own file when it has one and
    has changed, else (never saved) to ``<home>/recovery/<name>-<time>.tdproj``. Returns the
    file written, or None (nothing to save, or saving failed too - logged)."""
    state = getattr(window, "state", None)
    if state is None or not state.dirty:
        return None
    project = state.project
    try:
        if project.path is not None:
            written = project.save(project.path)
            state.set_dirty(False)
            return written
        from ml.runs.project import PROJECT_SUFFIX
        from ml.system.fileio import atomic_write_json

        folder = traindesk_home() / "recovery"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = folder / f"{project.name or 'project'}-{stamp}{PROJECT_SUFFIX}"
        atomic_write_json(target, project.to_dict(relative_to=target.parent))
        return target
    except Exception:  # noqa: BLE001 - a crash handler must not crash
        log.exception("Could not save the project while handling an error")
        return None


def crash_message(value: BaseException, saved: Path | None, log_file: Path | None) -> str:
    """The plain part of the error dialog."""
    lines = [f"Something went wrong that TrainDesk did not expect: {value}"
             if str(value) else "Something went wrong that TrainDesk did not expect."]
    if saved is not None:
        lines.append(f"Your project was saved first, to {saved}.")
    else:
        lines.append("Your saved project and your runs are not affected.")
    lines.append("You can go on working. If it happens again, please send the details "
                 "(Show Details...)" + (f" and the log file {log_file}." if log_file else "."))
    return "\n\n".join(lines)


def install_excepthook(window_getter: Callable[[], object], show=None) -> None:
    """Handle unhandled exceptions: log, save the project, then tell the user (``show(title,
    message, details)``; default: a message box with "Show Details...")."""

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        details = "".join(traceback.format_exception(kind, value, tb))
        log.error("Unhandled exception\n%s", details)
        if sys.__stderr__ is not None:
            sys.__stderr__.write(details)
        window = window_getter()
        saved = save_before_crash(window) if window is not None else None
        message = crash_message(value, saved, log_path() if _handler else None)
        (show or _show_box)("TrainDesk - unexpected error", message, details)

    sys.excepthook = hook


def crash_box(title: str, message: str, details: str):
    """The error dialog: the plain message, and the traceback under "Show Details..."."""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Critical, title, message)
    box.setObjectName("crashBox")
    box.setStyleSheet("QLabel { min-width: 440px; }")  # long paths wrap less
    box.setDetailedText(details)
    return box


def _show_box(title: str, message: str, details: str) -> None:
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is not None:
        crash_box(title, message, details).exec()
