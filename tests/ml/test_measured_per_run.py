"""What was measured of a run stays with the run (measured.json): its smaller versions and the
data health check at its start, so the report and every screen tell the same thing; a
steady rise of the validation loss reads as overfitting there too; a resumed fit hands its
earlier epochs to the callbacks (the live curves start from them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ml.data.health as health
from ml.data.dataset import load_dataset
from ml.data.health import check_health
from ml.errors import DataError
from ml.evaluation.evaluate import load_split
from ml.evaluation.report import build_report
from ml.export import export_run
from ml.export.compress import CompressionReport, Variant, compress_run
from ml.export.shrink import _keep_measured
from ml.jobs.training import TrainingJob
from ml.runs.folder import RunFolder, load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.training.callbacks import Callback
from ml.training.diagnose import overfitting
from tests.conftest import run_cli, run_main


def _project(epochs=4, **data):
    return Project(data=DataConfig(source="sample:iris", **data),
                   model=ModelConfig(preset="mlp", hidden=[16]),
                   training=TrainingConfig(epochs=epochs, lr=0.01, batch_size=16))


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("measured")
    return TrainingJob(_project(), run_dir=base / "run").run().run_dir


def _copy(run_dir, tmp_path):
    return shutil.copytree(run_dir, tmp_path / "run")


def _int8(run_dir, tmp_path):
    run = load_run(run_dir)
    x, y = load_split(run, "test")
    onnx = export_run(run, "onnx", tmp_path / "model.onnx", x).path
    return compress_run(run, onnx, x, y)


def test_int8_measured_on_the_export_step_is_in_the_runs_report(iris_dir, tmp_path):
    run_dir = _copy(iris_dir, tmp_path)
    assert "No smaller versions" in build_report(load_run(run_dir)).html()
    measured = _int8(run_dir, tmp_path)
    html = build_report(load_run(run_dir)).html()  # no table handed over: read from the run
    assert "int8 (dynamic)" in html and "No smaller versions" not in html
    kept = RunFolder.open(run_dir).smaller_tables()["int8"]
    assert [v["name"] for v in kept["variants"]] == [v.name for v in measured.variants]
    assert kept["variants"][1]["size_bytes"] == measured.variants[1].size_bytes
    assert CompressionReport.from_dict(kept) == measured  # what the Export step shows again

    # New weights (a resume) make the measurement stale: it is no longer this model's.
    folder = RunFolder.open(run_dir)
    folder.save_weights({k: v + 1.0 for k, v in folder.load_weights().items()})
    assert RunFolder.open(run_dir).smaller_tables() == {}
    assert "No smaller versions" in build_report(load_run(run_dir)).html()


def _table(*names):
    return CompressionReport([Variant(name, Path(f"{name}.onnx"), 1000 + i, 0.1, "accuracy",
                                      0.9, 500) for i, name in enumerate(names)])


def test_pruned_versions_measured_one_at_a_time_are_all_kept(iris_dir, tmp_path):
    run_dir = _copy(iris_dir, tmp_path)
    original = load_run(run_dir)
    _keep_measured(original, _table("original", "pruned 50%"))  # the shrink panel, each job
    _keep_measured(original, _table("original", "pruned 80%"))
    kept = RunFolder.open(run_dir).smaller_tables()["derived"]
    assert [v["name"] for v in kept["variants"]] == ["original", "pruned 80%", "pruned 50%"]
    html = build_report(load_run(run_dir)).html()
    assert "pruned 50%" in html and "pruned 80%" in html


def test_a_run_keeps_the_health_check_it_was_trained_with(tmp_path, monkeypatch):
    def broken(dataset, config, summary=None, **kwargs):
        raise DataError("The column 'species' could not be hashed.")

    with monkeypatch.context() as patch:
        patch.setattr(health, "check_health", broken)
        run_dir = TrainingJob(_project(epochs=1), run_dir=tmp_path / "run").run().run_dir
    kept = RunFolder.open(run_dir).measurements()["health"]
    assert kept == {"outcome": "failed", "findings": [],
                    "error": "The column 'species' could not be hashed."}
    html = build_report(load_run(run_dir)).html()  # the check works again now
    assert "health check could not run (checked when this run was trained)" in html
    assert "could not be hashed" in html and "nothing to worry about" not in html

    good = TrainingJob(_project(epochs=1), run_dir=tmp_path / "good").run().run_dir
    assert RunFolder.open(good).measurements()["health"]["outcome"] in ("ok", "findings")
    assert "checked when this run was trained" in build_report(load_run(good)).html()


def test_a_run_from_before_measured_json_still_loads_and_is_checked_now(iris_dir, tmp_path):
    run_dir = _copy(iris_dir, tmp_path)
    (run_dir / "measured.json").unlink()
    run = load_run(run_dir)
    assert run.folder.measurements() == {} and run.folder.smaller_tables() == {}
    html = build_report(run).html()
    assert "(checked now)" in html and "No smaller versions" in html
    (run_dir / "measured.json").write_text("{not json")  # damaged: as if nothing was kept
    assert RunFolder.open(run_dir).measurements() == {}
    assert "(checked now)" in build_report(load_run(run_dir)).html()


def test_data_that_cannot_be_resolved_is_not_healthy(tmp_path):
    dataset = load_dataset("sample:iris")
    with pytest.raises(DataError):  # used to be [] - "no problems found"
        check_health(dataset, DataConfig(source="sample:iris", target="no such column"))


def test_the_report_and_the_train_page_read_a_steady_rise_as_overfitting(iris_dir, tmp_path):
    run_dir = _copy(iris_dir, tmp_path)
    train = [1.0, .6, .45, .40, .38, .385, .375, .38, .37, .375]
    val = [1.0, .7, .55, .50, .505, .512, .518, .521, .529, .534]
    history = [{"epoch": i + 1, "loss": t, "val_loss": v, "accuracy": .9, "val_accuracy": .9}
               for i, (t, v) in enumerate(zip(train, val))]
    RunFolder(run_dir).write_history([json.dumps(h) for h in history])
    found = overfitting(history)
    assert found is not None and found["kind"] == "steady" and found["best_epoch"] == 4
    report = build_report(load_run(run_dir))
    assert report.numbers["overfitting"] == found["message"]
    assert "risen steadily for 6 epochs since its lowest point at epoch 4" in report.html()


def test_a_steady_rise_beyond_noise_is_overfitting_and_noise_is_not():
    def h(train, val):
        return [{"epoch": i + 1, "loss": t, "val_loss": v}
                for i, (t, v) in enumerate(zip(train, val))]

    flat = [1, .6, .45, .4, .39, .39, .39, .39, .39, .39]
    # Small steps up every epoch, the training loss level: the old rule wanted each of the
    # last epochs 5% above the best and the training loss still falling, and saw nothing.
    assert overfitting(h(flat, [1, .7, .55, .5, .504, .508, .512, .516, .52, .524]))["kind"] \
        == "steady"
    # Up and down around a level after the best: noise, not a trend.
    assert overfitting(h(flat, [1, .7, .55, .5, .52, .505, .525, .506, .52, .507])) is None
    # Only two epochs after the best are too few to call a trend.
    assert overfitting(h(flat[:6], [1, .7, .55, .5, .504, .508])) is None
    # Both losses rising is training going wrong (a learning rate too high), not overfitting.
    rising = [1, .6, .45, .4, .42, .44, .46, .48, .5, .52]
    assert overfitting(h(rising, [1, .7, .55, .5, .52, .54, .56, .58, .6, .62])) is None


class _FitBegin(Callback):
    def __init__(self):
        self.logs = []

    def on_fit_begin(self, logs):
        self.logs.append(logs)


def test_a_resumed_fit_starts_from_the_epochs_trained_before(tmp_path):
    project = _project(epochs=3)
    run_dir = TrainingJob(project, run_dir=tmp_path / "run").run().run_dir
    saved = RunFolder.open(run_dir).read_history()
    seen = _FitBegin()
    TrainingJob.resume(run_dir, epochs=5, callbacks=[seen]).run()
    (logs,) = seen.logs
    assert logs["first_epoch"] == 3
    assert [e["epoch"] for e in logs["earlier_epochs"]] == [1, 2, 3]
    assert logs["earlier_epochs"] == saved
    fresh = _FitBegin()
    TrainingJob(project, run_dir=tmp_path / "fresh", callbacks=[fresh]).run()
    assert fresh.logs[0]["earlier_epochs"] == []


def test_the_headless_report_shows_the_int8_versions_measured_by_an_export(iris_dir, tmp_path):
    run_dir = _copy(iris_dir, tmp_path)
    done = run_cli("export", str(run_dir), "--format", "onnx", "--out",
                   str(tmp_path / "model.onnx"), "--quantize", "int8")
    assert done.returncode == 0, done.stderr
    # A fresh process for the report: it knows the measurements only from the run folder.
    done = run_main("export", str(run_dir), "--format", "report", "--out",
                    str(tmp_path / "report.html"), "--no-pdf")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "int8 (dynamic)" in html and "No smaller versions" not in html
