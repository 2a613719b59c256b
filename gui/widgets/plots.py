"""Plots: live training curves, class balance bars, predicted-vs-actual, confusion matrix.

Live curves follow pyqtgraph's ``scrollingPlots`` example: one curve item per series, data in a
preallocated numpy buffer that doubles when full, ``setData`` from a timer (never per signal),
peak downsampling and clipping to the view, so a million batch points stay smooth.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from ml.training.diagnose import overfitting

BLUE = (31, 119, 180)
ORANGE = (230, 120, 20)
GREY = (150, 150, 150)
GREEN = (44, 160, 44)
#: Redraw interval of live plots: 250 ms = 4 Hz. The GUI thread shares the GIL and the cores
#: with training; measured on 2 cores, faster redraws cost training speed (bench_train.py).
REDRAW_MS = 250


def style_plot(plot: pg.PlotItem, title: str, x_label: str, y_label: str,
               scale: float = 1.0) -> None:
    """Large, readable axes and title (the curves are shown on projectors); *scale* enlarges
    every font (presenter mode)."""
    plot.setTitle(title, size=f"{14 * scale:.0f}pt")
    font = QFont()
    font.setPointSize(round(11 * scale))
    for name, label in (("bottom", x_label), ("left", y_label)):
        axis = plot.getAxis(name)
        axis.setTickFont(font)
        plain_numbers(axis)
        axis.setLabel(label, **{"font-size": f"{12 * scale:.0f}pt"})
    plot.showGrid(x=True, y=True, alpha=0.25)


def plain_numbers(axis: pg.AxisItem) -> None:
    """Ticks show the values themselves, never an SI-scaled "(x0.001)" version of them.

    Disabling the prefix alone is not enough: pyqtgraph's ``enableAutoSIPrefix(False)`` still
    recomputes the scale from the axis' current range and freezes it, so a plot re-styled while
    it showed a learning rate of 0.001 went on reading 1000x too big.  An empty set of enable
    ranges makes that recomputation always come out at 1.
    """
    axis.setSIPrefixEnableRanges(())
    axis.enableAutoSIPrefix(False)


class CurveBuffer:
    """Growable (x, y) storage: appends are amortised O(1); views are zero-copy."""

    def __init__(self, capacity: int = 256):
        self._data = np.empty((capacity, 2), dtype=np.float64)
        self.n = 0

    def extend(self, points: np.ndarray) -> None:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        need = self.n + len(points)
        if need > len(self._data):
            grown = np.empty((max(need, 2 * len(self._data)), 2), dtype=np.float64)
            grown[:self.n] = self._data[:self.n]
            self._data = grown
        self._data[self.n:need] = points
        self.n = need

    def clear(self) -> None:
        self.n = 0

    @property
    def x(self) -> np.ndarray:
        return self._data[:self.n, 0]

    @property
    def y(self) -> np.ndarray:
        return self._data[:self.n, 1]


class LiveCurvesWidget(QWidget):
    """Loss, metric and learning-rate curves that grow while a model trains.

    Top left: per-batch training loss (raw, faint, and exponentially smoothed) with the
    per-epoch training and validation loss. Top right: the task metric per epoch. Below: the
    learning rate of every logged step. A dotted line marks the best epoch; when the validation
    loss rises while the training loss falls, a shaded band and a note in plain words say the
    model has started to memorise the training data.

    ``set_presenter(True)`` switches to large fonts, thick lines and plain captions for a
    projector.
    """

    SMOOTHING = 0.9
    WIDE = {"batch_smooth": 2, "train_loss": 3, "val_loss": 3, "train_metric": 3,
            "val_metric": 3, "lr": 2}

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        self.note = QLabel()
        self.note.setObjectName("overfittingNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("background:#fff4d6; color:#5c4300; border:1px solid #e0b440;"
                                "border-radius:4px; padding:6px;")
        self.note.hide()
        outer.addWidget(self.note)
        grid = QGridLayout()
        grid.setSpacing(6)
        outer.addLayout(grid, 1)
        self.loss_plot = pg.PlotWidget()
        self.metric_plot = pg.PlotWidget()
        self.lr_plot = pg.PlotWidget()
        # Small enough minimums that the three fit the Train page at the window's minimum
        # size (1024x680) without overlapping; the plots grow with the window.
        for widget in (self.loss_plot, self.metric_plot):
            widget.setMinimumHeight(170)
        self.lr_plot.setMinimumHeight(100)
        self.lr_plot.setMaximumHeight(170)
        grid.addWidget(self.loss_plot, 0, 0)
        grid.addWidget(self.metric_plot, 0, 1)
        grid.addWidget(self.lr_plot, 1, 0, 1, 2)
        grid.setRowStretch(0, 1)
        lp, mp, rp = (w.getPlotItem() for w in (self.loss_plot, self.metric_plot,
                                                  self.lr_plot))
        self._add_curves(lp, mp, rp)
        self._add_markers(lp, mp)
        # Axes (and the grid they draw) are the costliest part of a repaint: keep each as a
        # cached pixmap, redrawn only when its range changes - curve updates then only blit.
        for widget in (self.loss_plot, self.metric_plot, self.lr_plot):
            for name in ("left", "bottom"):
                widget.getPlotItem().getAxis(name).setCacheMode(
                    QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.best_epoch = 0
        self._best_val = math.inf
        self.monitor, self.monitor_sign = "val_loss", 1.0
        self.overfitting: dict | None = None
        self.history: list[dict] = []
        self.buffers = {name: CurveBuffer() for name in
                        ("batch_raw", "batch_smooth", "train_loss", "val_loss", "train_metric",
                         "val_metric", "lr")}
        self._ema = math.nan
        self._ema_steps = 0
        self._lr_top = 0.0
        self._follow_loss = True
        self.loss_plot.getPlotItem().getViewBox().sigRangeChangedManually.connect(
            self._on_loss_zoomed)
        self._dirty: set[str] = set()
        self.presenter = False
        self.metric_key = "accuracy"
        self.set_metric("accuracy")
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._redraw)
        self.timer.start()

    def _add_curves(self, lp, mp, rp) -> None:
        """One curve item per series (loss per batch and per epoch, metric, rate)."""
        self.loss_legend = lp.addLegend(offset=(-10, 10), labelTextSize="11pt")
        self.batch_raw = lp.plot(pen=pg.mkPen(GREY + (90,), width=1))
        self.batch_smooth = lp.plot(pen=pg.mkPen(BLUE + (150,), width=2),
                                    name="training (per batch, smoothed)")
        self.train_loss = lp.plot(pen=pg.mkPen(BLUE, width=3), symbol="o", symbolSize=7,
                                  symbolBrush=BLUE, name="training (epoch)")
        self.val_loss = lp.plot(pen=pg.mkPen(ORANGE, width=3), symbol="s", symbolSize=7,
                                symbolBrush=ORANGE, name="validation")
        self.lr = rp.plot(pen=pg.mkPen(GREEN, width=2))
        for curve in (self.batch_raw, self.batch_smooth, self.lr):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        self.metric_legend = mp.addLegend(offset=(-10, -10), labelTextSize="11pt")
        self.train_metric = mp.plot(pen=pg.mkPen(BLUE, width=3), symbol="o", symbolSize=7,
                                    symbolBrush=BLUE, name="training")
        self.val_metric = mp.plot(pen=pg.mkPen(ORANGE, width=3), symbol="s", symbolSize=7,
                                  symbolBrush=ORANGE, name="validation")

    def _add_markers(self, lp, mp) -> None:
        """The best-epoch lines and the overfitting band, hidden until needed."""
        # Where validation loss was lowest so far: the weights kept with "keep the best epoch".
        self.best_lines = []
        for plot in (lp, mp):
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen(ORANGE + (120,), width=2,
                                                style=Qt.PenStyle.DotLine),
                                   label="best", labelOpts={"position": 0.5, "color": ORANGE,
                                                            "fill": (255, 255, 255, 220)})
            line.hide()
            plot.addItem(line, ignoreBounds=True)
            self.best_lines.append(line)
        self.overfit_band = pg.LinearRegionItem(movable=False,
                                                brush=pg.mkBrush(230, 160, 20, 40),
                                                pen=pg.mkPen(None))
        self.overfit_band.hide()
        lp.addItem(self.overfit_band, ignoreBounds=True)

    # -- appearance -----------------------------------------------------------------------------
    def _titles(self) -> dict[str, tuple[str, str, str]]:
        """(title, x label, y label) per plot, in working or presenter wording."""
        accuracy = self.metric_key == "accuracy"
        if self.presenter:
            return {
                "loss": ("Mistakes (lower is better)", "rounds through the data", "error"),
                "metric": (("Correct answers (higher is better)", "rounds through the data",
                            "correct (%)") if accuracy else
                           ("Size of mistakes (lower is better)", "rounds through the data",
                            "average error")),
                "lr": ("Step size while learning", "rounds through the data", "step size")}
        return {"loss": ("Loss", "epoch", "loss"),
                "metric": (("Accuracy", "epoch", "accuracy (%)") if accuracy else
                           ("Mean absolute error", "epoch", "MAE (target units)")),
                "lr": ("Learning rate", "epoch", "learning rate")}

    def _apply_style(self) -> None:
        big = self.presenter
        titles = self._titles()
        for key, widget in (("loss", self.loss_plot), ("metric", self.metric_plot),
                            ("lr", self.lr_plot)):
            style_plot(widget.getPlotItem(), *titles[key], scale=1.5 if big else 1.0)
        self.lr_plot.setVisible(not big)  # one idea per plot for an audience
        names = ({"batch_smooth": "practice data (live)", "train_loss":
                  "practice data", "val_loss": "new data it has not seen",
                  "train_metric": "practice data", "val_metric": "new data it has not seen"}
                 if big else
                 {"batch_smooth": "training (per batch, smoothed)", "train_loss":
                  "training (epoch)", "val_loss": "validation", "train_metric": "training",
                  "val_metric": "validation"})
        for legend in (self.loss_legend, self.metric_legend):
            for sample, label in legend.items:
                curve = sample.item
                for name, text in names.items():
                    if curve is getattr(self, name):
                        label.setText(text, size="15pt" if big else "11pt")
        factor = 2.5 if big else 1.0
        for name, width in self.WIDE.items():
            curve = getattr(self, name)
            pen = pg.mkPen(curve.opts["pen"])
            pen.setWidthF(width * factor)
            curve.setPen(pen)
            if curve.opts.get("symbol"):
                curve.setSymbolSize(13 if big else 7)
        self.batch_raw.setVisible(not big)  # the noisy raw batches only confuse an audience
        font = self.note.font()
        font.setPointSize(16 if big else 10)
        self.note.setFont(font)
        # Keep the legend out of the curves' way: accuracy rises (legend bottom right),
        # an error falls (legend top right).
        if self.metric_key == "accuracy":
            self.metric_legend.anchor(itemPos=(1, 1), parentPos=(1, 1), offset=(-10, -10))
        else:
            self.metric_legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-10, 10))

    def set_metric(self, key: str) -> None:
        """``accuracy`` (classification) or ``mae`` (regression, in the target's units)."""
        self.metric_key = key
        self._apply_style()

    def set_monitor(self, key: str, mode: str = "min") -> None:
        """The log value whose best epoch is marked (``val_loss``, or ``val_accuracy`` with
        ``mode="max"``...): the same that picks the kept weights."""
        self.monitor, self.monitor_sign = key, (-1.0 if mode == "max" else 1.0)

    def set_presenter(self, on: bool) -> None:
        """Large fonts, thick lines and plain-words captions (for a projector), or back."""
        self.presenter = bool(on)
        self._apply_style()
        self._show_overfitting()

    # -- data -----------------------------------------------------------------------------------
    def reset(self) -> None:
        for buf in self.buffers.values():
            buf.clear()
        self._ema, self._ema_steps = math.nan, 0
        self._lr_top = 0.0
        self.best_epoch, self._best_val = 0, math.inf
        self.history = []
        self.overfitting = None
        self._show_overfitting()
        for line in self.best_lines:
            line.hide()
        for widget in (self.loss_plot, self.metric_plot, self.lr_plot):
            widget.getPlotItem().enableAutoRange(x=True)
        self.loss_plot.getPlotItem().enableAutoRange(y=False)
        self._follow_loss = True
        self._dirty = set(self.buffers)
        self._redraw()

    def _fit_loss_range(self) -> None:
        """Keep every loss point in view, changing the y range only when points leave it or
        fill less than half of it: the axis (and its cached picture) stays put between."""
        names = ["batch_smooth", "train_loss", "val_loss"] + (
            [] if self.presenter else ["batch_raw"])
        values = [self.buffers[n].y for n in names if self.buffers[n].n]
        if not values:
            return
        data = np.concatenate(values)
        data = data[np.isfinite(data)]
        if not len(data):
            return
        lo, hi = float(data.min()), float(data.max())
        low, high = self.loss_plot.getPlotItem().getViewBox().viewRange()[1]
        if lo >= low and hi <= high and (hi - lo) >= 0.5 * (high - low):
            return
        pad = 0.08 * ((hi - lo) or abs(hi) or 1.0)
        self.loss_plot.getPlotItem().setYRange(max(0.0, lo - pad) if lo >= 0 else lo - pad,
                                               hi + pad, padding=0)

    def _on_loss_zoomed(self, *_) -> None:
        self._follow_loss = False  # the user zoomed or panned: leave the range to them

    def set_planned_epochs(self, epochs: int) -> None:
        """Fix the x axes to the whole run: the curves grow into a frame that stays put (and
        the axes are not laid out again on every redraw)."""
        for widget in (self.loss_plot, self.metric_plot, self.lr_plot):
            widget.getPlotItem().setXRange(0, max(1, int(epochs)) + 0.5, padding=0.02)

    def add_batches(self, points: np.ndarray) -> None:
        """Append per-batch ``(epoch position, loss[, learning rate])`` points."""
        points = np.asarray(points, dtype=np.float64)
        points = points.reshape(-1, points.shape[-1] if points.ndim == 2 else 2)
        if not len(points):
            return
        smooth = np.empty((len(points), 2))
        smooth[:, 0] = points[:, 0]
        for i, loss in enumerate(points[:, 1]):
            # Exponential moving average with TensorBoard's start-up bias correction.
            self._ema_steps += 1
            prev = 0.0 if math.isnan(self._ema) else self._ema
            self._ema = self.SMOOTHING * prev + (1 - self.SMOOTHING) * loss
            smooth[i, 1] = self._ema / (1 - self.SMOOTHING ** self._ema_steps)
        self.buffers["batch_raw"].extend(points[:, :2])
        self.buffers["batch_smooth"].extend(smooth)
        self._dirty |= {"batch_raw", "batch_smooth"}
        if points.shape[1] > 2:
            self._add_lr(points[:, [0, 2]])

    def _add_lr(self, lr: np.ndarray) -> None:
        """Learning-rate points; a rate that stays the same adds one point per epoch (the
        line still reaches the present without redrawing the plot on every batch)."""
        buf = self.buffers["lr"]
        last = (buf.x[-1], buf.y[-1]) if buf.n else (-1.0, np.nan)
        keep = []
        for x, value in lr[np.isfinite(lr[:, 1])]:
            if value != last[1] or int(x) != int(last[0]):
                keep.append((x, value))
                last = (x, value)
        if keep:
            buf.extend(np.array(keep))
            self._dirty.add("lr")

    def replay_epochs(self, history: list[dict]) -> None:
        """Draw the epochs a resumed run trained before its stop (their logs): the loss and
        metric curves, the best epoch, overfitting, and the learning rate each epoch began
        with (no per-batch points survive a stop)."""
        for logs in history:
            if logs.get("lr") is not None:
                self._add_lr(np.array([[float(logs["epoch"]) - 1.0, float(logs["lr"])]]))
            self.add_epoch(logs)

    def add_epoch(self, logs: dict) -> None:
        """Append one epoch's ``loss``, ``val_loss`` and metric values."""
        x = float(logs["epoch"])
        scale = 100.0 if self.metric_key == "accuracy" else 1.0  # accuracy reads best in %
        for key, buf, factor in (("loss", "train_loss", 1.0), ("val_loss", "val_loss", 1.0),
                                 (self.metric_key, "train_metric", scale),
                                 ("val_" + self.metric_key, "val_metric", scale)):
            if key in logs:
                self.buffers[buf].extend([(x, factor * logs[key])])
        value = logs.get(self.monitor)
        if value is not None and self.monitor_sign * value < self._best_val:
            self._best_val = self.monitor_sign * value
            self.best_epoch = int(logs["epoch"])
            for line in self.best_lines:
                line.setValue(x)
                line.show()
        self.history.append(dict(logs))
        self.overfitting = overfitting(self.history)
        self._show_overfitting()
        self._dirty |= {"train_loss", "val_loss", "train_metric", "val_metric"}

    def _show_overfitting(self) -> None:
        found = self.overfitting
        if found is None:
            self.note.hide()
            self.overfit_band.hide()
            return
        last = self.history[-1]["epoch"]
        self.overfit_band.setRegion((found["best_epoch"], last))
        self.overfit_band.show()
        if self.presenter:
            text = ("⚠ The model has started to memorise its practice data instead of "
                    "learning the pattern (overfitting): it keeps getting better on data it "
                    "has seen and worse on new data.")
        else:
            text = "⚠ " + found["message"]
        self.note.setText(text)
        self.note.show()

    def curve_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The data a curve shows (for tests and export)."""
        buf = self.buffers[name]
        return buf.x.copy(), buf.y.copy()

    def redraw_now(self) -> None:
        """Draw pending points immediately (the timer would within 50 ms)."""
        self._redraw()

    def _redraw(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for name in dirty:  # only the curves that changed: the other plots are not repainted
            buf = self.buffers[name]
            getattr(self, name).setData(buf.x, buf.y)
        if self._follow_loss and dirty & {"batch_raw", "batch_smooth", "train_loss",
                                          "val_loss"}:
            self._fit_loss_range()
        lr = self.buffers["lr"]
        # From 0, so a constant rate reads as its value, not as a flat line at "0".
        if "lr" in dirty and lr.n:
            top = float(np.nanmax(lr.y))
            if top > 0 and top != self._lr_top:
                self._lr_top = top
                self.lr_plot.getPlotItem().setYRange(0, top * 1.15, padding=0)


class BarChartWidget(pg.PlotWidget):
    """Vertical bars with category labels (class balance)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(160)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.labels: list[str] = []
        self.values: list[float] = []
        self._bars: pg.BarGraphItem | None = None

    def set_bars(self, labels: list[str], values: list[float], title: str,
                 unit: str = "rows") -> None:
        self.labels, self.values = list(labels), list(values)
        plot = self.getPlotItem()
        plot.clear()
        style_plot(plot, title, "", unit)
        plot.showGrid(x=False, y=True, alpha=0.25)
        if not labels:
            return
        x = np.arange(len(labels))
        self._bars = pg.BarGraphItem(x=x, height=values, width=0.7, brush=pg.mkBrush(BLUE))
        plot.addItem(self._bars)
        step = max(1, len(labels) // 20)
        ticks = [(i, str(labels[i])[:12]) for i in range(0, len(labels), step)]
        plot.getAxis("bottom").setTicks([ticks])
        plot.setXRange(-0.6, len(labels) - 0.4, padding=0)
        plot.setYRange(0, max(values) * 1.1 if values else 1, padding=0)

    def set_histogram(self, values: np.ndarray, title: str, bins: int = 30) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        plot = self.getPlotItem()
        plot.clear()
        style_plot(plot, title, "", "rows")
        self.labels, self.values = [], []
        if not len(values):
            return
        counts, edges = np.histogram(values, bins=bins)
        self.values = counts.tolist()
        plot.addItem(pg.PlotDataItem(edges, counts, stepMode="center", fillLevel=0,
                                     brush=pg.mkBrush(BLUE + (160,)), pen=pg.mkPen(BLUE)))
        plot.getAxis("bottom").setTicks(None)
        plot.enableAutoRange()


class ScatterPlotWidget(pg.PlotWidget):
    """Predicted against actual values, with the ideal ``y = x`` line."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(320, 280)
        style_plot(self.getPlotItem(), "Predicted vs actual", "actual", "predicted")
        self.ideal = self.plot(pen=pg.mkPen(ORANGE, width=2, style=Qt.PenStyle.DashLine))
        self.points = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(BLUE + (150,)), pen=None)
        self.addItem(self.points)

    def set_points(self, actual: np.ndarray, predicted: np.ndarray) -> None:
        actual = np.asarray(actual, np.float64)
        predicted = np.asarray(predicted, np.float64)
        self.points.setData(actual, predicted)
        if len(actual):
            lo = float(min(actual.min(), predicted.min()))
            hi = float(max(actual.max(), predicted.max()))
            self.ideal.setData([lo, hi], [lo, hi])


class ConfusionMatrixWidget(QWidget):
    """A heatmap of the confusion matrix with counts in the cells.

    Colour shows the share of each true class (row-normalised), so small classes are as visible
    as big ones; the numbers are the raw counts, or with :meth:`set_normalized` that share in
    percent. Clicking a cell emits ``cell_clicked(true, predicted)``; so does Enter (or Space)
    on the current cell, which the arrow keys move (:attr:`current`) while the matrix has
    focus. The empty cells and the grid take the theme's colours.
    """

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.labels: list[str] = []
        self.normalized = False
        self.current = (0, 0)  # the cell the keyboard is on (true, predicted)
        self.setMinimumSize(360, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        # A cell's examples must open without a mouse: Tab reaches the matrix, arrows pick.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(520, 480)

    def set_matrix(self, matrix: np.ndarray, labels: list[str]) -> None:
        self.matrix = np.asarray(matrix, dtype=np.int64)
        self.labels = [str(lab) for lab in labels]
        k = len(self.labels)
        self.current = (min(self.current[0], max(k - 1, 0)), min(self.current[1], max(k - 1, 0)))
        self.update()

    def set_normalized(self, normalized: bool) -> None:
        """Write each cell as the percentage of its true class instead of the count."""
        self.normalized = bool(normalized)
        self.update()

    def cell_text(self, i: int, j: int) -> str:
        """What cell (*i*, *j*) says: its count, or its share of row *i* in percent."""
        if not self.normalized:
            return str(self.matrix[i, j])
        total = int(self.matrix[i].sum())
        return "-" if total == 0 else f"{100 * self.matrix[i, j] / total:.0f}%"

    TITLE_BAND = 28  # room for the "True class" / "Predicted class" titles

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSize(10)
        return font

    def _label_width(self) -> int:
        metrics = QFontMetrics(self._label_font())
        widest = max((metrics.horizontalAdvance(lab) for lab in self.labels), default=20)
        return min(160, widest + 10)

    def _rotated(self) -> bool:
        return any(len(lab) > 3 for lab in self.labels)

    def _geometry(self) -> tuple[QRectF, float]:
        k = max(len(self.labels), 1)
        label_w = self._label_width()
        left = self.TITLE_BAND + label_w
        top = self.TITLE_BAND + 4
        bottom = (label_w if self._rotated() else 22) + 8
        size = max(10.0, min((self.width() - left - 12) / k, (self.height() - top - bottom) / k))
        return QRectF(left, top, size * k, size * k), size

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        k = len(self.labels)
        if k == 0 or self.matrix.shape != (k, k):
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No evaluation yet")
            return
        area, cell = self._geometry()
        totals = self.matrix.sum(axis=1, keepdims=True).clip(min=1)
        share = self.matrix / totals
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, min(12.0, cell / 3.2)))
        painter.setFont(font)
        grid = self.palette().mid().color()
        for i in range(k):
            for j in range(k):
                rect = QRectF(area.left() + j * cell, area.top() + i * cell, cell, cell)
                color = self.cell_color(i, j, float(share[i, j]))
                painter.fillRect(rect, color)
                painter.setPen(QPen(grid))
                painter.drawRect(rect)
                if cell >= 18:
                    painter.setPen(_readable_on(color))
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.cell_text(i, j))
        self._paint_focus(painter, area, cell)

        painter.setFont(self._label_font())
        painter.setPen(self.palette().text().color())
        label_w = self._label_width()
        metrics = QFontMetrics(self._label_font())
        rotated = self._rotated()
        right_mid = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for i, label in enumerate(self.labels):
            text = metrics.elidedText(label, Qt.TextElideMode.ElideRight, label_w - 8)
            y = area.top() + (i + 0.5) * cell
            painter.drawText(QRectF(self.TITLE_BAND, y - cell / 2, label_w - 6, cell),
                             right_mid, text)
            x = area.left() + (i + 0.5) * cell
            if rotated:  # read bottom-to-top, ending just under the matrix
                painter.save()
                painter.translate(x, area.bottom() + 6)
                painter.rotate(-90)
                painter.drawText(QRectF(-label_w, -cell / 2, label_w, cell), right_mid, text)
                painter.restore()
            else:
                painter.drawText(QRectF(x - cell / 2, area.bottom() + 4, cell, 20),
                                 Qt.AlignmentFlag.AlignCenter, text)

        title_font = QFont(self.font())
        title_font.setPointSize(11)
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.drawText(QRectF(area.left(), 2, area.width(), self.TITLE_BAND),
                         Qt.AlignmentFlag.AlignCenter, "Predicted class")
        painter.save()
        painter.translate(self.TITLE_BAND / 2, area.center().y())
        painter.rotate(-90)
        painter.drawText(QRectF(-area.height() / 2, -self.TITLE_BAND / 2, area.height(),
                                self.TITLE_BAND), Qt.AlignmentFlag.AlignCenter, "True class")
        painter.restore()

    #: The full colours of a right (green) and a wrong (red) cell; an empty cell is the theme's
    #: base colour, and a cell's share of its true class mixes towards the full colour.
    RIGHT, WRONG = QColor(38, 140, 64), QColor(230, 64, 64)

    def cell_color(self, i: int, j: int, share: float) -> QColor:
        """The fill of cell (*i*, *j*) holding *share* of its true class."""
        empty = self.palette().base().color()
        full = self.RIGHT if i == j else self.WRONG
        s = max(0.0, min(1.0, share)) * 0.85
        return QColor.fromRgbF(*(a + (b - a) * s for a, b in (
            (empty.redF(), full.redF()), (empty.greenF(), full.greenF()),
            (empty.blueF(), full.blueF()))))

    def _paint_focus(self, painter: QPainter, area: QRectF, cell: float) -> None:
        """A frame round the keyboard's cell while the matrix has focus."""
        if not self.hasFocus():
            return
        i, j = self.current
        rect = QRectF(area.left() + j * cell, area.top() + i * cell, cell, cell)
        painter.setPen(QPen(self.palette().highlight().color(), 3))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect.adjusted(1.5, 1.5, -1.5, -1.5))

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        k = len(self.labels)
        key = Qt.Key(event.key())
        moves = {Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0), Qt.Key.Key_Left: (0, -1),
                 Qt.Key.Key_Right: (0, 1)}
        if k and key in moves:
            di, dj = moves[key]
            i, j = self.current
            self.current = (min(max(i + di, 0), k - 1), min(max(j + dj, 0), k - 1))
            self.update()
        elif k and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.cell_clicked.emit(*self.current)
        else:
            super().keyPressEvent(event)

    def focusInEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().focusOutEvent(event)
        self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        k = len(self.labels)
        if k == 0:
            return
        area, cell = self._geometry()
        pos = event.position()
        if area.contains(pos):
            j = int((pos.x() - area.left()) // cell)
            i = int((pos.y() - area.top()) // cell)
            if 0 <= i < k and 0 <= j < k:
                self.current = (i, j)
                self.cell_clicked.emit(i, j)


def _readable_on(fill: QColor) -> QColor:
    """Near-black or white, whichever has the higher contrast ratio (WCAG) on *fill*."""
    def luminance(c: QColor) -> float:
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
               for v in (c.redF(), c.greenF(), c.blueF())]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    dark, light = QColor(30, 30, 30), QColor(255, 255, 255)
    bg = luminance(fill)
    on_dark = (bg + 0.05) / (luminance(dark) + 0.05)
    on_light = (1.05) / (bg + 0.05)
    return dark if on_dark >= on_light else light
