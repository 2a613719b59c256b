"""The layer vocabulary of a model spec: shape checking, parameter counts, and building.

Each layer type knows, for an input shape (without the batch axis), its output shape, its
parameter count and its multiply-adds, and raises :class:`~ml.errors.ModelSpecError` with a
plain reason when it cannot take that input - so the GUI can mark a bad layer before training
instead of failing with a stack trace at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..errors import ModelSpecError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerType:
    """One kind of layer: its parameters with defaults, and how it maps shapes."""

    name: str
    title: str
    defaults: dict[str, Any]
    infer: Callable[[Shape, dict], tuple[Shape, int, int]]  # -> out shape, params, macs
    build: Callable[[Shape, dict], nn.Module]


def _shape_str(shape: Shape) -> str:
    return " x ".join(str(s) for s in shape)


def _need_rank(shape: Shape, ranks: tuple[int, ...], what: str) -> None:
    if len(shape) not in ranks:
        wants = {1: "a flat feature vector", 3: "an image (channels x height x width)"}
        raise ModelSpecError(f"{what} needs {' or '.join(wants[r] for r in ranks)}, but gets "
                             f"{_shape_str(shape)}.")


def _linear(shape: Shape, p: dict):
    _need_rank(shape, (1,), "Linear")
    n_in, n_out = shape[0], int(p["out_features"])
    if n_out < 1:
        raise ModelSpecError("Linear needs at least 1 output feature.")
    params = n_in * n_out + (n_out if p["bias"] else 0)
    return (n_out,), params, n_in * n_out


def _conv_out(size: int, k: int, s: int, pad: int) -> int:
    return (size + 2 * pad - k) // s + 1


def _conv2d(shape: Shape, p: dict):
    _need_rank(shape, (3,), "Conv2d")
    c, h, w = shape
    k, s, pad, n_out = int(p["kernel_size"]), int(p["stride"]), int(p["padding"]), int(
        p["out_channels"])
    if k < 1 or s < 1 or pad < 0 or n_out < 1:
        raise ModelSpecError("Conv2d needs kernel size, stride and channels of at least 1.")
    if k > h + 2 * pad or k > w + 2 * pad:
        raise ModelSpecError(f"Conv2d's kernel ({k}x{k}) is larger than its input ({h}x{w}). "
                             f"Use a smaller kernel, padding, or fewer pooling layers before it.")
    oh, ow = _conv_out(h, k, s, pad), _conv_out(w, k, s, pad)
    params = n_out * c * k * k + (n_out if p["bias"] else 0)
    return (n_out, oh, ow), params, n_out * oh * ow * c * k * k


def _pool2d(shape: Shape, p: dict):
    _need_rank(shape, (3,), "Pooling")
    c, h, w = shape
    k = int(p["kernel_size"])
    s = int(p.get("stride") or k)
    if k > h or k > w:
        raise ModelSpecError(f"Pooling window ({k}x{k}) is larger than its input ({h}x{w}). "
                             f"Remove a pooling layer or use a bigger image.")
    oh, ow = _conv_out(h, k, s, 0), _conv_out(w, k, s, 0)
    return (c, oh, ow), 0, 0


def _adaptive_pool(shape: Shape, p: dict):
    _need_rank(shape, (3,), "Adaptive average pooling")
    size = int(p["output_size"])
    return (shape[0], size, size), 0, 0


def _batchnorm(shape: Shape, p: dict):
    _need_rank(shape, (1, 3), "Batch norm")
    return shape, 2 * shape[0], 0


def _same(shape: Shape, p: dict):
    return shape, 0, 0


def _flatten(shape: Shape, p: dict):
    return (math.prod(shape),), 0, 0


def _embed_columns(shape: Shape, p: dict):
    _need_rank(shape, (1,), "Column embeddings")
    columns = [(int(pos), int(card), int(dim)) for pos, card, dim in p["columns"]]
    if not columns:
        raise ModelSpecError("Column embeddings need at least one embedded column.")
    for pos, card, dim in columns:
        if not 0 <= pos < shape[0] or card < 2 or dim < 1:
            raise ModelSpecError(f"An embedded column (position {pos}) does not fit an input of "
                                 f"{shape[0]} features.")
    width = shape[0] - len(columns) + sum(dim for _, _, dim in columns)
    return (width,), sum(card * dim for _, card, dim in columns), 0


def _embedding_bag(shape: Shape, p: dict):
    _need_rank(shape, (1,), "Word embeddings")
    vocab, dim = int(p["vocab_size"]), int(p["dim"])
    if vocab < 2 or dim < 1:
        raise ModelSpecError("Word embeddings need a vocabulary of at least 2 and a width of at "
                             "least 1.")
    return (dim,), vocab * dim, shape[0] * dim


class EmbedColumns(nn.Module):
    """Replace the category numbers at some input positions by learned embeddings.

    Category number 0 means unknown or missing; it has its own vector. The other inputs pass
    through unchanged, and the embeddings are appended after them.
    """

    def __init__(self, n_inputs: int, columns):
        super().__init__()
        positions = [int(pos) for pos, _, _ in columns]
        keep = [i for i in range(n_inputs) if i not in set(positions)]
        self.register_buffer("codes_at", torch.tensor(positions, dtype=torch.long),
                             persistent=False)
        self.register_buffer("keep_at", torch.tensor(keep, dtype=torch.long), persistent=False)
        self.tables = nn.ModuleList(nn.Embedding(int(card), int(dim)) for _, card, dim in columns)
        self.max_code = [int(card) - 1 for _, card, _ in columns]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = x.index_select(1, self.codes_at).round().long()
        parts = [x.index_select(1, self.keep_at)]
        for j, table in enumerate(self.tables):
            # Out-of-range numbers (bad input to an exported model) count as unknown.
            code = codes[:, j]
            code = torch.where((code < 0) | (code > self.max_code[j]), 0, code)
            parts.append(table(code).to(x.dtype))
        return torch.cat(parts, dim=1)


class EmbeddingBag(nn.Module):
    """Mean of the word vectors of a padded sequence of token ids (id 0 is padding)."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.vocab_size = vocab_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long().clamp(0, self.vocab_size - 1)
        mask = (ids != 0).unsqueeze(-1).to(self.embedding.weight.dtype)
        total = (self.embedding(ids) * mask).sum(dim=1)
        return total / mask.sum(dim=1).clamp(min=1.0)


LAYER_TYPES: dict[str, LayerType] = {}


def _register(name: str, title: str, defaults: dict, infer, build) -> None:
    LAYER_TYPES[name] = LayerType(name, title, defaults, infer, build)


_register("linear", "Linear", {"out_features": 64, "bias": True}, _linear,
          lambda s, p: nn.Linear(s[0], int(p["out_features"]), bias=bool(p["bias"])))
_register("conv2d", "Conv2d",
          {"out_channels": 32, "kernel_size": 3, "stride": 1, "padding": 1, "bias": True},
          _conv2d,
          lambda s, p: nn.Conv2d(s[0], int(p["out_channels"]), int(p["kernel_size"]),
                                 stride=int(p["stride"]), padding=int(p["padding"]),
                                 bias=bool(p["bias"])))
_register("maxpool2d", "MaxPool2d", {"kernel_size": 2, "stride": None}, _pool2d,
          lambda s, p: nn.MaxPool2d(int(p["kernel_size"]), stride=p.get("stride")))
_register("avgpool2d", "AvgPool2d", {"kernel_size": 2, "stride": None}, _pool2d,
          lambda s, p: nn.AvgPool2d(int(p["kernel_size"]), stride=p.get("stride")))
_register("adaptive_avgpool2d", "AdaptiveAvgPool2d", {"output_size": 1}, _adaptive_pool,
          lambda s, p: nn.AdaptiveAvgPool2d(int(p["output_size"])))
_register("batchnorm", "BatchNorm", {}, _batchnorm,
          lambda s, p: nn.BatchNorm1d(s[0]) if len(s) == 1 else nn.BatchNorm2d(s[0]))
_register("embed_columns", "Column embeddings", {"columns": []}, _embed_columns,
          lambda s, p: EmbedColumns(s[0], p["columns"]))
_register("embedding_bag", "Word embeddings (mean)", {"vocab_size": 2, "dim": 64},
          _embedding_bag, lambda s, p: EmbeddingBag(int(p["vocab_size"]), int(p["dim"])))
_register("dropout", "Dropout", {"p": 0.1}, _same, lambda s, p: nn.Dropout(float(p["p"])))
_register("flatten", "Flatten", {}, _flatten, lambda s, p: nn.Flatten())
_register("relu", "ReLU", {}, _same, lambda s, p: nn.ReLU())
_register("gelu", "GELU", {}, _same, lambda s, p: nn.GELU())
_register("silu", "SiLU", {}, _same, lambda s, p: nn.SiLU())
_register("tanh", "Tanh", {}, _same, lambda s, p: nn.Tanh())
_register("sigmoid", "Sigmoid", {}, _same, lambda s, p: nn.Sigmoid())
_register("leaky_relu", "LeakyReLU", {"negative_slope": 0.01}, _same,
          lambda s, p: nn.LeakyReLU(float(p["negative_slope"])))


def layer_params(layer: dict) -> dict:
    """Return the layer's parameters with defaults filled in (without ``type``)."""
    kind = LAYER_TYPES[layer["type"]]
    params = dict(kind.defaults)
    params.update({k: v for k, v in layer.items() if k != "type"})
    return params
