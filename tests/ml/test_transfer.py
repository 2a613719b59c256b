"""Transfer learning: a run's body is reused for new classes, the head starts fresh, and the
report says what was loaded; bad files are refused with a message."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from ml.jobs.training import TrainingJob
from ml.models.presets import build_spec
from ml.models.spec import InputSpec, build_model
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.training.transfer import TransferError, load_weights, match_weights, start_from


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory):
    project = Project(data=DataConfig(source="sample:wine"),
                      model=ModelConfig(preset="mlp", hidden=[16, 8]),
                      training=TrainingConfig(epochs=2, batch_size=16))
    return TrainingJob(project, run_dir=tmp_path_factory.mktemp("runs") / "wine").run()


def _net(n_out, hidden=(16, 8), n_in=13):
    spec = build_spec(ModelConfig(preset="mlp", hidden=list(hidden)), InputSpec((n_in,)),
                      n_out, "classification")
    return build_model(spec)


def test_a_run_folder_gives_the_body_and_a_fresh_head_for_new_classes(wine_run):
    net = _net(5)  # 5 classes instead of wine's 3
    report = start_from(net, str(wine_run.run_dir))
    trained = wine_run.net.state_dict()
    assert report.loaded == ["body.0.weight", "body.0.bias", "body.3.weight", "body.3.bias"]
    assert set(report.new) == {"body.6.weight", "body.6.bias"}
    assert any("shape differs: file 3 x 8, model 5 x 8" in why for _, why in report.skipped)
    assert torch.equal(net.state_dict()["body.0.weight"], trained["body.0.weight"])
    assert not torch.equal(net.state_dict()["normalize.mean"], trained["normalize.mean"])
    assert report.loaded_values == 13 * 16 + 16 + 16 * 8 + 8
    assert "loaded 4 tensors" in report.describe() and "body.6.weight" in report.describe()


def test_files_wrappers_and_prefixes(wine_run, tmp_path):
    state = wine_run.net.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        net = _net(3)
        report = start_from(net, str(tmp_path / name))
        assert len(report.loaded) == 6 and not report.new
        assert torch.equal(net.state_dict()["body.6.weight"], state["body.6.weight"])


def test_weights_that_fit_nothing_or_are_not_weights_are_refused(wine_run, tmp_path):
    with pytest.raises(TransferError, match="None of the 8 tensors .* fit this model"):
        match_weights(_net(3, hidden=(5,), n_in=4), load_weights(str(wine_run.run_dir)),
                      str(wine_run.run_dir))
    (tmp_path / "junk.pt").write_bytes(b"\x00not a file torch can read")
    (tmp_path / "junk.safetensors").write_bytes(b"12345678garbage")
    with open(tmp_path / "object.pt", "wb") as fh:  # a pickle that would run code
        pickle.dump({"weights": object()}, fh)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    for name, words in (("junk.pt", "only tensors are accepted"),
                        ("junk.safetensors", "not a readable safetensors"),
                        ("object.pt", "only tensors are accepted"),
                        ("list.pt", "no named tensors"), ("missing.pt", "Not found"),
                        ("", "not a TrainDesk run folder")):
        with pytest.raises(TransferError, match=words):
            load_weights(str(tmp_path / name))


def test_a_run_started_from_another_keeps_the_body_frozen_then_trains_it(wine_run, tmp_path):
    project = Project(data=DataConfig(source="sample:wine"),
                      model=ModelConfig(preset="mlp", hidden=[16, 8],
                                        init_from=str(wine_run.run_dir), freeze_epochs=2),
                      training=TrainingConfig(epochs=2, batch_size=16, restore_best=False))
    messages = []
    result = TrainingJob(project, run_dir=tmp_path / "frozen", on_message=messages.append).run()
    before, after = wine_run.net.state_dict(), result.net.state_dict()
    assert torch.equal(before["body.0.weight"], after["body.0.weight"])  # frozen throughout
    assert any("Transfer learning: From wine" in m for m in messages)
    info = load_run(result.run_dir).info
    assert info["transfer"]["loaded"] == 6 and info["transfer"]["frozen_epochs"] == 2
    project.model.freeze_epochs = 1
    project.training.epochs = 2
    result = TrainingJob(project, run_dir=tmp_path / "thawed").run()
    assert not torch.equal(before["body.0.weight"], result.net.state_dict()["body.0.weight"])
