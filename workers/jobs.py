"""The one registry of every background job the process runs.

Each :class:`~workers.base.TaskRunner` registers itself when it is made and hands the registry
every worker it starts, with the thread it runs on; each thumbnail loader registers its pool.
So closing the window needs no list of pages to shut down: :meth:`JobRegistry.shutdown_all`
cancels every job through its one cancel flag and joins every thread, within a deadline. The
registry also keeps each worker thread referenced until it has really ended (dropping the last
reference to a running ``QThread`` aborts the process).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Slot


class JobPool(Protocol):
    """What a pool of its own threads (the thumbnail loader) offers the registry."""

    def cancel_all(self) -> None: ...

    def shutdown(self, timeout_ms: int = 30_000) -> bool: ...

    def is_busy(self) -> bool: ...


@dataclass(frozen=True)
class JobInfo:
    """One running job, as a status line or a test sees it."""

    name: str
    fraction: float  # nan when the job has not said how far it is
    message: str
    cancelled: bool


class JobRegistry(QObject):
    """Every running worker (with its thread) and every thumbnail pool of the process.

    Lives on the GUI thread; :func:`job_registry` gives the process-wide one.
    """

    def __init__(self):
        super().__init__()
        self._alive: dict[int, tuple[Any, QThread]] = {}
        self._pools: weakref.WeakSet = weakref.WeakSet()
        self._runners: weakref.WeakSet = weakref.WeakSet()

    # -- registering ----------------------------------------------------------------------------
    def adopt(self, worker: Any, thread: QThread) -> None:
        """Track *worker* running on *thread* until the thread has ended."""
        self._alive[id(thread)] = (worker, thread)
        thread.finished.connect(self._on_thread_finished, Qt.ConnectionType.QueuedConnection)

    def add_runner(self, runner: Any) -> None:
        """Track a task runner (weakly), so its current task is cancelled through it."""
        self._runners.add(runner)

    def add_pool(self, pool: JobPool) -> None:
        """Track a pool of threads (weakly: a destroyed widget's pool drops out)."""
        self._pools.add(pool)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self.sender()
        pair = self._alive.pop(id(thread), None)
        if pair is not None:
            pair[1].wait()

    # -- looking --------------------------------------------------------------------------------
    def jobs(self) -> list[JobInfo]:
        """The jobs still running, oldest first."""
        out = []
        for worker, thread in list(self._alive.values()):
            if thread.isRunning():
                fraction, message = getattr(worker, "last_progress", (float("nan"), ""))
                out.append(JobInfo(getattr(worker, "job_name", type(worker).__name__),
                                   fraction, message, bool(getattr(worker, "cancelled", False))))
        for pool in list(self._pools):
            if _alive(pool) and pool.is_busy():
                out.append(JobInfo(type(pool).__name__, float("nan"), "", False))
        return out

    @property
    def running(self) -> int:
        """Worker threads still running."""
        return sum(1 for _, t in self._alive.values() if t.isRunning())

    # -- stopping -------------------------------------------------------------------------------
    def cancel_all(self) -> None:
        """Ask every job to stop at its next check (a flag each; no thread is killed).

        Through its runner where it still has one, so that what it delivers late (an error
        saying it was cancelled) is dropped rather than shown.
        """
        for runner in list(self._runners):
            if _alive(runner):
                runner.cancel()
        for worker, thread in list(self._alive.values()):
            if thread.isRunning():
                worker.cancel()
        for pool in list(self._pools):
            if _alive(pool):
                pool.cancel_all()

    def wait_all(self, timeout_ms: int = 30_000) -> bool:
        """Wait for every worker thread to end (they must have been asked to stop)."""
        deadline = time.monotonic() + timeout_ms / 1000
        ok = True
        for _, thread in list(self._alive.values()):
            ok = thread.wait(_left_ms(deadline)) and ok
        for key, (_, thread) in list(self._alive.items()):
            if thread.isFinished():
                self._alive.pop(key, None)
        return ok

    def join_all(self, timeout_s: float = 5.0) -> bool:
        """Wait, within *timeout_s* in all, for every worker thread and pool to end."""
        deadline = time.monotonic() + timeout_s
        ok = self.wait_all(_left_ms(deadline))
        for pool in list(self._pools):
            if _alive(pool):
                ok = pool.shutdown(_left_ms(deadline)) and ok
        return ok

    def shutdown_all(self, timeout_s: float = 5.0) -> bool:
        """Cancel every job and join it, within *timeout_s*: what closing the window does.

        Returns whether everything ended in time. Late signals of the cancelled jobs are
        dropped by their runners.
        """
        self.cancel_all()
        ok = self.join_all(timeout_s)
        app = QCoreApplication.instance()
        if app is not None:  # the queued thread-finished slots release the threads
            QCoreApplication.sendPostedEvents(self)
        return ok


def _left_ms(deadline: float) -> int:
    return max(int((deadline - time.monotonic()) * 1000), 0)


def _alive(obj: Any) -> bool:
    from shiboken6 import isValid

    return isValid(obj)


_registry: JobRegistry | None = None


def job_registry() -> JobRegistry:
    """The process-wide registry (created on, and bound to, the GUI thread)."""
    global _registry
    if _registry is None:
        _registry = JobRegistry()
        app = QCoreApplication.instance()
        if app is not None and _registry.thread() is not app.thread():
            _registry.moveToThread(app.thread())
    return _registry
