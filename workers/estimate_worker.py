"""Background checks for the Model page: timing a few training steps, and matching a weights
file to the network (both run off the GUI thread: they build a model and touch torch)."""

from __future__ import annotations

from .base import Worker


class EstimateWorker(Worker):
    """Estimate a run of *project* on *dataset*: its data prepared, a few real epochs on a
    sample timed and scaled (:func:`ml.jobs.estimate.estimate_project`). ``finished`` carries
    the :class:`~ml.training.estimate.RunEstimate`; Cancel stops it between two batches."""

    def __init__(self, project, dataset=None):
        super().__init__()
        # A copy: the user may go on editing the settings while the estimate runs.
        self.project, self.dataset = project.copy(), dataset

    def work(self):
        from ml.jobs.estimate import estimate_project

        return estimate_project(self.project, self.dataset, should_stop=lambda: self.cancelled)


def match_source(spec, source: str):
    """Load the weights in *source* and match them to a fresh model of *spec*: the
    :class:`~ml.training.transfer.TransferReport` the Model page shows."""
    from ml.models.spec import build_model
    from ml.training.transfer import load_weights, match_weights

    return match_weights(build_model(spec), load_weights(source))
