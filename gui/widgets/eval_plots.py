"""Evaluation plots: ROC and precision-recall curves with their areas, a reliability
(calibration) plot, and for numbers the residuals - all computed by :mod:`ml.evaluation.metrics`
(checked against scikit-learn), drawn here."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ml.evaluation import metrics as m

from .plots import BLUE, GREY, ORANGE, BarChartWidget, style_plot
from .runs_panel import PALETTE


class CurvesPanel(QWidget):
    """ROC, precision-recall and reliability plots of a classification evaluation.

    Two classes: the curves of the second class (the "positive" one). More: one curve per
    class against the rest, and reliability of the top prediction's confidence.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.roc = pg.PlotWidget()
        self.pr = pg.PlotWidget()
        self.calibration = pg.PlotWidget()
        row = QHBoxLayout()
        for widget in (self.roc, self.pr, self.calibration):
            widget.setMinimumSize(260, 240)
            widget.setMouseEnabled(x=False, y=False)
            row.addWidget(widget)
        self.caption = QLabel("")
        self.caption.setObjectName("curvesCaption")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(self.caption)
        self.areas: dict[str, list[float]] = {}

    def set_evaluation(self, ev) -> None:
        for widget in (self.roc, self.pr, self.calibration):
            widget.getPlotItem().clear()
            legend = widget.getPlotItem().legend
            if legend is not None:
                legend.clear()
        self.areas = {"roc": [], "pr": []}
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
        self.caption.setText(
            f"{auc_text}. Reliability of {what}: on average it is {100 * gap:.1f} points away "
            f"from how often the model is right (0 = perfectly calibrated; points on the "
            f"dashed line).")


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
