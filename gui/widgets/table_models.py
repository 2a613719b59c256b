"""Virtualised item models: Qt asks only for the cells on screen, so a million rows cost nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

_Index = QModelIndex | QPersistentModelIndex


class DataFrameModel(QAbstractTableModel):
    """A read-only view of a DataFrame (cells are formatted on demand).

    Rows are offered :attr:`batch` at a time, more as the view scrolls to the end (Qt's
    ``canFetchMore``/``fetchMore``): a view lays out every row it is told about, and a million
    rows at once froze the window for a twentieth of a second.
    """

    #: Rows offered at first and added each time the view reaches the end.
    batch = 10_000

    def __init__(self, frame: pd.DataFrame | None = None, parent=None):
        super().__init__(parent)
        self._frame = pd.DataFrame()
        self._columns: list[np.ndarray] = []
        self._shown = 0
        self.highlight_column: str | None = None
        if frame is not None:
            self.set_frame(frame)

    def set_frame(self, frame: pd.DataFrame) -> None:
        self.beginResetModel()
        self._frame = frame
        self._shown = min(len(frame), self.batch)
        # Column arrays, so data() is an O(1) lookup without pandas' indexing overhead. Numeric
        # columns convert for free (a view); text columns are read cell by cell as they are
        # shown - converting a million strings takes a fifth of a second on the GUI thread.
        self._columns = [_LazyColumn(frame.iloc[:, i]) for i in range(frame.shape[1])]
        self.endResetModel()

    def set_highlight(self, column: str | None) -> None:
        self.highlight_column = column
        if self.columnCount():
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, self.columnCount() - 1)
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self.rowCount() - 1, self.columnCount() - 1))

    @property
    def total_rows(self) -> int:
        """Rows in the frame (``rowCount`` grows towards it as the view scrolls)."""
        return len(self._frame)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else self._shown

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: N802
        return not parent.isValid() and self._shown < len(self._frame)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: N802
        if parent.isValid():
            return
        more = min(self.batch, len(self._frame) - self._shown)
        if more > 0:
            self.beginInsertRows(QModelIndex(), self._shown, self._shown + more - 1)
            self._shown += more
            self.endInsertRows()

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._columns[index.column()][index.row()]
            if value is None or value is pd.NA or (isinstance(value, (float, np.floating))
                                                   and np.isnan(value)):
                return ""
            if isinstance(value, (float, np.floating)):
                return f"{value:.6g}"
            return str(value)
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            if str(self._frame.columns[index.column()]) == self.highlight_column:
                # A light background brings its own dark text: readable in the dark theme too.
                return QBrush(QColor(255, 236, 179) if role == Qt.ItemDataRole.BackgroundRole
                              else QColor(31, 31, 31))
        if role == Qt.ItemDataRole.TextAlignmentRole:
            value = self._columns[index.column()][index.row()]
            if isinstance(value, (int, float, np.number)):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            name = str(self._frame.columns[section])
            return f"{name} (target)" if name == self.highlight_column else name
        return str(section + 1)


class _LazyColumn:
    """A frame column indexable like an array; text cells are read one by one, when shown."""

    __slots__ = ("_series", "_array")

    def __init__(self, series: pd.Series):
        self._series = series
        numeric = pd.api.types.is_numeric_dtype(series) and not isinstance(
            series.dtype, pd.ArrowDtype)
        self._array = series.to_numpy() if numeric else None

    def __getitem__(self, row: int):
        if self._array is None:
            return self._series.iat[row]  # only the cells on screen are ever read
        return self._array[row]

    def __len__(self) -> int:
        return len(self._series)


class RecordsModel(QAbstractTableModel):
    """A table of rows (sequences) with fixed headers; optional editable columns.

    ``editors`` maps a column number to ``(choices, on_edit)``: the cell is edited with a combo
    box of *choices* (see :class:`ChoiceDelegate`), or as free text when *choices* is None, and
    ``on_edit(row, value)`` is called. ``disabled`` holds ``(row, column)`` cells that are shown
    but not editable (a setting that does not apply to that row).
    """

    def __init__(self, headers: Sequence[str], parent=None):
        super().__init__(parent)
        self.headers = list(headers)
        self.rows: list[list[Any]] = []
        self.editors: dict[int, tuple[Sequence[str], Callable[[int, str], None]]] = {}
        self.row_colors: dict[int, QColor] = {}
        self.disabled: set[tuple[int, int]] = set()
        #: Column number -> the header's tooltip (what the column means).
        self.header_tips: dict[int, str] = {}

    def set_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        self.beginResetModel()
        self.rows = [list(r) for r in rows]
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self.rows[index.row()][index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if isinstance(value, float):
                return f"{value:.3f}"
            if isinstance(value, (int, np.integer)):
                return f"{int(value):,}"
            return str(value)
        if role == Qt.ItemDataRole.ToolTipRole and isinstance(value, str) and value:
            return value  # the whole text where a narrow column elides it
        if role == Qt.ItemDataRole.TextAlignmentRole and isinstance(value, (int, float,
                                                                            np.number)):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and index.row() in self.row_colors:
            return QBrush(self.row_colors[index.row()])
        if role == Qt.ItemDataRole.ForegroundRole and index.row() in self.row_colors:
            return QBrush(QColor(31, 31, 31))  # the marked rows are light in both themes
        return None

    def setData(self, index: _Index, value: Any,  # noqa: N802
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or index.column() not in self.editors:
            return False
        choices, on_edit = self.editors[index.column()]
        if choices is not None and value not in choices:
            return False
        on_edit(index.row(), str(value))
        return True

    def flags(self, index: _Index) -> Qt.ItemFlag:
        base = super().flags(index)
        if (index.row(), index.column()) in self.disabled:
            return base & ~Qt.ItemFlag.ItemIsEnabled
        if index.column() in self.editors:
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.header_tips.get(section)
        return None
