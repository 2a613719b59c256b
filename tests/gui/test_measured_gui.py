"""Every screen tells what was measured of the run: int8 versions made on the Export step are
in the report and come back with the run; a check that could not run is no "Health ✓"; a
resumed run's curves start with the epochs before the stop."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import load_sample
from tests.gui.test_data_import_gui import wait_health


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def _train(qtbot, window, epochs):
    window.state.update_training(epochs=epochs)
    window.go_to(2)
    window.train_page.start_training()
    qtbot.waitUntil(lambda: not window.train_page.is_training(), timeout=120_000)
    return window.state.current_run


def test_int8_made_on_the_export_step_is_in_the_report_and_stays_with_the_run(
        qtbot, window, user, tmp_path):
    load_sample(qtbot, window, "iris")
    first = _train(qtbot, window, 3)
    second = _train(qtbot, window, 3)
    window.go_to(4)
    export = window.export_page
    assert not export.compress_table.isVisibleTo(export)  # nothing measured of it yet
    export.set_format("onnx")
    export.compress_check.setChecked(True)
    export.path_edit.setText(str(tmp_path / "iris.onnx"))
    click(qtbot, export.export_button)
    qtbot.waitUntil(lambda: export.last_report is not None or bool(user.errors),
                    timeout=120_000)
    assert user.errors == [] and export.compress_table.item(1, 0).text() == "int8 (dynamic)"
    measured = export.compress_table.column_text(1, "File size")

    panel = export.report_panel
    export.tabs.setCurrentWidget(panel)
    panel.smaller_check.setChecked(False)
    panel.path_edit.setText(str(tmp_path / "report.html"))
    click(qtbot, panel.write_button)
    qtbot.waitUntil(lambda: bool(panel.written) or bool(user.errors), timeout=180_000)
    assert user.errors == []
    html = panel.written[0].read_text(encoding="utf-8")
    assert "int8 (dynamic)" in html and "No smaller versions" not in html

    # Another run: none of its own; back to this one: its measurement again, as measured.
    window.state.set_current_run(first.record)
    assert not export.compress_table.isVisibleTo(export)
    window.state.set_current_run(second.record)
    export.tabs.setCurrentIndex(0)
    assert export.compress_table.isVisibleTo(export)
    assert export.compress_table.column_text(1, "File size") == measured


def test_data_the_choices_cannot_resolve_is_not_shown_as_healthy(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    page = window.data_page
    wait_health(qtbot, page)
    assert page.tabs.tabText(page.health_tab) == "Health ✓"
    window.state.update_data(task="regression")  # species is text: the red banner says so
    qtbot.waitUntil(lambda: bool(page.health_view.error), timeout=20_000)
    wait_health(qtbot, page)
    assert "cannot be predicted as a number" in page.error_banner.text()
    assert page.tabs.tabText(page.health_tab) == "Health (check failed)"
    assert "cannot be predicted as a number" in page.health_view.error
    assert user.errors == []


def test_resume_draws_the_epochs_before_the_stop_first(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    run = _train(qtbot, window, 4)
    page = window.train_page
    before = page.curves.curve_data("val_loss")[1]
    window.model_page.epochs_spin.setValue(7)
    assert page.resume_button.isEnabled()
    click(qtbot, page.resume_button)
    qtbot.waitUntil(lambda: not page.is_training(), timeout=120_000)
    assert window.state.current_run.record.path == run.record.path
    page.curves.redraw_now()
    x, y = page.curves.curve_data("val_loss")
    assert list(x) == [1, 2, 3, 4, 5, 6, 7]  # was [5, 6, 7]: the curves began at the resume
    assert list(y[:4]) == list(before)
    assert [h["epoch"] for h in page.curves.history] == list(range(1, 8))
    assert 1 <= page.curves.best_epoch <= 7
    lr_x, lr_y = page.curves.curve_data("lr")  # the learning rate is drawn from epoch 1 too
    assert lr_x.min() < 1 and lr_y[0] == pytest.approx(window.state.project.training.lr)
