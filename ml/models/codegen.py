"""The PyTorch source of a model spec ("Show code"): a plain ``nn.Module`` whose state dict is
the app's, so the weights of a run load into it and give identical outputs."""

from __future__ import annotations

import inspect

from . import layers as _layers
from . import spec as _spec
from . import tabular as _tabular
from .layers import layer_params
from .spec import ModelSpec, check_layers

#: Helper modules a layer type needs, defined in the generated file (same code as the app's).
_HELPERS = {"embed_columns": "EmbedColumns", "embedding_bag": "EmbeddingBag",
            "embedding": "TokenEmbedding", "lstm": "Recurrent", "gru": "Recurrent",
            "sequence_pool": "SequencePool", "residual_block": "ResidualBlock",
            "numeric_embed": "NumericEmbedding", "ensemble_mlp": "EnsembleMLP"}
_ACTIVATIONS = {"relu": "nn.ReLU()", "gelu": "nn.GELU()", "silu": "nn.SiLU()",
                "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()"}


def _expr(kind: str, shape: tuple, p: dict) -> str:
    """The constructor call that builds layer *kind* for input *shape* (as ``layers.py``)."""
    if kind in _ACTIVATIONS:
        return _ACTIVATIONS[kind]
    if kind == "leaky_relu":
        return f"nn.LeakyReLU({float(p['negative_slope'])!r})"
    if kind == "linear":
        return f"nn.Linear({shape[0]}, {int(p['out_features'])}, bias={bool(p['bias'])})"
    if kind in ("conv2d", "conv1d"):
        cls = "nn.Conv2d" if kind == "conv2d" else "nn.Conv1d"
        return (f"{cls}({shape[0]}, {int(p['out_channels'])}, {int(p['kernel_size'])}, "
                f"stride={int(p['stride'])}, padding={int(p['padding'])}, "
                f"bias={bool(p['bias'])})")
    if kind in ("maxpool2d", "avgpool2d", "maxpool1d", "avgpool1d"):
        cls = {"maxpool2d": "nn.MaxPool2d", "avgpool2d": "nn.AvgPool2d",
               "maxpool1d": "nn.MaxPool1d", "avgpool1d": "nn.AvgPool1d"}[kind]
        return f"{cls}({int(p['kernel_size'])}, stride={p.get('stride')!r})"
    if kind == "adaptive_avgpool2d":
        return f"nn.AdaptiveAvgPool2d({int(p['output_size'])})"
    if kind == "adaptive_avgpool1d":
        return f"nn.AdaptiveAvgPool1d({int(p['output_size'])})"
    if kind == "batchnorm":
        return f"nn.BatchNorm{'1' if len(shape) == 1 else '2'}d({shape[0]})"
    if kind == "layernorm":
        return f"nn.LayerNorm({shape[-1]})"
    if kind == "dropout":
        return f"nn.Dropout({float(p['p'])!r})"
    if kind == "flatten":
        return "nn.Flatten()"
    if kind == "embed_columns":
        columns = [[int(a), int(b), int(c)] for a, b, c in p["columns"]]
        return f"EmbedColumns({shape[0]}, {columns!r})"
    if kind == "embedding_bag":
        return (f"EmbeddingBag({int(p['vocab_size'])}, {int(p['dim'])}, "
                f"{int(p.get('buckets', 0))})")
    if kind == "embedding":
        return (f"TokenEmbedding({int(p['vocab_size'])}, {int(p['dim'])}, {shape[0]}, "
                f"positional={bool(p['positional'])})")
    if kind in ("lstm", "gru"):
        return (f"Recurrent({kind!r}, {shape[1]}, {int(p['hidden_size'])}, "
                f"{int(p['num_layers'])}, bidirectional={bool(p['bidirectional'])}, "
                f"return_sequence={bool(p['return_sequence'])})")
    if kind == "transformer_encoder":
        return (f"nn.TransformerEncoderLayer({shape[1]}, {int(p['nhead'])}, "
                f"{int(p['dim_feedforward'])}, {float(p['dropout'])!r}, batch_first=True)")
    if kind == "sequence_pool":
        return f"SequencePool({str(p['mode'])!r})"
    if kind == "residual_block":
        return (f"ResidualBlock({tuple(shape)!r}, {int(p['out_channels'])}, "
                f"{int(p['stride'])})")
    if kind == "numeric_embed":
        features = int(p.get("features") or shape[0])
        return (f"NumericEmbedding({shape[0]}, {features}, {int(p['bins'])}, "
                f"{int(p['dim'])})")
    if kind == "ensemble_mlp":
        return (f"EnsembleMLP({shape[0]}, {int(p['k'])}, {int(p['blocks'])}, "
                f"{int(p['width'])}, {float(p['dropout'])!r}, {int(p['out_features'])}, "
                f"{str(p.get('merge', 'mean'))!r})")
    raise ValueError(f"no code for layer type {kind!r}")


def _helper_source(name: str) -> str:
    """The source of a helper class of ``layers.py`` / ``spec.py``, dedented, without the
    app's imports."""
    obj = getattr(_layers, name, None) or getattr(_tabular, name, None) or getattr(_spec, name)
    return inspect.getsource(obj)


def model_source(spec: ModelSpec, class_name: str = "Net") -> str:
    """Self-contained PyTorch source defining *class_name*, equivalent to
    :class:`~ml.models.spec.TrainDeskNet` for *spec*: same state-dict keys, same outputs.

    Raises
    ------
    ModelSpecError
        If *spec* has a layer that cannot take its input.
    """
    _spec.summarize(spec)
    checks = check_layers(spec.input_shape, spec.layers, spec.input_dtype)
    helpers = []
    for layer in spec.layers:
        name = _HELPERS.get(layer["type"])
        if name and name not in helpers:
            helpers.append(name)
    # The table layers' code needs math, numpy and a constant; other models' files stay lean.
    tabular = any(name in ("NumericEmbedding", "EnsembleMLP") for name in helpers)
    int_input = spec.input_dtype == "int64"
    if not int_input:
        helpers.insert(0, "Standardize")
    shape_text = " x ".join(map(str, spec.input_shape))
    lines = [
        f'"""{spec.name} network for {spec.task}, generated by TrainDesk.',
        "",
        f"Input: {shape_text} ({'token ids, int64' if int_input else 'float32'}) per sample.",
        "Load a run's weights with ``model.load_state_dict(safetensors.torch.load_file(...))``.",
        '"""',
        "",
        *(["import math"] if tabular else []),
        "from typing import Sequence",
        "",
        *(["import numpy as np"] if tabular else []),
        "import torch",
        "from torch import nn",
        "",
        "Shape = tuple",
        *([f"MIN_BIN_WIDTH = {_tabular.MIN_BIN_WIDTH!r}"] if tabular else []),
        "",
    ]
    for name in helpers:
        source = _helper_source(name)
        if name == "Standardize":  # the app's version reports errors with its own exception
            source = source.replace("raise ModelSpecError(", "raise ValueError(")
        lines += ["", source.rstrip(), ""]
    normalize = ("nn.Identity()  # token ids are looked up, not scaled" if int_input else
                 f"Standardize({list(spec.input_shape)!r})  # training statistics, loaded with "
                 f"the weights")
    outputs = ("class scores (logits)" if spec.task == "classification" else
               "the standardised target")
    lines += ["", f"class {class_name}(nn.Module):",
              f'    """{len(spec.layers)} layers; outputs {outputs}."""',
              "", "    def __init__(self):", "        super().__init__()",
              f"        self.normalize = {normalize}", "        self.body = nn.Sequential("]
    for i, (layer, check) in enumerate(zip(spec.layers, checks)):
        expr = _expr(layer["type"], tuple(check.input_shape), layer_params(layer))
        out = " x ".join(map(str, check.output_shape))
        lines.append(f"            {expr},  # {i}: -> {out}")
    lines += ["        )", "",
              "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
              "        return self.body(self.normalize(x))", ""]
    return "\n".join(lines)
