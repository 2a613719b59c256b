"""Files written by earlier TrainDesk versions still open, resume, evaluate and export.

The fixtures under ``tests/fixtures`` were made by the old versions' own code (see the README
there): a project file, a finished run and a run killed after its first epoch's checkpoint, for

* ``89d3025`` - the last version whose project files were version 1; no checksums, and a
  checkpoint without the training state (optimizer only), as the first checkpoints were;
* ``29d0a01`` - the parent of ef09ac8, the last version before checksums on weights and
  checkpoints: whole training state, no digest;
* ``bcc8884`` - the last version before the ml package was grouped by layer: digests on every
  weights file and checkpoint, config.json without a version;
* ``0fcccaa`` - the last version with preprocessing version 2: a regression run on a file with
  missing numbers and dates, and the predictions that version made.

Each test works on a copy in ``tmp_path``; the fixtures themselves are never written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.data.preprocessing import PREPROCESSING_VERSION
from ml.errors import RunError
from ml.evaluation import evaluate_run
from ml.export import export_run, inputs_for_check
from ml.jobs.training import TrainingJob
from ml.runs.folder import RunFolder, load_run
from ml.runs.migrations import RUN_VERSION
from ml.runs.project import PROJECT_VERSION, Project
from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
VERSIONS = ["89d3025", "29d0a01", "bcc8884", "04be891"]
#: Versions whose weights and checkpoints carry no digest.
WITHOUT_DIGEST = {"89d3025", "29d0a01"}
#: Versions whose run folders are already in the current run format (2): only their project
#: file (format 3) is migrated.
CURRENT_RUNS = {"04be891"}


def _copy(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        out.append(Path(shutil.copytree(FIXTURES / name, tmp_path / name)))
    return out


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def _recorded_test_metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text("utf-8"))["test"]


@pytest.mark.parametrize("version", VERSIONS)
def test_an_old_project_file_opens_with_its_run(tmp_path, version):
    project_dir, run_dir = _copy(tmp_path, f"project-{version}", f"run-finished-{version}")
    project = Project.load(project_dir / "iris.tdproj")
    assert project.name == "iris golden" and project.data.source == "sample:iris"
    assert project.model.hidden == [8] and project.training.epochs == 3
    # Written at version 1 by 89d3025, at version 2 since; v1 keeps v1's defaults.
    assert project.data.legacy_v1 == (version == "89d3025")
    assert project.to_dict()["version"] == PROJECT_VERSION
    (record,) = project.runs
    assert Path(record.path) == run_dir  # stored relative to the project file
    assert record.status == "finished" and record.task == "classification"
    assert load_run(record.path).status == "finished"


@pytest.mark.parametrize("version", VERSIONS)
def test_an_old_finished_run_opens_and_evaluates_to_the_score_it_recorded(tmp_path, version):
    (run_dir,) = _copy(tmp_path, f"run-finished-{version}")
    before = _hashes(run_dir)
    run = load_run(run_dir)
    assert run.status == "finished" and run.task == "classification"
    assert run.preprocessor.class_names == ["setosa", "versicolor", "virginica"]
    # For 89d3025 and 29d0a01 (WITHOUT_DIGEST) these weights have no digest: a version-1 run
    # folder is migrated when opened, and the migration is what vouches for them (once).
    assert RunFolder.open(run_dir).migrated_from == (None if version in CURRENT_RUNS else 1)
    evaluation = evaluate_run(run)
    recorded = _recorded_test_metrics(run_dir)
    assert evaluation.n == 24
    assert evaluation.metrics["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-9)
    assert evaluation.metrics["f1_macro"] == pytest.approx(recorded["f1_macro"], abs=1e-9)
    # Opening and evaluating an old run writes nothing: the migration reaches the disk only
    # when the run is next saved.
    assert _hashes(run_dir) == before


@pytest.mark.parametrize("version", VERSIONS)
def test_an_old_finished_run_exports_to_onnx_and_the_export_checks_itself(tmp_path, version):
    (run_dir,) = _copy(tmp_path, f"run-finished-{version}")
    run = load_run(run_dir)  # digest-less weights for 89d3025/29d0a01, vouched by migration
    x, checked_on = inputs_for_check(run)
    assert checked_on == "test samples"  # the sample's data is the one it was trained on
    report = export_run(run, "onnx", tmp_path / "model.onnx", x, checked_on=checked_on)
    assert report.path.is_file() and report.sidecar.is_file()
    assert report.n == 24 and report.identical == report.n and report.max_abs_diff < 1e-4


@pytest.mark.parametrize("version", ["29d0a01", "bcc8884"])
def test_an_old_killed_run_resumes_to_the_end(tmp_path, version):
    (run_dir,) = _copy(tmp_path, f"run-interrupted-{version}")
    run = load_run(run_dir)
    assert run.status == "running"  # as the kill left it
    assert len((run_dir / "history.jsonl").read_text("utf-8").splitlines()) == 1
    # For 29d0a01 checkpoint.pt has no digest: resume reads it through the version-1 migration,
    # and saving the resumed run writes the migration with checksums added.
    result = TrainingJob.resume(run_dir).run()
    assert result.status == "finished"
    resumed = load_run(run_dir)
    assert resumed.status == "finished" and resumed.info["epochs_completed"] == 4
    history = (run_dir / "history.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line)["epoch"] for line in history] == [1, 2, 3, 4]
    info = json.loads((run_dir / "run.json").read_text("utf-8"))
    assert info["version"] == RUN_VERSION and info["migrated"]["from"] == 1
    assert json.loads((run_dir / "config.json").read_text("utf-8"))["version"] == RUN_VERSION
    if version == "29d0a01":
        assert "checkpoint.pt" in info["migrated"]["checksums_added"]
    assert evaluate_run(resumed).n == 24  # the weights it wrote read back, checked


def test_a_killed_run_without_training_state_is_refused_not_guessed(tmp_path):
    """89d3025's checkpoints hold the optimizer but not the schedule or random states: resuming
    would not continue the same run, so it is refused in one sentence and nothing changes."""
    (run_dir,) = _copy(tmp_path, "run-interrupted-89d3025")
    before = _hashes(run_dir)
    assert load_run(run_dir).status == "running"
    with pytest.raises(RunError, match="without the training state; it cannot be resumed"):
        TrainingJob.resume(run_dir).run()
    assert _hashes(run_dir) == before


def test_old_killed_runs_on_the_command_line(tmp_path):
    refused, resumable = _copy(tmp_path, "run-interrupted-89d3025", "run-interrupted-29d0a01")
    proc = run_cli("train", "--resume", str(refused), "--quiet")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be resumed" in lines[0], proc.stderr
    proc = run_cli("train", "--resume", str(resumable), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "status: finished" in proc.stdout and load_run(resumable).status == "finished"


def test_after_an_old_run_is_saved_again_a_weights_file_without_a_digest_is_refused(tmp_path):
    """The trust a pre-checksum folder gets is spent once the run is written by this version:
    putting a digest-less file back (an old copy, a restore from backup) is not silently read."""
    old_weights = FIXTURES / "run-finished-29d0a01" / "model.safetensors"
    (run_dir,) = _copy(tmp_path, "run-interrupted-29d0a01")
    TrainingJob.resume(run_dir).run()
    assert evaluate_run(load_run(run_dir)).n == 24
    shutil.copyfile(old_weights, run_dir / "model.safetensors")
    # Only a folder still at version 1 may hold tensors without a checksum (ml.runs.migrations);
    # a saved (version-2) folder refuses them.
    with pytest.raises(RunError, match="no checksum"):
        evaluate_run(load_run(run_dir))


# -- preprocessing version 2 (no "was missing" features), 0fcccaa ---------------------------------
MISSING_RUN = "run-missing-0fcccaa"


def test_a_version_2_preprocessing_with_missing_cells_predicts_as_it_did(tmp_path):
    """A run whose columns had missing cells, written before the "was missing" features:
    it keeps its two inputs and gives the predictions that version's ``main.py predict``
    wrote; a new run on the same file gains one feature per column with missing cells."""
    from ml.evaluation.tryit import Predictor

    (run_dir,) = _copy(tmp_path, MISSING_RUN)
    raw = json.loads((run_dir / "preprocessing.json").read_text("utf-8"))
    assert raw["version"] == 2 and not any("indicator" in c for c in raw["columns"])
    run = load_run(run_dir)
    pre = run.preprocessor
    assert pre.feature_names() == ["size", "built (days)", "built (month)", "built (weekday)"]
    frame = pd.read_csv(run_dir / "houses.csv")
    assert frame["size"].isna().any() and frame["built"].isna().any()
    then = pd.read_csv(run_dir / "predictions-0fcccaa.csv")["prediction"].to_numpy()
    now = Predictor(run).predict_frame(frame.drop(columns=["price"]))["prediction"]
    assert np.allclose(now.to_numpy(float), then, rtol=1e-5, atol=1e-4)
    assert evaluate_run(run, data=run_dir / "houses.csv").n == len(frame)
    assert pre.to_dict()["version"] == PREPROCESSING_VERSION  # written as v3 from now on

    fresh = tmp_path / "fresh"
    run_cli("train", "--data", str(run_dir / "houses.csv"), "--target", "price", "--hidden",
            "8", "--epochs", "1", "--seed", "0", "--out", str(fresh), "--quiet")
    new = load_run(fresh)
    assert new.preprocessor.feature_names() == [
        "size", "size (missing)", "built (days)", "built (month)", "built (weekday)",
        "built (missing)"]
    # The standalone package's predict.py encodes both versions' tables as the app does.
    predict = _package_predict_module()
    _, rows = predict.read_csv(run_dir / "houses.csv")
    for pre_then_or_now in (pre, new.preprocessor):
        doc = json.loads(json.dumps(pre_then_or_now.to_dict()))
        if pre_then_or_now is pre:
            doc = raw  # the file as version 2 wrote it
        assert np.allclose(predict.encode_table(rows, doc),
                           pre_then_or_now.transform_features(frame), atol=1e-4)


def _package_predict_module():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "resources" / "export" / "predict.py"
    spec = importlib.util.spec_from_file_location("package_predict", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
