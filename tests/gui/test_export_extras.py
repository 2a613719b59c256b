"""The Export step's "Make it smaller" and "Report" tabs, driven as a user would."""

import re

from PySide6.QtCore import Qt

from ml.runs.folder import load_run
from tests.gui.conftest import load_sample
from tests.ml.test_report import parse_html


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def _train_iris(qtbot, window, epochs=5):
    load_sample(qtbot, window, "iris")
    window.state.update_training(epochs=epochs)
    window.go_to(2)
    window.train_page.start_training()
    qtbot.waitUntil(lambda: not window.train_page.is_training(), timeout=120_000)
    window.go_to(4)
    return window.state.current_run


def _shrink(qtbot, panel, user):
    panel.last_result = None
    click(qtbot, panel.start_button)
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: panel.last_result is not None or bool(user.errors), timeout=180_000)
    assert user.errors == []
    return panel.last_result


def test_prune_and_distil_from_the_export_page_then_export_the_smaller_run(qtbot, window,
                                                                            user):
    teacher = _train_iris(qtbot, window)
    export = window.export_page
    export.tabs.setCurrentWidget(export.shrink_panel)
    panel = export.shrink_panel
    assert panel.student_combo.count() >= 1 and panel.distill_radio.isEnabled()

    panel.prune_radio.setChecked(True)
    panel.sparsity_combo.setCurrentIndex(panel.sparsity_combo.findData(0.8))
    panel.epochs_spin.setValue(1)
    pruned = _shrink(qtbot, panel, user)
    assert panel.table.rowCount() == 2
    assert panel.table.item(0, 0).text() == "original"
    assert "80% zeros" in panel.table.item(1, 1).text()
    assert "accuracy" in panel.table.column_text(1, "Test score")
    assert panel.log.toPlainText().strip()
    # The new run joins the project's runs, but the teacher stays current until asked.
    paths = [r.path for r in window.state.project.runs]
    assert str(pruned.run_dir) in paths
    assert window.state.current_run.record.path == teacher.record.path
    assert load_run(pruned.run_dir).info["derived_from"]["method"] == "prune"

    panel.distill_radio.setChecked(True)
    assert panel.student_combo.isEnabled() and not panel.sparsity_combo.isEnabled()
    panel.epochs_spin.setValue(2)
    distilled = _shrink(qtbot, panel, user)
    assert distilled.run_dir != pruned.run_dir
    assert panel.table.rowCount() == 2
    student = int(panel.table.item(1, 1).text().replace(",", "").split()[0])
    teacher_weights = int(panel.table.item(0, 1).text().replace(",", "").split()[0])
    assert student < teacher_weights

    # "Export the smaller model": it becomes the current run and the Export tab shows.
    click(qtbot, panel.use_button)
    assert window.state.current_run.record.path == str(distilled.run_dir)
    assert export.tabs.currentIndex() == 0


def test_report_tab_writes_html_and_a_pdf_with_the_runs_numbers(qtbot, window, user, tmp_path):
    run = _train_iris(qtbot, window)
    export = window.export_page
    export.tabs.setCurrentWidget(export.report_panel)
    panel = export.report_panel
    assert panel.write_button.isEnabled() and not panel.open_button.isEnabled()
    assert panel.path_edit.text().endswith(f"{run.record.id}-report.html")
    panel.price_spin.setValue(3.5)
    panel.currency_edit.setText("€")
    panel.path_edit.setText(str(tmp_path / "iris-report.html"))
    click(qtbot, panel.write_button)
    qtbot.waitUntil(lambda: bool(panel.written) or bool(user.errors), timeout=180_000)
    assert user.errors == []
    assert panel.banner.kind == "ok" and panel.open_button.isEnabled()
    html_path, pdf_path = panel.written
    assert html_path == tmp_path / "iris-report.html" and pdf_path.suffix == ".pdf"
    assert str(pdf_path) in panel.files_label.text()

    html = html_path.read_text(encoding="utf-8")
    parse_html(html)
    accuracy = load_run(run.record.path).metrics["test"]["accuracy"]
    assert f"right {100 * accuracy:.1f}% of the time" in html
    assert "€" in html and "Reproducibility" in html
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3

    # A folder that cannot be written: a message, the button comes back.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    panel.path_edit.setText(str(blocker / "report.html"))
    click(qtbot, panel.write_button)
    qtbot.waitUntil(lambda: bool(user.errors), timeout=60_000)
    assert panel.banner.kind == "error" and panel.write_button.isEnabled()
    assert html_path.is_file()
