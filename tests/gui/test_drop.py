"""Drag and drop onto the window: a data file, a folder of images, a project, junk."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from ml.runs.project import DataConfig, Project
from tests.ml.test_import_pipeline import make_image_folder, make_text_csv


def _mime(*paths) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drop(window, *paths) -> bool:
    """Drag *paths* over the window and let go; return whether the window took the drag."""
    mime = _mime(*paths)
    enter = QDragEnterEvent(QPoint(200, 200), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    if not enter.isAccepted():
        return False
    window.dropEvent(QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    return True


def _loaded(qtbot, window, source):
    qtbot.waitUntil(lambda: window.state.dataset is not None
                    and window.state.dataset.source == str(source), timeout=30_000)


def test_dropping_data_and_a_project_anywhere(qtbot, window, user, tmp_path):
    window.go_to(0)
    assert window.acceptDrops()
    csv = make_text_csv(tmp_path / "reviews.csv")
    assert drop(window, csv)
    _loaded(qtbot, window, csv)
    assert window.pages.currentWidget() is window.data_page

    images = make_image_folder(tmp_path / "shapes", n=4)
    assert drop(window, images)
    _loaded(qtbot, window, images)
    assert window.state.dataset.kind == "image"

    project = Project(data=DataConfig(source=str(csv), target="sentiment"))
    project.name = "dropped"
    path = project.save(tmp_path / "dropped.tdproj")
    window.state.set_dirty(True)
    user.save_discard_cancel = "cancel"  # unsaved changes: the user keeps them
    assert drop(window, path)
    assert window.state.project.path is None
    user.save_discard_cancel = "discard"
    assert drop(window, path)
    assert window.state.project.path == path and window.state.project.name == "dropped"
    assert user.errors == []


def test_a_dropped_file_that_is_not_data_gets_a_message(qtbot, window, user, tmp_path):
    junk = tmp_path / "notes.bin"
    junk.write_bytes(b"\x00\x01\x02 not a table")
    assert drop(window, junk)
    qtbot.waitUntil(lambda: bool(user.errors), timeout=30_000)
    assert user.errors[0][0] == "Could not open the data"
    assert window.state.dataset is None  # nothing half-loaded


def test_things_that_are_not_files_are_refused(qtbot, window, tmp_path):
    assert not drop(window, tmp_path / "does-not-exist.csv")
    mime = QMimeData()
    mime.setText("just some text")
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    window.dragEnterEvent(enter)
    assert not enter.isAccepted()
