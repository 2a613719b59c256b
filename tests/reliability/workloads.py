"""What the fault tests' children do until they are killed: write the same file over and over.

Each function writes version 1, 2, 3, ... of one file and prints ``wrote N`` after each write has
returned, so the test knows which versions were complete before the kill.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _said(n: int) -> None:
    print(f"wrote {n}", flush=True)


def save_projects_forever(path: str) -> None:
    from ml.runs.project import Project

    n = 0
    while True:
        n += 1
        project = Project(name=f"version {n}")
        project.training.epochs = n
        project.save(path)
        _said(n)


def save_checkpoints_forever(path: str) -> None:
    import torch

    from ml.runs.weights import save_checkpoint

    n = 0
    while True:
        n += 1
        # Big enough (16 MB) that a kill often lands inside the write.
        save_checkpoint(Path(path), {"epoch": n, "model": {"w": torch.full((4_000_000,),
                                                                         float(n))}})
        _said(n)


def save_weights_forever(folder: str) -> None:
    import torch

    from ml.runs.weights import save_weights

    n = 0
    while True:
        n += 1
        save_weights(Path(folder), {"w": torch.full((4_000_000,), float(n))})
        _said(n)


def export_forever(run: str, out: str) -> None:
    from ml.cli import main

    n = 0
    while True:
        n += 1
        if main(["export", run, "--format", "onnx", "--out", out]) != 0:
            sys.exit(1)
        _said(n)


def last_written(log: Path) -> int:
    """The last version a child reported as complete (0: none)."""
    done = [int(line.split()[1]) for line in log.read_text().splitlines()
            if line.startswith("wrote ")]
    return done[-1] if done else 0
