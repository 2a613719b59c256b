import threading
import time

import numpy as np
import pytest

from ml.data import load_dataset
from ml.jobs.training import RunResult
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from workers.base import FunctionWorker, TaskRunner
from workers.training_worker import TrainingWorker


def iris_project(epochs=3):
    return Project(data=DataConfig(source="sample:iris"),
                   model=ModelConfig(preset="mlp", hidden=[16]),
                   training=TrainingConfig(epochs=epochs, batch_size=8))


def test_training_worker_reports_and_finishes(qtbot, tmp_path):
    runner = TaskRunner()
    worker = TrainingWorker(iris_project(), load_dataset("sample:iris"), tmp_path)
    epochs, batches, progress, started = [], [], [], []
    worker.fit_started.connect(started.append)
    worker.epoch_finished.connect(epochs.append)
    worker.batches_logged.connect(batches.append)
    worker.progress_changed.connect(progress.append)
    with qtbot.waitSignal(runner.finished, timeout=60_000) as blocker:
        runner.start(worker)
    result = blocker.args[0]
    assert isinstance(result, RunResult) and result.status == "finished"
    assert started and started[0]["epochs"] == 3
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert batches and all(isinstance(b, np.ndarray) and b.shape[1] == 3 for b in batches)
    assert progress[-1]["fraction"] == pytest.approx(1.0)
    assert not runner.is_running()
    # Signals carry plain values only.
    for logs in epochs:
        assert all(type(v) in (int, float) for v in logs.values())


def test_stop_ends_the_run_within_a_batch_and_keeps_it(qtbot, tmp_path):
    runner = TaskRunner()
    worker = TrainingWorker(iris_project(epochs=5000), load_dataset("sample:iris"), tmp_path)
    epochs = []
    worker.epoch_finished.connect(epochs.append)  # a plain callable: called in the worker thread
    runner.start(worker)
    qtbot.waitUntil(lambda: len(epochs) >= 1, timeout=60_000)
    stop_time = time.monotonic()
    with qtbot.waitSignal(runner.finished, timeout=30_000) as blocker:
        runner.request_stop()
    result = blocker.args[0]
    assert result.status == "stopped"
    assert 1 <= result.fit.epochs_completed < 5000
    assert time.monotonic() - stop_time < 10
    assert (result.run_dir / "model.safetensors").is_file()


def test_bad_input_becomes_an_error_signal(qtbot, tmp_path):
    runner = TaskRunner()
    project = iris_project()
    project.data.target = "colour"
    worker = TrainingWorker(project, load_dataset("sample:iris"), tmp_path)
    with qtbot.waitSignal(runner.errored, timeout=30_000) as blocker:
        runner.start(worker)
    assert "no column 'colour'" in blocker.args[0]


def test_unexpected_exceptions_are_caught_with_a_safe_message(qtbot):
    def boom():
        raise ValueError("kaput")

    runner = TaskRunner()
    with qtbot.waitSignal(runner.errored, timeout=10_000) as blocker:
        runner.start(FunctionWorker(boom))
    assert "ValueError: kaput" in blocker.args[0] and "earlier runs are safe" in blocker.args[0]


def test_a_replaced_task_cannot_overwrite_newer_results(qtbot):
    gate = threading.Event()

    def slow():
        gate.wait(10)
        return "old"

    runner = TaskRunner()
    results = []
    runner.finished.connect(results.append)
    runner.start(FunctionWorker(slow))
    with qtbot.waitSignal(runner.finished, timeout=10_000):
        runner.start(FunctionWorker(lambda: "new"))
    gate.set()
    assert runner.shutdown(10_000)
    qtbot.wait(100)
    assert results == ["new"]
