"""The examples behind a number: the images, rows or texts of a confusion-matrix cell, or the
model's most confident mistakes, each with what it is, what the model said and how sure it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: Examples shown at most (the rest are counted in the title).
LIMIT = 300
THUMB = 96


def _as_bytes(chw: np.ndarray) -> np.ndarray:
    """``uint8`` pixels: floats are scaled from 0 to their maximum (e.g. the digits sample's
    0..16 intensities), or from [0, 1]."""
    chw = np.asarray(chw)
    if chw.dtype == np.uint8:
        return chw
    top = float(chw.max()) if chw.size else 0.0
    scale = 255.0 / top if top > 1.0 else 255.0
    return np.clip(chw.astype(np.float64) * scale, 0, 255).astype(np.uint8)


def image_pixmap(chw: np.ndarray, side: int = THUMB) -> QPixmap:
    """A ``(C, H, W)`` image (``uint8``, or floats scaled from 0 to their maximum) as a pixmap
    *side* pixels wide (nearest pixels: small images such as 8x8 digits stay crisp)."""
    hwc = np.ascontiguousarray(_as_bytes(chw).transpose(1, 2, 0))
    h, w, c = hwc.shape
    if c == 1:
        image = QImage(hwc.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        image = QImage(hwc[:, :, :3].copy().data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy()).scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


def overlay_pixmap(chw: np.ndarray, heat: np.ndarray, side: int = THUMB) -> QPixmap:
    """*chw* (as :func:`image_pixmap` takes it) in gray, with *heat* (``(H, W)`` in [0, 1]) laid
    over it from transparent to red to yellow: where the model looks."""
    gray = _as_bytes(chw).astype(np.float64).mean(axis=0)
    h = np.clip(np.asarray(heat, np.float64), 0.0, 1.0)
    colour = np.stack([np.full_like(h, 255.0), 255.0 * np.clip(2 * h - 1, 0, 1),
                       np.zeros_like(h)], axis=-1)  # red, turning yellow where hottest
    alpha = (0.65 * h)[..., None]
    rgb = (gray[..., None] * 0.85 * (1 - alpha) + colour * alpha).astype(np.uint8)
    return image_pixmap(np.ascontiguousarray(rgb.transpose(2, 0, 1)), side)


class ExamplesDialog(QDialog):
    """Examples *rows* of an evaluation, most confident first (the caller orders them)."""

    #: The user wants one example (an evaluation row) explained in the Try it tab.
    explain_requested = Signal(int)

    def __init__(self, evaluation, rows: np.ndarray, title: str, parent: QWidget | None = None,
                 order: str = "the model's most confident first"):
        super().__init__(parent)
        self.setObjectName("examplesDialog")
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.rows = np.asarray(rows, np.int64)
        shown = self.rows[:LIMIT]
        names = evaluation.class_names
        proba = evaluation.proba
        layout = QVBoxLayout(self)
        more = f" (the first {LIMIT} shown)" if len(self.rows) > LIMIT else ""
        self.summary = QLabel(f"<b>{len(self.rows)}</b> example(s){more}, {order}.")
        layout.addWidget(self.summary)
        examples = evaluation.examples
        self.view: QWidget
        if examples is None or not len(shown):
            self.view = QLabel("No examples to show." if not len(shown) else
                               "The examples of this evaluation are not available.")
        elif isinstance(examples, pd.DataFrame):
            self.view = self._table(examples, shown, evaluation)
        else:
            self.view = self._gallery(examples, shown, evaluation)
        layout.addWidget(self.view, 1)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        self.explain_button = box.addButton("Explain in Try it",
                                            QDialogButtonBox.ButtonRole.ActionRole)
        self.explain_button.setObjectName("explainButton")
        self.explain_button.setToolTip("Open the selected example in the Try it tab: its "
                                       "prediction and what it was based on (double-click "
                                       "does the same)")
        self.explain_button.clicked.connect(self._explain_selected)
        self.explain_button.setEnabled(isinstance(self.view, (QListWidget, QTableWidget)))
        if isinstance(self.view, QListWidget):
            self.view.itemDoubleClicked.connect(lambda _: self._explain_selected())
        elif isinstance(self.view, QTableWidget):
            self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            self.view.cellDoubleClicked.connect(lambda *_: self._explain_selected())
        layout.addWidget(box)
        self.resize(900, 620)
        self._names, self._proba = names, proba

    def selected_row(self) -> int | None:
        """The evaluation row of the selected example (the first, when none is selected)."""
        if isinstance(self.view, QListWidget):
            item = self.view.currentItem() or self.view.item(0)
            return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))
        if isinstance(self.view, QTableWidget):
            r = max(self.view.currentRow(), 0)
            shown = self.rows[:LIMIT]
            return int(shown[r]) if r < len(shown) else None
        return None

    @Slot()
    def _explain_selected(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.explain_requested.emit(row)

    @staticmethod
    def _said(evaluation, row: int) -> tuple[str, str, float]:
        """(true, predicted, confidence) of *row*, in words."""
        if evaluation.task == "classification":
            names = evaluation.class_names
            p = int(evaluation.y_pred[row])
            return (names[int(evaluation.y_true[row])], names[p],
                    float(evaluation.proba[row, p]))
        return (f"{evaluation.y_true[row]:.4g}", f"{evaluation.y_pred[row]:.4g}", float("nan"))

    def _gallery(self, images, rows: np.ndarray, evaluation) -> QListWidget:
        gallery = QListWidget()
        gallery.setObjectName("exampleGallery")
        gallery.setViewMode(QListView.ViewMode.IconMode)
        gallery.setIconSize(QSize(THUMB, THUMB))
        gallery.setGridSize(QSize(THUMB + 56, THUMB + 48))
        gallery.setResizeMode(QListView.ResizeMode.Adjust)
        gallery.setMovement(QListView.Movement.Static)
        gallery.setWordWrap(True)
        pixels = images[np.sort(rows)]  # one decode for a lazily read set
        position = {int(r): i for i, r in enumerate(np.sort(rows))}
        for row in rows:
            true, predicted, confidence = self._said(evaluation, int(row))
            item = QListWidgetItem(QIcon(image_pixmap(pixels[position[int(row)]])),
                                   f"{true} → {predicted}\n{100 * confidence:.0f}% sure")
            item.setToolTip(f"Example {int(row) + 1}: it is {true}; the model said {predicted} "
                            f"({100 * confidence:.1f}%).")
            item.setData(Qt.ItemDataRole.UserRole, int(row))
            gallery.addItem(item)
        return gallery

    def _table(self, frame: pd.DataFrame, rows: np.ndarray, evaluation) -> QTableWidget:
        columns = [str(c) for c in frame.columns[:20]]
        classification = evaluation.task == "classification"
        head = (["Is", "Model said", "Sure"] if classification else ["Is", "Model said",
                                                                        "Error"])
        table = QTableWidget(len(rows), len(head) + len(columns))
        table.setObjectName("exampleTable")
        table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        table.setHorizontalHeaderLabels(head + columns)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        part = frame.iloc[rows]
        for r, row in enumerate(rows):
            true, predicted, confidence = self._said(evaluation, int(row))
            third = (f"{100 * confidence:.0f}%" if classification else
                     f"{evaluation.y_pred[row] - evaluation.y_true[row]:+.4g}")
            values = [true, predicted, third] + [
                "" if pd.isna(v) else str(v)[:200] for v in part.iloc[r, :len(columns)]]
            for c, value in enumerate(values):
                table.setItem(r, c, QTableWidgetItem(value))
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        table.resizeColumnsToContents()
        for c in range(table.columnCount()):  # long texts: readable, not the whole screen
            table.setColumnWidth(c, min(table.columnWidth(c), 360))
        return table
