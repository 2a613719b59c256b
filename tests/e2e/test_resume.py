"""Resume: a run killed (SIGKILL) in the middle and resumed ends with the same weights and
history as one that was never interrupted (CPU, fixed seed)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from tests.conftest import ROOT, run_cli, run_main

TIMING = {"seconds", "epoch_seconds"}


def _history(run):
    lines = (run / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def _train_args(out, epochs):
    # Dropout, a cosine schedule with warm-up and class weights: every kind of state counts.
    return ["train", "--data", "sample:digits", "--model", "mlp", "--hidden", "64,32",
            "--dropout", "0.2", "--epochs", str(epochs), "--batch-size", "64", "--seed", "7",
            "--schedule", "cosine", "--warmup-epochs", "1", "--quiet", "--out", str(out)]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_run_resumes_to_the_same_weights_and_history(tmp_path):
    whole = tmp_path / "whole"
    proc = run_cli(*_train_args(whole, 8))  # the uninterrupted run: in this process
    assert proc.returncode == 0, proc.stderr

    killed = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *_train_args(killed, 8)],
                             cwd=str(ROOT), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.monotonic() + 120
    history = killed / "history.jsonl"
    while time.monotonic() < deadline and child.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 3:
            break
        time.sleep(0.005)
    assert child.poll() is None, "the run ended before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (killed / "model.safetensors").exists()
    info = json.loads((killed / "run.json").read_text())
    assert info["status"] == "running"  # what a crash leaves behind

    proc = run_main("train", "--resume", str(killed), "--quiet")  # as a user runs it
    assert proc.returncode == 0, proc.stderr
    assert "status: finished" in proc.stdout
    assert _history(killed) == _history(whole)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)

    # Resuming a finished run is a no-op that exits 0 and says so (a preemptible job can simply
    # be run again); more epochs extend it, and the change is recorded in run.json. (These
    # steps in this process: the resume above already ran as a user runs it.)
    before = (killed / "model.safetensors").read_bytes()
    proc = run_cli("train", "--resume", str(killed), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "already trained 8 epochs; nothing to do" in proc.stdout
    assert (killed / "model.safetensors").read_bytes() == before and len(_history(killed)) == 8
    proc = run_cli("train", "--resume", str(killed), "--epochs", "10", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert len(_history(killed)) == 10
    info = json.loads((killed / "run.json").read_text())
    assert [(c["setting"], c["from"], c["to"]) for c in info["changes"]] == [
        ("training.epochs", 8, 10)]
    assert json.loads((killed / "config.json").read_text())["training"]["epochs"] == 8
    proc = run_cli("train", "--resume", str(killed), "--epochs", "5", "--quiet")
    assert proc.returncode == 0 and "already trained 10 epochs; nothing to do" in proc.stdout
    assert json.loads((killed / "run.json").read_text())["status"] == "finished"


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    # In this process: one-line refusals (a real resume runs above) and a one-epoch run.
    proc = run_cli("train", "--resume", str(tmp_path), "--quiet")
    assert proc.returncode == 2 and "not a run folder" in proc.stderr
    run = tmp_path / "run"
    assert run_cli(*_train_args(run, 1)).returncode == 0
    (run / "checkpoint.pt").write_bytes(b"damaged")
    proc = run_cli("train", "--resume", str(run), "--epochs", "3", "--quiet")
    assert proc.returncode == 2 and "damaged" in proc.stderr
    proc = run_cli("train", "--resume", str(run), "--data", "sample:iris")
    assert proc.returncode == 2 and "no project file or --data" in proc.stderr


def test_a_run_killed_after_its_last_checkpoint_is_finished_by_resume(tmp_path):
    """Killed between the last epoch's checkpoint and the wrap-up (final weights, metrics,
    status): resume finishes it without training more (found by the random-kill trials).
    In this process: resuming as a user runs it is the test above."""
    run = tmp_path / "run"
    assert run_cli("train", "--data", "sample:iris", "--epochs", "3", "--quiet",
                   "--out", str(run)).returncode == 0
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "running"}))
    for name in ("model.safetensors", "metrics.json"):
        (run / name).unlink()
    proc = run_cli("train", "--resume", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert len(_history(run)) == 3 and (run / "model.safetensors").is_file()
    again = run_cli("train", "--resume", str(run), "--quiet")  # finished: nothing to do
    assert again.returncode == 0 and "nothing to do" in again.stdout
