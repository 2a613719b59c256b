"""Background work that talks to the GUI only through signals.

As in superqt's thread workers: a worker is a QObject moved to its own QThread; cancelling only
sets a flag the work checks between steps (a thread is never killed); every exception is
caught and emitted as ``errored`` with a message the user can read. As in Orange's
``ConcurrentWidgetMixin``, a :class:`TaskRunner` runs one task at a time and a new task replaces
the old one, whose late results are ignored.
"""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QThread, Signal, Slot

from ml.errors import TrainDeskError, remember_details
from ml.system.jobcontrol import CancelToken

from .jobs import JobRegistry, job_registry

log = logging.getLogger(__name__)

#: Seconds between two progress signals of one worker (Orange's rule: only what can be seen).
PROGRESS_INTERVAL = 0.05


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
    """Base class: override :meth:`work`; connect to ``finished`` and ``errored``.

    Every worker has one cancel flag, :attr:`token` (an :class:`ml.system.jobcontrol.CancelToken`,
    to pass as ``should_stop`` to long ``ml`` calls), and one way to say how far it is:
    :meth:`report_progress`, which emits ``progress(fraction, message)`` at most every
    :data:`PROGRESS_INTERVAL` seconds and keeps the last value for the job registry.
    """

    finished = Signal(object)
    errored = Signal(str)
    progress = Signal(float, str)

    def __init__(self):
        super().__init__()
        self.token = CancelToken()
        self.last_progress: tuple[float, str] = (float("nan"), "")
        self._last_emit = -float("inf")

    @property
    def job_name(self) -> str:
        """What the job registry lists this job as."""
        return type(self).__name__

    def cancel(self) -> None:
        """Ask the work to stop at its next check. Safe from any thread."""
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def report_progress(self, fraction: float, message: str) -> None:
        """The ``progress`` callable long ``ml`` calls take (from the worker's thread)."""
        self.last_progress = (float(fraction), message)
        now = time.monotonic()
        if now - self._last_emit >= PROGRESS_INTERVAL or fraction >= 1.0:
            self._last_emit = now
            self.progress.emit(float(fraction), message)

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
    """Run ``fn(*args, **kwargs)`` in the background.

    When *fn* takes a ``should_stop`` or a ``progress`` keyword, it gets the worker's cancel
    flag and :meth:`~Worker.report_progress`, so cancelling it is not ignored.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any):
        super().__init__()
        accepted = _keywords(fn)
        if "should_stop" in accepted:
            kwargs.setdefault("should_stop", self.token)
        if "progress" in accepted:
            kwargs.setdefault("progress", self.report_progress)
        self._call = (fn, args, kwargs)

    @property
    def job_name(self) -> str:
        return getattr(self._call[0], "__name__", "FunctionWorker").lstrip("_")

    def work(self) -> Any:
        fn, args, kwargs = self._call
        self.token.check()  # cancelled before it began
        return fn(*args, **kwargs)


def _keywords(fn: Callable[..., Any]) -> set[str]:
    """The keyword names *fn* declares (not those a ``**kwargs`` might pass on)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return set()
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


#: Compatibility names: the job registry is what used to be the thread reaper.
_ThreadReaper = JobRegistry
thread_reaper = job_registry


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
        job_registry().add_runner(self)  # closing the window cancels and joins its task

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
        job_registry().adopt(worker, thread)
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

    def _is_current(self, sender: QObject | None) -> bool:
        # sender() is None once the worker is gone (its thread ended and was released before
        # this queued call arrived): never the current one, even when there is none.
        return sender is not None and sender is self._worker

    @Slot(object)
    def _on_worker_finished(self, result: object) -> None:
        if self._is_current(self.sender()):
            self._release()
            self.finished.emit(result)

    @Slot(str)
    def _on_worker_errored(self, message: str) -> None:
        if self._is_current(self.sender()):
            self._release()
            self.errored.emit(message)
