import numpy as np
import pytest
from sklearn import metrics as skm

from ml.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    per_class_report,
    regression_metrics,
)


@pytest.mark.parametrize("seed, k", [(0, 2), (1, 3), (2, 10)])
def test_classification_metrics_match_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, k, 300))
    pred[pred == k - 1] = 0  # one class never predicted: the zero-division convention matters
    ours = classification_metrics(y, pred, k)
    labels = list(range(k))
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    for name, fn in (("precision_macro", skm.precision_score), ("recall_macro", skm.recall_score),
                     ("f1_macro", skm.f1_score)):
        assert ours[name] == pytest.approx(fn(y, pred, average="macro", zero_division=0))
    cm = confusion_matrix(y, pred, k)
    assert np.array_equal(cm, skm.confusion_matrix(y, pred, labels=labels))
    report = per_class_report(cm)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    assert np.allclose(report.precision, p) and np.allclose(report.recall, r)
    assert np.allclose(report.f1, f) and np.array_equal(report.support, s)


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(5)
    y = rng.normal(50, 10, 200)
    pred = y + rng.normal(0, 3, 200)
    ours = regression_metrics(y, pred)
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert ours["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert ours["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_a_class_absent_from_the_test_split_does_not_count_as_zero():
    y = np.array([0, 0, 1, 1, 1])
    pred = np.array([0, 1, 1, 1, 1])
    ours = classification_metrics(y, pred, n_classes=3)  # class 2 exists, but not here
    assert ours["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert ours["f1_macro"] > 0.7
