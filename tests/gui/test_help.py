"""The Help menu: "Why is my GPU not used?"."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from ml.training.gpu_check import check_gpu


def test_gpu_dialog_shows_the_diagnosis_and_copies_it(qtbot, window):
    assert window.gpu_action.text().startswith("Why is my")
    window.gpu_action.trigger()
    dialog = window._gpu_dialog
    qtbot.waitExposed(dialog)
    expected = check_gpu()
    assert dialog.verdict.text() == expected.verdict
    assert "PyTorch" in dialog.details.toPlainText()
    assert dialog.details.isReadOnly()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == expected.text()
    assert dialog.copy_button.text() == "Copied"
    dialog.reject()
    assert not dialog.isVisible()
