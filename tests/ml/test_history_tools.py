"""Overfitting detection, resource readings, settings diffs and deleting runs."""

import os

import pytest

from ml.errors import RunError
from ml.runs.folder import config_diff, delete_run, read_history
from ml.system.monitor import SystemMonitor
from ml.training.diagnose import overfitting


def _history(train, val):
    return [{"epoch": i + 1, "loss": t, "val_loss": v} for i, (t, v) in enumerate(zip(train, val))]


def test_overfitting_needs_a_rising_validation_loss_and_a_falling_training_loss():
    assert overfitting(_history([1, .6, .4, .3, .2], [1, .7, .5, .6, .7]))["best_epoch"] == 3
    assert overfitting(_history([1, .6, .4, .3, .2], [1, .7, .5, .6, .45])) is None  # recovered
    assert overfitting(_history([1, .6, .4, .5, .6], [1, .7, .5, .6, .7])) is None  # both rise
    assert overfitting(_history([1, .6, .4, .3], [1, .7, .5, .6])) is None  # one epoch only
    # A solved problem: the validation loss wobbles near zero - not worth a warning.
    assert overfitting(_history([1, .1, .01, .005, .004], [1, .1, .0003, .0004, .0004])) is None
    assert overfitting([{"epoch": 1, "loss": 1.0}]) is None  # no validation at all
    found = overfitting(_history([1, .6, .4, .3, .2, .1], [1, .7, .5, .6, .7, .8]))
    assert found["epochs"] == 3 and "3 epochs since epoch 3" in found["message"]


def test_monitor_reads_cpu_and_memory():
    monitor = SystemMonitor()
    sum(i * i for i in range(200_000))
    reading = monitor.sample("cpu")
    assert 0 <= reading["cpu_percent"] <= 100
    assert 10_000_000 < reading["ram_bytes"] < reading["ram_total"]
    assert "gpu_bytes" not in reading


def test_config_diff_lists_changed_settings_only():
    a = {"data": {"source": "x", "split": {"seed": 0, "fold": 1}},
         "training": {"lr": 0.01, "epochs": 5}, "data_fingerprint": {"sha256": "a"}}
    b = {"data": {"source": "x", "split": {"seed": 0, "fold": 2}},
         "training": {"lr": 0.01, "epochs": 5, "grad_clip": 1.0},
         "data_fingerprint": {"sha256": "b"}}
    assert config_diff(a, b) == [("data.split.fold", 1, 2), ("training.grad_clip", None, 1.0)]
    assert config_diff(a, a) == []


def test_delete_run_moves_the_folder_away_then_removes_it(tmp_path):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "history.jsonl").write_text('{"epoch": 1}\n{"epo')  # a torn last line
    assert read_history(run) == [{"epoch": 1}]
    delete_run(run)
    assert not run.exists() and list((tmp_path / "runs" / ".trash").iterdir()) == []
    delete_run(run)  # already gone: nothing to do


def test_a_run_that_cannot_be_moved_is_left_whole_when_rename_fails(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "model.safetensors").write_bytes(b"x")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(RunError, match="Permission denied"):
        delete_run(run)
    assert (run / "model.safetensors").is_file()


@pytest.mark.requires_cuda
def test_monitor_reads_the_gpu():
    import torch

    torch.ones(1, device="cuda")  # a CUDA context, as training has
    reading = SystemMonitor().sample("cuda")
    assert 0 < reading["gpu_bytes"] <= reading["gpu_total"]
    assert reading["gpu_percent"] is None or 0 <= reading["gpu_percent"] <= 100
