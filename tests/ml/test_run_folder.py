"""The run folder format's owner: versions, migrations, checksums, settings written once."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from ml import __version__
from ml.errors import NothingToDo, RunError
from ml.jobs.training import TrainingJob
from ml.runs.folder import RunFolder, load_run
from ml.runs.migrations import RUN_VERSION
from ml.runs.project import DataConfig, Project, TrainingConfig
from ml.runs.weights import load_checkpoint


def _project(epochs=2) -> Project:
    return Project(name="t", data=DataConfig(source="sample:iris", target="species"),
                   training=TrainingConfig(epochs=epochs, batch_size=32))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    TrainingJob(_project(), run_dir=run).run()
    return run


def _copy(run, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


def _make_version_1(run):
    """Rewrite *run* as TrainDesk 0.1 left it: unversioned config, no checksums."""
    info = json.loads((run / "run.json").read_text())
    info = {k: v for k, v in info.items() if k not in ("written_by", "changes")}
    (run / "run.json").write_text(json.dumps({**info, "version": 1}))
    config = json.loads((run / "config.json").read_text())
    for key in ("format", "version", "written_by"):
        config.pop(key)
    (run / "config.json").write_text(json.dumps(config))
    for name in ("model.safetensors", "best.safetensors"):
        save_file(load_file(str(run / name)), str(run / name))  # no digest in the metadata
    state = load_checkpoint(run / "checkpoint.pt")
    torch.save(state, run / "checkpoint.pt")  # the bare state, as before checksums


def test_a_new_run_has_versioned_config_written_once(finished):
    config = json.loads((finished / "config.json").read_text())
    info = json.loads((finished / "run.json").read_text())
    assert config["format"] == "traindesk-run-config" and config["version"] == RUN_VERSION
    assert config["written_by"] == __version__ == info["written_by"]
    assert info["version"] == RUN_VERSION and info["changes"] == []


def test_resume_records_changes_in_run_json_and_never_rewrites_config(finished, tmp_path):
    run = _copy(finished, tmp_path)
    before = (run / "config.json").read_bytes()
    with pytest.raises(NothingToDo, match="already trained 2 epochs; nothing to do"):
        TrainingJob.resume(run)
    result = TrainingJob.resume(run, epochs=3).run()
    assert result.status == "finished" and len(result.fit.history) == 3
    assert (run / "config.json").read_bytes() == before
    folder = RunFolder.open(run)
    assert folder.settings()["training"]["epochs"] == 3
    assert folder.started_config["training"]["epochs"] == 2
    assert [(c["setting"], c["from"], c["to"]) for c in folder.info["changes"]] == [
        ("training.epochs", 2, 3)]
    assert load_run(run).config["training"]["epochs"] == 3  # what evaluation and export read


def test_a_newer_run_is_refused_naming_the_version_that_wrote_it(finished, tmp_path):
    run = _copy(finished, tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "version": RUN_VERSION + 1,
                                              "written_by": "9.4.1"}))
    for open_it in (load_run, RunFolder.open, TrainingJob.resume):
        with pytest.raises(RunError, match=r"newer TrainDesk \(9\.4\.1, run format 3\).*Update"):
            open_it(run)
    run2 = _copy(finished, tmp_path, "newer-config")
    config = json.loads((run2 / "config.json").read_text())
    (run2 / "config.json").write_text(json.dumps({**config, "version": RUN_VERSION + 1}))
    with pytest.raises(RunError, match="Update TrainDesk"):
        load_run(run2)


def test_an_older_run_is_migrated_in_memory_and_written_on_the_next_save(finished, tmp_path):
    run = _copy(finished, tmp_path)
    _make_version_1(run)
    on_disk = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    folder = RunFolder.open(run)
    assert folder.migrated_from == 1 and folder.settings()["training"]["epochs"] == 2
    loaded = load_run(run)
    assert loaded.load_model() is not None  # trusted: the version-1 format had no checksums
    # nothing written:
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == on_disk
    TrainingJob.resume(run, epochs=3).run()  # the next save writes the migration
    info = json.loads((run / "run.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert info["version"] == config["version"] == RUN_VERSION
    assert info["migrated"]["from"] == 1
    assert set(info["migrated"]["checksums_added"]) == {"model.safetensors",
                                                        "best.safetensors", "checkpoint.pt"}
    folder = RunFolder.open(run)
    assert folder.migrated_from is None
    folder.load_weights()  # now carries a checksum, checked
    folder.load_checkpoint()


def test_a_current_run_with_a_file_without_checksum_is_refused(finished, tmp_path):
    run = _copy(finished, tmp_path)
    save_file(load_file(str(run / "model.safetensors")), str(run / "model.safetensors"))
    with pytest.raises(RunError, match="carries no checksum"):
        load_run(run).load_model()
    run2 = _copy(finished, tmp_path, "bare-checkpoint")
    torch.save(load_checkpoint(run2 / "checkpoint.pt"), run2 / "checkpoint.pt")
    with pytest.raises(RunError, match="carries no checksum"):
        TrainingJob.resume(run2, epochs=3).run()


def test_files_that_are_not_runs_get_one_plain_message(tmp_path):
    with pytest.raises(RunError, match="not found"):
        RunFolder.open(tmp_path / "missing")
    with pytest.raises(RunError, match="not a run folder"):
        RunFolder.open(tmp_path)
    (tmp_path / "run.json").write_text('{"format": "traindesk-run", "version": true}')
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RunError, match="no valid version"):
        RunFolder.open(tmp_path)
    (tmp_path / "run.json").write_text("[1, 2")
    with pytest.raises(RunError, match="damaged"):
        RunFolder.open(tmp_path)
    with pytest.raises(RunError, match="already holds a run"):
        RunFolder.claim(tmp_path)


def test_resume_refuses_a_run_whose_classes_would_come_in_another_order(finished, tmp_path):
    run = _copy(finished, tmp_path)
    doc = json.loads((run / "preprocessing.json").read_text())
    doc["class_names"] = list(reversed(doc["class_names"]))
    (run / "preprocessing.json").write_text(json.dumps(doc))
    with pytest.raises(RunError, match="classes in another order"):
        TrainingJob.resume(run, epochs=3).run()
