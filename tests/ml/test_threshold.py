"""The decision threshold of a two-class run is saved with it and decides everywhere: evaluation,
Try it, ``main.py predict``, every export, the standalone package and the report."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ml.errors import DataError, RunError
from ml.evaluation.evaluate import evaluate_run, load_split, rethreshold
from ml.evaluation.metrics import with_threshold
from ml.evaluation.tryit import Predictor
from ml.jobs.training import TrainingJob
from ml.runs.folder import DEFAULT_THRESHOLD, RunFolder, load_run
from ml.runs.project import DataConfig, Project, TrainingConfig
from tests.conftest import run_cli, run_main
from tests.ml.test_golden_fixtures import FIXTURES


@pytest.fixture(scope="module")
def binary_source(tmp_path_factory):
    """A trained two-class run (kept untouched: each test works on a copy) and its data."""
    base = tmp_path_factory.mktemp("binary")
    rng = np.random.default_rng(0)
    n = 240
    size = rng.normal(10, 3, n)
    colour = rng.choice(["red", "green", "blue"], n)
    score = size + (colour == "red") * 4 + rng.normal(0, 1.5, n)
    label = np.where(score > np.median(score), "high", "low")
    data = base / "mixed.csv"
    pd.DataFrame({"size": size.round(3), "colour": colour, "label": label}).to_csv(data,
                                                                                  index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRAINDESK_HOME", str(base / "home"))
        project = Project(data=DataConfig(source=str(data), target="label"),
                          training=TrainingConfig(epochs=3))
        run_dir = TrainingJob(project, run_dir=base / "run").run().run_dir
    return run_dir, data


@pytest.fixture
def binary_run(binary_source, tmp_path):
    run_dir, _ = binary_source
    return shutil.copytree(run_dir, tmp_path / "run")


def _middle(run) -> float:
    """A threshold that changes the most test predictions from those at 0.50 (so that a rule
    still deciding at 0.50 somewhere would be caught)."""
    p1 = evaluate_run(run).proba[:, 1]
    candidates = (0.2, 0.3, 0.4, 0.6, 0.7, 0.8)
    moved = [int(np.sum((p1 >= t) != (p1 >= 0.5))) for t in candidates]
    assert max(moved) > 0
    return candidates[int(np.argmax(moved))]


def test_a_run_without_a_saved_threshold_decides_at_one_half(binary_run):
    run = load_run(binary_run)
    assert run.threshold == DEFAULT_THRESHOLD == 0.5
    ev = evaluate_run(run)
    assert ev.threshold == 0.5
    assert np.array_equal(ev.y_pred, with_threshold(ev.proba, 0.5))


def test_an_old_many_class_run_has_no_threshold_and_still_loads(tmp_path):
    folder = shutil.copytree(FIXTURES / "run-finished-29d0a01", tmp_path / "old")
    run = load_run(folder)
    assert run.threshold is None
    with pytest.raises(RunError, match="two classes"):
        run.folder.set_threshold(0.7)


def test_the_threshold_is_saved_as_a_later_change_not_in_config_json(binary_run):
    config_before = (binary_run / "config.json").read_bytes()
    folder = RunFolder.open(binary_run)
    assert folder.set_threshold(0.73) == 0.73
    assert folder.set_threshold(0.7) == 0.7  # moving it again: still one change
    assert (binary_run / "config.json").read_bytes() == config_before
    changes = json.loads((binary_run / "run.json").read_text())["changes"]
    assert [c["setting"] for c in changes] == ["decision.threshold"]
    assert changes[0]["from"] is None and changes[0]["to"] == 0.7
    run = load_run(binary_run)
    assert run.threshold == 0.7 and run.config["decision"] == {"threshold": 0.7}
    ev = evaluate_run(run)
    assert ev.threshold == 0.7
    assert np.array_equal(ev.y_pred, with_threshold(ev.proba, 0.7))
    for bad in (0, 1, 1.5, -0.1, float("nan"), "x"):
        with pytest.raises(DataError, match="between 0 and 1"):
            folder.set_threshold(bad)


def test_rethreshold_moves_predictions_matrix_and_metrics(binary_run):
    ev = evaluate_run(load_run(binary_run))
    moved = rethreshold(ev, 0.9)
    pred = with_threshold(ev.proba, 0.9)
    assert moved.threshold == 0.9 and np.array_equal(moved.y_pred, pred)
    assert moved.confusion[:, 1].sum() == pred.sum()
    assert moved.metrics["accuracy"] == pytest.approx(np.mean(pred == ev.y_true))


def test_try_it_decides_at_the_saved_threshold_and_predict_can_override_it(binary_run):
    run = load_run(binary_run)
    t = _middle(run)
    RunFolder.open(binary_run).set_threshold(t)
    run = load_run(binary_run)
    x, _, rows = load_split(run, "test", with_examples=True)
    predictor = Predictor(run)
    assert predictor.threshold == t
    out = predictor.predict_frame(rows)
    p1 = out[f"probability_{run.preprocessor.class_names[1]}"].to_numpy()
    names = np.array(run.preprocessor.class_names)
    assert list(out["prediction"]) == list(names[(p1 >= t).astype(int)])
    one = predictor.predict_row(rows.iloc[0].to_dict())
    assert one.threshold == t
    assert one.label == names[int(dict(one.probabilities)[names[1]] >= t)]
    strict = Predictor(run, 0.99).predict_frame(rows)
    assert list(strict["prediction"]) == list(names[(p1 >= 0.99).astype(int)])


def test_main_predict_threshold_overrides_and_bad_values_are_one_line(binary_source, binary_run,
                                                                      tmp_path):
    _, data = binary_source
    RunFolder.open(binary_run).set_threshold(0.7)
    out = tmp_path / "p.csv"
    proc = run_main("predict", str(binary_run), str(data), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "0.70 (saved with the run)" in proc.stderr
    frame = pd.read_csv(out)
    p1 = frame["probability_low"].to_numpy()
    assert list(frame["prediction"]) == list(np.where(p1 >= 0.7, "low", "high"))
    proc = run_cli("predict", str(binary_run), str(data), "--threshold", "0.2", "--out",
                   str(out))
    assert proc.returncode == 0, proc.stderr
    assert "0.20 (given with --threshold)" in proc.stderr
    frame = pd.read_csv(out)
    assert list(frame["prediction"]) == list(np.where(frame["probability_low"] >= 0.2, "low",
                                                      "high"))
    for bad in ("1.5", "0", "abc"):  # in this process: the same one line, seconds faster
        proc = run_cli("predict", str(binary_run), str(data), "--threshold", bad)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "--threshold must be a number between 0 and 1" in lines[0]
        assert "Traceback" not in proc.stderr


def test_threshold_on_a_many_class_run_is_refused_in_one_line(tmp_path):
    folder = shutil.copytree(FIXTURES / "run-finished-29d0a01", tmp_path / "old")
    csv = tmp_path / "in.csv"
    pd.DataFrame({"sepal_length": [5.0]}).to_csv(csv, index=False)
    proc = run_cli("predict", str(folder), str(csv), "--threshold", "0.7")
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "two classes" in proc.stderr


def test_main_evaluate_saves_and_shows_the_threshold(binary_run):
    proc = run_cli("evaluate", str(binary_run), "--threshold", "0.65", "--save-threshold",
                    "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["threshold"] == 0.65
    assert load_run(binary_run).threshold == 0.65
    proc = run_cli("evaluate", str(binary_run))
    assert "from a probability of 0.65" in proc.stdout


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "safetensors"])
def test_every_export_carries_the_threshold(binary_run, tmp_path, fmt):
    from ml.export import export_run, inputs_for_check

    RunFolder.open(binary_run).set_threshold(0.8)
    run = load_run(binary_run)
    x, checked_on = inputs_for_check(run)
    report = export_run(run, fmt, tmp_path / "model", x, checked_on=checked_on)
    assert report.threshold == 0.8 and "at least 0.80" in report.summary
    side = json.loads(report.sidecar.read_text())
    assert side["output"]["decision"]["threshold"] == 0.8
    assert side["output"]["decision"]["positive_class"] == "low"
    if fmt == "onnx":
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
        assert json.loads(meta["traindesk"])["output"]["decision"]["threshold"] == 0.8
        assert float(meta["decision_threshold"]) == 0.8


def test_the_code_snippet_decides_at_the_threshold():
    from ml.export.snippets import code_snippet

    code = code_snippet("onnx", "m.onnx", task="classification", class_names=["no", "yes"],
                        input_shape=[3], threshold=0.8)
    assert "threshold = 0.8" in code and "probabilities[0, 1] >= threshold" in code
    plain = code_snippet("onnx", "m.onnx", task="classification", class_names=["a", "b", "c"],
                         input_shape=[3])
    assert "argmax" in plain and "threshold" not in plain


def test_the_package_decides_at_the_saved_threshold_and_takes_an_override(binary_source,
                                                                          binary_run, tmp_path):
    from ml.export.package import export_package

    run = load_run(binary_run)
    t = _middle(run)
    RunFolder.open(binary_run).set_threshold(t)
    run = load_run(binary_run)
    report = export_package(run, tmp_path / "pkg", load_split(run, "test")[0])
    assert report.checked_rows > 0  # predict.py reproduced the app's thresholded answers
    assert f"at least {t:.2f}" in report.summary
    doc = json.loads((report.folder / "preprocessing.json").read_text())
    assert doc["output"]["decision"]["threshold"] == t
    assert f"{t:.2f}" in (report.folder / "README.txt").read_text()
    _, data = binary_source
    for extra, used in (([], t), (["--threshold", "0.95"], 0.95)):
        out = tmp_path / "out.csv"
        import subprocess
        import sys

        proc = subprocess.run([sys.executable, str(report.folder / "predict.py"), str(data),
                               "--out", str(out), *extra], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        frame = pd.read_csv(out)
        assert list(frame["prediction"]) == list(np.where(frame["probability_low"] >= used,
                                                          "low", "high"))
    proc = subprocess.run([sys.executable, str(report.folder / "predict.py"), str(data),
                           "--threshold", "2"], capture_output=True, text=True)
    assert proc.returncode != 0 and "between 0 and 1" in proc.stderr


def test_the_report_says_the_threshold_and_decides_there(binary_run):
    from ml.evaluation.report import build_report, metric_text

    RunFolder.open(binary_run).set_threshold(0.9)
    run = load_run(binary_run)
    report = build_report(run)
    assert report.numbers["threshold"] == "0.90"
    text = report.html()
    assert "at least <b>0.90</b>" in text
    at_09 = rethreshold(evaluate_run(run), 0.9).metrics["accuracy"]
    assert report.numbers["accuracy"] == metric_text("accuracy", at_09)


def test_two_writers_of_one_run_keep_each_others_changes(binary_run):
    """The app saves a threshold or a name while a resumed training of the same run writes its
    status: neither write loses the other's (each reads run.json before it writes)."""
    training = RunFolder.open(binary_run)  # a training job's handle, opened first
    app = RunFolder.open(binary_run)
    app.set_threshold(0.7)
    app.rename("Churn, careful threshold")
    training.update(status="running")
    training.change("training.epochs", 9, "resumed for more epochs")
    training.update(status="finished")
    info = json.loads((binary_run / "run.json").read_text())
    assert info["status"] == "finished" and info["name"] == "Churn, careful threshold"
    assert [c["setting"] for c in info["changes"]] == ["decision.threshold", "training.epochs"]
    app.set_threshold(0.65)  # the app's handle, now stale, moves the slider again
    info = json.loads((binary_run / "run.json").read_text())
    assert info["status"] == "finished"
    assert [c["setting"] for c in info["changes"]] == ["decision.threshold", "training.epochs",
                                                      "decision.threshold"]
    assert load_run(binary_run).threshold == 0.65
