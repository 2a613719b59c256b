"""Comparing runs on the same rows, and averaging them into an ensemble that exports as one."""

from __future__ import annotations

import numpy as np
import pytest

from ml.errors import DataError
from ml.evaluation.ensemble import Ensemble, compare_runs
from ml.evaluation.evaluate import load_split
from ml.export import export_ensemble
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, SplitConfig, TrainingConfig


def _run(tmp, name, source="sample:iris", hidden=(16,), seed=0, split_seed=None, epochs=4):
    project = Project(data=DataConfig(source=source),
                      model=ModelConfig(preset="mlp", hidden=list(hidden)),
                      training=TrainingConfig(epochs=epochs, lr=0.02, seed=seed))
    if split_seed is not None:
        project.data.split = SplitConfig(seed=split_seed)
    return load_run(TrainingJob(project, run_dir=tmp / name).run().run_dir)


@pytest.fixture(scope="module")
def iris_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ens")
    return [_run(tmp, "a", hidden=(16,), seed=0), _run(tmp, "b", hidden=(32, 16), seed=1),
            _run(tmp, "c", hidden=(8,), seed=2)]


def test_the_ensemble_averages_its_members_probabilities(iris_runs):
    comparison = compare_runs(iris_runs, ensemble=True)
    assert comparison.names[:3] == ["a", "b", "c"] and comparison.ensemble == 3
    members, combined = comparison.evaluations[:3], comparison.evaluations[3]
    assert all(ev.n == combined.n for ev in members)
    np.testing.assert_array_equal(members[0].y_true, combined.y_true)
    expected = np.mean([ev.proba for ev in members], axis=0)
    np.testing.assert_allclose(combined.proba, expected, rtol=1e-6)
    np.testing.assert_array_equal(combined.y_pred, expected.argmax(axis=1))
    assert combined.metrics["accuracy"] == pytest.approx(
        float(np.mean(expected.argmax(axis=1) == combined.y_true)))
    plain = compare_runs(iris_runs[:2])
    assert plain.ensemble is None and len(plain.evaluations) == 2


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "safetensors"])
def test_an_ensemble_exports_as_one_model(iris_runs, tmp_path, fmt):
    x = load_split(iris_runs[0], "test")[0]
    report = export_ensemble(Ensemble(iris_runs), fmt, tmp_path / "ensemble", x)
    assert report.path.is_file() and report.identical == report.n == len(x)
    assert report.max_abs_diff < 1e-5


def test_regression_ensembles_average_predictions_in_units(tmp_path):
    runs = [_run(tmp_path, "r1", "sample:diabetes", seed=0),
            _run(tmp_path, "r2", "sample:diabetes", hidden=(32,), seed=5)]
    comparison = compare_runs(runs, ensemble=True)
    combined = comparison.evaluations[-1]
    expected = np.mean([ev.y_pred for ev in comparison.evaluations[:2]], axis=0)
    np.testing.assert_allclose(combined.y_pred, expected, rtol=1e-5)
    assert set(combined.metrics) >= {"mae", "rmse", "r2"}


def test_runs_that_cannot_be_combined_or_compared_say_why(iris_runs, tmp_path):
    wine = _run(tmp_path, "wine", "sample:wine", epochs=1)
    with pytest.raises(DataError, match="cannot be combined"):
        compare_runs([iris_runs[0], wine], ensemble=True)
    with pytest.raises(DataError, match="different data files"):
        compare_runs([iris_runs[0], wine])
    other_split = _run(tmp_path, "other", split_seed=99, epochs=1)
    with pytest.raises(DataError, match="different test rows"):
        compare_runs([iris_runs[0], other_split])
    with pytest.raises(DataError, match="at least two"):
        compare_runs(iris_runs[:1])


def test_compare_on_the_command_line_and_export_the_ensemble(iris_runs, tmp_path):
    import json

    from tests.conftest import run_cli, run_main

    paths = [str(r.path) for r in iris_runs[:2]]
    proc = run_main("compare", *paths, "--ensemble", "--json", "--export", "onnx", "--out",
                    str(tmp_path / "ens.onnx"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [m["name"] for m in doc["models"]] == ["a", "b", "ensemble of 2"]
    assert doc["models"][2]["ensemble"] and "accuracy" in doc["models"][2]["metrics"]
    assert (tmp_path / "ens.onnx").is_file() and "identical predictions" in proc.stderr
    bad = run_cli("compare", paths[0], "--ensemble")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
