import errno
import json
import os

import pytest

from ml.errors import ProjectError
from ml.runs import project as project_module
from ml.runs.project import (
    PROJECT_VERSION,
    DataConfig,
    ModelConfig,
    Project,
    RunRecord,
    TrainingConfig,
)


def make_project(tmp_path) -> Project:
    csv = tmp_path / "data" / "table.csv"
    csv.parent.mkdir()
    csv.write_text("a,b\n1,2\n")
    return Project(
        name="Demo",
        data=DataConfig(source=str(csv), target="b", task="regression",
                        column_types={"a": "numeric"}, column_roles={"a": "feature"}),
        model=ModelConfig(preset="mlp", hidden=[32, 16], dropout=0.3),
        training=TrainingConfig(optimizer="sgd", lr=0.01, batch_size=8, epochs=3, seed=7),
        runs=[RunRecord(id="r1", path=str(tmp_path / "runs" / "r1"), created="2026-01-01",
                        status="finished", task="regression", model="mlp",
                        metrics={"mae": 1.5})])


def test_round_trip_through_file(tmp_path):
    project = make_project(tmp_path)
    path = project.save(tmp_path / "demo")
    assert path.name == "demo.tdproj"
    loaded = Project.load(path)
    assert loaded == project
    assert loaded.path == path


def test_paths_are_stored_relative_and_survive_moving_the_folder(tmp_path):
    project = make_project(tmp_path)
    path = project.save(tmp_path / "demo.tdproj")
    doc = json.loads(path.read_text())
    assert doc["data"]["source"] == "data/table.csv"
    assert doc["runs"][0]["path"] == "runs/r1"
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    os.rename(tmp_path, moved)
    loaded = Project.load(moved / "demo.tdproj")
    assert loaded.data.source == str(moved / "data" / "table.csv")


def test_document_is_plain_versioned_json(tmp_path):
    doc = make_project(tmp_path).to_dict()
    assert doc["format"] == "traindesk-project"
    assert doc["version"] == PROJECT_VERSION
    json.dumps(doc)  # nothing that is not JSON


def test_sample_source_is_kept_verbatim(tmp_path):
    project = Project(data=DataConfig(source="sample:iris"))
    assert Project.load(project.save(tmp_path / "p.tdproj")).data.source == "sample:iris"


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01 not json", "not valid JSON"),
    (b"{\"format\": \"something-else\", \"version\": 1}", "not a TrainDesk project"),
    (b"[1, 2, 3]", "not a TrainDesk project"),
    (b"{\"format\": \"traindesk-project\"}", "no valid format version"),
])
def test_broken_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.tdproj"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match=message):
        Project.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ProjectError, match="not found"):
        Project.load(tmp_path / "nope.tdproj")


def test_newer_version_is_refused(tmp_path):
    doc = Project().to_dict()
    doc["version"] = PROJECT_VERSION + 1
    path = tmp_path / "new.tdproj"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="newer TrainDesk"):
        Project.load(path)
    doc["written_by"] = "7.2.0"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match=r"newer TrainDesk \(7\.2\.0, project format"):
        Project.load(path)


def test_a_version_2_project_keeps_nesterov_momentum_for_sgd_by_migration(tmp_path):
    """Version 2 had no nesterov setting (SGD always used it): migration 2 -> 3 says so."""
    doc = Project(data=DataConfig(source="sample:iris")).to_dict()
    doc["version"] = 2
    doc.pop("written_by")
    doc["training"].pop("nesterov")
    doc["training"].update(optimizer="sgd", momentum=0.9)
    path = tmp_path / "v2.tdproj"
    path.write_text(json.dumps(doc))
    assert Project.load(path).training.nesterov is True
    doc["training"]["optimizer"] = "adam"
    path.write_text(json.dumps(doc))
    assert Project.load(path).training.nesterov is False
    migrated = project_module.migrate({**doc, "training": dict(doc["training"])})
    assert migrated["version"] == PROJECT_VERSION and migrated["kind"] == "standard"


def test_a_language_model_project_round_trips_with_portable_paths(tmp_path):
    from ml.runs.project import LanguageModelConfig

    (tmp_path / "models" / "tiny").mkdir(parents=True)
    project = Project(name="chat", kind="language-model", language_model=LanguageModelConfig(
        backbone=str(tmp_path / "models" / "tiny"), data=str(tmp_path / "chat.jsonl"),
        mode="full", lora_targets=["q_proj"], epochs=2))
    path = project.save(tmp_path / "chat.tdproj")
    doc = json.loads(path.read_text())
    assert doc["kind"] == "language-model" and doc["language_model"]["backbone"] == "models/tiny"
    again = Project.load(path)
    assert again.kind == "language-model" and again.language_model == project.language_model
    doc["kind"] = "chatbot"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="project kind"):
        Project.load(path)
    doc["kind"], doc["language_model"]["mode"] = "language-model", "qlora"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="lora or full"):
        Project.load(path)


def test_invalid_values_are_reported_with_their_field(tmp_path):
    doc = Project().to_dict()
    doc["training"]["lr"] = "fast"
    path = tmp_path / "p.tdproj"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="training.lr"):
        Project.load(path)
    doc["training"]["lr"] = -1
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="learning rate"):
        Project.load(path)


def test_older_versions_are_migrated(tmp_path, monkeypatch):
    """A document of an older version goes through every migration step in order."""
    old_version = PROJECT_VERSION
    doc = Project(data=DataConfig(source="sample:iris")).to_dict()
    doc["training"]["learning_rate"] = doc["training"].pop("lr")  # how the old format said it
    doc["training"]["learning_rate"] = 0.05

    def rename_lr(d):
        d["training"]["lr"] = d["training"].pop("learning_rate")
        return d

    monkeypatch.setattr(project_module, "PROJECT_VERSION", old_version + 1)
    monkeypatch.setitem(project_module.MIGRATIONS, old_version, rename_lr)
    path = tmp_path / "old.tdproj"
    path.write_text(json.dumps(doc))
    loaded = Project.load(path)
    assert loaded.training.lr == 0.05
    assert loaded.to_dict()["version"] == old_version + 1


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    project = make_project(tmp_path)
    path = project.save(tmp_path / "demo.tdproj")
    before = path.read_bytes()
    project.name = "Changed"

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ProjectError, match="disk is full"):
        project.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp.tdproj")] == []


@pytest.mark.parametrize("section, key, value", [
    ("training", "lr", None), ("model", "hidden", None), ("training", "seed", -1),
    ("training", "epochs", 2.5), ("data", "column_types", {"a": [1]}), ("data", "target", 3),
])
def test_null_and_out_of_range_values_are_clear_errors(tmp_path, section, key, value):
    doc = Project().to_dict()
    doc[section][key] = value
    path = tmp_path / "p.tdproj"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match=key if key != "seed" else "seed"):
        Project.load(path)


def test_an_invalid_project_is_not_written(tmp_path):
    project = Project()
    project.data.split.val_fraction = project.data.split.test_fraction = 0.45
    with pytest.raises(ProjectError, match="cannot be saved yet"):
        project.save(tmp_path / "p.tdproj")
    assert not (tmp_path / "p.tdproj").exists()


def test_saved_files_get_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = Project().save(tmp_path / "p.tdproj")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
