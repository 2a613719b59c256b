"""Background work that talks to the GUI only through signals.

As in superqt's thread workers: a worker is a QObject moved to its own QThread; cancelling only
sets a flag the work checks between steps (never ``QThread.terminate()``); every exception is
caught and emitted as ``errored`` with a message the user can read. As in Orange's
``ConcurrentWidgetMixin``, a :class:`TaskRunner` runs one task at a time and a new task replaces
the old one, whose late results are ignored.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ml.errors import TrainDeskError

log = logging.getLogger(__name__)


def describe_exception(exc: BaseException) -> str:
    """A message for the user: ours verbatim, anything else as an internal error."""
    if isinstance(exc, TrainDeskError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "The computer ran out of memory. Use a smaller batch size, model or dataset."
    return (f"Something went wrong inside TrainDesk ({type(exc).__name__}: {exc}). Your project "
            f"and earlier runs are safe; please report this.")


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
            self.errored.emit(describe_exception(exc))
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
        self._thread: QThread | None = None
        self._retired: list[tuple[Worker, QThread]] = []

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
        worker.finished.connect(thread.quit)
        worker.errored.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._worker, self._thread = worker, thread
        thread.start()
        self.running_changed.emit(True)
        return worker

    def cancel(self) -> None:
        """Ask the current task to stop; its results will be ignored."""
        if self._worker is None:
            return
        self._worker.cancel()
        self._retire()

    def request_stop(self) -> None:
        """Ask the current task to stop but still deliver what it returns (e.g. a stopped run)."""
        if self._worker is not None:
            self._worker.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for the threads to end (used when the window closes)."""
        if self._worker is not None:
            self._worker.cancel()
            self._retire()
        ok = True
        for _, thread in list(self._retired):
            ok = thread.wait(timeout_ms) and ok
        self._retired = [(w, t) for w, t in self._retired if t.isRunning()]
        return ok

    def _retire(self) -> None:
        if self._worker is None:
            return
        self._retired.append((self._worker, self._thread))
        self._worker = self._thread = None
        self.running_changed.emit(False)

    @Slot(object)
    def _on_worker_finished(self, result: object) -> None:
        if self.sender() is self._worker:
            self._retire()
            self.finished.emit(result)

    @Slot(str)
    def _on_worker_errored(self, message: str) -> None:
        if self.sender() is self._worker:
            self._retire()
            self.errored.emit(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        # Drop our references only once the thread is really done, so Python does not free a
        # QThread that is still running.
        self._retired = [(w, t) for w, t in self._retired if t.isRunning()]
