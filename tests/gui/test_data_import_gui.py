"""The Data page with the data people really have: odd CSVs, text, image folders, bad input."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt

from tests.gui.test_data_page import open_csv
from tests.ml.test_import_pipeline import make_image_folder, make_text_csv


def open_folder(qtbot, window, user, path):
    user.open_paths.append(str(path))
    qtbot.mouseClick(window.data_page.folder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.data_page.loader.is_running(), timeout=30_000)


def wait_health(qtbot, page):
    qtbot.waitUntil(lambda: not page.health_runner.is_running()
                    and not page._health_timer.isActive(), timeout=20_000)


def test_excel_export_in_latin1_with_semicolons_and_decimal_commas(qtbot, window, user,
                                                                    tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"Größe": rng.normal(170, 10, 80).round(1),
                          "Stadt": rng.choice(["Köln", "München"], 80),
                          "Klasse": rng.choice(["groß", "klein"], 80)})
    path = tmp_path / "export.csv"
    frame.to_csv(path, sep=";", decimal=",", encoding="cp1252", index=False)
    open_csv(qtbot, window, user, path)
    page, state = window.data_page, window.state
    assert user.errors == []
    assert page.read_bar.isVisible()
    info = page.read_info_label.text()
    assert "semicolon" in info.lower() and "1252" in info and "comma" in info.lower()
    types = {row[0]: row[1] for row in page.columns_model.rows}
    assert types["Größe"] == "numeric" and types["Stadt"] == "categorical"
    # Overriding the separator re-reads the file with it: one column, which cannot train.
    page.delimiter_combo.setCurrentIndex(page.delimiter_combo.findData(","))
    page.delimiter_combo.activated.emit(page.delimiter_combo.currentIndex())
    qtbot.waitUntil(lambda: not page.loader.is_running(), timeout=20_000)
    assert user.errors and "one column" in user.errors[-1][1]
    assert state.dataset.frame.shape[1] == 3  # the good import stays


def test_missing_value_strategy_is_chosen_in_the_columns_table(qtbot, window, user, tmp_path):
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0] * 20, "b": list("xyzx") * 20,
                          "y": ["p", "q"] * 40})
    path = tmp_path / "m.csv"
    frame.to_csv(path, index=False)
    open_csv(qtbot, window, user, path)
    page, state = window.data_page, window.state
    row = [r[0] for r in page.columns_model.rows].index("a")
    assert page.columns_model.rows[row][3] == 20  # missing count shown
    # The "If missing" header says what a fill does, and that a "was missing" feature is kept.
    tip = page.columns_model.headerData(4, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert "median" in tip and '"was missing" feature' in tip
    assert page.columns_model.setData(page.columns_model.index(row, 4), "drop")
    assert state.project.data.missing == {"a": "drop"}
    assert state.summary.n_rows == 60
    assert page.columns_model.setData(page.columns_model.index(row, 4), "constant")
    assert page.columns_model.setData(page.columns_model.index(row, 5), "-1")
    assert state.project.data.fill_values == {"a": "-1"}
    # Encoding applies to categorical columns only.
    brow = [r[0] for r in page.columns_model.rows].index("b")
    assert page.columns_model.flags(page.columns_model.index(row, 6)) & \
        Qt.ItemFlag.ItemIsEnabled == Qt.ItemFlag.NoItemFlags
    assert page.columns_model.setData(page.columns_model.index(brow, 6), "embedding")
    assert state.project.data.encodings == {"b": "embedding"}


def test_text_csv_shows_the_tokeniser_preview(qtbot, window, user, tmp_path):
    path = make_text_csv(tmp_path / "reviews.csv")
    open_csv(qtbot, window, user, path)
    page, state = window.data_page, window.state
    page.target_combo.setCurrentText("sentiment")
    assert state.summary.kind == "text"
    assert page.tabs.isTabVisible(page.text_tab)
    panel = page.text_panel
    assert panel.preview_model.rowCount() > 0
    assert "Vocabulary" in panel.stats_label.text()
    panel.vocab_spin.setValue(150)
    assert state.project.data.text["max_vocab"] == 150
    assert state.spec is not None and state.spec.name == "text"
    assert window.next_button.isEnabled()


def test_image_folder_import_shows_images_and_trains(qtbot, window, user, tmp_path):
    folder = make_image_folder(tmp_path / "shapes", n=10)
    (folder / "circle" / "broken.png").write_bytes(b"not a png at all")
    open_folder(qtbot, window, user, folder)
    page, state = window.data_page, window.state
    assert user.errors == []
    assert state.dataset.kind == "image" and state.summary.kind == "image"
    assert page.tabs.isTabVisible(page.images_tab) and not page.tabs.isTabVisible(
        page.columns_tab)
    assert any("skipped" in w for w in state.summary.warnings)
    assert state.spec is not None and state.spec.name == "cnn"
    # The chart is drawn a moment after the tables (one event-loop turn later).
    qtbot.waitUntil(lambda: page.balance_chart.labels == ["circle", "square"], timeout=2000)
    wait_health(qtbot, page)
    assert any(f.key == "skipped" for f in page.health_view.findings)


def test_health_tab_offers_class_weights(qtbot, window, user, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "y": ["big"] * 180 + ["small"] * 20})
    path = tmp_path / "imb.csv"
    frame.to_csv(path, index=False)
    open_csv(qtbot, window, user, path)
    page, state = window.data_page, window.state
    wait_health(qtbot, page)
    assert "Health (" in page.tabs.tabText(page.health_tab)
    button = page.health_view.findChild(type(page.open_button), "fix_imbalance")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert state.project.training.class_weights == "balanced"
    assert page.weights_check.isChecked()


def test_bad_image_sources_get_one_sentence_and_change_nothing(qtbot, window, user, tmp_path):
    from tests.gui.conftest import load_sample

    load_sample(qtbot, window, "iris")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    one = make_image_folder(tmp_path / "one", classes=("only",), n=3)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("cats/a.png", b"x")
        zf.writestr("../../escape.png", b"x")
    open_folder(qtbot, window, user, empty)
    assert "no images" in user.errors[-1][1]
    open_folder(qtbot, window, user, one)
    assert "one class" in user.errors[-1][1]
    open_csv(qtbot, window, user, evil)
    assert "escape" in user.errors[-1][1] or "outside" in user.errors[-1][1]
    assert len(user.errors) == 3
    assert all("Traceback" not in message for _, message in user.errors)
    assert window.state.dataset.source == "sample:iris"


def test_import_can_be_cancelled(qtbot, window, user, tmp_path):
    from tests.gui.conftest import load_sample

    load_sample(qtbot, window, "iris")
    folder = make_image_folder(tmp_path / "many", n=150, size=48)
    page = window.data_page
    user.open_paths.append(str(folder))
    qtbot.mouseClick(page.folder_button, Qt.MouseButton.LeftButton)
    assert page.cancel_button.isVisible()
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.loader.is_running(), timeout=20_000)
    assert not page.cancel_button.isVisible()
    assert window.state.dataset.source == "sample:iris"
    assert user.errors == []
