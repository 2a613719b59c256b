"""Importing data in the background: a table, an image folder or a standard file.

The import reports progress at most every 50 ms (Orange's rule: progress signals only when
something visible changes) and stops at the next check when cancelled.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Signal

from ml.data.dataset import Dataset, load_dataset
from ml.data.health import check_health
from ml.project import DataConfig

from .base import Worker

#: Seconds between two progress signals.
PROGRESS_INTERVAL = 0.05


class ImportWorker(Worker):
    """Load *source* with :func:`ml.data.dataset.load_dataset`; ``finished`` carries the
    :class:`Dataset`.

    Signals
    -------
    progress(float, str)
        Fraction done (0..1) and what is happening, throttled.
    """

    progress = Signal(float, str)

    def __init__(self, source: str, options: dict[str, Any] | None = None):
        super().__init__()
        self.source = source
        self.options = dict(options or {})
        self._last = 0.0

    def _report(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL or fraction >= 1.0:
            self._last = now
            self.progress.emit(float(fraction), message)

    def work(self) -> Dataset:
        return load_dataset(self.source, self.options or None, progress=self._report,
                            should_stop=lambda: self.cancelled)


class HealthWorker(Worker):
    """Run the data health checks off the GUI thread (they hash every row of big tables)."""

    def __init__(self, dataset: Dataset, config: DataConfig):
        super().__init__()
        self.dataset = dataset
        self.config = config

    def work(self) -> list:
        return check_health(self.dataset, self.config)
