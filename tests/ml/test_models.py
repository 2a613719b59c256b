import pytest
import torch

from ml.errors import ModelSpecError
from ml.models import build_model, build_spec, count_parameters, summarize
from ml.models.presets import suggest_settings
from ml.models.spec import InferenceModel, ModelSpec
from ml.runs.project import ModelConfig


@pytest.mark.parametrize("config, shape, n_out", [
    (ModelConfig(preset="mlp", hidden=[64, 32]), [30], 2),
    (ModelConfig(preset="mlp", hidden=[16]), [1, 8, 8], 10),
    (ModelConfig(preset="cnn", conv_channels=[8, 16], hidden=[32]), [1, 8, 8], 10),
    (ModelConfig(preset="cnn", conv_channels=[8, 16, 16], hidden=[32]), [3, 32, 32], 5),
    (ModelConfig(preset="auto"), [1, 28, 28], 10),
])
def test_spec_builds_a_module_with_the_counted_parameters(config, shape, n_out):
    spec = build_spec(config, shape, n_out, "classification")
    summary = summarize(spec)
    net = build_model(spec)
    assert summary.total_params == count_parameters(net)
    assert summary.layers[-1].output_shape == (n_out,)
    out = net(torch.randn(4, *shape))
    assert out.shape == (4, n_out)


def test_auto_preset_follows_the_input():
    assert build_spec(ModelConfig(), [1, 8, 8], 10, "classification").name == "cnn"
    assert build_spec(ModelConfig(), [12], 1, "regression").name == "tabm"


def test_cnn_on_a_table_is_refused():
    with pytest.raises(ModelSpecError, match="needs image data"):
        build_spec(ModelConfig(preset="cnn"), [30], 2, "classification")


def test_shape_errors_name_the_layer_and_the_reason():
    spec = ModelSpec([1, 8, 8], [{"type": "conv2d", "kernel_size": 11, "padding": 0},
                                 {"type": "flatten"}], "classification")
    with pytest.raises(ModelSpecError, match=r"Layer 1 \(Conv2d\).*larger than its input"):
        summarize(spec)
    spec = ModelSpec([20], [{"type": "maxpool2d"}], "classification")
    with pytest.raises(ModelSpecError, match="needs an image"):
        summarize(spec)
    spec = ModelSpec([1, 8, 8], [{"type": "conv2d"}], "classification")
    with pytest.raises(ModelSpecError, match="flat output"):
        summarize(spec)
    with pytest.raises(ModelSpecError, match="unknown type"):
        summarize(ModelSpec([4], [{"type": "quantum"}], "classification"))


def test_spec_json_round_trip_gives_the_same_network():
    spec = build_spec(ModelConfig(preset="cnn", conv_channels=[4]), [1, 8, 8], 3,
                      "classification")
    again = ModelSpec.from_dict(spec.to_dict())
    a, b = build_model(spec), build_model(again)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(a(x), b(x))


def test_standardisation_lives_in_the_model_and_regression_output_in_units():
    spec = build_spec(ModelConfig(preset="mlp", hidden=[4]), [2], 1, "regression")
    net = build_model(spec, feature_mean=[10.0, -5.0], feature_std=[2.0, 4.0])
    assert torch.allclose(net.normalize(torch.tensor([[10.0, -5.0]])), torch.zeros(1, 2))
    assert "normalize.mean" in net.state_dict()
    model = InferenceModel(net, "regression", target_mean=100.0, target_std=10.0).eval()
    x = torch.randn(3, 2)
    assert torch.allclose(model(x), net(x) * 10 + 100)


def test_suggestions_fit_the_data_size():
    small, sched = suggest_settings(100, (4,))
    assert small.preset == "tabm" and sched["epochs"] >= 50
    assert small.ensemble == 4 and small.hidden == [64, 64] and small.dropout == 0.2
    # Tables under 20,000 rows: a generous budget that early stopping ends after the peak.
    assert sched["early_stopping"] and sched["patience"] == 16
    assert suggest_settings(5000, (4,))[1]["epochs"] == 2 * 38  # 3,000 steps of 64 rows, x2
    image, sched = suggest_settings(5000, (1, 28, 28))
    assert image.preset == "cnn" and "early_stopping" not in sched
    big, sched = suggest_settings(1_000_000, (20,))
    assert sched["batch_size"] >= 256 and sched["epochs"] <= 30
    assert "early_stopping" not in sched  # the 60-second budget of issue 21 holds for it
