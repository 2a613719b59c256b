"""Metrics in plain numpy (checked against scikit-learn in the tests).

Conventions follow scikit-learn's: precision/recall/F1 of a class with no predicted (or no true)
samples is 0, and macro averages are unweighted means over all classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class *i* predicted as class *j*."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


@dataclass(frozen=True)
class ClassReport:
    """Per-class precision, recall, F1 and support, as arrays over classes."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


def per_class_report(cm: np.ndarray) -> ClassReport:
    """Precision, recall and F1 of every class from a confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    return ClassReport(precision, recall, f1, support.astype(np.int64))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
                           ) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1.

    The macro averages run over the classes that occur in the evaluated data or in the
    predictions (scikit-learn's default), so a class absent from a small test split does not
    count as a zero.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    report = per_class_report(cm)
    n = max(int(cm.sum()), 1)
    seen = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    if not seen.any():
        seen[:] = True
    return {
        "accuracy": float(np.trace(cm) / n),
        "precision_macro": float(report.precision[seen].mean()),
        "recall_macro": float(report.recall[seen].mean()),
        "f1_macro": float(report.f1[seen].mean()),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Mean absolute error, root mean squared error and R2 (coefficient of determination)."""
    y_true = np.asarray(y_true, np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, np.float64).reshape(-1)
    err = y_pred - y_true
    ss_res = float(np.sum(err ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    if ss_tot > 0:
        r2 = 1.0 - ss_res / ss_tot
    else:  # a constant target: sklearn's convention
        r2 = 1.0 if ss_res == 0 else 0.0
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "r2": float(r2),
    }
