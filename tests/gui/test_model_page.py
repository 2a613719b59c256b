import pytest

from tests.gui.conftest import load_sample


def test_editing_the_network_updates_the_cost_live(qtbot, window):
    load_sample(qtbot, window, "breast_cancer")
    page, state = window.model_page, window.state
    window.go_to(1)
    assert "TabM" in page.input_label.text()  # the proposed table model
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("mlp"))
    assert "MLP" in page.input_label.text()
    page.hidden_edit.setText("8")
    page.hidden_edit.editingFinished.emit()
    assert state.project.model.hidden == [8]
    assert page.params_card.value_label.text() == f"{30 * 8 + 8 + 8 * 2 + 2:,}"
    assert page.editor.tree.topLevelItemCount() == len(state.spec.layers)


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


# -- the layer editor -------------------------------------------------------------------------
def _rows(page):
    tree = page.editor.tree
    return [[tree.topLevelItem(i).text(c) for c in range(tree.columnCount())]
            for i in range(tree.topLevelItemCount())]


def test_layer_editor_adds_removes_moves_and_undoes(qtbot, window):
    load_sample(qtbot, window, "iris")
    window.go_to(1)
    page, state = window.model_page, window.state
    editor = page.editor
    preset = [dict(layer) for layer in state.layers]
    assert len(_rows(page)) == len(preset) and state.project.model.layers == []
    assert _rows(page)[-1][3] == "3"  # the last layer gives the 3 classes
    # Add a dropout after the first layer.
    editor.select(0)
    editor.add_actions["dropout"].trigger()
    assert [layer["type"] for layer in state.project.model.layers][:2] == [preset[0]["type"],
                                                                           "dropout"]
    assert len(_rows(page)) == len(preset) + 1 and state.spec is not None
    assert "edited by hand" in page.custom_label.text()
    # Duplicate, move down, remove - each one step of the history.
    editor.duplicate_layer()
    assert len(state.project.model.layers) == len(preset) + 2
    editor.move_layer(1)
    editor.remove_layer()
    assert len(state.project.model.layers) == len(preset) + 1
    # Dragging a row: the tree reports the new order.
    order = list(range(len(state.layers)))
    order[1], order[2] = order[2], order[1]
    before = [layer["type"] for layer in state.layers]
    editor.tree.reordered.emit(order)
    assert [layer["type"] for layer in state.layers] == [before[i] for i in order]
    # Undo all the way back to the preset, then redo.
    steps = page.undo_stack.count()
    assert steps == 5
    for _ in range(steps):
        editor.undo_action.trigger()
    assert state.project.model.layers == [] and state.layers == preset
    editor.redo_action.trigger()
    assert len(state.project.model.layers) == len(preset) + 1
    editor.reset_to_preset()
    assert state.project.model.layers == []


def test_a_layer_that_cannot_take_its_input_is_red_with_the_reason(qtbot, window):
    from PySide6.QtGui import QColor

    load_sample(qtbot, window, "iris")
    page, state = window.model_page, window.state
    page.editor.select(0)
    page.editor.add_actions["conv2d"].trigger()  # a convolution on 4 table columns
    row = page.editor.tree.topLevelItem(1)
    assert row.background(1).color() == QColor("#fdecea")
    assert "image" in row.toolTip(1)
    assert "Layer 2" in page.editor.problem_label.text()
    assert state.spec is None and not state.step_enabled(2)
    assert not window.train_page.start_button.isEnabled()
    assert any(error for _, _, error in page.diagram.boxes)
    page.editor.undo_action.trigger()
    assert state.spec is not None and state.step_enabled(2)


def test_layer_settings_are_edited_below_the_list_and_merge_in_the_history(qtbot, window):
    load_sample(qtbot, window, "iris")
    page, state = window.model_page, window.state
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("mlp"))
    page.editor.select(0)  # the first Linear layer
    spin = page.editor.settings_widgets["out_features"]
    steps = page.undo_stack.count()
    spin.setValue(20)
    spin.setValue(21)
    spin.setValue(22)
    assert state.project.model.layers[0]["out_features"] == 22
    assert page.undo_stack.count() == steps + 1  # one step for the whole spin
    assert page.editor.settings_widgets["out_features"] is spin  # the form was kept
    assert _rows(page)[0][3] == "22"
    page.editor.undo_action.trigger()
    assert state.project.model.layers == []


def test_the_last_layer_must_give_the_task_its_outputs(qtbot, window):
    load_sample(qtbot, window, "iris")
    page, state = window.model_page, window.state
    last = len(state.layers) - 1
    page.editor.select(last)
    page.editor.settings_widgets["out_features"].setValue(5)
    assert state.spec is None
    assert "3" in page.error_banner.text()


def test_presets_for_every_kind_and_the_wrong_kind_is_greyed(qtbot, window):
    load_sample(qtbot, window, "digits")
    page, state = window.model_page, window.state
    combo = page.preset_combo
    model = combo.model()
    enabled = {combo.itemData(i): model.item(i).isEnabled() for i in range(combo.count())
               if combo.itemData(i)}
    assert enabled["resnet"] and enabled["vgg"] and enabled["cnn"]
    assert enabled["mlp"] and not enabled["transformer"] and not enabled["rnn"]
    for name in ("vgg", "resnet", "cnn"):
        combo.setCurrentIndex(combo.findData(name))
        assert state.spec is not None and state.spec.name == name, state.model_error
        assert len(_rows(page)) == len(state.spec.layers)


def test_diagram_and_code_of_the_network(qtbot, window, user, tmp_path):
    from PySide6.QtGui import QGuiApplication, QImage

    load_sample(qtbot, window, "digits")
    page, state = window.model_page, window.state
    assert len(page.diagram.boxes) == len(state.layers) + 2  # input, layers, output
    summary = state.model_summary
    assert f"{summary.total_flops:,} floating-point" in page.macs_card.toolTip()
    assert page.memory_card.value_label.text().endswith("MB")
    user.save_paths += [str(tmp_path / "net.png"), str(tmp_path / "net.svg")]
    page.save_diagram_button.click()
    page.save_diagram_button.click()
    image = QImage(str(tmp_path / "net.png"))
    assert not image.isNull() and image.height() > image.width()
    assert (tmp_path / "net.svg").read_text().lstrip().startswith("<?xml")
    dialog = page.show_code()
    text = dialog.text.toPlainText()
    assert "class Net(nn.Module)" in text and "Conv2d" in text
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == text
    dialog.close()


def test_training_settings_schedule_loss_and_estimate(qtbot, window):
    load_sample(qtbot, window, "wine")
    page, training = window.model_page, window.state.project.training
    page.all_button.click()  # these are expert settings
    page.optimizer_combo.setCurrentIndex(page.optimizer_combo.findData("sgd"))
    assert not page.nesterov_check.isHidden() and not page.momentum_spin.isHidden()
    page.nesterov_check.setChecked(True)
    page.schedule_combo.setCurrentIndex(page.schedule_combo.findData("step"))
    assert not page.step_spin.isHidden() and page.patience_spin.isHidden()
    page.step_spin.setValue(5)
    page.warmup_spin.setValue(2)
    page.clip_spin.setValue(1.0)
    page.smoothing_spin.setValue(0.1)
    page.loss_combo.setCurrentIndex(page.loss_combo.findData("bce"))
    assert (training.optimizer, training.nesterov, training.schedule, training.step_size,
            training.warmup_epochs, training.grad_clip, training.label_smoothing,
            training.loss) == ("sgd", True, "step", 5, 2, 1.0, 0.1, "bce")
    values = page.schedule_plot.values
    assert len(values) > 0 and values.max() > values[-1]  # warm-up, then steps down
    page.estimate_button.click()
    qtbot.waitUntil(lambda: "per epoch" in page.estimate_label.text(), timeout=60_000)


@pytest.mark.refit
def test_the_estimate_shows_where_the_time_goes_and_can_be_cancelled(qtbot, window):
    load_sample(qtbot, window, "iris")
    page = window.model_page
    window.state.project.training.epochs = 20
    page.estimate_button.click()
    assert page.estimate_button.text() == "Cancel the estimate"
    page.estimate_button.click()  # cancel: the button is back, the old result never shows
    assert page.estimate_label.text() == "Estimate cancelled."
    assert page.estimate_button.text() == "Estimate time and memory"
    page.estimate_button.click()
    qtbot.waitUntil(lambda: "per epoch" in page.estimate_label.text(), timeout=60_000)
    assert "for 20 epochs" in page.estimate_label.text()
    assert "memory" in page.estimate_label.text()
    details = page.estimate_details.text()
    assert not page.estimate_details.isHidden()
    for words in ("Training steps:", "Loading the batches:", "Validation:",
                  "Saving checkpoints:", "Starting:", "preparing the data",
                  "Then the final fit: at most"):
        assert words in details, words
    assert "after every epoch" in details and " s" in details


def test_regression_offers_regression_losses(qtbot, window):
    load_sample(qtbot, window, "diabetes")
    page = window.model_page
    values = [page.loss_combo.itemData(i) for i in range(page.loss_combo.count())]
    assert values == ["auto", "mse", "huber"]
    assert page.smoothing_spin.isHidden()


def test_starting_from_a_weights_file_shows_what_was_loaded(qtbot, window, user, tmp_path):
    import torch

    from ml.models.spec import build_model

    load_sample(qtbot, window, "iris")
    page, state = window.model_page, window.state
    net = build_model(state.spec)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    user.open_paths.append(str(tmp_path / "weights.pt"))
    page.init_file_button.click()
    assert state.project.model.init_from == str(tmp_path / "weights.pt")
    qtbot.waitUntil(lambda: "load" in page.transfer_report.text().lower()
                    and "matching" not in page.transfer_report.text().lower(), timeout=20_000)
    page.freeze_spin.setValue(2)
    assert state.project.model.freeze_epochs == 2
    (tmp_path / "junk.pt").write_bytes(b"not a weights file")
    user.open_paths.append(str(tmp_path / "junk.pt"))
    page.init_file_button.click()
    qtbot.waitUntil(lambda: "junk.pt" in page.transfer_report.text(), timeout=20_000)
    page.init_combo.setCurrentIndex(0)
    page.init_combo.activated.emit(0)
    assert state.project.model.init_from == ""


def test_the_linear_preset_brings_its_learning_rate_unless_one_was_set(qtbot, window):
    load_sample(qtbot, window, "iris")
    page, training = window.model_page, window.state.project.training
    assert training.lr == 0.002  # the proposed TabM-style ensemble's rate
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("linear"))
    assert training.lr == 0.01 and page.lr_combo.currentText() == "0.01"
    page.editor.undo_action.trigger()  # back to the proposed ensemble, and its rate
    assert training.lr == 0.002
    page.lr_combo.setCurrentText("0.005")
    page.lr_combo.lineEdit().editingFinished.emit()
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("linear"))
    assert training.lr == 0.005  # the user's own choice stays


def test_suggest_keeps_what_to_start_from_and_restores_the_rate(qtbot, window, tmp_path):
    load_sample(qtbot, window, "iris")
    page, state = window.model_page, window.state
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("linear"))
    state.update_model(init_from=str(tmp_path / "w.pt"), freeze_epochs=3)
    page.suggest_button.click()
    model = state.project.model
    assert model.preset == "tabm" and state.project.training.lr == 0.002
    assert (model.init_from, model.freeze_epochs) == (str(tmp_path / "w.pt"), 3)


def test_dragging_a_layer_moves_it(qtbot, window):
    """A real drop on the list (the event Qt delivers when a row is dragged) reorders."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QDropEvent

    load_sample(qtbot, window, "iris")
    window.go_to(1)
    page, state = window.model_page, window.state
    tree = page.editor.tree
    before = [layer["type"] for layer in state.layers]
    source = tree.topLevelItem(0)
    tree.setCurrentItem(source)
    mime = tree.model().mimeData([tree.indexFromItem(source)])
    target = tree.visualItemRect(tree.topLevelItem(2))
    pos = QPointF(target.center().x(), target.bottom() - 1)  # lower half of the third row
    event = QDropEvent(pos, Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    tree.dropEvent(event)
    after = [layer["type"] for layer in state.layers]
    assert after == before[1:3] + [before[0]] + before[3:]  # the first layer is now third
    assert len(state.project.model.layers) == len(before)
    page.editor.undo_action.trigger()
    assert [layer["type"] for layer in state.layers] == before


def test_early_stopping_settings(qtbot, window):
    load_sample(qtbot, window, "wine")
    page, training = window.model_page, window.state.project.training
    # The suggested schedule for a small table stops early, after 16 epochs without gain.
    assert page.early_check.isChecked() and page.patience_es_spin.value() == 16
    page.early_check.setChecked(False)
    assert page.patience_es_spin.isHidden() and not training.early_stopping
    page.early_check.setChecked(True)
    assert not page.patience_es_spin.isHidden()
    page.patience_es_spin.setValue(4)
    page.min_delta_spin.setValue(0.01)
    assert (training.early_stopping, training.patience, training.min_delta) == (True, 4, 0.01)


def test_every_settings_tab_fits_its_scroll_area_without_cutting_fields(qtbot, window):
    """Long combo entries ("Automatic (CPU: ...)", "best validation accuracy ...") once made the
    Training tab wider than its scroll area, cutting off the right edge of every field."""
    from PySide6.QtWidgets import QScrollArea

    load_sample(qtbot, window, "iris")
    window.go_to(1)
    areas = window.model_page.settings_tabs.findChildren(QScrollArea)
    assert len(areas) == 3
    for i, area in enumerate(areas):
        window.model_page.settings_tabs.setCurrentIndex(i)
        qtbot.wait(20)
        assert area.widget().minimumSizeHint().width() <= area.viewport().width()


def test_the_ensemble_size_is_set_on_the_model_page(qtbot, window):
    load_sample(qtbot, window, "iris")
    window.go_to(1)
    page, state = window.model_page, window.state
    assert state.project.model.preset == "tabm"
    assert not page.ensemble_spin.isVisibleTo(page)  # not one of the basic settings
    page.show_all_settings(True)
    assert page.ensemble_spin.isVisibleTo(page) and page.ensemble_spin.value() == 4
    assert page.hidden_edit.isVisibleTo(page)  # the shared blocks' widths
    assert not page.activation_combo.isVisibleTo(page)  # TabM's blocks are ReLU
    before = page.params_card.value_label.text()
    page.ensemble_spin.setValue(8)
    assert state.project.model.ensemble == 8
    (layer,) = [x for x in state.spec.layers if x["type"] == "ensemble_mlp"]
    assert layer["k"] == 8 and page.params_card.value_label.text() != before
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("mlp"))
    assert not page.ensemble_spin.isVisibleTo(page)
