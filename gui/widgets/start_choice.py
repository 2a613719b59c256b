"""The Model page's "Start from" box: a pretrained backbone (EfficientNet-Lite0 for images,
MiniLM for text, a model from the library) or the preset network from scratch, and for a
backbone how it trains (linear probe, fine-tune, LoRA) with its one or two settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QSpinBox, QWidget

from ml.errors import TrainDeskError

from ..theme import mark_problem, mute

#: The built-in backbones, by the kind of data they read.
BUILTIN = (("image", "efficientnet_lite0", "Pretrained: EfficientNet-Lite0"),
           ("text", "minilm", "Pretrained: MiniLM"))
LIBRARY = "__library__"
SCRATCH_TITLE = "Scratch (preset network)"
MODES = (("probe", "Linear probe"), ("finetune", "Fine-tune"), ("lora", "LoRA"))
MODE_NOTES = {
    "probe": "The backbone stays as it is; only the new head learns, on features computed "
             "once. Fastest, and good with very little data.",
    "finetune": "The new head learns first (on features computed once), then the backbone "
                "adjusts too, from its top layers down, at smaller rates. Often the most "
                "accurate once there is more than a handful of examples.",
    "lora": "Small adapters learn inside the attention layers; the backbone's own weights "
            "stay. Light on memory.",
}
START_NOTES = {
    "": "A network of the preset, from random weights: it learns everything from your data.",
    "efficientnet_lite0": "A network pretrained on 1.3 million ImageNet photos (224 × 224, "
                          "colour); a new head is added for your classes.",
    "minilm": "A sentence model pretrained on a billion English sentence pairs (up to 128 "
              "word pieces per text); a new head is added for your classes.",
}
LAYERS_NOTE = "The backbone decides the layers; a new head is added for your classes."


class StartChoice(QGroupBox):
    """What the model starts from and, for a backbone, how it trains.

    Parameters
    ----------
    state : ProjectState
    edit_model : callable
        ``edit_model(changes, text)`` pushes an undoable change of ``ModelConfig`` fields.
    open_library : callable
        Opens the model library (its "Use this model" sets the backbone).
    """

    def __init__(self, state, edit_model: Callable[[dict, str], None],
                 open_library: Callable[[], object], parent: QWidget | None = None):
        super().__init__("Start from", parent)
        self.setObjectName("startChoice")
        self.state = state
        self._edit_model = edit_model
        self._open_library = open_library
        self._updating = False
        self.start_combo = QComboBox()
        self.start_combo.setObjectName("startCombo")
        self.start_combo.setToolTip("A pretrained network learns from far fewer examples; "
                                    "scratch builds the preset network from random weights.")
        self.start_note = self._note("startNote")
        self.proposal_label = self._note("proposalLabel")
        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("trainModeCombo")
        for value, title in MODES:
            self.mode_combo.addItem(title, value)
        self.mode_note = self._note("trainModeNote")
        self.head_spin = QSpinBox()
        self.head_spin.setObjectName("headEpochsSpin")
        self.head_spin.setRange(0, 1000)
        self.head_note = self._note("headEpochsNote")
        self.head_note.setText("Epochs over the data that train only the new head (after its "
                               "quick start on the cached features), before the backbone "
                               "starts to adjust.")
        self.rank_spin = QSpinBox()
        self.rank_spin.setObjectName("loraRankSpin")
        self.rank_spin.setRange(1, 256)
        self.rank_note = self._note("loraRankNote")
        self.rank_note.setText("Size of each adapter: higher learns more and needs more "
                               "memory; 8 suits most data.")
        form = self.form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(self.start_combo)
        form.addRow(self.start_note)
        form.addRow(self.proposal_label)
        form.addRow("How to train:", self.mode_combo)
        form.addRow(self.mode_note)
        form.addRow("Head epochs:", self.head_spin)
        form.addRow(self.head_note)
        form.addRow("LoRA rank:", self.rank_spin)
        form.addRow(self.rank_note)
        self.start_combo.activated.connect(self._on_start_chosen)
        self.mode_combo.activated.connect(self._on_mode_chosen)
        self.head_spin.valueChanged.connect(self._on_head_epochs)
        self.rank_spin.valueChanged.connect(self._on_rank)

    @staticmethod
    def _note(name: str) -> QLabel:
        label = QLabel("")
        label.setObjectName(name)
        label.setWordWrap(True)
        return mute(label)

    # -- showing --------------------------------------------------------------------------------
    def data_kind(self) -> str:
        summary = self.state.summary
        return getattr(summary, "kind", "") or ""

    def refresh(self) -> None:
        """Show the project's start; only the entries that fit the data's kind are listed."""
        kind, model = self.data_kind(), self.state.project.model
        self.setVisible(kind in ("image", "text"))
        self._updating = True
        try:
            self._fill_starts(kind, model.backbone)
            self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(model.train_mode)))
            self.head_spin.setValue(model.head_epochs)
            self.rank_spin.setValue(model.lora_rank)
        finally:
            self._updating = False
        self._show_mode(model)

    def _fill_starts(self, kind: str, backbone: str) -> None:
        combo = self.start_combo
        combo.clear()
        for entry_kind, key, title in BUILTIN:
            if entry_kind == kind:
                combo.addItem(title, key)
        if backbone and combo.findData(backbone) < 0:
            combo.addItem(f"Pretrained: {Path(backbone).name or backbone}", backbone)
        combo.addItem("A model in my library…", LIBRARY)
        combo.addItem(SCRATCH_TITLE, "")
        combo.setCurrentIndex(max(0, combo.findData(backbone)))
        note = START_NOTES.get(backbone, "A model from your library; a new head is added for "
                                         "your classes.")
        self.start_note.setText(note)
        self.proposal_label.setText(self.state.proposal)
        self.proposal_label.setVisible(bool(self.state.proposal))

    def _show_mode(self, model) -> None:
        """The way of training and its settings, for a backbone only; LoRA only where the
        backbone has attention layers."""
        info = self._backbone_info(model.backbone)
        on = bool(model.backbone)
        mode = model.train_mode
        lora_ok = info is not None and info.transformer
        item = self.mode_combo.model()
        if isinstance(item, QStandardItemModel):
            lora = item.item(self.mode_combo.findData("lora"))
            lora.setEnabled(lora_ok)
            lora.setToolTip("" if lora_ok else "LoRA adapts attention layers, which this "
                                               "backbone does not have.")
        self.mode_note.setText(MODE_NOTES.get(mode, ""))
        mark_problem(self.mode_note, on and mode == "lora" and not lora_ok)
        if on and mode == "lora" and not lora_ok:
            self.mode_note.setText("LoRA needs attention layers, which this backbone does not "
                                   "have: choose Fine-tune or Linear probe.")
        for field, applies in ((self.mode_combo, on), (self.mode_note, on),
                               (self.head_spin, on and mode == "finetune"),
                               (self.head_note, on and mode == "finetune"),
                               (self.rank_spin, on and mode == "lora"),
                               (self.rank_note, on and mode == "lora")):
            self.form.setRowVisible(field, applies)

    @staticmethod
    def _backbone_info(key: str):
        if not key:
            return None
        from ml.models.backbones import resolve

        try:
            return resolve(key)
        except TrainDeskError:
            return None  # the page's error banner says why

    # -- edits ----------------------------------------------------------------------------------
    @Slot()
    def _on_start_chosen(self) -> None:
        if self._updating:
            return
        key = self.start_combo.currentData()
        if key == LIBRARY:
            self.refresh()  # the start as it is, until the library's choice changes it
            self._open_library()
            return
        model = self.state.project.model
        if key == model.backbone:
            return
        info = self._backbone_info(key)
        # LoRA stays only where the new backbone has attention layers to adapt.
        mode = "finetune" if model.train_mode == "lora" and not (info and info.transformer) \
            else None
        self.state.choose_start(key, mode)

    @Slot()
    def _on_mode_chosen(self) -> None:
        if self._updating:
            return
        mode = self.mode_combo.currentData()
        if mode != self.state.project.model.train_mode:
            self.state.choose_start(self.state.project.model.backbone, mode)

    @Slot(int)
    def _on_head_epochs(self, value: int) -> None:
        if not self._updating:
            self._edit_model({"head_epochs": int(value)}, "Change the head epochs")

    @Slot(int)
    def _on_rank(self, value: int) -> None:
        if not self._updating:
            self._edit_model({"lora_rank": int(value)}, "Change the LoRA rank")
