"""The headless commands, run as a user runs them: a subprocess per command (the first of each
kind; the later steps and the other bad inputs in this process, with :func:`run_cli`)."""

import io
import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from ml.runs.project import DataConfig, Project, TrainingConfig
from tests.conftest import run_cli, run_main


def one_line_error(proc, words):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and words in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_samples_lists_the_built_in_datasets():
    proc = run_main("samples")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == ["digits", "iris", "wine", "breast_cancer", "diabetes"]


def test_train_evaluate_predict_export_on_a_sample(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_main("train", "--data", "sample:iris", "--epochs", "5", "--hidden", "16,8",
                    "--seed", "3", "--out", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert "epoch 5/5" in proc.stderr and f"run: {run_dir}" in proc.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "classification"
    assert set(metrics["test"]) == {"accuracy", "f1_macro"}
    assert metrics["samples_per_second"] > 0 and metrics["device"].startswith("CPU")
    assert len((run_dir / "history.jsonl").read_text().splitlines()) == 5
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["hidden"] == [16, 8] and config["training"]["seed"] == 3

    proc = run_main("evaluate", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["metrics"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert set(doc["per_class"]) == {"setosa", "versicolor", "virginica"}
    # Beside the headline: what always answering the most common test class would score.
    assert doc["baseline"]["metric"] == "accuracy" and doc["baseline"]["value"] < 0.5
    assert doc["baseline"]["rule"].startswith("always answering")
    assert any("would score" in note for note in doc["notes"])

    from ml.data.samples import load_sample_frame

    inputs = load_sample_frame("iris").drop(columns="species").head(10)
    inputs.to_csv(tmp_path / "in.csv", index=False)
    proc = run_main("predict", str(run_dir), str(tmp_path / "in.csv"), "--out",
                    str(tmp_path / "pred.csv"))
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == list(inputs.columns) + [
        "prediction", "probability_setosa", "probability_versicolor", "probability_virginica"]
    assert len(pred) == 10

    proc = run_main("export", str(run_dir), "--format", "onnx", "--out",
                    str(tmp_path / "m.onnx"))
    assert proc.returncode == 0, proc.stderr
    n_test = json.loads((run_dir / "metrics.json").read_text())["n_test"]
    assert f"identical predictions {n_test} of {n_test}" in proc.stdout
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    probs = session.run(None, {"input": inputs.to_numpy(np.float32)})[0]
    assert np.allclose(probs, pred.filter(like="probability_").to_numpy(), atol=1e-5)
    assert (tmp_path / "m.preprocessing.json").is_file()


def test_a_csv_with_categories_missing_values_and_a_regression(tmp_path, mixed_csv,
                                                              regression_csv):
    proc = run_cli("train", "--data", str(mixed_csv), "--target", "label", "--epochs", "3",
                   "--out", str(tmp_path / "cls"))
    assert proc.returncode == 0, proc.stderr
    pre = json.loads((tmp_path / "cls" / "preprocessing.json").read_text())
    assert "colour=red" in pre["feature_names"] and pre["class_names"] == ["high", "low"]
    assert "missing value" in proc.stderr  # the user is told about the gaps

    proc = run_cli("train", "--data", str(regression_csv), "--target", "price", "--epochs",
                   "40", "--out", str(tmp_path / "reg"))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "reg" / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mae", "rmse", "r2"} and metrics["test"]["r2"] > 0.8
    # As a user runs it: the predictions as CSV on a real process's stdout.
    proc = run_main("predict", str(tmp_path / "reg"), str(regression_csv))
    assert proc.returncode == 0
    out = pd.read_csv(io.StringIO(proc.stdout))
    assert np.corrcoef(out["price"], out["prediction"])[0, 1] > 0.9


def test_training_a_project_file_records_the_run(tmp_path):
    path = Project(name="p", data=DataConfig(source="sample:wine"),
                   training=TrainingConfig(epochs=2)).save(tmp_path / "p.tdproj")
    proc = run_main("train", str(path), "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    project = Project.load(path)
    assert len(project.runs) == 1 and project.runs[0].status == "finished"
    assert project.training.epochs == 2  # a command-line override is the run's, not the file's
    run_config = json.loads((tmp_path / "p_runs").joinpath(project.runs[0].id,
                                                            "config.json").read_text())
    assert run_config["training"]["epochs"] == 1
    assert (tmp_path / "p_runs").is_dir()
    assert project.runs[0].path.startswith(str(tmp_path / "p_runs"))


@pytest.mark.parametrize("args, words", [
    (["train", "--data", "nope.csv", "--target", "y"], "File not found"),
    (["train", "--data", "sample:nope"], "no sample dataset called 'nope'"),
    (["train", "--data", "sample:iris", "--target", "colour"], "no column 'colour'"),
    (["train", "--data", "sample:iris", "--task", "regression"], "holds text"),
    (["train", "--data", "sample:iris", "--hidden", "64,x"], "--hidden takes whole numbers"),
    (["train", "--data", "sample:iris", "--lr", "-1"], "learning rate"),
    (["train", "--data", "sample:iris", "--model", "cnn"], "needs image data"),
    (["train", "--data", "sample:iris", "--seed", "-1"], "seed"),
    (["train", "--epochs", "two"], "invalid int value"),
    (["train"], "Give a project file or --data"),
    (["evaluate", "/no/such/run"], "Run folder not found"),
    (["export", "/no/such/run", "--format", "onnx", "--out", "x.onnx"], "Run folder not found"),
])
def test_bad_input_is_one_readable_line(args, words):
    # One as a user runs it (argparse's own exit, through main.py); the others in this process:
    # the same code and the same one line, without importing torch again.
    run = run_main if words == "invalid int value" else run_cli
    one_line_error(run(*args), words)


def test_bad_files_are_one_readable_line(tmp_path, mixed_csv):
    one_class = tmp_path / "one.csv"
    pd.DataFrame({"x": range(10), "y": ["a"] * 10}).to_csv(one_class, index=False)
    one_line_error(run_main("train", "--data", str(one_class), "--target", "y"), "only one class")
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    # The rest in this process: the same code and the same one line, without a new interpreter.
    one_line_error(run_cli("train", "--data", str(binary), "--target", "y"), "binary")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    one_line_error(run_cli("train", "--data", str(empty), "--target", "y"), "empty")
    one_line_error(run_cli("train", "--data", str(mixed_csv)), "--target")
    project = tmp_path / "bad.tdproj"
    project.write_text("{not json")
    one_line_error(run_cli("train", str(project)), "damaged")


def test_predict_on_a_file_without_the_model_columns(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("train", "--data", "sample:iris", "--epochs", "1", "--out",
                   str(run_dir)).returncode == 0
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(other, index=False)
    one_line_error(run_main("predict", str(run_dir), str(other)), "no column 'sepal_length'")
    one_line_error(run_cli("evaluate", str(run_dir), "--data", str(other)), "no target column")


def test_the_gui_without_a_display_says_how_to_work_headless():
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": ""}
    proc = run_main(env=env)
    assert proc.returncode == 0
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "needs a display" in lines[0] and "train" in lines[0]


def test_predicting_for_a_one_feature_model(tmp_path):
    data = tmp_path / "line.csv"
    x = np.linspace(0, 10, 120)
    pd.DataFrame({"x": x, "y": 3 * x + 1}).to_csv(data, index=False)
    assert run_cli("train", "--data", str(data), "--target", "y", "--epochs", "2", "--out",
                   str(tmp_path / "run")).returncode == 0
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(tmp_path / "new.csv", index=False)
    proc = run_cli("predict", str(tmp_path / "run"), str(tmp_path / "new.csv"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "x,prediction"
