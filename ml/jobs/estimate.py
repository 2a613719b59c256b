"""The estimate of a whole project's run: its data prepared as a run prepares it, its model and
settings as a run builds them, then :func:`ml.training.estimate.estimate_fit`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..data.dataset import Dataset, PreparedData, load_dataset, prepare
from ..errors import Cancelled, DataError
from ..models.presets import build_spec
from ..models.spec import build_model
from ..runs.project import Project
from ..training.estimate import RunEstimate, estimate_fit
from ..training.trainer import loss_for
from .training import balanced_class_weights


def estimate_project(project: Project, dataset: Dataset | None = None, *,
                     prepared: PreparedData | None = None,
                     runs_dir: Path | None = None,
                     should_stop: Callable[[], bool] | None = None) -> RunEstimate:
    """How long :class:`~ml.jobs.training.TrainingJob` will train *project*, and its memory.

    Parameters
    ----------
    project : Project
        Data, model and training settings as the run will use them.
    dataset : Dataset, optional
        The loaded data (else it is loaded from the project's source).
    prepared : PreparedData, optional
        Already prepared data; then ``seconds_preparing`` is 0.
    runs_dir : Path, optional
        Where the run will be written (default the project's runs folder): the sample's
        checkpoints are timed on that disk, in a temporary folder, when it exists.
    should_stop : callable, optional
        Polled while preparing and training; True raises :class:`Cancelled`.

    Raises
    ------
    TrainDeskError
        For data or settings a run would refuse (the same messages).
    """
    should_stop = should_stop or (lambda: False)
    began, preparing = time.perf_counter(), 0.0
    if prepared is None:
        if dataset is None:
            dataset = load_dataset(project.data.source, project.data.read_options)
        try:
            prepared = prepare(dataset, project.data, should_stop=should_stop)
        except DataError:
            if should_stop():
                raise Cancelled("The estimate was stopped.") from None
            raise
        preparing = time.perf_counter() - began
    if should_stop():
        raise Cancelled("The estimate was stopped.")
    pre, task = prepared.preprocessor, prepared.task
    spec = build_spec(project.model, pre.model_input(), pre.n_outputs, task)
    loss_for(task, project.training.loss)
    torch.manual_seed(project.training.seed)
    net = build_model(spec, pre.feature_mean, pre.feature_std)
    augment = None
    if prepared.summary.kind == "image":
        from ..data.augment import Augmenter, AugmentSettings

        settings = AugmentSettings.from_dict(project.data.augment)
        if settings.enabled:
            augment = Augmenter(settings, seed=project.training.seed)
    weights = None
    if project.training.class_weights == "balanced" and task == "classification":
        weights = balanced_class_weights(prepared.y["train"], pre.n_outputs)
    return estimate_fit(net, task, project.training, prepared.x["train"], prepared.y["train"],
                        prepared.x["val"], prepared.y["val"], augment=augment,
                        class_weights=weights, target_scale=pre.target_std,
                        n_test=len(prepared.y["test"]),
                        checkpoint_dir=runs_dir or project.runs_dir(), should_stop=should_stop,
                        seconds_preparing=preparing)
