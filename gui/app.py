"""Starting the desktop application."""

from __future__ import annotations

import gc
import logging
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from . import crash


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, background="w", foreground="#333333")


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
    crash.setup_logging()
    windows = []  # the handler saves this window's project before it says anything
    crash.install_excepthook(lambda: windows[0] if windows else None)

    from .main_window import MainWindow

    window = MainWindow()  # also moves garbage collection to this thread (workers/gc_guard.py)
    windows.append(window)
    window.show()
    keep_gui_responsive()
    if argv and argv[0].endswith(".tdproj"):
        window.open_project(argv[0])
    return app.exec()
