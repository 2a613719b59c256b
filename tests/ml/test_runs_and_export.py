import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ml.errors import ExportError, RunError
from ml.evaluation import evaluate_run, load_split, predict_frame
from ml.export import export_run, exporters
from ml.jobs.training import TrainingJob
from ml.models.spec import InferenceModel
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.runs.weights import load_checkpoint


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "iris"
    project = Project(data=DataConfig(source="sample:iris"),
                      model=ModelConfig(preset="mlp", hidden=[16]),
                      training=TrainingConfig(epochs=4, batch_size=16))
    return TrainingJob(project, run_dir=out).run()


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "diabetes"
    project = Project(data=DataConfig(source="sample:diabetes"),
                      model=ModelConfig(preset="mlp", hidden=[8]),
                      training=TrainingConfig(epochs=3))
    return TrainingJob(project, run_dir=out).run()


def test_run_folder_holds_everything(iris_run):
    d = iris_run.run_dir
    for name in ("run.json", "config.json", "split.npz", "preprocessing.json", "model.json",
                 "checkpoint.pt", "history.jsonl", "model.safetensors", "metrics.json"):
        assert (d / name).is_file(), name
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["task"] == "classification"
    assert set(metrics["test"]) == {"accuracy", "f1_macro"}
    for key in ("train_seconds", "samples_per_second", "device"):
        assert key in metrics
    lines = (d / "history.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["epoch"] == 4
    checkpoint = load_checkpoint(d / "checkpoint.pt")
    assert checkpoint["epoch"] == 4 and "optimizer" in checkpoint
    assert json.loads((d / "run.json").read_text())["status"] == "finished"


def test_reloaded_run_evaluates_like_the_job(iris_run):
    run = load_run(iris_run.run_dir)
    assert run.status == "finished" and len(run.history) == 4
    evaluation = evaluate_run(run)
    assert evaluation.metrics == pytest.approx(iris_run.evaluation.metrics)
    assert np.array_equal(evaluation.y_pred, iris_run.evaluation.y_pred)


def test_regression_metrics_are_in_target_units(regression_run):
    ev = regression_run.evaluation
    assert set(regression_run.metrics["test"]) == {"mae", "rmse", "r2"}
    assert ev.y_true.min() > 20  # diabetes progression is 25..346, not standardised
    assert ev.metrics["mae"] == pytest.approx(np.mean(np.abs(ev.y_true - ev.y_pred)))


def test_evaluating_on_a_new_labelled_file(iris_run, tmp_path):
    from ml.data.samples import load_sample_frame

    frame = load_sample_frame("iris").iloc[::3]
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    evaluation = evaluate_run(load_run(iris_run.run_dir), path)
    assert evaluation.n == len(frame) and evaluation.source == "new.csv"


def test_changed_data_file_is_detected(tmp_path, mixed_csv):
    project = Project(data=DataConfig(source=str(mixed_csv), target="label",
                                      column_roles={"id": "ignore"}),
                      training=TrainingConfig(epochs=1))
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    mixed_csv.write_text(mixed_csv.read_text().replace("red", "RED"))
    with pytest.raises(RunError, match="changed after this run was trained"):
        evaluate_run(load_run(result.run_dir))
    mixed_csv.unlink()
    with pytest.raises(RunError, match="not available any more"):
        evaluate_run(load_run(result.run_dir))


def test_predict_adds_prediction_and_probability_columns(iris_run):
    from ml.data.samples import load_sample_frame

    frame = load_sample_frame("iris").drop(columns="species").head(7)
    run = load_run(iris_run.run_dir)
    out = predict_frame(run.load_model(), run.preprocessor, frame)
    assert list(out.columns[-4:]) == ["prediction", "probability_setosa",
                                      "probability_versicolor", "probability_virginica"]
    assert np.allclose(out.filter(like="probability_").sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("load_run_fixture", ["iris_run", "regression_run"])
def test_exports_reproduce_the_in_memory_model(load_run_fixture, request, tmp_path):
    result = request.getfixturevalue(load_run_fixture)
    run = load_run(result.run_dir)
    x, _ = load_split(run, "test")
    reference = InferenceModel(result.net, run.task, run.preprocessor.target_mean,
                               run.preprocessor.target_std).eval()(torch.from_numpy(x))
    reference = reference.detach().numpy()

    report = export_run(run, "onnx", tmp_path / "m.onnx", x)
    assert report.identical == report.n == len(x)
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x[:5]})[0]  # a different batch size: dynamic batch
    assert np.allclose(got, reference[:5], atol=1e-4, rtol=1e-5)
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
    assert json.loads(meta["traindesk"])["preprocessing"]["target"] == run.preprocessor.target

    report = export_run(run, "pt2", tmp_path / "m.pt2", x)
    program = torch.export.load(str(report.path))
    assert np.allclose(program.module()(torch.from_numpy(x[:3])).detach().numpy(), reference[:3],
                       atol=1e-5)

    report = export_run(run, "safetensors", tmp_path / "m", x)
    assert report.path.name == "m.safetensors"
    sidecar = json.loads(report.sidecar.read_text())
    assert sidecar["model_spec"]["layers"] and sidecar["preprocessing"]["columns"]
    assert sidecar["task"] == run.task


def test_an_export_that_does_not_match_is_an_error_and_keeps_the_old_file(iris_run, tmp_path,
                                                                            monkeypatch):
    run = load_run(iris_run.run_dir)
    x, _ = load_split(run, "test")
    target = tmp_path / "m.safetensors"
    export_run(run, "safetensors", target, x)
    good = target.read_bytes()
    writer, loader = exporters._WRITERS["safetensors"]

    def broken_loader(path, xs):
        out = loader(path, xs)
        return out[:, ::-1]  # a runtime that permutes the classes

    monkeypatch.setitem(exporters._WRITERS, "safetensors", (writer, broken_loader))
    with pytest.raises(ExportError, match="does not reproduce the model"):
        export_run(run, "safetensors", target, x)
    assert target.read_bytes() == good
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_missing_and_damaged_runs(tmp_path, iris_run):
    with pytest.raises(RunError, match="not found"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a run folder"):
        load_run(tmp_path / "empty")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(iris_run.run_dir, broken)
    (broken / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(RunError, match="damaged"):
        load_run(broken).load_model()
    (broken / "model.json").write_text("{")
    with pytest.raises(RunError, match="damaged"):
        load_run(broken)
    (broken / "config.json").unlink()
    with pytest.raises(RunError, match=r"not a complete TrainDesk run folder \(config.json"):
        load_run(broken)


def test_the_same_project_trains_to_the_same_model(tmp_path):
    from safetensors.torch import load_file

    project = Project(data=DataConfig(source="sample:wine"),
                      model=ModelConfig(preset="mlp", hidden=[16], dropout=0.2),
                      training=TrainingConfig(epochs=3, seed=11))
    a = TrainingJob(project, run_dir=tmp_path / "a").run()
    b = TrainingJob(project, run_dir=tmp_path / "b").run()
    wa, wb = load_file(a.run_dir / "model.safetensors"), load_file(b.run_dir / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    strip = [{k: v for k, v in h.items() if "seconds" not in k} for h in a.fit.history]
    assert strip == [{k: v for k, v in h.items() if "seconds" not in k} for h in b.fit.history]


def test_a_full_disk_during_training_stops_with_a_clear_message(tmp_path, monkeypatch):
    """The epoch that cannot be saved ends the run; what was saved before stays readable."""
    import errno
    import os

    from ml.errors import TrainDeskError

    real_replace = os.replace
    calls = {"checkpoints": 0}

    def replace(src, dst):
        if str(dst).endswith("checkpoint.pt"):
            calls["checkpoints"] += 1
            if calls["checkpoints"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    project = Project(data=DataConfig(source="sample:iris"), training=TrainingConfig(epochs=10))
    with pytest.raises(TrainDeskError, match="disk is full"):
        TrainingJob(project, run_dir=tmp_path / "run").run()
    monkeypatch.setattr(os, "replace", real_replace)
    run = load_run(tmp_path / "run")
    assert run.status == "failed" and "disk is full" in run.info["error"]
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 2
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert len(run.history) == len(checkpoint["history"]) == 2
    assert not [p for p in (tmp_path / "run").iterdir() if ".tmp" in p.name]


def test_exports_still_check_themselves_when_the_data_file_changed(tmp_path, mixed_csv):
    from ml.export import inputs_for_check

    project = Project(data=DataConfig(source=str(mixed_csv), target="label",
                                      column_roles={"id": "ignore"}),
                      training=TrainingConfig(epochs=1))
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    mixed_csv.write_text(mixed_csv.read_text().replace("red", "RED"))
    run = load_run(result.run_dir)
    x, checked_on = inputs_for_check(run)
    assert len(x) == result.evaluation.n and "kept with the run" in checked_on
    report = export_run(run, "safetensors", tmp_path / "m", x, checked_on=checked_on)
    assert report.identical == report.n and "kept with the run" in report.summary


def test_a_missing_data_file_creates_no_run_folder(tmp_path, mixed_csv):
    from ml.data import load_dataset
    from ml.errors import DataError

    dataset = load_dataset(str(mixed_csv))
    mixed_csv.unlink()
    project = Project(data=DataConfig(source=str(mixed_csv), target="label"))
    with pytest.raises(DataError, match="Could not read the data file"):
        TrainingJob(project, dataset=dataset, runs_dir=tmp_path / "runs").run()
    assert not (tmp_path / "runs").exists()


def test_a_damaged_split_file_is_a_run_error(tmp_path, iris_run):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(iris_run.run_dir, broken)
    (broken / "split.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(RunError, match="split"):
        load_run(broken).split_rows()
