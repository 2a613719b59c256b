"""Starting the desktop application."""

from __future__ import annotations

import gc
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


def keep_gui_responsive() -> None:
    """Interpreter settings that keep the window live while Python works in background threads.

    - Every Python slot, model ``data()`` call and paint override the GUI thread runs needs the
      GIL. With the default 5 ms switch interval a busy worker thread makes each of them wait
      up to 5 ms, and one repaint makes hundreds: imports froze the window for 0.2 s. 0.5 ms
      bounds that wait (measured by ``bench/bench_import.py --only gui``).
    - ``gc.freeze()`` moves everything allocated at start-up (torch, Qt, pandas: millions of
      objects) out of the collector's reach, so a full collection triggered by a worker's
      allocations no longer walks them while holding the GIL.
    """
    sys.setswitchinterval(0.0005)
    gc.freeze()


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

    window = MainWindow()  # also moves garbage collection to this thread (workers/gc_guard.py)
    window.show()
    keep_gui_responsive()
    if argv and argv[0].endswith(".tdproj"):
        window.open_project(argv[0])
    return app.exec()
