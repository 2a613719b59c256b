"""Starting the desktop application."""

from __future__ import annotations

import logging
import sys
import traceback

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from ml.resources import traindesk_home


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, background="w", foreground="#333333")


def _install_excepthook() -> None:
    """Show an unexpected error in a dialog instead of silently losing the app."""
    log_file = traindesk_home() / "traindesk.log"

    def hook(kind, value, tb):
        text = "".join(traceback.format_exception(kind, value, tb))
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError:
            pass
        sys.__stderr__ and sys.__stderr__.write(text)
        app = QApplication.instance()
        if app is not None:
            QMessageBox.critical(None, "TrainDesk - unexpected error",
                                 f"Something went wrong: {value}\n\nYour saved project and runs "
                                 f"are safe. Details were written to {log_file}.")

    sys.excepthook = hook


def run_app(argv: list[str]) -> int:
    """Create the application and the main window; return the exit code."""
    logging.basicConfig(level=logging.WARNING)
    QApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("TrainDesk")
    app.setOrganizationName("TrainDesk")
    app.setStyle("Fusion")
    configure_pyqtgraph()
    _install_excepthook()

    from .main_window import MainWindow

    window = MainWindow()
    window.show()
    if argv and argv[0].endswith(".tdproj"):
        window.open_project(argv[0])
    return app.exec()
