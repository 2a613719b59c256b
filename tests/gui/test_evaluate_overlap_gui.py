"""The Evaluate page says what the evaluated rows were used for, as ml counted it."""

from pathlib import Path

from tests.gui.test_export_extras import _train_iris

IRIS = Path(__file__).resolve().parents[2] / "resources" / "samples" / "iris.csv"


def test_the_training_file_is_not_called_unused(qtbot, window, user):
    current = _train_iris(qtbot, window, epochs=2)
    rows = current.evaluation.n
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    assert f"{rows} rows never used for training or to pick the best epoch" in \
        page.source_label.text()
    user.open_paths.append(str(IRIS))
    page.file_button.click()
    qtbot.waitUntil(lambda: page.evaluation is not None and page.evaluation.source == "iris.csv",
                    timeout=30_000)
    text = page.source_label.text()
    assert "on the <b>iris.csv</b>: 150 rows: " in text
    assert "were used for training and" in text and "so these scores are optimistic" in text
    assert "never used for training" not in text
    assert page.evaluation.overlap["train"] + page.evaluation.overlap["val"] == 150 - rows
    # The "On:" box names the file, and choosing the test split again shows the split.
    combo = page.split_combo
    assert combo.currentText() == "File: iris.csv" and combo.currentData() == "file"
    combo.setCurrentIndex(0)
    combo.activated.emit(0)
    qtbot.waitUntil(lambda: page.evaluation.source == "test split", timeout=30_000)
    assert combo.currentText() == "Test split" and combo.count() == 2
