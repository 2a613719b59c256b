"""A step that fails shows as failed: the health check's error, a package nobody could check."""

from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from ml.errors import DataError
from tests.conftest import ROOT
from tests.gui.conftest import load_sample
from tests.gui.test_data_import_gui import wait_health
from tests.gui.test_data_page import open_csv


def _shown_labels(view) -> list[QLabel]:
    return [w for w in view.findChildren(QLabel) if w.isVisibleTo(view)]


def test_a_failing_health_check_shows_its_error_not_the_previous_ticks(qtbot, window, user,
                                                                       monkeypatch):
    import workers.import_worker as import_worker

    load_sample(qtbot, window, "iris")
    page = window.data_page
    wait_health(qtbot, page)
    assert page.tabs.tabText(page.health_tab) == "Health ✓"
    assert page.health_view.error == ""

    def broken(dataset, config, **kwargs):
        raise DataError("The column 'sepal_length' could not be hashed.")

    with monkeypatch.context() as patch:  # not monkeypatch.undo(): the dialogs stay answered
        patch.setattr(import_worker, "check_health", broken)
        page.seed_spin.setValue(page.seed_spin.value() + 1)  # any edit checks the data again
        qtbot.waitUntil(lambda: bool(page.health_view.error), timeout=20_000)
        wait_health(qtbot, page)
    assert page.tabs.tabText(page.health_tab) == "Health (check failed)"
    assert page.health_view.findings == []
    texts = [label.text() for label in _shown_labels(page.health_view)]
    assert texts == ["The health check could not run: The column 'sepal_length' could not be "
                     "hashed."]
    assert page.health_view.findChild(QLabel, "healthError").property("problem") is True
    assert user.errors == []  # advisory: shown in its tab, no error box

    # The check works again: the error goes, the findings come back.
    page.seed_spin.setValue(page.seed_spin.value() + 1)
    qtbot.waitUntil(lambda: not page.health_view.error, timeout=20_000)
    wait_health(qtbot, page)
    assert page.tabs.tabText(page.health_tab) == "Health ✓"
    assert page.health_view.findChild(QLabel, "healthError") is None or not \
        page.health_view.findChild(QLabel, "healthError").isVisibleTo(page.health_view)


def test_a_package_whose_test_rows_are_gone_is_a_warning_not_a_match_on_0_rows(qtbot, window,
                                                                               user, tmp_path):
    data = tmp_path / "flowers.csv"
    frame = pd.read_csv(ROOT / "resources" / "samples" / "iris.csv")
    frame.to_csv(data, index=False)
    open_csv(qtbot, window, user, data)
    window.state.update_data(target="species")
    window.state.update_training(epochs=1)
    window.go_to(2)
    window.train_page.start_training()
    qtbot.waitUntil(lambda: not window.train_page.is_training(), timeout=120_000)
    frame.head(20).to_csv(data, index=False)  # the file changes after training

    window.go_to(4)
    export = window.export_page
    export.set_format("package")
    export.path_edit.setText(str(tmp_path / "pkg"))
    export.last_report = None
    qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: export.last_report is not None or bool(user.errors),
                    timeout=120_000)
    assert user.errors == []
    text = export.banner.text()
    assert export.banner.kind == "warning" and text.startswith("⚠")
    assert "NOT checked on raw rows" in text and "changed after this run was trained" in text
    assert "0 raw rows" not in text and "matches the app" not in text
