"""Starting one of TrainDesk's own modules as a child process, from source or the frozen app.

From source the child is ``python -m MODULE WORK``; in the frozen bundle, where
``sys.executable`` is the app itself, it is a hidden command of ``main.py`` (``main.py COMMAND
WORK``). The child finds the ``ml`` package wherever the working folder is, and never opens a
console window on Windows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The repository (or bundle) root, which holds the ``ml`` package.
_ROOT = str(Path(__file__).resolve().parents[2])


def child_command(module: str, command: str, work: Path) -> list[str]:
    """How to start *module* (frozen: the hidden *command*) on the folder *work*."""
    if getattr(sys, "frozen", False):
        return [sys.executable, command, str(work)]
    return [sys.executable, "-m", module, str(work)]


def start_child(module: str, command: str, work: Path, *,
                env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the child with its output piped; *env* adds to (or overrides) this environment.

    Raises
    ------
    OSError
        If the process cannot be started.
    """
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, full.get("PYTHONPATH")) if p)
    full.update(env or {})
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window flashing on Windows
    return subprocess.Popen(child_command(module, command, work), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full,
                            creationflags=flags)
