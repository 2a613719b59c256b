"""Pretrained backbones: what is refused, the three ways to train, and runs that stand alone."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ml.errors import ModelSpecError
from ml.evaluation.evaluate import evaluate_run
from ml.jobs.training import TrainingJob
from ml.models import backbones
from ml.runs.folder import RunFolder, load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.training import pretrained
from tests.conftest import make_tiny_bert, write_image_folder, write_reviews


def _project(source, backbone, mode, epochs=3, **training) -> Project:
    training = {"epochs": epochs, "batch_size": 16, "lr": 3e-3, **training}
    data = DataConfig(source=str(source))
    if str(source).endswith(".csv"):
        data.target = "sentiment"
    return Project(data=data, model=ModelConfig(backbone=str(backbone), train_mode=mode),
                   training=TrainingConfig(**training))


@pytest.fixture
def reviews(tmp_path):
    return write_reviews(tmp_path / "reviews.csv")


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case, expected", [
    ("not_a_folder", "is not a folder"),
    ("no_config", "no config.json"),
    ("remote_code", "remote code"),
    ("pickled", "only pickled weights"),
    ("unknown_type", "cannot fine-tune"),
    ("no_tokenizer", "no tokenizer.json"),
])
def test_folders_that_are_not_usable_models_are_refused_with_the_reason(
        tmp_path, tiny_bert, case, expected):
    folder = tmp_path / "model"
    if case == "not_a_folder":
        folder.write_text("hello")
    else:
        shutil.copytree(tiny_bert, folder)
        config = json.loads((folder / "config.json").read_text())
        if case == "no_config":
            (folder / "config.json").unlink()
        elif case == "remote_code":
            config["auto_map"] = {"AutoModel": "modeling_x.XModel"}
        elif case == "pickled":
            (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
        elif case == "unknown_type":
            config["model_type"] = "gpt2"
        elif case == "no_tokenizer":
            (folder / "tokenizer.json").unlink()
        if (folder / "config.json").exists():
            (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelSpecError, match=expected):
        backbones.resolve(str(folder))


def test_a_safetensors_file_is_used_with_the_config_beside_it(tmp_path, tiny_bert):
    assert backbones.resolve(str(tiny_bert / "model.safetensors")).folder == str(tiny_bert)
    alone = tmp_path / "weights.safetensors"
    shutil.copy(tiny_bert / "model.safetensors", alone)
    with pytest.raises(ModelSpecError, match="no config.json beside it"):
        backbones.resolve(str(alone))


def test_a_damaged_shipped_weights_file_is_refused(tmp_path):
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"not the weights")
    with pytest.raises(ModelSpecError, match="damaged"):
        backbones.verify_file(bad, backbones.EFFICIENTNET_SHA256)


def test_a_local_folder_is_described_from_its_files(tiny_bert, tiny_vit):
    text = backbones.resolve(str(tiny_bert))
    assert (text.kind, text.model_type, text.feature_dim) == ("text", "bert", 16)
    assert text.params > 0 and text.disk_bytes > 0 and text.transformer
    image = backbones.resolve(str(tiny_vit))
    assert (image.kind, image.image_size, image.mean) == ("image", 32, (0.5, 0.5, 0.5))


# -- the three ways ----------------------------------------------------------------------------
def test_linear_probe_caches_features_so_a_second_run_skips_the_backbone(
        tmp_path, reviews, tiny_bert, monkeypatch):
    first = TrainingJob(_project(reviews, tiny_bert, "probe", epochs=60, lr=2e-2),
                        run_dir=tmp_path / "a").run()
    assert first.evaluation.metrics["accuracy"] >= 0.7  # a random tiny encoder: above chance

    def no_backbone(*args, **kwargs):
        raise AssertionError("the features should come from the cache")

    with monkeypatch.context() as patch:  # no backbone pass at all, the test split's included
        patch.setattr(pretrained, "_compute", no_backbone)
        patch.setattr(backbones.TextBackbone, "forward", no_backbone)
        second = TrainingJob(_project(reviews, tiny_bert, "probe", epochs=60, lr=2e-2),
                             run_dir=tmp_path / "b").run()
    assert second.evaluation.metrics["accuracy"] == first.evaluation.metrics["accuracy"]
    # The test split's cached features through the head score as the whole saved network does.
    again = evaluate_run(load_run(second.run_dir))
    assert again.metrics["accuracy"] == pytest.approx(second.evaluation.metrics["accuracy"])
    assert np.allclose(again.proba, second.evaluation.proba, atol=1e-5)
    # The backbone itself did not move: the run's backbone weights are the pretrained ones.
    saved = RunFolder(second.run_dir).load_weights()
    from safetensors.torch import load_file
    original = load_file(str(tiny_bert / "model.safetensors"))
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(saved[f"body.0.net.{key}"], original[key])


def test_fine_tuning_trains_the_head_first_then_unfreezes_from_the_top(
        tmp_path, reviews, tiny_bert):
    seen = []

    class Watch(pretrained.Callback):
        def on_epoch_end(self, epoch, logs):
            net = self.trainer.model
            groups = net.body[0].layer_groups()
            seen.append([any(p.requires_grad for m in g for p in m.parameters())
                         for g in groups])

    project = _project(reviews, tiny_bert, "finetune", epochs=3)
    project.model.head_epochs = 1
    job = TrainingJob(project, run_dir=tmp_path / "run", callbacks=[Watch()])
    result = job.run()
    n = len(seen[0])
    assert seen[0] == [False] * n                  # epoch 1: the head alone
    assert seen[1] == [False] * (n - 1) + [True]   # epoch 2: the top group too
    assert seen[2] == [False] * (n - 2) + [True] * 2
    assert result.status == "finished"
    # Earlier layers learn at smaller rates: head first at the full rate.
    scales = [g["lr_scale"] for g in backbones.optimizer_groups(result.net)]
    assert scales[0] == 1.0 and scales == sorted(scales, reverse=True)
    assert scales[-1] == pytest.approx(1 / backbones.LR_MULT)


def test_fine_tuning_and_lora_start_from_a_head_trained_on_cached_features(
        tmp_path, reviews, tiny_bert, monkeypatch):
    def head_of(net):
        return {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("body.0.")}

    built, first_epoch, said = [], [], []

    class Watch(pretrained.Callback):
        def on_epoch_begin(self, epoch, logs):
            if epoch == 0:
                first_epoch.append(head_of(self.trainer.model))

    original = TrainingJob._warm_head

    def spy(self, setup, say):
        built.append(head_of(setup.net))
        return original(self, setup, say)

    monkeypatch.setattr(TrainingJob, "_warm_head", spy)
    for mode in ("finetune", "lora"):
        TrainingJob(_project(reviews, tiny_bert, mode, epochs=1), run_dir=tmp_path / mode,
                    callbacks=[Watch()], on_message=said.append).run()
    assert len(built) == len(first_epoch) == 2
    for before, after in zip(built, first_epoch, strict=True):  # the head moved before epoch 1
        assert any(not torch.equal(before[k], after[k]) for k in before)
    assert sum("Training the head on the backbone's features first" in m for m in said) == 2
    # A head from an earlier run is not trained again first.
    project = _project(reviews, tiny_bert, "finetune", epochs=1)
    project.model.init_from = str(tmp_path / "finetune")
    TrainingJob(project, run_dir=tmp_path / "again").run()
    assert len(built) == 2


def test_frozen_batch_norms_keep_their_statistics(tmp_path):
    folder = write_image_folder(tmp_path / "imgs", per_class=6)
    project = _project(folder, "efficientnet_lite0", "finetune", epochs=1)
    project.model.head_epochs = 1
    before = {}
    net, _ = TrainingJob(project)._initial_net(*_spec_and_prepared(project))
    for name, buf in net.named_buffers():
        if "running_mean" in name:
            before[name] = buf.clone()
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    after = dict(result.net.named_buffers())
    assert all(torch.equal(after[name], value) for name, value in before.items())


def _spec_and_prepared(project):
    from ml.data.dataset import load_dataset, prepare
    from ml.models.presets import build_spec

    info = backbones.resolve(project.model.backbone)
    prepared = prepare(load_dataset(project.data.source), project.data, backbone=info)
    pre = prepared.preprocessor
    return build_spec(project.model, pre.model_input(), pre.n_outputs, prepared.task), prepared


def test_lora_keeps_adapters_beside_the_run_and_saves_merged_weights(
        tmp_path, reviews, tiny_bert):
    project = _project(reviews, tiny_bert, "lora", epochs=4, lr=1e-2)
    project.model.lora_rank = 4
    result = TrainingJob(project, run_dir=tmp_path / "run").run()
    folder = RunFolder(result.run_dir)
    assert (folder.path / "lora_adapter.safetensors").is_file()
    settings = json.loads((folder.path / "lora_adapter.json").read_text())
    assert settings["layers"]["body.0"]["r"] == 4
    weights = folder.load_weights()
    assert not any("lora" in key for key in weights)
    run = load_run(result.run_dir)
    again = evaluate_run(run)
    assert again.metrics["accuracy"] == pytest.approx(result.evaluation.metrics["accuracy"])


def test_lora_is_refused_for_a_backbone_without_attention(tmp_path):
    folder = write_image_folder(tmp_path / "imgs", per_class=6)
    with pytest.raises(ModelSpecError, match="LoRA"):
        TrainingJob(_project(folder, "efficientnet_lite0", "lora", epochs=1),
                    run_dir=tmp_path / "run").run()


def test_a_run_needs_no_model_folder_afterwards(tmp_path, reviews):
    model = make_tiny_bert(tmp_path / "my-model")
    result = TrainingJob(_project(reviews, model, "finetune", epochs=2),
                         run_dir=tmp_path / "run").run()
    shutil.rmtree(model)
    again = evaluate_run(load_run(result.run_dir))
    assert again.metrics["accuracy"] == pytest.approx(result.evaluation.metrics["accuracy"])


def test_an_image_backbone_decides_size_channels_and_normalisation(
        tmp_path, tiny_vit, monkeypatch):
    from PIL import Image

    from ml.data.preprocessing import Preprocessor

    folder = write_image_folder(tmp_path / "imgs", per_class=6, side=20)
    Image.new("L", (30, 30), 200).save(folder / "red" / "grey.png")  # one grey image

    def no_statistics(*args):
        raise AssertionError("the backbone gives the normalisation: no pass over the images")

    monkeypatch.setattr(Preprocessor, "fit_normalization", no_statistics)
    result = TrainingJob(_project(folder, tiny_vit, "finetune", epochs=2),
                         run_dir=tmp_path / "run").run()
    pre = result.prepared.preprocessor
    assert pre.input_shape == [3, 32, 32] and pre.image["mode"] == "RGB"
    assert pre.feature_mean == [0.5] * 3 and pre.feature_std == [0.5] * 3
    assert result.status == "finished"


def test_resuming_a_fine_tuned_run_goes_on_from_its_checkpoint(tmp_path, reviews, tiny_bert):
    project = _project(reviews, tiny_bert, "finetune", epochs=1)
    first = TrainingJob(project, run_dir=tmp_path / "run").run()
    resumed = TrainingJob.resume(first.run_dir, epochs=2).run()
    assert resumed.fit.epochs_completed == 2
    history = RunFolder(first.run_dir).read_history()
    assert [row["epoch"] for row in history] == [1, 2]


def test_word_pieces_encode_like_the_backbone_reads(tiny_bert):
    from ml.data.text import WordPieces

    doc = WordPieces.document((tiny_bert / "tokenizer.json").read_text(), 8, "x")
    tok = WordPieces(doc)
    ids = tok.encode(["Good film.", None, "very very very very very very very very long"])
    assert ids.shape == (3, 8) and ids.dtype == np.int64
    assert ids[0, 0] == 2 and 3 in ids[0] and ids[0, -1] == 0      # [CLS] ... [SEP] pad
    assert list(ids[1][:2]) == [2, 3]                                 # empty text
    assert ids[2, -1] == 3                                            # cut, still ends [SEP]
    assert tok.tokenize("Good film.") == ["good", "film", "."]
    assert tok.preview(["zzz"])[0]["n_unknown"] == 1


def test_pretrained_runs_work_in_every_later_step(tmp_path, reviews, tiny_bert):
    """Try it, token attributions, ensembles and the report take a pretrained run like any."""
    from ml.evaluation.ensemble import Ensemble
    from ml.evaluation.report import build_report
    from ml.evaluation.tryit import Predictor

    probe = load_run(TrainingJob(_project(reviews, tiny_bert, "probe", epochs=3),
                                 run_dir=tmp_path / "probe").run().run_dir)
    tuned = load_run(TrainingJob(_project(reviews, tiny_bert, "finetune", epochs=1),
                                 run_dir=tmp_path / "tuned").run().run_dir)
    predictor = Predictor(tuned)
    assert predictor.predict_text("the film was great").label in ("pos", "neg")
    words = predictor.explain_text("the film was great")
    assert words.tokens == ["the", "film", "was", "great"] and len(words.scores) == 4
    from ml.data.dataset import load_dataset
    frame = load_dataset(str(reviews)).frame
    pred, proba = Ensemble([probe, tuned]).predict(tuned.preprocessor.transform_features(frame))
    assert proba.shape == (len(frame), 2)
    html = build_report(tuned).html()
    assert "started from a pretrained model" in html and "fine-tuning" in html


def test_the_learning_rate_test_of_a_probe_runs_on_cached_features(
        tmp_path, reviews, tiny_bert, monkeypatch):
    from ml.training import lrfinder

    seen = {}

    def fake(net, task, config, x, y, **kwargs):
        seen.update(net=net, x=x)
        return "result"

    monkeypatch.setattr(lrfinder, "find_lr", fake)
    job = TrainingJob(_project(reviews, tiny_bert, "probe"))
    assert job.find_lr() == "result"
    assert not seen["net"].has_backbone and seen["x"].shape[1] == 16  # the head, on features


def test_the_feature_cache_drops_its_oldest_files_past_its_limit(tmp_path):
    import os

    for i, name in enumerate(("old", "mid", "new")):
        np.save(tmp_path / f"{name}.npy", np.zeros(1000, np.float32))
        os.utime(tmp_path / f"{name}.npy", (1000 + i, 1000 + i))
    size = (tmp_path / "new.npy").stat().st_size
    pretrained._trim(tmp_path, keep=tmp_path / "new.npy", limit=2 * size)
    assert sorted(p.stem for p in tmp_path.glob("*.npy")) == ["mid", "new"]


def test_the_estimates_read_texts_as_long_as_the_backbone_will(tmp_path, reviews, tiny_bert):
    from ml.data.dataset import backbone_text_length, load_dataset, resolve
    from ml.models.presets import backbone_input
    from ml.models.spec import InputSpec

    project = _project(reviews, tiny_bert, "finetune")
    dataset = load_dataset(str(reviews))
    summary = resolve(dataset, project.data)
    info = backbones.resolve(str(tiny_bert))
    length = backbone_text_length(dataset, summary, info)
    prepared_length = TrainingJob(project)._set_up(print).prepared.preprocessor.input_shape[0]
    assert 8 <= length == prepared_length < info.max_length
    spec_in = backbone_input(info, InputSpec((64,), "int64", "text", vocab_size=9), length)
    assert spec_in.shape == (length,)
