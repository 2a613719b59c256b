"""The whole wizard, driven as a user would, on the digits sample."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
from PySide6.QtCore import Qt

from tests.gui.conftest import load_sample


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def test_digits_from_data_to_onnx(qtbot, window, tmp_path, user):
    state = window.state
    # Only the Data step is open at first.
    assert [state.step_enabled(i) for i in range(5)] == [True, False, False, False, False]
    assert not window.next_button.isEnabled()

    # -- Data ------------------------------------------------------------------------------
    load_sample(qtbot, window, "digits")
    page = window.data_page
    qtbot.waitUntil(lambda: page.preview_model.rowCount() == 1797, timeout=2000)  # a turn later
    assert page.preview_model.columnCount() == 65
    assert page.preview_model.data(page.preview_model.index(0, 2)) == "5"
    assert page.target_combo.currentText() == "digit"
    assert "Classification" in page.task_label.text()
    qtbot.waitUntil(lambda: page.balance_chart.labels == [str(i) for i in range(10)],
                    timeout=2000)
    assert sum(page.balance_chart.values) == 1797
    assert page.columns_model.rowCount() == 65
    assert page.split_label.text() == "1,259 train · 269 validation · 269 test rows"
    assert window.step_list.item(1).flags() & Qt.ItemFlag.ItemIsEnabled
    assert window.next_button.isEnabled()

    # -- Model -----------------------------------------------------------------------------
    click(qtbot, window.next_button)
    model_page = window.model_page
    assert window.pages.currentWidget() is model_page
    assert "CNN" in model_page.input_label.text()
    total = state.model_summary.total_params
    assert model_page.params_card.value_label.text() == f"{total:,}"
    assert model_page.editor.tree.topLevelItemCount() == len(state.spec.layers)
    model_page.epochs_spin.setValue(3)
    assert state.project.training.epochs == 3

    # -- Train -----------------------------------------------------------------------------
    click(qtbot, window.next_button)
    train_page = window.train_page
    assert train_page.start_button.isEnabled() and not train_page.stop_button.isEnabled()
    click(qtbot, train_page.start_button)
    assert train_page.stop_button.isEnabled()
    # While training, the user can look at another page and come back.
    window.go_to(0)
    assert window.pages.currentWidget() is page
    window.go_to(2)
    qtbot.waitUntil(lambda: not train_page.is_training(), timeout=120_000)
    assert user.errors == []
    x, y = train_page.curves.curve_data("train_loss")
    assert x.tolist() == [1.0, 2.0, 3.0] and np.all(np.isfinite(y))
    assert len(train_page.curves.curve_data("val_metric")[0]) == 3
    assert len(train_page.curves.curve_data("batch_smooth")[0]) > 3
    assert train_page.progress.value() == 1000
    assert "Training finished" in train_page.banner.text()
    assert "epoch   3" in train_page.log.toPlainText()
    assert len(state.project.runs) == 1 and state.dirty

    # -- Evaluate --------------------------------------------------------------------------
    click(qtbot, window.next_button)
    evaluate = window.evaluate_page
    qtbot.waitUntil(lambda: evaluate.evaluation is not None, timeout=30_000)
    accuracy = evaluate.evaluation.metrics["accuracy"]
    assert accuracy > 0.8
    assert evaluate.cards[0].value_label.text() == f"{100 * accuracy:.1f}%"
    assert evaluate.class_model.rowCount() == 10
    assert evaluate.matrix.matrix.shape == (10, 10)
    assert evaluate.matrix.matrix.sum() == evaluate.evaluation.n == 269
    assert evaluate.run_combo.count() == 1

    # -- Export ----------------------------------------------------------------------------
    click(qtbot, window.next_button)
    export = window.export_page
    assert export.selected_format() == "onnx"
    target = tmp_path / "digits.onnx"
    export.path_edit.setText(str(target))
    click(qtbot, export.export_button)
    qtbot.waitUntil(lambda: export.last_report is not None or bool(user.errors),
                    timeout=120_000)
    assert user.errors == []
    assert "identical predictions 269 of 269" in export.banner.text()
    assert target.is_file() and Path(str(target).replace(".onnx", ".preprocessing.json")).is_file()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    probs = session.run(None, {"input": np.zeros((2, 1, 8, 8), np.float32)})[0]
    assert probs.shape == (2, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)

    # -- Copy as code: the snippet runs and predicts the example it spells out ---------------
    code = export.code_view.toPlainText()
    assert f"InferenceSession({str(target)!r})" in code and "x = np.array([" in code
    qtbot.mouseClick(export.copy_button, Qt.MouseButton.LeftButton)
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == code
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "snippet", "exec"), {})
    assert printed.getvalue().split()[0] in [str(d) for d in range(10)]

    # -- The standalone package -----------------------------------------------------------
    export.set_format("package")
    folder = tmp_path / "digits_package"
    export.path_edit.setText(str(folder))
    assert "predict.py" in export.code_view.toPlainText()
    export.last_report = None
    click(qtbot, export.export_button)
    qtbot.waitUntil(lambda: export.last_report is not None or bool(user.errors),
                    timeout=120_000)
    assert user.errors == [] and (folder / "predict.py").is_file()
    assert (tmp_path / "digits_package.zip").is_file()
    assert "predict.py on" in export.banner.text() and "Zip:" in export.files_label.text()


def test_export_page_makes_and_measures_int8_versions(qtbot, window, user, tmp_path):
    load_sample(qtbot, window, "iris")
    window.state.update_training(epochs=5)
    window.go_to(2)
    window.train_page.start_training()
    qtbot.waitUntil(lambda: not window.train_page.is_training(), timeout=120_000)
    window.go_to(4)
    export = window.export_page
    export.set_format("pt2")
    assert not export.compress_check.isEnabled()
    export.set_format("onnx")
    export.compress_check.setChecked(True)
    export.path_edit.setText(str(tmp_path / "iris.onnx"))
    click(qtbot, export.export_button)
    qtbot.waitUntil(lambda: export.last_report is not None or bool(user.errors),
                    timeout=120_000)
    assert user.errors == [] and export.compress_table.isVisibleTo(export)
    assert export.compress_table.rowCount() == 2
    assert export.compress_table.item(1, 0).text() == "int8 (dynamic)"
    assert "accuracy" in export.compress_table.column_text(1, "Test score")
    assert (tmp_path / "iris.int8-dynamic.onnx").is_file()
