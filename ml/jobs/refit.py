"""The final fit: train again on the training and validation rows, for the epochs validation chose.

A run learns from its training split while its validation split picks the best epoch; the
final model then knows nothing of the validation rows (a fifth of what the user gave, by
default). The final fit builds the same network again from the same seed and trains it on both
splits for the best epoch's count. Where the first fit ran at a constant rate and peaked before
its last epoch, the rate is annealed to zero over those epochs (a cosine: the annealed end
stands in for the best-epoch pick that the final fit cannot make). The test rows stay unseen,
so the test scores stay honest.

It is for tables and text trained from scratch (``TrainingConfig.refit``): ``auto`` does it
for tables under :data:`AUTO_ROWS` training rows, where the added rows matter most and it costs
seconds (not for text: measured, it lost accuracy there, see docs/benchmarks.md); ``on`` for
every table and text, ``off`` never. It is skipped for the trials of a search and the folds of a
cross-validation (their validation scores are what they are for), for runs that start from a
pretrained backbone or an earlier run, and when the first fit was stopped.

Like every epoch of a run it survives a kill: each final-fit epoch writes ``refit.pt``
(:meth:`~ml.runs.folder.RunFolder.save_checkpoint`), and a resumed run goes on from it. Its
course is kept in ``run.json``'s ``refit``: ``{"epochs", "rows", "status": running | stopped
| done, "seconds"}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..data.dataset import PreparedData
from ..runs.folder import REFIT_CHECKPOINT, RunFolder
from ..runs.project import Project, TrainingConfig
from ..runs.weights import CHECKPOINT_FORMAT
from ..training.callbacks import Callback, Logs
from ..training.trainer import FitResult

#: ``auto`` refits runs with fewer training rows than this.
AUTO_ROWS = 20_000
#: The first fit's schedules that the final fit replaces by a cosine: a constant rate (when
#: validation found a peak, see :func:`refit_config`), and a plateau schedule (always: it needs
#: the validation loss the final fit does not have).
ANNEALED = ("constant", "plateau")


def applies(project: Project, prepared: PreparedData, *, grouped: bool,
            from_scratch: bool) -> bool:
    """Whether a run of *project* on *prepared* ends with a final fit (if not stopped)."""
    choice, kind = project.training.refit, prepared.summary.kind
    if choice == "off" or grouped or not from_scratch:
        return False
    if kind == "image" or len(prepared.y["val"]) == 0:
        return False
    if choice == "on":
        return True
    # Automatic: tables only. On bench_quality's texts the final fit lost 0.016 and 0.028 of
    # accuracy (their best epochs come early and noisily); on its tables it was level.
    return kind == "tabular" and len(prepared.y["train"]) < AUTO_ROWS


def refit_epochs(project: Project, prepared: PreparedData, fit: FitResult, *,
                 grouped: bool, from_scratch: bool) -> int:
    """How many epochs the final fit trains (the first fit's best epoch), or 0 for none."""
    if fit.stopped or not applies(project, prepared, grouped=grouped,
                                  from_scratch=from_scratch):
        return 0
    return max(1, int(fit.best_epoch or fit.epochs_completed))


def refit_config(training: TrainingConfig, epochs: int) -> TrainingConfig:
    """The first fit's settings for the final fit: *epochs* epochs, nothing validation-based.

    A constant rate is annealed (a cosine) when validation found a peak before the last
    epoch; a first fit still improving at its last epoch keeps its course, since a cosine
    over the same epochs would make fewer, smaller steps and leave the network behind it.
    """
    peaked = epochs < training.epochs
    schedule = ("cosine" if training.schedule == "plateau"
                or (peaked and training.schedule in ANNEALED) else training.schedule)
    return dataclasses.replace(training, epochs=epochs, schedule=schedule, restore_best=False,
                               early_stopping=False, monitor="val_loss",
                               warmup_epochs=min(training.warmup_epochs, epochs - 1))


def resumable(folder: RunFolder, epochs: int) -> dict | None:
    """The final fit's checkpoint to go on from: one of a final fit of *epochs* epochs."""
    checkpoint = folder.load_checkpoint(REFIT_CHECKPOINT)
    if checkpoint is None or checkpoint.get("refit_epochs") != epochs:
        return None
    return checkpoint


class RefitWriter(Callback):
    """Write ``refit.pt`` after every final-fit epoch and say how far it is."""

    def __init__(self, folder: RunFolder, epochs: int, say: Callable[[str], None]):
        self.folder, self.epochs, self.say = folder, epochs, say

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self.folder.save_checkpoint({
            "format": CHECKPOINT_FORMAT, "epoch": int(logs["epoch"]), "refit_epochs": self.epochs,
            "model": self.trainer.model.state_dict(),
            "training": self.trainer.training_state()}, REFIT_CHECKPOINT)
        self.say(f"Final fit: epoch {int(logs['epoch'])} of {self.epochs} done (training loss "
                 f"{float(logs['loss']):.4g}).")
