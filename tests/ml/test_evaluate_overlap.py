"""Evaluating on another file says what its rows were used for: a run keeps a hash of each
training and validation row, and the file's rows are counted against them."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.data.rowhash import row_hashes
from ml.evaluation.evaluate import evaluate_run
from ml.jobs.training import TrainingJob
from ml.runs.folder import RunFolder, load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.normal(10, 3, n).round(4),
                          "colour": rng.choice(["red", "green", "blue"], n),
                          "count": rng.integers(0, 1000, n)})
    frame["label"] = np.where(frame["size"] + (frame["colour"] == "red") * 2 > 11, "hi", "lo")
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("overlap")
    _table(200, 0).to_csv(tmp / "train.csv", index=False)
    project = Project(data=DataConfig(source=str(tmp / "train.csv"), target="label"),
                      model=ModelConfig(preset="mlp_small"),
                      # The first fit's model: its validation rows were never trained on (the
                      # final fit's wording is tested in test_refit.py).
                      training=TrainingConfig(epochs=2, refit="off"))
    run = load_run(TrainingJob(project, run_dir=tmp / "run").run().run_dir)
    return tmp, run


def test_the_training_file_itself_is_reported_as_trained_on(trained):
    tmp, run = trained
    rows = run.split_rows()
    evaluation = evaluate_run(run, tmp / "train.csv")
    assert evaluation.overlap == {"train": len(rows["train"]), "val": len(rows["val"])}
    text = evaluation.rows_text
    assert text == (f"200 rows: {len(rows['train'])} were used for training and "
                    f"{len(rows['val'])} to pick the best epoch (validation), so these scores "
                    f"are optimistic; {len(rows['test'])} were never used")
    assert "never used for training" not in text


def test_new_rows_are_reported_as_never_used(trained):
    tmp, run = trained
    _table(80, 1).to_csv(tmp / "new.csv", index=False)
    evaluation = evaluate_run(run, tmp / "new.csv")
    assert evaluation.overlap == {"train": 0, "val": 0}
    assert evaluation.rows_text == "80 rows, none of them used for training or to pick the " \
                                   "best epoch"


def test_training_rows_are_found_however_the_file_writes_them(trained):
    tmp, run = trained
    frame = pd.read_csv(tmp / "train.csv")
    train = frame.iloc[run.split_rows()["train"][:30]].copy()
    # Other column order, numbers as floats, padded text, an extra column; plus 10 new rows.
    train["count"] = train["count"].astype(float)
    train["colour"] = " " + train["colour"] + " "
    mixed = pd.concat([train[["label", "count", "colour", "size"]], _table(10, 2)])
    mixed["note"] = "x"
    mixed.to_csv(tmp / "mixed.csv", index=False)
    evaluation = evaluate_run(run, tmp / "mixed.csv")
    assert evaluation.overlap == {"train": 30, "val": 0}
    assert evaluation.rows_text.startswith("40 rows: 30 were used for training, so these "
                                           "scores are optimistic; 10 were never used")


def test_the_run_folder_keeps_sorted_hashes_of_its_training_and_validation_rows(trained):
    tmp, run = trained
    kept = RunFolder.open(run.path).row_hashes()
    assert kept["columns"] == ["size", "colour", "count", "label"]
    frame = pd.read_csv(tmp / "train.csv")
    for part in ("train", "val"):
        expected = row_hashes(frame.iloc[run.split_rows()[part]], kept["columns"])
        assert kept[part].dtype == np.uint64
        assert np.array_equal(kept[part], np.sort(expected))


def test_the_splits_say_what_they_were_used_for(trained):
    _, run = trained
    rows = run.split_rows()
    test = evaluate_run(run)
    assert test.rows_text == (f"{len(rows['test'])} rows never used for training or to pick "
                              f"the best epoch")
    val = evaluate_run(run, split="val")
    assert val.rows_text.startswith(f"{len(rows['val'])} rows not trained on, but used to "
                                    f"pick the best epoch")


def test_an_old_run_says_plainly_that_overlap_could_not_be_checked(tmp_path):
    run_dir = Path(shutil.copytree(FIXTURES / "run-finished-bcc8884", tmp_path / "old"))
    data = Path(__file__).resolve().parents[2] / "resources" / "samples" / "iris.csv"
    evaluation = evaluate_run(load_run(run_dir), data)
    assert evaluation.overlap is None
    assert evaluation.rows_text == ("150 rows; whether any were used for training could not "
                                    "be checked (this run was trained before TrainDesk kept a "
                                    "record of its training rows)")


def test_headless_evaluate_reports_the_overlap(trained):
    tmp, run = trained
    rows = run.split_rows()
    proc = run_cli("evaluate", str(run.path), "--data", str(tmp / "train.csv"))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.endswith(f"on train.csv: 200 rows: {len(rows['train'])} were used for "
                          f"training and {len(rows['val'])} to pick the best epoch "
                          f"(validation), so these scores are optimistic; "
                          f"{len(rows['test'])} were never used")
    proc = run_cli("evaluate", str(run.path), "--data", str(tmp / "train.csv"), "--json")
    doc = json.loads(proc.stdout)
    assert doc["overlap"] == {"train": len(rows["train"]), "val": len(rows["val"])}
    assert "optimistic" in doc["rows"]


def test_row_hashes_ignore_dtype_and_padding_but_not_values():
    a = pd.DataFrame({"x": [1, 2, 3], "s": ["a", None, " b"], "b": [True, False, True]})
    b = pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", "", "b"], "b": ["1", "0", "1"]})
    assert np.array_equal(row_hashes(a, ["x", "s", "b"]), row_hashes(b, ["x", "s", "b"]))
    c = b.assign(x=[1.0, 2.0, 3.5])
    assert (row_hashes(a, ["x", "s", "b"]) != row_hashes(c, ["x", "s", "b"])).tolist() == [
        False, False, True]
    with pytest.raises(KeyError):
        row_hashes(a, ["missing"])
