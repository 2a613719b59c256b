"""The callback that makes a run survive a kill: every epoch's checkpoint and history line."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import RunError
from ..runs.weights import CHECKPOINT_FORMAT, save_checkpoint, save_weights
from ..system.fileio import atomic_write_text
from .callbacks import Callback, Logs


class RunWriter(Callback):
    """Write ``history.jsonl`` and ``checkpoint.pt`` after every epoch, atomically."""

    def __init__(self, run_dir: Path, lines: list[str] | None = None):
        self.run_dir = Path(run_dir)
        self.lines: list[str] = list(lines or [])  # a resumed run's earlier epochs

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        # The checkpoint first (it carries the history too), then history.jsonl: if a write
        # fails, the history file never claims an epoch the checkpoint does not have.
        lines = self.lines + [json.dumps(logs, allow_nan=False)]
        state = {"format": CHECKPOINT_FORMAT, "epoch": int(logs["epoch"]),
                 "model": self.trainer.model.state_dict(),
                 "optimizer": self.trainer.optimizer.state_dict(),
                 "training": self.trainer.training_state(),
                 "history": list(lines)}
        save_checkpoint(self.run_dir / "checkpoint.pt", state)
        atomic_write_text(self.run_dir / "history.jsonl", "\n".join(lines) + "\n",
                          error=RunError)
        self.lines = lines
        best = self.trainer.best
        if best is not None and best.best_epoch == int(logs["epoch"]) and best.state:
            # The best epoch so far, kept apart from the last: loadable with no code run.
            save_weights(self.run_dir, best.state, "best.safetensors")
