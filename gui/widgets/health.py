"""The data health list: one row per finding, with a button where the app can fix it."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ml.data.health import Finding

from ..theme import mark_problem

_COLOURS = {"warning": ("#fff4e5", "#b45309", "⚠"), "info": ("#eef4fb", "#1d4ed8", "ℹ")}
_TEXT = "#1f1f1f"  # on the findings' light backgrounds, in either theme
_ACTIONS = {"class_weights": "Use class weights", "ignore_columns": "Ignore these columns"}


class HealthView(QScrollArea):
    """Findings of :func:`ml.data.health.check_health`, most serious first.

    Signals
    -------
    action_requested(str, tuple)
        The user clicked a finding's fix: ``("class_weights", ())`` or
        ``("ignore_columns", columns)``.
    """

    action_requested = Signal(str, tuple)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._body = QWidget()
        self._layout = QVBoxLayout(self._body)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.setWidget(self._body)
        self.findings: list[Finding] = []
        self.error = ""
        self.set_findings([], "Load data to check it.")

    def set_findings(self, findings: Sequence[Finding], empty_text: str = "") -> None:
        """Show *findings*; *empty_text* when there are none."""
        self.findings = sorted(findings, key=lambda f: f.severity != "warning")
        self.error = ""
        self._clear()
        if not self.findings:
            label = QLabel(empty_text or "✓ No problems found: no missing values, duplicates, "
                           "leakage, constant or identifier columns, and the classes are "
                           "balanced.")
            label.setObjectName("healthEmpty")
            label.setWordWrap(True)
            self._layout.addWidget(label)
            return
        for finding in self.findings:
            self._layout.addWidget(self._row(finding))

    def set_error(self, message: str) -> None:
        """Show that the check itself failed, with *message*; earlier findings are removed so
        an old "no problems" is not mistaken for this data's result."""
        self.findings = []
        self.error = message
        self._clear()
        label = QLabel(f"The health check could not run: {message}")
        label.setObjectName("healthError")
        mark_problem(label)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._layout.addWidget(label)

    def _clear(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()  # deleteLater waits for the event loop; hide it now
                item.widget().deleteLater()

    def _row(self, finding: Finding) -> QWidget:
        bg, fg, icon = _COLOURS.get(finding.severity, _COLOURS["info"])
        row = QFrame()
        row.setObjectName(f"finding_{finding.key}")
        # The light background brings its own dark text: the palette's text is near-white in
        # the dark theme, unreadable on cream.
        row.setStyleSheet(f"QFrame#{row.objectName()} {{ background: {bg}; border-radius: 4px; }}"
                          f" QFrame#{row.objectName()} QLabel {{ color: {_TEXT}; }}")
        layout = QHBoxLayout(row)
        mark = QLabel(icon)
        mark.setStyleSheet(f"color: {fg}; font-size: 16px;")
        mark.setAlignment(Qt.AlignmentFlag.AlignTop)
        text = QLabel(finding.message)
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(mark)
        layout.addWidget(text, 1)
        if finding.action in _ACTIONS:
            button = QPushButton(_ACTIONS[finding.action])
            button.setObjectName(f"fix_{finding.key}")
            button.clicked.connect(
                lambda _=False, f=finding: self.action_requested.emit(f.action, f.columns))
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
        return row
