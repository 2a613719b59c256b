"""Deleting the Column embeddings layer in the editor is refused with the same sentence as
headless training, and Undo brings the model back."""

from PySide6.QtCore import Qt

from tests.ml.test_embedding_layer_required import ADVICE, cities_csv


def test_removing_the_column_embeddings_layer_locks_training(qtbot, window, user, tmp_path):
    user.open_paths.append(str(cities_csv(tmp_path / "cities.csv")))
    qtbot.mouseClick(window.data_page.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state.summary is not None, timeout=20_000)
    state, page = window.state, window.model_page
    window.go_to(1)
    assert state.layers[0]["type"] == "embed_columns" and state.spec is not None
    page.editor.select(0)
    page.editor.remove_layer()
    assert state.spec is None and not state.step_enabled(2)
    assert not window.train_page.start_button.isEnabled()
    assert ADVICE in page.editor.problem_label.text()
    assert page.editor.problem_label.text().startswith("Layer 1: The data gives 1 categorical")
    assert ADVICE in page.error_banner.text()
    row = page.editor.tree.topLevelItem(0)
    assert "category codes" in row.toolTip(1)
    assert row.foreground(1).color().name() == "#8a1c12"  # dark on light red in both themes
    page.editor.undo_action.trigger()
    assert state.spec is not None and state.step_enabled(2)
    # Adding the layer back by hand works too: its columns come from the data.
    page.editor.select(0)
    page.editor.remove_layer()
    page.editor.select(0)
    page.editor.add_actions["embed_columns"].trigger()  # after the first layer...
    assert "category codes" in page.editor.tree.topLevelItem(0).toolTip(1)
    page.editor.move_layer(-1)  # ... and up to the top
    assert state.layers[0]["type"] == "embed_columns"
    assert state.spec is not None, state.model_error
