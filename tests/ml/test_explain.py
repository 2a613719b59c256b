"""Permutation importance finds the column a model really uses."""

import numpy as np
import pandas as pd
import pytest

from ml.errors import DataError
from ml.evaluation.explain import permutation_importance
from ml.pipeline import TrainingJob
from ml.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.runs import load_run


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_column_that_decides_the_target_comes_first(tmp_path, task):
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"noise_a": rng.normal(size=n), "signal": rng.normal(size=n),
                          "noise_b": rng.normal(size=n),
                          "colour": rng.choice(["red", "green", "blue"], n)})
    frame["target"] = (np.where(frame["signal"] > 0, "yes", "no") if task == "classification"
                       else 3 * frame["signal"] + rng.normal(scale=0.1, size=n))
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    project = Project(data=DataConfig(source=str(csv), target="target"),
                      model=ModelConfig(preset="mlp", hidden=[32]),
                      training=TrainingConfig(epochs=30, lr=0.01))
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    run = load_run(result.run_dir)
    test = result.evaluation.examples
    importance = permutation_importance(run.load_model(), run.preprocessor, test, repeats=3)
    assert importance.features[0] == "signal"
    assert importance.mean[0] > 0.2 and all(abs(m) < 0.1 for m in importance.mean[1:])
    assert set(importance.features) == {"noise_a", "signal", "noise_b", "colour"}
    assert importance.score == ("accuracy" if task == "classification" else "r2")


def test_importance_needs_table_rows_with_the_target(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"), training=TrainingConfig(epochs=1))
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    run = load_run(result.run_dir)
    rows = result.evaluation.examples.drop(columns=["species"])
    with pytest.raises(DataError, match="no target column"):
        permutation_importance(run.load_model(), run.preprocessor, rows)
