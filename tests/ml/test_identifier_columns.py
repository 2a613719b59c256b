"""Identifier columns (R's row names, an exported index, row numbers) are proposed as ignore:
never trained on, never asked for in Try it, never listed as a feature in the report."""

import json

import numpy as np
import pandas as pd

from ml.data.dataset import load_dataset, resolve
from ml.evaluation.report import build_report
from ml.evaluation.tryit import Predictor
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from tests.conftest import run_cli


def _r_style_csv(path, first: str = "rownames"):
    """A CSV as R's ``write.csv`` or Rdatasets write it: row names first."""
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({first: np.arange(1, n + 1), "size": rng.normal(10, 3, n).round(3),
                          "year": np.sort(rng.integers(1990, 2020, n))})
    frame["label"] = np.where(frame["size"] > 10, "big", "small")
    frame.to_csv(path, index=False)
    return path


def test_row_names_are_ignored_with_a_warning(tmp_path):
    for first in ("rownames", "...1", "X"):
        path = _r_style_csv(tmp_path / f"{first}.csv", first)
        summary = resolve(load_dataset(str(path)), DataConfig(source=str(path), target="label"))
        assert summary.roles[first] == "ignore"
        assert summary.features == ["size", "year"]  # sorted years are a feature
        assert any(first in w and "identifier" in w for w in summary.warnings)


def test_a_chosen_role_still_wins(tmp_path):
    path = _r_style_csv(tmp_path / "data.csv")
    config = DataConfig(source=str(path), target="label", column_roles={"rownames": "feature"})
    summary = resolve(load_dataset(str(path)), config)
    assert summary.roles["rownames"] == "feature"


def test_trained_run_never_asks_for_row_names(tmp_path):
    path = _r_style_csv(tmp_path / "data.csv")
    project = Project(data=DataConfig(source=str(path), target="label"),
                      model=ModelConfig(preset="mlp_small"), training=TrainingConfig(epochs=1))
    run = load_run(TrainingJob(project, run_dir=tmp_path / "run").run().run_dir)
    assert run.config["resolved"]["features"] == ["size", "year"]
    assert [f.name for f in Predictor(run).form_fields()] == ["size", "year"]
    html = build_report(run).html(embed=False)
    # Not a feature: it is named only as an ignored identifier (and labels the example rows).
    assert "the model reads 2 inputs" in html
    assert "look like identifiers" in html and "are ignored" in html


def test_headless_training_ignores_row_names(tmp_path):
    path = _r_style_csv(tmp_path / "data.csv")
    out = tmp_path / "run"
    proc = run_cli("train", "--data", str(path), "--target", "label", "--epochs", "1",
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "'rownames' looks like an identifier" in proc.stdout + proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["resolved"]["features"] == ["size", "year"]


def test_row_numbers_are_used_when_nothing_else_is_left(tmp_path):
    path = tmp_path / "line.csv"
    pd.DataFrame({"x": range(60), "y": [2 * i + 1 for i in range(60)]}).to_csv(path, index=False)
    summary = resolve(load_dataset(str(path)), DataConfig(source=str(path), target="y"))
    assert summary.features == ["x"]
    assert any("only column to learn from" in w for w in summary.warnings)
