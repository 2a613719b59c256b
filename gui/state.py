"""The shared project state every page receives in its constructor.

It holds the :class:`~ml.runs.project.Project` document plus what was derived from it in this
session (the loaded dataset, the resolved data summary, the model spec, the current run) and
announces changes through signals, the way napari's components announce theirs; pages subscribe
to the signals and never talk to each other directly. It holds no training logic.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ml.data.dataset import Dataset, DataSummary, estimate_model_input, resolve
from ml.errors import TrainDeskError
from ml.evaluation.evaluate import Evaluation
from ml.jobs.estimate import propose_start, schedule_for_start
from ml.jobs.training import apply_suggestions
from ml.models.presets import (
    backbone_head,
    backbone_input,
    build_spec,
    preset_layers,
    resolve_preset,
    suggested_lr,
    with_data_embeddings,
)
from ml.models.spec import ModelSpec, ModelSummary, check_layers, summarize
from ml.runs.folder import LM_WEIGHTS, RunFolder
from ml.runs.project import Project, RunRecord
from ml.training.trainer import loss_for


@dataclass
class CurrentRun:
    """The run the Evaluate and Export pages work on."""

    record: RunRecord
    evaluation: Evaluation | None = None

    @property
    def path(self) -> Path:
        return Path(self.record.path)


class ProjectState(QObject):
    """Project document + session state, with change signals."""

    project_replaced = Signal()
    dataset_changed = Signal()
    data_config_changed = Signal()
    model_changed = Signal()
    runs_changed = Signal()
    current_run_changed = Signal()
    #: A run's saved decision threshold changed (its folder, the threshold).
    threshold_changed = Signal(str, float)
    training_changed = Signal(bool)
    dirty_changed = Signal(bool)
    #: Any edit of the project (also while it already has unsaved changes): autosave listens.
    edited = Signal()
    steps_changed = Signal()
    #: A language-model project's examples, model or settings changed.
    lm_changed = Signal()

    def __init__(self, project: Project | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project or Project()
        #: A language-model project's examples (:class:`ml.data.chat.ChatData`) and model
        #: (:class:`ml.models.causal_lm.CausalLM`) as last read, or why they could not be.
        self.lm_data = None
        self.lm_data_error = ""
        self.lm_model = None
        self.lm_model_error = ""
        self.dataset: Dataset | None = None
        self.summary: DataSummary | None = None
        self.data_error = ""
        self.spec: ModelSpec | None = None
        self.model_summary: ModelSummary | None = None
        self.model_error = ""
        #: What the network gets (an :class:`~ml.models.spec.InputSpec`) and must give.
        self.model_input = None
        self.n_outputs = 0
        #: The layers shown in the editor (the custom stack, or the preset's) and a check of
        #: each (:class:`~ml.models.spec.LayerCheck`), bad layers included.
        self.layers: list[dict] = []
        self.layer_checks: list = []
        self.current_run: CurrentRun | None = None
        self.training = False
        self.dirty = False
        # Until the user edits the model, it follows the data (suggested settings).
        self._model_touched = False
        #: The sentence saying which start was proposed for the data and why ("" when none).
        self.proposal = ""

    # -- derived state --------------------------------------------------------------------------
    def _refresh_summary(self) -> None:
        self.summary, self.data_error = None, ""
        if self.dataset is not None:
            try:
                self.summary = resolve(self.dataset, self.project.data)
                if not self._model_touched:
                    self._suggest()
            except TrainDeskError as exc:
                self.summary = None
                self.data_error = str(exc)
        self._refresh_spec()

    def _suggest(self) -> None:
        """The suggested network and schedule, then the pretrained start proposed for the data
        (EfficientNet-Lite0 for photos, MiniLM for text when it trains fast enough here)."""
        apply_suggestions(self.project, self.dataset, self.summary)
        model_input = estimate_model_input(self.dataset, self.summary, self.project.data)
        self.proposal = propose_start(self.project, model_input, self.summary.n_rows,
                                      text_length=self._text_length("minilm"))

    def _model_input(self):
        """What the network reads: the data's input, or what the chosen backbone reads."""
        model_input = estimate_model_input(self.dataset, self.summary, self.project.data)
        if self.project.model.backbone:
            from ml.models.backbones import resolve as resolve_backbone

            backbone = self.project.model.backbone
            model_input = backbone_input(resolve_backbone(backbone), model_input,
                                         self._text_length(backbone))
        return model_input

    def _text_length(self, backbone: str) -> int:
        """The word pieces *backbone* would read per text of this data (0: not text, or the
        backbone cannot be read)."""
        from ml.data.dataset import backbone_text_length
        from ml.errors import TrainDeskError
        from ml.models.backbones import resolve as resolve_backbone

        if not self.summary.text_columns:
            return 0
        try:
            return backbone_text_length(self.dataset, self.summary, resolve_backbone(backbone))
        except TrainDeskError:
            return 0

    def _refresh_spec(self) -> None:
        self.spec, self.model_summary, self.model_error = None, None, ""
        self.model_input, self.n_outputs, self.layers, self.layer_checks = None, 0, [], []
        if self.summary is None:
            return
        n_out = len(self.summary.class_counts) if self.summary.task == "classification" else 1
        self.n_outputs = n_out
        model = self.project.model
        try:
            self.model_input = self._model_input()
            # The editor shows every layer, bad ones marked, before the whole is checked.
            if model.backbone:
                self.layers = backbone_head(model, self.model_input, n_out)[0]
            elif model.layers:
                self.layers = with_data_embeddings(model.layers, self.model_input)
            else:
                self.layers = preset_layers(model.preset, model, self.model_input, n_out)
            self.layer_checks = check_layers(self.model_input.shape, self.layers,
                                             self.model_input.dtype, n_outputs=n_out,
                                             embeddings=self.model_input.embeddings)
            self.project.training.validate()
            loss_for(self.summary.task, self.project.training.loss)
            self.spec = build_spec(model, self.model_input, n_out, self.summary.task)
            self.model_summary = summarize(self.spec)
        except TrainDeskError as exc:
            self.model_error = str(exc)
            self.spec = None

    @property
    def table_run(self) -> CurrentRun | None:
        """The current run when it is a table, image or text model's (the standard pages'
        run); ``None`` for a language-model run, which its own pages show."""
        run = self.current_run
        return None if run is None or run.record.task == "causal-lm" else run

    @property
    def language_model_run(self) -> str:
        """The current run's folder when it fine-tuned a language model, else ``""``."""
        run = self.current_run
        return str(run.path) if run is not None and run.record.task == "causal-lm" else ""

    @property
    def is_language_model(self) -> bool:
        return self.project.kind == "language-model"

    def step_enabled(self, index: int) -> bool:
        """Whether wizard step *index* has what it needs."""
        if index == 0:
            return True
        if self.is_language_model:
            return [True, self.lm_data is not None,
                    self.lm_data is not None and self.lm_model is not None,
                    self.current_run is not None, self.current_run is not None][index]
        if index == 1:
            return self.summary is not None
        if index == 2:
            return self.spec is not None
        return self.current_run is not None

    def step_hint(self, index: int) -> str:
        """Why step *index* is locked."""
        if self.is_language_model:
            return ["", "Choose a file of examples first.",
                    "Choose a language model folder first.", "Fine-tune the model first.",
                    "Fine-tune the model first."][index]
        return ["", "Choose a dataset and a valid target first.",
                "Fix the model settings first.", "Train a model first.",
                "Train a model first."][index]

    # -- changes --------------------------------------------------------------------------------
    def set_dirty(self, dirty: bool = True) -> None:
        if dirty:
            self.edited.emit()
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirty_changed.emit(dirty)

    def set_dataset(self, dataset: Dataset, *, keep_settings: bool = False,
                    dirty: bool = True) -> None:
        """Use *dataset*; unless *keep_settings*, reset the per-column choices, target and image
        and text settings, and suggest a model. *dirty* False: the project's own data came back
        (opening a project), which is no edit."""
        self.dataset = dataset
        data = self.project.data
        data.source = dataset.source
        if not keep_settings:
            data.target = dataset.default_target
            data.task = None
            for choices in (data.column_types, data.column_roles, data.missing,
                            data.fill_values, data.encodings, data.augment, data.text):
                choices.clear()
            data.image_size, data.image_mode = 0, "auto"
            if self.project.name in ("", "Untitled"):
                self.project.name = dataset.name
        self._model_touched = keep_settings
        self._refresh_summary()
        if dirty:
            self.set_dirty(True)
        self.dataset_changed.emit()
        self.data_config_changed.emit()
        self.model_changed.emit()
        self.steps_changed.emit()

    def update_data(self, **changes) -> None:
        """Change data settings (``target``, ``task``, ``column_types``, ``split`` fields...)."""
        data = self.project.data
        for key, value in changes.items():
            if key in ("val_fraction", "test_fraction", "seed", "stratify"):
                setattr(data.split, key, value)
            else:
                setattr(data, key, value)
        self._refresh_summary()
        self.set_dirty(True)
        self.data_config_changed.emit()
        self.model_changed.emit()
        self.steps_changed.emit()

    def set_column(self, name: str, *, type: str | None = None, role: str | None = None) -> None:
        """Override one column's type or role (``role="target"`` makes it the target)."""
        data = self.project.data
        if type is not None:
            data.column_types[name] = type
        if role == "target":
            data.target = name
            data.column_roles.pop(name, None)
        elif role is not None:
            data.column_roles[name] = role
            if (data.target or (self.dataset and self.dataset.default_target)) == name:
                data.target = None  # no target now: the Data page asks for one
        self.update_data()

    def update_model(self, **changes) -> None:
        """Change model settings (``preset``, ``hidden``, ``dropout``...).

        A new preset brings its suggested learning rate, unless the user set another one."""
        if "preset" in changes and self.model_input is not None:
            old = suggested_lr(resolve_preset(self.project.model, self.model_input))
            new_config = copy.copy(self.project.model)
            new_config.preset = changes["preset"]
            if self.project.training.lr == old:
                self.project.training.lr = suggested_lr(resolve_preset(new_config,
                                                                       self.model_input))
        for key, value in changes.items():
            setattr(self.project.model, key, value)
        self._model_touched = True
        self._changed_model()

    def update_training(self, **changes) -> None:
        """Change training settings (``lr``, ``epochs``, ``batch_size``...)."""
        for key, value in changes.items():
            setattr(self.project.training, key, value)
        self._model_touched = True
        self._changed_model()

    def suggest_model(self) -> None:
        """Reset model and schedule to what suits the data."""
        if self.dataset is not None and self.summary is not None:
            self._suggest()
            self._model_touched = False
            self._changed_model()

    def choose_start(self, backbone: str, mode: str | None = None) -> None:
        """Start from *backbone* (``""``: the preset network from scratch), trained by *mode*
        (None: the current way), with the learning rate, batch size and epochs that suit it."""
        model = self.project.model
        model.backbone = backbone
        if mode is not None:
            model.train_mode = mode
        if backbone:
            model.layers = []
        if self.summary is not None and self.dataset is not None:
            model_input = estimate_model_input(self.dataset, self.summary, self.project.data)
            try:
                schedule = schedule_for_start(self.project, model_input, self.summary.n_rows)
            except TrainDeskError:
                schedule = {}  # the page shows why through the model's error
            for key, value in schedule.items():
                setattr(self.project.training, key, value)
        self._model_touched = True
        self._changed_model()

    def _changed_model(self) -> None:
        self._refresh_spec()
        self.set_dirty(True)
        self.model_changed.emit()
        self.steps_changed.emit()

    # -- language-model projects ------------------------------------------------------------------
    def set_lm_data(self, data, error: str = "") -> None:
        """The examples just read (``None`` and *error* when they could not be)."""
        self.lm_data, self.lm_data_error = data, error
        self.lm_changed.emit()
        self.steps_changed.emit()

    def set_lm_model(self, model, error: str = "") -> None:
        """The model folder just described (``None`` and *error* when it is not one)."""
        self.lm_model, self.lm_model_error = model, error
        self.lm_changed.emit()
        self.steps_changed.emit()

    def update_language_model(self, **changes) -> None:
        """Change language-model settings (``mode="full"``, ``data=...``)."""
        config = self.project.language_model
        changed = {k: v for k, v in changes.items() if getattr(config, k) != v}
        if not changed:
            return
        for key, value in changed.items():
            setattr(config, key, value)
        self.set_dirty(True)
        self.lm_changed.emit()

    def set_training(self, running: bool) -> None:
        self.training = running
        self.training_changed.emit(running)

    def add_run(self, record: RunRecord, evaluation: Evaluation | None = None, *,
                make_current: bool = True) -> None:
        """Record a finished or stopped run (replacing its earlier entry when it was resumed)
        and, unless told otherwise, make it current."""
        self.project.runs = [r for r in self.project.runs if r.path != record.path]
        self.project.runs.append(record)
        self.set_dirty(True)
        self.runs_changed.emit()
        if make_current:
            self.set_current_run(record, evaluation)

    def rename_run(self, record: RunRecord, name: str) -> str:
        """Give a run a new human name: in its run folder (its owner writes run.json) and in
        the project's list. Returns the name as stored.

        Raises
        ------
        TrainDeskError
            If the name is empty or too long, or the run folder cannot be written.
        """
        stored = RunFolder.open(record.path).rename(name)
        for entry in self.project.runs:
            if entry.path == record.path:
                entry.name = stored
        record.name = stored
        self.set_dirty(True)
        # Only the lists change: current_run_changed would make the pages evaluate it again.
        self.runs_changed.emit()
        return stored

    def remove_runs(self, records: list[RunRecord]) -> None:
        """Drop runs from the project's list (their folders are the caller's business)."""
        paths = {r.path for r in records}
        self.project.runs = [r for r in self.project.runs if r.path not in paths]
        self.set_dirty(True)
        self.runs_changed.emit()
        if self.current_run is not None and self.current_run.record.path in paths:
            usable = [r for r in self.project.runs if RunFolder(r.path).has_model]
            self.set_current_run(usable[-1] if usable else None)

    def use_settings(self, settings: Project) -> None:
        """Take the model and training settings of *settings* (a run's, to clone and edit it),
        and its data settings too when it read the same data (without any fold)."""
        self._model_touched = True  # these settings, not ones suggested for the data
        if settings.data.source == self.project.data.source:
            data = copy.deepcopy(settings.data)
            data.split.folds = data.split.fold = 0
            self.project.data = data
            self._refresh_summary()
            self.data_config_changed.emit()
        self.project.model = copy.deepcopy(settings.model)
        self.project.training = copy.deepcopy(settings.training)
        self._changed_model()

    def set_current_run(self, record: RunRecord | None, evaluation: Evaluation | None = None
                        ) -> None:
        self.current_run = CurrentRun(record, evaluation) if record else None
        self.current_run_changed.emit()
        self.steps_changed.emit()

    def replace_project(self, project: Project, dataset: Dataset | None) -> None:
        """Switch to another project (New / Open)."""
        self.project = project
        self.dataset = dataset
        self.current_run = None
        self._model_touched = True  # an opened project keeps its own model settings
        self._refresh_summary()
        usable = [r for r in project.runs if RunFolder(r.path).has_model
                  or (Path(r.path) / LM_WEIGHTS).is_file()]
        self.lm_data = self.lm_model = None
        self.lm_data_error = self.lm_model_error = ""
        if usable:
            self.current_run = CurrentRun(usable[-1])
        self.set_dirty(False)
        self.project_replaced.emit()
        self.dataset_changed.emit()
        self.data_config_changed.emit()
        self.model_changed.emit()
        self.runs_changed.emit()
        self.current_run_changed.emit()
        self.lm_changed.emit()
        self.steps_changed.emit()
