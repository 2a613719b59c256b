"""Headless cross-validation (``train --folds K``) and search (``search --trials N``): each run
once as a user runs it (a subprocess); the other cases in this process (:func:`run_cli`)."""

import json
from pathlib import Path

from ml.runs.project import DataConfig, Project
from tests.conftest import run_cli, run_main


def test_train_folds_prints_each_fold_and_mean_std(tmp_path):
    proc = run_main("train", "--data", "sample:iris", "--folds", "3", "--epochs", "2",
                    "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("fold ") >= 3 and "val_accuracy: mean" in out and "std" in out
    folder = out.splitlines()[0].split(": ", 1)[1]
    assert json.loads(Path(folder, "crossval.json").read_text())["completed"] == 3


def test_bad_fold_counts_are_one_line(tmp_path):
    for k in ("1", "500"):
        proc = run_cli("train", "--data", "sample:iris", "--folds", k, "--quiet")
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0 and "2 to 50 folds" in proc.stderr


def test_search_records_trials_in_the_project_and_saves_the_best(tmp_path):
    path = tmp_path / "p.tdproj"
    Project(name="p", data=DataConfig(source="sample:iris", target="species")).save(path)
    proc = run_main("search", str(path), "--trials", "3", "--epochs", "2", "--space",
                    "lr,dropout", "--no-pruning", "--save-best", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("complete") == 3 and "best: trial" in proc.stdout
    saved = Project.load(path)
    assert len(saved.runs) == 3 and {r.label for r in saved.runs} == {
        "trial 1", "trial 2", "trial 3"}
    folder = proc.stdout.splitlines()[0].split(": ", 1)[1]
    best = json.loads(Path(folder, "search.json").read_text())["best"]
    assert saved.model.dropout == best["params"]["dropout"]


def test_search_takes_out_and_saves_the_best_without_a_project_file(tmp_path):
    out = tmp_path / "my-search"
    proc = run_cli("search", "--data", "sample:iris", "--trials", "2", "--epochs", "2",
                   "--space", "dropout", "--no-pruning", "--out", str(out), "--save-best",
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    best = json.loads((out / "search.json").read_text())["best"]
    trials = sorted(p.name for p in out.iterdir() if (p / "run.json").is_file())
    assert len(trials) == 2
    saved = Project.load(out / "best.tdproj")
    assert saved.data.source == "sample:iris" and saved.runs == []
    assert saved.model.dropout == best["params"]["dropout"]
    # The same folder again is refused in one line; a named project file is written as asked.
    again = run_cli("search", "--data", "sample:iris", "--trials", "1", "--out", str(out),
                    "--quiet")
    assert again.returncode == 2 and "already holds a search" in again.stderr
    assert again.stderr.strip().count("\n") == 0
    proc = run_cli("search", "--data", "sample:iris", "--trials", "1", "--epochs", "1",
                   "--space", "lr", "--out", str(tmp_path / "s2"), "--quiet", "--save-best",
                   str(tmp_path / "chosen.tdproj"))
    assert proc.returncode == 0, proc.stderr
    assert Project.load(tmp_path / "chosen.tdproj").training.epochs == 1


def test_search_with_an_unknown_setting_is_one_line():
    proc = run_cli("search", "--data", "sample:iris", "--space", "lr,colour")
    assert proc.returncode == 2 and "Unknown search setting 'colour'" in proc.stderr


def test_evaluate_on_the_validation_split_as_json(tmp_path):
    out = tmp_path / "run"
    assert run_cli("train", "--data", "sample:wine", "--epochs", "2", "--quiet", "--out",
                   str(out)).returncode == 0
    proc = run_cli("evaluate", str(out), "--split", "val", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["source"] == "validation split"
    assert {"balanced_accuracy", "roc_auc", "log_loss"} <= set(doc["metrics"])
