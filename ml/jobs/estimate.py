"""The estimate of a whole project's run: its data prepared as a run prepares it, its model and
settings as a run builds them, then :func:`ml.training.estimate.estimate_fit`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..data.dataset import Dataset, PreparedData, load_dataset, prepare
from ..errors import Cancelled, DataError, TrainDeskError
from ..models import backbones
from ..models.presets import build_spec
from ..models.spec import build_model
from ..runs.project import Project
from ..training.estimate import RunEstimate, estimate_fit, estimate_probe
from ..training.trainer import loss_for
from . import refit
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
            # A backbone reads its own image side and word pieces, as the run prepares them.
            prepared = prepare(dataset, project.data, should_stop=should_stop,
                               backbone=_backbone(project))
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
    # Timing needs no pretrained weights (random ones cost the same); what trains does count.
    mode = project.model.train_mode if net.has_backbone else ""
    if mode == "lora":
        backbones.add_lora(net, project.model.lora_rank)
    augment = None
    if prepared.summary.kind == "image":
        from ..data.augment import Augmenter, AugmentSettings

        settings = AugmentSettings.from_dict(project.data.augment)
        if settings.enabled:
            augment = Augmenter(settings, seed=project.training.seed)
    weights = None
    if project.training.class_weights == "balanced" and task == "classification":
        weights = balanced_class_weights(prepared.y["train"], pre.n_outputs)
    fit = estimate_probe if mode == "probe" else estimate_fit
    result = fit(net, task, project.training, prepared.x["train"], prepared.y["train"],
                 prepared.x["val"], prepared.y["val"], augment=augment,
                 class_weights=weights, target_scale=pre.target_std,
                 n_test=len(prepared.y["test"]),
                 checkpoint_dir=runs_dir or project.runs_dir(), should_stop=should_stop,
                 seconds_preparing=preparing)
    if refit.applies(project, prepared, grouped=False,
                     from_scratch=not (net.has_backbone or project.model.init_from)):
        # At most every epoch again, on the validation rows too; validation usually picks
        # an earlier epoch, so this is an upper bound, kept apart from the total.
        rows = (result.n_train + result.n_val) / max(1, result.n_train)
        result = dataclasses.replace(
            result, final_fit=(result.train_steps + result.loading + result.checkpoints) * rows)
    return result


def _backbone(project: Project):
    return backbones.resolve(project.model.backbone) if project.model.backbone else None


def schedule_for_start(project: Project, model_input, n_rows: int) -> dict:
    """Training settings that suit the project's start (its backbone and way of training, or
    the preset from scratch) for *n_rows* rows of data: ``lr``, ``batch_size``, ``epochs``."""
    from ..models.presets import backbone_schedule, suggest_settings, suggested_lr

    n_train = _train_rows(project, n_rows)
    model = project.model
    if model.backbone:
        return backbone_schedule(model.train_mode, n_train)
    config, schedule = suggest_settings(n_train, model_input)
    preset = model.preset if model.preset != "auto" else config.preset
    return {**schedule, "lr": suggested_lr(preset)}


def propose_start(project: Project, model_input, n_rows: int, text_length: int = 0) -> str:
    """Switch *project*'s model to the pretrained start proposed for its data, when one is
    (see :func:`ml.models.presets.propose_backbone`; call it after
    :func:`~ml.jobs.training.apply_suggestions`). For text the proposal hangs on MiniLM's
    estimated training time on this machine. Returns the sentence that says what was proposed
    and why ("" for a table or small images: the network from scratch, as suggested)."""
    from ..models.presets import (
        DEFAULT_BACKBONES,
        backbone_fits,
        propose_backbone,
        text_too_slow_sentence,
    )

    if not backbone_fits(model_input):
        return ""
    n_train = _train_rows(project, n_rows)
    seconds = None
    if model_input.kind == "text":
        try:
            seconds = backbone_seconds(project, model_input, n_rows,
                                       DEFAULT_BACKBONES["text"], "finetune",
                                       text_length=text_length)
        except TrainDeskError:
            return ""  # MiniLM is not installed: the fast text model, as suggested
    proposal = propose_backbone(n_train, model_input, seconds)
    if proposal is None:
        return text_too_slow_sentence(seconds) if seconds is not None else ""
    model, schedule, why = proposal
    try:
        backbones.resolve(model.backbone)
    except TrainDeskError:
        return ""
    # The suggested network from scratch stays as it is, one choice away.
    current = project.model
    current.backbone, current.train_mode = model.backbone, model.train_mode
    current.head_epochs, current.layers = model.head_epochs, []
    training = project.training
    training.lr, training.batch_size = schedule["lr"], schedule["batch_size"]
    training.epochs = schedule["epochs"]
    return why


def backbone_seconds(project: Project, model_input, n_rows: int, backbone: str,
                     mode: str, text_length: int = 0) -> float:
    """Rough seconds of training *backbone* by *mode* on this project's data (its split and
    the schedule :func:`~ml.models.presets.backbone_schedule` suggests), on the project's
    device, from the network's cost (:func:`ml.training.estimate.rough_seconds`).

    Raises
    ------
    TrainDeskError
        The backbone cannot be found or does not read this data.
    """
    import copy

    from ..models.presets import backbone_input, backbone_schedule
    from ..models.spec import summarize
    from ..training.estimate import machine_flops, rough_seconds

    info = backbones.resolve(backbone)
    model = copy.copy(project.model)
    model.backbone, model.train_mode, model.layers = backbone, mode, []
    spec = build_spec(model, backbone_input(info, model_input, text_length), 2,
                      "classification")
    n_train = _train_rows(project, n_rows)
    n_val = int(n_rows * project.data.split.val_fraction)
    epochs = backbone_schedule(mode, n_train)["epochs"]
    return rough_seconds(summarize(spec).total_macs, n_train, n_val, epochs, mode,
                         flops=machine_flops(project.training.device),
                         head_epochs=model.head_epochs)


def _train_rows(project: Project, n_rows: int) -> int:
    split = project.data.split
    return max(1, int(n_rows * (1.0 - split.val_fraction - split.test_fraction)))
