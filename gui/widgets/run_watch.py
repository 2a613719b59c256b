"""File → Watch a run folder: the curves of a run another process is writing (a cluster job
on a shared folder, a ``main.py train`` in a terminal), redrawn as its epochs arrive."""

from __future__ import annotations

import time

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ml.runs.watch import RunSnapshot, RunWatcher
from workers.base import FunctionWorker, TaskRunner

from ..theme import mute
from .common import heading
from .plots import BLUE, ORANGE, style_plot

#: Milliseconds between two looks at the folder (each reads only what changed).
POLL_MS = 1000
COLOURS = {"training": BLUE, "validation": ORANGE}


class RunWatchDialog(QDialog):
    """The run in *path*, followed live; ``add_requested(path)`` when the user adds it to the
    open project (offered once it has ended)."""

    add_requested = Signal(str)

    def __init__(self, path: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Watching a run")
        self.resize(900, 520)
        self.watcher = RunWatcher(path)  # RunError: not a run folder (the caller says so)
        self.snapshot: RunSnapshot | None = None
        self.runner = TaskRunner(self)
        layout = QVBoxLayout(self)
        self.title = heading("")
        layout.addWidget(self.title)
        self.status = QLabel("Reading the run …")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addWidget(mute(QLabel(f"Folder: {path}")))
        row = QHBoxLayout()
        self.plots = [pg.PlotWidget(), pg.PlotWidget()]
        for plot in self.plots:
            plot.addLegend()
            row.addWidget(plot)
        layout.addLayout(row, 1)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add to this project's runs")
        self.add_button.setEnabled(False)
        self.add_button.clicked.connect(lambda: self.add_requested.emit(str(self.watcher.path)))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.runner.finished.connect(self._on_snapshot)
        self.runner.errored.connect(self._on_error)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.look)
        self.timer.start()
        self.look()

    @Slot()
    def look(self) -> None:
        """Read the folder again in the background (a slow shared folder never blocks the
        window); a look still under way is not doubled."""
        if not self.runner.is_running():
            self.runner.start(FunctionWorker(self.watcher.poll))
        if self.snapshot is not None:  # "last written ... ago" keeps counting
            self.status.setText(self.snapshot.sentence(time.time()))

    @Slot(object)
    def _on_snapshot(self, snapshot: RunSnapshot | None) -> None:
        if snapshot is None:
            return
        self.snapshot = snapshot
        self.title.setText(snapshot.title)
        self.status.setText(snapshot.sentence(time.time()))
        self.add_button.setEnabled(snapshot.status in ("finished", "stopped", "failed"))
        self._draw(snapshot)

    def _draw(self, snapshot: RunSnapshot) -> None:
        curves = list(snapshot.curves().items())
        for i, plot in enumerate(self.plots):
            item = plot.getPlotItem()
            item.clear()
            if i >= len(curves):
                continue
            name, lines = curves[i]
            style_plot(item, name.capitalize(), "epoch", name)
            epochs = max((p[0] for points in lines.values() for p in points), default=0)
            item.getAxis("bottom").setTicks(  # whole epochs, not 1.5
                [[(e, str(e)) for e in range(1, int(epochs) + 1)]] if epochs <= 20 else None)
            for label, points in lines.items():
                item.plot([p[0] for p in points], [p[1] for p in points], name=label,
                          pen=pg.mkPen(COLOURS[label], width=3), symbol="o",
                          symbolBrush=pg.mkBrush(COLOURS[label]))

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self.status.setText(f"The run cannot be read just now: {message} TrainDesk keeps "
                            f"looking.")

    def done(self, result: int) -> None:  # noqa: D102 - Escape and Close both end here
        self.timer.stop()
        self.runner.cancel()
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.timer.stop()
        self.runner.cancel()
        super().closeEvent(event)
