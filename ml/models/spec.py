"""Declarative model specs (a list of layer dicts) and the ``nn.Module`` built from them.

A :class:`ModelSpec` is plain JSON. :func:`summarize` checks it against its input shape without
allocating anything; :func:`build_model` turns it into a :class:`TrainDeskNet`, whose first step
standardises the raw encoded features with statistics fitted on the training split (buffers saved
with the weights), so that an exported model takes unscaled input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import ModelSpecError
from .layers import LAYER_TYPES, Shape, layer_params

SPEC_VERSION = 1


@dataclass
class ModelSpec:
    """A network as data.

    Attributes
    ----------
    input_shape : list of int
        Shape of one input sample (``[F]`` or ``[C, H, W]``).
    layers : list of dict
        ``{"type": "linear", "out_features": 64}``, ... in order.
    task : str
    name : str
        The preset it came from, for display.
    """

    input_shape: list[int]
    layers: list[dict[str, Any]]
    task: str
    name: str = "custom"
    input_dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"version": SPEC_VERSION, "name": self.name, "task": self.task,
                "input_shape": list(self.input_shape), "input_dtype": self.input_dtype,
                "layers": [dict(x) for x in self.layers]}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "ModelSpec":
        try:
            if int(doc.get("version", 1)) > SPEC_VERSION:
                raise ModelSpecError("The model spec was written by a newer TrainDesk.")
            spec = cls(input_shape=[int(v) for v in doc["input_shape"]],
                       layers=[dict(x) for x in doc["layers"]], task=str(doc["task"]),
                       name=str(doc.get("name", "custom")),
                       input_dtype=str(doc.get("input_dtype", "float32")))
            if spec.input_dtype not in ("float32", "int64"):
                raise ValueError(f"unknown input type {spec.input_dtype}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelSpecError(f"The model spec is incomplete ({exc}).") from None
        summarize(spec)
        return spec


@dataclass(frozen=True)
class InputSpec:
    """What a network must take: produced by the data's preprocessing.

    Attributes
    ----------
    shape : tuple of int
        One sample, without the batch axis.
    dtype : str
        ``float32``, or ``int64`` for token ids.
    kind : str
        ``tabular``, ``image`` or ``text``.
    embeddings : tuple of (int, int)
        ``(position, number of codes)`` of embedded categorical inputs.
    vocab_size : int
        Text: the vocabulary size (ids ``0 .. vocab_size - 1``).
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    kind: str = "tabular"
    embeddings: tuple[tuple[int, int], ...] = ()
    vocab_size: int = 0

    @classmethod
    def of(cls, value: "InputSpec | Sequence[int]") -> "InputSpec":
        """Accept a bare shape too (images if it has three axes)."""
        if isinstance(value, InputSpec):
            return value
        shape = tuple(int(v) for v in value)
        return cls(shape=shape, kind="image" if len(shape) == 3 else "tabular")


@dataclass(frozen=True)
class LayerSummary:
    """One row of a model summary."""

    index: int
    type: str
    title: str
    output_shape: Shape
    params: int
    macs: int


@dataclass
class ModelSummary:
    """Per-layer shapes and costs, and totals."""

    layers: list[LayerSummary] = field(default_factory=list)
    input_shape: Shape = ()

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def size_mb(self) -> float:
        return self.total_params * 4 / 1e6


def summarize(spec: ModelSpec) -> ModelSummary:
    """Infer every layer's output shape and parameter count.

    Raises
    ------
    ModelSpecError
        Naming the first layer that cannot take its input, and why.
    """
    shape: Shape = tuple(int(v) for v in spec.input_shape)
    if not shape or any(v < 1 for v in shape):
        raise ModelSpecError(f"The input shape {list(shape)} is invalid.")
    summary = ModelSummary(input_shape=shape)
    for i, layer in enumerate(spec.layers):
        kind = LAYER_TYPES.get(layer.get("type", ""))
        if kind is None:
            raise ModelSpecError(f"Layer {i + 1} has an unknown type {layer.get('type')!r}.")
        try:
            out, params, macs = kind.infer(shape, layer_params(layer))
        except ModelSpecError as exc:
            raise ModelSpecError(f"Layer {i + 1} ({kind.title}): {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ModelSpecError(f"Layer {i + 1} ({kind.title}) has an invalid setting: "
                                 f"{exc}.") from None
        if any(v < 1 for v in out):
            raise ModelSpecError(f"Layer {i + 1} ({kind.title}) shrinks its input "
                                 f"({'x'.join(map(str, shape))}) to nothing. Remove a pooling "
                                 f"layer or use a smaller kernel.")
        summary.layers.append(LayerSummary(i, kind.name, kind.title, out, params, macs))
        shape = out
    if len(shape) != 1:
        raise ModelSpecError("The network must end with a flat output; add Flatten and Linear "
                             "layers at the end.")
    return summary


class Standardize(nn.Module):
    """``(x - mean) / std`` with statistics from the training split, stored as buffers."""

    def __init__(self, input_shape: Sequence[int], mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None):
        super().__init__()
        # Per feature for flat inputs, per channel (broadcast over H, W) for images.
        n = input_shape[0]
        view = (n,) if len(input_shape) == 1 else (n,) + (1,) * (len(input_shape) - 1)
        mean_t = torch.zeros(n) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.ones(n) if std is None else torch.as_tensor(std, dtype=torch.float32)
        if mean_t.numel() != n or std_t.numel() != n:
            raise ModelSpecError(f"Normalisation statistics have {mean_t.numel()} values but the "
                                 f"input has {n} features or channels.")
        self.register_buffer("mean", mean_t.reshape(view).clone())
        self.register_buffer("std", std_t.reshape(view).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TrainDeskNet(nn.Module):
    """The trainable network: standardisation, then the spec's layers.

    Its output is what the loss sees: class logits, or the standardised regression target.
    """

    def __init__(self, spec: ModelSpec, feature_mean: Sequence[float] | None = None,
                 feature_std: Sequence[float] | None = None):
        super().__init__()
        summarize(spec)
        self.spec = spec
        # Token ids are looked up, not scaled.
        self.normalize = (nn.Identity() if spec.input_dtype == "int64"
                          else Standardize(spec.input_shape, feature_mean, feature_std))
        layers = []
        shape: Shape = tuple(spec.input_shape)
        for layer in spec.layers:
            kind = LAYER_TYPES[layer["type"]]
            params = layer_params(layer)
            layers.append(kind.build(shape, params))
            shape = kind.infer(shape, params)[0]
        self.body = nn.Sequential(*layers)
        self.n_outputs = shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))

    @property
    def is_convolutional(self) -> bool:
        return any(layer["type"] == "conv2d" for layer in self.spec.layers)


class InferenceModel(nn.Module):
    """What an export runs: class probabilities, or predictions in the target's own units."""

    def __init__(self, net: TrainDeskNet, task: str, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.net = net
        self.task = task
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.task == "classification":
            return torch.softmax(out, dim=-1)
        return out * self.target_std + self.target_mean


def build_model(spec: ModelSpec, feature_mean: Sequence[float] | None = None,
                feature_std: Sequence[float] | None = None) -> TrainDeskNet:
    """Build the network described by *spec* (weights initialised by PyTorch's defaults)."""
    return TrainDeskNet(spec, feature_mean, feature_std)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of *module*."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
