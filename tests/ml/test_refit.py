"""The final fit (ml.jobs.refit): once validation has chosen the epoch count, the network is
trained again on the training and validation rows; it survives a stop, is skipped where it
does not belong, and the evaluation of the validation rows says they were trained on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ml.errors import TrainDeskError
from ml.evaluation.evaluate import evaluate_run
from ml.evaluation.report import build_report
from ml.jobs import refit
from ml.jobs.training import TrainingJob
from ml.runs.folder import REFIT_CHECKPOINT, load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from tests.conftest import run_cli, write_reviews

pytestmark = pytest.mark.refit


def _table(path, n=200):
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    df["y"] = 2 * df["a"] - df["b"] + rng.normal(0, 0.1, n)
    df.to_csv(path, index=False)
    return str(path)


def _project(tmp_path, **training) -> Project:
    settings = dict(epochs=6, lr=0.01, batch_size=32, seed=1)
    settings.update(training)
    return Project(data=DataConfig(source=_table(tmp_path / "t.csv"), target="y"),
                   model=ModelConfig(preset="mlp", hidden=[16]),
                   training=TrainingConfig(**settings))


def _weights(run_dir):
    return load_run(run_dir).folder.load_weights()


def test_the_final_model_is_trained_on_training_and_validation_rows(tmp_path):
    result = TrainingJob(_project(tmp_path), runs_dir=tmp_path / "runs").run()
    run = load_run(result.run_dir)
    final = run.info["refit"]
    split = run.folder.split_rows()
    assert final["status"] == "done" and final["epochs"] == result.fit.best_epoch
    assert final["rows"] == len(split["train"]) + len(split["val"])
    assert result.metrics["refit"]["rows"] == final["rows"] and run.refitted
    assert not (run.path / REFIT_CHECKPOINT).exists()  # only there while it runs
    # The final weights are not the first fit's best epoch, and the test scores are theirs.
    best = run.folder.load_weights("best.safetensors")
    assert any(not torch.equal(best[k], v) for k, v in _weights(run.path).items())
    assert evaluate_run(run).metrics["r2"] == pytest.approx(result.metrics["test"]["r2"])
    # The validation rows were trained on now: their evaluation says so.
    assert "final fit" in evaluate_run(run, split="val").rows_text
    training = next(x for x in build_report(run).sections if x.title == "Training")
    assert f"Final fit: validation chose {final['epochs']} epochs" in training.body
    assert "were kept" not in training.body  # the best epoch's weights are not the model
    whole = evaluate_run(run, tmp_path / "t.csv")
    assert (f"{len(split['val'])} to pick the number of epochs and then to train (the final "
            f"fit), so these scores are optimistic") in whole.rows_text


def test_off_and_runs_it_does_not_belong_to_keep_the_first_fit(tmp_path, monkeypatch):
    result = TrainingJob(_project(tmp_path, refit="off"), runs_dir=tmp_path / "a").run()
    assert "refit" not in result.metrics and "refit" not in load_run(result.run_dir).info
    best = load_run(result.run_dir).folder.load_weights("best.safetensors")
    assert all(torch.equal(best[k], v) for k, v in _weights(result.run_dir).items())
    # The trials of a search and the folds of a cross-validation are judged on validation.
    grouped = TrainingJob(_project(tmp_path), runs_dir=tmp_path / "b", group="g1",
                          label="fold 1").run()
    assert "refit" not in grouped.metrics
    # Automatic: only under AUTO_ROWS training rows ("on" has no such limit).
    monkeypatch.setattr(refit, "AUTO_ROWS", 50)
    assert "refit" not in TrainingJob(_project(tmp_path), runs_dir=tmp_path / "c").run().metrics
    assert "refit" in TrainingJob(_project(tmp_path, refit="on"),
                                  runs_dir=tmp_path / "d").run().metrics


EARLY = {"epochs": 60, "lr": 0.02, "early_stopping": True, "patience": 2}


def test_text_refits_only_when_switched_on(tmp_path):
    """Automatic leaves text alone: on bench_quality's texts the final fit lost accuracy."""
    source = str(write_reviews(tmp_path / "reviews.csv"))

    def run(choice):
        project = Project(data=DataConfig(source=source, target="sentiment"),
                          training=TrainingConfig(epochs=3, refit=choice))
        return TrainingJob(project, runs_dir=tmp_path / choice).run().metrics

    assert "refit" not in run("auto")
    assert run("on")["refit"]["status"] == "done"


@pytest.mark.parametrize("settings", [{}, EARLY], ids=["all epochs", "early stopping"])
def test_a_stopped_final_fit_keeps_the_first_model_and_resumes_to_the_same_weights(
        tmp_path, settings):
    whole = TrainingJob(_project(tmp_path, **settings), runs_dir=tmp_path / "whole").run()
    epochs = whole.metrics["refit"]["epochs"]
    assert epochs >= 2
    assert whole.metrics["early_stopped"] == bool(settings)

    def stop_in_the_final_fit(message: str) -> None:
        if message.startswith("Final fit: epoch 1 of"):
            job.request_stop()

    job = TrainingJob(_project(tmp_path, **settings), runs_dir=tmp_path / "cut",
                      on_message=stop_in_the_final_fit)
    cut = job.run()
    run = load_run(cut.run_dir)
    assert cut.status == "stopped" and run.info["refit"]["status"] == "stopped"
    assert not run.refitted and (run.path / REFIT_CHECKPOINT).exists()
    best = run.folder.load_weights("best.safetensors")  # the usable model meanwhile
    assert all(torch.equal(best[k], v) for k, v in _weights(run.path).items())
    said = []
    resumed = TrainingJob.resume(cut.run_dir, on_message=said.append).run()
    assert resumed.status == "finished" and load_run(cut.run_dir).refitted
    assert not any(m.startswith("Final fit: epoch 1 of") for m in said)  # went on from it
    # The first fit had ended (early stopping too): the resumed run trains no epoch of it.
    assert resumed.metrics["epochs_completed"] == whole.metrics["epochs_completed"]
    expected = _weights(whole.run_dir)
    assert all(torch.equal(expected[k], v) for k, v in _weights(cut.run_dir).items())


def test_the_final_fit_anneals_a_constant_rate_only_after_a_peak():
    def schedule(epochs, **settings):
        cfg = refit.refit_config(TrainingConfig(epochs=30, **settings), epochs)
        assert cfg.epochs == epochs and not cfg.restore_best and not cfg.early_stopping
        return cfg.schedule

    assert schedule(12) == "cosine"  # validation peaked at epoch 12 of 30
    assert schedule(30) == "constant"  # still improving at the end: the same course
    assert schedule(30, schedule="plateau") == "cosine"  # it needs a validation loss
    assert schedule(12, schedule="onecycle") == "onecycle"


def test_the_choice_is_checked_and_kept_in_the_project_file(tmp_path):
    with pytest.raises(TrainDeskError, match="final-fit"):
        TrainingConfig(refit="sometimes").validate()
    project = _project(tmp_path, refit="off")
    path = tmp_path / "p.tdproj"
    project.save(path)
    assert json.loads(path.read_text())["training"]["refit"] == "off"
    assert Project.load(path).training.refit == "off"


def test_the_cli_says_so_and_can_switch_it_off(tmp_path):
    data = _table(tmp_path / "t.csv")
    done = run_cli("train", "--data", data, "--target", "y", "--epochs", "4",
                   "--out", str(tmp_path / "on"))
    assert done.returncode == 0, done.stderr
    assert "final fit: " in done.stdout
    done = run_cli("train", "--data", data, "--target", "y", "--epochs", "4", "--refit", "off",
                   "--early-stopping", "0", "--out", str(tmp_path / "off"))
    assert done.returncode == 0, done.stderr
    assert "final fit" not in done.stdout
    # The suggested early stopping is on for this small table; 0 switched it off.
    on = json.loads((tmp_path / "on" / "config.json").read_text())["training"]
    off = json.loads((tmp_path / "off" / "config.json").read_text())["training"]
    assert on["early_stopping"] and on["patience"] == 16 and not off["early_stopping"]
    assert "refit" not in json.loads((tmp_path / "off" / "metrics.json").read_text())
