"""The final fit from the app: on by default for a table, said in the Train banner and the
report, and switched off on the Model page's Training tab."""

import pytest
from PySide6.QtCore import Qt

from ml.runs.folder import load_run
from tests.gui.conftest import load_sample


def train(qtbot, window, epochs: int) -> None:
    window.model_page.epochs_spin.setValue(epochs)
    window.go_to(2)
    qtbot.mouseClick(window.train_page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.train_page.is_training(), timeout=180_000)


@pytest.mark.refit
def test_a_table_run_ends_with_a_final_fit_unless_switched_off(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    combo = window.model_page.refit_combo
    assert combo.currentData() == "auto" and window.state.project.training.refit == "auto"
    train(qtbot, window, epochs=4)
    run = load_run(window.state.current_run.path)
    assert run.refitted
    banner = window.train_page.banner.text()
    assert "the final model then trained for them on all" in banner
    assert f"{run.info['refit']['rows']:,} training and validation rows" in banner

    window.go_to(1)
    combo.setCurrentIndex(combo.findData("off"))
    assert window.state.project.training.refit == "off"
    train(qtbot, window, epochs=2)
    assert not load_run(window.state.current_run.path).refitted
    assert "final model" not in window.train_page.banner.text()
    assert not user.errors
