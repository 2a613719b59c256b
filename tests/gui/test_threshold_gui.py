"""The Evaluate page's decision threshold is saved with the run and followed by Try it, the
Export page and its code snippet; the ROC and precision-recall plots mark its operating point."""

from __future__ import annotations

import numpy as np
import pytest

from ml.evaluation.metrics import operating_point, roc_curve
from ml.runs.folder import load_run
from tests.gui.test_train_extras import _evaluated


def test_the_threshold_is_saved_marked_and_followed_everywhere(qtbot, window, user):
    page = _evaluated(qtbot, window, "breast_cancer", epochs=3)
    run_path = str(window.state.current_run.path)
    assert page.threshold_slider.value() == 50 and "0.50" in page.threshold_note.text()
    assert load_run(run_path).threshold == 0.5  # a fresh run decides at the default

    page.threshold_slider.setValue(80)
    ev = page.evaluation
    assert ev.threshold == 0.8
    assert np.array_equal(ev.y_pred, (ev.proba[:, 1] >= 0.8).astype(int))
    assert window.state.current_run.evaluation.threshold == 0.8  # coming back shows it
    qtbot.waitUntil(lambda: load_run(run_path).threshold == 0.8, timeout=5_000)
    assert "0.80" in page.threshold_note.text() and "Saved" in page.threshold_note.text()

    # The operating point sits on the ROC curve, where the threshold says.
    page.class_tabs.setCurrentIndex(1)
    point = page.curves.operating
    assert point == operating_point(ev.y_true == 1, ev.proba[:, 1], 0.8)
    fpr, tpr, thresholds = roc_curve(ev.y_true == 1, ev.proba[:, 1])
    at = np.flatnonzero(thresholds >= 0.8)[-1]
    assert (point["fpr"], point["tpr"]) == pytest.approx((fpr[at], tpr[at]))
    assert "threshold 0.80" in page.curves.caption.text()

    # Try it decides there too, and follows a new choice at once.
    tryit = page.show_try_it()
    qtbot.waitUntil(lambda: tryit.predictor is not None, timeout=30_000)
    assert tryit.predictor.threshold == 0.8
    assert tryit.threshold_note.isVisibleTo(tryit) and "0.80" in tryit.threshold_note.text()
    qtbot.waitUntil(lambda: tryit.prediction is not None, timeout=30_000)
    page.page_tabs.setCurrentIndex(0)
    page.threshold_slider.setValue(30)
    page.save_threshold()  # what the timer does a moment later
    assert load_run(run_path).threshold == 0.3
    assert tryit.predictor.threshold == 0.3 and "0.30" in tryit.threshold_note.text()
    qtbot.waitUntil(lambda: tryit.prediction.threshold == 0.3, timeout=30_000)

    # The Export page says it and its snippet decides there.
    window.go_to(4)
    export = window.export_page
    assert export.decision_label.isVisibleTo(export)
    assert "0.30" in export.decision_label.text()
    assert "threshold = 0.3" in export.code_view.toPlainText()

    # A new evaluation of the run (as after a restart) starts the slider at the saved value.
    window.go_to(3)
    page.split_combo.setCurrentIndex(1)
    page.evaluate_current()
    qtbot.waitUntil(lambda: page.evaluation.source == "validation split", timeout=30_000)
    assert page.threshold_slider.value() == 30 and page.evaluation.threshold == 0.3
