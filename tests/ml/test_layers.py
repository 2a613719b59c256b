"""Every layer type: the shape and parameter arithmetic agree with PyTorch's own modules, and
a layer that cannot take its input says why before anything is built."""

import pytest
import torch

from ml.errors import ModelSpecError
from ml.models.layers import LAYER_TYPES, layer_params
from ml.models.spec import AFTER_ERROR, ModelSpec, check_layers, estimate_training_memory, summarize

# (layer, input shape, input dtype) - at least one case per layer type, several for some.
CASES = [
    ({"type": "linear", "out_features": 7}, (5,), "float32"),
    ({"type": "linear", "out_features": 3, "bias": False}, (11,), "float32"),
    ({"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1}, (3, 9, 7), "float32"),
    ({"type": "conv2d", "out_channels": 4, "kernel_size": 5, "stride": 2, "padding": 0,
      "bias": False}, (2, 12, 12), "float32"),
    ({"type": "conv1d", "out_channels": 8, "kernel_size": 3, "padding": 0}, (4, 20), "float32"),
    ({"type": "maxpool2d", "kernel_size": 2}, (3, 9, 8), "float32"),
    ({"type": "avgpool2d", "kernel_size": 3, "stride": 1}, (2, 7, 7), "float32"),
    ({"type": "maxpool1d", "kernel_size": 2}, (3, 11), "float32"),
    ({"type": "avgpool1d", "kernel_size": 3}, (3, 12), "float32"),
    ({"type": "adaptive_avgpool2d", "output_size": 2}, (5, 9, 9), "float32"),
    ({"type": "adaptive_avgpool1d", "output_size": 4}, (5, 13), "float32"),
    ({"type": "batchnorm"}, (6,), "float32"),
    ({"type": "batchnorm"}, (3, 5, 5), "float32"),
    ({"type": "layernorm"}, (10,), "float32"),
    ({"type": "layernorm"}, (7, 12), "float32"),
    ({"type": "dropout", "p": 0.3}, (4, 3, 3), "float32"),
    ({"type": "flatten"}, (2, 3, 4), "float32"),
    ({"type": "residual_block", "out_channels": 8, "stride": 2}, (4, 9, 9), "float32"),
    ({"type": "residual_block", "out_channels": 4, "stride": 1}, (4, 6, 6), "float32"),
    ({"type": "residual_block", "out_channels": 16}, (9,), "float32"),
    ({"type": "residual_block", "out_channels": 9}, (9,), "float32"),
    ({"type": "embed_columns", "columns": [[1, 5, 3], [3, 12, 4]]}, (6,), "float32"),
    ({"type": "embedding_bag", "vocab_size": 50, "dim": 8}, (12,), "int64"),
    ({"type": "embedding_bag", "vocab_size": 50, "dim": 8, "buckets": 64}, (12,), "int64"),
    ({"type": "numeric_embed", "features": 4, "bins": 5, "dim": 3}, (6,), "float32"),
    ({"type": "numeric_embed"}, (3,), "float32"),
    ({"type": "ensemble_mlp", "k": 4, "blocks": 2, "width": 8, "out_features": 3,
      "merge": "probs"}, (6,), "float32"),
    ({"type": "ensemble_mlp", "k": 3, "blocks": 1, "width": 5, "out_features": 1}, (4,),
     "float32"),
    ({"type": "embedding", "vocab_size": 50, "dim": 8}, (12,), "int64"),
    ({"type": "embedding", "vocab_size": 30, "dim": 6, "positional": True}, (9,), "int64"),
    ({"type": "lstm", "hidden_size": 5, "num_layers": 2, "bidirectional": True}, (7, 4),
     "float32"),
    ({"type": "lstm", "hidden_size": 6, "bidirectional": False, "return_sequence": True},
     (5, 3), "float32"),
    ({"type": "gru", "hidden_size": 4, "num_layers": 1}, (6, 3), "float32"),
    ({"type": "gru", "hidden_size": 3, "num_layers": 3, "return_sequence": True}, (4, 2),
     "float32"),
    ({"type": "transformer_encoder", "nhead": 2, "dim_feedforward": 16}, (5, 8), "float32"),
    ({"type": "sequence_pool", "mode": "mean"}, (5, 8), "float32"),
    ({"type": "sequence_pool", "mode": "max"}, (5, 8), "float32"),
] + [({"type": t}, (4, 5), "float32") for t in ("relu", "gelu", "silu", "tanh", "sigmoid",
                                                "leaky_relu")]


def test_every_layer_type_is_covered():
    covered = {layer["type"] for layer, _, _ in CASES} | {"pretrained"}  # the test below
    assert covered == set(LAYER_TYPES)


@pytest.mark.parametrize("which, shape", [("tiny_bert", (12,)), ("tiny_vit", (3, 32, 32)),
                                          ("efficientnet_lite0", (3, 64, 64))])
def test_a_pretrained_layer_reports_the_shape_and_parameters_it_builds(request, which, shape):
    from ml.models.backbones import layer_info, resolve

    key = which if which == "efficientnet_lite0" else str(request.getfixturevalue(which))
    layer = layer_info(resolve(key))
    kind = LAYER_TYPES["pretrained"]
    params = layer_params(layer)
    out_shape, n_params, macs = kind.infer(shape, params)
    module = kind.build(shape, params).eval()
    x = torch.randint(1, 20, (2, *shape)) if len(shape) == 1 else torch.randn(2, *shape)
    with torch.no_grad():
        y = module(x)
    assert tuple(y.shape[1:]) == tuple(out_shape)
    assert n_params == sum(p.numel() for p in module.parameters())
    assert macs > 0


@pytest.mark.parametrize("layer, shape, dtype", CASES,
                         ids=[f"{c[0]['type']}-{'x'.join(map(str, c[1]))}" for c in CASES])
def test_shape_and_parameters_match_pytorch(layer, shape, dtype):
    kind = LAYER_TYPES[layer["type"]]
    params = layer_params(layer)
    out_shape, n_params, macs = kind.infer(shape, params)
    module = kind.build(shape, params).eval()
    if dtype == "int64":
        x = torch.randint(0, 5, (2, *shape))
    else:
        x = torch.randn(2, *shape)
    with torch.no_grad():
        y = module(x)
    assert tuple(y.shape[1:]) == tuple(out_shape)
    assert n_params == sum(p.numel() for p in module.parameters())
    assert macs >= 0


@pytest.mark.parametrize("layers, shape, dtype, words", [
    ([{"type": "conv2d"}], (20,), "float32", "needs an image"),
    ([{"type": "maxpool2d", "kernel_size": 3}], (1, 2, 2), "float32", "larger than its input"),
    ([{"type": "conv2d", "kernel_size": 9, "padding": 0}], (1, 4, 4), "float32",
     "larger than its input"),
    ([{"type": "embedding", "vocab_size": 9}], (10,), "float32", "token ids"),
    ([{"type": "linear"}], (10,), "int64", "Embedding"),
    ([{"type": "embedding", "vocab_size": 9, "dim": 10},
      {"type": "transformer_encoder", "nhead": 4}], (6,), "int64", "must divide"),
    ([{"type": "lstm"}], (10,), "float32", "needs a sequence"),
    ([{"type": "quantum"}], (4,), "float32", "unknown type"),
    ([{"type": "linear", "out_features": "abc"}], (4,), "float32", "invalid"),
    ([{"type": "linear", "out_features": -2}], (4,), "float32", "at least 1"),
    ([{"type": "conv2d", "stride": 4, "kernel_size": 1, "padding": 0},
      {"type": "maxpool2d", "kernel_size": 2}], (1, 4, 4), "float32", "larger than"),
])
def test_a_bad_layer_says_why(layers, shape, dtype, words):
    checks = check_layers(shape, layers, dtype)
    bad = [c for c in checks if c.error]
    assert bad and words in bad[0].error, [c.error for c in checks]
    with pytest.raises(ModelSpecError, match=words):
        summarize(ModelSpec(list(shape), layers, "classification", input_dtype=dtype))


def test_checking_goes_on_past_a_bad_layer_and_checks_the_outputs():
    layers = [{"type": "linear", "out_features": 8}, {"type": "conv2d"}, {"type": "relu"},
              {"type": "linear", "out_features": 3}]
    checks = check_layers((4,), layers)
    assert [c.error is None for c in checks] == [True, False, False, False]
    assert checks[2].error == AFTER_ERROR and checks[2].output_shape is None
    assert checks[0].output_shape == (8,) and checks[0].params == 40
    checks = check_layers((4,), [{"type": "linear", "out_features": 5}], n_outputs=3)
    assert "needs 3" in checks[-1].error and checks[-1].output_shape == (5,)
    checks = check_layers((1, 8, 8), [{"type": "conv2d"}])
    assert "flat output" in checks[-1].error


def test_training_memory_grows_with_batch_and_optimizer_state():
    spec = ModelSpec([10], [{"type": "linear", "out_features": 100}, {"type": "relu"},
                            {"type": "linear", "out_features": 2}], "classification")
    summary = summarize(spec)
    assert summary.total_flops == 2 * summary.total_macs
    adam = estimate_training_memory(summary, 32, "adam")
    sgd = estimate_training_memory(summary, 32, "sgd")
    assert adam - sgd == summary.total_params * 4  # one more slot per weight
    assert estimate_training_memory(summary, 64, "adam") - adam == 2 * 202 * 32 * 4


def test_word_pairs_tell_word_order_apart_and_old_bags_have_none():
    from ml.models.layers import EmbeddingBag

    torch.manual_seed(0)
    pairs = EmbeddingBag(20, 4, buckets=32).eval()
    not_good, good_not = torch.tensor([[5, 7, 0, 0]]), torch.tensor([[7, 5, 0, 0]])
    assert not torch.allclose(pairs(not_good), pairs(good_not))
    # Padding and unknown words (1) make no pair: one word alone is its own vector.
    assert torch.allclose(pairs(torch.tensor([[5, 0, 0]])), pairs.embedding.weight[5:6])
    alone = torch.tensor([[5, 1, 0]])
    assert torch.allclose(pairs(alone), pairs.embedding.weight[[5, 1]].mean(0, keepdim=True))
    words = EmbeddingBag(20, 4).eval()  # a spec from before pairs: buckets defaults to 0
    assert torch.allclose(words(not_good), words(good_not))
    assert set(words.state_dict()) == {"embedding.weight"}
    assert layer_params({"type": "embedding_bag"})["buckets"] == 0
    with pytest.raises(ModelSpecError, match="Word-pair buckets"):
        LAYER_TYPES["embedding_bag"].infer((8,), layer_params(
            {"type": "embedding_bag", "vocab_size": 9, "buckets": -1}))
