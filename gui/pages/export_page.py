"""Step 5 - Export: write the model in a format that runs outside TrainDesk, and prove it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (QButtonGroup, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QRadioButton, QVBoxLayout, QWidget)

from ml.export import FORMATS, ExportReport, export_run, inputs_for_check
from ml.resources import traindesk_home
from ml.runs import load_run
from workers.base import FunctionWorker, TaskRunner

from .. import dialogs
from ..state import ProjectState
from ..widgets.common import MessageBanner, heading

DESCRIPTIONS = {
    "onnx": "Runs in ONNX Runtime, OpenCV, TensorRT, C#, Java, JavaScript … (recommended)",
    "pt2": "A torch.export program: load with torch.export.load() - no model code needed",
    "safetensors": "Weights only, plus the JSON model spec - for rebuilding the model in PyTorch",
}


def _export(run_path: str, fmt: str, out: str) -> ExportReport:
    run = load_run(run_path)
    x, checked_on = inputs_for_check(run)
    return export_run(run, fmt, out, x, checked_on=checked_on)


class ExportPage(QWidget):
    """Choose a format and a file; the export is checked before it is kept."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_exported)
        self.runner.errored.connect(self._on_errored)
        self.last_report: ExportReport | None = None

        self.run_label = QLabel("")
        self.format_group = QButtonGroup(self)
        fmt_box = QGroupBox("Format")
        fl = QVBoxLayout(fmt_box)
        self.format_buttons: dict[str, QRadioButton] = {}
        for fmt, (title, suffix) in FORMATS.items():
            button = QRadioButton(f"{title} ({suffix})")
            button.setObjectName(f"format_{fmt}")
            button.setToolTip(DESCRIPTIONS[fmt])
            self.format_group.addButton(button)
            self.format_buttons[fmt] = button
            fl.addWidget(button)
            hint = QLabel(DESCRIPTIONS[fmt])
            hint.setStyleSheet("color: #555; margin-left: 22px;")
            fl.addWidget(hint)
        self.format_buttons["onnx"].setChecked(True)

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

        self.export_button = QPushButton("Export and check")
        self.export_button.setObjectName("exportButton")
        self.export_button.setMinimumHeight(36)
        self.export_button.clicked.connect(self.export)
        self.banner = MessageBanner()
        self.banner.setObjectName("exportBanner")
        self.files_label = QLabel("")
        self.files_label.setWordWrap(True)
        self.files_label.setObjectName("exportFiles")

        layout = QVBoxLayout(self)
        layout.addWidget(heading("Export the model"))
        layout.addWidget(self.run_label)
        layout.addWidget(fmt_box)
        layout.addLayout(path_row)
        row = QHBoxLayout()
        row.addWidget(self.export_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(self.banner)
        layout.addWidget(self.files_label)
        note = QLabel("Every export is loaded back in its own runtime and run on the test split "
                      "before it is kept; a file that does not reproduce the model is not saved. "
                      "The preprocessing (column encodings, scaling, class names) is written "
                      "beside it as <i>name</i>.preprocessing.json, so raw values can be fed.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        layout.addWidget(note)
        layout.addStretch(1)

        state.current_run_changed.connect(self._on_run_changed)
        self._on_run_changed()

    def selected_format(self) -> str:
        return next(f for f, b in self.format_buttons.items() if b.isChecked())

    def set_format(self, fmt: str) -> None:
        self.format_buttons[fmt].setChecked(True)

    def _default_path(self, fmt: str) -> str:
        current = self.state.current_run
        name = current.record.id if current else "model"
        base = (self.state.project.path.parent if self.state.project.path
                else traindesk_home()) / "exports"
        return str(base / f"{name}{FORMATS[fmt][1]}")

    @Slot()
    def _on_run_changed(self) -> None:
        current = self.state.current_run
        self.export_button.setEnabled(current is not None)
        self.run_label.setText(f"Run: <b>{current.record.id}</b> ({current.record.model}, "
                               f"{current.record.status})" if current else "Train a model first.")
        self.path_edit.setText(self._default_path(self.selected_format()))
        self.banner.clear_message()
        self.files_label.setText("")

    @Slot(bool)
    def _on_format_toggled(self, checked: bool) -> None:
        if not checked:
            return
        fmt = self.selected_format()
        text = self.path_edit.text().strip()
        if text:
            stem = Path(text)
            for _, suffix in FORMATS.values():
                if stem.suffix == suffix:
                    stem = stem.with_suffix("")
            self.path_edit.setText(str(stem) + FORMATS[fmt][1])
        else:
            self.path_edit.setText(self._default_path(fmt))

    @Slot()
    def _on_browse(self) -> None:
        fmt = self.selected_format()
        title, suffix = FORMATS[fmt]
        path = dialogs.save_file(self, "Export the model", f"{title} (*{suffix})",
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
        self.runner.start(FunctionWorker(_export, str(current.path), self.selected_format(),
                                         str(Path(path).expanduser())))

    @Slot(object)
    def _on_exported(self, report: ExportReport) -> None:
        self.last_report = report
        self.export_button.setEnabled(True)
        self.banner.show_message("✔ " + report.summary, "ok")
        self.files_label.setText(f"Model: {report.path}<br>Preprocessing: {report.sidecar}")

    @Slot(str)
    def _on_errored(self, message: str) -> None:
        self.export_button.setEnabled(True)
        self.banner.show_message(message, "error")
        dialogs.show_error(self, "Export failed", message)
