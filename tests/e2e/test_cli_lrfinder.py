"""``train --lr find`` and ``--find-lr-only``: the learning-rate test from the command line."""

import json
import re

from tests.conftest import run_cli


def proposed(stdout: str) -> float:
    match = re.search(r"^proposed learning rate: ([0-9.e+-]+)\. The loss falls fastest at ",
                      stdout, re.M)
    assert match, stdout
    return float(match.group(1))


def test_lr_find_trains_with_the_proposed_rate(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", "--data", "sample:iris", "--lr", "find", "--epochs", "2",
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rate = proposed(proc.stdout)
    table = [line for line in proc.stdout.splitlines() if re.match(r"^\d\.\de[+-]\d\d\s", line)]
    assert 4 <= len(table) <= 10  # a compact curve, not every step
    assert f"Training with the proposed learning rate {rate:g}" in proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["lr"] == rate != 0.001


def test_find_lr_only_prints_and_makes_no_run(tmp_path, traindesk_home):
    proc = run_cli("train", "--data", "sample:iris", "--find-lr-only", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proposed(proc.stdout) > 0
    assert "run:" not in proc.stdout
    runs = traindesk_home / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_lr_find_refusals_are_one_line(tmp_path):
    for args, words in [
        (["train", "--data", "sample:iris", "--lr", "fnd"], "a number like 0.001, or find"),
        (["search", "--data", "sample:iris", "--lr", "find"], "--lr find is for train"),
        (["train", "--resume", str(tmp_path), "--lr", "find"], "own learning rate"),
    ]:
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
