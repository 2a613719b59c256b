"""Step 1 - Data: pick a sample, a table, an image folder or a standard file; check what is in
it; choose the target, the split and how each column is encoded."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ml.data.dataset import Dataset
from ml.data.samples import list_samples
from ml.data.split import split_sizes
from ml.data.tabular import ReadOptions, to_numeric
from ml.runs.project import COLUMN_ROLES, COLUMN_TYPES, ENCODINGS, MISSING_STRATEGIES
from workers.base import TaskRunner
from workers.import_worker import HealthWorker, ImportWorker

from .. import dialogs
from ..state import ProjectState
from ..theme import mute
from ..widgets.common import MessageBanner, heading
from ..widgets.delegates import ChoiceDelegate
from ..widgets.health import HealthView
from ..widgets.plots import BarChartWidget
from ..widgets.table_models import DataFrameModel, RecordsModel
from .image_panel import ImagePanel
from .text_panel import TextPanel

FILE_FILTER = ("Data files (*.csv *.tsv *.txt *.dat *.xlsx *.xlsm *.parquet *.pq *.jsonl "
               "*.ndjson *.json *.zip *-ubyte *-ubyte.gz *.bin);;"
               "Tables (*.csv *.tsv *.txt *.dat *.xlsx *.xlsm *.parquet *.pq *.jsonl *.ndjson "
               "*.json);;Zipped image folders (*.zip);;All files (*)")
DELIMITERS = (("Detect", None), ("Comma ,", ","), ("Semicolon ;", ";"), ("Tab", "\t"),
              ("Pipe |", "|"), ("Space", " "))
ENCODING_CHOICES = (("Detect", None), ("UTF-8", "utf-8"), ("UTF-8 with BOM", "utf-8-sig"),
                    ("Windows-1252 (Latin-1)", "cp1252"), ("ISO-8859-1", "latin-1"))
DECIMALS = (("Detect", None), ("Point 1.5", "."), ("Comma 1,5", ","))
MISSING_TIP = ("How missing cells are filled (auto: the median of the training rows for "
               "numbers and dates, the most frequent answer for yes/no). A number, yes/no or "
               "date column with missing training cells also gets a \"was missing\" feature, "
               "so the model can tell a filled value from a measured one.")
COLUMN_HEADERS = ["Column", "Type", "Role", "Missing", "If missing", "Fill value", "Encoding",
                  "Distinct", "Example"]
TASK_CHOICES = (("Detect from target", None), ("Classification", "classification"),
                ("Regression", "regression"))


class DataPage(QWidget):
    """Choose the data, see it, check its health, and decide what to predict."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._make_runners()
        self._updating = False
        self._pending: tuple[str, dict, bool] | None = None

        left = self._build_source_panel()

        # -- right: what is in it -------------------------------------------------------------
        self.title_label = heading("No data yet")
        self.subtitle_label = QLabel("Pick a sample dataset on the left, or open your own "
                                     "file or folder.")
        self.subtitle_label.setWordWrap(True)
        self.error_banner = MessageBanner()
        self.error_banner.setObjectName("dataError")
        self.warning_banner = MessageBanner()
        self.warning_banner.setObjectName("dataWarnings")
        self.read_bar = self._make_read_bar()

        self._build_tabs()

        side = self._build_side_panel()

        body = QHBoxLayout()
        body.addWidget(self.tabs, 1)
        body.addWidget(side)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.title_label)
        rl.addWidget(self.subtitle_label)
        rl.addWidget(self.read_bar)
        rl.addWidget(self.error_banner)
        rl.addWidget(self.warning_banner)
        rl.addLayout(body, 1)

        self.splitter = splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        state.dataset_changed.connect(self._on_dataset_changed)
        state.data_config_changed.connect(self._on_config_changed)
        state.project_replaced.connect(self._on_project_replaced)
        self._on_loading_changed(False)
        self._on_dataset_changed()

    def _make_runners(self) -> None:
        """The import and health runners and the timers that spread the redraws."""
        self.loader = TaskRunner(self)
        self.loader.finished.connect(self._on_dataset_loaded)
        self.loader.errored.connect(self._on_load_errored)
        self.loader.running_changed.connect(self._on_loading_changed)
        self.health_runner = TaskRunner(self)
        self.health_runner.finished.connect(self._on_health_checked)
        self.health_runner.errored.connect(self._on_health_errored)
        self._health_timer = QTimer(self)
        self._health_timer.setSingleShot(True)
        self._health_timer.setInterval(250)
        self._health_timer.timeout.connect(self._check_health)
        # The chart is redrawn a moment after the tables: its first layout and paint, in the
        # same event-loop turn as a new dataset's, stalled the window for over 100 ms.
        self._chart_timer = QTimer(self)
        self._chart_timer.setSingleShot(True)
        self._chart_timer.setInterval(30)
        self._chart_timer.timeout.connect(self._update_chart)
        # Likewise the preview table: laying out and painting it is the other big share.
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(15)
        self._preview_timer.timeout.connect(self._fill_preview)

    def _build_source_panel(self) -> QWidget:
        """The samples, Open file/folder, and the import's progress and Cancel."""
        # -- left: where the data comes from ---------------------------------------------------
        self.sample_list = QListWidget()
        self.sample_list.setObjectName("sampleList")
        self.sample_list.setWordWrap(True)
        self.sample_list.setSpacing(2)
        for info in list_samples():
            item = QListWidgetItem(f"{info.title}\n{info.task} · {info.kind}")
            item.setData(Qt.ItemDataRole.UserRole, info.source)
            item.setToolTip(info.description)
            self.sample_list.addItem(item)
        self.sample_list.itemActivated.connect(self._on_sample_activated)
        self.sample_list.itemClicked.connect(self._on_sample_activated)
        self.open_button = QPushButton("Open file…")
        self.open_button.setObjectName("openCsvButton")
        self.open_button.setToolTip("A table (CSV, TSV, Excel, Parquet, JSON lines), a zip of "
                                    "image folders, MNIST-style IDX files or CIFAR-10 binary "
                                    "batches.")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.folder_button = QPushButton("Open folder…")
        self.folder_button.setObjectName("openFolderButton")
        self.folder_button.setToolTip("A folder of images with one sub-folder per class (or "
                                      "train/ and test/ folders of those), or a folder of IDX "
                                      "or CIFAR-10 binary files.")
        self.folder_button.clicked.connect(self._on_folder_clicked)
        self.loading_label = QLabel("")
        self.loading_label.setObjectName("loadingLabel")
        self.loading_label.setWordWrap(True)
        mute(self.loading_label)
        # A fixed height: progress text changes 20 times a second, and a label that grows and
        # shrinks would re-lay out (and repaint) the whole window each time.
        self.loading_label.setFixedHeight(2 * self.loading_label.fontMetrics().lineSpacing() + 4)
        self.loading_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("importProgress")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelImportButton")
        self.cancel_button.clicked.connect(self.cancel_import)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.cancel_button)
        source_box = QGroupBox("Sample datasets (built in, offline)")
        sb = QVBoxLayout(source_box)
        sb.addWidget(self.sample_list)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(source_box, 1)
        ll.addWidget(QLabel("Or your own data:"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.folder_button)
        ll.addLayout(buttons)
        ll.addWidget(self.loading_label)
        ll.addLayout(progress_row)
        left.setMinimumWidth(210)
        left.setMaximumWidth(280)
        return left

    def _build_tabs(self) -> None:
        """Preview, Columns, Text, Images and Health."""
        self.preview_model = DataFrameModel()
        self.preview = QTableView()
        self.preview.setObjectName("previewTable")
        self.preview.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.preview.setModel(self.preview_model)
        self.preview.setAlternatingRowColors(True)
        self.preview.horizontalHeader().setDefaultSectionSize(110)
        self.preview.verticalHeader().setDefaultSectionSize(22)
        # Fixed row heights: the view never asks a million rows for their size hints.
        self.preview.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)

        self.columns_model = RecordsModel(COLUMN_HEADERS)
        self.columns_model.editors = {1: (COLUMN_TYPES, self._on_type_edited),
                                      2: (COLUMN_ROLES, self._on_role_edited),
                                      4: (MISSING_STRATEGIES, self._on_missing_edited),
                                      5: (None, self._on_fill_edited),
                                      6: (ENCODINGS, self._on_encoding_edited)}
        self.columns_model.header_tips = {4: MISSING_TIP}
        self.columns_view = QTableView()
        self.columns_view.setObjectName("columnsTable")
        self.columns_view.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.columns_view.setModel(self.columns_model)
        self.columns_view.setItemDelegate(ChoiceDelegate(self.columns_view))
        self.columns_view.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.columns_view.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.columns_view.horizontalHeader().setStretchLastSection(True)
        self.columns_view.verticalHeader().hide()

        self.text_panel = TextPanel(self.state)
        self.image_panel = ImagePanel(self.state)
        self.health_view = HealthView()
        self.health_view.setObjectName("healthView")
        self.health_view.action_requested.connect(self._on_health_action)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("dataTabs")
        # With no data yet the preview says where data can come from, dropping included
        # (the window takes files and folders dropped anywhere on it).
        self.drop_hint = QLabel("Drop a table (CSV, Excel, Parquet), a folder or .zip of images "
                                "(one sub-folder per class), or a TrainDesk project here - or "
                                "pick a sample on the left, or use Open file… or Open folder…")
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setWordWrap(True)
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mute(self.drop_hint)
        self.drop_hint.setStyleSheet("QLabel#dropHint { border: 2px dashed "
                                     "palette(placeholder-text); background: palette(base); "
                                     "border-radius: 10px; padding: 24px; font-size: 12pt; }")
        self.preview_stack = QStackedWidget()
        self.preview_stack.addWidget(self.drop_hint)
        self.preview_stack.addWidget(self.preview)
        self.preview_tab = self.tabs.addTab(self.preview_stack, "Preview")
        self.columns_tab = self.tabs.addTab(self.columns_view, "Columns")
        self.text_tab = self.tabs.addTab(self.text_panel, "Text")
        self.images_tab = self.tabs.addTab(self.image_panel, "Images")
        self.health_tab = self.tabs.addTab(self.health_view, "Health")

    def _build_side_panel(self) -> QWidget:
        """What to predict, the split and the class balance."""
        # -- target, task, split, balance ---------------------------------------------------
        self.target_combo = QComboBox()
        self.target_combo.setObjectName("targetCombo")
        self.target_combo.setMinimumContentsLength(10)
        self.target_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target_combo.currentTextChanged.connect(self._on_target_changed)
        self.task_combo = QComboBox()
        self.task_combo.setObjectName("taskCombo")
        for label, value in TASK_CHOICES:
            self.task_combo.addItem(label, value)
        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        self.task_label = QLabel("")
        self.task_label.setWordWrap(True)
        self.weights_check = QCheckBox("Weight classes by rarity in the loss")
        self.weights_check.setObjectName("classWeightsCheck")
        self.weights_check.setToolTip("Each class counts equally in training, however few rows "
                                      "it has (scikit-learn's class_weight='balanced').")
        self.weights_check.toggled.connect(self._on_weights_toggled)
        target_box = QGroupBox("What to predict")
        tf = QFormLayout(target_box)
        tf.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        tf.addRow("Target column:", self.target_combo)
        tf.addRow("Task:", self.task_combo)
        tf.addRow("", self.task_label)
        tf.addRow(self.weights_check)

        self.val_spin = self._percent_spin(15)
        self.test_spin = self._percent_spin(15)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.stratify_check = QCheckBox("Same class shares in every part")
        self.stratify_check.setToolTip("Stratified split: each part gets the classes in the "
                                       "proportions of the whole data.")
        self.stratify_check.setChecked(True)
        for w in (self.val_spin, self.test_spin, self.seed_spin):
            w.valueChanged.connect(self._on_split_changed)
        self.stratify_check.toggled.connect(self._on_split_changed)
        self.split_label = QLabel("")
        self.split_label.setWordWrap(True)
        split_box = QGroupBox("Train / validation / test split")
        sf = QFormLayout(split_box)
        sf.addRow("Validation share:", self.val_spin)
        sf.addRow("Test share:", self.test_spin)
        sf.addRow("Random seed:", self.seed_spin)
        sf.addRow(self.stratify_check)
        sf.addRow(self.split_label)

        self.balance_chart = BarChartWidget()
        self.balance_chart.setObjectName("balanceChart")

        side = QWidget()
        side.setObjectName("dataSidePanel")
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(target_box)
        sl.addWidget(split_box)
        sl.addWidget(self.balance_chart, 10)
        sl.addStretch(1)  # keeps the boxes compact while the chart is hidden
        side.setMinimumWidth(260)  # the page fits the window's minimum, 1024 pixels
        side.setMaximumWidth(380)
        return side

    def _make_read_bar(self) -> QWidget:
        bar = QWidget()
        bar.setObjectName("readOptionsBar")
        self.read_info_label = QLabel("")
        self.read_info_label.setObjectName("readInfo")
        self.delimiter_combo = QComboBox()
        self.delimiter_combo.setObjectName("delimiterCombo")
        self.encoding_combo = QComboBox()
        self.encoding_combo.setObjectName("encodingCombo")
        self.decimal_combo = QComboBox()
        self.decimal_combo.setObjectName("decimalCombo")
        for combo, choices in ((self.delimiter_combo, DELIMITERS),
                               (self.encoding_combo, ENCODING_CHOICES),
                               (self.decimal_combo, DECIMALS)):
            for label, value in choices:
                combo.addItem(label, value)
            combo.activated.connect(self._on_read_options_edited)
        self.sheet_combo = QComboBox()
        self.sheet_combo.setObjectName("sheetCombo")
        self.sheet_combo.activated.connect(self._on_read_options_edited)
        self.header_check = QCheckBox("First row is the header")
        self.header_check.setObjectName("headerCheck")
        self.header_check.setChecked(True)
        self.header_check.clicked.connect(self._on_read_options_edited)
        outer = QVBoxLayout(bar)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        outer.addWidget(self.read_info_label)
        layout = QHBoxLayout()
        outer.addLayout(layout)
        self.csv_controls = []
        for text, widget in (("Separator:", self.delimiter_combo),
                             ("Encoding:", self.encoding_combo),
                             ("Decimal:", self.decimal_combo), ("Sheet:", self.sheet_combo)):
            label = QLabel(text)
            layout.addWidget(label)
            layout.addWidget(widget)
            self.csv_controls.append((label, widget))
        layout.addWidget(self.header_check)
        layout.addStretch(1)
        return bar

    @staticmethod
    def _percent_spin(value: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(1, 49)
        spin.setDecimals(0)
        spin.setSuffix(" %")
        spin.setValue(value)
        return spin

    # -- loading --------------------------------------------------------------------------------
    def load_source(self, source: str, options: dict | None = None, *,
                    keep_settings: bool = False, reopening: bool = False) -> None:
        """Import ``sample:NAME``, a file or a folder in the background.

        *options* are the table-reading overrides; *keep_settings* keeps the project's column
        settings (re-reading the data rather than choosing new data); *reopening* means the
        project was just opened (getting its data back is no edit).
        """
        self._pending = (source, dict(options or {}), keep_settings, reopening)
        self.loading_label.setText(f"Opening {source} …")
        self.progress_bar.setValue(0)
        worker = ImportWorker(source, options)
        worker.progress.connect(self._on_import_progress)
        self.loader.start(worker)

    @Slot()
    def cancel_import(self) -> None:
        """Stop the import in progress; the project and the data already shown stay."""
        if self.loader.is_running():
            self.loader.cancel()
            self._pending = None
            self.loading_label.setText("Import cancelled.")

    @Slot(bool)
    def _on_loading_changed(self, running: bool) -> None:
        self.progress_bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.open_button.setEnabled(not running)
        self.folder_button.setEnabled(not running)

    @Slot(float, str)
    def _on_import_progress(self, fraction: float, message: str) -> None:
        if self.sender() is not self.loader.worker:
            return  # an import that was cancelled or replaced
        self.progress_bar.setValue(int(fraction * 1000))
        self.loading_label.setText(message)

    @Slot()
    def _on_project_replaced(self) -> None:
        # A file still loading belongs to the old project; it must not land in the new one.
        self.loader.cancel()
        self._pending = None
        self.loading_label.setText("")
        self._on_config_changed()

    @Slot(QListWidgetItem)
    def _on_sample_activated(self, item: QListWidgetItem) -> None:
        source = item.data(Qt.ItemDataRole.UserRole)
        if self.state.dataset is None or self.state.dataset.source != source:
            self.load_source(source)

    @Slot()
    def _on_open_clicked(self) -> None:
        path = dialogs.open_file(self, "Open data", FILE_FILTER)
        if path:
            self.load_source(path)

    @Slot()
    def _on_folder_clicked(self) -> None:
        path = dialogs.open_folder(self, "Open a folder of images (one sub-folder per class)")
        if path:
            self.load_source(path)

    @Slot(object)
    def _on_dataset_loaded(self, dataset: Dataset) -> None:
        pending, self._pending = self._pending, None
        self.loading_label.setText("")
        options, keep, reopening = pending[1:] if pending else ({}, False, False)
        target = self.state.project.data.target
        if keep and target and target not in dataset.columns and dataset.kind != "image":
            keep = False  # other columns now (another header or separator): start afresh
        self.state.project.data.read_options = dict(options)
        self.state.set_dataset(dataset, keep_settings=keep, dirty=not reopening)

    @Slot(str)
    def _on_load_errored(self, message: str) -> None:
        # The project and the dataset already loaded stay as they were.
        pending, self._pending = self._pending, None
        self.loading_label.setText("")
        if pending is not None and pending[3]:
            dialogs.show_error(self, "The project's data could not be read",
                               f"{message}\n\nThe project is open; choose its data again on "
                               f"the Data page.")
        else:
            dialogs.show_error(self, "Could not open the data", message)

    # -- showing --------------------------------------------------------------------------------
    @Slot()
    def _on_dataset_changed(self) -> None:
        dataset = self.state.dataset
        self._updating = True
        try:
            self.target_combo.clear()
            self.preview_stack.setCurrentWidget(self.preview if dataset else self.drop_hint)
            if dataset is None:
                self.preview_model.set_frame(pd.DataFrame())
                self.title_label.setText("No data yet")
                self.subtitle_label.setText("Pick a sample dataset on the left, or open your own "
                                            "file or folder.")
                self.read_bar.hide()
                for tab in (self.text_tab, self.images_tab):
                    self.tabs.setTabVisible(tab, False)
            else:
                self._show_dataset(dataset)
        finally:
            self._updating = False
        self._on_config_changed()

    def _show_dataset(self, dataset: Dataset) -> None:
        images = dataset.kind == "image"
        self.preview_model.set_frame(pd.DataFrame())  # filled a moment later
        self._preview_timer.start()
        if images:
            self.target_combo.addItem("label")
        else:
            self.target_combo.addItems([str(c) for c in dataset.frame.columns])
        self.title_label.setText(dataset.name)
        what = dataset.sample.description if dataset.sample else dataset.source
        if images:
            n_classes = dataset.frame["label"].nunique()
            self.subtitle_label.setText(f"{dataset.n_rows:,} images in {n_classes} classes — "
                                        f"{what}")
        else:
            self.subtitle_label.setText(f"{dataset.n_rows:,} rows × {dataset.frame.shape[1]} "
                                        f"columns — {what}")
        for i in range(self.sample_list.count()):
            item = self.sample_list.item(i)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == dataset.source)
        self.tabs.setTabVisible(self.images_tab, images)
        self.tabs.setTabVisible(self.columns_tab, not images)
        self.tabs.setTabText(self.preview_tab, "Image list" if images else "Preview")
        if images:
            self.tabs.setCurrentIndex(self.images_tab)
        elif self.tabs.currentIndex() == self.images_tab:
            self.tabs.setCurrentIndex(self.preview_tab)
        self._show_read_options(dataset)

    @Slot()
    def _fill_preview(self) -> None:
        dataset = self.state.dataset
        if dataset is None:
            return
        self.preview_model.set_frame(dataset.frame.drop(columns=["path"], errors="ignore")
                                     if dataset.kind == "image" else dataset.frame)
        self.preview_model.set_highlight(self.target_combo.currentText() or None)

    def _show_read_options(self, dataset: Dataset) -> None:
        info = dataset.table_info
        self.read_bar.setVisible(info is not None)
        if info is None:
            return
        options = ReadOptions.from_dict(self.state.project.data.read_options)
        self.read_info_label.setText(f"Read as: <b>{info.describe()}</b>")
        csv = info.format == "csv"
        for (label, widget) in self.csv_controls[:3]:
            label.setVisible(csv)
            widget.setVisible(csv)
        self.header_check.setVisible(csv)
        sheet_label, _ = self.csv_controls[3]
        sheet_label.setVisible(bool(info.sheets))
        self.sheet_combo.setVisible(bool(info.sheets))
        self.sheet_combo.clear()
        self.sheet_combo.addItems(info.sheets)
        if info.sheet:
            self.sheet_combo.setCurrentText(info.sheet)
        for combo, value in ((self.delimiter_combo, options.delimiter),
                             (self.encoding_combo, options.encoding),
                             (self.decimal_combo, options.decimal)):
            index = combo.findData(value)
            combo.setCurrentIndex(max(index, 0))
        self.header_check.setChecked(options.header)

    @Slot()
    def _on_read_options_edited(self) -> None:
        dataset = self.state.dataset
        if self._updating or dataset is None or dataset.table_info is None:
            return
        options = ReadOptions.from_dict(self.state.project.data.read_options)
        options.delimiter = self.delimiter_combo.currentData()
        options.encoding = self.encoding_combo.currentData()
        options.decimal = self.decimal_combo.currentData()
        options.header = self.header_check.isChecked()
        if dataset.table_info.sheets:
            options.sheet = self.sheet_combo.currentText() or None
        if options.to_dict() != ReadOptions.from_dict(
                self.state.project.data.read_options).to_dict():
            # The same file read differently: keep the column choices where the columns stay.
            self.load_source(dataset.source, options.to_dict(), keep_settings=True)

    @Slot()
    def _on_config_changed(self) -> None:
        state, data = self.state, self.state.project.data
        self._updating = True
        try:
            self.val_spin.setValue(round(data.split.val_fraction * 100))
            self.test_spin.setValue(round(data.split.test_fraction * 100))
            self.seed_spin.setValue(data.split.seed)
            self.stratify_check.setChecked(data.split.stratify)
            self.weights_check.setChecked(state.project.training.class_weights == "balanced")
            idx = [v for _, v in TASK_CHOICES].index(data.task)
            self.task_combo.setCurrentIndex(idx)
            if state.dataset is None:
                self.columns_model.set_rows([])
                self.error_banner.clear_message()
                self.warning_banner.clear_message()
                self._chart_timer.start()
                self.health_view.set_findings([], "Load data to check it.")
                self.tabs.setTabText(self.health_tab, "Health")
                return
            target = data.target or state.dataset.default_target
            self.target_combo.setCurrentText(target)
            self.preview_model.set_highlight(target)
        finally:
            self._updating = False
        summary = state.summary
        self._health_timer.start()
        self.error_banner.show_message(state.data_error, "error")
        self.warning_banner.show_message(
            "\n".join(f"• {w}" for w in summary.warnings) if summary else "", "warning")
        if state.dataset.kind != "image":
            self._show_columns(summary, target)
        text = summary is not None and summary.kind == "text"
        self.tabs.setTabVisible(self.text_tab, text)
        if text:
            self.text_panel.refresh()
        if summary is None:
            self.task_label.setText("")
            self.split_label.setText("")
            self._chart_timer.start()
            self.weights_check.setVisible(False)
            return
        # Class weights mean nothing for numbers: hidden, not greyed, when predicting one.
        self.weights_check.setVisible(summary.task == "classification")
        self._chart_timer.start()
        detected = "detected" if data.task is None else "chosen"
        kind = f", {summary.kind} input" if summary.kind != "tabular" else ""
        n = len(summary.features)
        what = ("" if summary.kind in ("image", "text")
                else f", {n} feature{'s' if n != 1 else ''}")
        self.task_label.setText(f"<b>{summary.task.capitalize()}</b> ({detected}{kind}){what}")
        if state.dataset.kind == "image" and state.dataset.given_splits:
            counts = state.dataset.frame["split"].value_counts()
            given = " · ".join(f"{counts[k]:,} {k}" for k in ("train", "val", "test")
                               if k in counts)
            self.split_label.setText(f"Given by the data: {given}. Missing parts are taken "
                                     f"from the training images with the shares above.")
        else:
            stratified = summary.task == "classification" and data.split.stratify
            groups = list(summary.class_counts.values()) if stratified else [summary.n_rows]
            sizes = split_sizes(groups, data.split.val_fraction, data.split.test_fraction,
                                stratified)
            self.split_label.setText(f"{sizes['train']:,} train · {sizes['val']:,} validation · "
                                     f"{sizes['test']:,} test rows")

    @Slot()
    def _update_chart(self) -> None:
        """Class balance (classification) or the target's histogram (regression)."""
        state, summary = self.state, self.state.summary
        if state.dataset is None or summary is None:
            self.balance_chart.hide()
            return
        self.balance_chart.show()
        if summary.task == "classification":
            self.balance_chart.set_bars(list(summary.class_counts),
                                        list(summary.class_counts.values()),
                                        f"Class balance ({len(summary.class_counts)} classes)")
        else:
            values = to_numeric(state.dataset.frame[summary.target]).to_numpy()
            self.balance_chart.set_histogram(values[np.isfinite(values)],
                                             f"Distribution of {summary.target}")

    def _show_columns(self, summary, target: str) -> None:
        data = self.state.project.data
        rows, disabled = [], set()
        for i, (name, info) in enumerate(self.state.dataset.columns.items()):
            kind = data.column_types.get(name, info.type)
            if summary is not None:
                role = summary.roles[name]
            else:
                # No summary (no valid target yet): propose what resolve() would.
                role = "target" if name == target else data.column_roles.get(
                    name, "ignore" if info.id_like else "feature")
            missing = data.missing.get(name, "auto")
            fill = data.fill_values.get(name, "")
            encoding = data.encodings.get(name, "auto") if kind == "categorical" else "—"
            example = info.example[:40] + (" (identifier?)" if info.id_like else "")
            rows.append([name, kind, role, info.n_missing, missing, fill, encoding,
                         info.n_unique, example])
            if role != "feature":
                disabled |= {(i, 4), (i, 5), (i, 6)}
            if kind != "categorical":
                disabled.add((i, 6))
            if missing != "constant":
                disabled.add((i, 5))
        self.columns_model.disabled = disabled
        self.columns_model.set_rows(rows)

    # -- health ---------------------------------------------------------------------------------
    @Slot()
    def _check_health(self) -> None:
        if self.state.dataset is None:
            return
        self.health_runner.start(HealthWorker(self.state.dataset,
                                              copy.deepcopy(self.state.project.data)))

    @Slot(object)
    def _on_health_checked(self, findings: list) -> None:
        self.health_view.set_findings(findings)
        warnings = sum(1 for f in findings if f.severity == "warning")
        self.tabs.setTabText(self.health_tab,
                             f"Health ({warnings} to look at)" if warnings else "Health ✓")

    @Slot(str)
    def _on_health_errored(self, message: str) -> None:
        # Advisory, so no error box; but the old ticks must not stand for this data.
        self.health_view.set_error(message)
        self.tabs.setTabText(self.health_tab, "Health (check failed)")

    @Slot(str, tuple)
    def _on_health_action(self, action: str, columns: tuple) -> None:
        if action == "class_weights":
            self.state.update_training(class_weights="balanced")
            self.state.data_config_changed.emit()
        elif action == "ignore_columns":
            roles = dict(self.state.project.data.column_roles)
            roles.update({c: "ignore" for c in columns})
            self.state.update_data(column_roles=roles)

    # -- edits ----------------------------------------------------------------------------------
    @Slot(str)
    def _on_target_changed(self, name: str) -> None:
        if self._updating or not name or self.state.dataset is None:
            return
        self.state.update_data(target=name)

    @Slot(int)
    def _on_task_changed(self, index: int) -> None:
        if self._updating or self.state.dataset is None:
            return
        self.state.update_data(task=self.task_combo.itemData(index))

    @Slot()
    def _on_split_changed(self) -> None:
        if self._updating:
            return
        self.state.update_data(val_fraction=self.val_spin.value() / 100,
                               test_fraction=self.test_spin.value() / 100,
                               seed=self.seed_spin.value(),
                               stratify=self.stratify_check.isChecked())

    @Slot(bool)
    def _on_weights_toggled(self, checked: bool) -> None:
        if self._updating:
            return
        self.state.update_training(class_weights="balanced" if checked else "none")

    def _column_name(self, row: int) -> str:
        return self.columns_model.rows[row][0]

    def _on_type_edited(self, row: int, value: str) -> None:
        self.state.set_column(self._column_name(row), type=value)

    def _on_role_edited(self, row: int, value: str) -> None:
        self.state.set_column(self._column_name(row), role=value)

    def _on_missing_edited(self, row: int, value: str) -> None:
        missing = dict(self.state.project.data.missing)
        missing[self._column_name(row)] = value
        self.state.update_data(missing=missing)

    def _on_fill_edited(self, row: int, value: str) -> None:
        fills = dict(self.state.project.data.fill_values)
        fills[self._column_name(row)] = value.strip()
        self.state.update_data(fill_values=fills)

    def _on_encoding_edited(self, row: int, value: str) -> None:
        encodings = dict(self.state.project.data.encodings)
        encodings[self._column_name(row)] = value
        self.state.update_data(encodings=encodings)

    def shutdown(self) -> None:
        self._health_timer.stop()
        self.loader.shutdown()
        self.health_runner.shutdown()
        self.image_panel.shutdown()
