"""A model that would read category codes as quantities (its Column embeddings layer deleted) is
refused with a sentence that says what to do, in the app and headless alike."""

import json

import numpy as np
import pandas as pd
import pytest

from ml.data.dataset import load_dataset, prepare
from ml.errors import ModelSpecError
from ml.models.presets import build_spec, preset_layers
from ml.models.spec import check_layers
from ml.runs.project import DataConfig, ModelConfig
from tests.conftest import run_cli

ADVICE = "add Column embeddings as the first layer"


def cities_csv(path):
    """A table whose ``city`` (40 categories) is embedded when encoding is auto."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"size": rng.normal(size=n).round(3),
                          "city": rng.choice([f"city{i}" for i in range(40)], n)})
    frame["label"] = np.where(frame["size"] > 0, "big", "small")
    frame.to_csv(path, index=False)
    return path


def model_input(path, **data):
    dataset = load_dataset(str(path))
    return prepare(dataset, DataConfig(source=str(path), target="label", **data)
                   ).preprocessor.model_input()


def test_deleting_the_column_embeddings_is_refused(tmp_path):
    spec_in = model_input(cities_csv(tmp_path / "c.csv"))
    assert spec_in.embeddings  # the premise: city arrives as category codes
    layers = preset_layers("mlp", ModelConfig(), spec_in, 2)
    assert layers[0]["type"] == "embed_columns"
    build_spec(ModelConfig(layers=layers), spec_in, 2, "classification")  # the preset is fine
    with pytest.raises(ModelSpecError) as error:
        build_spec(ModelConfig(layers=layers[1:]), spec_in, 2, "classification")
    message = str(error.value)
    assert message.startswith("Layer 1 (Linear): The data gives 1 categorical column as "
                              "category codes")
    assert ADVICE in message and "one-hot on the Data page" in message
    assert "\n" not in message
    checks = check_layers(spec_in.shape, layers[1:], n_outputs=2,
                          embeddings=spec_in.embeddings)
    assert ADVICE in checks[0].error  # the editor marks the same layer with the same words


def test_column_embeddings_must_come_first(tmp_path):
    spec_in = model_input(cities_csv(tmp_path / "c.csv"))
    layers = preset_layers("mlp", ModelConfig(), spec_in, 2)
    moved = [layers[1], layers[0], *layers[2:]]
    with pytest.raises(ModelSpecError, match="Layer 1 .*" + ADVICE):
        build_spec(ModelConfig(layers=moved), spec_in, 2, "classification")
    checks = check_layers(spec_in.shape, [{"type": "dropout"}, *layers], n_outputs=2,
                          embeddings=spec_in.embeddings)
    assert ADVICE in checks[0].error


def test_a_column_embeddings_layer_added_by_hand_takes_its_columns_from_the_data(tmp_path):
    spec_in = model_input(cities_csv(tmp_path / "c.csv"))
    layers = preset_layers("mlp", ModelConfig(), spec_in, 2)
    spec = build_spec(ModelConfig(layers=[{"type": "embed_columns"}, *layers[1:]]), spec_in, 2,
                      "classification")
    assert spec.layers[0]["columns"] == layers[0]["columns"]
    stale = [{"type": "embed_columns", "columns": [[0, 3, 5]]}, *layers[1:]]
    spec = build_spec(ModelConfig(layers=stale), spec_in, 2, "classification")
    (pos, card), = spec_in.embeddings
    assert spec.layers[0]["columns"] == [[pos, card, 5]]  # the data's codes, the chosen width


def test_one_hot_data_needs_no_embeddings_and_refuses_them(tmp_path):
    path = cities_csv(tmp_path / "c.csv")
    spec_in = model_input(path, encodings={"city": "onehot"})
    assert not spec_in.embeddings
    plain = preset_layers("mlp", ModelConfig(), spec_in, 2)
    build_spec(ModelConfig(layers=plain), spec_in, 2, "classification")
    with pytest.raises(ModelSpecError, match="no embedded categorical columns.*remove it"):
        build_spec(ModelConfig(layers=[{"type": "embed_columns", "columns": [[0, 3, 2]]},
                                       *plain]), spec_in, 2, "classification")


def test_headless_training_refuses_it_in_one_line(tmp_path):
    path = cities_csv(tmp_path / "c.csv")
    spec_file = tmp_path / "layers.json"
    spec_file.write_text(json.dumps([{"type": "linear", "out_features": 16}, {"type": "relu"},
                                     {"type": "linear", "out_features": 2}]))
    proc = run_cli("train", "--data", str(path), "--target", "label", "--epochs", "1",
                   "--model-spec", str(spec_file), "--out", str(tmp_path / "run"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "category codes" in proc.stderr and ADVICE in proc.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()
