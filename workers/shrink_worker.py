"""Pruning or distillation in the background, then both models measured.

See :mod:`ml.export.shrink`.
"""

from __future__ import annotations

from PySide6.QtCore import Signal

from ml.export.shrink import ShrinkJob, compare_smaller
from ml.runs.folder import load_run
from ml.training.callbacks import Callback

from .base import Worker


class _EpochLines(Callback):
    def __init__(self, emit):
        self.emit = emit
        self.epochs = 0

    def on_fit_begin(self, logs):
        self.epochs = int(logs["epochs"])

    def on_epoch_end(self, epoch, logs):
        metric = next((k for k in ("val_accuracy", "val_mae") if k in logs), None)
        tail = f", validation {metric[4:]} {logs[metric]:.4f}" if metric else ""
        self.emit(f"Epoch {logs['epoch']} of {self.epochs}: loss {logs['loss']:.4f}{tail}")


class ShrinkWorker(Worker):
    """Run a :class:`~ml.export.shrink.ShrinkJob`; ``finished`` carries ``(ShrinkResult,
    CompressionReport)`` - the new run, and the original and new model measured side by side.

    Signals
    -------
    message_logged(str)
        One line per step and per epoch.
    """

    message_logged = Signal(str)

    def __init__(self, run_dir: str, method: str, **options):
        super().__init__()
        self.job = ShrinkJob(run_dir, method, callbacks=[_EpochLines(self.message_logged.emit)],
                             on_message=self.message_logged.emit, **options)

    def cancel(self) -> None:
        super().cancel()
        self.job.request_stop()  # the run keeps its best epoch so far

    def work(self):
        result = self.job.run()
        self.message_logged.emit("Exporting both models to ONNX and measuring them ...")
        self.token.check("Stopped; the smaller run is kept but was not measured.")
        report = compare_smaller(load_run(self.job.run_dir), [load_run(result.run_dir)])
        return result, report
