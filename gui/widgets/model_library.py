"""The model library dialog: the pretrained backbones a model can start from, and the user's
own Hugging Face model folders (added and removed here, kept by :mod:`ml.models.library`).

Use from a page::

    dialog = ModelLibraryDialog(parent)
    dialog.backbone_chosen.connect(use_key)   # or, after exec(): dialog.chosen_key()
    dialog.open()

``backbone_chosen(key)`` fires when the user clicks "Use this model" (or double-clicks a row);
*key* is what ``ModelConfig.backbone`` and ``main.py train --backbone`` take
(``efficientnet_lite0``, ``minilm`` or the model folder's path).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ml.errors import TrainDeskError
from ml.models import library
from ml.models.library import ModelEntry

from .. import dialogs
from ..theme import colors, mute
from .common import MessageBanner, format_bytes, format_count

COLUMNS = ("Name", "Kind", "Architecture", "Parameters", "Size on disk", "Input", "Licence",
           "Fine-tuning memory", "Source")
_SORT_ROLE = Qt.ItemDataRole.UserRole + 1
_KEY_ROLE = Qt.ItemDataRole.UserRole


class _Item(QTableWidgetItem):
    """A cell that sorts by its number (parameters, bytes), not by its text ("22.7M" after
    "3.4M"); text cells sort without regard to case, empty ones last."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return _sort_key(self) < _sort_key(other)


def _sort_key(item: QTableWidgetItem) -> tuple:
    number = item.data(_SORT_ROLE)
    if number is not None:
        return (0, number, "")
    return (1 if item.text() else 2, 0, item.text().lower())


class ModelLibraryDialog(QDialog):
    """The model library as a sortable table, with Add folder…, Remove and Use this model.

    Signals
    -------
    backbone_chosen(str)
        The key of the backbone the user chose to start from (see the module docstring).
    """

    backbone_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Model library")
        self.setObjectName("modelLibraryDialog")
        self.resize(1080, 460)
        self._chosen = ""
        self._entries: list[ModelEntry] = []
        intro = QLabel("Pretrained models a network can start from: two ship with TrainDesk, "
                       "and you can add a Hugging Face model folder of your own (config.json, "
                       "model.safetensors and, for text, tokenizer.json). Nothing is downloaded.")
        intro.setWordWrap(True)
        self.banner = MessageBanner()
        self.banner.setObjectName("libraryError")
        self.table = self._make_table()
        self.detail = QLabel("")
        self.detail.setObjectName("libraryDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mute(self.detail)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.banner)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addLayout(self._make_buttons())
        self.refresh()

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setObjectName("libraryTable")
        table.setHorizontalHeaderLabels(COLUMNS)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)  # one line a model; long texts are cut, whole in the tooltip
        table.verticalHeader().setVisible(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # The source (a long path or package line) takes the width left, cut with "…" (its
        # whole text is in the tooltip and below the table).
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        # No column sorted at first: the built-in models first, then the added ones in order.
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        table.itemSelectionChanged.connect(self._on_selection)
        table.itemDoubleClicked.connect(lambda _item: self.use_selected())
        return table

    def _make_buttons(self) -> QHBoxLayout:
        self.add_button = QPushButton("Add folder…")
        self.add_button.setObjectName("libraryAdd")
        self.add_button.setToolTip("Add a local Hugging Face model folder (it is checked first; "
                                   "its files stay where they are).")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("libraryRemove")
        self.remove_button.setToolTip("Forget the selected folder (its files are kept). The "
                                      "built-in models cannot be removed.")
        self.use_button = QPushButton("Use this model")
        self.use_button.setObjectName("libraryUse")
        self.use_button.setToolTip("Start the network from the selected pretrained model.")
        self.use_button.setDefault(True)
        close = QPushButton("Close")
        self.add_button.clicked.connect(self.add_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.use_button.clicked.connect(self.use_selected)
        close.clicked.connect(self.reject)
        row = QHBoxLayout()
        for button in (self.add_button, self.remove_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.use_button)
        row.addWidget(close)
        return row

    # -- the rows -------------------------------------------------------------------------------
    def refresh(self, select: str = "") -> None:
        """Read the library again and show it; select the entry *select* (a key) if given."""
        try:
            self._entries = library.entries()
            self._say_unusable()
        except TrainDeskError as exc:  # a damaged models.json: the built-in ones still work
            self._entries = library.builtin_entries()
            self.banner.show_message(str(exc), "error")
        table = self.table
        table.setSortingEnabled(False)  # rows are filled in place; sorting would move them
        table.setRowCount(len(self._entries))
        for row, entry in enumerate(self._entries):
            for column, item in enumerate(self._cells(entry)):
                item.setData(_KEY_ROLE, entry.key)
                table.setItem(row, column, item)
        table.setSortingEnabled(True)
        self._select(select)
        self._on_selection()

    def _say_unusable(self) -> None:
        """Name the entries that cannot be used, with why, above the table (a cell would cut
        the reason short)."""
        bad = [e for e in self._entries if e.error]
        if not bad:
            self.banner.clear_message()
            return
        lines = [e.error for e in bad]
        advice = "Put the folder back, or select it and Remove it." if not any(
            e.builtin for e in bad) else ""
        self.banner.show_message("\n".join(lines + ([advice] if advice else [])), "warning")

    def _cells(self, entry: ModelEntry) -> list[QTableWidgetItem]:
        def cell(text: str, sort=None) -> QTableWidgetItem:
            item = _Item(text)
            item.setData(_SORT_ROLE, sort)
            item.setToolTip(entry.error or text)
            return item

        if entry.error:
            problem = cell("cannot be used")
            problem.setForeground(QColor(colors().problem))
            return [cell(entry.name)] + [cell("") for _ in COLUMNS[1:-2]] + [
                problem, cell(entry.key)]
        fit = cell(f"{entry.fit or 'needs'} {format_bytes(entry.memory_bytes)}",
                   entry.memory_bytes)
        fit.setToolTip(entry.fit_text)
        if entry.fit == "too big":
            fit.setForeground(QColor(colors().problem))
        return [cell(entry.name), cell(entry.kind), cell(entry.architecture),
                cell(format_count(entry.params), entry.params),
                cell(format_bytes(entry.disk_bytes), entry.disk_bytes), cell(entry.input_size),
                cell(entry.license or "unknown"), fit, cell(entry.source)]

    def _select(self, key: str) -> None:
        for row in range(self.table.rowCount()):
            if key and self.table.item(row, 0).data(_KEY_ROLE) == key:
                self.table.selectRow(row)
                return
        self.table.clearSelection()

    def selected_entry(self) -> ModelEntry | None:
        """The entry of the selected row (None when no row is selected)."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        key = self.table.item(rows[0].row(), 0).data(_KEY_ROLE)
        return next((e for e in self._entries if e.key == key), None)

    @Slot()
    def _on_selection(self) -> None:
        entry = self.selected_entry()
        self.remove_button.setEnabled(entry is not None and not entry.builtin)
        language_model = entry is not None and entry.kind == library.LM_KIND
        self.use_button.setEnabled(entry is not None and not entry.error and not language_model)
        self.use_button.setToolTip("A language model is fine-tuned in a language-model project "
                                   "(File → New language-model project)." if language_model
                                   else "")
        if entry is None:
            self.detail.setText("Select a model to see where it comes from and what it needs.")
        elif entry.error:
            self.detail.setText(f"{entry.key}: {entry.error}")
        else:
            self.detail.setText(f"{entry.name} - {entry.fit_text}. Source: {entry.source}. "
                                f"Command line: --backbone {entry.key}")

    # -- actions --------------------------------------------------------------------------------
    @Slot()
    def add_folder(self) -> None:
        """Ask for a model folder, check it and add it (a folder it cannot use: the reason)."""
        path = dialogs.open_folder(self, "Add a model folder")
        if not path:
            return
        try:
            entry = library.add_folder(path)
        except TrainDeskError as exc:
            dialogs.show_error(self, "Cannot add this folder", str(exc))
            return
        self.refresh(select=entry.key)

    @Slot()
    def remove_selected(self) -> None:
        """Forget the selected added folder."""
        entry = self.selected_entry()
        if entry is None or entry.builtin:
            return
        try:
            library.remove_folder(entry.key)
        except TrainDeskError as exc:
            dialogs.show_error(self, "Cannot remove this folder", str(exc))
        self.refresh()

    @Slot()
    def use_selected(self) -> None:
        """Choose the selected model: :meth:`chosen_key` returns it, ``backbone_chosen`` fires
        and the dialog closes (accepted)."""
        entry = self.selected_entry()
        if entry is None or entry.error:
            return
        self._chosen = entry.key
        self.backbone_chosen.emit(entry.key)
        self.accept()

    def chosen_key(self) -> str:
        """The key of the model the user chose with "Use this model" (``""`` if none): what
        ``ModelConfig.backbone`` and ``train --backbone`` take."""
        return self._chosen
