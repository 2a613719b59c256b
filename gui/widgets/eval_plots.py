"""Evaluation plots: ROC and precision-recall curves with their areas, a reliability
(calibration) plot, and for numbers the residuals - all computed by :mod:`ml.evaluation.metrics`
(checked against scikit-learn), drawn here."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ml.evaluation import metrics as m

from .plots import BLUE, GREY, ORANGE, BarChartWidget, style_plot
from .runs_panel import PALETTE


class CurvesPanel(QWidget):
    """ROC, precision-recall and reliability plots of a classification evaluation.

    Two classes: the curves of the second class (the "positive" one), with the decision
    threshold's operating point marked on ROC and precision-recall (:meth:`set_threshold`).
    More: one curve per class against the rest, and reliability of the top prediction's
    confidence.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.roc = pg.PlotWidget()
        self.pr = pg.PlotWidget()
        self.calibration = pg.PlotWidget()
        row = QHBoxLayout()
        for widget in (self.roc, self.pr, self.calibration):
            widget.setMinimumSize(200, 240)  # three side by side at the minimum window size
            widget.setMouseEnabled(x=False, y=False)
            row.addWidget(widget)
        self.caption = QLabel("")
        self.caption.setObjectName("curvesCaption")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(self.caption)
        self.areas: dict[str, list[float]] = {}
        #: Two classes: where the decision threshold sits (see ml.evaluation.metrics).
        self.operating: dict[str, float] | None = None
        self._binary: tuple[np.ndarray, np.ndarray] | None = None
        self._summary = self._positive = ""
        self._marks: tuple[pg.ScatterPlotItem, pg.ScatterPlotItem] | None = None

    def set_evaluation(self, ev) -> None:
        for widget in (self.roc, self.pr, self.calibration):
            widget.getPlotItem().clear()
            legend = widget.getPlotItem().legend
            if legend is not None:
                legend.clear()
        self.areas = {"roc": [], "pr": []}
        self._binary = self._marks = self.operating = None
        if ev is None or ev.task != "classification" or ev.proba is None:
            self.caption.setText("")
            return
        rp, pp, cp = (w.getPlotItem() for w in (self.roc, self.pr, self.calibration))
        style_plot(rp, "ROC curve", "false positive rate", "true positive rate")
        style_plot(pp, "Precision-recall", "recall", "precision")
        style_plot(cp, "Reliability", "predicted probability", "observed share")
        for plot in (rp, pp, cp):
            plot.setXRange(0, 1, padding=0.02)
            plot.setYRange(0, 1, padding=0.02)
        if rp.legend is None:
            rp.addLegend(offset=(-10, -10), labelTextSize="9pt")
        rp.legend.anchor(itemPos=(1, 1), parentPos=(1, 1), offset=(-10, -10))
        diagonal = pg.mkPen(GREY, width=1, style=Qt.PenStyle.DashLine)
        rp.plot([0, 1], [0, 1], pen=diagonal)
        cp.plot([0, 1], [0, 1], pen=diagonal)
        k = ev.proba.shape[1]
        classes = [1] if k == 2 else list(range(k))
        for i, c in enumerate(classes[:len(PALETTE) * 2]):
            positives = (ev.y_true == c).astype(np.int64)
            if not positives.any() or positives.all():
                continue  # a class absent from the evaluated rows has no curve
            pen = pg.mkPen(PALETTE[i % len(PALETTE)], width=2.5)
            fpr, tpr, _ = m.roc_curve(positives, ev.proba[:, c])
            area = m.auc(fpr, tpr)
            self.areas["roc"].append(area)
            rp.plot(fpr, tpr, pen=pen, name=f"{ev.class_names[c]} (AUC {area:.3f})")
            precision, recall, _ = m.precision_recall_curve(positives, ev.proba[:, c])
            self.areas["pr"].append(m.average_precision(positives, ev.proba[:, c]))
            pp.plot(recall, precision, pen=pen, stepMode=None)
        if k == 2:
            true, pred, counts = m.calibration_curve(ev.y_true == 1, ev.proba[:, 1])
            what = f"the probability of {ev.class_names[1]}"
        else:
            confidence = ev.proba.max(axis=1)
            true, pred, counts = m.calibration_curve(ev.y_pred == ev.y_true, confidence)
            what = "the top prediction's probability"
        cp.plot(pred, true, pen=pg.mkPen(BLUE, width=3), symbol="o", symbolSize=8,
                symbolBrush=BLUE)
        gap = float(np.sum(counts * np.abs(true - pred)) / max(counts.sum(), 1))
        self.expected_calibration_error = gap
        auc_text = (f"ROC AUC {self.areas['roc'][0]:.3f}, average precision "
                    f"{self.areas['pr'][0]:.3f}" if k == 2 and self.areas["roc"] else
                    f"mean ROC AUC {np.mean(self.areas['roc']):.3f} over "
                    f"{len(self.areas['roc'])} classes, one against the rest"
                    if self.areas["roc"] else "no curves: one class only")
        self._summary = (
            f"{auc_text}. Reliability of {what}: on average it is {100 * gap:.1f} points away "
            f"from how often the model is right (0 = perfectly calibrated; points on the "
            f"dashed line).")
        if k == 2 and self.areas["roc"]:
            self._binary = (ev.y_true == 1, ev.proba[:, 1])
            self._positive = html.escape(str(ev.class_names[1]))
            self._marks = self._add_marks(rp, pp)
        self.set_threshold(getattr(ev, "threshold", None))

    @staticmethod
    def _add_marks(rp: pg.PlotItem, pp: pg.PlotItem
                   ) -> tuple[pg.ScatterPlotItem, pg.ScatterPlotItem]:
        """The operating point's dot on the ROC and precision-recall plots."""
        marks = []
        for plot in (rp, pp):
            dot = pg.ScatterPlotItem(size=14, symbol="o", brush=pg.mkBrush(ORANGE),
                                     pen=pg.mkPen((110, 55, 0), width=2))
            dot.setZValue(10)  # over the curve it sits on
            plot.addItem(dot)
            marks.append(dot)
        return marks[0], marks[1]

    def set_threshold(self, threshold: float | None) -> None:
        """Two classes: mark where deciding at *threshold* sits on the ROC and
        precision-recall curves, and say it in the caption."""
        if self._binary is None or self._marks is None or threshold is None:
            self.operating = None
            self.caption.setText(self._summary)
            return
        point = m.operating_point(*self._binary, threshold)
        self.operating = point
        roc, pr = self._marks
        roc.setData([point["fpr"]], [point["tpr"]])
        pr.setData([point["recall"]], [point["precision"]])
        pos = self._positive
        self.caption.setText(
            f"<b>Orange dot</b>: deciding at the threshold {threshold:.2f}, it finds "
            f"{100 * point['tpr']:.0f}% of the {pos} examples, takes {100 * point['fpr']:.0f}% "
            f"of the others for {pos}, and is right {100 * point['precision']:.0f}% of the "
            f"times it says {pos}. {self._summary}")


class ResidualsPanel(QWidget):
    """Errors of a regression: a histogram of residuals and residuals against the
    prediction (a pattern there means the model is wrong in a systematic way)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.histogram = BarChartWidget()
        self.scatter = pg.PlotWidget()
        self.scatter.setMinimumSize(300, 240)
        style_plot(self.scatter.getPlotItem(), "Residuals vs predicted", "predicted",
                   "predicted - actual")
        self.zero = self.scatter.plot(pen=pg.mkPen(ORANGE, width=2, style=Qt.PenStyle.DashLine))
        self.points = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(BLUE + (140,)), pen=None)
        self.scatter.addItem(self.points)
        layout = QHBoxLayout(self)
        layout.addWidget(self.histogram)
        layout.addWidget(self.scatter)
        self.residuals = np.zeros(0)

    def set_evaluation(self, ev) -> None:
        if ev is None or ev.task != "regression":
            self.residuals = np.zeros(0)
            self.points.setData([], [])
            self.histogram.set_histogram(np.zeros(0), "Residuals")
            return
        pred = np.asarray(ev.y_pred, np.float64)
        self.residuals = pred - np.asarray(ev.y_true, np.float64)
        self.histogram.set_histogram(self.residuals, "Residuals (predicted - actual)")
        self.points.setData(pred, self.residuals)
        if len(pred):
            self.zero.setData([float(pred.min()), float(pred.max())], [0.0, 0.0])


class ImportanceChart(pg.PlotWidget):
    """Feature importance as horizontal bars, most important on top: the column names in full
    on the category axis (so they cannot run together), the score drop on the value axis with
    its spread over the repeats as whiskers, and as many bars as the height can label."""

    ROW_PX = 20  # the height one readable name needs
    NAME_CHARS = 40  # longer names are cut with "…" (the full name is in the tooltip)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(200)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.labels: list[str] = []  # the names shown, top to bottom
        self.values: list[float] = []
        self.value_label = ""
        self._data: tuple[list[str], list[float], list[float], str, str] | None = None
        self.set_importance([], [], [], "", "Feature importance")

    def set_importance(self, names: list[str], values, spread, value_label: str,
                       title: str) -> None:
        """Bars for *values* (one per column of *names*, any order: they are sorted here),
        whiskers of *spread*, the value axis titled *value_label*."""
        self._data = (list(names), [float(v) for v in values], [float(v) for v in spread],
                      value_label, title)
        self._draw()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        data = getattr(self, "_data", None)  # pyqtgraph resizes before __init__ is done
        if data is not None and min(len(data[0]), self._fits()) != len(self.labels):
            self._draw()  # more (or fewer) names fit now

    def _fits(self) -> int:
        return max(3, (self.height() - 110) // self.ROW_PX)

    def _draw(self) -> None:
        names, values, spread, value_label, title = self._data
        order = sorted(range(len(names)), key=lambda i: -values[i])  # stable: ties keep order
        shown = order[:self._fits()]
        plot = self.getPlotItem()
        plot.clear()
        if len(shown) < len(names):
            title = f"{title}: the {len(shown)} of {len(names)} columns that matter most"
        style_plot(plot, title, value_label, "")
        plot.showGrid(x=True, y=False, alpha=0.25)
        plot.invertY(True)  # the most important on top
        self.labels = [names[i] for i in shown]
        self.values = [values[i] for i in shown]
        self.value_label = value_label
        axis = plot.getAxis("left")
        if not shown:
            axis.setTicks([[]])
            return
        self._add_bars(plot, [spread[i] for i in shown])
        cut = [n if len(n) <= self.NAME_CHARS else n[:self.NAME_CHARS - 1] + "…"
               for n in self.labels]
        axis.setTicks([list(enumerate(cut))])
        font = QFont()
        font.setPointSize(11)  # style_plot's tick font
        axis.setWidth(min(320, max(QFontMetrics(font).horizontalAdvance(n) for n in cut) + 16))
        self.setToolTip("\n".join(f"{n}: {v:.3g}" for n, v in zip(self.labels, self.values)))

    def _add_bars(self, plot: pg.PlotItem, spread: list[float]) -> None:
        y = np.arange(len(self.values), dtype=np.float64)
        x = np.asarray(self.values, np.float64)
        err = np.asarray(spread, np.float64)
        # Grey: shuffling the column did not lower the score (the model ignores it).
        brushes = [pg.mkBrush(BLUE) if v > 0 else pg.mkBrush(GREY) for v in x]
        plot.addItem(pg.BarGraphItem(x0=np.zeros_like(x), y=y, width=x, height=0.7,
                                     brushes=brushes, pen=None))
        plot.addItem(pg.ErrorBarItem(x=x, y=y, left=err, right=err, beam=0.25,
                                     pen=pg.mkPen(GREY, width=1.5)))
        plot.addItem(pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen(GREY, width=1)))
        lo = min(0.0, float((x - err).min()))
        hi = max(float((x + err).max()), 0.0)
        plot.setXRange(lo, hi if hi > lo else lo + 1, padding=0.05)
        plot.setYRange(-0.6, len(x) - 0.4, padding=0)
