"""Steps 1 and 2 of a language-model project: the examples to fine-tune on, and the model with
its settings (memory for full and LoRA training, and the time it will take here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ml.data.chat import read_chat
from ml.errors import TrainDeskError
from ml.jobs.causal import estimate, memory_plan, token_health
from ml.models import library
from ml.models.causal_lm import inspect_causal_lm
from ml.models.library import format_bytes
from ml.runs.project import LM_DEFAULT_LR
from workers.base import FunctionWorker, TaskRunner

from .. import dialogs
from ..state import ProjectState
from ..theme import mute
from ..widgets.common import MessageBanner, heading
from ..widgets.plots import BarChartWidget

DATA_FILTER = "Examples (*.jsonl *.json *.csv *.txt);;All files (*)"
#: What each mode does, in plain words (the Model step shows the chosen one's).
MODE_HELP = {
    "lora": "LoRA trains small extra matrices beside the model's attention layers and leaves "
            "its own weights as they are: far less memory, and the result is a small adapter "
            "file. The usual choice.",
    "full": "Full fine-tuning changes every weight. It needs about four times the model's "
            "size in memory for training, so it suits small models.",
}
LOSS_NOTE = ("The loss counts the assistant's answers only: the questions and system messages "
             "are what the model reads, not what it learns to write. Short examples are packed "
             "several to a row.")


def choose_language_model(path: str):
    """Describe the causal LM in *path* (refused if it is not one) and remember it in the
    model library, so it is offered next time."""
    model = inspect_causal_lm(path)
    try:
        library.add_folder(str(model.path))
    except TrainDeskError:
        pass  # a damaged library file: the model is still usable, just not remembered
    return model


def _scrolled(inner: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(inner)
    return area


class LMDataPage(QWidget):
    """Choose the file of examples; what it holds and how long its examples are in tokens."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.tokens_runner = TaskRunner(self)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.addWidget(heading("Examples to fine-tune on"))
        formats = mute(QLabel(
            "Chat conversations as JSON lines ({\"messages\": [{\"role\": \"user\", "
            "\"content\": ...}, ...]}), a CSV or JSON lines with instruction and response "
            "columns, or plain text (.txt) to continue pretraining on."))
        formats.setWordWrap(True)
        layout.addWidget(formats)
        row = QHBoxLayout()
        self.choose_button = QPushButton("Choose a file…")
        self.choose_button.clicked.connect(self.choose_file)
        self.path_label = QLabel("No file chosen")
        row.addWidget(self.choose_button)
        row.addWidget(self.path_label, 1)
        layout.addLayout(row)
        self.banner = MessageBanner()
        layout.addWidget(self.banner)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.loss_note = mute(QLabel(LOSS_NOTE))
        self.loss_note.setWordWrap(True)
        layout.addWidget(self.loss_note)
        self.tokens_label = QLabel()
        self.tokens_label.setWordWrap(True)
        layout.addWidget(self.tokens_label)
        self.histogram = BarChartWidget()
        self.histogram.setMaximumHeight(280)
        layout.addWidget(self.histogram)
        layout.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(_scrolled(inner))
        self.runner.finished.connect(self._on_read)
        self.runner.errored.connect(self._on_read_failed)
        self.tokens_runner.finished.connect(self._on_tokens)
        self.tokens_runner.errored.connect(self._on_tokens_failed)
        state.lm_changed.connect(self._refresh)
        self._counted_for = None
        self._refresh()

    @Slot()
    def choose_file(self) -> None:
        path = dialogs.open_file(self, "Choose the examples", DATA_FILTER)
        if path:
            self.load(path)

    def load(self, path: str) -> None:
        """Read *path* in the background (its examples replace the project's)."""
        self.state.update_language_model(data=str(Path(path).resolve()))
        self.banner.show_message(f"Reading {Path(path).name} …", "info")
        self.runner.start(FunctionWorker(read_chat, path))

    @Slot(object)
    def _on_read(self, data) -> None:
        self.banner.clear_message()
        self._counted_for = None
        self.state.set_lm_data(data)

    @Slot(str)
    def _on_read_failed(self, message: str) -> None:
        self.banner.show_message(message, "error")
        self.state.set_lm_data(None, message)

    @Slot()
    def _refresh(self) -> None:
        config, data = self.state.project.language_model, self.state.lm_data
        self.path_label.setText(config.data or "No file chosen")
        if data is None:
            self.summary.setText("")
            self.tokens_label.setText("")
            return
        kind = "chat conversations" if data.kind == "chat" else "texts (every token counts)"
        text = f"<b>{len(data.examples):,}</b> {kind} in {Path(data.source).name}."
        if data.skipped:
            shown = "; ".join(data.skipped[:3])
            text += (f" <b>{len(data.skipped)}</b> line{'s' if len(data.skipped) > 1 else ''} "
                     f"left out ({shown}{' …' if len(data.skipped) > 3 else ''}).")
        self.summary.setText(text)
        self.loss_note.setVisible(data.kind == "chat")
        self._count_tokens()

    def _count_tokens(self) -> None:
        """With a model chosen: token lengths, duplicates and what the context would cut."""
        model, data = self.state.lm_model, self.state.lm_data
        key = (id(data), model.path if model else None,
               self.state.project.language_model.max_length)
        if model is None:
            self.tokens_label.setText("Choose the model on the next step to see how long the "
                                      "examples are in its tokens.")
            self.histogram.set_histogram([], "")
            return
        if key == self._counted_for:
            return
        self._counted_for = key
        self.tokens_runner.start(FunctionWorker(token_health, data, model, key[2]))

    @Slot(object)
    def _on_tokens(self, health: dict) -> None:
        cut = health["too_long"]
        parts = [f"{health['counted_tokens']:,} tokens are learned from"]
        if health["duplicates"]:
            parts.append(f"{health['duplicates']} examples repeat an earlier one")
        if health["empty_turns"]:
            parts.append(f"{health['empty_turns']} turns are empty")
        parts.append(f"{cut} example{'s are' if cut != 1 else ' is'} longer than the context "
                     f"of {health['max_length']} tokens and would be cut" if cut else
                     f"every example fits the context of {health['max_length']} tokens")
        self.tokens_label.setText("; ".join(parts) + ".")
        edges, counts = health["histogram"]["edges"], health["histogram"]["counts"]
        labels = [f"{edges[i]:.0f}–{edges[i + 1]:.0f}" for i in range(len(counts))]
        self.histogram.set_bars(labels, counts, "Example lengths in tokens", "examples")

    @Slot(str)
    def _on_tokens_failed(self, message: str) -> None:
        self._counted_for = None
        self.tokens_label.setText("")
        self.banner.show_message(message, "error")


class LMModelPage(QWidget):
    """Choose the model folder; what it is, what training it takes, and the settings."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.estimate_runner = TaskRunner(self)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.addWidget(heading("The language model"))
        row = QHBoxLayout()
        self.library_combo = QComboBox()
        self.library_combo.setToolTip("The language models in the model library (every folder "
                                      "chosen here is added to it)")
        self.library_combo.activated.connect(self._on_library_choice)
        self.choose_button = QPushButton("Choose a model folder…")
        self.choose_button.clicked.connect(self.choose_folder)
        self.path_label = QLabel("No model chosen")
        row.addWidget(QLabel("From the library:"))
        row.addWidget(self.library_combo)
        row.addWidget(self.choose_button)
        row.addWidget(self.path_label, 1)
        layout.addLayout(row)
        self.banner = MessageBanner()
        layout.addWidget(self.banner)
        self.about = QLabel()
        self.about.setWordWrap(True)
        layout.addWidget(self.about)
        self.memory = MessageBanner()
        layout.addWidget(self.memory)
        layout.addWidget(self._settings_box())
        row = QHBoxLayout()
        self.estimate_button = QPushButton("Estimate the time")
        self.estimate_button.clicked.connect(self.start_estimate)
        self.estimate_label = QLabel()
        self.estimate_label.setWordWrap(True)
        row.addWidget(self.estimate_button)
        row.addWidget(self.estimate_label, 1)
        layout.addLayout(row)
        layout.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(_scrolled(inner))
        self.runner.finished.connect(lambda model: self.state.set_lm_model(model))
        self.runner.errored.connect(self._on_model_failed)
        self.estimate_runner.finished.connect(
            lambda est: self.estimate_label.setText(est.sentence))
        self.estimate_runner.errored.connect(
            lambda message: self.estimate_label.setText(message))
        state.lm_changed.connect(self._refresh)
        self._refresh()

    def _settings_box(self) -> QGroupBox:
        box = QGroupBox("How it is fine-tuned")
        form = QFormLayout(box)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("LoRA adapters", "lora")
        self.mode_combo.addItem("Every weight (full fine-tuning)", "full")
        self.mode_help = mute(QLabel())
        self.mode_help.setWordWrap(True)
        form.addRow("Mode", self.mode_combo)
        form.addRow(self.mode_help)
        self.rank_spin = self._spin(1, 1024, "lora_rank", "LoRA rank: the adapters' size. "
                                    "8 to 16 is usual; more learns more and takes more memory.")
        self.alpha_spin = self._spin(0, 100_000, "lora_alpha", "LoRA alpha: how strongly the "
                                     "adapters act (alpha / rank). 0: twice the rank.")
        self.alpha_spin.setSpecialValueText("twice the rank")
        self.dropout_spin = QDoubleSpinBox()
        self.dropout_spin.setRange(0.0, 0.9)
        self.dropout_spin.setSingleStep(0.05)
        self.dropout_spin.setToolTip("LoRA dropout: drops a share of the adapters' input while "
                                     "training, against memorising a small set.")
        self.dropout_spin.valueChanged.connect(
            lambda v: self.state.update_language_model(lora_dropout=float(v)))
        self.targets_edit = QLineEdit()
        self.targets_edit.setToolTip("The linear layers LoRA adapts, separated by commas. Empty: "
                                     "the model type's attention projections.")
        self.targets_edit.editingFinished.connect(self._on_targets)
        for label, widget in (("LoRA rank", self.rank_spin), ("LoRA alpha", self.alpha_spin),
                              ("LoRA dropout", self.dropout_spin),
                              ("Adapted layers", self.targets_edit)):
            form.addRow(label, widget)
        self._add_loop_settings(form)
        self.mode_combo.currentIndexChanged.connect(
            lambda: self.state.update_language_model(mode=self.mode_combo.currentData()))
        return box

    def _spin(self, low: int, high: int, key: str, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setToolTip(tip)
        spin.valueChanged.connect(lambda v: self.state.update_language_model(**{key: int(v)}))
        return spin

    def _add_loop_settings(self, form: QFormLayout) -> None:
        self.epochs_spin = self._spin(1, 10_000, "epochs", "Passes over the training examples.")
        self.batch_spin = self._spin(1, 4096, "batch_size", "Rows per step. Lower it if the "
                                     "model does not fit in memory.")
        self.length_spin = self._spin(8, 1_000_000, "max_length", "Tokens a row holds; longer "
                                      "examples are cut there. Memory grows with it.")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.0, 1.0)
        self.lr_spin.setSingleStep(1e-5)
        self.lr_spin.setSpecialValueText("the mode's default")
        self.lr_spin.valueChanged.connect(
            lambda v: self.state.update_language_model(lr=float(v)))
        self.checkpointing_check = QCheckBox("Recompute activations (less memory, about a "
                                             "third more time)")
        self.checkpointing_check.toggled.connect(
            lambda on: self.state.update_language_model(gradient_checkpointing=bool(on)))
        self.precision_combo = QComboBox()
        for text, value in (("Automatic (bf16 or fp16 on a GPU)", "auto"),
                            ("float32", "fp32"), ("bf16 (GPU)", "bf16"), ("fp16 (GPU)", "fp16")):
            self.precision_combo.addItem(text, value)
        self.precision_combo.currentIndexChanged.connect(
            lambda: self.state.update_language_model(
                precision=self.precision_combo.currentData()))
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setPlaceholderText("the first test example's question")
        self.prompt_edit.editingFinished.connect(
            lambda: self.state.update_language_model(sample_prompt=self.prompt_edit.text()))
        for label, widget in (("Epochs", self.epochs_spin), ("Learning rate", self.lr_spin),
                              ("Batch size", self.batch_spin), ("Context (tokens)",
                                                                self.length_spin),
                              ("Memory", self.checkpointing_check),
                              ("Precision", self.precision_combo),
                              ("Asked after every epoch", self.prompt_edit)):
            form.addRow(label, widget)

    @Slot()
    def choose_folder(self) -> None:
        path = dialogs.open_folder(self, "Choose the folder of a causal language model")
        if path:
            self.load(path)

    def load(self, path: str) -> None:
        """Describe the model in folder *path* in the background (no weights are loaded)."""
        self.state.update_language_model(backbone=str(Path(path).resolve()))
        self.runner.start(FunctionWorker(choose_language_model, path))

    def fill_library(self) -> None:
        """Offer the language models of the model library (those that still load)."""
        try:
            found = [e for e in library.entries() if e.kind == library.LM_KIND and not e.error]
        except TrainDeskError:
            found = []
        self.library_combo.blockSignals(True)
        self.library_combo.clear()
        self.library_combo.addItem("(none yet)" if not found else "Choose …", "")
        for entry in found:
            self.library_combo.addItem(f"{entry.name} ({library.format_count(entry.params)})",
                                       entry.key)
        self.library_combo.blockSignals(False)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.fill_library()
        super().showEvent(event)

    @Slot(int)
    def _on_library_choice(self, index: int) -> None:
        key = self.library_combo.itemData(index)
        if key:
            self.load(key)

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        self.banner.show_message(message, "error")
        self.state.set_lm_model(None, message)

    @Slot()
    def _on_targets(self) -> None:
        targets = [t.strip() for t in self.targets_edit.text().split(",") if t.strip()]
        self.state.update_language_model(lora_targets=targets)

    @Slot()
    def start_estimate(self) -> None:
        config = dataclasses.replace(self.state.project.language_model)
        self.estimate_label.setText("Timing a few steps on this machine …")
        self.estimate_runner.start(FunctionWorker(estimate, config, config.data))

    @Slot()
    def _refresh(self) -> None:
        config, model = self.state.project.language_model, self.state.lm_model
        self.path_label.setText(config.backbone or "No model chosen")
        self._show_settings(config)
        if model is None:
            self.about.setText("")
            self.memory.clear_message()
            return
        self.banner.clear_message()
        template = "has a chat template" if model.has_chat_template else (
            "has no chat template (fine for plain text)")
        self.about.setText(
            f"<b>{model.name}</b>: {model.architecture}, {model.params / 1e6:,.1f} million "
            f"parameters, {model.layers} layers of width {model.hidden}, a context of "
            f"{model.context:,} tokens; {template}.")
        self._show_memory(config, model)

    def _show_memory(self, config, model) -> None:
        try:
            plan = memory_plan(model, config)
        except Exception as exc:  # noqa: BLE001 - a device that cannot be asked
            self.memory.show_message(str(exc), "warning")
            return
        text = (f"Training memory at a batch of {config.batch_size} and {config.max_length} "
                f"tokens: full fine-tuning about {format_bytes(plan.full)}, LoRA about "
                f"{format_bytes(plan.lora)}; {plan.device} has {format_bytes(plan.available)} "
                f"free.")
        if plan.fits:
            self.memory.show_message(text, "ok")
        else:
            self.memory.show_message(plan.refusal(config), "error")

    def _show_settings(self, config) -> None:
        widgets = (self.mode_combo, self.rank_spin, self.alpha_spin, self.dropout_spin,
                   self.epochs_spin, self.batch_spin, self.length_spin, self.lr_spin,
                   self.checkpointing_check, self.precision_combo)
        for w in widgets:
            w.blockSignals(True)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(config.mode)))
        self.mode_help.setText(MODE_HELP[config.mode] + f" Default learning rate: "
                               f"{LM_DEFAULT_LR[config.mode]:g}.")
        self.rank_spin.setValue(config.lora_rank)
        self.alpha_spin.setValue(config.lora_alpha)
        self.dropout_spin.setValue(config.lora_dropout)
        self.epochs_spin.setValue(config.epochs)
        self.batch_spin.setValue(config.batch_size)
        self.length_spin.setValue(config.max_length)
        self.lr_spin.setValue(config.lr)
        self.checkpointing_check.setChecked(config.gradient_checkpointing)
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(
            config.precision)))
        for w in widgets:
            w.blockSignals(False)
        lora = config.mode == "lora"
        for w in (self.rank_spin, self.alpha_spin, self.dropout_spin, self.targets_edit):
            w.setEnabled(lora)
        if not self.targets_edit.hasFocus():
            self.targets_edit.setText(", ".join(config.lora_targets))
            model = self.state.lm_model
            self.targets_edit.setPlaceholderText(", ".join(model.lora_targets) if model else "")
        if not self.prompt_edit.hasFocus():
            self.prompt_edit.setText(config.sample_prompt)
