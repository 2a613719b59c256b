"""Choosing a pretrained start (issue 20): what is proposed for which data, the settings that
suit each way of training, run names, and the estimates of time and memory with a backbone."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml.data.dataset import load_dataset
from ml.jobs.estimate import backbone_seconds, estimate_project, propose_start
from ml.labels import default_run_name, format_minutes, model_label
from ml.models.backbones import resolve
from ml.models.presets import (
    TEXT_BACKBONE_SECONDS,
    backbone_input,
    backbone_schedule,
    build_spec,
    propose_backbone,
    trainable_params,
    training_memory,
)
from ml.models.spec import InputSpec, summarize
from ml.runs.project import ModelConfig, Project
from ml.training import estimate

TEXT = InputSpec((64,), dtype="int64", kind="text", vocab_size=500)
PHOTOS = InputSpec((3, 40, 40), kind="image")


def test_run_names_read_the_backbone_and_its_way_of_training():
    assert model_label("efficientnet_lite0-finetune") == "EfficientNet-Lite0 · fine-tune"
    assert model_label("minilm-lora") == "MiniLM · LoRA"
    assert model_label("pretrained-probe", "/models/tiny-bert/") == "tiny-bert · linear probe"
    assert model_label("pretrained-probe") == "pretrained model · linear probe"
    assert default_run_name(2, "minilm-probe") == "Run 2 · MiniLM · linear probe"
    assert default_run_name(1, "pretrained-lora", backbone="C:\\m\\bert") == "Run 1 · bert · LoRA"
    assert model_label("mlp_small") == "small MLP" and model_label("") == ""
    assert [format_minutes(s) for s in (1, 44, 600, 7200)] == [
        "1 second", "40 seconds", "10 minutes", "2.0 hours"]


def test_photos_get_efficientnet_small_images_and_tables_do_not():
    model, schedule, why = propose_backbone(50, PHOTOS)
    assert (model.backbone, model.train_mode) == ("efficientnet_lite0", "finetune")
    assert schedule == {"lr": 1e-3, "batch_size": 16, "epochs": 10} and "ImageNet" in why
    assert propose_backbone(1000, InputSpec((1, 8, 8), kind="image")) is None
    assert propose_backbone(1000, InputSpec((1, 28, 28), kind="image")) is None
    assert propose_backbone(100, InputSpec((4,))) is None


def test_text_gets_minilm_only_when_its_estimate_is_short_enough():
    model, _, why = propose_backbone(200, TEXT, text_seconds=240)
    assert model.backbone == "minilm" and "4 minutes" in why
    assert propose_backbone(200, TEXT, text_seconds=TEXT_BACKBONE_SECONDS + 1) is None
    assert propose_backbone(200, TEXT) is None  # no estimate: nothing slow is proposed


def test_each_way_of_training_gets_its_settings():
    assert backbone_schedule("probe", 100) == {"lr": 3e-3, "batch_size": 32, "epochs": 30}
    assert backbone_schedule("finetune", 10_000) == {"lr": 1e-3, "batch_size": 32, "epochs": 5}
    assert backbone_schedule("lora", 100)["lr"] == 2e-3


def test_propose_start_keeps_the_scratch_network_and_times_minilm(monkeypatch):
    project = Project()
    project.model.preset, project.model.hidden = "text", [64]
    monkeypatch.setattr(estimate, "machine_flops", lambda device="auto": 1e9)
    slow = backbone_seconds(project, TEXT, 200, "minilm", "finetune")
    assert slow > TEXT_BACKBONE_SECONDS
    assert "fast bag-of-embeddings" in propose_start(project, TEXT, 200)
    assert project.model.backbone == ""
    monkeypatch.setattr(estimate, "machine_flops", lambda device="auto": 1e9 * slow / 60)
    assert backbone_seconds(project, TEXT, 200, "minilm", "finetune") == pytest.approx(60)
    why = propose_start(project, TEXT, 200)
    assert "MiniLM" in why and "about 60 seconds" in why
    assert project.model.backbone == "minilm" and project.model.preset == "text"
    assert project.model.hidden == [64]  # scratch is one choice away, as suggested
    assert (project.training.lr, project.training.batch_size) == (1e-3, 16)


def test_the_rough_time_counts_frozen_epochs_and_a_probe_once():
    probe = estimate.rough_seconds(10**9, 100, 20, 10, "probe", flops=1e11)
    tune = estimate.rough_seconds(10**9, 100, 20, 10, "finetune", flops=1e11, head_epochs=1)
    full = estimate.rough_seconds(10**9, 100, 20, 10, "finetune", flops=1e11)
    assert probe == pytest.approx(2 * 1e9 / (1e11 * 0.5) * 120)
    assert probe < tune < full


def test_the_backbone_input_and_the_memory_of_each_way():
    minilm = resolve("minilm")
    text_in = backbone_input(minilm, TEXT)
    assert text_in.shape == (128,) and text_in.vocab_size == 30522
    assert backbone_input(resolve("efficientnet_lite0"), PHOTOS).shape == (3, 224, 224)
    assert backbone_input(minilm, PHOTOS) == PHOTOS  # the wrong kind: the page says why
    memory, learning = {}, {}
    for mode in ("probe", "lora", "finetune"):
        config = ModelConfig(backbone="minilm", train_mode=mode)
        spec = build_spec(config, text_in, 2, "classification")
        summary = summarize(spec)
        memory[mode] = training_memory(spec, config, summary, 16)
        learning[mode] = trainable_params(spec, config, summary.total_params)
    assert learning["probe"] == 384 * 2 + 2
    assert learning["probe"] < learning["lora"] < learning["finetune"] == minilm.params + 770
    assert memory["probe"] < memory["lora"] < memory["finetune"]
    # Fine-tuning keeps the backbone's activations: far more than its weights' four copies.
    assert memory["finetune"] > 4 * 4 * minilm.params + 16 * 10**6 * 4


def _photos(root, size=32, n=8):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
                root / c / f"{i}.png")
    return root


def test_a_probe_estimate_times_the_feature_pass_and_the_head(tmp_path, tiny_vit):
    folder = _photos(tmp_path / "photos")
    project = Project()
    project.data.source = str(folder)
    project.model.backbone, project.model.train_mode = str(tiny_vit), "probe"
    project.training.epochs, project.training.batch_size = 3, 4
    result = estimate_project(project, load_dataset(str(folder)))
    assert result.features > 0 and result.epochs == 3
    assert result.seconds_total == pytest.approx(sum(result.parts().values()))
    assert result.seconds_per_epoch == pytest.approx(
        (result.seconds_total - result.start_up - result.features) / 3)
    project.model.train_mode = "lora"
    lora = estimate_project(project, load_dataset(str(folder)))
    assert lora.features == 0 and lora.steps_per_epoch >= 1
