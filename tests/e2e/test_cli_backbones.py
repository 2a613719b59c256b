"""`train --backbone`: a pretrained run from the command line, and one readable line for what
cannot be used."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli, run_main, write_image_folder, write_reviews


def test_train_with_a_backbone_folder_by_linear_probe(tmp_path, tiny_bert):
    data = write_reviews(tmp_path / "reviews.csv")
    out = tmp_path / "run"
    result = run_main("train", "--data", str(data), "--target", "sentiment", "--backbone",
                      str(tiny_bert), "--mode", "probe", "--epochs", "3", "--out", str(out),
                      "--quiet")
    assert result.returncode == 0, result.stderr
    assert "linear probe" in result.stdout and "Loading weights" not in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["backbone"] == str(tiny_bert)
    assert config["model"]["train_mode"] == "probe"
    spec = json.loads((out / "model.json").read_text())
    assert spec["layers"][0]["type"] == "pretrained"


@pytest.mark.parametrize("backbone, data, expected", [
    ("{missing}", "images", "was not found"),
    ("minilm", "images", "reads text, but this data is images"),
    ("efficientnet_lite0", "sample:iris", "reads images, but this data is a table"),
])
def test_a_backbone_that_cannot_be_used_gets_one_line(tmp_path, backbone, data, expected):
    if data == "images":
        data = str(write_image_folder(tmp_path / "imgs", per_class=6, side=16))
    backbone = backbone.format(missing=tmp_path / "no-such-model")
    result = run_cli("train", "--data", data, "--backbone", backbone, "--epochs", "1",
                     "--out", str(tmp_path / "run"))
    assert result.returncode != 0
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_lora_on_a_convolutional_backbone_is_refused(tmp_path):
    data = write_image_folder(tmp_path / "imgs", per_class=6, side=16)
    result = run_cli("train", "--data", str(data), "--backbone", "efficientnet_lite0", "--mode",
                     "lora", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet")
    assert result.returncode != 0 and "LoRA adapts attention layers" in result.stderr


def test_a_backbone_trains_on_its_own_schedule_unless_told_otherwise(tmp_path, tiny_bert):
    from ml.models.presets import backbone_schedule

    data = write_reviews(tmp_path / "reviews.csv")
    for name, extra in (("own", []), ("told", ["--epochs", "2", "--lr", "0.01"])):
        result = run_cli("train", "--data", str(data), "--target", "sentiment", "--backbone",
                         str(tiny_bert), "--mode", "probe", "--out", str(tmp_path / name),
                         "--quiet", *extra)
        assert result.returncode == 0, result.stderr
    own = json.loads((tmp_path / "own" / "config.json").read_text())["training"]
    told = json.loads((tmp_path / "told" / "config.json").read_text())["training"]
    expected = backbone_schedule("probe", 84)  # not the schedule of a network from scratch
    assert {k: own[k] for k in expected} == expected
    assert (told["epochs"], told["lr"], told["batch_size"]) == (2, 0.01, expected["batch_size"])
