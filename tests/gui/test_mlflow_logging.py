"""Training → Log finished runs to MLflow: a run finished in the app is logged to the store
the settings name, in the background; a store that cannot be written says so and keeps the
run."""

from __future__ import annotations

import pytest

pytest.importorskip("mlflow")


def test_a_run_finished_in_the_app_goes_to_the_chosen_store(qtbot, window, user, tmp_path,
                                                            monkeypatch):
    from mlflow.tracking import MlflowClient

    from tests.conftest import run_cli

    run = tmp_path / "run"
    assert run_cli("train", "--data", "sample:iris", "--epochs", "2", "--no-yardstick",
                   "--quiet", "--out", str(run)).returncode == 0
    logging = window.mlflow
    uri = f"sqlite:///{(tmp_path / 'store' / 'mlflow.db').as_posix()}"
    logging.set_store(uri)
    logging.run_finished(str(run))  # switched off: nothing happens
    assert not logging.runner.is_running() and not logging.queue
    logging.toggle.setChecked(True)
    assert window.settings.value("tracking/mlflow", type=bool)
    logging.run_finished(str(run))
    qtbot.waitUntil(lambda: not logging.runner.is_running(), timeout=60_000)
    assert "Logged to MLflow" in window.statusBar().currentMessage()
    runs = MlflowClient(tracking_uri=uri).search_runs(
        [MlflowClient(tracking_uri=uri).get_experiment_by_name("TrainDesk").experiment_id])
    assert len(runs) == 1 and runs[0].data.params["training.epochs"] == "2"
    window.training_menu.aboutToShow.emit()
    assert "on this machine" in logging.toggle.toolTip()

    logging.set_store(f"sqlite:///{(tmp_path / 'not-a-folder').as_posix()}/x/mlflow.db")
    (tmp_path / "not-a-folder").write_text("a file where the store's folder should be")
    logging.run_finished(str(run))
    qtbot.waitUntil(lambda: bool(user.errors), timeout=60_000)
    assert "The run itself is saved" in str(user.errors[-1])
    assert "Could not make the MLflow store's folder" in str(user.errors[-1])
    assert (run / "model.safetensors").is_file()
