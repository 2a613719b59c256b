"""Numbers on screen are the true numbers: axis scales, baselines beside headline metrics."""

import pytest
from PySide6.QtCore import Qt

from ml.evaluation import yardstick
from tests.gui.conftest import load_sample


def train(qtbot, window, epochs: int = 3) -> None:
    window.model_page.epochs_spin.setValue(epochs)
    window.go_to(2)
    qtbot.mouseClick(window.train_page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.train_page.is_training(), timeout=180_000)


def live_axes(window):
    curves = window.train_page.curves
    for widget in (curves.loss_plot, curves.metric_plot, curves.lr_plot):
        item = widget.getPlotItem()
        for name in ("left", "bottom"):
            yield item.getAxis(name)


def test_every_live_axis_reads_true_values_after_a_second_run(qtbot, window, user):
    load_sample(qtbot, window, "digits")
    train(qtbot, window)
    train(qtbot, window)  # re-styles the plots while they show a learning rate of ~0.001
    curves = window.train_page.curves
    curves.set_presenter(True)
    curves.set_presenter(False)
    curves.redraw_now()
    for axis in live_axes(window):
        assert axis.autoSIPrefixScale == 1.0, axis.labelText
        assert axis.labelUnitPrefix == ""
        assert "(x" not in axis.labelString()
    # The headline is read beside what always answering the most common class would score.
    banner = window.train_page.banner.text()
    assert "always answering" in banner and "would" in banner
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    note = page.baseline_note
    assert note.isVisible() and note.text().startswith("For comparison, always answering")
    assert note.kind == "info"  # digits: far better than the most common class


@pytest.mark.yardstick
def test_evaluate_shows_the_classic_model_beside_yours_and_the_setting_turns_it_off(
        qtbot, window, user):
    load_sample(qtbot, window, "breast_cancer")
    check = window.model_page.yardstick_check
    assert check.isChecked() and window.state.project.training.yardstick
    train(qtbot, window, epochs=2)
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    note = page.yardstick_note
    assert note.isVisible() and note.text().startswith("A gradient-boosting model")
    assert "yours gets" in note.text()
    found = yardstick.read(window.state.current_run.path)
    assert note.kind == ("warning" if found.gap <= -yardstick.LEVEL else "info")

    window.go_to(1)
    check.setChecked(False)
    assert window.state.project.training.yardstick is False
    train(qtbot, window, epochs=1)
    assert not (window.state.current_run.path / yardstick.FILE).exists()
    window.go_to(3)
    qtbot.waitUntil(lambda: not page.yardstick_note.isVisible(), timeout=30_000)
    assert not user.errors
