"""Presets for every kind of data, sized to the input; custom stacks; Show code."""

import importlib.util

import pytest
import torch

from ml.errors import ModelSpecError
from ml.models.codegen import model_source
from ml.models.presets import PRESET_INFO, build_spec, preset_fits, preset_layers, propose_preset
from ml.models.spec import InputSpec, build_model, summarize
from ml.runs.project import PRESETS, ModelConfig

INPUTS = {
    "tabular": [InputSpec((7,)), InputSpec((12,), embeddings=((3, 40), (5, 100)))],
    "image": [InputSpec((1, 8, 8), kind="image"), InputSpec((1, 28, 28), kind="image"),
              InputSpec((3, 32, 32), kind="image"), InputSpec((3, 64, 64), kind="image")],
    "text": [InputSpec((30,), dtype="int64", kind="text", vocab_size=200)],
}


def _input(spec: InputSpec, n: int = 3) -> torch.Tensor:
    if spec.dtype == "int64":
        return torch.randint(0, spec.vocab_size, (n, *spec.shape))
    x = torch.randn(n, *spec.shape)
    for pos, card in spec.embeddings:
        x[:, pos] = torch.randint(0, card, (n,)).float()
    return x


def test_every_project_preset_is_described():
    assert set(PRESET_INFO) == set(PRESETS) - {"auto"}


@pytest.mark.parametrize("name", list(PRESET_INFO))
def test_each_preset_builds_on_every_input_of_its_kind(name):
    kind = PRESET_INFO[name].kind
    for spec_in in INPUTS[kind]:
        spec = build_spec(ModelConfig(preset=name), spec_in, 4, "classification")
        net = build_model(spec).eval()
        out = net(_input(spec_in))
        assert out.shape == (3, 4)
        assert summarize(spec).total_params == sum(p.numel() for p in net.body.parameters())


@pytest.mark.parametrize("name, spec_in, words", [
    ("cnn", InputSpec((30,)), "needs image data"),
    ("resnet", InputSpec((20,), dtype="int64", kind="text", vocab_size=9), "needs image data"),
    ("rnn", InputSpec((1, 8, 8), kind="image"), "is for text"),
    ("transformer", InputSpec((5,)), "is for text"),
    ("mlp", InputSpec((20,), dtype="int64", kind="text", vocab_size=9), "is for a table"),
])
def test_a_preset_of_the_wrong_kind_says_what_to_choose(name, spec_in, words):
    with pytest.raises(ModelSpecError, match=words):
        build_spec(ModelConfig(preset=name), spec_in, 3, "classification")


def test_dense_presets_also_take_images_and_image_presets_adapt_to_tiny_ones():
    assert preset_fits("mlp", "image") and not preset_fits("cnn", "tabular")
    tiny = InputSpec((1, 4, 4), kind="image")
    for name in ("cnn", "vgg", "resnet", "mlp", "linear"):
        spec = build_spec(ModelConfig(preset=name), tiny, 2, "classification")
        assert build_model(spec)(torch.randn(2, 1, 4, 4)).shape == (2, 2)


def test_custom_layers_replace_the_preset_and_must_give_the_outputs():
    layers = [{"type": "linear", "out_features": 9}, {"type": "gelu"},
              {"type": "linear", "out_features": 3}]
    spec = build_spec(ModelConfig(layers=layers), InputSpec((5,)), 3, "classification")
    assert spec.name == "custom" and spec.layers == layers
    with pytest.raises(ModelSpecError, match="needs 2"):
        build_spec(ModelConfig(layers=layers), InputSpec((5,)), 2, "classification")
    copy = preset_layers("vgg", ModelConfig(), InputSpec((3, 32, 32), kind="image"), 10)
    assert copy[-1] == {"type": "linear", "out_features": 10}


def test_the_proposed_preset_follows_the_data():
    assert propose_preset(InputSpec((10,)), 300, 2) == "tabm"
    assert propose_preset(InputSpec((1, 8, 8), kind="image"), 1500, 10) == "cnn"
    assert propose_preset(InputSpec((30,), dtype="int64", kind="text", vocab_size=99),
                          2000, 2) == "text"


def _load(source: str, tmp_path, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"generated_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CUSTOM = {  # every layer type at least once, with the input it takes
    "dense": (InputSpec((6,), embeddings=((2, 30),)), [
        {"type": "embed_columns", "columns": [[2, 30, 4]]},
        {"type": "residual_block", "out_channels": 12}, {"type": "layernorm"},
        {"type": "linear", "out_features": 16}, {"type": "batchnorm"}, {"type": "tanh"},
        {"type": "dropout", "p": 0.2}, {"type": "sigmoid"}, {"type": "leaky_relu"},
        {"type": "linear", "out_features": 3}]),
    "conv": (InputSpec((3, 16, 16), kind="image"), [
        {"type": "conv2d", "out_channels": 8}, {"type": "batchnorm"}, {"type": "silu"},
        {"type": "residual_block", "out_channels": 12, "stride": 2},
        {"type": "maxpool2d", "kernel_size": 2}, {"type": "avgpool2d", "kernel_size": 1},
        {"type": "adaptive_avgpool2d", "output_size": 2}, {"type": "flatten"},
        {"type": "gelu"}, {"type": "linear", "out_features": 3}]),
    "sequence": (InputSpec((24,), dtype="int64", kind="text", vocab_size=80), [
        {"type": "embedding", "vocab_size": 80, "dim": 16, "positional": True},
        {"type": "transformer_encoder", "nhead": 4, "dim_feedforward": 32},
        {"type": "gru", "hidden_size": 8, "return_sequence": True},
        {"type": "lstm", "hidden_size": 16, "return_sequence": True, "bidirectional": False},
        {"type": "conv1d", "out_channels": 5, "kernel_size": 3},
        {"type": "maxpool1d", "kernel_size": 2}, {"type": "avgpool1d", "kernel_size": 1},
        {"type": "adaptive_avgpool1d", "output_size": 4}, {"type": "sequence_pool"},
        {"type": "relu"}, {"type": "linear", "out_features": 3}]),
    "bag": (InputSpec((24,), dtype="int64", kind="text", vocab_size=80), [
        {"type": "embedding_bag", "vocab_size": 80, "dim": 8},
        {"type": "linear", "out_features": 3}]),
}


@pytest.mark.parametrize("name", list(PRESET_INFO) + [f"custom-{k}" for k in CUSTOM])
def test_show_code_builds_the_same_network(name, tmp_path):
    if name.startswith("custom-"):
        spec_in, layers = CUSTOM[name[7:]]
        config = ModelConfig(layers=layers)
    else:
        spec_in, config = INPUTS[PRESET_INFO[name].kind][-1], ModelConfig(preset=name)
    spec = build_spec(config, spec_in, 3, "classification")
    torch.manual_seed(0)
    net = build_model(spec, *(([0.5] * spec_in.shape[0], [2.0] * spec_in.shape[0])
                              if spec_in.dtype == "float32" else ())).eval()
    source = model_source(spec)
    assert "class Net(nn.Module)" in source and "import torch" in source
    module = _load(source, tmp_path, name.replace("-", "_"))
    generated = module.Net()
    generated.load_state_dict(net.state_dict(), strict=True)
    generated.eval()
    x = _input(spec_in, 5)
    with torch.no_grad():
        assert torch.equal(generated(x), net(x))
