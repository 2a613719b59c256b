"""One lifecycle for every background job: one cancel flag, one progress signal, one registry."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ml.errors import Cancelled, DataError, TrainingError
from ml.system.jobcontrol import CancelToken, check_stop, part, throttled
from workers.base import FunctionWorker, TaskRunner
from workers.jobs import job_registry


def _counting(n: int, should_stop=None, progress=None) -> int:
    """A long ml-style call: checks its stop flag and reports progress between steps."""
    for i in range(n):
        check_stop(should_stop, "Counting was stopped.")
        if progress is not None:
            progress((i + 1) / n, f"step {i + 1} of {n}")
        time.sleep(0.005)
    return n


def test_cancel_token_is_a_should_stop_callable_and_raises_cancelled():
    token = CancelToken()
    assert not token() and not token.cancelled
    check_stop(token)
    token.cancel()
    assert token() and token.cancelled
    with pytest.raises(Cancelled, match="^Import cancelled.$") as info:
        check_stop(token, "Import cancelled.")
    # Callers that catch the stage's error (reading data, preparing a run) still see it.
    assert isinstance(info.value, DataError) and isinstance(info.value, TrainingError)
    check_stop(None)


def test_progress_is_throttled_and_mapped_to_a_part():
    seen = []
    report = throttled(lambda f, m: seen.append(f), interval=60.0)
    for f in np.linspace(0, 1, 50):
        report(float(f), "")
    assert seen == [0.0, 1.0]  # the first and the last get through
    half = []
    part(lambda f, m: half.append(f), 0.5, 1.0)(0.5, "")
    assert half == [0.75]


def test_function_worker_passes_its_cancel_flag_and_progress(qtbot):
    runner = TaskRunner()
    worker = FunctionWorker(_counting, 100_000)
    progress = []
    worker.progress.connect(lambda f, m: progress.append((f, m)))
    runner.start(worker)
    qtbot.waitUntil(lambda: len(progress) >= 2, timeout=5000)
    assert 0 < progress[-1][0] < 1 and progress[-1][1].startswith("step ")
    started = time.monotonic()
    runner.cancel()
    assert runner.shutdown(5000)
    assert time.monotonic() - started < 1.0  # stopped at its next check, not after 100,000


def test_function_worker_leaves_functions_without_those_keywords_alone(qtbot):
    runner = TaskRunner()
    with qtbot.waitSignal(runner.finished, timeout=5000) as blocker:
        runner.start(FunctionWorker(sorted, [3, 1, 2]))
    assert blocker.args == [[1, 2, 3]]
    with qtbot.waitSignal(runner.finished, timeout=5000) as blocker:
        runner.start(FunctionWorker(_counting, 3, should_stop=lambda: False))
    assert blocker.args == [3]  # a flag given by the caller is kept


def test_the_registry_lists_cancels_and_joins_every_job(qtbot):
    registry = job_registry()
    runners = [TaskRunner(), TaskRunner()]
    release = threading.Event()

    def stubborn(should_stop=None):  # ends only when asked to
        while not should_stop():
            release.wait(0.01)
        raise Cancelled("Stopped.")

    workers = [runners[0].start(FunctionWorker(_counting, 100_000)),
               runners[1].start(FunctionWorker(stubborn))]
    qtbot.waitUntil(lambda: len(registry.jobs()) == 2, timeout=5000)
    names = sorted(job.name for job in registry.jobs())
    assert names == ["counting", "stubborn"]
    qtbot.waitUntil(lambda: any(j.fraction > 0 for j in registry.jobs()), timeout=5000)
    started = time.monotonic()
    assert registry.shutdown_all(5.0)
    assert time.monotonic() - started < 1.0
    assert all(w.cancelled for w in workers)
    assert registry.running == 0 and registry.jobs() == []


def test_a_dropped_runner_s_job_is_still_cancelled_and_joined(qtbot):
    """A dialog closed mid-job loses its runner; the job must still end with the window."""
    registry = job_registry()
    runner = TaskRunner()
    worker = runner.start(FunctionWorker(_counting, 100_000))
    del runner
    qtbot.waitUntil(lambda: worker.last_progress[0] > 0, timeout=5000)
    assert registry.shutdown_all(5.0)
    assert worker.cancelled and registry.running == 0


def test_thumbnail_pools_are_registered_and_shut_down(qtbot):
    from workers.thumbnails import ThumbnailLoader

    loader = ThumbnailLoader(size=16)
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    for key in range(200):
        loader.request(key, pixels)
    assert registry_has_pool(loader)
    assert job_registry().shutdown_all(5.0)
    assert not loader.is_busy() and not loader.request(999, pixels)  # closed


def registry_has_pool(pool) -> bool:
    return pool in set(job_registry()._pools)
