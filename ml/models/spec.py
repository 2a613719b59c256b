"""Declarative model specs (a list of layer dicts) and the ``nn.Module`` built from them.

A :class:`ModelSpec` is plain JSON. :func:`summarize` checks it against its input shape without
allocating anything; :func:`build_model` turns it into a :class:`TrainDeskNet`, whose first step
standardises the raw encoded features with statistics fitted on the training split (buffers saved
with the weights), so that an exported model takes unscaled input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ModelSpecError
from .layers import LAYER_TYPES, Shape, layer_params, takes_tokens

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
    def from_dict(cls, doc: dict[str, Any]) -> ModelSpec:
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
    def of(cls, value: InputSpec | Sequence[int]) -> InputSpec:
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

    @property
    def total_flops(self) -> int:
        """Floating-point operations of one forward pass (a multiply-add counts two)."""
        return 2 * self.total_macs

    @property
    def activation_values(self) -> int:
        """Values all layers output for one sample (what training keeps for the backward
        pass)."""
        return sum(math.prod(layer.output_shape) for layer in self.layers)


@dataclass(frozen=True)
class LayerCheck:
    """One layer checked against its input: its shapes and costs, or why it cannot work."""

    index: int
    type: str
    title: str
    input_shape: Shape | None
    output_shape: Shape | None
    params: int = 0
    macs: int = 0
    error: str | None = None


#: The error of the layers after a bad one (their input is unknown).
AFTER_ERROR = "Comes after a layer with a problem; fix that one first."


def check_layers(input_shape, layers: Sequence[dict], input_dtype: str = "float32", *,
                 n_outputs: int | None = None,
                 embeddings: Sequence[tuple[int, int]] | None = None) -> list[LayerCheck]:
    """Check every layer, going on after a bad one, for the layer editor.

    Parameters
    ----------
    input_shape : sequence of int
        One sample, without the batch axis.
    layers : sequence of dict
    input_dtype : str
        ``int64`` for token ids: the first layer must then look them up (an embedding).
    n_outputs : int, optional
        What the task needs from the last layer (classes, or 1); a flat output of another
        size is an error on the last layer.
    embeddings : sequence of (int, int), optional
        The data's embedded categorical inputs (:attr:`InputSpec.embeddings`): their category
        codes must be read by a first Column embeddings layer (see :func:`embedding_problem`).
        None when unknown (a saved spec alone), which skips that check.

    Returns
    -------
    list of LayerCheck
        One per layer, in order; ``error`` is None for a good layer.
    """
    shape: Shape | None = tuple(int(v) for v in input_shape)
    checks: list[LayerCheck] = []
    for i, layer in enumerate(layers):
        kind = LAYER_TYPES.get(layer.get("type", "")) if isinstance(layer, dict) else None
        name = layer.get("type", "?") if isinstance(layer, dict) else "?"
        title = kind.title if kind else str(name)
        if shape is None:
            checks.append(LayerCheck(i, name, title, None, None, error=AFTER_ERROR))
            continue
        try:
            if kind is None:
                raise ModelSpecError(f"this layer has an unknown type {name!r}")
            if takes_tokens(layer) and (i > 0 or input_dtype != "int64"):
                raise ModelSpecError("it looks up token ids, so it must be the first layer "
                                     "of a text model" + (
                                         "; this data is numbers" if input_dtype != "int64"
                                         else ""))
            if i == 0 and input_dtype == "int64" and not takes_tokens(layer):
                raise ModelSpecError("a text model gets token ids; its first layer must be an "
                                     "Embedding (or Word embeddings)")
            if embeddings is not None and input_dtype != "int64":
                problem = embedding_problem(i, layer, embeddings)
                if problem:
                    raise ModelSpecError(problem)
            try:
                out, params, macs = kind.infer(shape, layer_params(layer))
            except (TypeError, ValueError, KeyError) as exc:
                raise ModelSpecError(f"a setting is invalid ({exc})") from None
            if any(v < 1 for v in out):
                raise ModelSpecError(f"it shrinks its input ({_shape_text(shape)}) to nothing; "
                                     f"remove a pooling layer or use a smaller kernel or "
                                     f"stride")
        except ModelSpecError as exc:
            text = str(exc)
            checks.append(LayerCheck(i, name, title, shape, None,
                                     error=text[:1].upper() + text[1:].rstrip(".") + "."))
            shape = None
            continue
        checks.append(LayerCheck(i, name, title, shape, tuple(out), int(params), int(macs)))
        shape = tuple(out)
    if checks and shape is not None:
        last = checks[-1]
        problem = None
        if len(shape) != 1:
            problem = ("The network must end with a flat output; add Flatten (or Sequence "
                       "pooling) and a Linear layer at the end.")
        elif n_outputs is not None and shape[0] != n_outputs:
            what = "class" if n_outputs > 1 else "value"
            problem = (f"The last layer gives {shape[0]} output{'s' if shape[0] != 1 else ''} "
                       f"but this task needs {n_outputs} (one per {what}): set the last "
                       f"Linear layer's outputs to {n_outputs}.")
        if problem:
            checks[-1] = LayerCheck(last.index, last.type, last.title, last.input_shape,
                                    last.output_shape, last.params, last.macs, problem)
    return checks


#: What to do when the category codes of embedded columns would be read as quantities.
EMBED_ADVICE = ("add Column embeddings as the first layer (or click 'Back to the preset'), "
                "or set those columns' encoding to one-hot on the Data page")


def embedding_problem(index: int, layer: dict, embeddings: Sequence[tuple[int, int]]
                      ) -> str | None:
    """Why layer *index* misreads the data's embedded columns, or None.

    An embedded categorical column reaches the network as a category code (1, 2, 3 ...), a
    name and not a quantity: only a Column embeddings layer in first place turns it into
    numbers. Without one every later layer would do arithmetic on the codes, so such a model
    is refused rather than trained.
    """
    wanted = {int(pos) for pos, _ in embeddings}
    cards = {int(pos): int(card) for pos, card in embeddings}
    is_embed = layer.get("type") == "embed_columns"
    if index > 0:
        return ("Column embeddings must be the first layer: later ones no longer see the "
                "category codes; move it to the top") if is_embed else None
    n = len(wanted)
    if not is_embed:
        if not wanted:
            return None
        return (f"the data gives {n} categorical column{'s' if n != 1 else ''} as category "
                f"codes (names, not quantities), which only a first Column embeddings layer "
                f"can read; {EMBED_ADVICE}")
    try:
        given = {int(pos): int(card) for pos, card, _ in layer_params(layer)["columns"]}
    except (TypeError, ValueError, KeyError):
        return None  # the layer's own check names the bad setting
    if not wanted:
        return ("the data has no embedded categorical columns, so this layer would take "
                "ordinary numbers for category codes; remove it")
    if set(given) != wanted or any(given[pos] < cards[pos] for pos in wanted):
        return (f"it does not embed the data's {n} categorical column{'s' if n != 1 else ''} "
                f"as they are encoded now (the data changed since it was set up); "
                f"{EMBED_ADVICE}")
    return None


def _shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape))


def estimate_training_memory(summary: ModelSummary, batch_size: int,
                             optimizer: str = "adam") -> int:
    """Bytes training is expected to need on the device, in float32: the weights, their
    gradients, the optimizer's state (Adam and AdamW keep two values per weight, SGD with
    momentum and RMSprop one) and every layer's output for the batch, twice (the forward
    values kept for the backward pass, and their gradients). An estimate: frameworks add
    workspace, and mixed precision halves the activations."""
    slots = {"adam": 2, "adamw": 2, "sgd": 1, "rmsprop": 1}.get(optimizer, 2)
    weights = summary.total_params * 4
    activations = 2 * summary.activation_values * int(batch_size) * 4
    return int(weights * (2 + slots) + activations)


def summarize(spec: ModelSpec, n_outputs: int | None = None,
              embeddings: Sequence[tuple[int, int]] | None = None) -> ModelSummary:
    """Infer every layer's output shape and parameter count (*n_outputs* and *embeddings*:
    see :func:`check_layers`).

    Raises
    ------
    ModelSpecError
        Naming the first layer that cannot take its input, and why.
    """
    shape: Shape = tuple(int(v) for v in spec.input_shape)
    if not shape or any(v < 1 for v in shape):
        raise ModelSpecError(f"The input shape {list(shape)} is invalid.")
    if not spec.layers:
        raise ModelSpecError("The network has no layers; add at least a Linear layer.")
    checks = check_layers(shape, spec.layers, spec.input_dtype, n_outputs=n_outputs,
                          embeddings=embeddings)
    bad = next((c for c in checks if c.error and c.error != AFTER_ERROR), None)
    if bad is not None:
        if bad.index == len(checks) - 1 and bad.output_shape is not None:
            raise ModelSpecError(bad.error)
        raise ModelSpecError(f"Layer {bad.index + 1} ({bad.title}): {bad.error}")
    summary = ModelSummary(input_shape=shape)
    summary.layers = [LayerSummary(c.index, c.type, c.title, c.output_shape, c.params, c.macs)
                      for c in checks]
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

    @property
    def has_backbone(self) -> bool:
        return any(layer["type"] == "pretrained" for layer in self.spec.layers)

    def optimizer_groups(self) -> list[dict] | None:
        """Parameter groups with their own rates (a pretrained backbone's earlier layers learn
        slower), or None: one rate for all."""
        if not self.has_backbone:
            return None
        from .backbones import is_lora, optimizer_groups

        return None if is_lora(self) else optimizer_groups(self)


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
