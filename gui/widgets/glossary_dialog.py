"""Help → Glossary: every machine-learning word the app uses, in plain words, searchable."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLineEdit, QTextBrowser, QVBoxLayout

from ..glossary import GLOSSARY, glossary_html


class GlossaryDialog(QDialog):
    """A search box over :data:`gui.glossary.GLOSSARY`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Glossary")
        self.search = QLineEdit()
        self.search.setObjectName("glossarySearch")
        self.search.setPlaceholderText(f"Search {len(GLOSSARY)} terms (e.g. epoch, F1)")
        self.search.setClearButtonEnabled(True)
        self.text = QTextBrowser()
        self.text.setObjectName("glossaryText")
        self.text.setOpenLinks(False)
        self.text.setMinimumSize(560, 420)
        self.text.setStyleSheet("font-size: 14px;")
        self.search.textChanged.connect(self._show)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self._show("")

    def _show(self, text: str) -> None:
        self.text.setHtml(glossary_html(text))
