"""Run Python's cyclic garbage collector on the GUI thread only.

The collector runs on whichever thread happens to allocate when a generation fills up. When that is
a worker thread and the garbage holds Qt widgets (a closed dialog, a replaced panel, a plot), their
C++ destructors run on the worker. Qt then takes an object's connection mutex there and shiboken
waits for the GIL, while the GUI thread, holding the GIL, waits for that mutex: the app freezes for
good. This was seen as a hang with a worker inside ``torch.load`` collecting an old window.

So automatic collection is switched off and a timer on the GUI thread collects each generation when
its allocation count passes the usual threshold - the same schedule Python would keep, on the one
thread where destroying widgets is safe. Worker code that needs a collection now (freeing GPU
memory after running out of it) asks for one with :func:`collect_garbage`.
"""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Slot

from ml.system import device

#: How often the GUI thread looks at the collector's counts.
INTERVAL_MS = 250

_guard: GuiThreadCollector | None = None


class GuiThreadCollector(QObject):
    """Owns the collection schedule while a Qt application runs (see the module docstring)."""

    def __init__(self, app: QCoreApplication):
        super().__init__(app)
        self._thresholds = gc.get_threshold()
        self._wanted = threading.Event()  # a worker asked for a full collection
        self._done = threading.Event()
        self.timer = QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()
        app.aboutToQuit.connect(self.stop)
        gc.disable()

    @Slot()
    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds (or all, if asked)."""
        if self._wanted.is_set():
            self._wanted.clear()
            gc.collect()
            self._done.set()
            return
        counts = gc.get_count()
        generation = -1
        for i, (count, threshold) in enumerate(zip(counts, self._thresholds)):
            if count > threshold:
                generation = i
        if generation >= 0:
            gc.collect(generation)

    def request_full(self, timeout_s: float) -> bool:
        """From any thread: have the GUI thread run a full collection; wait up to *timeout_s*."""
        self._done.clear()
        self._wanted.set()
        return self._done.wait(timeout_s)

    @Slot()
    def stop(self) -> None:
        self.timer.stop()
        gc.enable()


def install(app: QCoreApplication | None = None) -> GuiThreadCollector | None:
    """Start collecting on the GUI thread (idempotent); None without a Qt application."""
    global _guard
    app = app or QCoreApplication.instance()
    if app is None:
        return None
    if _guard is None or _guard.parent() is not app:
        _guard = GuiThreadCollector(app)
        device.set_garbage_collector(collect_garbage)
    elif not _guard.timer.isActive():
        _guard.timer.start()
        gc.disable()
    return _guard


def uninstall() -> None:
    """Give collection back to Python (tests without Qt run after tests with it)."""
    if _guard is not None:
        _guard.stop()


def collect_garbage() -> None:
    """A full collection that is safe from any thread of the app.

    On the GUI thread (or without the guard) it collects at once; from a worker it hands the
    collection to the GUI thread and waits at most two seconds, so a busy GUI cannot stall it.
    """
    app = QCoreApplication.instance()
    if _guard is None or app is None or QThread.currentThread() is app.thread():
        gc.collect()
        return
    _guard.request_full(timeout_s=2.0)
