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
        "mape": mape(y_true, y_pred),
    }


# -- probabilities: ranking, calibration, thresholds ---------------------------------------------
def _binary_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest first (as
    scikit-learn's ``_binary_clf_curve``)."""
    order = np.argsort(-score, kind="mergesort")
    score, y = score[order], y[order]
    distinct = np.flatnonzero(np.diff(score)) if len(score) > 1 else np.zeros(0, np.int64)
    ends = np.r_[distinct, len(y) - 1]
    tps = np.cumsum(y)[ends].astype(np.float64)
    fps = (1 + ends - tps).astype(np.float64)
    return fps, tps, score[ends]


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every threshold, from (0, 0), and the thresholds.

    *y* is 1 for the positive class and 0 otherwise. A set without positives (or negatives)
    gives NaN rates on that axis, as scikit-learn does (with a warning there).
    """
    y = np.asarray(y).astype(np.int64).reshape(-1)
    fps, tps, thresholds = _binary_curve(y, np.asarray(score, np.float64).reshape(-1))
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds]
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = fps / fps[-1] if fps[-1] > 0 else np.full_like(fps, np.nan)
        tpr = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, np.nan)
    return fpr, tpr, thresholds


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (x monotonic)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("nan")
    area = float(np.trapezoid(y, x))
    return -area if area < 0 else area


def precision_recall_curve(y: np.ndarray, score: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every threshold, ending at recall 0 and precision 1 (as
    scikit-learn orders them: decreasing recall), and the thresholds (increasing)."""
    y = np.asarray(y).astype(np.int64).reshape(-1)
    fps, tps, thresholds = _binary_curve(y, np.asarray(score, np.float64).reshape(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tps + fps > 0, tps / (tps + fps), 0.0)
        recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as a step function (scikit-learn's
    ``average_precision_score``): the mean of precisions at each recall step."""
    precision, recall, _ = precision_recall_curve(y, score)
    if not np.asarray(y).any():
        return float("nan")
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def one_vs_rest(y_true: np.ndarray, proba: np.ndarray, fn) -> list[float]:
    """*fn* of every class against the rest (NaN for a class absent from *y_true*)."""
    y_true = np.asarray(y_true, np.int64)
    out = []
    for c in range(proba.shape[1]):
        positives = y_true == c
        if positives.all() or not positives.any():
            out.append(float("nan"))
        else:
            out.append(float(fn(positives.astype(np.int64), proba[:, c])))
    return out


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC: of the positive class for two classes, else the unweighted mean over classes
    one-vs-rest (scikit-learn's ``multi_class="ovr", average="macro"``), over the classes
    present in *y_true*."""
    proba = np.asarray(proba, np.float64)
    if proba.shape[1] == 2:
        return one_vs_rest(y_true, proba, lambda y, s: auc(*roc_curve(y, s)[:2]))[1]
    values = one_vs_rest(y_true, proba, lambda y, s: auc(*roc_curve(y, s)[:2]))
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def log_loss(y_true: np.ndarray, proba: np.ndarray, eps: float | None = None) -> float:
    """Mean negative log probability of the true class (probabilities clipped away from 0)."""
    proba = np.asarray(proba, np.float64)
    eps = np.finfo(proba.dtype).eps if eps is None else eps
    p = np.clip(proba[np.arange(len(proba)), np.asarray(y_true, np.int64)], eps, 1.0)
    return float(-np.mean(np.log(p)))


def top_k_accuracy(y_true: np.ndarray, proba: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the *k* most probable."""
    proba = np.asarray(proba, np.float64)
    k = min(int(k), proba.shape[1])
    top = np.argpartition(-proba, k - 1, axis=1)[:, :k]
    return float(np.mean((top == np.asarray(y_true, np.int64)[:, None]).any(axis=1)))


def calibration_curve(y: np.ndarray, prob: np.ndarray, n_bins: int = 10
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability: for equal-width bins of predicted probability, the observed share of
    positives, the mean predicted probability and the count (empty bins left out), as
    scikit-learn's ``calibration_curve(strategy="uniform")``."""
    y = np.asarray(y, np.float64).reshape(-1)
    prob = np.asarray(prob, np.float64).reshape(-1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], prob)
    total = np.bincount(ids, minlength=n_bins)
    keep = total > 0
    true = np.bincount(ids, weights=y, minlength=n_bins)[keep] / total[keep]
    pred = np.bincount(ids, weights=prob, minlength=n_bins)[keep] / total[keep]
    return true, pred, total[keep]


def with_threshold(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Binary predictions when class 1 needs a probability of at least *threshold*."""
    return (np.asarray(proba)[:, 1] >= threshold).astype(np.int64)


def operating_point(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """Where deciding "positive" from *score* >= *threshold* sits on the ROC and precision-recall
    curves: true and false positive rates, precision and recall (*y* is 1 for positives).

    A rate without its denominator is NaN (as on the curves); precision with no positive
    prediction is 1, where the precision-recall curve ends.
    """
    y = np.asarray(y).astype(bool).reshape(-1)
    said = np.asarray(score, np.float64).reshape(-1) >= threshold
    tp, fp = float(np.sum(said & y)), float(np.sum(said & ~y))
    positives, negatives = float(y.sum()), float((~y).sum())
    tpr = tp / positives if positives else float("nan")
    return {"threshold": float(threshold), "tpr": tpr,
            "fpr": fp / negatives if negatives else float("nan"),
            "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tpr}


def full_classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                                n_classes: int) -> dict[str, float]:
    """Everything the Evaluate page reports for classes: :func:`classification_metrics` plus
    balanced accuracy, weighted precision/recall/F1, top-k accuracy, log loss, ROC AUC and
    average precision (the last four need *proba*)."""
    y_true = np.asarray(y_true, np.int64)
    out = classification_metrics(y_true, y_pred, n_classes)
    cm = confusion_matrix(y_true, y_pred, n_classes)
    report = per_class_report(cm)
    present = report.support > 0
    out["balanced_accuracy"] = float(report.recall[present].mean()) if present.any() else 0.0
    weights = report.support / max(report.support.sum(), 1)
    for name, values in (("precision", report.precision), ("recall", report.recall),
                         ("f1", report.f1)):
        out[f"{name}_weighted"] = float(np.sum(values * weights))
    if proba is not None and len(y_true):
        out["log_loss"] = log_loss(y_true, proba)
        if n_classes > 2:
            out[f"top{min(3, n_classes - 1)}_accuracy"] = top_k_accuracy(
                y_true, proba, min(3, n_classes - 1))
        out["roc_auc"] = roc_auc(y_true, proba)
        aps = one_vs_rest(y_true, np.asarray(proba, np.float64), average_precision)
        out["average_precision"] = (aps[1] if n_classes == 2 else
                                    float(np.nanmean(aps)) if np.isfinite(aps).any()
                                    else float("nan"))
    return out


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error as a fraction (0.1 = 10%), as scikit-learn computes it
    (a true value of 0 is divided by machine epsilon, so it shows as huge, not infinite)."""
    y_true = np.asarray(y_true, np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, np.float64).reshape(-1)
    denom = np.maximum(np.abs(y_true), np.finfo(np.float64).eps)
    return float(np.mean(np.abs(y_pred - y_true) / denom))


def most_confident_mistakes(y_true: np.ndarray, proba: np.ndarray, limit: int = 50
                            ) -> np.ndarray:
    """Rows predicted wrongly, the most confident (highest predicted probability) first."""
    proba = np.asarray(proba, np.float64)
    pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(pred != np.asarray(y_true, np.int64))
    confidence = proba[wrong, pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:limit]


def cell_examples(y_true: np.ndarray, proba: np.ndarray, true_class: int, predicted: int,
                  pred: np.ndarray | None = None) -> np.ndarray:
    """Rows of one confusion-matrix cell, the model's most confident first (*pred*: the
    predictions when they are not the most probable class, e.g. after a threshold)."""
    proba = np.asarray(proba, np.float64)
    pred = proba.argmax(axis=1) if pred is None else np.asarray(pred)
    rows = np.flatnonzero((np.asarray(y_true, np.int64) == true_class) & (pred == predicted))
    return rows[np.argsort(-proba[rows, predicted], kind="stable")]


def largest_errors(y_true: np.ndarray, y_pred: np.ndarray, limit: int = 50) -> np.ndarray:
    """Regression rows with the largest absolute error, largest first."""
    err = np.abs(np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)).reshape(-1)
    return np.argsort(-err, kind="stable")[:limit]
