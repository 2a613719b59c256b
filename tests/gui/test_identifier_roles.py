"""The Data page proposes identifier columns (R's row names) as ignore."""

from PySide6.QtCore import Qt

from tests.ml.test_identifier_columns import _r_style_csv


def test_row_names_are_proposed_as_ignore(qtbot, window, user, tmp_path):
    path = _r_style_csv(tmp_path / "cars.csv")
    user.open_paths.append(str(path))
    qtbot.mouseClick(window.data_page.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state.summary is not None, timeout=20_000)
    page = window.data_page
    roles = {row[0]: row[2] for row in page.columns_model.rows}
    assert roles == {"rownames": "ignore", "size": "feature", "year": "feature",
                     "label": "target"}
    examples = {row[0]: row[-1] for row in page.columns_model.rows}
    assert examples["rownames"].endswith("(identifier?)")
    assert window.state.summary.features == ["size", "year"]
