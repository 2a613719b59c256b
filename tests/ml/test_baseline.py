"""A headline metric is never read alone: the score of ignoring the inputs stands beside it."""

import numpy as np
import pytest

from ml.evaluation.baseline import baseline_of, headline_notes, rare_class_sentence
from ml.evaluation.evaluate import Evaluation


def churn(caught: int, alarms: int, n_yes: int = 106, n_no: int = 644) -> Evaluation:
    """A two-class evaluation: *caught* of the *n_yes* churners found, *alarms* false alarms."""
    y = np.r_[np.ones(n_yes, int), np.zeros(n_no, int)]
    pred = np.r_[np.ones(caught, int), np.zeros(n_yes - caught, int),
                 np.ones(alarms, int), np.zeros(n_no - alarms, int)]
    return Evaluation("classification", "test split", y, pred, None, ["no", "yes"], {},
                      target="churn")


def test_a_model_barely_better_than_always_no_is_a_warning():
    ev = churn(caught=20, alarms=14)  # 86.8% right, 85.9% by always answering "no"
    base = baseline_of(ev)
    assert base.metric == "accuracy" and base.value == pytest.approx(644 / 750)
    assert base.model == pytest.approx((20 + 630) / 750)
    assert base.close and base.rule == "always answering “no”"
    assert base.text().startswith("Warning: always answering “no” would already score 85.9%")
    assert "only 0.8 points better" in base.text()


def test_a_model_clearly_better_is_compared_without_a_warning():
    base = baseline_of(churn(caught=90, alarms=10))
    assert not base.close
    assert base.text() == "For comparison, always answering “no” would score 85.9%."


def test_a_model_no_better_says_it_has_learned_nothing():
    text = baseline_of(churn(caught=0, alarms=0)).text()
    assert "as good as this model" in text and "learned nothing" in text


def test_imbalanced_two_classes_lead_with_the_rare_class_caught():
    ev = churn(caught=65, alarms=30)
    assert rare_class_sentence(ev) == ("Of 106 rows where churn is “yes”, it caught 65 (61%) "
                                       "and raised 30 false alarms among the other 644.")
    notes = headline_notes(ev)
    assert notes[0].startswith("Of 106 rows") and "would score" in notes[1]


def test_balanced_or_many_classes_have_no_rare_class_sentence():
    assert rare_class_sentence(churn(caught=50, alarms=20, n_yes=100, n_no=100)) == ""
    y = np.array([0, 1, 2, 2])
    ev = Evaluation("classification", "t", y, y, None, ["a", "b", "c"], {})
    assert rare_class_sentence(ev) == ""
    assert baseline_of(ev).value == 0.5 and not baseline_of(ev).close


def test_regression_compares_with_predicting_the_training_mean():
    y = np.array([10.0, 20.0, 30.0, 40.0])
    good = Evaluation("regression", "t", y, y + 1, None, [], {}, target_mean=25.0)
    base = baseline_of(good)
    assert base.metric == "mae" and base.value == pytest.approx(10.0) and base.model == 1.0
    assert not base.close and "training average (25)" in base.text()
    poor = Evaluation("regression", "t", y, np.full(4, 26.0), None, [], {}, target_mean=25.0)
    assert baseline_of(poor).close and baseline_of(poor).text().startswith("Warning:")


def test_an_empty_set_has_no_baseline():
    ev = Evaluation("classification", "t", np.zeros(0, int), np.zeros(0, int), None,
                    ["a", "b"], {})
    assert baseline_of(ev) is None and headline_notes(ev) == []


def test_an_evaluated_run_knows_its_target_and_training_mean():
    """evaluation_from_predictions fills in what the sentences need from the preprocessor."""
    from ml.data.preprocessing import Preprocessor
    from ml.evaluation.evaluate import evaluation_from_predictions

    pre = Preprocessor(task="regression", target="price", columns=[], input_shape=[1],
                       target_mean=12.5)
    ev = evaluation_from_predictions(pre, np.array([0.0]), np.array([1.0]), None)
    assert ev.target == "price" and ev.target_mean == 12.5 and ev.unit == "rows"
    pre = Preprocessor(task="classification", target="label", columns=[], input_shape=[1],
                       kind="image", class_names=["cat", "dog"])
    ev = evaluation_from_predictions(pre, np.array([0, 1]), np.array([0, 1]), None)
    assert ev.unit == "images" and ev.target == ""


def test_a_class_the_model_never_answers_is_a_warning_with_what_to_try():
    from ml.evaluation.baseline import never_predicted, never_predicted_sentence

    ev = churn(caught=0, alarms=0)  # always "no"
    assert never_predicted(ev) == ["yes"]
    assert never_predicted_sentence(ev) == (
        "Warning: the model never answers “yes” (106 of these rows). Try class weights "
        "“balanced” on the Training tab or a lower decision threshold.")
    assert any(n.startswith("Warning: the model never answers") for n in headline_notes(ev))
    y = np.array([0, 1, 2, 2, 1])
    pred = np.array([0, 1, 1, 1, 1])  # "c" is there twice and never answered
    three = Evaluation("classification", "t", y, pred, None, ["a", "b", "c"], {})
    assert never_predicted(three) == ["c"]
    assert never_predicted_sentence(three).endswith("on the Training tab.")
    assert never_predicted_sentence(churn(caught=50, alarms=20)) == ""
