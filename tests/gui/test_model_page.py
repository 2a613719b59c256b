from tests.gui.conftest import load_sample


def test_editing_the_network_updates_the_cost_live(qtbot, window):
    load_sample(qtbot, window, "breast_cancer")
    page, state = window.model_page, window.state
    window.go_to(1)
    assert "MLP" in page.input_label.text()
    page.hidden_edit.setText("8")
    page.hidden_edit.editingFinished.emit()
    assert state.project.model.hidden == [8]
    assert page.params_card.value_label.text() == f"{30 * 8 + 8 + 8 * 2 + 2:,}"
    assert page.layers_model.rowCount() == len(state.spec.layers)


def test_bad_settings_are_flagged_and_a_cnn_on_a_table_locks_training(qtbot, window):
    load_sample(qtbot, window, "iris")
    page, state = window.model_page, window.state
    page.hidden_edit.setText("64, lots")
    page.hidden_edit.textEdited.emit("64, lots")
    page.hidden_edit.editingFinished.emit()
    assert "whole numbers" in page.error_banner.text()
    assert "border" in page.hidden_edit.styleSheet()
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("cnn"))
    page.hidden_edit.setText("16")
    page.hidden_edit.editingFinished.emit()
    assert "needs image data" in page.error_banner.text()
    assert not state.step_enabled(2) and not window.train_page.start_button.isEnabled()
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("mlp"))
    assert state.step_enabled(2) and window.train_page.start_button.isEnabled()


def test_training_settings_reach_the_project(qtbot, window):
    load_sample(qtbot, window, "wine")
    page, training = window.model_page, window.state.project.training
    page.optimizer_combo.setCurrentIndex(page.optimizer_combo.findData("sgd"))
    page.lr_combo.setCurrentText("0.01")
    page.batch_spin.setValue(16)
    page.seed_spin.setValue(42)
    page.best_check.setChecked(False)
    assert (training.optimizer, training.lr, training.batch_size, training.seed,
            training.restore_best) == ("sgd", 0.01, 16, 42, False)
    page.suggest_button.click()
    assert window.state.project.training.batch_size == 32


def test_typing_a_learning_rate_is_applied_when_done(qtbot, window):
    from PySide6.QtCore import Qt

    load_sample(qtbot, window, "iris")
    page, training = window.model_page, window.state.project.training
    edit = page.lr_combo.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, "0.005")
    assert edit.text() == "0.005"  # nothing rewrote the text while typing
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert training.lr == 0.005
    edit = page.weight_decay_combo.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, "0.01")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert training.weight_decay == 0.01
    edit = page.lr_combo.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, "0")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert training.lr == 0.005 and "above 0" in page.error_banner.text()
