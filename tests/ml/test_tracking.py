"""``--mlflow``: a run logged to an MLflow tracking store (ml.jobs.tracking) - its settings as
parameters, every epoch's numbers and the test metrics, the model files; an export joins the
same MLflow run. By default a local SQLite file, and nothing goes over the network."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import run_cli

mlflow = pytest.importorskip("mlflow")


def _train(out, *extra):
    return run_cli("train", "--data", "sample:iris", "--epochs", "3", "--lr", "0.01",
                   "--early-stopping", "0", "--refit", "off", "--no-yardstick", "--quiet",
                   "--out", str(out), *extra)


@pytest.fixture
def connections(monkeypatch):
    """Every socket connection this process makes while the test runs."""
    seen, on = [], [True]
    sys.addaudithook(lambda event, args: seen.append(args) if on and on[0]
                     and event == "socket.connect" else None)
    yield seen
    on[0] = False


def test_a_run_and_its_export_are_logged_to_a_local_store(tmp_path, monkeypatch,
                                                            connections):
    monkeypatch.setenv("TRAINDESK_HOME", str(tmp_path / "home"))
    from mlflow.tracking import MlflowClient

    from ml.jobs.tracking import default_uri
    from ml.runs.folder import RunFolder

    run = tmp_path / "run"
    done = _train(run, "--mlflow")
    assert done.returncode == 0, done.stderr
    assert "Logged to MLflow: experiment TrainDesk" in done.stdout
    assert (tmp_path / "home" / "mlflow" / "mlflow.db").is_file()
    logged = RunFolder.open(run).info["mlflow"]
    assert logged["uri"] == default_uri()
    client = MlflowClient(tracking_uri=logged["uri"])
    found = client.get_run(logged["run_id"])
    assert found.info.status == "FINISHED" and found.data.params["training.lr"] == "0.01"
    assert [m.step for m in client.get_metric_history(found.info.run_id, "val_loss")] == [1, 2,
                                                                                        3]
    assert 0 < found.data.metrics["test_accuracy"] <= 1
    files = {f.path for f in client.list_artifacts(found.info.run_id, "run")}
    assert {"run/model.safetensors", "run/config.json", "run/history.jsonl"} <= files

    exported = run_cli("export", str(run), "--format", "onnx", "--out",
                       str(tmp_path / "model.onnx"), "--mlflow")
    assert exported.returncode == 0, exported.stderr
    assert logged["run_id"] in exported.stdout  # the same MLflow run, not another
    files = {f.path for f in client.list_artifacts(found.info.run_id, "export")}
    assert "export/model.onnx" in files
    assert len(client.get_metric_history(found.info.run_id, "val_loss")) == 3  # not twice
    assert not connections  # a local store: nothing went over the network


def test_a_store_that_cannot_be_reached_is_one_line_and_the_run_is_kept(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("TRAINDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    run = tmp_path / "run"
    done = _train(run, "--mlflow", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Could not log" in done.stderr
    assert "status: finished" in done.stdout and (run / "model.safetensors").is_file()


def test_without_mlflow_installed_the_option_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINDESK_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    assert _train(run).returncode == 0
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as in the app bundle
    done = run_cli("export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
                   "--mlflow")
    assert done.returncode == 2 and "MLflow is not part of this TrainDesk" in done.stderr
    assert (tmp_path / "m.onnx").is_file()  # the export itself was written
