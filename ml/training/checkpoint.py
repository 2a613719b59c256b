"""The callback that makes a run survive a kill: every epoch's checkpoint and history line."""

from __future__ import annotations

import json
from pathlib import Path

from ..runs.folder import RunFolder
from ..runs.weights import CHECKPOINT_FORMAT
from .callbacks import Callback, Logs


class RunWriter(Callback):
    """Write ``checkpoint.pt``, ``history.jsonl`` and the best weights after every epoch, each
    atomically, through the run's :class:`~ml.runs.folder.RunFolder`."""

    def __init__(self, folder: RunFolder | Path, lines: list[str] | None = None):
        self.folder = folder if isinstance(folder, RunFolder) else RunFolder(Path(folder))
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
        self.folder.save_checkpoint(state)
        self.folder.write_history(lines)
        self.lines = lines
        best = self.trainer.best
        if best is not None and best.best_epoch == int(logs["epoch"]) and best.state:
            # The best epoch so far, kept apart from the last: loadable with no code run.
            self.folder.save_weights(best.state, "best.safetensors")


def earlier_epochs(checkpoint: dict | None) -> list[dict]:
    """The epochs a run had trained when *checkpoint* was written (its ``history`` lines, as
    :class:`RunWriter` keeps them), oldest first: what a resumed run's curves start from.
    Empty for no checkpoint; a line that cannot be read is left out."""
    out = []
    for line in (checkpoint or {}).get("history") or []:
        try:
            entry = json.loads(line) if isinstance(line, str) else line
        except ValueError:
            continue
        if isinstance(entry, dict) and "epoch" in entry:
            out.append(dict(entry))
    return out
