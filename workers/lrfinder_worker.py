"""The learning-rate test for the Model page, off the GUI thread (it prepares the data and
trains a hundred batches)."""

from __future__ import annotations

from .base import Worker


class LRFinderWorker(Worker):
    """Run the learning-rate range test for *project* on *dataset*
    (:meth:`ml.jobs.training.TrainingJob.find_lr`). ``finished`` carries the
    :class:`~ml.training.lrfinder.LRFinderResult`; ``progress`` says which rate is being tried;
    Cancel stops it after the current batch (the network and the project are left as they
    were)."""

    def __init__(self, project, dataset=None):
        super().__init__()
        # A copy: the user may go on editing the settings while the test runs.
        self.project, self.dataset = project.copy(), dataset

    def work(self):
        from ml.jobs.training import TrainingJob

        self.report_progress(0.0, "Preparing the data ...")
        job = TrainingJob(self.project, dataset=self.dataset)
        return job.find_lr(should_stop=self.token, progress=self.report_progress)
