"""The Export step's "Report" tab: an HTML and PDF report on the current run, for stakeholders."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ml.runs.folder import load_run
from ml.system.jobcontrol import check_stop
from ml.system.resources import traindesk_home
from workers.base import FunctionWorker, TaskRunner

from .. import dialogs
from ..state import ProjectState
from .common import MessageBanner

INTRO = ("One click writes a report to hand over: what the data was and what was checked, the "
         "model, how training went, how well it does on examples it never saw (with the "
         "confusion matrix and example predictions), smaller versions of the model, what it "
         "takes to reproduce it and what training cost. Every section starts with a plain "
         "sentence, for readers who do not work in machine learning.")


def write_run_report(run_path: str, out: str, price_per_hour: float, currency: str,
                     watts: float | None, include_smaller: bool,
                     should_stop=None) -> list[Path]:
    """Build and write the report of the run in *run_path* (HTML, and PDF when registered);
    with *include_smaller*, the pruned and distilled runs made from it are measured again
    first. The report shows every smaller version measured of the run's weights (kept in
    its folder), the int8 ones measured on the Export step too.
    *should_stop* is checked between the steps, so a stopped report writes no file."""
    from ml.evaluation.report import build_report, write_report
    from ml.export.shrink import compare_smaller

    run = load_run(run_path)
    if include_smaller:
        compare_smaller(run)  # kept with the run, where the report reads it
    check_stop(should_stop, _STOPPED)
    report = build_report(run, price_per_hour=price_per_hour, currency=currency, watts=watts)
    check_stop(should_stop, _STOPPED)
    return write_report(report, out)


_STOPPED = "The report was stopped; nothing was written."


class ReportPanel(QWidget):
    """Settings for the report's cost estimate, where to save it, and a button."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_written)
        self.runner.errored.connect(self._on_errored)
        self.written: list[Path] = []

        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.price_spin = QDoubleSpinBox()
        self.price_spin.setObjectName("pricePerHour")
        self.price_spin.setRange(0.0, 100_000.0)
        self.price_spin.setDecimals(2)
        self.price_spin.setValue(1.0)
        self.price_spin.setToolTip("What an hour of this machine costs: a cloud GPU's price, or "
                                   "your own estimate (electricity, depreciation)")
        self.currency_edit = QLineEdit("$")
        self.currency_edit.setObjectName("currency")
        self.currency_edit.setMaxLength(4)
        self.currency_edit.setMaximumWidth(60)
        price_row = QHBoxLayout()
        price_row.addWidget(self.currency_edit)
        price_row.addWidget(self.price_spin)
        price_row.addWidget(QLabel("per hour"))
        price_row.addStretch(1)
        self.watts_spin = QSpinBox()
        self.watts_spin.setObjectName("powerWatts")
        self.watts_spin.setRange(0, 10_000)
        self.watts_spin.setSuffix(" W")
        self.watts_spin.setSpecialValueText("typical for the device")
        self.watts_spin.setMinimumWidth(200)
        self.watts_spin.setMaximumWidth(260)
        self.watts_spin.setToolTip("Power drawn while training, for the energy estimate")
        self.smaller_check = QCheckBox("Measure the smaller versions made from this run "
                                       "(pruned, distilled) for the report")
        self.smaller_check.setChecked(True)
        form = QFormLayout()
        form.addRow("Price of the machine:", price_row)
        form.addRow("Power:", self.watts_spin)
        form.addRow(self.smaller_check)

        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("reportPath")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._on_browse)
        path_row = QHBoxLayout()
        path_row.addWidget(QLabel("Save as:"))
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.write_button = QPushButton("Write the report")
        self.write_button.setObjectName("reportButton")
        self.write_button.setMinimumHeight(36)
        self.write_button.clicked.connect(self.write)
        self.open_button = QPushButton("Open it")
        self.open_button.setObjectName("openReport")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_report)
        buttons = QHBoxLayout()
        buttons.addWidget(self.write_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        self.banner = MessageBanner()
        self.files_label = QLabel("")
        self.files_label.setWordWrap(True)
        self.files_label.setObjectName("reportFiles")

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addLayout(path_row)
        layout.addLayout(buttons)
        layout.addWidget(self.banner)
        layout.addWidget(self.files_label)
        layout.addStretch(1)
        state.current_run_changed.connect(self._on_run_changed)
        self._on_run_changed()

    @Slot()
    def _on_run_changed(self) -> None:
        current = self.state.current_run
        self.write_button.setEnabled(current is not None)
        base = (self.state.project.path.parent if self.state.project.path
                else traindesk_home()) / "exports"
        name = current.record.id if current else "model"
        self.path_edit.setText(str(base / f"{name}-report.html"))
        self.banner.clear_message()
        self.files_label.setText("")
        self.open_button.setEnabled(False)

    @Slot()
    def _on_browse(self) -> None:
        path = dialogs.save_file(self, "Save the report", "Web page (*.html)",
                                 self.path_edit.text())
        if path:
            self.path_edit.setText(path)

    @Slot()
    def write(self) -> None:
        current = self.state.current_run
        path = self.path_edit.text().strip()
        if current is None or self.runner.is_running():
            return
        if not path:
            self.banner.show_message("Choose where to save the report.", "error")
            return
        self.write_button.setEnabled(False)
        self.banner.show_message("Writing the report (evaluating the model and measuring the "
                                 "smaller versions) …", "info")
        self.runner.start(FunctionWorker(
            write_run_report, str(current.record.path), str(Path(path).expanduser()),
            self.price_spin.value(), self.currency_edit.text().strip(),
            float(self.watts_spin.value()) or None, self.smaller_check.isChecked()))

    @Slot(object)
    def _on_written(self, paths) -> None:
        self.written = list(paths)
        self.write_button.setEnabled(True)
        self.open_button.setEnabled(True)
        self.banner.show_message("✔ The report is written.", "ok")
        self.files_label.setText("<br>".join(str(p) for p in self.written))

    @Slot()
    def open_report(self) -> None:
        if self.written:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.written[0])))

    @Slot(str)
    def _on_errored(self, message: str) -> None:
        self.write_button.setEnabled(True)
        self.banner.show_message(message, "error")
        dialogs.show_error(self, "Could not write the report", message)
