"""Importing data in the background: a table, an image folder or a standard file.

The import reports its real progress (bytes read, images decoded) through the worker's one
``progress(fraction, message)`` signal, at most every 50 ms, and stops at the next check when
cancelled.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ml.data import images as _images  # noqa: F401
from ml.data import stdfiles as _stdfiles  # noqa: F401
from ml.data.dataset import Dataset, load_dataset, resolve
from ml.data.health import check_health
from ml.errors import TrainDeskError
from ml.runs.project import DataConfig

from .base import Worker

# Import the image readers and load Pillow's format plugins now, with the app: the first import
# of a C extension holds the GIL, which would freeze the window in the middle of an import.
Image.init()


class ImportWorker(Worker):
    """Load *source* with :func:`ml.data.dataset.load_dataset`; ``finished`` carries the
    :class:`Dataset`; ``progress(float, str)`` says how much of the file is read.
    """

    def __init__(self, source: str, options: dict[str, Any] | None = None):
        super().__init__()
        self.source = source
        self.options = dict(options or {})

    def work(self) -> Dataset:
        dataset = load_dataset(self.source, self.options or None, progress=self.report_progress,
                               should_stop=self.token)
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
        return check_health(self.dataset, self.config, should_stop=self.token)
