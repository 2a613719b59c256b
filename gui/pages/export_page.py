"""Step 5 - Export: write the model in a format that runs outside TrainDesk, and prove it."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ml.export import FORMATS, ExportReport, export_run, inputs_for_check
from ml.export.compress import CompressionReport
from ml.export.package import PackageReport, export_package
from ml.export.snippets import code_snippet
from ml.runs.folder import RunFolder, load_run
from ml.system.jobcontrol import check_stop
from ml.system.resources import traindesk_home
from workers.base import FunctionWorker, TaskRunner

from .. import dialogs
from ..state import ProjectState
from ..theme import mute
from ..widgets.common import MessageBanner, heading
from ..widgets.report_panel import ReportPanel
from ..widgets.shrink_panel import ShrinkPanel
from ..widgets.variant_table import VariantTable

DESCRIPTIONS = {
    "onnx": "Runs in ONNX Runtime, OpenCV, TensorRT, C#, Java, JavaScript … (recommended)",
    "pt2": "A torch.export program: load with torch.export.load() - no model code needed",
    "safetensors": "Weights only, plus the JSON model spec - for rebuilding the model in PyTorch",
    "package": "A folder (and a .zip) with model.onnx, preprocessing.json, predict.py and "
               "requirements.txt: predicts raw CSVs, images or texts with no TrainDesk installed",
}
#: What the page offers: the model formats, then the standalone package (a folder).
CHOICES = {**FORMATS, "package": ("Standalone package", "")}


def _first_example(run):
    """One encoded input kept with the run (for the code snippet), or None."""
    try:
        x = run.check_inputs()[:1]
    except Exception:  # noqa: BLE001 - older runs keep none
        return None
    if x.dtype == "uint8":
        x = x.astype("float32") / 255.0
    return x[0] if len(x) else None


def _export(run_path: str, fmt: str, out: str, compress: bool = False, should_stop=None):
    """Export (and check); with *compress*, also the int8 variants, measured.

    Returns the report, or ``(report, CompressionReport)`` with *compress*. Stopped between
    steps (each file is written whole or not at all).
    """
    run = load_run(run_path)
    check_stop(should_stop, "The export was stopped.")
    x, checked_on = inputs_for_check(run)
    check_stop(should_stop, "The export was stopped.")
    if fmt == "package":
        return export_package(run, out, x, checked_on=checked_on)
    report = export_run(run, fmt, out, x, checked_on=checked_on, should_stop=should_stop)
    if not compress or fmt != "onnx":
        return report
    from ml.export.compress import compress_run, compression_inputs

    check_stop(should_stop, "The export was stopped; the model file is kept.")
    test_x, test_y, calibration = compression_inputs(run)
    return report, compress_run(run, report.path, test_x, test_y, calibration)


def _export_note() -> QLabel:
    """What every export is checked on, and what its model file takes."""
    # The model file takes encoded values (as the code above the note feeds them); only the
    # package's predict.py encodes raw ones, and the note must not promise more.
    note = QLabel("Every export is loaded back in its own runtime and run on the test split "
                  "before it is kept; a file that does not reproduce the model is not saved. "
                  "The model file takes <b>encoded</b> values, as the code above feeds them; "
                  "how to encode raw ones (column encodings, scaling, class names) is written "
                  "beside it as <i>name</i>.preprocessing.json. To feed raw values (a CSV, "
                  "images, texts) as they are, export the Standalone package: its predict.py "
                  "encodes them.")
    note.setObjectName("exportNote")
    note.setWordWrap(True)
    mute(note)
    return note


class ExportPage(QWidget):
    """Choose a format and a file; the export is checked before it is kept."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_exported)
        self.runner.errored.connect(self._on_errored)
        self.last_report: ExportReport | None = None
        self.last_compression = None

        self.run_label = QLabel("")
        # Two classes: the decision threshold every export and the package carry.
        self.decision_label = QLabel("")
        self.decision_label.setObjectName("exportDecision")
        self.decision_label.setWordWrap(True)
        mute(self.decision_label)
        self.decision_label.hide()
        fmt_box = self._build_format_box()

        path_row = self._build_path_row()

        self.compress_check = QCheckBox("Also make int8 versions (about 3x smaller; faster "
                                        "only for large models - size, speed and test "
                                        "accuracy measured before and after)")
        self.compress_check.setObjectName("compressCheck")
        self.compress_table = VariantTable()
        self.compress_table.setObjectName("compressTable")
        self.compress_table.hide()
        self.export_button = QPushButton("Export and check")
        self.export_button.setObjectName("exportButton")
        self.export_button.setMinimumHeight(36)
        self.export_button.clicked.connect(self.export)
        self.banner = MessageBanner()
        self.banner.setObjectName("exportBanner")
        self.files_label = QLabel("")
        self.files_label.setWordWrap(True)
        self.files_label.setObjectName("exportFiles")

        page = QVBoxLayout(self)
        page.addWidget(heading("Export the model"))
        page.addWidget(self.run_label)
        page.addWidget(self.decision_label)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("exportTabs")
        page.addWidget(self.tabs, 1)
        export_tab = QWidget()
        # Taller than a 720-pixel screen leaves: it scrolls, instead of the layout squeezing
        # the format descriptions under the next option.
        scroll = QScrollArea()
        scroll.setObjectName("exportScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(export_tab)
        self.tabs.addTab(scroll, "Export")
        self.shrink_panel = ShrinkPanel(state)
        self.shrink_panel.export_requested.connect(lambda: self.tabs.setCurrentIndex(0))
        self.tabs.addTab(self.shrink_panel, "Make it smaller")
        self.report_panel = ReportPanel(state)
        self.tabs.addTab(self.report_panel, "Report")
        layout = QVBoxLayout(export_tab)
        layout.addWidget(fmt_box)
        layout.addLayout(path_row)
        layout.addWidget(self.compress_check)
        row = QHBoxLayout()
        row.addWidget(self.export_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(self.banner)
        layout.addWidget(self.files_label)
        layout.addWidget(self.compress_table)
        code_row = self._build_code_row()
        layout.addLayout(code_row)
        layout.addWidget(self.code_view)
        layout.addWidget(_export_note())
        layout.addStretch(1)
        self.path_edit.textChanged.connect(lambda _: self.update_code())

        state.current_run_changed.connect(self._on_run_changed)
        state.threshold_changed.connect(self._on_threshold_changed)
        self._on_run_changed()

    def _build_format_box(self) -> QGroupBox:
        """A radio button per export format, each with what it is for."""
        self.format_group = QButtonGroup(self)
        fmt_box = QGroupBox("Format")
        fl = QVBoxLayout(fmt_box)
        self.format_buttons: dict[str, QRadioButton] = {}
        for fmt, (title, suffix) in CHOICES.items():
            button = QRadioButton(f"{title} ({suffix})" if suffix else f"{title} (folder + .zip)")
            button.setObjectName(f"format_{fmt}")
            button.setToolTip(DESCRIPTIONS[fmt])
            self.format_group.addButton(button)
            self.format_buttons[fmt] = button
            fl.addWidget(button)
            hint = QLabel(DESCRIPTIONS[fmt])
            hint.setWordWrap(True)  # a narrow window wraps it rather than cutting it
            mute(hint).setStyleSheet("margin-left: 22px;")
            fl.addWidget(hint)
        self.format_buttons["onnx"].setChecked(True)
        return fmt_box

    def _build_path_row(self) -> QHBoxLayout:
        """Where to save, with Choose."""
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("exportPath")
        for button in self.format_buttons.values():
            button.toggled.connect(self._on_format_toggled)
        self.browse_button = QPushButton("Choose…")
        self.browse_button.clicked.connect(self._on_browse)
        path_row = QHBoxLayout()
        path_row.addWidget(QLabel("Save as:"))
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        return path_row

    def _build_code_row(self) -> QHBoxLayout:
        """The Python snippet that uses the export, and Copy as code."""
        self.code_view = QPlainTextEdit()
        self.code_view.setObjectName("codeSnippet")
        self.code_view.setReadOnly(True)
        self.code_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.code_view.setMinimumHeight(150)
        self.code_view.setMaximumHeight(260)
        self.copy_button = QPushButton("Copy as code")
        self.copy_button.setObjectName("copyCodeButton")
        self.copy_button.setToolTip("Copy a Python program that loads this export and predicts")
        self.copy_button.clicked.connect(self.copy_code)
        code_row = QHBoxLayout()
        code_row.addWidget(QLabel("Use it from Python:"))
        code_row.addStretch(1)
        code_row.addWidget(self.copy_button)
        return code_row

    def selected_format(self) -> str:
        return next(f for f, b in self.format_buttons.items() if b.isChecked())

    def set_format(self, fmt: str) -> None:
        self.format_buttons[fmt].setChecked(True)

    def _default_path(self, fmt: str) -> str:
        current = self.state.current_run
        name = current.record.id if current else "model"
        base = (self.state.project.path.parent if self.state.project.path
                else traindesk_home()) / "exports"
        return str(base / f"{name}{CHOICES[fmt][1]}")

    @Slot()
    def _on_run_changed(self) -> None:
        current = self.state.table_run
        self.export_button.setEnabled(current is not None)
        self.run_label.setText(f"Run: <b>{html.escape(current.record.title)}</b> "
                               f"({current.record.status})" if current else
                               "Train a model first.")
        self.run_label.setToolTip(f"Folder: {current.record.path}" if current else "")
        self.path_edit.setText(self._default_path(self.selected_format()))
        self.banner.clear_message()
        self.files_label.setText("")
        self._show_kept_int8(current)
        self.update_code()

    @Slot(str, float)
    def _on_threshold_changed(self, run_path: str, _threshold: float) -> None:
        """The run's threshold was saved anew: the line above and the snippet follow."""
        current = self.state.current_run
        if current is not None and str(current.path) == run_path:
            self._snippet_path = None  # read the run again
            self.update_code()

    def _show_decision(self, run) -> None:
        threshold = run.threshold if run is not None else None
        self.decision_label.setVisible(threshold is not None)
        if threshold is not None:
            no, yes = (html.escape(str(n)) for n in run.preprocessor.class_names)
            self.decision_label.setText(
                f"Decision threshold <b>{threshold:.2f}</b>: the exports and the package say "
                f"<b>{yes}</b> from that probability on, else <b>{no}</b> (it is kept in each "
                f"file's metadata; set it on the Evaluate page).")

    def _show_kept_int8(self, current) -> None:
        """The int8 versions measured of this run's weights before (kept in its folder): this
        page shows what the run's report shows, also after a restart."""
        kept = RunFolder(current.path).smaller_tables().get("int8") if current else None
        self.last_compression = CompressionReport.from_dict(kept) if kept else None
        if self.last_compression is None:
            self.compress_table.hide()
        else:
            self.compress_table.show_report(self.last_compression)

    @Slot(bool)
    def _on_format_toggled(self, checked: bool) -> None:
        if not checked:
            return
        fmt = self.selected_format()
        self.compress_check.setEnabled(fmt == "onnx")
        text = self.path_edit.text().strip()
        if text:
            stem = Path(text)
            for _, suffix in FORMATS.values():
                if stem.suffix == suffix:
                    stem = stem.with_suffix("")
            self.path_edit.setText(str(stem) + CHOICES[fmt][1])
        else:
            self.path_edit.setText(self._default_path(fmt))

    @Slot()
    def _on_browse(self) -> None:
        fmt = self.selected_format()
        title, suffix = CHOICES[fmt]
        path = dialogs.save_file(self, "Export the model", f"{title} (*{suffix or ''})",
                                 self.path_edit.text())
        if path:
            self.path_edit.setText(path)

    @Slot()
    def export(self) -> None:
        current = self.state.current_run
        path = self.path_edit.text().strip()
        if current is None:
            return
        if not path:
            self.banner.show_message("Choose where to save the export.", "error")
            return
        self.export_button.setEnabled(False)
        self.banner.show_message("Exporting and checking …", "info")
        self.files_label.setText("")
        self.compress_table.hide()
        fmt = self.selected_format()
        self.runner.start(FunctionWorker(_export, str(current.path), fmt,
                                         str(Path(path).expanduser()),
                                         fmt == "onnx" and self.compress_check.isChecked()))

    @Slot(object)
    def _on_exported(self, report) -> None:
        compressed = None
        if isinstance(report, tuple):
            report, compressed = report
        self.last_compression = compressed
        if compressed is not None:
            self.compress_table.show_report(compressed)
        self.last_report = report
        self.export_button.setEnabled(True)
        if isinstance(report, PackageReport) and report.unchecked:  # written, not shown to work
            self.banner.show_message("⚠ " + report.summary, "warning")
        else:
            self.banner.show_message("✔ " + report.summary, "ok")
        if isinstance(report, PackageReport):
            self.files_label.setText(f"Folder: {report.folder}<br>Zip: {report.zip}")
        else:
            self.files_label.setText(f"Model: {report.path}<br>Preprocessing: "
                                     f"{report.sidecar}")

    def update_code(self) -> None:
        """The "Copy as code" snippet for the chosen format and file."""
        current = self.state.current_run
        if current is None:
            self.code_view.setPlainText("")
            self._show_decision(None)
            return
        try:
            run = self._snippet_run if getattr(self, "_snippet_path", None) == str(
                current.path) else None
            if run is None:
                run = load_run(current.path)
                self._snippet_run, self._snippet_path = run, str(current.path)
                self._snippet_example = _first_example(run)
        except Exception:  # noqa: BLE001 - no snippet for a damaged run; export says why
            self.code_view.setPlainText("")
            self._show_decision(None)
            return
        pre = run.preprocessor
        self._show_decision(run)
        self.code_view.setPlainText(code_snippet(
            self.selected_format(), self.path_edit.text().strip(), task=pre.task,
            class_names=list(pre.class_names), input_shape=list(pre.input_shape),
            input_dtype=pre.input_dtype, example=self._snippet_example,
            threshold=run.threshold))

    @Slot()
    def copy_code(self) -> None:
        QGuiApplication.clipboard().setText(self.code_view.toPlainText())
        self.banner.show_message("The code is on the clipboard.", "ok")

    @Slot(str)
    def _on_errored(self, message: str) -> None:
        self.export_button.setEnabled(True)
        self.banner.show_message(message, "error")
        dialogs.show_error(self, "Export failed", message)
