"""A small plot of the learning rate over the planned epochs."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize

from .. import theme
from .plots import BLUE, plain_numbers

#: Points drawn per epoch (warm-up and one-cycle change within an epoch).
STEPS_PER_EPOCH = 8


class SchedulePlot(pg.PlotWidget):
    """The learning rate the chosen schedule gives at every point of the run."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("schedulePlot")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        item = self.getPlotItem()
        item.setLabel("bottom", "epoch")
        item.setLabel("left", "learning rate")
        plain_numbers(item.getAxis("left"))  # 0.001, not "(x0.001)"
        item.showGrid(x=True, y=True, alpha=0.25)
        self.curve = self.plot([], [], pen=pg.mkPen(BLUE, width=2))
        self.note = pg.TextItem("", color=theme.colors().muted, anchor=(1, 0))
        self.addItem(self.note)
        self.values = np.zeros(0)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt API
        # A live theme switch changes the palette: the note follows (theme.apply sets the
        # colours before the palette, so colors() is already the new theme's).
        note = self.__dict__.get("note")  # None while __init__ builds the plot
        if event.type() == QEvent.Type.PaletteChange and note is not None:
            note.setColor(theme.colors().muted)
        super().changeEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(320, 150)

    def show_schedule(self, training) -> None:
        """Draw the schedule of a :class:`~ml.runs.project.TrainingConfig`."""
        from ml.training.schedules import schedule_curve

        try:
            values = np.asarray(schedule_curve(training, int(training.epochs), STEPS_PER_EPOCH),
                                dtype=float)
        except Exception:  # noqa: BLE001 - invalid settings are reported by the page
            values = np.zeros(0)
        self.values = values
        x = np.arange(len(values), dtype=float) / STEPS_PER_EPOCH
        self.curve.setData(x, values)
        self.note.setText("and lower when validation stalls"
                          if training.schedule == "plateau" else "")
        if len(values):
            self.note.setPos(float(x[-1]), float(values.max()))
            self.setYRange(0, float(values.max()) * 1.1 or 1.0, padding=0)
            self.setXRange(0, float(x[-1]) or 1.0, padding=0.02)
