"""No internal names on screen (issue 19, finding 14): runs have human names, settings and
metrics their labels, the Model page starts with the basic settings, and a setting that does
not apply is hidden, not greyed."""

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView

from ml.labels import metric_label
from ml.system.device import cuda_available
from tests.gui.conftest import load_sample


def _train(qtbot, window, **training):
    window.state.update_training(**training)
    window.go_to(2)
    page = window.train_page
    page.start_training()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=120_000)
    return page


def test_the_model_page_starts_with_the_basic_settings_and_remembers_all(qtbot, window):
    from gui.settings import all_settings_shown, open_settings

    load_sample(qtbot, window, "iris")
    window.go_to(1)
    page = window.model_page
    assert page.basic_button.isChecked() and not page.all_settings
    for widget in (page.lr_combo, page.batch_spin, page.epochs_spin, page.early_check,
                   page.preset_combo, page.estimate_button):
        assert not widget.isHidden(), widget.objectName()
    for widget in (page.optimizer_combo, page.weight_decay_combo, page.seed_spin,
                   page.device_combo, page.loss_combo, page.clip_spin, page.monitor_combo,
                   page.best_check):
        assert widget.isHidden()
    assert page.schedule_box.isHidden() and page.knobs_box.isHidden()
    assert not page.settings_tabs.isTabVisible(2)  # transfer learning
    assert not page.detail_note.isHidden()

    qtbot.mouseClick(page.all_button, Qt.MouseButton.LeftButton)
    assert page.all_settings and all_settings_shown(open_settings())
    for widget in (page.optimizer_combo, page.seed_spin, page.device_combo, page.loss_combo):
        assert not widget.isHidden()
    assert not page.schedule_box.isHidden() and page.settings_tabs.isTabVisible(2)
    assert page.detail_note.isHidden()

    from gui.pages.model_page import ModelPage

    again = ModelPage(window.state)  # the next session's page
    qtbot.addWidget(again)
    assert again.all_settings and again.all_button.isChecked()
    assert not again.optimizer_combo.isHidden()
    again.show_all_settings(False)
    assert not all_settings_shown(open_settings())


def test_settings_that_do_not_apply_are_hidden_not_greyed(qtbot, window):
    load_sample(qtbot, window, "iris")
    page, state = window.model_page, window.state
    page.show_all_settings(True)
    state.update_model(preset="mlp_small", layers=[])
    # A fixed-size MLP on a table: no sizes to type, no convolution or recurrent settings.
    for widget in (page.hidden_edit, page.channels_edit, page.batchnorm_check, page.rnn_combo):
        assert widget.isHidden(), widget
    assert not page.activation_combo.isHidden() and not page.dropout_spin.isHidden()
    state.update_model(preset="mlp")
    assert not page.hidden_edit.isHidden() and page.channels_edit.isHidden()
    # The row's label goes with it.
    assert not page._knobs_form.isRowVisible(page.channels_edit)
    assert page.amp_check.isHidden() == (not cuda_available())
    assert page.freeze_spin.isHidden()  # nothing to freeze without weights to start from
    state.update_training(optimizer="adam")
    assert page.momentum_spin.isHidden() and page.nesterov_check.isHidden()
    assert page.monitor_combo.itemText(1) == "best validation accuracy"

    data = window.data_page
    assert not data.weights_check.isHidden()  # classes: weighting them applies
    load_sample(qtbot, window, "diabetes")
    assert data.weights_check.isHidden()  # a number to predict: there are no classes
    assert page.smoothing_spin.isHidden()
    assert page.monitor_combo.itemText(1) == "lowest validation MAE"


def test_runs_get_readable_names_that_can_be_changed(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    _train(qtbot, window, epochs=1, lr=0.001)
    page = _train(qtbot, window, epochs=2, lr=0.01)
    panel = page.runs_panel
    page.tabs.setCurrentWidget(panel)
    runs = window.state.project.runs
    assert [r.name.split(" · ")[0] for r in runs] == ["Run 1", "Run 2"]
    shown = {panel.table.item(r, 0).text() for r in range(panel.table.rowCount())}
    assert shown == {r.name for r in runs}
    assert not any(Path(r.path).name in shown for r in runs)  # no time stamps
    models = {panel.table.item(r, 3).text() for r in range(panel.table.rowCount())}
    assert not any("_" in m for m in models)

    # Rename: the Rename button starts editing the name in its row.
    panel.select_paths([runs[0].path])
    qtbot.mouseClick(panel.rename_button, Qt.MouseButton.LeftButton)
    item = panel.table.currentItem()
    assert item is not None and item.column() == 0
    assert panel.table.state() == QAbstractItemView.State.EditingState
    panel.table.closePersistentEditor(item)
    item.setText("Baseline,  slow rate")
    qtbot.waitUntil(lambda: runs[0].name == "Baseline, slow rate", timeout=5_000)
    assert json.loads((Path(runs[0].path) / "run.json").read_text())["name"] == runs[0].name
    assert window.state.dirty
    qtbot.waitUntil(lambda: any(panel.table.item(r, 0).text() == "Baseline, slow rate"
                                for r in range(panel.table.rowCount())), timeout=5_000)
    # An empty name is refused in a sentence, and the run keeps its name.
    row = next(r for r in range(panel.table.rowCount())
               if panel.table.item(r, 0).text() == "Baseline, slow rate")
    panel.table.item(row, 0).setText("   ")
    qtbot.waitUntil(lambda: bool(user.errors), timeout=5_000)
    assert "cannot be empty" in user.errors[-1][1] and runs[0].name == "Baseline, slow rate"

    # The settings two runs differ in, in words.
    panel.select_paths([r.path for r in runs])
    dialog = panel.compare_selected()
    table = dialog.findChild(type(panel.table), "diffTable")
    keys = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert keys == {"Epochs", "Learning rate"}
    headers = [table.horizontalHeaderItem(c).text() for c in (1, 2)]
    assert set(headers) == {r.title for r in runs}
    dialog.close()


def test_the_compare_dialog_names_runs_and_metrics_in_words(qtbot, window, user):
    from gui.widgets.compare_dialog import CompareDialog

    load_sample(qtbot, window, "iris")
    _train(qtbot, window, epochs=1)
    _train(qtbot, window, epochs=1, lr=0.01)
    runs = window.state.project.runs
    window.state.rename_run(runs[0], "First try")
    dialog = CompareDialog(window.state, window)
    qtbot.addWidget(dialog)
    items = [dialog.run_list.item(i).text() for i in range(dialog.run_list.count())]
    assert items[0].startswith("First try") and "f1_macro" not in " ".join(items)
    assert metric_label("f1_macro") in " ".join(items)
    dialog.check_paths([r.path for r in runs])
    dialog.compare()
    qtbot.waitUntil(lambda: dialog.comparison is not None, timeout=60_000)
    table = dialog.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == [r.title for r in runs]
    rows = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    assert metric_label("f1_macro") in rows and not any("_" in r for r in rows)
    dialog.close()


def test_search_trials_list_their_settings_in_words(qtbot):
    from gui.widgets.search_panel import SearchResultsPanel

    panel = SearchResultsPanel()
    qtbot.addWidget(panel)
    panel.start()
    panel.add_trial({"trial": {"number": 0, "state": "complete", "value": 0.9, "epochs": 2,
                               "params": {"lr": 0.01, "batch_size": 32,
                                          "weight_decay": 1e-4}},
                     "best": 0, "metric": "accuracy"})
    panel.add_trial({"trial": {"number": 1, "state": "pruned", "value": 0.5, "epochs": 1,
                               "params": {"lr": 0.1, "batch_size": 64,
                                          "weight_decay": 1e-3}},
                     "best": 0, "metric": "accuracy"})
    settings = panel.table.item(0, 4).text()
    assert "Learning rate 0.01" in settings and "Batch size 32" in settings
    assert "weight_decay" not in settings and "Weight decay" in settings
    assert panel.table.item(0, 1).text().startswith("finished")
    assert panel.table.item(1, 1).text().startswith("stopped early")
