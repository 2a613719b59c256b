"""The layer vocabulary of a model spec: shape checking, parameter counts, and building.

Each layer type knows, for an input shape (without the batch axis), its output shape, its
parameter count and its multiply-adds, and raises :class:`~ml.errors.ModelSpecError` with a
plain reason when it cannot take that input - so the GUI can mark a bad layer before training
instead of failing with a stack trace at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ModelSpecError
from . import tabular

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


#: The most rows word-pair vectors may hash into (a few million floats per 64 wide).
MAX_BUCKETS = 1 << 20


def _embedding_bag(shape: Shape, p: dict):
    _need_rank(shape, (1,), "Word embeddings")
    vocab, dim, buckets = int(p["vocab_size"]), int(p["dim"]), int(p["buckets"])
    if vocab < 2 or dim < 1:
        raise ModelSpecError("Word embeddings need a vocabulary of at least 2 and a width of at "
                             "least 1.")
    if not 0 <= buckets <= MAX_BUCKETS:
        raise ModelSpecError(f"Word-pair buckets must be from 0 (no pairs) to {MAX_BUCKETS:,} "
                             f"(got {buckets:,}).")
    return (dim,), (vocab + buckets) * dim, 2 * shape[0] * dim if buckets else shape[0] * dim


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
    """Mean of the word vectors of a padded sequence of token ids (id 0 is padding).

    With *buckets*, each pair of neighbouring words adds a vector too, its row found by hashing
    the two ids into *buckets* rows (fastText's bigrams, Joulin et al. 2016: "not good" is not
    "good"). The hash is integer arithmetic on the ids, so the model takes the same word ids as
    without pairs, and exports and the standalone package need nothing more.
    """

    #: Multiplier of the pair hash: a prime above any vocabulary, so (a, b) and (b, a) differ.
    PRIME = 1_000_003

    def __init__(self, vocab_size: int, dim: int, buckets: int = 0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.vocab_size = vocab_size
        self.buckets = buckets
        if buckets:
            self.pairs = nn.Embedding(buckets, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long().clamp(0, self.vocab_size - 1)
        dtype = self.embedding.weight.dtype
        mask = (ids != 0).unsqueeze(-1).to(dtype)
        total = (self.embedding(ids) * mask).sum(dim=1)
        count = mask.sum(dim=1)
        if self.buckets:
            first, second = ids[:, :-1], ids[:, 1:]
            # Padding (0) and unknown words (1) make no pair: an unknown word says nothing, and a
            # word occluded as unknown (token importance) then takes its pairs with it.
            pair_mask = ((first > 1) & (second > 1)).unsqueeze(-1).to(dtype)
            rows = torch.remainder(first * self.PRIME + second, self.buckets)
            total = total + (self.pairs(rows) * pair_mask).sum(dim=1)
            count = count + pair_mask.sum(dim=1)
        return total / count.clamp(min=1.0)


def _embedding(shape: Shape, p: dict):
    _need_rank(shape, (1,), "Embedding")
    vocab, dim = int(p["vocab_size"]), int(p["dim"])
    if vocab < 2 or dim < 1:
        raise ModelSpecError("Embedding needs a vocabulary of at least 2 and a width of at "
                             "least 1.")
    params = vocab * dim + (shape[0] * dim if p["positional"] else 0)
    return (shape[0], dim), params, 0


def _need_sequence(shape: Shape, what: str) -> None:
    if len(shape) != 2:
        raise ModelSpecError(f"{what} needs a sequence (length x features, e.g. after an "
                             f"Embedding), but gets {_shape_str(shape)}.")


def _rnn(gates: int):
    def infer(shape: Shape, p: dict):
        _need_sequence(shape, "A recurrent layer")
        length, n_in = shape
        hidden, layers = int(p["hidden_size"]), int(p["num_layers"])
        if hidden < 1 or layers < 1:
            raise ModelSpecError("A recurrent layer needs a hidden size and layer count of at "
                                 "least 1.")
        dirs = 2 if p["bidirectional"] else 1
        params, macs, width = 0, 0, n_in
        for _ in range(layers):
            # Per direction: input and hidden weights and two bias vectors for each gate.
            per = gates * hidden * (width + hidden) + 2 * gates * hidden
            params += dirs * per
            macs += dirs * length * gates * hidden * (width + hidden)
            width = hidden * dirs
        out = (length, hidden * dirs) if p["return_sequence"] else (hidden * dirs,)
        return out, params, macs
    return infer


def _transformer(shape: Shape, p: dict):
    _need_sequence(shape, "A Transformer encoder layer")
    length, d = shape
    heads, ff = int(p["nhead"]), int(p["dim_feedforward"])
    if heads < 1 or ff < 1:
        raise ModelSpecError("A Transformer layer needs at least 1 head and a feed-forward "
                             "width of at least 1.")
    if d % heads:
        raise ModelSpecError(f"The number of heads ({heads}) must divide the width of the "
                             f"input ({d}); choose e.g. {max(h for h in range(1, 9) if d % h == 0)}"
                             f" heads.")
    params = 4 * d * d + 4 * d + 2 * d * ff + ff + d + 4 * d
    macs = length * (4 * d * d + 2 * d * ff) + 2 * length * length * d
    return shape, params, macs


def _sequence_pool(shape: Shape, p: dict):
    _need_sequence(shape, "Sequence pooling")
    if p["mode"] not in ("mean", "max"):
        raise ModelSpecError("Sequence pooling is 'mean' or 'max'.")
    return (shape[1],), 0, 0


def _layernorm(shape: Shape, p: dict):
    return shape, 2 * shape[-1], 0


def _conv1d(shape: Shape, p: dict):
    _need_sequence(shape, "Conv1d")
    c, length = shape
    k, s, pad, n_out = int(p["kernel_size"]), int(p["stride"]), int(p["padding"]), int(
        p["out_channels"])
    if k < 1 or s < 1 or pad < 0 or n_out < 1:
        raise ModelSpecError("Conv1d needs kernel size, stride and channels of at least 1.")
    if k > length + 2 * pad:
        raise ModelSpecError(f"Conv1d's kernel ({k}) is longer than its input ({length}).")
    out = _conv_out(length, k, s, pad)
    return (n_out, out), n_out * c * k + (n_out if p["bias"] else 0), n_out * out * c * k


def _pool1d(shape: Shape, p: dict):
    _need_sequence(shape, "Pooling")
    c, length = shape
    k = int(p["kernel_size"])
    s = int(p.get("stride") or k)
    if k < 1 or k > length:
        raise ModelSpecError(f"Pooling window ({k}) is longer than its input ({length}).")
    return (c, _conv_out(length, k, s, 0)), 0, 0


def _adaptive_pool1d(shape: Shape, p: dict):
    _need_sequence(shape, "Adaptive average pooling")
    return (shape[0], int(p["output_size"])), 0, 0


def _residual(shape: Shape, p: dict):
    if len(shape) == 3:
        c, h, w = shape
        n_out, s = int(p["out_channels"]), int(p["stride"])
        if n_out < 1 or s < 1:
            raise ModelSpecError("A residual block needs channels and stride of at least 1.")
        oh, ow = _conv_out(h, 3, s, 1), _conv_out(w, 3, s, 1)
        params = 9 * c * n_out + 9 * n_out * n_out + 4 * n_out
        macs = oh * ow * (9 * c * n_out + 9 * n_out * n_out)
        if s != 1 or c != n_out:
            params += c * n_out + 2 * n_out
            macs += oh * ow * c * n_out
        return (n_out, oh, ow), params, macs
    if len(shape) == 1:
        n_in, n_out = shape[0], int(p["out_channels"])
        if n_out < 1:
            raise ModelSpecError("A residual block needs at least 1 output.")
        params = n_in * n_out + n_out + n_out * n_out + n_out
        macs = n_in * n_out + n_out * n_out
        if n_in != n_out:
            params += n_in * n_out
            macs += n_in * n_out
        return (n_out,), params, macs
    raise ModelSpecError(f"A residual block needs an image or a flat feature vector, but gets "
                         f"{_shape_str(shape)}.")


class TokenEmbedding(nn.Module):
    """Token ids ``(batch, length)`` to vectors ``(batch, length, dim)``; id 0 is padding.
    With *positional*, a learned vector per position is added (for the Transformer)."""

    def __init__(self, vocab_size: int, dim: int, length: int, positional: bool):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(length, dim)) if positional else None
        self.vocab_size = vocab_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.embedding(ids.long().clamp(0, self.vocab_size - 1))
        if self.position is not None:
            out = out + self.position
        return out


class Recurrent(nn.Module):
    """An LSTM or GRU over ``(batch, length, features)``: the whole output sequence, or the
    final hidden state (both directions joined)."""

    def __init__(self, cell: str, n_in: int, hidden: int, layers: int, bidirectional: bool,
                 return_sequence: bool):
        super().__init__()
        kind = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = kind(n_in, hidden, num_layers=layers, batch_first=True,
                        bidirectional=bidirectional)
        self.return_sequence = return_sequence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, state = self.rnn(x)
        if self.return_sequence:
            return out
        h = state[0] if isinstance(state, tuple) else state
        if self.rnn.bidirectional:
            return torch.cat([h[-2], h[-1]], dim=1)
        return h[-1]


class SequencePool(nn.Module):
    """``(batch, length, d)`` to ``(batch, d)`` by the mean or the maximum over positions."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1) if self.mode == "mean" else x.amax(dim=1)


class ResidualBlock(nn.Module):
    """He et al.'s basic block: conv3x3-BN-ReLU-conv3x3-BN plus the input (projected by a 1x1
    conv when the shape changes), then ReLU. For flat input: Linear-ReLU-Linear plus input."""

    def __init__(self, shape: Shape, out_channels: int, stride: int):
        super().__init__()
        n_in = shape[0]
        if len(shape) == 3:
            self.body = nn.Sequential(
                nn.Conv2d(n_in, out_channels, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels), nn.ReLU(),
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels))
            self.skip = (nn.Identity() if stride == 1 and n_in == out_channels else
                         nn.Sequential(nn.Conv2d(n_in, out_channels, 1, stride=stride,
                                                 bias=False), nn.BatchNorm2d(out_channels)))
        else:
            self.body = nn.Sequential(nn.Linear(n_in, out_channels), nn.ReLU(),
                                      nn.Linear(out_channels, out_channels))
            self.skip = (nn.Identity() if n_in == out_channels else
                         nn.Linear(n_in, out_channels, bias=False))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


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
_register("embedding_bag", "Word embeddings (mean)", {"vocab_size": 2, "dim": 64, "buckets": 0},
          _embedding_bag, lambda s, p: EmbeddingBag(int(p["vocab_size"]), int(p["dim"]),
                                                    int(p["buckets"])))
_register("conv1d", "Conv1d",
          {"out_channels": 32, "kernel_size": 3, "stride": 1, "padding": 1, "bias": True},
          _conv1d,
          lambda s, p: nn.Conv1d(s[0], int(p["out_channels"]), int(p["kernel_size"]),
                                 stride=int(p["stride"]), padding=int(p["padding"]),
                                 bias=bool(p["bias"])))
_register("maxpool1d", "MaxPool1d", {"kernel_size": 2, "stride": None}, _pool1d,
          lambda s, p: nn.MaxPool1d(int(p["kernel_size"]), stride=p.get("stride")))
_register("avgpool1d", "AvgPool1d", {"kernel_size": 2, "stride": None}, _pool1d,
          lambda s, p: nn.AvgPool1d(int(p["kernel_size"]), stride=p.get("stride")))
_register("adaptive_avgpool1d", "AdaptiveAvgPool1d", {"output_size": 1}, _adaptive_pool1d,
          lambda s, p: nn.AdaptiveAvgPool1d(int(p["output_size"])))
_register("layernorm", "LayerNorm", {}, _layernorm, lambda s, p: nn.LayerNorm(s[-1]))
_register("residual_block", "Residual block", {"out_channels": 64, "stride": 1}, _residual,
          lambda s, p: ResidualBlock(s, int(p["out_channels"]), int(p["stride"])))
_register("embedding", "Embedding (token vectors)",
          {"vocab_size": 2, "dim": 64, "positional": False}, _embedding,
          lambda s, p: TokenEmbedding(int(p["vocab_size"]), int(p["dim"]), s[0],
                                      bool(p["positional"])))
for _cell, _gates in (("lstm", 4), ("gru", 3)):
    _register(_cell, _cell.upper(), {"hidden_size": 64, "num_layers": 1, "bidirectional": True,
                                     "return_sequence": False}, _rnn(_gates),
              lambda s, p, c=_cell: Recurrent(c, s[1], int(p["hidden_size"]),
                                              int(p["num_layers"]), bool(p["bidirectional"]),
                                              bool(p["return_sequence"])))
_register("transformer_encoder", "Transformer encoder layer",
          {"nhead": 4, "dim_feedforward": 128, "dropout": 0.1}, _transformer,
          lambda s, p: nn.TransformerEncoderLayer(s[1], int(p["nhead"]),
                                                  int(p["dim_feedforward"]),
                                                  float(p["dropout"]), batch_first=True))
_register("sequence_pool", "Sequence pooling", {"mode": "mean"}, _sequence_pool,
          lambda s, p: SequencePool(str(p["mode"])))
_register("dropout", "Dropout", {"p": 0.1}, _same, lambda s, p: nn.Dropout(float(p["p"])))
_register("flatten", "Flatten", {}, _flatten, lambda s, p: nn.Flatten())
_register("relu", "ReLU", {}, _same, lambda s, p: nn.ReLU())
_register("gelu", "GELU", {}, _same, lambda s, p: nn.GELU())
_register("silu", "SiLU", {}, _same, lambda s, p: nn.SiLU())
_register("tanh", "Tanh", {}, _same, lambda s, p: nn.Tanh())
_register("sigmoid", "Sigmoid", {}, _same, lambda s, p: nn.Sigmoid())
_register("leaky_relu", "LeakyReLU", {"negative_slope": 0.01}, _same,
          lambda s, p: nn.LeakyReLU(float(p["negative_slope"])))


_register("numeric_embed", "Number embeddings (piecewise-linear)",
          {"features": 0, "bins": 16, "dim": 16}, tabular.infer_numeric_embed,
          tabular.build_numeric_embed)
_register("ensemble_mlp", "MLP ensemble (TabM)",
          {"k": 32, "blocks": 2, "width": 256, "dropout": 0.1, "out_features": 1,
           "merge": "mean"}, tabular.infer_ensemble, tabular.build_ensemble)
_register("pretrained", "Pretrained backbone", {"backbone": "", "kind": "", "feature_dim": 0},
          lambda s, p: _backbones().infer_layer(s, p),
          lambda s, p: _backbones().build_layer(s, p))


def _backbones():
    from . import backbones  # transformers and the backbone modules load only when used

    return backbones


#: Layers that take token ids (int64): only as the first layer of a text model.
TOKEN_LAYERS = frozenset({"embedding", "embedding_bag"})


def takes_tokens(layer: dict) -> bool:
    """Whether *layer* reads token ids (an embedding, or a pretrained text backbone)."""
    name = layer.get("type")
    return name in TOKEN_LAYERS or (name == "pretrained" and layer.get("kind") == "text")


def layer_params(layer: dict) -> dict:
    """Return the layer's parameters with defaults filled in (without ``type``)."""
    kind = LAYER_TYPES[layer["type"]]
    params = dict(kind.defaults)
    params.update({k: v for k, v in layer.items() if k != "type"})
    return params
