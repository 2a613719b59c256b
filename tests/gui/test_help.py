"""The Help menu: "Why is my GPU not used?"."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from ml.system.gpu_check import check_gpu


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


def test_glossary_explains_the_terms_the_issue_names_and_filters(qtbot, window):
    from gui.glossary import GLOSSARY

    for term in ("Epoch", "Batch size", "Learning rate", "Dropout", "Overfitting", "F1 score"):
        assert len(GLOSSARY[term].split()) >= 6  # a sentence, not a label
    assert window.glossary_action.shortcut().toString() == "F1"
    window.glossary_action.trigger()
    dialog = window._glossary
    qtbot.waitExposed(dialog)
    every = dialog.text.toPlainText()
    assert all(term in every for term in GLOSSARY)
    qtbot.keyClicks(dialog.search, "epoch")
    shown = dialog.text.toPlainText()
    assert "Epoch -" in shown and "Early stopping" in shown  # its meaning mentions epochs
    assert "Precision" not in shown
    dialog.search.setText("zzzz")
    assert "No term matches" in dialog.text.toPlainText()
    # Asking again shows the same window, not a second one.
    window.glossary_action.trigger()
    assert window._glossary is dialog
    dialog.reject()
