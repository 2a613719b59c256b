"""Step 2 - Model: a preset for the data in one click, a layer editor that checks shapes as
you type, the training settings, transfer learning - and what it all costs, before training."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QDoubleValidator, QFont, QGuiApplication, QStandardItemModel, QUndoStack
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ml.labels import model_label
from ml.models.presets import PRESET_INFO, preset_fits, trainable_params, training_memory
from ml.system.device import cuda_available, describe_device, mps_available

from .. import dialogs
from ..state import ProjectState
from ..theme import mark_problem, mute
from ..widgets.common import (
    CardRow,
    MessageBanner,
    MetricCard,
    format_bytes,
    format_count,
    format_duration,
    heading,
)
from ..widgets.layer_editor import LayerEditor, ModelEdit
from ..widgets.network_diagram import NetworkDiagram
from ..widgets.start_choice import LAYERS_NOTE, StartChoice

KIND_TITLES = {"tabular": "Tables", "image": "Images", "text": "Text"}
ACTIVATIONS = (("ReLU", "relu"), ("GELU", "gelu"), ("SiLU", "silu"), ("Tanh", "tanh"),
               ("Leaky ReLU", "leaky_relu"), ("Sigmoid", "sigmoid"))
OPTIMIZERS = (("Adam", "adam"), ("AdamW (decoupled weight decay)", "adamw"),
              ("SGD with momentum", "sgd"), ("RMSprop", "rmsprop"))
SCHEDULES = (("Constant", "constant"), ("Step (drop every N epochs)", "step"),
             ("Cosine (smoothly to zero)", "cosine"), ("One-cycle (up, then down)", "onecycle"),
             ("Reduce when validation stalls", "plateau"))
LOSSES = {"classification": (("Automatic (cross-entropy)", "auto"),
                             ("Cross-entropy", "cross_entropy"),
                             ("Binary cross-entropy (per class)", "bce")),
          "regression": (("Automatic (mean squared error)", "auto"),
                         ("Mean squared error", "mse"), ("Huber (robust to outliers)", "huber"))}
LEARNING_RATES = ("0.1", "0.03", "0.01", "0.003", "0.001", "0.0003", "0.0001")


def parse_sizes(text: str) -> list[int] | None:
    """``"256, 128"`` -> ``[256, 128]``; None when the text is not a list of whole numbers."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        return None
    return sizes if all(s > 0 for s in sizes) else None


def _ensemble_spin() -> QSpinBox:
    """The tabm preset's member count."""
    spin = QSpinBox()
    spin.setObjectName("ensembleSpin")
    spin.setRange(1, 256)
    spin.setToolTip("How many small networks share the hidden layers, each with its own input "
                    "scaling and output; their answers are averaged. More members: steadier "
                    "answers, slower training (the time grows about in proportion).")
    return spin


def _form(box: QGroupBox) -> QFormLayout:
    form = QFormLayout(box)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


class CodeDialog(QDialog):
    """The PyTorch source of the current model, to read or copy."""

    def __init__(self, source: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("The model as PyTorch code")
        self.resize(820, 640)
        self.text = QPlainTextEdit(source)
        self.text.setObjectName("codeText")
        self.text.setReadOnly(True)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(font)
        note = QLabel("A plain <code>nn.Module</code>: the weights of a run load into it with "
                      "<code>load_state_dict</code> (from the exported safetensors file).")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.text.toPlainText()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)


class ModelPage(QWidget):
    """Pick and shape the network; set how it trains; see what it costs."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._updating = False
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(200)
        self._build_network_tab()
        self._build_training_tab()
        self._build_transfer_tab()

        self._build_settings_tabs()
        detail = self._build_detail_toggle()

        right = self._build_network_view()

        left = QVBoxLayout()
        left.addLayout(detail)
        left.addWidget(self.settings_tabs, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left)
        layout.addLayout(right, 1)

        state.model_changed.connect(self._on_model_changed)
        state.project_replaced.connect(self._on_project_replaced)
        state.dataset_changed.connect(self.undo_stack.clear)
        self._on_model_changed()

    def _build_settings_tabs(self) -> None:
        """Network, Training and Transfer, each scrolling, kept narrow."""
        self.settings_tabs = QTabWidget()
        self.settings_tabs.setObjectName("modelSettingsTabs")
        # The third tab is transfer from earlier weights; "Start from" is the Network tab's
        # choice of a pretrained backbone or scratch.
        for widget, title in ((self.network_tab, "Network"), (self.training_tab, "Training"),
                              (self.transfer_tab, "Transfer")):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            scroll.setWidget(widget)
            for combo in widget.findChildren(QComboBox):
                # Long entries ("Automatic (CPU: ...)") must not widen the panel.
                combo.setSizeAdjustPolicy(
                    QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                combo.setMinimumContentsLength(10)
                # The policy shapes only the size hint; the minimum still fits the longest
                # entry, which kept the form wider than its scroll area.
                combo.setMinimumWidth(combo.sizeHint().width())
            self.settings_tabs.addTab(scroll, title)
        self.settings_tabs.setMinimumWidth(400)
        self.settings_tabs.setMaximumWidth(480)

    def _build_detail_toggle(self) -> QHBoxLayout:
        """Basic / All settings: a newcomer sees the few settings that matter first; the
        choice is remembered (settings.ini) for the next session."""
        from ..settings import all_settings_shown, open_settings

        self._app_settings = open_settings()
        self.all_settings = all_settings_shown(self._app_settings)
        # Radio buttons: which one is on reads at a glance in both themes.
        self.basic_button = QRadioButton("Basic")
        self.basic_button.setObjectName("basicSettingsButton")
        self.basic_button.setToolTip("Only what most runs need: the model, learning rate, "
                                     "batch size and epochs")
        self.all_button = QRadioButton("All settings")
        self.all_button.setObjectName("allSettingsButton")
        self.all_button.setToolTip("Every setting: optimizer, schedule, loss, device, "
                                   "transfer learning and more")
        group = QButtonGroup(self)
        for button in (self.basic_button, self.all_button):
            group.addButton(button)
        (self.all_button if self.all_settings else self.basic_button).setChecked(True)
        self.basic_button.clicked.connect(lambda: self.show_all_settings(False))
        self.all_button.clicked.connect(lambda: self.show_all_settings(True))
        self.detail_note = QLabel("The other settings keep their values.")
        mute(self.detail_note)
        row = QHBoxLayout()
        row.addWidget(self.basic_button)
        row.addWidget(self.all_button)
        row.addWidget(self.detail_note)
        row.addStretch(1)  # the radios stay together when the note is hidden
        return row

    def show_all_settings(self, on: bool) -> None:
        """Show every setting (*on*) or only the basic ones, and remember the choice."""
        from ..settings import set_all_settings_shown

        self.all_settings = bool(on)
        (self.all_button if on else self.basic_button).setChecked(True)
        set_all_settings_shown(self._app_settings, self.all_settings)
        self._show_rows()

    def _build_network_view(self) -> QVBoxLayout:
        """The network's cost cards, its layers and diagram, and Show code."""
        # -- the network and its cost ----------------------------------------------------------
        self.params_card = MetricCard("trainable parameters")
        self.params_card.setObjectName("paramsCard")
        self.size_card = MetricCard("model size")
        self.macs_card = MetricCard("FLOPs / sample")
        self.memory_card = MetricCard("training memory")
        self.memory_card.setToolTip("An estimate for the chosen batch size: weights, gradients, "
                                    "optimizer state and the activations kept for learning.")
        self.cards_row = CardRow((self.params_card, self.size_card, self.macs_card,
                                  self.memory_card))
        self.cards_row.setObjectName("costCards")
        self.error_banner = MessageBanner()
        self.error_banner.setObjectName("modelError")
        self.input_label = QLabel("")
        self.input_label.setWordWrap(True)
        self.editor = LayerEditor(self.undo_stack, self._apply_model_edit)
        self.editor.setObjectName("layerEditor")
        self.diagram = NetworkDiagram()
        self.save_diagram_button = QPushButton("Save diagram…")
        self.save_diagram_button.setToolTip("Save the diagram as a PNG picture or an SVG "
                                            "drawing (for slides and reports).")
        self.save_diagram_button.clicked.connect(self._save_diagram)
        diagram_tab = QWidget()
        dl = QVBoxLayout(diagram_tab)
        dl.setContentsMargins(0, 4, 0, 0)
        dl.addWidget(self.diagram, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.save_diagram_button)
        dl.addLayout(row)
        self.view_tabs = QTabWidget()
        self.view_tabs.addTab(self.editor, "Layers")
        self.view_tabs.addTab(diagram_tab, "Diagram")
        self.code_button = QPushButton("Show code")
        self.code_button.setObjectName("showCodeButton")
        self.code_button.setToolTip("The PyTorch source of this network, to copy.")
        self.code_button.clicked.connect(self.show_code)
        top = QHBoxLayout()
        top.addWidget(heading("Your network"))
        top.addStretch(1)
        top.addWidget(self.code_button)
        right = QVBoxLayout()
        right.addLayout(top)
        right.addWidget(self.input_label)
        right.addWidget(self.cards_row)
        right.addWidget(self.error_banner)
        self.editor_note = QLabel(LAYERS_NOTE)
        self.editor_note.setObjectName("editorBackboneNote")
        self.editor_note.setWordWrap(True)
        mute(self.editor_note)
        right.addWidget(self.editor_note)
        right.addWidget(self.view_tabs, 1)
        return right

    # -- building -------------------------------------------------------------------------------
    def _build_network_tab(self) -> None:
        self.preset_combo = QComboBox()
        self.preset_combo.setObjectName("presetCombo")
        self.preset_combo.addItem("Automatic (suits the data)", "auto")
        for kind in ("tabular", "image", "text"):
            self.preset_combo.insertSeparator(self.preset_combo.count())
            for name, info in PRESET_INFO.items():
                if info.kind == kind:
                    self.preset_combo.addItem(f"{KIND_TITLES[kind]}: {info.title}", name)
                    self.preset_combo.setItemData(self.preset_combo.count() - 1,
                                                  info.description, Qt.ItemDataRole.ToolTipRole)
        self.preset_label = QLabel("")
        self.preset_label.setWordWrap(True)
        mute(self.preset_label)
        self.hidden_edit = QLineEdit()
        self.hidden_edit.setObjectName("hiddenEdit")
        self.hidden_edit.setPlaceholderText("e.g. 128, 64")
        self.hidden_edit.setToolTip("Sizes of the hidden (fully connected) layers, comma "
                                    "separated. More or wider layers can learn more, but need "
                                    "more data.")
        self.channels_edit = QLineEdit()
        self.channels_edit.setObjectName("channelsEdit")
        self.channels_edit.setToolTip("Filters in each convolution block, comma separated.")
        self.activation_combo = QComboBox()
        for label, value in ACTIVATIONS:
            self.activation_combo.addItem(label, value)
        self.dropout_spin = QDoubleSpinBox()
        self.dropout_spin.setRange(0.0, 0.9)
        self.dropout_spin.setSingleStep(0.05)
        self.dropout_spin.setToolTip("Share of units switched off at random while training; "
                                     "fights overfitting.")
        self.batchnorm_check = QCheckBox("Batch normalisation after each convolution")
        self.ensemble_spin = _ensemble_spin()
        self.rnn_combo = QComboBox()
        self.rnn_combo.addItem("LSTM", "lstm")
        self.rnn_combo.addItem("GRU (lighter)", "gru")
        self.custom_label = QLabel("")
        self.custom_label.setWordWrap(True)
        self.network_tab = QWidget()
        box = QGroupBox("Preset")
        form = _form(box)
        form.addRow(self.preset_combo)
        form.addRow(self.preset_label)
        form.addRow(self._preset_buttons())
        knobs = QGroupBox("Shape of the preset")
        self.knobs_box, self._knobs_form = knobs, _form(knobs)
        kf = self._knobs_form
        kf.addRow("Hidden layers:", self.hidden_edit)
        self.channels_row_label = QLabel("Conv channels:")
        kf.addRow(self.channels_row_label, self.channels_edit)
        kf.addRow("Activation:", self.activation_combo)
        kf.addRow("Dropout:", self.dropout_spin)
        kf.addRow(self.batchnorm_check)
        self.ensemble_row_label = QLabel("Ensemble members:")
        kf.addRow(self.ensemble_row_label, self.ensemble_spin)
        self.rnn_row_label = QLabel("Recurrent cell:")
        kf.addRow(self.rnn_row_label, self.rnn_combo)
        kf.addRow(self.custom_label)
        layout = QVBoxLayout(self.network_tab)
        self._add_start_choice(layout)
        layout.addWidget(box)
        layout.addWidget(knobs)
        layout.addStretch(1)

        self.preset_combo.currentIndexChanged.connect(self._on_preset_chosen)
        self.activation_combo.currentIndexChanged.connect(self._on_network_edited)
        self.dropout_spin.valueChanged.connect(self._on_network_edited)
        self.batchnorm_check.toggled.connect(self._on_network_edited)
        self.ensemble_spin.valueChanged.connect(self._on_network_edited)
        self.rnn_combo.currentIndexChanged.connect(self._on_network_edited)
        self.hidden_edit.editingFinished.connect(self._on_network_edited)
        self.channels_edit.editingFinished.connect(self._on_network_edited)
        self.hidden_edit.textEdited.connect(self._on_sizes_typed)
        self.channels_edit.textEdited.connect(self._on_sizes_typed)
        self.suggest_button.clicked.connect(self._suggest)

    def _add_start_choice(self, layout: QVBoxLayout) -> None:
        """The "Start from" box (a pretrained backbone or scratch) above the preset."""
        self.start_choice = StartChoice(self.state, self._edit_model,
                                        lambda: self.show_model_library())
        # While a backbone is chosen the preset and its shape do not apply: said, not hidden.
        self.backbone_note = QLabel(LAYERS_NOTE)
        self.backbone_note.setObjectName("backboneNote")
        self.backbone_note.setWordWrap(True)
        layout.addWidget(self.start_choice)
        layout.addWidget(self.backbone_note)

    def _build_training_tab(self) -> None:
        self._make_optimizer_widgets()
        self._make_loop_widgets()
        self._lay_out_training_tab()
        self._connect_training_tab()

    def _make_optimizer_widgets(self) -> None:
        """The optimizer's and the schedule's settings, and the schedule's plot."""
        from ..widgets.schedule_plot import SchedulePlot

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
        self.find_lr_button = QPushButton("Find…")
        self.find_lr_button.setObjectName("findLrButton")
        self.find_lr_button.setToolTip("Run the learning-rate test: train a hundred batches "
                                       "at a growing rate, see where the loss falls fastest "
                                       "and take the rate it proposes (the model is not "
                                       "changed).")
        # The field and its button share the form's row (and are hidden together).
        self.lr_field = QWidget()
        row = QHBoxLayout(self.lr_field)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.lr_combo, 1)
        row.addWidget(self.find_lr_button)
        self.momentum_spin = QDoubleSpinBox()
        self.momentum_spin.setRange(0.0, 0.999)
        self.momentum_spin.setDecimals(3)
        self.momentum_spin.setSingleStep(0.05)
        self.momentum_spin.setToolTip("How much of the previous step carries into the next "
                                      "(SGD and RMSprop).")
        self.nesterov_check = QCheckBox("Nesterov momentum")
        self.weight_decay_combo = QComboBox()
        self.weight_decay_combo.setEditable(True)
        self.weight_decay_combo.addItems(["0", "0.00001", "0.0001", "0.001", "0.01"])
        self.weight_decay_combo.setValidator(QDoubleValidator(0.0, 1.0, 7, self))
        self.weight_decay_combo.setToolTip("Pulls weights towards zero; fights overfitting.")
        self.schedule_combo = QComboBox()
        self.schedule_combo.setObjectName("scheduleCombo")
        for label, value in SCHEDULES:
            self.schedule_combo.addItem(label, value)
        self.warmup_spin = QSpinBox()
        self.warmup_spin.setRange(0, 1000)
        self.warmup_spin.setSuffix(" epochs")
        self.warmup_spin.setSpecialValueText("None")
        self.warmup_spin.setToolTip("Raise the learning rate from 0 over these first epochs: "
                                    "steadier starts for big models.")
        self.step_spin = QSpinBox()
        self.step_spin.setRange(1, 10000)
        self.step_spin.setSuffix(" epochs")
        self.gamma_spin = QDoubleSpinBox()
        self.gamma_spin.setRange(0.01, 1.0)
        self.gamma_spin.setSingleStep(0.05)
        self.gamma_spin.setToolTip("The learning rate is multiplied by this at each step.")
        self.patience_spin = QSpinBox()
        self.patience_spin.setRange(0, 1000)
        self.patience_spin.setSuffix(" epochs")
        self.factor_spin = QDoubleSpinBox()
        self.factor_spin.setRange(0.01, 0.99)
        self.factor_spin.setSingleStep(0.05)
        self.schedule_plot = SchedulePlot()

    def _make_loop_widgets(self) -> None:
        """Loss, batches, epochs, device, best epoch, early stopping and Estimate."""
        self.loss_combo = QComboBox()
        self.loss_combo.setObjectName("lossCombo")
        self.smoothing_spin = QDoubleSpinBox()
        self.smoothing_spin.setRange(0.0, 0.5)
        self.smoothing_spin.setSingleStep(0.05)
        self.smoothing_spin.setToolTip("Aim a little below 100% certainty for the right class; "
                                       "often generalises better.")
        self.clip_spin = QDoubleSpinBox()
        self.clip_spin.setRange(0.0, 1000.0)
        self.clip_spin.setSingleStep(0.5)
        self.clip_spin.setSpecialValueText("Off")
        self.clip_spin.setToolTip("Limit the size of each update (gradient norm); prevents the "
                                  "sudden jumps that turn the loss into NaN.")
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
        self.monitor_combo = QComboBox()
        self.monitor_combo.setObjectName("monitorCombo")
        self.monitor_combo.addItem("lowest validation loss", "val_loss")
        self.monitor_combo.addItem("best validation accuracy (MAE for numbers)", "val_metric")
        self.monitor_combo.setToolTip("What picks the best epoch and what early stopping "
                                      "watches.")
        self.oom_check = QCheckBox("Out of GPU memory: retry with a smaller batch")
        self.oom_check.setObjectName("oomRetryCheck")
        self.oom_check.setToolTip("Halves the batch size and goes on from the last completed "
                                  "epoch, without asking. Off: training stops and offers it.")
        self.yardstick_check = QCheckBox("Compare with a classic model on the same rows")
        self.yardstick_check.setObjectName("yardstickCheck")
        self.yardstick_check.setToolTip(
            "Fits gradient boosting (tables) or TF-IDF + logistic regression (texts) in the "
            "background, on one core, while the network trains, and shows both scores on the "
            "same test rows in Evaluate and the report. Stopping the run stops it too.")
        self.refit_combo = _refit_combo()
        self.early_check = QCheckBox("Stop early when validation stops improving")
        self.early_check.setObjectName("earlyStoppingCheck")
        self.early_check.setToolTip("Ends training once the validation loss has not improved "
                                    "for the patience below - it saves time and stops the "
                                    "model from memorising the training data (overfitting).")
        self.patience_es_spin = QSpinBox()
        self.patience_es_spin.setRange(1, 1000)
        self.patience_es_spin.setSuffix(" epochs")
        self.patience_es_spin.setToolTip("Epochs without improvement before stopping.")
        self.min_delta_spin = QDoubleSpinBox()
        self.min_delta_spin.setDecimals(4)
        self.min_delta_spin.setRange(0.0, 10.0)
        self.min_delta_spin.setSingleStep(0.001)
        self.min_delta_spin.setToolTip("A smaller improvement of the validation loss does not "
                                       "count.")
        self.estimate_button = QPushButton("Estimate time and memory")
        self.estimate_button.setObjectName("estimateButton")
        self.estimate_button.setToolTip("Prepare the data and train a few short epochs on a "
                                        "sample of it, as the run will (loading, augmentation, "
                                        "validation, checkpoints), on the chosen device.")
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.estimate_details = QLabel("")  # where the time goes, one part a line
        self.estimate_details.setObjectName("estimateDetails")
        self.estimate_details.setWordWrap(True)
        self.estimate_details.hide()

    def _lay_out_training_tab(self) -> None:
        """The Optimizer, schedule and Loop boxes."""
        self.training_tab = QWidget()
        opt = QGroupBox("Optimizer")
        self._opt_form = of = _form(opt)
        of.addRow("Optimizer:", self.optimizer_combo)
        of.addRow("Learning rate:", self.lr_field)
        self.momentum_label = QLabel("Momentum:")
        of.addRow(self.momentum_label, self.momentum_spin)
        of.addRow(self.nesterov_check)
        of.addRow("Weight decay:", self.weight_decay_combo)
        sched = QGroupBox("Learning-rate schedule")
        self.schedule_box, self._schedule_form = sched, _form(sched)
        sf = self._schedule_form
        sf.addRow("Schedule:", self.schedule_combo)
        sf.addRow("Warm-up:", self.warmup_spin)
        self.step_label, self.gamma_label = QLabel("Step every:"), QLabel("Multiply by:")
        sf.addRow(self.step_label, self.step_spin)
        sf.addRow(self.gamma_label, self.gamma_spin)
        self.patience_label, self.factor_label = QLabel("Patience:"), QLabel("Multiply by:")
        sf.addRow(self.patience_label, self.patience_spin)
        sf.addRow(self.factor_label, self.factor_spin)
        sf.addRow(self.schedule_plot)
        loop = QGroupBox("Loop")
        self._loop_form = lf = _form(loop)
        lf.addRow("Loss:", self.loss_combo)
        self.smoothing_label = QLabel("Label smoothing:")
        lf.addRow(self.smoothing_label, self.smoothing_spin)
        lf.addRow("Gradient clipping:", self.clip_spin)
        lf.addRow("Batch size:", self.batch_spin)
        lf.addRow("Epochs:", self.epochs_spin)
        lf.addRow("Seed:", self.seed_spin)
        lf.addRow("Device:", self.device_combo)
        lf.addRow(self.amp_check)
        lf.addRow(self.best_check)
        lf.addRow("Best epoch by:", self.monitor_combo)
        lf.addRow(self.oom_check)
        lf.addRow(self.yardstick_check)
        lf.addRow("Final fit on all rows:", self.refit_combo)
        lf.addRow(self.early_check)
        self.patience_es_label = QLabel("Patience:")
        lf.addRow(self.patience_es_label, self.patience_es_spin)
        self.min_delta_label = QLabel("Least improvement:")
        lf.addRow(self.min_delta_label, self.min_delta_spin)
        lf.addRow(self.estimate_button)
        lf.addRow(self.estimate_label)
        lf.addRow(self.estimate_details)
        layout = QVBoxLayout(self.training_tab)
        for box in (opt, sched, loop):
            layout.addWidget(box)
        layout.addStretch(1)

    def _connect_training_tab(self) -> None:
        """Every edit applies to the project; Estimate runs in the background."""
        for combo in (self.optimizer_combo, self.device_combo, self.schedule_combo,
                      self.loss_combo, self.monitor_combo, self.refit_combo):
            combo.currentIndexChanged.connect(self._on_training_edited)
        for combo in (self.lr_combo, self.weight_decay_combo):
            # Apply a typed number when typing is done (or a listed one when it is picked);
            # applying every keystroke would rewrite the text under the user's fingers.
            combo.lineEdit().editingFinished.connect(self._on_training_edited)
            combo.activated.connect(self._on_training_edited)
        for spin in (self.batch_spin, self.epochs_spin, self.seed_spin, self.warmup_spin,
                     self.step_spin, self.patience_spin, self.momentum_spin, self.gamma_spin,
                     self.factor_spin, self.smoothing_spin, self.clip_spin,
                     self.patience_es_spin, self.min_delta_spin):
            spin.valueChanged.connect(self._on_training_edited)
        for check in (self.amp_check, self.best_check, self.nesterov_check, self.early_check,
                      self.oom_check, self.yardstick_check):
            check.toggled.connect(self._on_training_edited)
        self.estimate_button.clicked.connect(self.estimate)
        self.find_lr_button.clicked.connect(self.find_lr)
        from workers.base import TaskRunner

        self.estimate_runner = TaskRunner(self)
        self.estimate_runner.finished.connect(self._on_estimated)
        self.estimate_runner.errored.connect(self._on_estimate_failed)

    def _build_transfer_tab(self) -> None:
        from workers.base import TaskRunner

        self.init_combo = QComboBox()
        self.init_combo.setObjectName("initCombo")
        self.init_combo.setToolTip("Start from the weights of an earlier run (transfer "
                                   "learning): layers that fit are loaded, the rest - usually "
                                   "the last layer, for new classes - start fresh.")
        self.init_file_button = QPushButton("Weights file…")
        self.init_file_button.setToolTip("A .safetensors file, or a PyTorch state dict "
                                         "(.pt/.pth; only tensors are read).")
        self.freeze_spin = QSpinBox()
        self.freeze_spin.setObjectName("freezeSpin")
        self.freeze_spin.setRange(0, 10000)
        self.freeze_spin.setSpecialValueText("Never")
        self.freeze_spin.setSuffix(" epochs")
        self.freeze_spin.setToolTip("Keep the loaded layers fixed for the first epochs, so the "
                                    "new last layer learns before the rest is adjusted.")
        self.transfer_report = QLabel("Training starts from fresh (random) weights.")
        self.transfer_report.setObjectName("transferReport")
        self.transfer_report.setWordWrap(True)
        self.transfer_report.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        self.transfer_tab = QWidget()
        box = QGroupBox("Transfer learning")
        self._transfer_form = form = _form(box)
        form.addRow("Start from:", self.init_combo)
        form.addRow("", self.init_file_button)
        form.addRow("Freeze loaded layers:", self.freeze_spin)
        form.addRow(self.transfer_report)
        layout = QVBoxLayout(self.transfer_tab)
        layout.addWidget(box)
        layout.addStretch(1)
        self.init_combo.activated.connect(self._on_init_chosen)
        self.init_file_button.clicked.connect(self._choose_init_file)
        self.freeze_spin.valueChanged.connect(
            lambda v: None if self._updating else self._edit_model({"freeze_epochs": int(v)},
                                                                   "Change frozen epochs"))
        self.transfer_runner = TaskRunner(self)
        self.transfer_runner.finished.connect(self._on_transfer_checked)
        self.transfer_runner.errored.connect(self._on_transfer_failed)
        self._transfer_key = None

    # -- model edits (undoable) -----------------------------------------------------------------
    def _apply_model_edit(self, changes: dict) -> None:
        self.state.update_model(**changes)

    def _edit_model(self, changes: dict, text: str) -> None:
        """Push an undoable change of ``ModelConfig`` fields."""
        model = self.state.project.model
        before = {key: getattr(model, key) for key in changes}
        if before == changes:
            return
        self.undo_stack.push(ModelEdit(self._apply_model_edit, before, changes, text))

    @Slot()
    def _on_sizes_typed(self) -> None:
        """Flag a malformed size list while typing (it is applied when editing finishes)."""
        for edit in (self.hidden_edit, self.channels_edit):
            ok = parse_sizes(edit.text()) is not None or not edit.text().strip()
            edit.setStyleSheet("" if ok else "QLineEdit { border: 2px solid #d93025; }")

    @Slot()
    def _on_preset_chosen(self) -> None:
        if self._updating:
            return
        # A preset replaces hand-edited layers (undo brings them back).
        self._edit_model({"preset": self.preset_combo.currentData(), "layers": []},
                         "Choose a preset")

    @Slot()
    def _on_network_edited(self) -> None:
        if self._updating:
            return
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
        self._edit_model({"activation": self.activation_combo.currentData(),
                          "dropout": round(self.dropout_spin.value(), 3),
                          "batch_norm": self.batchnorm_check.isChecked(),
                          "rnn_cell": self.rnn_combo.currentData(),
                          "ensemble": self.ensemble_spin.value(),
                          "hidden": hidden, "conv_channels": channels}, "Change the preset")

    # -- the model library ----------------------------------------------------------------------
    def _preset_buttons(self) -> QWidget:
        """Suggest for my data, and Model library… beside it (one row)."""
        self.suggest_button = QPushButton("Suggest for my data")
        self.suggest_button.setToolTip("Reset the network and schedule to what suits the size "
                                       "and kind of the data.")
        self.library_button = QPushButton("Model library…")
        self.library_button.setObjectName("modelLibraryButton")
        self.library_button.setToolTip("The pretrained models a network can start from, and "
                                       "your own Hugging Face model folders.")
        self.library_button.clicked.connect(self.show_model_library)
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.suggest_button, 1)
        layout.addWidget(self.library_button, 1)
        return row

    @Slot()
    def show_model_library(self):
        """Open the model library; "Use this model" starts the network from the chosen
        backbone (an undoable edit, as choosing a preset is)."""
        from ..widgets.model_library import ModelLibraryDialog

        dialog = self.library_dialog = ModelLibraryDialog(self)
        dialog.backbone_chosen.connect(
            lambda key: self._edit_model({"backbone": key, "layers": []},
                                         "Start from a pretrained model"))
        dialog.open()
        return dialog

    @Slot()
    def _suggest(self) -> None:
        model = self.state.project.model
        before = {key: getattr(model, key) for key in ("preset", "hidden", "activation",
                                                       "dropout", "conv_channels",
                                                       "batch_norm", "rnn_cell", "layers",
                                                       "backbone", "train_mode")}
        self.state.suggest_model()
        # The schedule part of a suggestion is not undoable; the network part is.
        after = {key: getattr(self.state.project.model, key) for key in before}
        if after != before:
            command = ModelEdit(self._apply_model_edit, before, after, "Suggest for my data")
            self.undo_stack.push(command)

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
            momentum=round(self.momentum_spin.value(), 4),
            nesterov=self.nesterov_check.isChecked(),
            schedule=self.schedule_combo.currentData(), warmup_epochs=self.warmup_spin.value(),
            step_size=self.step_spin.value(), step_gamma=round(self.gamma_spin.value(), 4),
            plateau_patience=self.patience_spin.value(),
            plateau_factor=round(self.factor_spin.value(), 4),
            loss=self.loss_combo.currentData() or "auto",
            label_smoothing=round(self.smoothing_spin.value(), 4),
            grad_clip=round(self.clip_spin.value(), 4),
            batch_size=self.batch_spin.value(), epochs=self.epochs_spin.value(),
            seed=self.seed_spin.value(), device=self.device_combo.currentData() or "auto",
            amp=self.amp_check.isChecked(), restore_best=self.best_check.isChecked(),
            early_stopping=self.early_check.isChecked(), patience=self.patience_es_spin.value(),
            min_delta=round(self.min_delta_spin.value(), 6),
            oom_retry=self.oom_check.isChecked(),
            yardstick=self.yardstick_check.isChecked(),
            refit=self.refit_combo.currentData() or "auto",
            monitor=self.monitor_combo.currentData() or "val_loss")

    # -- showing --------------------------------------------------------------------------------
    @Slot()
    def _on_project_replaced(self) -> None:
        self.undo_stack.clear()
        self._on_model_changed()

    def _preset_items(self) -> None:
        """Grey out the presets that do not fit the data's kind."""
        state = self.state
        kind = getattr(state.model_input, "kind", None)
        model = self.preset_combo.model()
        if not isinstance(model, QStandardItemModel):
            return
        for i in range(self.preset_combo.count()):
            name = self.preset_combo.itemData(i)
            info = PRESET_INFO.get(name) if name else None
            item = model.item(i)
            if info is None or item is None:
                continue
            fits = kind is None or preset_fits(name, kind)
            item.setEnabled(fits)
            tip = info.description if fits else (f"{info.description} Not for this data "
                                                 f"({kind}).")
            item.setToolTip(tip)

    @Slot()
    def _on_model_changed(self) -> None:
        state = self.state
        model, training = state.project.model, state.project.training
        self._updating = True
        try:
            self._preset_items()
            self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(model.preset)))
            self.hidden_edit.setText(", ".join(map(str, model.hidden)))
            self.channels_edit.setText(", ".join(map(str, model.conv_channels)))
            self.activation_combo.setCurrentIndex(
                [v for _, v in ACTIVATIONS].index(model.activation))
            self.dropout_spin.setValue(model.dropout)
            self.batchnorm_check.setChecked(model.batch_norm)
            self.ensemble_spin.setValue(model.ensemble)
            self.rnn_combo.setCurrentIndex(max(0, self.rnn_combo.findData(model.rnn_cell)))
            self.freeze_spin.setValue(model.freeze_epochs)
            self._show_training(training)
        finally:
            self._updating = False
        self._on_sizes_typed()
        self._show_preset_state()
        self._show_init_choices()
        self._show_summary()
        self._show_start()

    def _show_start(self) -> None:
        """The start choice; with a backbone, the preset and the layer editor are off."""
        self.start_choice.refresh()
        on = bool(self.state.project.model.backbone)
        self.backbone_note.setVisible(on)
        self.editor_note.setVisible(on)
        # Suggest and the library stay at hand: they choose a start themselves.
        for widget in (self.preset_combo, self.preset_label, self.knobs_box, self.editor):
            widget.setEnabled(not on)

    def _show_training(self, training) -> None:
        self.optimizer_combo.setCurrentIndex(
            [v for _, v in OPTIMIZERS].index(training.optimizer))
        self.lr_combo.setCurrentText(f"{training.lr:g}")
        self.weight_decay_combo.setCurrentText(f"{training.weight_decay:g}")
        self.momentum_spin.setValue(training.momentum)
        self.nesterov_check.setChecked(training.nesterov)
        self.schedule_combo.setCurrentIndex(max(0, self.schedule_combo.findData(
            training.schedule)))
        self.warmup_spin.setValue(training.warmup_epochs)
        self.step_spin.setValue(training.step_size)
        self.gamma_spin.setValue(training.step_gamma)
        self.patience_spin.setValue(training.plateau_patience)
        self.factor_spin.setValue(training.plateau_factor)
        task = self.state.summary.task if self.state.summary is not None else "classification"
        self.loss_combo.clear()
        for label, value in LOSSES[task]:
            self.loss_combo.addItem(label, value)
        index = self.loss_combo.findData(training.loss)
        if index < 0:  # a loss of the other task: shown, and the error banner says why
            self.loss_combo.addItem(training.loss, training.loss)
            index = self.loss_combo.count() - 1
        self.loss_combo.setCurrentIndex(index)
        self.smoothing_spin.setValue(training.label_smoothing)
        self.clip_spin.setValue(training.grad_clip)
        self.batch_spin.setValue(training.batch_size)
        self.epochs_spin.setValue(training.epochs)
        self.seed_spin.setValue(training.seed)
        index = self.device_combo.findData(training.device)
        self.device_combo.setCurrentIndex(max(index, 0))
        self.amp_check.setChecked(training.amp and cuda_available())
        self.best_check.setChecked(training.restore_best)
        self.oom_check.setChecked(training.oom_retry)
        self.yardstick_check.setChecked(training.yardstick)
        self.refit_combo.setCurrentIndex(max(0, self.refit_combo.findData(training.refit)))
        self.monitor_combo.setCurrentIndex(max(0, self.monitor_combo.findData(training.monitor)))
        self.early_check.setChecked(training.early_stopping)
        self.patience_es_spin.setValue(training.patience)
        self.min_delta_spin.setValue(training.min_delta)
        self.monitor_combo.setItemText(1, "best validation accuracy" if task == "classification"
                                       else "lowest validation MAE")
        self._show_rows()
        self.schedule_plot.show_schedule(training)

    def _show_preset_state(self) -> None:
        state, model = self.state, self.state.project.model
        name = model.preset
        if name == "auto" and state.spec is not None:
            name = state.spec.name
        info = PRESET_INFO.get(name)
        self.preset_label.setText(info.description if info else "")
        custom = bool(model.layers)
        self.custom_label.setText("The layers were edited by hand; these settings apply again "
                                  "after “Back to the preset”." if custom else "")
        self._show_rows()

    def _preset_rows(self) -> list[tuple[QFormLayout, QWidget, bool, bool]]:
        """The preset's shape settings: only those the chosen preset is built from apply
        (none once the layers were edited by hand)."""
        state, model = self.state, self.state.project.model
        name = model.preset
        if name == "auto" and state.spec is not None:
            name = state.spec.name
        shaped = not model.layers
        conv = shaped and name in ("cnn", "vgg", "resnet")
        kf = self._knobs_form
        return [(kf, self.hidden_edit, shaped and name in ("mlp", "mlp_bn", "cnn", "vgg",
                                                           "text", "tabm"), False),
                (kf, self.channels_edit, conv, False),
                (kf, self.activation_combo, shaped and name not in (  # TabM's blocks use ReLU
                    "resnet", "rnn", "transformer", "linear", "tabm"), False),
                (kf, self.dropout_spin, shaped and name not in ("resnet", "linear"), False),
                (kf, self.batchnorm_check, conv, False),
                (kf, self.ensemble_spin, shaped and name == "tabm", False),
                (kf, self.rnn_combo, shaped and name == "rnn", False)]

    def _training_rows(self) -> list[tuple[QFormLayout, QWidget, bool, bool]]:
        """The training settings: each with whether it applies to these settings and data,
        and whether it is one of the basic few."""
        training = self.state.project.training
        task = self.state.summary.task if self.state.summary is not None else "classification"
        gpu = cuda_available()
        of, sf, lf = self._opt_form, self._schedule_form, self._loop_form
        early = training.early_stopping
        images = self.state.summary is not None and self.state.summary.kind == "image"
        model = self.state.project.model
        return [(of, self.optimizer_combo, True, False), (of, self.lr_field, True, True),
                (of, self.momentum_spin, training.optimizer in ("sgd", "rmsprop"), False),
                (of, self.nesterov_check, training.optimizer == "sgd", False),
                (of, self.weight_decay_combo, True, False),
                *((sf, w, training.schedule == "step", False)
                  for w in (self.step_spin, self.gamma_spin)),
                *((sf, w, training.schedule == "plateau", False)
                  for w in (self.patience_spin, self.factor_spin)),
                (lf, self.loss_combo, True, False),
                (lf, self.smoothing_spin, task == "classification", False),
                (lf, self.clip_spin, True, False), (lf, self.batch_spin, True, True),
                (lf, self.epochs_spin, True, True), (lf, self.seed_spin, True, False),
                (lf, self.device_combo, True, False), (lf, self.amp_check, gpu, False),
                (lf, self.best_check, True, False), (lf, self.monitor_combo, True, False),
                (lf, self.oom_check, gpu or mps_available(), False),
                (lf, self.yardstick_check, not images, True),
                (lf, self.refit_combo, not (images or model.backbone or model.init_from), False),
                (lf, self.early_check, True, True), (lf, self.patience_es_spin, early, True),
                (lf, self.min_delta_spin, early, False),
                (self._transfer_form, self.freeze_spin,
                 bool(self.state.project.model.init_from), True)]

    def _show_rows(self) -> None:
        """Show each setting that applies to this data and model - in Basic, only the basic
        ones. A hidden setting keeps its value; one that does not apply is hidden, not greyed."""
        every = self.all_settings
        preset = self._preset_rows()
        for form, field, applies, basic in preset + self._training_rows():
            form.setRowVisible(field, applies and (every or basic))
        # The custom-layers note explains why no shape setting applies.
        self.knobs_box.setVisible(every and (any(r[2] for r in preset)
                                             or bool(self.state.project.model.layers)))
        self.schedule_box.setVisible(every)
        # Transfer learning is for experts, unless it is in use (then it stays in sight).
        self.settings_tabs.setTabVisible(2, every or bool(self.state.project.model.init_from))
        self.detail_note.setVisible(not every)

    def _show_summary(self) -> None:
        state = self.state
        self.error_banner.show_message(state.model_error, "error")
        self.editor.show_layers(state.layers, state.layer_checks,
                                custom=bool(state.project.model.layers))
        shape = getattr(state.model_input, "shape", None)
        self.diagram.set_network(shape, state.layers, state.layer_checks, state.n_outputs,
                                 state.summary.task if state.summary is not None else "")
        summary = state.model_summary
        self.code_button.setEnabled(state.spec is not None)
        self.estimate_button.setEnabled(state.spec is not None)
        self.find_lr_button.setEnabled(state.spec is not None)
        if summary is None or state.spec is None:
            for card in (self.params_card, self.size_card, self.macs_card, self.memory_card):
                card.set_value("-")
            self.input_label.setText(state.data_error or ("Choose the data first." if
                                                          state.summary is None else ""))
            return
        shape = " × ".join(map(str, summary.input_shape))
        kind = ("token ids" if state.spec.input_dtype == "int64" else
                "image" if len(summary.input_shape) == 3 else "features")
        info = PRESET_INFO.get(state.spec.name)
        name = ("custom layers" if state.project.model.layers else info.title if info else
                model_label(state.spec.name, state.project.model.backbone))
        self.input_label.setText(f"Input: {shape} ({kind}) → {state.spec.task} with "
                                 f"{state.n_outputs} output{'s' if state.n_outputs != 1 else ''};"
                                 f" <b>{name}</b>")
        model = state.project.model
        learning = trainable_params(state.spec, model, summary.total_params)
        self.params_card.set_value(f"{learning:,}")
        self.params_card.setToolTip(
            f"{learning:,} of the network's {summary.total_params:,} parameters learn"
            + (" (the backbone stays as it is)" if learning < summary.total_params else "")
            + ".")
        self.size_card.set_value(format_bytes(summary.total_params * 4), "model size (float32)")
        self.macs_card.set_value(format_count(summary.total_flops))
        self.macs_card.setToolTip(f"{summary.total_flops:,} floating-point operations "
                                  f"({summary.total_macs:,} multiply-adds) to predict one "
                                  f"sample.")
        try:
            memory = training_memory(state.spec, model, summary,
                                     state.project.training.batch_size,
                                     state.project.training.optimizer)
            self.memory_card.set_value(format_bytes(memory))
            self.memory_card.setToolTip(
                f"Estimated for batch size {state.project.training.batch_size}: weights, "
                f"gradients, optimizer state and the activations kept for learning.")
        except Exception:  # noqa: BLE001 - an estimate must never break the page
            self.memory_card.set_value("-")

    # -- show code, diagram ---------------------------------------------------------------------
    def model_source(self) -> str:
        from ml.models.codegen import model_source

        return model_source(self.state.spec)

    @Slot()
    def show_code(self) -> CodeDialog | None:
        if self.state.spec is None:
            return None
        dialog = CodeDialog(self.model_source(), self)
        dialog.setObjectName("codeDialog")
        dialog.open()
        return dialog

    @Slot()
    def _save_diagram(self) -> None:
        path = dialogs.save_file(self, "Save the network diagram",
                                 "PNG picture (*.png);;SVG drawing (*.svg)",
                                 f"{self.state.project.name or 'network'}.png")
        if not path:
            return
        if not path.lower().endswith((".png", ".svg")):
            path += ".png"
        try:
            self.diagram.save_image(path)
        except Exception as exc:  # noqa: BLE001 - a full disk, a read-only folder
            dialogs.show_error(self, "Could not save the diagram", exc)

    # -- estimate -------------------------------------------------------------------------------
    @Slot()
    def estimate(self) -> None:
        """Start the estimate, or cancel the one running."""
        if self.estimate_runner.is_running():
            self.estimate_runner.cancel()
            self._estimate_done("Estimate cancelled.")
            return
        state = self.state
        if state.spec is None or state.summary is None:
            return
        from workers.estimate_worker import EstimateWorker

        self.estimate_label.setText("Preparing the data and timing a few short epochs…")
        self.estimate_details.hide()
        self.estimate_button.setText("Cancel the estimate")
        self.estimate_runner.start(EstimateWorker(state.project, state.dataset))

    def _estimate_done(self, text: str) -> None:
        self.estimate_button.setText("Estimate time and memory")
        self.estimate_button.setEnabled(self.state.spec is not None)
        self.estimate_label.setText(text)

    @Slot(object)
    def _on_estimated(self, result) -> None:
        headline, parts = describe_estimate(result)
        self._estimate_done(headline)
        self.estimate_details.setText("<br>".join(parts))
        self.estimate_details.show()

    @Slot(str)
    def _on_estimate_failed(self, message: str) -> None:
        self._estimate_done(f"Could not time training: {message}")

    # -- learning-rate test ---------------------------------------------------------------------
    @Slot()
    def find_lr(self) -> None:
        """Run the learning-rate test in the background and show it in a dialog."""
        state = self.state
        if state.spec is None or state.summary is None:
            return
        from workers.base import TaskRunner
        from workers.lrfinder_worker import LRFinderWorker

        from ..widgets.lr_finder_dialog import LRFinderDialog

        if getattr(self, "lr_runner", None) is None:
            self.lr_runner = TaskRunner(self)
        dialog = self.lr_dialog = LRFinderDialog(state.project.training.lr, self)
        runner = self.lr_runner
        runner.finished.connect(dialog.show_result)
        runner.errored.connect(dialog.show_failure)
        worker = runner.start(LRFinderWorker(state.project, state.dataset))
        worker.progress.connect(dialog.show_progress)
        dialog.finished.connect(lambda code: self._on_lr_dialog_closed(dialog, code))
        dialog.open()

    def _on_lr_dialog_closed(self, dialog, code: int) -> None:
        for signal, slot in ((self.lr_runner.finished, dialog.show_result),
                             (self.lr_runner.errored, dialog.show_failure)):
            signal.disconnect(slot)
        self.lr_runner.cancel()  # Cancel while it runs: stop it, drop what it would return
        if code == QDialog.DialogCode.Accepted and dialog.chosen_lr is not None:
            self.state.update_training(lr=dialog.chosen_lr)
            self.error_banner.show_message(
                f"Learning rate set to {dialog.chosen_lr:g} by the learning-rate test.", "info")
        dialog.deleteLater()

    # -- transfer learning ----------------------------------------------------------------------
    def _show_init_choices(self) -> None:
        model = self.state.project.model
        with_runs = [r for r in self.state.project.runs if r.status in ("finished", "stopped")]
        self._updating = True
        try:
            self.init_combo.clear()
            self.init_combo.addItem("Fresh weights (no transfer)", "")
            for record in reversed(with_runs):
                self.init_combo.addItem(f"Run: {record.title}", record.path)
            index = self.init_combo.findData(model.init_from)
            if index < 0 and model.init_from:
                self.init_combo.addItem(f"File: {model.init_from}", model.init_from)
                index = self.init_combo.count() - 1
            self.init_combo.setCurrentIndex(max(index, 0))
        finally:
            self._updating = False
        self.freeze_spin.setEnabled(bool(model.init_from))
        self._check_transfer()

    @Slot()
    def _on_init_chosen(self) -> None:
        self._edit_model({"init_from": self.init_combo.currentData() or ""},
                         "Choose what to start from")

    @Slot()
    def _choose_init_file(self) -> None:
        path = dialogs.open_file(self, "Start from a weights file",
                                 "Weights (*.safetensors *.pt *.pth *.bin);;All files (*)")
        if path:
            self._edit_model({"init_from": path}, "Choose what to start from")

    def _check_transfer(self) -> None:
        """Match the chosen weights against the current network, in the background."""
        state, source = self.state, self.state.project.model.init_from
        if not source:
            self._transfer_key = None
            self.transfer_runner.cancel()
            self.transfer_report.setText("Training starts from fresh (random) weights.")
            mark_problem(self.transfer_report, False)
            return
        if state.spec is None:
            self.transfer_report.setText("Fix the network first; then the weights are matched.")
            return
        key = (source, repr(state.spec.to_dict()))
        if key == self._transfer_key:
            return
        self._transfer_key = key
        self.transfer_report.setText("Matching the weights to this network…")
        from workers.base import FunctionWorker
        from workers.estimate_worker import match_source

        self.transfer_runner.start(FunctionWorker(match_source, state.spec, source))

    @Slot(object)
    def _on_transfer_checked(self, report) -> None:
        mark_problem(self.transfer_report, False)
        self.transfer_report.setText(report.describe())

    @Slot(str)
    def _on_transfer_failed(self, message: str) -> None:
        mark_problem(self.transfer_report)
        self.transfer_report.setText(message)


def _refit_combo() -> QComboBox:
    """The final-fit choice (``TrainingConfig.refit``)."""
    combo = QComboBox()
    combo.setObjectName("refitCombo")
    combo.addItem("Automatic (tables)", "auto")
    combo.addItem("Always (text too)", "on")
    combo.addItem("Never", "off")
    combo.setToolTip("After training, train the same network again on the training and "
                     "validation rows together, for the number of epochs validation chose, so "
                     "the final model learns from every row but the test rows. The curves "
                     "stay those of the first fit. Automatic: tables under 20,000 training "
                     "rows (on texts it measured worse).")
    return combo


def describe_estimate(result) -> tuple[str, list[str]]:
    """The headline and the breakdown lines (rich text) of a
    :class:`~ml.training.estimate.RunEstimate`."""
    d = format_duration
    memory = result.peak_memory_bytes
    where = "GPU memory" if result.memory_kind == "GPU" else "memory (RAM, all of TrainDesk)"
    mem = f"; at most about <b>{format_bytes(memory)}</b> of {where}" if memory else ""
    headline = (f"On {result.device}: about <b>{d(result.seconds_total)}</b> of training for "
                f"{result.epochs} epoch{'s' if result.epochs != 1 else ''} "
                f"(<b>{d(result.seconds_per_epoch)}</b> per epoch){mem}.")
    steps = result.epochs * result.steps_per_epoch
    parts = [f"Training steps: {d(result.train_steps)} ({steps:,} batches of up to "
             f"{result.batch_size} rows)"]
    if result.features:
        parts.insert(0, f"Backbone features: {d(result.features)} (one pass over the training "
                        f"and validation rows, kept for the next run on this data)")
    if result.loader_workers:
        how = "decode and augment" if result.augmented else "decode"
        parts.append(f"Loading: {result.loader_workers} worker process"
                     f"{'es' if result.loader_workers != 1 else ''} {how} the images alongside "
                     f"the steps (about {d(result.loading_alongside)} of work)")
    else:
        how = "Loading and augmenting" if result.augmented else "Loading"
        parts.append(f"{how} the batches: {d(result.loading)}")
    if result.n_val:
        parts.append(f"Validation: {d(result.validation)} (all {result.n_val:,} validation "
                     f"rows after every epoch)")
    parts.append(f"Saving checkpoints: {d(result.checkpoints)} (after every epoch)")
    if result.final_fit:
        parts.append(f"Then the final fit: at most {d(result.final_fit)} more (the network "
                     f"trained again on the training and validation rows, for the epochs "
                     f"validation picks - usually far fewer than all)")
    starting = ("starting the image-decoding processes and the first steps"
                if result.loader_workers else "the first steps")
    parts.append(f"Starting: {d(result.start_up)} ({starting})")
    parts.append(f"Before training, preparing the data took {d(result.seconds_preparing)}; "
                 f"after it, the test evaluation takes about {d(result.seconds_finishing)}.")
    return headline, parts
