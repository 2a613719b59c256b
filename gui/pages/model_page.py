"""Step 2 - Model: a preset network, its size, and the training settings."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QSpinBox,
                               QTableView, QVBoxLayout, QWidget)

from ml.training.device import cuda_available, describe_device, mps_available

from ..state import ProjectState
from ..widgets.common import MessageBanner, MetricCard, heading
from ..widgets.table_models import RecordsModel

PRESETS = (("Automatic (suits the data)", "auto"), ("MLP — for tables", "mlp"),
           ("Small CNN — for images", "cnn"), ("Word embeddings — for text", "text"))
ACTIVATIONS = (("ReLU", "relu"), ("GELU", "gelu"), ("SiLU", "silu"), ("Tanh", "tanh"),
               ("Leaky ReLU", "leaky_relu"), ("Sigmoid", "sigmoid"))
OPTIMIZERS = (("Adam", "adam"), ("AdamW (decoupled weight decay)", "adamw"),
              ("SGD with momentum", "sgd"))
LEARNING_RATES = ("0.1", "0.03", "0.01", "0.003", "0.001", "0.0003", "0.0001")


def parse_sizes(text: str) -> list[int] | None:
    """``"256, 128"`` -> ``[256, 128]``; None when the text is not a list of whole numbers."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        return None
    return sizes if all(s > 0 for s in sizes) else None


class ModelPage(QWidget):
    """Pick and size the network; set how it trains; see what it costs."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._updating = False

        # -- network -------------------------------------------------------------------------
        self.preset_combo = QComboBox()
        self.preset_combo.setObjectName("presetCombo")
        for label, value in PRESETS:
            self.preset_combo.addItem(label, value)
        self.hidden_edit = QLineEdit()
        self.hidden_edit.setObjectName("hiddenEdit")
        self.hidden_edit.setPlaceholderText("e.g. 128, 64")
        self.hidden_edit.setToolTip("Sizes of the hidden (fully connected) layers, comma "
                                    "separated. More or wider layers can learn more, but need "
                                    "more data.")
        self.channels_edit = QLineEdit()
        self.channels_edit.setObjectName("channelsEdit")
        self.channels_edit.setToolTip("Filters in each convolution block, comma separated. "
                                      "Each block also halves the image size (while it is at "
                                      "least 4 pixels).")
        self.activation_combo = QComboBox()
        for label, value in ACTIVATIONS:
            self.activation_combo.addItem(label, value)
        self.dropout_spin = QDoubleSpinBox()
        self.dropout_spin.setRange(0.0, 0.9)
        self.dropout_spin.setSingleStep(0.05)
        self.dropout_spin.setToolTip("Share of units switched off at random while training; "
                                     "fights overfitting.")
        self.batchnorm_check = QCheckBox("Batch normalisation after each convolution")
        self.suggest_button = QPushButton("Suggest for my data")
        self.suggest_button.setToolTip("Reset the network and schedule to what suits the size "
                                       "and kind of the data.")
        net_box = QGroupBox("Network")
        nf = QFormLayout(net_box)
        nf.addRow("Preset:", self.preset_combo)
        nf.addRow("Hidden layers:", self.hidden_edit)
        self.channels_row_label = QLabel("Conv channels:")
        nf.addRow(self.channels_row_label, self.channels_edit)
        nf.addRow("Activation:", self.activation_combo)
        nf.addRow("Dropout:", self.dropout_spin)
        nf.addRow(self.batchnorm_check)
        nf.addRow(self.suggest_button)

        # -- training ------------------------------------------------------------------------
        self.optimizer_combo = QComboBox()
        for label, value in OPTIMIZERS:
            self.optimizer_combo.addItem(label, value)
        self.lr_combo = QComboBox()
        self.lr_combo.setObjectName("lrCombo")
        self.lr_combo.setEditable(True)
        self.lr_combo.addItems(LEARNING_RATES)
        # 0 is accepted by the validator so that typing it gets an explanation, not silence.
        validator = QDoubleValidator(0.0, 10.0, 7, self.lr_combo)
        validator.setNotation(QDoubleValidator.Notation.StandardNotation)
        self.lr_combo.setValidator(validator)
        self.lr_combo.setToolTip("How big each learning step is. Too high and training "
                                 "diverges; too low and it crawls. 0.001 suits Adam.")
        self.batch_spin = QSpinBox()
        self.batch_spin.setObjectName("batchSpin")
        self.batch_spin.setRange(1, 65536)
        self.batch_spin.setToolTip("Samples per learning step.")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setObjectName("epochsSpin")
        self.epochs_spin.setRange(1, 10000)
        self.epochs_spin.setToolTip("Passes over the training data.")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("The same seed, data and settings give the same model.")
        self.weight_decay_combo = QComboBox()
        self.weight_decay_combo.setEditable(True)
        self.weight_decay_combo.addItems(["0", "0.00001", "0.0001", "0.001", "0.01"])
        self.weight_decay_combo.setValidator(QDoubleValidator(0.0, 1.0, 7, self))
        self.device_combo = QComboBox()
        self.device_combo.addItem(f"Automatic ({describe_device('auto').label})", "auto")
        self.device_combo.addItem("CPU", "cpu")
        if cuda_available():
            self.device_combo.addItem(f"CUDA ({describe_device('cuda').name})", "cuda")
        if mps_available():
            self.device_combo.addItem("Apple GPU (MPS)", "mps")
        self.amp_check = QCheckBox("Mixed precision on the GPU (faster)")
        self.amp_check.setEnabled(cuda_available())
        self.best_check = QCheckBox("Keep the weights of the best validation epoch")
        train_box = QGroupBox("Training")
        tf = QFormLayout(train_box)
        tf.addRow("Optimizer:", self.optimizer_combo)
        tf.addRow("Learning rate:", self.lr_combo)
        tf.addRow("Weight decay:", self.weight_decay_combo)
        tf.addRow("Batch size:", self.batch_spin)
        tf.addRow("Epochs:", self.epochs_spin)
        tf.addRow("Seed:", self.seed_spin)
        tf.addRow("Device:", self.device_combo)
        tf.addRow(self.amp_check)
        tf.addRow(self.best_check)

        left = QVBoxLayout()
        left.addWidget(net_box)
        left.addWidget(train_box)
        left.addStretch(1)

        # -- summary -------------------------------------------------------------------------
        self.params_card = MetricCard("trainable parameters")
        self.params_card.setObjectName("paramsCard")
        self.size_card = MetricCard("model size")
        self.macs_card = MetricCard("multiply-adds per sample")
        cards = QHBoxLayout()
        for card in (self.params_card, self.size_card, self.macs_card):
            cards.addWidget(card)
        self.error_banner = MessageBanner()
        self.error_banner.setObjectName("modelError")
        self.layers_model = RecordsModel(["#", "Layer", "Output shape", "Parameters"])
        self.layers_view = QTableView()
        self.layers_view.setObjectName("layersTable")
        self.layers_view.setModel(self.layers_model)
        self.layers_view.verticalHeader().hide()
        header = self.layers_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.input_label = QLabel("")
        right = QVBoxLayout()
        right.addWidget(heading("Your network"))
        right.addWidget(self.input_label)
        right.addLayout(cards)
        right.addWidget(self.error_banner)
        right.addWidget(self.layers_view, 1)

        layout = QHBoxLayout(self)
        lw = QWidget()
        lw.setLayout(left)
        lw.setMaximumWidth(460)
        layout.addWidget(lw)
        layout.addLayout(right, 1)

        # -- wiring --------------------------------------------------------------------------
        self.preset_combo.currentIndexChanged.connect(self._on_network_edited)
        self.activation_combo.currentIndexChanged.connect(self._on_network_edited)
        self.dropout_spin.valueChanged.connect(self._on_network_edited)
        self.batchnorm_check.toggled.connect(self._on_network_edited)
        self.hidden_edit.editingFinished.connect(self._on_network_edited)
        self.channels_edit.editingFinished.connect(self._on_network_edited)
        self.hidden_edit.textEdited.connect(self._on_sizes_typed)
        self.channels_edit.textEdited.connect(self._on_sizes_typed)
        self.suggest_button.clicked.connect(self.state.suggest_model)
        for combo in (self.optimizer_combo, self.device_combo):
            combo.currentIndexChanged.connect(self._on_training_edited)
        for combo in (self.lr_combo, self.weight_decay_combo):
            # Apply a typed number when typing is done (or a listed one when it is picked);
            # applying every keystroke would rewrite the text under the user's fingers.
            combo.lineEdit().editingFinished.connect(self._on_training_edited)
            combo.activated.connect(self._on_training_edited)
        for spin in (self.batch_spin, self.epochs_spin, self.seed_spin):
            spin.valueChanged.connect(self._on_training_edited)
        for check in (self.amp_check, self.best_check):
            check.toggled.connect(self._on_training_edited)
        state.model_changed.connect(self._on_model_changed)
        state.project_replaced.connect(self._on_model_changed)
        self._on_model_changed()

    # -- edits ----------------------------------------------------------------------------------
    @Slot()
    def _on_sizes_typed(self) -> None:
        """Flag a malformed size list while typing (it is applied when editing finishes)."""
        for edit in (self.hidden_edit, self.channels_edit):
            ok = parse_sizes(edit.text()) is not None or not edit.text().strip()
            edit.setStyleSheet("" if ok else "QLineEdit { border: 2px solid #d93025; }")

    @Slot()
    def _on_network_edited(self) -> None:
        if self._updating:
            return
        changes = {"preset": self.preset_combo.currentData(),
                   "activation": self.activation_combo.currentData(),
                   "dropout": round(self.dropout_spin.value(), 3),
                   "batch_norm": self.batchnorm_check.isChecked()}
        hidden = parse_sizes(self.hidden_edit.text())
        channels = parse_sizes(self.channels_edit.text())
        if hidden is None:
            self.error_banner.show_message("Hidden layers must be whole numbers above 0, "
                                           "separated by commas (for example 128, 64).", "error")
            return
        if channels is None:
            self.error_banner.show_message("Conv channels must be whole numbers above 0, "
                                           "separated by commas (for example 32, 64).", "error")
            return
        changes["hidden"] = hidden
        changes["conv_channels"] = channels
        self.state.update_model(**changes)

    @Slot()
    def _on_training_edited(self) -> None:
        if self._updating:
            return
        try:
            lr = float(self.lr_combo.currentText())
            weight_decay = float(self.weight_decay_combo.currentText() or 0)
            if lr <= 0:
                raise ValueError
        except ValueError:
            self.error_banner.show_message("The learning rate must be a number above 0 and the "
                                           "weight decay a number of at least 0 (for example "
                                           "0.001).", "error")
            return
        self.state.update_training(
            optimizer=self.optimizer_combo.currentData(), lr=lr, weight_decay=weight_decay,
            batch_size=self.batch_spin.value(), epochs=self.epochs_spin.value(),
            seed=self.seed_spin.value(), device=self.device_combo.currentData() or "auto",
            amp=self.amp_check.isChecked(), restore_best=self.best_check.isChecked())

    # -- showing --------------------------------------------------------------------------------
    @Slot()
    def _on_model_changed(self) -> None:
        state = self.state
        model, training = state.project.model, state.project.training
        self._updating = True
        try:
            self.preset_combo.setCurrentIndex(max(0, [v for _, v in PRESETS].index(model.preset)))
            self.hidden_edit.setText(", ".join(map(str, model.hidden)))
            self.channels_edit.setText(", ".join(map(str, model.conv_channels)))
            self.activation_combo.setCurrentIndex(
                [v for _, v in ACTIVATIONS].index(model.activation))
            self.dropout_spin.setValue(model.dropout)
            self.batchnorm_check.setChecked(model.batch_norm)
            self.optimizer_combo.setCurrentIndex(
                [v for _, v in OPTIMIZERS].index(training.optimizer))
            self.lr_combo.setCurrentText(f"{training.lr:g}")
            self.weight_decay_combo.setCurrentText(f"{training.weight_decay:g}")
            self.batch_spin.setValue(training.batch_size)
            self.epochs_spin.setValue(training.epochs)
            self.seed_spin.setValue(training.seed)
            index = self.device_combo.findData(training.device)
            self.device_combo.setCurrentIndex(max(index, 0))
            self.amp_check.setChecked(training.amp and cuda_available())
            self.best_check.setChecked(training.restore_best)
        finally:
            self._updating = False
        self._on_sizes_typed()
        is_cnn = state.spec is not None and state.spec.name == "cnn" or model.preset == "cnn"
        self.channels_edit.setEnabled(is_cnn)
        self.batchnorm_check.setEnabled(is_cnn)
        self.channels_row_label.setEnabled(is_cnn)
        summary = state.model_summary
        self.error_banner.show_message(state.model_error, "error")
        if summary is None or state.spec is None:
            self.layers_model.set_rows([])
            for card in (self.params_card, self.size_card, self.macs_card):
                card.set_value("-")
            self.input_label.setText(state.data_error or "Choose the data first.")
            return
        shape = " × ".join(map(str, summary.input_shape))
        kind = ("token ids" if state.spec.input_dtype == "int64" else
                "image" if len(summary.input_shape) == 3 else "features")
        self.input_label.setText(f"Input: {shape} ({kind}) → {state.spec.task}; preset "
                                 f"<b>{state.spec.name.upper()}</b>")
        self.layers_model.set_rows([
            [layer.index + 1, layer.title, " × ".join(map(str, layer.output_shape)),
             layer.params] for layer in summary.layers])
        self.params_card.set_value(f"{summary.total_params:,}")
        self.size_card.set_value(_format_bytes(summary.total_params * 4), "model size (float32)")
        self.macs_card.set_value(_format_count(summary.total_macs))


def _format_scaled(n: float, units: tuple[str, ...], sep: str = "") -> str:
    """``1234567`` -> ``"1.2M"``: thousands steps, one decimal after the first unit."""
    for unit in units:
        if n < 1000 or unit == units[-1]:
            return f"{n:.0f}{sep}{unit}" if unit == units[0] else f"{n:.1f}{sep}{unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _format_bytes(n: float) -> str:
    return _format_scaled(n, ("B", "KB", "MB", "GB"), " ")


def _format_count(n: float) -> str:
    return _format_scaled(n, ("", "K", "M", "G"))
