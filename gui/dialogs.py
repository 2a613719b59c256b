"""Message boxes and file dialogs, in one place so that tests can answer them.

Errors are shown window-modal but non-blocking (``QMessageBox.open()``), so the event loop - and a
running training - keep going while the message is up.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ml.errors import details_for, technical_details


def show_error(parent: QWidget, title: str, message: str | BaseException,
               details: str | None = None) -> QMessageBox:
    """Show *message* to the user without blocking; return the box.

    The technical part goes under "Show Details..." for a bug report: *details*, or the
    traceback of *message* when it is an exception, or what the background work that failed
    with this message left (:func:`ml.errors.details_for`).
    """
    if isinstance(message, BaseException):
        details = details if details is not None else technical_details(message)
        message = str(message)
    elif details is None:
        details = details_for(message)
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("errorBox")
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def show_info(parent: QWidget, title: str, message: str) -> QMessageBox:
    """Tell the user something that went well (or was put right), without blocking."""
    box = QMessageBox(QMessageBox.Icon.Information, title, message, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("infoBox")
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
