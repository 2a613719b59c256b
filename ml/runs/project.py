"""The TrainDesk project document.

A project is a plain, versioned JSON document (``.tdproj``) holding everything needed to
reproduce the work: the data source and its preprocessing choices, the task, the model
configuration, the training configuration and the list of runs. It never contains pickled
objects or executable content.

Older format versions are upgraded on load by the functions in :data:`MIGRATIONS`, in the way
Orange's ``settings_version`` / ``migrate_settings`` works; a newer version than this build knows
is refused with a clear message rather than half-read.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ProjectError, TrainDeskError
from ..labels import run_name_from_id
from ..system.fileio import atomic_write_json

PROJECT_FORMAT = "traindesk-project"
PROJECT_VERSION = 4
PROJECT_SUFFIX = ".tdproj"

TASKS = ("classification", "regression")
COLUMN_TYPES = ("numeric", "categorical", "boolean", "text", "date")
MISSING_STRATEGIES = ("auto", "drop", "mean", "median", "most_frequent", "constant")
ENCODINGS = ("auto", "onehot", "embedding")
IMAGE_MODES = ("auto", "RGB", "L")
CLASS_WEIGHTS = ("none", "balanced")
COLUMN_ROLES = ("feature", "target", "ignore")
#: Model presets (see :data:`ml.models.presets.PRESET_INFO`); "auto" picks one from the data.
PRESETS = ("auto", "tabm", "linear", "mlp_small", "mlp", "mlp_large", "mlp_bn", "cnn", "vgg",
           "resnet", "text", "rnn", "transformer")
ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "leaky_relu", "sigmoid")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
REFIT_CHOICES = ("auto", "on", "off")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "plateau")
LOSSES = ("auto", "cross_entropy", "bce", "mse", "huber")
IMAGE_LOADING = ("auto", "memory", "stream")
#: What picks the best epoch and drives early stopping: the validation loss, or the validation
#: metric (accuracy for classes, MAE for numbers).
MONITORS = ("val_loss", "val_metric")
RNN_CELLS = ("lstm", "gru")
#: Ways to train a pretrained backbone (:attr:`ModelConfig.train_mode`).
TRAIN_MODES = ("probe", "finetune", "lora")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: How a causal language model is fine-tuned (:class:`LanguageModelConfig`).
LM_MODES = ("lora", "full")
#: Number formats of a language model's training: ``auto`` is bf16 (else fp16) autocast on a
#: GPU that has it and float32 on the CPU.
LM_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: The learning rate a mode starts from when none is given (LoRA's adapters take far larger
#: steps than a whole pretrained network can).
LM_DEFAULT_LR = {"lora": 2e-4, "full": 2e-5}

#: What a project trains: a table, image or text model (``standard``), or a causal language
#: model fine-tuned on chat examples (``language-model``, :class:`LanguageModelConfig`).
PROJECT_KINDS = ("standard", "language-model")

#: ``MIGRATIONS[v]`` turns a version-``v`` document (a dict) into a version ``v + 1`` document.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def _v1_to_v2(doc: dict) -> dict:
    """Version 2 added read options, missing-value strategies, encodings, image and text settings
    and class weights. Their defaults reproduce version 1, except two defaults that changed:
    free-text columns are now read by a text model, and categories with many values are
    embedded. ``legacy_v1`` keeps the old defaults for the migrated project."""
    data = doc.get("data") or {}
    doc["data"] = data
    if isinstance(data, dict):  # anything else is refused by Project.from_dict
        data.setdefault("read_options", {})
        data["legacy_v1"] = True
    return doc


MIGRATIONS[1] = _v1_to_v2


def _v2_to_v3(doc: dict) -> dict:
    """Version 3 chooses Nesterov momentum for SGD (``training.nesterov``). Projects saved
    before that setting existed always used Nesterov momentum with SGD, so they keep it."""
    training = doc.get("training")
    if isinstance(training, dict) and "nesterov" not in training:
        momentum = training.get("momentum", TrainingConfig.momentum)
        training["nesterov"] = (training.get("optimizer") == "sgd"
                                and isinstance(momentum, (int, float)) and momentum > 0)
    return doc


MIGRATIONS[2] = _v2_to_v3


def _v3_to_v4(doc: dict) -> dict:
    """Version 4 has project kinds (:data:`PROJECT_KINDS`); every earlier project trained a
    table, image or text model."""
    doc.setdefault("kind", "standard")
    return doc


MIGRATIONS[3] = _v3_to_v4


@dataclass
class SplitConfig:
    """How rows are divided into training, validation and test sets."""

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    stratify: bool = True
    #: Cross-validation: with *folds* >= 2 the validation set is fold *fold* (0-based) of the
    #: non-test rows (see :func:`ml.data.split.fold_parts`); 0 means one fixed split.
    folds: int = 0
    fold: int = 0

    def validate(self) -> None:
        _check_seed(self.seed)
        if self.folds and not (2 <= self.folds <= 50 and 0 <= self.fold < self.folds):
            raise TrainDeskError(f"Cross-validation needs 2 to 50 folds and a fold number "
                                 f"among them (got fold {self.fold + 1} of {self.folds}).")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise TrainDeskError(
                    f"The {name.split('_')[0]} share must be between 0% and 50% (got "
                    f"{value:.0%}).")
        if self.val_fraction + self.test_fraction >= 0.8:
            raise TrainDeskError("Validation and test together must leave at least 20% of the "
                                 "rows for training.")


@dataclass
class DataConfig:
    """Where the data comes from and how it is read.

    ``source`` is ``"sample:NAME"`` for a built-in sample, or a file path (stored relative to the
    project file when the project is saved). ``column_types`` and ``column_roles`` hold only the
    user's overrides of what TrainDesk inferred; ``task`` is ``None`` to detect it from the target.
    """

    source: str = ""
    target: str | None = None
    task: str | None = None
    column_types: dict[str, str] = field(default_factory=dict)
    column_roles: dict[str, str] = field(default_factory=dict)
    #: Per-column missing-value strategy (one of :data:`MISSING_STRATEGIES`) and, for
    #: ``constant``, the value to fill in.
    missing: dict[str, str] = field(default_factory=dict)
    fill_values: dict[str, Any] = field(default_factory=dict)
    #: Per-column categorical encoding (one of :data:`ENCODINGS`).
    encodings: dict[str, str] = field(default_factory=dict)
    #: How the file is read (:class:`ml.data.tabular.ReadOptions` fields); empty = detect.
    read_options: dict[str, Any] = field(default_factory=dict)
    #: Images: side length in pixels (0 = suggested from the data) and colour mode.
    image_size: int = 0
    image_mode: str = "auto"
    #: Images: ``memory`` decodes them all before training; ``stream`` decodes each batch in
    #: worker processes while the previous one trains; ``auto`` streams sets too big to hold.
    image_loading: str = "auto"
    #: Image augmentation (:class:`ml.data.augment.AugmentSettings` fields).
    augment: dict[str, Any] = field(default_factory=dict)
    #: Text tokenisation (:class:`ml.data.text.TextSettings` fields).
    text: dict[str, Any] = field(default_factory=dict)
    split: SplitConfig = field(default_factory=SplitConfig)
    #: Set by the version-1 migration: keep that version's defaults (free-text columns ignored,
    #: categories one-hot encoded) so an old project trains the same model it did.
    legacy_v1: bool = False

    def validate(self) -> None:
        # Imported here: the data package itself builds on this module.
        from ..data.augment import AugmentSettings
        from ..data.tabular import ReadOptions
        from ..data.text import TextSettings

        for col, how in self.missing.items():
            if how not in MISSING_STRATEGIES:
                raise TrainDeskError(f"Column {col!r} has an unknown missing-value strategy "
                                     f"{how!r}; use one of {', '.join(MISSING_STRATEGIES)}.")
        for col, how in self.encodings.items():
            if how not in ENCODINGS:
                raise TrainDeskError(f"Column {col!r} has an unknown encoding {how!r}; use one "
                                     f"of {', '.join(ENCODINGS)}.")
        if self.image_mode not in IMAGE_MODES:
            raise TrainDeskError(f"Unknown image colour mode {self.image_mode!r}; use RGB or L "
                                 f"(grayscale).")
        if self.image_loading not in IMAGE_LOADING:
            raise TrainDeskError(f"Unknown image loading {self.image_loading!r}; use auto, "
                                 f"memory or stream.")
        if self.image_size and not 4 <= self.image_size <= 1024:
            raise TrainDeskError(f"The image size must be from 4 to 1024 pixels (got "
                                 f"{self.image_size}).")
        ReadOptions.from_dict(self.read_options)
        AugmentSettings.from_dict(self.augment).validate()
        TextSettings.from_dict(self.text).validate()
        if self.task is not None and self.task not in TASKS:
            raise TrainDeskError(f"Unknown task {self.task!r}: use classification or regression.")
        for col, kind in self.column_types.items():
            if kind not in COLUMN_TYPES:
                raise TrainDeskError(f"Column {col!r} has an unknown type {kind!r}; use one of "
                                     f"{', '.join(COLUMN_TYPES)}.")
        for col, role in self.column_roles.items():
            if role not in COLUMN_ROLES:
                raise TrainDeskError(f"Column {col!r} has an unknown role {role!r}; use one of "
                                     f"{', '.join(COLUMN_ROLES)}.")
        self.split.validate()


@dataclass
class ModelConfig:
    """The user's model choices; :func:`ml.models.presets.build_spec` turns them into layers."""

    preset: str = "auto"
    hidden: list[int] = field(default_factory=lambda: [128, 64])
    activation: str = "relu"
    dropout: float = 0.1
    conv_channels: list[int] = field(default_factory=lambda: [32, 64])
    batch_norm: bool = True
    #: The recurrent cell of the ``rnn`` preset.
    rnn_cell: str = "lstm"
    #: A layer stack edited by hand (``[{"type": "linear", "out_features": 64}, ...]``); empty:
    #: the preset's layers. Checked against the data by :func:`ml.models.presets.build_spec`.
    layers: list[dict] = field(default_factory=list)
    #: Transfer learning: a run folder or a weights file (safetensors, or a PyTorch state dict
    #: read with ``weights_only=True``) to start from; empty: fresh weights.
    init_from: str = ""
    #: With *init_from*: epochs during which the loaded layers (the body) are frozen.
    freeze_epochs: int = 0
    #: A pretrained backbone (``efficientnet_lite0``, ``minilm`` or a local model folder) under a
    #: new head; empty: the preset's network from scratch. See :mod:`ml.models.backbones`.
    backbone: str = ""
    #: How a backbone is trained: ``probe`` (frozen, features cached), ``finetune`` (head first,
    #: then gradual unfreezing with smaller rates for earlier layers) or ``lora`` (adapters).
    train_mode: str = "finetune"
    #: Fine-tuning: epochs that train only the new head before the backbone is unfrozen.
    head_epochs: int = 1
    #: LoRA: the adapters' rank.
    lora_rank: int = 8
    #: The ``tabm`` preset: how many MLPs share its hidden layers (see ml.models.tabular;
    #: ml.models.presets.TABM_MEMBERS says why 4).
    ensemble: int = 4

    def validate(self) -> None:
        if self.preset not in PRESETS:
            raise TrainDeskError(f"Unknown model {self.preset!r}; use one of "
                                 f"{', '.join(PRESETS)}.")
        if self.rnn_cell not in RNN_CELLS:
            raise TrainDeskError(f"Unknown recurrent cell {self.rnn_cell!r}; use lstm or gru.")
        if not all(isinstance(layer, dict) and isinstance(layer.get("type"), str)
                   for layer in self.layers):
            raise TrainDeskError("Every custom layer must be an object with a 'type'.")
        if not 0 <= self.freeze_epochs <= 100_000:
            raise TrainDeskError(f"Frozen epochs must be 0 or more (got {self.freeze_epochs}).")
        if self.train_mode not in TRAIN_MODES:
            raise TrainDeskError(f"Unknown way to train a backbone {self.train_mode!r}; use "
                                 f"{', '.join(TRAIN_MODES)}.")
        if not 1 <= self.ensemble <= 256:
            raise TrainDeskError(f"The ensemble needs 1 to 256 members (got {self.ensemble}).")
        if not 0 <= self.head_epochs <= 1000 or not 1 <= self.lora_rank <= 256:
            raise TrainDeskError("Head epochs must be 0 to 1000 and the LoRA rank 1 to 256.")
        if self.activation not in ACTIVATIONS:
            raise TrainDeskError(f"Unknown activation {self.activation!r}; use one of "
                                 f"{', '.join(ACTIVATIONS)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise TrainDeskError(f"Dropout must be at least 0 and below 1 (got {self.dropout}).")
        for name in ("hidden", "conv_channels"):
            sizes = getattr(self, name)
            if any((not isinstance(s, int)) or s < 1 or s > 65536 for s in sizes):
                label = "Hidden layer sizes" if name == "hidden" else "Convolution channels"
                raise TrainDeskError(f"{label} must be whole numbers from 1 to 65536 "
                                     f"(got {sizes}).")
        if self.preset == "cnn" and not self.conv_channels:
            raise TrainDeskError("A CNN needs at least one convolution block.")


@dataclass
class TrainingConfig:
    """Optimiser and loop settings."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 30
    seed: int = 0
    weight_decay: float = 1e-4
    momentum: float = 0.9
    device: str = "auto"
    amp: bool = True
    restore_best: bool = True
    #: ``balanced`` weights each class's loss by ``n / (k * count)`` (training split counts).
    class_weights: str = "none"
    #: SGD only: Nesterov momentum.
    nesterov: bool = False
    #: Learning-rate schedule (see :mod:`ml.training.schedules`), after *warmup_epochs* of
    #: linear warm-up from 0.
    schedule: str = "constant"
    warmup_epochs: int = 0
    #: ``step``: multiply by *step_gamma* every *step_size* epochs.
    step_size: int = 10
    step_gamma: float = 0.1
    #: ``plateau``: multiply by *plateau_factor* after *plateau_patience* epochs without a
    #: better validation loss.
    plateau_patience: int = 5
    plateau_factor: float = 0.5
    #: ``auto``: cross-entropy for classification, MSE for regression.
    loss: str = "auto"
    label_smoothing: float = 0.0
    #: Clip the gradient norm to this (0: off).
    grad_clip: float = 0.0
    #: Stop when the validation loss has not improved by more than *min_delta* for
    #: *patience* epochs (the best epoch's weights are restored with ``restore_best``).
    early_stopping: bool = False
    patience: int = 10
    min_delta: float = 0.0
    #: Which validation number picks the best epoch and stops early (see :data:`MONITORS`).
    monitor: str = "val_loss"
    #: On a GPU out-of-memory error, retry at once with half the batch size (from the last
    #: checkpoint) instead of stopping to ask.
    oom_retry: bool = False
    #: Fit a classic model (gradient boosting, TF-IDF + logistic regression) beside a table
    #: or text run and compare it on the same test rows (:mod:`ml.evaluation.yardstick`).
    yardstick: bool = True
    #: Train again on the training and validation rows for the best epoch's count once
    #: validation has chosen it (:mod:`ml.jobs.refit`): ``auto`` (tables under 20,000 training
    #: rows), ``on`` (text too) or ``off``.
    refit: str = "auto"

    def validate(self) -> None:
        if self.refit not in REFIT_CHOICES:
            raise TrainDeskError(f"Unknown final-fit choice {self.refit!r}; use auto, on or "
                                 f"off.")
        if self.class_weights not in CLASS_WEIGHTS:
            raise TrainDeskError(f"Unknown class weighting {self.class_weights!r}; use none or "
                                 f"balanced.")
        if self.optimizer not in OPTIMIZERS:
            raise TrainDeskError(f"Unknown optimizer {self.optimizer!r}; use one of "
                                 f"{', '.join(OPTIMIZERS)}.")
        if not 0.0 < self.lr <= 10.0:
            raise TrainDeskError(f"The learning rate must be above 0 and at most 10 "
                                 f"(got {self.lr}).")
        if not 1 <= self.batch_size <= 1_000_000:
            raise TrainDeskError(f"The batch size must be at least 1 (got {self.batch_size}).")
        if not 1 <= self.epochs <= 100_000:
            raise TrainDeskError(f"The number of epochs must be at least 1 (got {self.epochs}).")
        if not (self.weight_decay >= 0.0 and math.isfinite(self.weight_decay)):  # NaN too
            raise TrainDeskError(f"Weight decay must be 0 or a positive number (got "
                                 f"{self.weight_decay}).")
        if not 0.0 <= self.momentum < 1.0:
            raise TrainDeskError("Momentum must be at least 0 and below 1.")
        if self.schedule not in SCHEDULES:
            raise TrainDeskError(f"Unknown learning-rate schedule {self.schedule!r}; use one of "
                                 f"{', '.join(SCHEDULES)}.")
        if not 0 <= self.warmup_epochs <= 100_000:
            raise TrainDeskError("Warm-up epochs must be 0 or more.")
        if self.step_size < 1 or not 0.0 < self.step_gamma <= 1.0:
            raise TrainDeskError("The step schedule needs a step of at least 1 epoch and a "
                                 "factor above 0 and at most 1.")
        if self.plateau_patience < 0 or not 0.0 < self.plateau_factor < 1.0:
            raise TrainDeskError("Reduce-on-plateau needs a patience of 0 or more epochs and a "
                                 "factor above 0 and below 1.")
        if self.monitor not in MONITORS:
            raise TrainDeskError(f"Unknown monitor {self.monitor!r}; use val_loss or "
                                 f"val_metric.")
        if self.loss not in LOSSES:
            raise TrainDeskError(f"Unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise TrainDeskError("Label smoothing must be at least 0 and below 1.")
        if self.patience < 1 or not (self.min_delta >= 0.0 and math.isfinite(self.min_delta)):
            raise TrainDeskError("Early stopping needs a patience of at least 1 epoch and a "
                                 "minimum improvement of 0 or more.")
        if not (self.grad_clip >= 0.0 and math.isfinite(self.grad_clip)):
            raise TrainDeskError("Gradient clipping must be 0 (off) or a positive number.")
        if self.device not in DEVICES:
            raise TrainDeskError(f"Unknown device {self.device!r}; use one of "
                                 f"{', '.join(DEVICES)}.")
        _check_seed(self.seed)


@dataclass
class LanguageModelConfig:
    """Fine-tuning a causal language model the user already has (a local Hugging Face folder)
    on chat, instruction or plain-text examples (see :mod:`ml.data.chat`)."""

    #: The model's folder (config.json, safetensors weights, tokenizer).
    backbone: str = ""
    #: The examples: chat JSON lines, instruction / response columns, or plain text.
    data: str = ""
    #: ``lora`` (small adapters beside frozen weights) or ``full`` (every weight).
    mode: str = "lora"
    epochs: int = 3
    #: 0: the mode's default (:data:`LM_DEFAULT_LR`).
    lr: float = 0.0
    batch_size: int = 4
    #: Tokens a training row holds; longer examples are cut there.
    max_length: int = 256
    lora_rank: int = 8
    #: LoRA's scale is ``alpha / rank``; 0: twice the rank.
    lora_alpha: int = 0
    lora_dropout: float = 0.05
    #: The linear layers LoRA adapts; empty: the model type's attention projections.
    lora_targets: list[str] = field(default_factory=list)
    #: Recompute activations in the backward pass: less memory, about a third more time.
    gradient_checkpointing: bool = False
    precision: str = "auto"
    #: What the model is asked after every epoch, so the user sees it learn; empty: the first
    #: test example's question.
    sample_prompt: str = ""
    seed: int = 0
    device: str = "auto"

    @property
    def learning_rate(self) -> float:
        return float(self.lr) if self.lr > 0 else LM_DEFAULT_LR.get(self.mode, 2e-4)

    @property
    def alpha(self) -> int:
        return int(self.lora_alpha) if self.lora_alpha > 0 else 2 * int(self.lora_rank)

    def validate(self) -> None:
        if self.mode not in LM_MODES:
            raise TrainDeskError(f"Unknown fine-tuning mode {self.mode!r}; use lora or full.")
        if self.precision not in LM_PRECISIONS:
            raise TrainDeskError(f"Unknown precision {self.precision!r}; use one of "
                                 f"{', '.join(LM_PRECISIONS)}.")
        if not 1 <= self.epochs <= 10_000:
            raise TrainDeskError(f"The number of epochs must be 1 to 10000 (got {self.epochs}).")
        if not 0.0 <= self.lr <= 1.0:
            raise TrainDeskError(f"The learning rate must be at most 1, or 0 for the mode's "
                                 f"default (got {self.lr}).")
        if not 1 <= self.batch_size <= 4096:
            raise TrainDeskError(f"The batch size must be 1 to 4096 (got {self.batch_size}).")
        if not 8 <= self.max_length <= 1_000_000:
            raise TrainDeskError(f"The context must be at least 8 tokens (got "
                                 f"{self.max_length}).")
        if not 1 <= self.lora_rank <= 1024 or not 0 <= self.lora_alpha <= 100_000:
            raise TrainDeskError(f"LoRA needs a rank of 1 to 1024 and an alpha of 0 (twice "
                                 f"the rank) or more (got rank {self.lora_rank}, alpha "
                                 f"{self.lora_alpha}).")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise TrainDeskError("LoRA dropout must be at least 0 and below 1.")
        if self.device not in DEVICES:
            raise TrainDeskError(f"Unknown device {self.device!r}; use one of "
                                 f"{', '.join(DEVICES)}.")
        _check_seed(self.seed)


def _check_seed(seed: int) -> None:
    if not 0 <= seed < 2**32:
        raise TrainDeskError(f"A seed must be a whole number from 0 to 4294967295 (got {seed}).")


@dataclass
class RunRecord:
    """One training run of the project, as listed in the project file."""

    id: str
    path: str
    created: str
    status: str = "running"
    task: str = ""
    model: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    #: Runs made together (a cross-validation or a search) share a group name.
    group: str = ""
    #: What the run is within its group, e.g. "fold 2 of 5" or "trial 7".
    label: str = ""
    epochs: int = 0
    seconds: float = 0.0
    #: The run's human name ("Run 3 · small MLP"), as in its run.json; empty in projects
    #: saved before runs had names (:attr:`title` then makes one).
    name: str = ""

    @property
    def title(self) -> str:
        """What the run is called on screen: its name, else a readable one from its start
        time and model (never the raw folder name when that can be helped)."""
        if self.name.strip():
            return self.name.strip()
        if self.label:
            return f"{self.label[:1].upper()}{self.label[1:]}"
        return run_name_from_id(self.id, self.model, self.created)


@dataclass
class Project:
    """The whole project document.

    ``path`` is where the project was last saved or opened from; it is not serialised.
    """

    name: str = "Untitled"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    runs: list[RunRecord] = field(default_factory=list)
    #: See :data:`PROJECT_KINDS`; a ``language-model`` project uses :attr:`language_model` and
    #: leaves *data*, *model* and *training* at their defaults.
    kind: str = "standard"
    language_model: LanguageModelConfig = field(default_factory=LanguageModelConfig)
    path: Path | None = field(default=None, compare=False, repr=False)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        """Return the JSON document; file paths are made relative to *relative_to* if given."""
        data = dataclasses.asdict(self.data)
        data["source"] = _portable_path(self.data.source, relative_to)
        runs = []
        for run in self.runs:
            entry = dataclasses.asdict(run)
            entry["path"] = _portable_path(run.path, relative_to)
            runs.append(entry)
        return {
            "format": PROJECT_FORMAT,
            "version": PROJECT_VERSION,
            "written_by": __version__,
            "name": self.name,
            "data": data,
            "model": dataclasses.asdict(self.model),
            "training": dataclasses.asdict(self.training),
            "runs": runs,
            "kind": self.kind,
            "language_model": {**dataclasses.asdict(self.language_model),
                               "backbone": _portable_path(self.language_model.backbone,
                                                          relative_to),
                               "data": _portable_path(self.language_model.data, relative_to)},
        }

    @classmethod
    def from_dict(cls, doc: Any, base_dir: Path | None = None) -> Project:
        """Build a project from a JSON document, migrating older versions.

        Raises
        ------
        ProjectError
            If the document is not a TrainDesk project, is from a newer version, or holds
            invalid values.
        """
        if not isinstance(doc, dict) or doc.get("format") != PROJECT_FORMAT:
            raise ProjectError("This file is not a TrainDesk project.")
        try:
            doc = migrate(copy.deepcopy(doc))
            data_doc = doc.get("data") or {}
            if not isinstance(data_doc, dict):
                raise _not_an_object("data")
            data_doc = dict(data_doc)
            split = _build(SplitConfig, data_doc.pop("split", {}) or {}, "data.split")
            data = _build(DataConfig, data_doc, "data")
            data.split = split
            data.source = _resolve_path(data.source, base_dir)
            model = _build(ModelConfig, doc.get("model") or {}, "model")
            training = _build(TrainingConfig, doc.get("training") or {}, "training")
            runs = []
            for i, entry in enumerate(doc.get("runs") or []):
                run = _build(RunRecord, entry, f"runs[{i}]")
                run.path = _resolve_path(run.path, base_dir)
                runs.append(run)
            lm = _build(LanguageModelConfig, doc.get("language_model") or {}, "language_model")
            lm.backbone = _resolve_path(lm.backbone, base_dir)
            lm.data = _resolve_path(lm.data, base_dir)
            project = cls(name=str(doc.get("name") or "Untitled"), data=data, model=model,
                          training=training, runs=runs, kind=str(doc.get("kind") or "standard"),
                          language_model=lm)
            project.validate()
        except ProjectError:
            raise
        except TrainDeskError as exc:
            raise ProjectError(f"The project file has an invalid setting: {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ProjectError(f"The project file is damaged ({exc}).") from None
        except RecursionError:
            raise ProjectError("The project file is damaged (it holds values nested too deeply "
                               "to read); open a saved copy or start a new project.") from None
        return project

    def validate(self) -> None:
        """Check every setting; raise :class:`TrainDeskError` naming the first bad one."""
        if self.kind not in PROJECT_KINDS:
            raise TrainDeskError(f"Unknown project kind {self.kind!r}; use standard or "
                                 f"language-model.")
        self.data.validate()
        self.model.validate()
        self.training.validate()
        self.language_model.validate()

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the project atomically to *path* (``.tdproj`` added if missing)."""
        path = Path(path)
        if path.suffix != PROJECT_SUFFIX:
            path = path.with_name(path.name + PROJECT_SUFFIX)
        path = path.resolve()
        try:
            self.validate()  # never write a file that could not be opened again
        except ProjectError:
            raise
        except TrainDeskError as exc:
            raise ProjectError(f"The project cannot be saved yet: {exc}") from None
        atomic_write_json(path, self.to_dict(relative_to=path.parent), error=ProjectError)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Project:
        """Read a project file.

        Raises
        ------
        ProjectError
            With a readable message for a missing, unreadable, corrupt or newer file.
        """
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ProjectError(f"Project file not found: {path}") from None
        except IsADirectoryError:
            raise ProjectError(f"{path} is a folder, not a project file.") from None
        except OSError as exc:
            raise ProjectError(f"Could not read {path}: {exc.strerror or exc}.") from None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # also numbers too long and values nested too deeply
            raise ProjectError(f"{path.name} is damaged or not a TrainDesk project (it is not "
                               f"valid JSON).") from None
        project = cls.from_dict(doc, base_dir=path.resolve().parent)
        project.path = path.resolve()
        return project

    def runs_dir(self) -> Path:
        """Folder for this project's runs: beside the project file, or the default runs folder."""
        from ..system.resources import default_runs_dir

        if self.path is not None:
            return self.path.parent / f"{self.path.stem}_runs"
        return default_runs_dir()

    def copy(self) -> Project:
        clone = copy.deepcopy(self)
        return clone


def migrate(doc: dict) -> dict:
    """Upgrade a project document to :data:`PROJECT_VERSION`.

    Raises
    ------
    ProjectError
        If the version is missing, not an integer, or newer than this build understands.
    """
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError("The project file has no valid format version; it may be damaged.")
    if version > PROJECT_VERSION:
        writer = doc.get("written_by")
        writer = f"{writer}, " if isinstance(writer, str) and len(writer) < 40 else ""
        raise ProjectError(
            f"This project was saved by a newer TrainDesk ({writer}project format {version}); "
            f"this TrainDesk ({__version__}) reads project formats up to {PROJECT_VERSION}. "
            f"Update TrainDesk to open it.")
    while version < PROJECT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectError(f"Project format version {version} can no longer be read.")
        doc = step(doc)
        version += 1
        doc["version"] = version
    return doc


def _build(kind: type, values: Any, where: str):
    """Create dataclass *kind* from *values*, checking each field's JSON type."""
    if not isinstance(values, dict):
        raise _not_an_object(where)
    kwargs = {}
    hints = {f.name: f for f in dataclasses.fields(kind)}
    for key, value in values.items():
        if key not in hints:
            continue  # unknown keys from the future are ignored, known ones are checked
        default = _default_of(hints[key])
        kwargs[key] = _coerce(value, default, f"{where}.{key}")
    try:
        return kind(**kwargs)
    except TypeError as exc:
        raise ProjectError(f"'{where}' is incomplete: {exc}.") from None


def _not_an_object(where: str) -> ProjectError:
    return ProjectError(f"'{where}' should be an object; fix it in the project file, or remove it "
                        f"to use the defaults.")


def _default_of(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return ""


def _coerce(value: Any, default: Any, where: str) -> Any:
    bad = ProjectError(f"'{where}' has a value of the wrong kind: {value!r}.")
    if value is None:
        if default is None:  # an optional setting (target, task)
            return None
        raise bad
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise bad
        return list(value)
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(
                v is None or isinstance(v, (str, int, float, bool)) for v in value.values()):
            raise bad
        return dict(value)
    if default is None and not isinstance(value, str):
        raise bad
    return value


def _portable_path(path: str, relative_to: Path | None) -> str:
    if not path or path.startswith("sample:") or relative_to is None:
        return path
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return Path(os.path.relpath(p, relative_to)).as_posix()
    except ValueError:  # another drive on Windows
        return p.as_posix()


def _resolve_path(path: str, base_dir: Path | None) -> str:
    if not path or path.startswith("sample:") or base_dir is None:
        return path
    p = Path(path)
    if p.is_absolute():
        return str(p)
    return str((base_dir / p).resolve())
