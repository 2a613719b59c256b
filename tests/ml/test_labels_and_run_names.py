"""On-screen labels for settings and metrics, and human run names (issue 19, finding 14)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ml.errors import RunError
from ml.evaluation.metrics import classification_metrics, regression_metrics
from ml.jobs.training import TrainingJob
from ml.labels import (
    METRIC_LABELS,
    SETTING_LABELS,
    default_run_name,
    group_label,
    metric_label,
    run_name_from_id,
    setting_label,
)
from ml.runs.folder import RunFolder, config_dict, config_diff
from ml.runs.project import DataConfig, ModelConfig, Project, RunRecord, TrainingConfig
from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_every_metric_the_app_computes_has_a_label():
    y = np.array([0, 1, 1, 0])
    keys = set(classification_metrics(y, y, 2)) | set(regression_metrics(y, y + 0.5))
    assert keys <= set(METRIC_LABELS)
    assert metric_label("f1_macro") == "F1 score (average over classes)"
    assert metric_label("val_accuracy") == "Validation accuracy"
    assert metric_label("val_mae").startswith("Validation MAE")
    assert "_" not in metric_label("top5_accuracy")


def test_every_setting_of_a_run_has_a_label():
    """A key added to the project's settings without a label fails here, not on screen."""
    def flat(doc, prefix=""):
        for key, value in doc.items():
            if isinstance(value, dict) and (not prefix or key == "split"):
                yield from flat(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    keys = set(flat(config_dict(Project())))
    missing = sorted(k for k in keys if k not in SETTING_LABELS)
    assert not missing
    diff = config_diff(config_dict(Project()), config_dict(Project(
        training=TrainingConfig(lr=0.01))))
    assert [setting_label(k) for k, _, _ in diff] == ["Learning rate"]


def test_readable_names_for_runs_without_one():
    assert (run_name_from_id("20261124-094608-digits-cnn", "cnn")
            == "Run of 24 Nov 09:46 · small CNN")
    assert (run_name_from_id("run-x", "mlp", "2026-12-06T20:38:48+00:00")
            == "Run of 6 Dec 20:38 · MLP")
    assert default_run_name(3, "mlp_small") == "Run 3 · small MLP"
    assert group_label("20261124-094608-iris-search") == "Search of 24 Nov 09:46"
    assert (group_label("20261124-094608-iris-cv5")
            == "Cross-validation (5 folds) of 24 Nov 09:46")
    assert default_run_name(1, "mlp", "fold 2 of 5") == "Fold 2 of 5 · MLP"
    assert default_run_name(2, "tabm") == "Run 2 · TabM ensemble"  # the default for tables
    # A project saved before runs had names still loads and shows a readable name.
    record = RunRecord(id="20261124-094608-digits-cnn", path="/x", created="", model="cnn")
    assert record.title == "Run of 24 Nov 09:46 · small CNN"
    assert RunRecord(id="a", path="/x", created="", name="  My run ").title == "My run"


def test_an_old_run_folder_opens_with_a_readable_name(tmp_path):
    old = shutil.copytree(FIXTURES / "run-finished-bcc8884", tmp_path / "old")
    folder = RunFolder.open(old)
    assert "name" not in folder.info
    assert folder.title.startswith("Run of ") and folder.title != folder.name
    folder.rename("  Iris,   first try ")
    assert RunFolder.open(old).title == "Iris, first try"
    with pytest.raises(RunError, match="empty"):
        folder.rename("   ")
    with pytest.raises(RunError, match="at most"):
        folder.rename("x" * 200)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    project = Project(data=DataConfig(source="sample:iris"),
                      model=ModelConfig(preset="mlp_small"),
                      training=TrainingConfig(epochs=1, batch_size=32))
    first = TrainingJob(project, runs_dir=runs).run()
    project.runs.append(first.record())
    second = TrainingJob(project, runs_dir=runs, name="Wider, more epochs").run()
    return first, second


def test_runs_are_numbered_and_named(two_runs):
    first, second = two_runs
    assert first.name == "Run 1 · small MLP"
    assert json.loads((first.run_dir / "run.json").read_text())["name"] == first.name
    assert first.record().title == "Run 1 · small MLP"
    assert second.record().name == "Wider, more epochs"
    assert RunFolder.open(second.run_dir).title == "Wider, more epochs"


def test_train_name_on_the_command_line(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", "--data", "sample:iris", "--epochs", "1", "--quiet", "--out",
                   str(out), "--name", "Iris  baseline")
    assert proc.returncode == 0, proc.stderr
    assert "name: Iris baseline" in proc.stdout
    assert RunFolder.open(out).title == "Iris baseline"
    bad = run_cli("train", "--data", "sample:iris", "--epochs", "1", "--quiet", "--name", " ")
    assert bad.returncode != 0 and "--name needs a name" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_report_names_the_run_as_the_app_does(two_runs):
    from ml.evaluation.report import build_report
    from ml.runs.folder import load_run

    first, _ = two_runs
    report = build_report(load_run(first.run_dir))
    assert report.subtitle.startswith("Run 1 · small MLP · written")
    assert first.run_dir.name not in report.subtitle
