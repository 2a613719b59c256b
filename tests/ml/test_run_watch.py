"""Following a run folder another process writes (ml.runs.watch): the epochs as they arrive,
nothing read again while nothing changed, the curves to draw, and a plain line on staleness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ml.errors import RunError
from ml.runs.watch import STALE_S, RunWatcher
from tests.conftest import ROOT


def _train(out, epochs=40) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "train", "--data", "sample:digits", "--model",
         "mlp", "--hidden", "64,32", "--epochs", str(epochs), "--batch-size", "32",
         "--early-stopping", "0", "--refit", "off", "--no-yardstick", "--quiet", "--out",
         str(out)], cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TRAINDESK_NO_YARDSTICK": "1"})


def test_the_epochs_of_a_run_written_by_another_process_arrive_as_it_trains(tmp_path):
    out = tmp_path / "run"
    proc = _train(out)
    deadline = time.monotonic() + 120
    while not (out / "run.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher = RunWatcher(out)
    seen = []
    while proc.poll() is None and time.monotonic() < deadline:
        snapshot = watcher.poll()
        if snapshot is not None:
            seen.append((len(snapshot.history), snapshot.status))
        time.sleep(0.05)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    last = watcher.poll() or RunWatcher(out).poll()
    assert last.status == "finished" and len(last.history) == 40 and last.epochs == 40
    running = [n for n, status in seen if status == "running"]
    assert len(set(running)) >= 3, seen  # several epochs seen while it still ran
    assert watcher.poll() is None  # nothing changed: nothing read again
    curves = last.curves()
    assert set(curves) == {"loss", "accuracy"}
    assert set(curves["loss"]) == {"training", "validation"}
    assert [p[0] for p in curves["loss"]["training"]] == [float(e) for e in range(1, 41)]
    record = last.record()
    assert record.status == "finished" and record.task == "classification"
    assert record.epochs == 40 and 0 < record.metrics["accuracy"] <= 1
    assert "Finished: epoch 40 of 40" in last.sentence()


def test_a_quiet_running_run_and_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(RunError, match="not a run folder"):
        RunWatcher(tmp_path)
    out = tmp_path / "run"
    proc = _train(out, epochs=2)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    info = json.loads((out / "run.json").read_text())
    info["status"] = "running"  # as a job killed by its scheduler leaves it
    (out / "run.json").write_text(json.dumps(info))
    snapshot = RunWatcher(out).poll()
    assert "Nothing new for a while" in snapshot.sentence(snapshot.written + STALE_S + 60)
    assert "Nothing new" not in snapshot.sentence(snapshot.written + 5)
    (out / "run.json").write_text("{ torn")
    with pytest.raises(RunError):
        RunWatcher(out).poll()
