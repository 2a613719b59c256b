"""Message boxes and file dialogs, in one place so that tests can answer them.

Errors are shown window-modal but non-blocking (``QMessageBox.open()``), so the event loop - and a
running training - keep going while the message is up.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


def show_error(parent: QWidget, title: str, message: str) -> QMessageBox:
    """Show *message* to the user without blocking; return the box."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("errorBox")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def ask_yes_no(parent: QWidget, title: str, question: str) -> bool:
    """A blocking yes/no question."""
    answer = QMessageBox.question(parent, title, question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_save_discard_cancel(parent: QWidget, title: str, question: str) -> str:
    """A blocking question answered ``"save"``, ``"discard"`` or ``"cancel"``."""
    buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
               | QMessageBox.StandardButton.Cancel)
    answer = QMessageBox.question(parent, title, question, buttons,
                                  QMessageBox.StandardButton.Save)
    return {QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard"}.get(answer, "cancel")


def open_file(parent: QWidget, title: str, filters: str, directory: str = "") -> str:
    """Ask for an existing file; ``""`` if cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, directory, filters)
    return path


def save_file(parent: QWidget, title: str, filters: str, directory: str = "") -> str:
    """Ask for a file to write; ``""`` if cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, directory, filters)
    return path


def open_folder(parent: QWidget, title: str, directory: str = "") -> str:
    """Ask for an existing folder; ``""`` if cancelled."""
    return QFileDialog.getExistingDirectory(parent, title, directory)
