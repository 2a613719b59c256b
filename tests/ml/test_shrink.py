"""Pruning with fine-tuning and knowledge distillation: new runs, smaller, measured."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ml.errors import RunError
from ml.evaluation.evaluate import load_split
from ml.export.shrink import (
    ShrinkError,
    ShrinkJob,
    magnitude_masks,
    measure_runs,
    sparsity_of,
    student_choices,
)
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.training.trainer import predict_raw
from tests.ml.test_import_pipeline import make_text_csv


def _teacher(tmp_path, source="sample:digits", epochs=8, target="", **model):
    model = model or {"preset": "mlp", "hidden": [256, 128]}
    project = Project(data=DataConfig(source=source, target=target), model=ModelConfig(**model),
                      training=TrainingConfig(epochs=epochs, lr=0.003))
    return TrainingJob(project, runs_dir=tmp_path / "runs").run().run_dir


@pytest.fixture(scope="module")
def digits_teacher(tmp_path_factory):
    return _teacher(tmp_path_factory.mktemp("teacher"))


def test_magnitude_masks_drop_the_smallest_weights_across_layers():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.arange(12, dtype=torch.float32).reshape(3, 4) + 1)
        net[1].weight.copy_(-torch.arange(6, dtype=torch.float32).reshape(2, 3) - 100)
    masks = magnitude_masks(net, 0.5)  # 18 weights: the 9 smallest are all in the first layer
    assert masks["0.weight"].sum() == 3 and masks["1.weight"].sum() == 6
    assert masks["0.weight"].flatten()[-3:].tolist() == [1, 1, 1]


def test_pruning_makes_a_new_run_whose_zeros_stay_zero(digits_teacher):
    teacher = load_run(digits_teacher)
    result = ShrinkJob(digits_teacher, "prune", sparsity=0.8).run()
    run = load_run(result.run_dir)
    assert run.path.parent == teacher.path.parent and run.path != teacher.path
    assert run.info["derived_from"] == {"run": teacher.path.name, "method": "prune",
                                        "sparsity": 0.8}
    assert run.info["status"] == "finished" and "pruned 80%" in run.info["label"]
    nonzero, total = sparsity_of(run.load_model())
    assert nonzero <= 0.2 * total + 1  # fine-tuning did not bring any weight back
    assert result.nonzero == nonzero and run.metrics["nonzero_weights"] == nonzero
    np.testing.assert_array_equal(run.split_rows()["test"], teacher.split_rows()["test"])
    # Fine-tuned: at most a little worse than the teacher on the same test rows.
    assert run.metrics["test"]["accuracy"] >= teacher.metrics["test"]["accuracy"] - 0.03
    assert len(run.history) == run.metrics["epochs_completed"] >= 2
    with pytest.raises(RunError, match="made by pruning .* cannot be resumed"):
        TrainingJob.resume(run.path, epochs=20)


def test_distillation_trains_a_smaller_student_on_the_teacher(digits_teacher):
    teacher = load_run(digits_teacher)
    choices = student_choices(teacher)
    assert [c.key for c in choices][:2] == ["half", "mlp_small"]
    assert all(c.params < 50_826 for c in choices)
    result = ShrinkJob(digits_teacher, "distill", student="mlp_small", epochs=12).run()
    student = load_run(result.run_dir)
    assert student.spec.name == "mlp_small" and student.info["derived_from"]["student"] == \
        "mlp_small"
    assert result.params < sum(p.numel() for p in teacher.load_model().parameters()) / 4
    assert student.metrics["test"]["accuracy"] > 0.85
    # The config of the new run describes the student, so it can be re-run as a plain run.
    assert student.config["model"]["preset"] == "mlp_small"


def test_distillation_with_the_teacher_alone_learns_to_agree_with_it(digits_teacher):
    """alpha = 1: no labels at all; the student can only have learned from the teacher."""
    teacher = load_run(digits_teacher)
    result = ShrinkJob(digits_teacher, "distill", student="half", alpha=1.0, epochs=10).run()
    x, _ = load_split(teacher, "test")
    agree = (predict_raw(teacher.load_model(), x).argmax(1)
             == predict_raw(load_run(result.run_dir).load_model(), x).argmax(1)).mean()
    assert agree > 0.9


def test_regression_distillation_and_measuring_by_r2(tmp_path):
    run_dir = _teacher(tmp_path, "sample:diabetes", epochs=20, preset="mlp", hidden=[64, 32])
    result = ShrinkJob(run_dir, "distill", epochs=20).run()
    report = measure_runs([load_run(run_dir), load_run(result.run_dir)],
                          ["original", "distilled"])
    original, distilled = report.variants
    assert original.metric_name == "r2" and distilled.size_bytes < original.size_bytes
    assert distilled.metric > original.metric - 0.15


def test_the_measured_table_shows_what_pruning_buys(digits_teacher, tmp_path):
    pruned = ShrinkJob(digits_teacher, "prune", sparsity=0.8, epochs=2).run()
    report = measure_runs([load_run(digits_teacher), load_run(pruned.run_dir)],
                          ["original", "pruned"], folder=tmp_path / "onnx")
    original, small = report.variants
    assert (tmp_path / "onnx" / f"{pruned.run_dir.name}.onnx").is_file()
    assert small.zipped_bytes < 0.5 * original.zipped_bytes  # zeros compress
    assert small.latency_ms > 0 and abs(small.metric - original.metric) < 0.05
    table = report.table()
    assert "zipped" in table and "pruned" in table


def test_conv_and_text_runs_offer_narrower_students(tmp_path):
    cnn = load_run(_teacher(tmp_path, "sample:digits", epochs=1, preset="cnn"))
    keys = [c.key for c in student_choices(cnn)]
    assert "half" in keys and "mlp_small" in keys  # dense presets also take images
    source = str(make_text_csv(tmp_path / "reviews.csv"))
    text = load_run(_teacher(tmp_path, source, epochs=1, target="sentiment", preset="rnn"))
    keys = [c.key for c in student_choices(text)]
    assert "text" in keys and set(keys) <= {"text", "transformer"}
    result = ShrinkJob(text.path, "distill", epochs=2).run()  # auto: the largest that fits
    assert load_run(result.run_dir).spec.name == keys[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "squeeze"}, "Unknown method"),
    ({"method": "prune", "sparsity": 1.5}, "between 5% and 99%"),
    ({"method": "prune", "epochs": 0}, "Epochs must be 1"),
    ({"method": "distill", "temperature": 0.1}, "temperature"),
])
def test_bad_settings_are_refused_with_a_message(digits_teacher, kwargs, message):
    method = kwargs.pop("method")
    with pytest.raises(ShrinkError, match=message):
        ShrinkJob(digits_teacher, method, **kwargs)


def test_an_unknown_student_and_missing_data_are_explained(digits_teacher, tmp_path):
    with pytest.raises(ShrinkError, match="not a smaller network .* half"):
        ShrinkJob(digits_teacher, "distill", student="resnet").run()
    # A run whose data file is gone: nothing to fine-tune on.
    copy = tmp_path / "copy"
    shutil.copytree(digits_teacher, copy)
    config = json.loads((copy / "config.json").read_text())
    config["data"]["source"] = str(tmp_path / "gone.csv")
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ShrinkError, match="train on the run's data.*not available"):
        ShrinkJob(copy, "prune").run()
    (copy / "model.safetensors").unlink()
    with pytest.raises(ShrinkError, match="no trained model"):
        ShrinkJob(copy, "prune").run()


def test_stop_keeps_a_loadable_run(digits_teacher):
    job = ShrinkJob(digits_teacher, "distill", epochs=50)
    job.request_stop()  # asked before the first batch: stops at once
    result = job.run()
    run = load_run(result.run_dir)
    assert run.info["status"] == "stopped" and run.has_model


def test_shrink_on_the_command_line(digits_teacher):
    from tests.conftest import run_cli, run_main

    proc = run_main("shrink", str(digits_teacher), "--prune", "0.6", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    assert "pruned" in proc.stdout and "zipped" in proc.stdout and "epoch 1/1" in proc.stderr
    run_dir = proc.stdout.split("run: ")[1].splitlines()[0]
    assert load_run(run_dir).info["derived_from"]["sparsity"] == 0.6
    bad = run_cli("shrink", str(digits_teacher), "--prune", "2")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "between 5% and 99%" in bad.stderr
    bad = run_cli("shrink", str(digits_teacher), "--distill", "resnet")
    assert bad.returncode == 2 and "not a smaller network" in bad.stderr
