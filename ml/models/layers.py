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
