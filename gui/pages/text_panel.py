"""The Data page's view of a text column: tokenisation settings and a preview of the tokens."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ml.data.dataset import split_rows
from ml.data.preprocessing import _join_text
from ml.data.text import TextSettings, Tokenizer
from ml.errors import TrainDeskError

from ..state import ProjectState
from ..widgets.table_models import RecordsModel

#: Training rows the preview tokeniser is fitted on (the run uses the whole training split).
PREVIEW_ROWS = 5000


class TextPanel(QWidget):
    """Tokenisation choices (lower-casing, vocabulary size, length, rare words) and a preview."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._updating = False
        self.lowercase_check = QCheckBox("Lower-case the text")
        self.lowercase_check.setObjectName("lowercaseCheck")
        self.vocab_spin = QSpinBox()
        self.vocab_spin.setObjectName("maxVocabSpin")
        self.vocab_spin.setRange(100, 1_000_000)
        self.vocab_spin.setSingleStep(1000)
        self.vocab_spin.setGroupSeparatorShown(True)
        self.length_spin = QSpinBox()
        self.length_spin.setObjectName("maxLengthSpin")
        self.length_spin.setRange(0, 4096)
        self.length_spin.setSpecialValueText("Auto")
        self.length_spin.setSuffix(" tokens")
        self.min_count_spin = QSpinBox()
        self.min_count_spin.setObjectName("minCountSpin")
        self.min_count_spin.setRange(1, 1000)
        self.min_count_spin.setSuffix(" times")
        self.lowercase_check.toggled.connect(self._on_edited)
        for spin in (self.vocab_spin, self.length_spin, self.min_count_spin):
            spin.valueChanged.connect(self._on_edited)
        settings_box = QGroupBox("Tokenisation (fitted on the training split)")
        form = QFormLayout(settings_box)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # narrow windows
        form.addRow(self.lowercase_check)
        form.addRow("Vocabulary size (most frequent words):", self.vocab_spin)
        form.addRow("Tokens kept per example:", self.length_spin)
        form.addRow("Words seen fewer than this are unknown:", self.min_count_spin)

        self.stats_label = QLabel("")
        self.stats_label.setObjectName("textStats")
        self.stats_label.setWordWrap(True)
        self.preview_model = RecordsModel(["Text", "Tokens", "Unknown", "Cut"])
        self.preview_view = QTableView()
        self.preview_view.setObjectName("tokenPreview")
        self.preview_view.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.preview_view.setModel(self.preview_model)
        self.preview_view.setWordWrap(True)
        self.preview_view.verticalHeader().hide()
        header = self.preview_view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)

        layout = QVBoxLayout(self)
        layout.addWidget(settings_box)
        layout.addWidget(self.stats_label)
        layout.addWidget(QLabel("How the first training examples are tokenised:"))
        layout.addWidget(self.preview_view, 1)

    def refresh(self) -> None:
        """Show the project's settings and re-tokenise the preview."""
        state = self.state
        summary = state.summary
        settings = TextSettings.from_dict(state.project.data.text)
        self._updating = True
        try:
            self.lowercase_check.setChecked(settings.lowercase)
            self.vocab_spin.setValue(settings.max_vocab)
            self.length_spin.setValue(settings.max_length)
            self.min_count_spin.setValue(settings.min_count)
        finally:
            self._updating = False
        if summary is None or not summary.text_columns or state.dataset is None:
            self.preview_model.set_rows([])
            self.stats_label.setText("")
            return
        try:
            rows = split_rows(state.dataset, state.project.data, summary)["train"][:PREVIEW_ROWS]
            texts = _join_text(state.dataset.frame.iloc[rows], summary.text_columns).tolist()
            tok = Tokenizer.fit(texts, settings)
        except TrainDeskError as exc:
            self.stats_label.setText(str(exc))
            self.preview_model.set_rows([])
            return
        lengths = np.array([len(tok.tokenize(t)) for t in texts[:2000]])
        cut = float(np.mean(lengths > tok.max_length)) if len(lengths) else 0.0
        sample = f" (from the first {len(texts):,} training rows)" if len(rows) == PREVIEW_ROWS \
            else ""
        self.stats_label.setText(
            f"<b>Text column:</b> {', '.join(summary.text_columns)}<br>"
            f"<b>Vocabulary:</b> {tok.vocab_size:,} tokens{sample}<br>"
            f"<b>Length:</b> {tok.max_length} tokens per example "
            f"({'chosen' if settings.max_length else 'auto: 95% of examples fit'}); "
            f"median example {int(np.median(lengths)) if len(lengths) else 0} tokens, "
            f"{cut:.0%} cut<br>"
            f"<b>Known words:</b> {tok.coverage(texts[:2000]):.0%} of the tokens are in the "
            f"vocabulary")
        preview = []
        for item in tok.preview(texts, 8):
            tokens = " ".join(item["tokens"][:40]) + (" …" if len(item["tokens"]) > 40 else "")
            preview.append([item["text"][:200], tokens, item["n_unknown"],
                            "yes" if item["truncated"] else ""])
        self.preview_model.set_rows(preview)
        self.preview_view.resizeRowsToContents()

    @Slot()
    def _on_edited(self) -> None:
        if self._updating:
            return
        settings = TextSettings(lowercase=self.lowercase_check.isChecked(),
                                max_vocab=self.vocab_spin.value(),
                                max_length=self.length_spin.value(),
                                min_count=self.min_count_spin.value())
        if settings.to_dict() != TextSettings.from_dict(self.state.project.data.text).to_dict():
            self.state.update_data(text=settings.to_dict())
