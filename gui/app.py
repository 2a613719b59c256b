"""Starting the desktop application."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from . import crash


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    from . import theme

    colors = theme.colors()
    pg.setConfigOptions(antialias=True, background=colors.plot_background,
                        foreground=colors.plot_foreground)


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


class StartupProbe(QObject):
    """For ``bench/bench_startup.py``: print when the window is first painted and when the app
    is ready to train (wall-clock seconds since the epoch), then quit. Enabled by the
    ``TRAINDESK_STARTUP_PROBE`` environment variable."""

    def __init__(self, window):
        super().__init__(window)
        self.painted = False
        window.installEventFilter(self)
        window.ready.connect(self._on_ready)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if not self.painted and event.type() == QEvent.Type.Paint:
            self.painted = True
            print(f"startup-probe painted {time.time():.4f}", flush=True)
        return False

    def _on_ready(self) -> None:
        print(f"startup-probe ready {time.time():.4f}", flush=True)
        QTimer.singleShot(0, QApplication.instance().quit)


def run_app(argv: list[str]) -> int:
    """Create the application, show the window at once, then load the rest; return the exit
    code. Heavy modules (torch, pandas, pyqtgraph) load after the window is painted: see
    :class:`gui.main_window.MainWindow`."""
    logging.basicConfig(level=logging.WARNING)
    QApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("TrainDesk")
    app.setOrganizationName("TrainDesk")
    app.setDesktopFileName("traindesk")
    app.setStyle("Fusion")
    from . import icons
    from .main_window import MainWindow

    app.setWindowIcon(icons.app_icon())
    crash.setup_logging()
    windows = []  # the handler saves this window's project before it says anything
    crash.install_excepthook(lambda: windows[0] if windows else None)

    window = MainWindow(deferred=True)
    window.apply_theme()  # the chosen theme (or the system's), before the first paint
    windows.append(window)
    if os.environ.get("TRAINDESK_STARTUP_PROBE"):
        StartupProbe(window)
    else:
        window.ready.connect(lambda: window.after_start(argv))

    # After the heavy imports, so that gc.freeze() takes them along.
    window.ready.connect(keep_gui_responsive)
    window.show()
    window.start_loading()  # begins once the window has been painted
    return app.exec()
