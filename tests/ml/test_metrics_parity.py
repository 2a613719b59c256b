"""Every evaluation metric equals scikit-learn's on the same predictions, edge cases included."""

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve as sk_calibration

from ml.evaluation import metrics as m


def _problem(n=300, k=4, seed=0, absent=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    if absent is not None:
        y[y == absent] = (absent + 1) % k
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y] * rng.uniform(0, 1.5, (n, 1))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("k, absent", [(2, None), (4, None), (5, 2)])
def test_classification_metrics_equal_scikit_learns(k, absent):
    y, proba = _problem(k=k, absent=absent)
    pred = proba.argmax(axis=1)
    got = m.full_classification_metrics(y, pred, proba, k)
    labels = np.arange(k)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    for avg in ("macro", "weighted"):
        for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                         ("f1", skm.f1_score)):
            assert got[f"{name}_{avg}"] == pytest.approx(fn(y, pred, average=avg,
                                                            zero_division=0)), (name, avg)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=labels))
    present = np.unique(y)
    if k == 2:
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
        assert got["average_precision"] == pytest.approx(
            skm.average_precision_score(y, proba[:, 1]))
    else:
        # scikit-learn's one-vs-rest macro over the classes that occur
        onehot = (y[:, None] == present[None, :]).astype(int)
        assert got["roc_auc"] == pytest.approx(
            skm.roc_auc_score(onehot, proba[:, present], average="macro"))
        assert got["average_precision"] == pytest.approx(
            skm.average_precision_score(onehot, proba[:, present], average="macro"))
        kk = min(3, k - 1)
        assert got[f"top{kk}_accuracy"] == pytest.approx(
            skm.top_k_accuracy_score(y, proba, k=kk, labels=labels))


def test_curves_equal_scikit_learns():
    y, proba = _problem(k=2, seed=3)
    score = np.round(proba[:, 1], 2)  # ties, as real scores have
    fpr, tpr, thr = m.roc_curve(y, score)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, score, drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr)
    assert np.allclose(thr[1:], sk_thr[1:])
    p, r, t = m.precision_recall_curve(y, score)
    sk_p, sk_r, sk_t = skm.precision_recall_curve(y, score)
    assert np.allclose(p, sk_p) and np.allclose(r, sk_r) and np.allclose(t, sk_t)
    true, pred, counts = m.calibration_curve(y, proba[:, 1], n_bins=8)
    sk_true, sk_pred = sk_calibration(y, proba[:, 1], n_bins=8)
    assert np.allclose(true, sk_true) and np.allclose(pred, sk_pred)
    assert counts.sum() == len(y)


def test_a_threshold_moves_binary_predictions():
    y, proba = _problem(k=2, seed=5)
    strict = m.with_threshold(proba, 0.9)
    loose = m.with_threshold(proba, 0.1)
    assert strict.sum() < (proba[:, 1] >= 0.5).sum() < loose.sum()
    assert np.array_equal(m.with_threshold(proba, 0.5), (proba[:, 1] >= 0.5).astype(int))
    recall = m.full_classification_metrics(y, loose, proba, 2)["recall_macro"]
    assert recall == pytest.approx(skm.recall_score(y, loose, average="macro"))


def test_regression_metrics_equal_scikit_learns_including_a_constant_target():
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 200)
    pred = y + rng.normal(0, 1, 200)
    got = m.regression_metrics(y, pred)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    const = np.full(20, 4.0)
    for guess in (const, const + 1):
        got = m.regression_metrics(const, guess)
        assert got["r2"] == pytest.approx(skm.r2_score(const, guess))
    zeros = np.zeros(5)
    assert m.mape(zeros, zeros + 1) == pytest.approx(
        skm.mean_absolute_percentage_error(zeros, zeros + 1))


def test_examples_for_the_workbench_are_sorted_by_confidence():
    y = np.array([0, 0, 1, 1, 2])
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.6, 0.3],
                      [0.95, 0.03, 0.02], [0.3, 0.6, 0.1]])
    assert m.most_confident_mistakes(y, proba).tolist() == [3, 1, 4]
    assert m.cell_examples(y, proba, 0, 1).tolist() == [1]
    assert m.cell_examples(y, proba, 1, 1).tolist() == [2]
    assert m.largest_errors(np.array([1.0, 5.0, 2.0]), np.array([1.5, 1.0, 2.0])).tolist() \
        == [1, 0, 2]
