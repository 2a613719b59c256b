"""Errors the user can act on.

Every failure caused by the user's input (a file, a setting, a project) is raised as a
:class:`TrainDeskError` subclass whose message is one plain sentence saying what is wrong and what
to do. The GUI shows that message in a dialog or inline; the CLI prints it as one line and exits
non-zero. Any other exception is a bug in TrainDesk.
"""

from __future__ import annotations


class TrainDeskError(Exception):
    """Base class for errors caused by input the user can fix."""


class DataError(TrainDeskError):
    """A data file or data setting cannot be used."""


class ProjectError(TrainDeskError):
    """A project file cannot be read or written."""


class ModelSpecError(TrainDeskError):
    """A model specification is invalid for the data it is meant for."""


class TrainingError(TrainDeskError):
    """Training could not run or could not continue."""


class RunError(TrainDeskError):
    """A run folder is missing or incomplete."""


class ExportError(TrainDeskError):
    """An export could not be written or did not reproduce the model."""


class OutOfMemory(TrainingError):
    """The device ran out of memory during training.

    Attributes
    ----------
    batch_size : int
        The batch size that did not fit.
    epoch : int
        The 1-based epoch it happened in.
    """

    def __init__(self, message: str, batch_size: int, epoch: int):
        super().__init__(message)
        self.batch_size = int(batch_size)
        self.epoch = int(epoch)

    @property
    def smaller_batch(self) -> int:
        """The batch size to try next (half, at least 1)."""
        return max(1, self.batch_size // 2)
