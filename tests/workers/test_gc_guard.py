"""Garbage holding Qt objects is collected on the GUI thread, never on a worker."""

from __future__ import annotations

import gc
import threading

from workers import gc_guard


class _Cycle:
    """An object in a reference cycle that records which thread finally destroyed it."""

    deaths: list[str] = []

    def __init__(self):
        self.me = self

    def __del__(self):
        _Cycle.deaths.append(threading.current_thread().name)


def test_automatic_collection_happens_on_the_gui_thread(qtbot, qapp):
    guard = gc_guard.install(qapp)
    assert guard is not None and not gc.isenabled()
    _Cycle.deaths.clear()
    garbage_made = threading.Event()

    def allocate():  # a worker allocating enough to fill generation 0 many times over
        for _ in range(5000):
            _Cycle()
        garbage_made.set()

    worker = threading.Thread(target=allocate, name="worker")
    worker.start()
    qtbot.waitUntil(garbage_made.is_set, timeout=10_000)
    worker.join()
    assert "worker" not in _Cycle.deaths  # nothing was collected on the worker
    qtbot.waitUntil(lambda: len(_Cycle.deaths) >= 5000, timeout=10_000)
    assert set(_Cycle.deaths) == {"MainThread"}


def test_a_worker_asking_for_a_collection_gets_it_on_the_gui_thread(qtbot, qapp):
    gc_guard.install(qapp)
    gc.collect()
    _Cycle.deaths.clear()
    _Cycle()
    done = threading.Event()

    def worker():
        from ml.system import device

        device._collect_garbage()  # what freeing GPU memory after an OOM calls
        done.set()

    threading.Thread(target=worker, name="worker").start()
    qtbot.waitUntil(done.is_set, timeout=10_000)
    assert _Cycle.deaths == ["MainThread"]
