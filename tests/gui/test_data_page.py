"""Bad data in the GUI: a clear message, and nothing already loaded or saved is lost."""

import pandas as pd
from PySide6.QtCore import Qt

from tests.gui.conftest import load_sample


def open_csv(qtbot, window, user, path):
    user.open_paths.append(str(path))
    qtbot.mouseClick(window.data_page.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.data_page.loader.is_running(), timeout=20_000)


def test_a_broken_file_shows_a_message_and_keeps_the_current_data(qtbot, window, user,
                                                                   tmp_path):
    load_sample(qtbot, window, "iris")
    for name, content, words in (("missing.csv", None, "not found"),
                                 ("empty.csv", b"", "empty"),
                                 ("image.csv", b"\x89PNG\x00\x00", "binary"),
                                 ("ragged.csv", b"a,b\n1,2\n1,2,3,4\n", "consistent")):
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        open_csv(qtbot, window, user, path)
        assert user.errors and words in user.errors[-1][1]
        assert window.state.dataset.source == "sample:iris"
        assert window.state.step_enabled(1)
    assert len(user.errors) == 4


def test_csv_import_with_target_and_column_choices(qtbot, window, user, mixed_csv):
    open_csv(qtbot, window, user, mixed_csv)
    state, page = window.state, window.data_page
    assert user.errors == []
    assert page.target_combo.currentText() == "label"  # the last column is proposed
    qtbot.waitUntil(lambda: page.preview_model.rowCount() == 240, timeout=2000)
    types = {row[0]: row[1] for row in page.columns_model.rows}
    assert types == {"id": "numeric", "size": "numeric", "colour": "categorical",
                     "member": "boolean", "label": "categorical"}
    qtbot.waitUntil(lambda: page.balance_chart.labels == ["high", "low"], timeout=2000)
    # Choose a role through the editable Columns table, as a user does.
    index = page.columns_model.index(0, 2)
    assert page.columns_model.setData(index, "ignore")
    assert state.summary.roles["id"] == "ignore"
    assert "id" not in state.summary.features


def test_unknown_and_single_class_targets_lock_the_next_step(qtbot, window, user, tmp_path):
    path = tmp_path / "one_class.csv"
    pd.DataFrame({"x": range(30), "y": ["same"] * 30, "z": range(30)}).to_csv(path, index=False)
    open_csv(qtbot, window, user, path)
    page = window.data_page
    page.target_combo.setCurrentText("y")
    assert "only one class" in page.error_banner.text() and page.error_banner.isVisible()
    assert not window.state.step_enabled(1) and not window.next_button.isEnabled()
    page.target_combo.setCurrentText("z")
    assert not page.error_banner.isVisible()
    assert window.state.step_enabled(1) and window.next_button.isEnabled()


def test_text_where_numbers_are_expected(qtbot, window, user, mixed_csv):
    open_csv(qtbot, window, user, mixed_csv)
    page = window.data_page
    row = [r[0] for r in page.columns_model.rows].index("colour")
    page.columns_model.setData(page.columns_model.index(row, 1), "numeric")
    assert "'colour' is set to numeric" in page.error_banner.text()
    assert not window.state.step_enabled(1)
    page.columns_model.setData(page.columns_model.index(row, 1), "categorical")
    assert window.state.step_enabled(1)


def test_regression_target_on_text_is_explained(qtbot, window, user, mixed_csv):
    open_csv(qtbot, window, user, mixed_csv)
    page = window.data_page
    page.task_combo.setCurrentIndex(page.task_combo.findData("regression"))
    assert "holds text" in page.error_banner.text()
    page.task_combo.setCurrentIndex(page.task_combo.findData(None))
    assert window.state.summary.task == "classification"


def test_demoting_the_target_asks_for_a_new_one(qtbot, window, user, mixed_csv):
    open_csv(qtbot, window, user, mixed_csv)
    page = window.data_page
    row = [r[0] for r in page.columns_model.rows].index("label")
    page.columns_model.setData(page.columns_model.index(row, 2), "feature")
    assert "Choose the column to predict" in page.error_banner.text()
    assert not window.state.step_enabled(1)
    page.target_combo.setCurrentText("member")
    assert window.state.summary.target == "member"


def test_a_load_started_before_new_project_does_not_land_in_it(qtbot, window, user):
    window.data_page.load_source("sample:wine")
    window.new_project()  # before the loaded dataset reached the GUI thread
    qtbot.wait(500)
    assert window.state.dataset is None and window.state.project.data.source == ""


def test_a_project_that_cannot_be_reopened_is_not_saved(qtbot, window, user, tmp_path):
    load_sample(qtbot, window, "iris")
    window.data_page.val_spin.setValue(45)
    window.data_page.test_spin.setValue(45)
    user.save_paths.append(str(tmp_path / "bad.tdproj"))
    window.save_as_action.trigger()
    assert "cannot be saved yet" in user.errors[-1][1]
    assert not (tmp_path / "bad.tdproj").exists()
