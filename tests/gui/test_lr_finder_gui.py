"""The Model page's "Find…" button: the learning-rate test in a dialog, its rate taken."""

from PySide6.QtCore import Qt

from tests.gui.conftest import load_sample


def open_finder(qtbot, window):
    load_sample(qtbot, window, "iris")
    window.go_to(1)
    page = window.model_page
    page.settings_tabs.setCurrentIndex(1)  # Training
    assert page.find_lr_button.isVisible() and page.find_lr_button.isEnabled()
    qtbot.mouseClick(page.find_lr_button, Qt.MouseButton.LeftButton)
    dialog = page.lr_dialog
    qtbot.waitUntil(lambda: dialog.isVisible(), timeout=5_000)
    return page, dialog


def test_find_proposes_a_rate_and_use_sets_it(qtbot, window):
    page, dialog = open_finder(qtbot, window)
    before = window.state.project.training.lr
    qtbot.waitUntil(lambda: dialog.use_button.isVisible(), timeout=60_000)
    proposed = dialog.chosen_lr
    assert proposed is not None and proposed != before
    assert dialog.use_button.text() == f"Use {proposed:g}"
    assert "steepest slope" in dialog.message.text()
    assert dialog.plot.isVisible() and dialog.marker.isVisible()
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5_000)
    assert window.state.project.training.lr == proposed
    assert page.lr_combo.currentText() == f"{proposed:g}"
    assert window.state.dirty


def test_cancel_while_it_runs_changes_nothing(qtbot, window):
    page, dialog = open_finder(qtbot, window)
    before = window.state.project.training.lr
    assert page.lr_runner.is_running() and not dialog.use_button.isVisible()
    dialog.cancel_button.click()
    assert not dialog.isVisible()
    assert not page.lr_runner.is_running()
    assert window.state.project.training.lr == before
    assert page.lr_combo.currentText() == f"{before:g}"


def test_no_rate_found_is_said_in_the_dialog(qtbot, window, monkeypatch):
    from ml.errors import TrainingError
    from ml.jobs.training import TrainingJob

    message = ("The learning-rate test could not find a rate: the loss did not fall at any "
               "rate from 1e-07 to 1e+01. Keep the current rate (0.001).")

    def refuse(self, **kwargs):
        raise TrainingError(message)

    monkeypatch.setattr(TrainingJob, "find_lr", refuse)
    page, dialog = open_finder(qtbot, window)
    before = window.state.project.training.lr
    qtbot.waitUntil(lambda: dialog.message.text() == message, timeout=30_000)
    assert dialog.cancel_button.text() == "Close" and not dialog.use_button.isVisible()
    dialog.cancel_button.click()
    assert window.state.project.training.lr == before
