"""Help → "Why is my GPU not used?": the diagnosis of :mod:`ml.system.gpu_check`, copyable."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ml.system.gpu_check import GpuReport, check_gpu


class GpuDialog(QDialog):
    """The verdict in large type, what to do, and the facts - with a Copy button, so the
    whole report can be pasted into a support request."""

    def __init__(self, report: GpuReport | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Why is my GPU not used?")
        self.report = report or check_gpu()
        self.verdict = QLabel(self.report.verdict)
        self.verdict.setObjectName("gpuVerdict")
        self.verdict.setWordWrap(True)
        colour = "#1b5e20" if self.report.uses_gpu else "#8a4b00"
        self.verdict.setStyleSheet(f"font-size: 15px; font-weight: 600; color: {colour};")
        self.details = QPlainTextEdit(self.report.text())
        self.details.setObjectName("gpuDetails")
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setMinimumSize(620, 260)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("gpuCopy")
        self.copy_button.setToolTip("Copy the whole report, e.g. for a support request")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.verdict)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.report.text())
        self.copy_button.setText("Copied")
