"""Preemption (issue 23): SIGTERM or SIGUSR1 (what SLURM sends before a time limit) makes
``main.py train`` save the run and exit within 10 s with a message and status 128 + the signal;
the same command started again goes on from the last checkpoint to the weights of a run never
interrupted; started once more on the finished run it does nothing and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _args(out, epochs=30):
    return ["train", "--data", "sample:digits", "--model", "mlp", "--hidden", "64,32",
            "--epochs", str(epochs), "--batch-size", "32", "--seed", "3", "--early-stopping",
            "0", "--refit", "off", "--no-yardstick", "--quiet", "--out", str(out)]


def _start(args):
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TRAINDESK_NO_YARDSTICK": "1"})


def _epochs(run) -> int:
    path = run / "history.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _signal_after_an_epoch(proc, run, signum) -> tuple[float, str, str]:
    deadline = time.monotonic() + 120
    while _epochs(run) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be preempted"
    sent = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    return time.monotonic() - sent, out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_scheduler_signal_saves_the_run_and_the_same_command_goes_on(tmp_path, signum):
    run = tmp_path / "run"
    proc = _start(_args(run))
    seconds, out, err = _signal_after_an_epoch(proc, run, signum)
    assert seconds < 10, seconds
    assert proc.returncode == 128 + signum, err
    assert f"preempted by {signal.Signals(signum).name}" in err
    assert "run the same command again" in err
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "stopped" and _epochs(run) >= 2

    again = run_cli(*_args(run))  # the requeued job: the same command
    assert again.returncode == 0, again.stderr
    assert "status: finished" in again.stdout and _epochs(run) == 30
    whole = tmp_path / "whole"
    assert run_cli(*_args(whole)).returncode == 0
    a, b = load_file(run / "model.safetensors"), load_file(whole / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)

    done = run_cli(*_args(run))  # once more: finished, nothing to do, exit 0
    assert done.returncode == 0 and "nothing to do" in done.stdout


def test_the_same_folder_with_other_data_is_refused(tmp_path):
    run = tmp_path / "run"
    assert run_cli(*_args(run, epochs=1)).returncode == 0
    other = [a if a != "sample:digits" else "sample:iris" for a in _args(run, epochs=1)]
    done = run_cli(*other)
    assert done.returncode == 2 and "already holds a run of other data" in done.stderr


def test_a_language_model_run_is_preempted_and_goes_on_alike(tmp_path, tiny_llama):
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"Question {i}?"},
        {"role": "assistant", "content": f"Answer {i}."}]}) + "\n" for i in range(40)))
    run = tmp_path / "lm"
    args = ["train", "--task", "causal-lm", "--backbone", str(tiny_llama), "--data", str(data),
            "--epochs", "40", "--batch-size", "1", "--max-length", "32", "--quiet", "--out",
            str(run)]
    proc = _start(args)
    seconds, out, err = _signal_after_an_epoch(proc, run, signal.SIGTERM)
    assert seconds < 10 and proc.returncode == 128 + signal.SIGTERM, err
    assert json.loads((run / "run.json").read_text())["status"] == "stopped"
    cut = _epochs(run)
    again = run_cli(*[a if a != "40" else str(cut + 1) for a in args])
    assert again.returncode == 0, again.stderr
    assert "status: finished" in again.stdout and _epochs(run) == cut + 1


def test_a_run_stopped_before_its_first_epoch_ended_starts_again_in_its_folder(tmp_path):
    run = tmp_path / "run"
    assert run_cli(*_args(run, epochs=2)).returncode == 0
    (run / "checkpoint.pt").unlink()  # as a job preempted in its first epoch leaves it
    (run / "history.jsonl").unlink()
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "stopped"}))
    args = [a for a in _args(run, epochs=2) if a != "--quiet"]
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "before its first epoch ended: starting it again there" in again.stderr
    assert "status: finished" in again.stdout and _epochs(run) == 2
