"""Errors the user can act on.

Every failure caused by the user's input (a file, a setting, a project) is raised as a
:class:`TrainDeskError` subclass whose message is one plain sentence saying what is wrong and what
to do. The GUI shows that message in a dialog or inline; the CLI prints it as one line and exits
non-zero. Any other exception is a bug in TrainDesk.
"""

from __future__ import annotations

import traceback
from collections import OrderedDict


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


class NothingToDo(RunError):
    """A resumed run has already trained every epoch asked for: not a failure (the command
    line exits 0), so a preemptible job can simply be started again."""


class ExportError(TrainDeskError):
    """An export could not be written or did not reproduce the model."""


class Cancelled(TrainingError, DataError):
    """The user stopped a job (an import, a check, an export, a run before its first epoch):
    nothing failed, and nothing half-done was kept.

    Every long job raises it from :func:`ml.system.jobcontrol.check_stop`. It is also a
    :class:`DataError` and a :class:`TrainingError` so that callers that catch those for the
    stage a job was stopped in (reading data, preparing a run) treat it as before.
    """

    MESSAGE = "Stopped before training began; nothing was saved."

    def __init__(self, message: str = MESSAGE):
        super().__init__(message)


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


# -- the technical part of a message ----------------------------------------------------------
# The GUI shows the plain message and keeps the technical part (the exception, its cause and where
# it was raised) under "Details" for a bug report. Errors from background work reach the GUI as
# their message only, so the details are kept here by message, for the last few errors.
_DETAILS: OrderedDict[str, str] = OrderedDict()
_KEEP = 32


def technical_details(exc: BaseException) -> str:
    """The exception with its traceback and chained causes, as Python prints them."""
    return "".join(traceback.format_exception(exc)).rstrip()


def remember_details(message: str, exc: BaseException) -> None:
    """Keep *exc*'s technical details for the error whose plain message is *message*."""
    _DETAILS[message] = technical_details(exc)
    _DETAILS.move_to_end(message)
    while len(_DETAILS) > _KEEP:
        _DETAILS.popitem(last=False)


def details_for(message: str) -> str:
    """The details kept for *message* ("" when there are none)."""
    return _DETAILS.get(message, "")
