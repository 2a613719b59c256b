"""The learning-rate test's dialog: the loss as the rate grows, the proposed rate marked and
explained, and a button that takes it."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .plots import BLUE, ORANGE, style_plot


class LRFinderDialog(QDialog):
    """Shows the test running (with its progress), then its curve and proposal, or why it
    found none. ``accepted`` means "use the proposed rate": read :attr:`chosen_lr`."""

    def __init__(self, current_lr: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lrFinderDialog")
        self.setWindowTitle("Find a learning rate")
        self.setMinimumWidth(560)  # the same width while it runs as when it shows the curve
        self.chosen_lr: float | None = None
        self.current_lr = float(current_lr)
        self.message = QLabel("Preparing the data, then training one batch at each of a "
                              "growing series of learning rates (the model itself is not "
                              "changed) ...")
        self.message.setObjectName("lrFinderMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("font-size: 14px;")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("lrFinderPlot")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMinimumSize(640, 360)
        item = self.plot.getPlotItem()
        style_plot(item, "Training loss as the learning rate grows", "learning rate",
                   "loss (smoothed)")
        item.setLogMode(x=True, y=False)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(BLUE, width=3))
        self.marker = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen(ORANGE, width=2, style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.marker)
        self.marker_label = pg.InfLineLabel(self.marker, text="", position=0.9,
                                            anchor=(0, 0.5), color=ORANGE)
        self.marker_label.setFont(QFont(self.font().family(), 12))
        self.marker.hide()
        self.plot.hide()
        self.buttons = QDialogButtonBox()
        self.use_button = QPushButton("Use")
        self.use_button.setObjectName("lrFinderUse")
        self.buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.use_button.hide()  # after addButton, which shows it: there is no rate yet
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.use_button.clicked.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.buttons)

    def show_progress(self, fraction: float, message: str) -> None:
        if not math.isnan(fraction):
            self.progress.setValue(round(fraction * 1000))
        if message:
            self.progress.setFormat(message)

    def show_result(self, result) -> None:
        """Draw the curve of a :class:`~ml.training.lrfinder.LRFinderResult` and offer its
        proposal."""
        self.progress.hide()
        lrs, losses = np.asarray(result.lrs), np.asarray(result.losses)
        self.curve.setData(lrs, losses)
        # The rise at the end can be far above the rest: show its start, keep the fall big.
        low = int(np.argmin(losses))
        bottom, top = float(losses.min()), float(losses[:low + 1].max())
        span = max(top - bottom, 1e-6)
        self.plot.setYRange(bottom - 0.1 * span, top + 0.8 * span, padding=0)
        self.plot.setXRange(math.log10(lrs[0]), math.log10(lrs[-1]), padding=0.02)
        self.marker.setValue(math.log10(result.suggested))  # log mode: the axis holds log10
        self.marker_label.setText(f" proposed {result.suggested:g}")
        self.marker.show()
        self.plot.show()
        self.chosen_lr = float(result.suggested)
        self.message.setText(f"<b>Proposed learning rate: {result.suggested:g}</b> (now "
                             f"{self.current_lr:g}). {result.reason}")
        self.use_button.setText(f"Use {result.suggested:g}")
        self.use_button.show()
        self.use_button.setDefault(True)
        self.use_button.setFocus()
        self.adjustSize()

    def show_failure(self, message: str) -> None:
        """Say why no rate was found; the only way out is Close."""
        self.progress.hide()
        self.message.setText(message)
        self.cancel_button.setText("Close")
