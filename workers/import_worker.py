"""Importing data in the background: a table, an image folder or a standard file.

The import reports progress at most every 50 ms (Orange's rule: progress signals only when
something visible changes) and stops at the next check when cancelled.
"""

from __future__ import annotations

import time
from typing import Any

from PIL import Image
from PySide6.QtCore import Signal

from ml.data import images as _images  # noqa: F401
from ml.data import stdfiles as _stdfiles  # noqa: F401
from ml.data.dataset import Dataset, load_dataset, resolve
from ml.data.health import check_health
from ml.errors import TrainDeskError
from ml.runs.project import DataConfig

from .base import Worker

#: Seconds between two progress signals.
PROGRESS_INTERVAL = 0.05

# Import the image readers and load Pillow's format plugins now, with the app: the first import
# of a C extension holds the GIL, which would freeze the window in the middle of an import.
Image.init()


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
        dataset = load_dataset(self.source, self.options or None, progress=self._report,
                               should_stop=lambda: self.cancelled)
        # Resolve the default choices here once: the per-dataset caches it fills (the target's
        # classes, the task) make the same work on the GUI thread instant.
        try:
            resolve(dataset, DataConfig(source=self.source))
        except TrainDeskError:
            pass  # the Data page shows this problem when it resolves
        return dataset


class HealthWorker(Worker):
    """Run the data health checks off the GUI thread (they hash every row of big tables)."""

    def __init__(self, dataset: Dataset, config: DataConfig):
        super().__init__()
        self.dataset = dataset
        self.config = config

    def work(self) -> list:
        return check_health(self.dataset, self.config)
