"""Failure recovery: out of memory (injected, as on a GPU), the best checkpoint kept apart."""

import json

import pytest
import torch
from safetensors.torch import load_file

from ml.errors import OutOfMemory
from ml.jobs.training import TrainingJob
from ml.runs.folder import RunFolder
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.runs.weights import load_checkpoint
from ml.training.callbacks import Callback


class FakeGpuMemory(Callback):
    """Raise CUDA's out-of-memory error on a batch while the batch size is above *limit*,
    from epoch *epoch* (1-based) on - what a GPU does when a batch no longer fits."""

    def __init__(self, limit: int, epoch: int = 1):
        self.limit, self.epoch, self.raised = limit, epoch, 0

    def on_batch_end(self, step, logs):
        if logs["epoch"] >= self.epoch and self.trainer.config.batch_size > self.limit:
            self.raised += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def _project(**training):
    return Project(data=DataConfig(source="sample:iris"),
                   model=ModelConfig(preset="mlp", hidden=[16]),
                   training=TrainingConfig(**{"epochs": 5, "batch_size": 64, "seed": 3,
                                              **training}))


def _epochs(run_dir):
    return [json.loads(line)["epoch"] for line in
            (run_dir / "history.jsonl").read_text().splitlines()]


def test_out_of_memory_retries_with_half_the_batch_from_the_last_checkpoint(tmp_path):
    memory = FakeGpuMemory(limit=16, epoch=3)
    messages = []
    job = TrainingJob(_project(oom_retry=True), run_dir=tmp_path / "run", callbacks=[memory],
                      on_message=messages.append)
    result = job.run()
    assert result.status == "finished"
    assert memory.raised == 2  # 64 and 32 failed, 16 fits
    assert result.metrics["oom_retries"] == [{"epoch": 3, "from": 64, "to": 32},
                                             {"epoch": 3, "from": 32, "to": 16}]
    assert result.metrics["batch_size"] == 16
    # Epochs 1-2 came from the checkpoint; 3-5 ran with the smaller batch.
    assert _epochs(tmp_path / "run") == [1, 2, 3, 4, 5]
    # config.json keeps the settings the run started with; run.json lists what changed, and a
    # later resume keeps what fits.
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["training"]["batch_size"] == 64
    folder = RunFolder.open(tmp_path / "run")
    assert folder.settings()["training"]["batch_size"] == 16
    assert [(c["from"], c["to"]) for c in folder.info["changes"]] == [(64, 32), (32, 16)]
    assert any("retrying from epoch 3 with batches of 32" in m for m in messages)


def test_out_of_memory_in_the_first_epoch_restarts_from_the_same_initial_weights(tmp_path):
    retried = TrainingJob(_project(oom_retry=True), run_dir=tmp_path / "a",
                          callbacks=[FakeGpuMemory(limit=32)]).run()
    TrainingJob(_project(batch_size=32), run_dir=tmp_path / "b").run()
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert retried.metrics["oom_retries"] == [{"epoch": 1, "from": 64, "to": 32}]


def test_out_of_memory_without_retry_says_what_to_do_and_keeps_the_epochs(tmp_path):
    job = TrainingJob(_project(), run_dir=tmp_path / "run", callbacks=[FakeGpuMemory(16, 2)])
    with pytest.raises(OutOfMemory, match="ran out of memory in epoch 2 with batches of 64. "
                                          "Try a batch size of 32") as info:
        job.run()
    assert info.value.smaller_batch == 32 and job.out_of_memory is info.value
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert _epochs(run_dir) == [1]
    # What the Train page offers: resume with half the batch.
    result = TrainingJob.resume(run_dir, batch_size=info.value.smaller_batch).run()
    assert result.status == "finished" and _epochs(run_dir) == [1, 2, 3, 4, 5]
    assert RunFolder.open(run_dir).settings()["training"]["batch_size"] == 32


def test_retry_gives_up_at_batch_size_one(tmp_path):
    job = TrainingJob(_project(batch_size=2, oom_retry=True), run_dir=tmp_path / "run",
                      callbacks=[FakeGpuMemory(limit=0)])
    with pytest.raises(OutOfMemory, match="batches of 1"):
        job.run()
    assert [r["to"] for r in job.oom_retries] == [1]


def test_other_runtime_errors_are_not_taken_for_out_of_memory(tmp_path):
    class Broken(Callback):
        def on_batch_end(self, step, logs):
            raise RuntimeError("shape mismatch")

    job = TrainingJob(_project(oom_retry=True), run_dir=tmp_path / "run", callbacks=[Broken()])
    with pytest.raises(RuntimeError, match="shape mismatch"):
        job.run()
    assert job.oom_retries == []


def test_the_best_epoch_is_kept_apart_from_the_last(tmp_path):
    # Without the final fit (test_refit.py), the final weights are the best epoch's.
    result = TrainingJob(_project(epochs=6, lr=0.05, refit="off"),
                         run_dir=tmp_path / "run").run()
    run_dir = tmp_path / "run"
    best = load_file(str(run_dir / "best.safetensors"))
    final = load_file(str(run_dir / "model.safetensors"))  # restore_best: the same weights
    assert all(torch.equal(best[k], final[k]) for k in final)
    last = load_checkpoint(run_dir / "checkpoint.pt")
    assert last["epoch"] == 6
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    lowest = min(history, key=lambda h: h["val_loss"])["epoch"]
    assert result.fit.best_epoch == lowest
    if lowest != 6:
        assert not all(torch.equal(last["model"][k], best[k]) for k in best)
