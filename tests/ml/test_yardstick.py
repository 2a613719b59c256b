"""The classic model fitted beside a table or text run (ml.evaluation.yardstick).

It must be fitted on the rows the network learnt from and scored on the same test rows (checked
by fitting the same scikit-learn model here and getting the same score), be said in plain words
in the run's output, ``main.py evaluate`` and the report, be switchable off, end with a stopped
run, and never fail a run when it cannot be fitted.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from ml.evaluation import yardstick
from ml.evaluation.evaluate import evaluate_run
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, Project, TrainingConfig
from tests.conftest import run_cli, run_main
from tests.ml.test_import_pipeline import make_text_csv

pytestmark = pytest.mark.yardstick


def _project(source, target, epochs=3, **training) -> Project:
    return Project(data=DataConfig(source=str(source), target=target),
                   training=TrainingConfig(epochs=epochs, batch_size=32, **training))


def _refit_here(result) -> float:
    """The same scikit-learn model fitted in this process on the run's train + validation rows
    and scored on its test rows: what the child must have got."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    prepared, pre = result.prepared, result.prepared.preprocessor
    frame = pd.read_csv(load_run(result.run_dir).config["data"]["source"])
    x, categorical = yardstick.table_matrix(pre, frame)
    fit = np.concatenate([prepared.rows["train"], prepared.rows["val"]])
    y = np.concatenate([prepared.y["train"], prepared.y["val"]])
    test, y_test = prepared.rows["test"], prepared.y["test"]
    classify = prepared.task == "classification"
    if not classify:
        y, y_test = pre.inverse_target(y), pre.inverse_target(y_test)
    model_type = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    mask = np.asarray(categorical, bool)
    model = model_type(categorical_features=mask if mask.any() else None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x[fit], y)
    return yardstick._score(prepared.task, y_test, model.predict(x[test]))


def test_a_table_run_is_compared_with_gradient_boosting_on_the_same_rows(tmp_path, mixed_csv):
    said = []
    result = TrainingJob(_project(mixed_csv, "label"), run_dir=tmp_path / "run",
                         on_message=said.append).run()
    found = yardstick.read(result.run_dir)
    rows = result.prepared.rows
    assert found is not None and found.kind == "table" and found.metric == "accuracy"
    assert found.n_fit == len(rows["train"]) + len(rows["val"])
    assert found.n_test == len(rows["test"]) == result.evaluation.n
    assert found.model == pytest.approx(result.evaluation.metrics["accuracy"])
    assert found.value == pytest.approx(_refit_here(result))
    # Said as the run ends, and shown with every later evaluation of the test split.
    assert any(line.startswith("A gradient-boosting model") for line in said)
    evaluation = evaluate_run(load_run(result.run_dir))
    assert yardstick.beside(evaluation) == found
    # Not for another file's rows: the classic model was scored on the test split only.
    assert yardstick.beside(evaluate_run(load_run(result.run_dir), data=mixed_csv)) is None


def test_a_regression_run_is_compared_in_r2_in_the_targets_units(tmp_path, regression_csv):
    result = TrainingJob(_project(regression_csv, "price"), run_dir=tmp_path / "run").run()
    found = yardstick.read(result.run_dir)
    assert found.metric == "r2" and found.model == pytest.approx(result.evaluation.metrics["r2"])
    assert found.value == pytest.approx(_refit_here(result))
    assert found.value > 0.8  # a smooth function of two numbers: boosting gets it


def test_a_text_run_is_compared_with_tfidf_and_logistic_regression(tmp_path):
    data = make_text_csv(tmp_path / "reviews.csv")
    project = _project(data, "sentiment", epochs=2)
    project.data.column_roles = {"id": "ignore", "stars": "ignore"}
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    found = yardstick.read(result.run_dir)
    assert found.kind == "text" and found.metric == "accuracy"
    assert found.value == pytest.approx(1.0)  # the two kinds of review share no words
    assert "TF-IDF + logistic-regression model" in found.text()


def test_switched_off_on_the_command_line_or_in_the_project(tmp_path, mixed_csv):
    done = run_cli("train", "--data", str(mixed_csv), "--target", "label", "--epochs", "1",
                   "--no-yardstick", "--out", str(tmp_path / "cli"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "cli" / yardstick.FILE).exists()
    assert "gradient-boosting" not in done.stdout
    project = _project(mixed_csv, "label", epochs=1, yardstick=False)
    result = TrainingJob(project, run_dir=tmp_path / "off").run()
    assert result.evaluation.yardstick is None
    assert not (result.run_dir / yardstick.FILE).exists()
    assert Project.from_dict(project.to_dict()).training.yardstick is False


class _StopAfterFirstEpoch:
    def __init__(self):
        self.job = None

    def __getattr__(self, name):  # every other callback hook does nothing
        return lambda *args, **kwargs: None

    def on_epoch_end(self, *args, **kwargs):
        self.job.request_stop()


def test_stopping_the_run_ends_the_classic_model_too(tmp_path, mixed_csv, monkeypatch):
    started = []
    real_start = yardstick.Background.start.__func__

    def spy(cls, *args, **kwargs):
        started.append(real_start(cls, *args, **kwargs))
        return started[-1]

    monkeypatch.setattr(yardstick.Background, "start", classmethod(spy))
    stopper = _StopAfterFirstEpoch()
    job = TrainingJob(_project(mixed_csv, "label", epochs=50), run_dir=tmp_path / "run",
                      callbacks=[stopper])
    stopper.job = job
    result = job.run()
    assert result.status == "stopped"
    (background,) = started
    assert background.process.poll() is not None  # the child was ended (or had finished)
    assert not background.work.exists()
    assert not (result.run_dir / yardstick.FILE).exists()


def test_a_classic_model_that_cannot_be_fitted_does_not_fail_the_run(tmp_path, mixed_csv,
                                                                      monkeypatch):
    real = yardstick._hand_over

    def broken(work, *args, **kwargs):
        real(work, *args, **kwargs)
        (work / "y_fit.npy").write_bytes(b"not a numpy file")

    monkeypatch.setattr(yardstick, "_hand_over", broken)
    result = TrainingJob(_project(mixed_csv, "label", epochs=1), run_dir=tmp_path / "run").run()
    assert result.status == "finished" and result.evaluation.yardstick is None
    assert not (result.run_dir / yardstick.FILE).exists()


def test_the_sentences_say_who_is_ahead_and_what_to_try():
    ahead = yardstick.Yardstick("table", "accuracy", 0.960, 0.965, 800, 200, 0.4)
    assert ahead.text() == (
        "A gradient-boosting model (scikit-learn's HistGradientBoosting with its defaults, "
        "fitted on the same 800 rows in 0.4 s) gets accuracy 0.960 on the same 200 test rows; "
        "yours gets 0.965. Yours is ahead by 0.005.")
    level = yardstick.Yardstick("table", "r2", 0.800, 0.798, 800, 200, 0.4)
    assert level.text().endswith("yours gets 0.798. The two are level.")
    assert "R² 0.800" in level.text()
    table = yardstick.Yardstick("table", "r2", 0.951, 0.926, 800, 200, 0.4)
    assert table.text().endswith("The gradient-boosting model is ahead by 0.025: try more epochs, "
                                 "more ensemble members (the TabM preset, on the Model page), a "
                                 "hyperparameter search, or checking the column types on the "
                                 "Data page.")
    behind = yardstick.Yardstick("text", "accuracy", 0.809, 0.766, 800, 200, 2.0)
    assert "The TF-IDF + logistic-regression model is ahead by 0.043: try the pretrained " \
           "text encoder" in behind.text()


def test_the_file_round_trips_and_a_bad_or_newer_one_is_ignored(tmp_path):
    found = yardstick.Yardstick("table", "accuracy", 0.9, 0.91, 100, 25, 0.2)
    yardstick.write(tmp_path, found)
    assert yardstick.read(tmp_path) == found
    assert json.loads((tmp_path / yardstick.FILE).read_text())["version"] == 1
    (tmp_path / yardstick.FILE).write_text(json.dumps({**found.to_dict(), "version": 99}))
    assert yardstick.read(tmp_path) is None
    (tmp_path / yardstick.FILE).write_text("{broken")
    assert yardstick.read(tmp_path) is None
    assert yardstick.read(tmp_path / "nowhere") is None


def test_evaluate_and_the_report_show_both_scores(tmp_path, mixed_csv):
    from ml.evaluation.report import build_report

    out = tmp_path / "run"
    done = run_main("train", "--data", str(mixed_csv), "--target", "label", "--epochs", "2",
                    "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "gradient-boosting model: accuracy" in done.stdout
    found = yardstick.read(out)
    shown = run_cli("evaluate", str(out))
    assert found.text() in shown.stdout
    doc = json.loads(run_cli("evaluate", str(out), "--json").stdout)
    assert doc["yardstick"]["value"] == pytest.approx(found.value)
    assert doc["yardstick"]["model"] == "gradient-boosting model"
    run = load_run(out)
    report = build_report(run)
    assert found.text() in report.html().replace("&#x27;", "'")
    assert report.numbers["yardstick"] == f"{found.value:.3f}"


def test_images_have_no_classic_model():
    from types import SimpleNamespace

    assert yardstick.kind_of(SimpleNamespace(kind="image", image={})) is None
    assert yardstick.kind_of(SimpleNamespace(kind="tabular", image={"height": 8})) is None
    assert yardstick.kind_of(SimpleNamespace(kind="tabular", image={})) == "table"


def test_the_hidden_main_py_command_runs_the_child_as_the_frozen_app_does(tmp_path,
                                                                          monkeypatch):
    import subprocess
    import sys

    from ml.system.child import child_command
    from tests.conftest import ROOT

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    x[::7, 1] = np.nan  # missing cells go to the model as they are
    y = (x[:, 0] > 0).astype(np.int64)
    np.save(tmp_path / "x_fit.npy", x[:150])
    np.save(tmp_path / "x_test.npy", x[150:])
    np.save(tmp_path / "y_fit.npy", y[:150])
    (tmp_path / "meta.json").write_text(json.dumps(
        {"kind": "table", "task": "classification", "seed": 0,
         "categorical": [False, False, False]}))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    command = child_command(yardstick.__name__, yardstick.COMMAND, tmp_path)
    assert command == [sys.executable, "yardstick-child", str(tmp_path)]
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), *command[1:]],
                          capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "result.json").read_text())["ok"]
    predicted = np.load(tmp_path / "predicted.npy")
    assert yardstick._score("classification", y[150:], predicted) > 0.9


def test_the_environment_variable_turns_it_off_for_every_run(tmp_path, mixed_csv, monkeypatch):
    monkeypatch.setenv(yardstick.OFF_VARIABLE, "1")
    done = run_main("train", "--data", str(mixed_csv), "--target", "label", "--epochs", "1",
                    "--out", str(tmp_path / "run"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "run" / yardstick.FILE).exists()
