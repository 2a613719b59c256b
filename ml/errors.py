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
