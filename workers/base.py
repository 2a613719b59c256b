"""Background work that talks to the GUI only through signals.

As in superqt's thread workers: a worker is a QObject moved to its own QThread; cancelling only
sets a flag the work checks between steps (a thread is never killed); every exception is
caught and emitted as ``errored`` with a message the user can read. As in Orange's
``ConcurrentWidgetMixin``, a :class:`TaskRunner` runs one task at a time and a new task replaces
the old one, whose late results are ignored.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QThread, Signal, Slot

from ml.errors import TrainDeskError, remember_details

log = logging.getLogger(__name__)


def describe_exception(exc: BaseException) -> str:
    """A message for the user: ours verbatim, anything else as an internal error."""
    if isinstance(exc, TrainDeskError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "The computer ran out of memory. Use a smaller batch size, model or dataset."
    return (f"Something went wrong inside TrainDesk ({type(exc).__name__}: {exc}). Your project "
            f"and earlier runs are safe. The details are in the log file (Help → Where is the "
            f"log file?); please report this.")


class Worker(QObject):
    """Base class: override :meth:`work`; connect to ``finished`` and ``errored``."""

    finished = Signal(object)
    errored = Signal(str)

    def __init__(self):
        super().__init__()
        self._cancelled = False

    def cancel(self) -> None:
        """Ask the work to stop at its next check. Safe from any thread."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def work(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        try:
            result = self.work()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a signal
            if not isinstance(exc, TrainDeskError):
                log.error("worker failed:\n%s", traceback.format_exc())
            message = describe_exception(exc)
            remember_details(message, exc)  # the error dialog's "Show Details..."
            self.errored.emit(message)
        else:
            self.finished.emit(result)


class FunctionWorker(Worker):
    """Run ``fn(*args, **kwargs)`` in the background."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any):
        super().__init__()
        self._call = (fn, args, kwargs)

    def work(self) -> Any:
        fn, args, kwargs = self._call
        return fn(*args, **kwargs)


class _ThreadReaper(QObject):
    """Keep every worker thread referenced until it has really ended.

    Dropping the last reference to a running ``QThread`` destroys it and aborts the process, and
    ``QThread.finished`` is emitted from the ending thread itself. So threads are adopted here and
    released only from a queued slot on the GUI thread, after ``wait()``.
    """

    def __init__(self):
        super().__init__()
        self._alive: dict[int, tuple[Worker, QThread]] = {}

    def adopt(self, worker: Worker, thread: QThread) -> None:
        self._alive[id(thread)] = (worker, thread)
        thread.finished.connect(self._on_thread_finished, Qt.ConnectionType.QueuedConnection)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self.sender()
        pair = self._alive.pop(id(thread), None)
        if pair is not None:
            pair[1].wait()

    def wait_all(self, timeout_ms: int = 30_000) -> bool:
        """Wait for every adopted thread to end (they must have been asked to stop)."""
        ok = True
        for _, thread in list(self._alive.values()):
            ok = thread.wait(timeout_ms) and ok
        for key, (_, thread) in list(self._alive.items()):
            if thread.isFinished():
                self._alive.pop(key, None)
        return ok

    @property
    def running(self) -> int:
        return sum(1 for _, t in self._alive.values() if t.isRunning())


_reaper: _ThreadReaper | None = None


def thread_reaper() -> _ThreadReaper:
    """The process-wide reaper (created on, and bound to, the GUI thread)."""
    global _reaper
    if _reaper is None:
        _reaper = _ThreadReaper()
        app = QCoreApplication.instance()
        if app is not None and _reaper.thread() is not app.thread():
            _reaper.moveToThread(app.thread())
    return _reaper


class TaskRunner(QObject):
    """Run one worker at a time on its own thread.

    ``finished``/``errored`` re-emit the current worker's signals; signals from a worker that
    was replaced or cancelled are dropped, so a slow old task can never overwrite newer results.
    """

    finished = Signal(object)
    errored = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._worker: Worker | None = None
        self._threads: list[QThread] = []

    @property
    def worker(self) -> Worker | None:
        return self._worker

    def is_running(self) -> bool:
        return self._worker is not None

    def start(self, worker: Worker) -> Worker:
        """Cancel the current task (if any) and start *worker*."""
        self.cancel()
        thread = QThread()
        thread.setObjectName(type(worker).__name__)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(self._on_worker_finished)
        worker.errored.connect(self._on_worker_errored)
        # quit() is thread-safe: call it from the worker's thread, so the thread can end even
        # while the GUI thread is blocked in wait() (shutdown on close).
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.errored.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread_reaper().adopt(worker, thread)
        self._threads = [t for t in self._threads if not t.isFinished()] + [thread]
        self._worker = worker
        thread.start()
        self.running_changed.emit(True)
        return worker

    def cancel(self) -> None:
        """Ask the current task to stop; its results will be ignored."""
        if self._worker is None:
            return
        self._worker.cancel()
        self._release()

    def request_stop(self) -> None:
        """Ask the current task to stop but still deliver what it returns (e.g. a stopped run)."""
        if self._worker is not None:
            self._worker.cancel()

    def wait_for_result(self, timeout_ms: int = 60_000) -> bool:
        """Block until the current task has delivered its result (or *timeout_ms* passed).

        Events are processed meanwhile, so the result reaches its slots on this thread.
        """
        deadline = time.monotonic() + timeout_ms / 1000
        while self._worker is not None and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)
        return self._worker is None

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for this runner's threads to end (the window closes)."""
        self.cancel()
        ok = True
        for thread in self._threads:
            ok = thread.wait(timeout_ms) and ok
        self._threads = [t for t in self._threads if not t.isFinished()]
        return ok

    def _release(self) -> None:
        self._worker = None
        self.running_changed.emit(False)

    @Slot(object)
    def _on_worker_finished(self, result: object) -> None:
        if self.sender() is self._worker:
            self._release()
            self.finished.emit(result)

    @Slot(str)
    def _on_worker_errored(self, message: str) -> None:
        if self.sender() is self._worker:
            self._release()
            self.errored.emit(message)
