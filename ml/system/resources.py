"""Finding files that ship with the application, in a checkout or a frozen bundle."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """Return the ``resources/`` folder, inside a PyInstaller bundle when frozen."""
    base = getattr(sys, "_MEIPASS", None)
    if base is not None:
        return Path(base) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def resource_path(*parts: str) -> Path:
    """Return the path of a file under ``resources/``."""
    return resources_dir().joinpath(*parts)


def traindesk_home() -> Path:
    """Return the folder where TrainDesk keeps runs and settings by default.

    ``$TRAINDESK_HOME`` when set (tests and portable installs use it), else ``~/TrainDesk``.
    """
    env = os.environ.get("TRAINDESK_HOME")
    return Path(env).expanduser() if env else Path.home() / "TrainDesk"


def default_runs_dir() -> Path:
    """Return the folder where runs of unsaved projects and headless training go."""
    return traindesk_home() / "runs"
