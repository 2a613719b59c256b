"""The Train page beyond one run: curves' extras, presenter mode, meters, out-of-memory offer,
the run history, cross-validation and search from the GUI."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialog, QMessageBox

from ml.jobs.search import SearchSpace
from ml.training.trainer import Trainer
from tests.gui.conftest import load_sample


def _train(qtbot, window, **training):
    window.state.update_training(**training)
    window.go_to(2)
    page = window.train_page
    page.start_training()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=120_000)
    return page


def test_curves_show_the_learning_rate_and_flag_overfitting(qtbot):
    from gui.widgets.plots import LiveCurvesWidget

    curves = LiveCurvesWidget()
    qtbot.addWidget(curves)
    curves.add_batches(np.array([[0.5, 1.0, 0.01], [1.0, 0.8, 0.02]]))
    assert curves.curve_data("lr")[1].tolist() == [0.01, 0.02]
    train = [1.0, 0.6, 0.4, 0.3, 0.2, 0.1]
    val = [1.0, 0.7, 0.5, 0.55, 0.62, 0.7]
    for epoch, (t, v) in enumerate(zip(train, val), start=1):
        curves.add_epoch({"epoch": epoch, "loss": t, "val_loss": v, "accuracy": 0.5,
                          "val_accuracy": 0.5})
        if epoch == 4:  # one epoch of rise is not yet a trend
            assert curves.overfitting is None and curves.note.isHidden()
    assert curves.overfitting["best_epoch"] == 3
    assert not curves.note.isHidden() and "memorise" in curves.note.text()
    assert curves.overfit_band.isVisible() and curves.overfit_band.getRegion() == (3, 6)
    curves.set_presenter(True)
    assert "practice data" in curves.note.text() and curves.lr_plot.isHidden()
    assert curves.val_loss.opts["pen"].widthF() > 5
    curves.set_presenter(False)
    assert curves.val_loss.opts["pen"].widthF() == 3
    curves.reset()
    assert curves.overfitting is None and curves.note.isHidden()


def test_a_run_shows_throughput_meters_and_presenter_mode(qtbot, window, user):
    load_sample(qtbot, window, "digits")
    page = _train(qtbot, window, epochs=3)
    assert len(page.curves.curve_data("lr")[0]) > 0
    page.update_meters()
    assert "CPU" in page.meters_label.text() and "RAM" in page.meters_label.text()
    qtbot.mouseClick(page.presenter_button, Qt.MouseButton.LeftButton)
    assert page.curves.presenter and page.log.isHidden()
    assert "Mistakes" in page.curves.loss_plot.getPlotItem().titleLabel.text
    qtbot.mouseClick(page.presenter_button, Qt.MouseButton.LeftButton)
    assert not page.curves.presenter and not page.log.isHidden()


def test_throughput_is_reported_while_training(qtbot, window, user):
    load_sample(qtbot, window, "digits")
    window.state.update_training(epochs=200)
    window.go_to(2)
    page = window.train_page
    progress = []
    page.start_training()
    page._worker.progress_changed.connect(progress.append)
    qtbot.waitUntil(lambda: any(p["samples_per_second"] > 0 for p in progress),
                    timeout=60_000)

    def shown() -> bool:
        page.update_meters()
        return "samples/s" in page.meters_label.text()

    qtbot.waitUntil(shown, timeout=30_000)
    assert page.is_training()
    page.stop_training()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=30_000)


@pytest.fixture
def small_gpu(monkeypatch):
    """Batches above 16 do not fit: CUDA's out-of-memory error, from epoch 2 on."""
    real = Trainer._batch_metric

    def metric(self, out, y):
        if self.config.batch_size > 16 and len(self.history) >= 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(self, out, y)

    monkeypatch.setattr(Trainer, "_batch_metric", metric)


def test_out_of_memory_offers_a_smaller_batch_and_resumes(qtbot, window, user, small_gpu):
    load_sample(qtbot, window, "iris")
    page = _train(qtbot, window, epochs=4, batch_size=32)
    box = page._offer
    assert isinstance(box, QMessageBox) and "batches of 32" in box.text()
    assert not user.errors  # the offer replaces the plain error box
    retry = next(b for b in box.buttons() if "16" in b.text())
    retry.click()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=60_000)
    assert window.state.project.training.batch_size == 16
    run = window.state.current_run
    history = [json.loads(x) for x in (run.path / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]  # epoch 1 kept, 2-4 at batch 16
    assert run.record.status == "finished"


def test_out_of_memory_retries_by_itself_with_the_setting(qtbot, window, user, small_gpu):
    load_sample(qtbot, window, "iris")
    window.model_page.oom_check.setChecked(True)
    assert window.state.project.training.oom_retry
    page = _train(qtbot, window, epochs=3, batch_size=64)
    assert page._offer is None and not user.errors
    assert "went on with batches of 16" in page.banner.text()
    assert "retrying from epoch 2 with batches of 32" in page.log.toPlainText()


def test_runs_table_sorts_overlays_compares_clones_and_deletes(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    _train(qtbot, window, epochs=2, lr=0.001)
    page = _train(qtbot, window, epochs=5, lr=0.01)
    panel = page.runs_panel
    page.tabs.setCurrentWidget(panel)
    assert panel.table.rowCount() == 2
    panel.table.sortItems(6, Qt.SortOrder.DescendingOrder)  # by epochs
    assert panel.table.item(0, 6).text() == "5"
    panel.table.sortItems(6, Qt.SortOrder.AscendingOrder)
    assert panel.table.item(0, 6).text() == "2"
    runs = window.state.project.runs
    panel.select_paths([r.path for r in runs])
    assert len(panel.overlaid) == 2
    assert len(panel.loss_plot.getPlotItem().listDataItems()) == 2
    dialog = panel.compare_selected()
    table = dialog.findChild(type(panel.table), "diffTable")
    keys = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert keys == {"Epochs", "Learning rate"}  # labels, not config keys
    dialog.close()

    panel.select_paths([runs[0].path])
    qtbot.mouseClick(panel.clone_button, Qt.MouseButton.LeftButton)
    assert window.state.project.training.epochs == 2
    assert window.state.project.training.lr == 0.001
    assert window.pages.currentIndex() == 1  # the Model page, to edit them

    window.go_to(2)
    first = Path(runs[0].path)
    user.yes_no = False
    panel.select_paths([str(first)])
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert first.is_dir() and len(window.state.project.runs) == 2  # not confirmed: kept
    user.yes_no = True
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert not first.exists() and len(window.state.project.runs) == 1
    assert panel.table.rowCount() == 1
    assert not any(p.name.startswith(first.name) for p in (first.parent / ".trash").iterdir())


def test_rerun_trains_again_with_the_runs_own_settings(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    page = _train(qtbot, window, epochs=2, lr=0.002)
    window.state.update_training(epochs=7, lr=0.05)  # the project moved on
    panel = page.runs_panel
    panel.select_paths([window.state.project.runs[0].path])
    qtbot.mouseClick(panel.rerun_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.is_training(), timeout=60_000)
    assert len(window.state.project.runs) == 2
    config = json.loads((window.state.current_run.path / "config.json").read_text())
    assert config["training"]["epochs"] == 2 and config["training"]["lr"] == 0.002
    assert window.state.project.training.epochs == 7  # the project's settings untouched


def test_cross_validation_from_the_gui_lists_every_fold(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    window.state.update_training(epochs=2)
    window.go_to(2)
    page = window.train_page
    page.start_cross_validation(3)
    qtbot.waitUntil(lambda: not page.is_training(), timeout=120_000)
    runs = window.state.project.runs
    assert [r.label for r in runs] == ["fold 1 of 3", "fold 2 of 3", "fold 3 of 3"]
    assert len({r.group for r in runs}) == 1
    assert "over 3 of 3 folds" in page.banner.text() and "±" in page.banner.text()
    assert "Fold 3 of 3" in page.log.toPlainText()
    assert len(page.runs_panel.selected_records()) == 3


def test_search_from_the_gui_and_use_the_best(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    window.state.update_training(epochs=2)
    window.go_to(2)
    page = window.train_page
    page.start_search(SearchSpace(params=["lr", "dropout"]), trials=3, sampler="random",
                      pruning=False)
    assert page.tabs.currentWidget() is page.search_panel
    qtbot.waitUntil(lambda: not page.is_training(), timeout=120_000)
    panel = page.search_panel
    assert panel.table.rowCount() == 3 and len(window.state.project.runs) == 3
    best = panel.best_trial()
    assert best is not None and "best" in panel.table.item(
        panel.trials.index(best), 1).text()
    qtbot.mouseClick(panel.best_button, Qt.MouseButton.LeftButton)
    assert window.state.project.training.lr == pytest.approx(best["params"]["lr"])
    assert window.state.project.model.dropout == pytest.approx(best["params"]["dropout"])
    assert window.model_page.dropout_spin.value() == pytest.approx(
        best["params"]["dropout"], abs=0.01)


def test_the_search_dialog_refuses_an_empty_choice(qtbot, window, user):
    from gui.widgets.search_panel import SearchDialog

    load_sample(qtbot, window, "iris")
    dialog = SearchDialog(window.state.project, window)
    qtbot.addWidget(dialog)
    for box in dialog.choices["batch_size"].values():
        box.setChecked(False)
    dialog._accept()
    assert "at least one batch size" in dialog.error.text() and not dialog.result()
    for check in dialog.checks.values():
        check.setChecked(False)
    dialog._accept()
    assert "Tick at least one" in dialog.error.text()
    dialog.checks["lr"].setChecked(True)
    dialog.trials.setValue(4)
    settings = dialog.settings()
    assert settings["space"].params == ["lr"] and settings["trials"] == 4
    assert settings["minutes"] is None


def test_run_history_survives_saving_and_reopening_the_project(qtbot, window, user, tmp_path):
    load_sample(qtbot, window, "iris")
    path = tmp_path / "iris.tdproj"
    user.save_paths.append(str(path))
    window.save_as_action.trigger()  # saved first: runs then go beside the project
    page = _train(qtbot, window, epochs=2)
    page.start_cross_validation(2)
    qtbot.waitUntil(lambda: not page.is_training(), timeout=60_000)
    window.save_action.trigger()
    before = [(r.id, r.label, r.group, r.status, r.epochs, r.metrics)
              for r in window.state.project.runs]
    rows = window.train_page.runs_panel.table.rowCount()
    assert len(before) == 3 and rows == 3

    window.new_project()
    assert window.train_page.runs_panel.table.rowCount() == 0
    user.open_paths.append(str(path))
    window.open_action.trigger()
    qtbot.waitUntil(lambda: window.state.dataset is not None, timeout=20_000)
    after = [(r.id, r.label, r.group, r.status, r.epochs, r.metrics)
             for r in window.state.project.runs]
    assert after == before
    panel = window.train_page.runs_panel
    assert panel.table.rowCount() == 3
    assert all(Path(r.path).parent.parent == tmp_path / "iris_runs" or
               Path(r.path).parent == tmp_path / "iris_runs" for r in window.state.project.runs)
    panel.select_paths([r.path for r in window.state.project.runs])
    assert len(panel.overlaid) == 3  # the curves come back from the run folders


def test_the_best_epoch_can_follow_validation_accuracy(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    combo = window.model_page.monitor_combo
    combo.setCurrentIndex(combo.findData("val_metric"))
    assert window.state.project.training.monitor == "val_metric"
    page = _train(qtbot, window, epochs=6, lr=0.01)
    history = page.curves.history
    accs = [h["val_accuracy"] for h in history]
    assert page.curves.best_epoch == accs.index(max(accs)) + 1
    run = window.state.current_run
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["best_epoch"] == page.curves.best_epoch


def test_a_started_run_is_in_the_saved_project_at_once(qtbot, window, user, tmp_path):
    load_sample(qtbot, window, "digits")
    path = tmp_path / "digits.tdproj"
    user.save_paths.append(str(path))
    window.save_as_action.trigger()
    window.state.update_training(epochs=300)
    window.go_to(2)
    page = window.train_page
    page.start_training()
    qtbot.waitUntil(lambda: len(window.state.project.runs) == 1, timeout=60_000)
    on_disk = json.loads(path.read_text())["runs"]
    assert [r["status"] for r in on_disk] == ["running"]  # a kill now would not lose it
    assert page.runs_panel.table.item(0, 2).text() == "running"
    page.stop_training()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=60_000)
    assert [r["status"] for r in json.loads(path.read_text())["runs"]] == ["stopped"]


def test_an_interrupted_run_resumes_from_the_runs_tab(qtbot, window, user, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from ml.runs.project import DataConfig, Project, RunRecord
    from tests.conftest import ROOT

    path = tmp_path / "iris.tdproj"
    run_dir = tmp_path / "iris_runs" / "killed"
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "train", "--data", "sample:iris", "--epochs",
         "150", "--batch-size", "16", "--seed", "1", "--early-stopping", "0", "--quiet",
         "--out", str(run_dir)],
        cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    qtbot.waitUntil(lambda: (run_dir / "history.jsonl").is_file() and len(
        (run_dir / "history.jsonl").read_text().splitlines()) >= 2, timeout=60_000)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    # What the app had written when the run started, before the process died.
    project = Project(name="iris", data=DataConfig(source="sample:iris", target="species"))
    project.runs.append(RunRecord(id="killed", path=str(run_dir), created="2026-11-24T10:00",
                                  status="running", task="classification", model="mlp"))
    project.save(path)
    user.open_paths.append(str(path))
    window.open_action.trigger()
    qtbot.waitUntil(lambda: window.state.dataset is not None, timeout=20_000)
    window.go_to(2)
    panel = window.train_page.runs_panel
    assert panel.table.item(0, 2).text() == "interrupted"
    panel.select_paths([str(run_dir)])
    assert panel.resume_button.isEnabled()
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    page = window.train_page
    qtbot.waitUntil(lambda: not page.is_training(), timeout=120_000)
    history = (run_dir / "history.jsonl").read_text().splitlines()
    assert len(history) == 150
    record = window.state.project.runs[0]
    assert record.status == "finished" and len(window.state.project.runs) == 1
    assert not panel.resumable(record)


def test_clicking_a_confusion_cell_shows_its_images_most_confident_first(qtbot, window, user):
    load_sample(qtbot, window, "digits")
    _train(qtbot, window, epochs=3)
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    ev = page.evaluation
    assert "balanced accuracy" in page.more_metrics.text()
    assert "ROC AUC" in page.more_metrics.text()
    # A click in the middle of the cell (3, 3): the 3s recognised as 3s.
    area, cell = page.matrix._geometry()
    qtbot.mouseClick(page.matrix, Qt.MouseButton.LeftButton,
                     pos=area.topLeft().toPoint() + QPoint(int(3.5 * cell), int(3.5 * cell)))
    dialog = page.findChild(QDialog, "examplesDialog")
    assert dialog is not None
    gallery = dialog.view
    expected = int(ev.confusion[3, 3])
    assert gallery.count() == expected > 0
    sure = [ev.proba[gallery.item(i).data(Qt.ItemDataRole.UserRole), 3]
            for i in range(gallery.count())]
    assert sure == sorted(sure, reverse=True)
    assert all(ev.y_true[gallery.item(i).data(Qt.ItemDataRole.UserRole)] == 3
               for i in range(gallery.count()))
    dialog.close()
    mistakes = page.show_mistakes()
    wrong = int((ev.y_pred != ev.y_true).sum())
    assert len(mistakes.rows) == min(200, wrong)
    assert all(ev.y_pred[r] != ev.y_true[r] for r in mistakes.rows)
    sure = [ev.proba[r, ev.y_pred[r]] for r in mistakes.rows]
    assert sure == sorted(sure, reverse=True)
    mistakes.close()


def test_table_examples_show_the_rows_themselves(qtbot, window, user):
    load_sample(qtbot, window, "iris")
    _train(qtbot, window, epochs=3)
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    dialog = page.show_cell(0, 0)
    table = dialog.view
    assert table.rowCount() == int(page.evaluation.confusion[0, 0])
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers[:3] == ["Is", "Model said", "Sure"] and "species" in headers
    dialog.close()
    page.normalize_combo.setCurrentIndex(1)
    assert page.matrix.normalized and page.matrix.cell_text(0, 0).endswith("%")


def _evaluated(qtbot, window, sample, **training):
    load_sample(qtbot, window, sample)
    _train(qtbot, window, **training)
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    return page


def test_binary_threshold_moves_the_matrix_and_metrics_live(qtbot, window, user):
    from sklearn.metrics import accuracy_score

    page = _evaluated(qtbot, window, "breast_cancer", epochs=3)
    ev = page.evaluation
    assert page.threshold_row.isVisibleTo(page)
    page.threshold_slider.setValue(90)
    pred = (ev.proba[:, 1] >= 0.9).astype(int)
    assert page.matrix.matrix.sum() == ev.n
    assert page.matrix.matrix[:, 1].sum() == pred.sum()
    assert page.cards[0].value_label.text() == f"{100 * accuracy_score(ev.y_true, pred):.1f}%"
    assert "0.90" in page.threshold_label.text()
    dialog = page.show_cell(0, 0)  # the cell follows the threshold too
    assert len(dialog.rows) == int(page.matrix.matrix[0, 0])
    dialog.close()
    page.class_tabs.setCurrentIndex(1)
    assert len(page.curves.areas["roc"]) == 1
    assert page.curves.areas["roc"][0] == pytest.approx(ev.metrics["roc_auc"])
    assert "ROC AUC" in page.curves.caption.text()


def test_regression_shows_residuals_and_the_largest_errors(qtbot, window, user):
    page = _evaluated(qtbot, window, "diabetes", epochs=3)
    ev = page.evaluation
    assert "mean absolute % error" in page.more_metrics.text()
    residuals = page.residuals.residuals
    assert np.allclose(residuals, ev.y_pred - ev.y_true)
    dialog = page.show_largest_errors()
    errors = np.abs(ev.y_pred - ev.y_true)[dialog.rows]
    assert list(errors) == sorted(errors, reverse=True)
    assert dialog.view.rowCount() == len(dialog.rows)
    dialog.close()


def test_several_classes_get_a_curve_each(qtbot, window, user):
    page = _evaluated(qtbot, window, "wine", epochs=3)
    assert not page.threshold_row.isVisibleTo(page)
    assert len(page.curves.areas["roc"]) == 3
    assert np.mean(page.curves.areas["roc"]) == pytest.approx(page.evaluation.metrics["roc_auc"])


def test_evaluating_on_the_validation_split(qtbot, window, user):
    page = _evaluated(qtbot, window, "wine", epochs=2)
    assert page.evaluation.source == "test split"
    combo = page.split_combo
    combo.setCurrentIndex(combo.findData("val"))
    combo.activated.emit(combo.currentIndex())
    qtbot.waitUntil(lambda: page.evaluation.source == "validation split", timeout=30_000)
    run_dir = window.state.current_run.path
    with np.load(run_dir / "split.npz") as split:
        assert page.evaluation.n == len(split["val"])
    assert "validation split" in page.source_label.text()
    combo.setCurrentIndex(combo.findData("test"))
    combo.activated.emit(combo.currentIndex())
    qtbot.waitUntil(lambda: page.evaluation.source == "test split", timeout=30_000)


def test_feature_importance_from_the_evaluate_page(qtbot, window, user):
    page = _evaluated(qtbot, window, "iris", epochs=20, lr=0.01)
    panel = page.importance
    assert page.class_tabs.indexOf(panel) >= 0
    page.class_tabs.setCurrentWidget(panel)
    qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
    assert set(panel.chart.labels) == {"sepal_length", "sepal_width", "petal_length",
                                       "petal_width"} or len(panel.chart.labels) == 4
    assert panel.chart.labels[0] == panel.result.features[0]
    assert "relies most on" in panel.note.text()
    # The value axis says what the bars measure (it used to say "rows").
    value_axis = panel.chart.getPlotItem().getAxis("bottom").labelText
    assert value_axis == "drop in accuracy when the column is shuffled (percentage points)"


def test_importance_bars_are_horizontal_sorted_and_named_in_full(qtbot):
    import pyqtgraph as pg

    from gui.widgets.eval_plots import ImportanceChart

    chart = ImportanceChart()
    qtbot.addWidget(chart)
    chart.resize(700, 500)
    chart.show()
    long_name = "mean concave points of the nucleus"
    chart.set_importance(["a", long_name, "c"], [0.1, 0.5, -0.02], [0.01, 0.02, 0.01],
                         "drop in R² when the column is shuffled", "Feature importance")
    plot = chart.getPlotItem()
    assert chart.labels == [long_name, "a", "c"]  # most important first, on top
    assert plot.getViewBox().yInverted()
    bars = next(i for i in plot.items if isinstance(i, pg.BarGraphItem))
    assert list(bars.opts["width"]) == [0.5, 0.1, -0.02]  # lengths along x: horizontal
    assert list(bars.opts["y"]) == [0, 1, 2] and bars.opts["height"] < 1
    left = plot.getAxis("left")
    assert [label for _, label in left._tickLevels[0]] == [long_name, "a", "c"]  # not cut
    qtbot.waitUntil(lambda: left.width() > chart.fontMetrics().horizontalAdvance(long_name),
                    timeout=2000)  # room for the longest name, laid out a moment later
    assert left.labelText == "" and "rows" not in plot.getAxis("bottom").labelText
    assert plot.getAxis("bottom").labelText == "drop in R² when the column is shuffled"
    # Thirty columns in a short chart: only as many as can be read, and the title says so.
    names = [f"column_{i:02d}" for i in range(30)]
    chart.resize(700, 300)
    chart.set_importance(names, list(np.linspace(1, 0, 30)), [0.0] * 30, "drop", "Importance")
    assert 3 <= len(chart.labels) < 30 and chart.labels == names[:len(chart.labels)]
    assert f"the {len(chart.labels)} of 30 columns" in plot.titleLabel.text
    chart.resize(700, 900)
    qtbot.waitUntil(lambda: len(chart.labels) > 12, timeout=2000)
