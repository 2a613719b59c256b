"""The layers of TrainDesk's default table model: numbers embedded piecewise-linearly, then a
parameter-efficient ensemble of MLPs.

What the tabular deep-learning papers found works, in TrainDesk's own code:

- **Piecewise-linear number embeddings** (Gorishniy et al., "On Embeddings for Numerical
  Features in Tabular Deep Learning", 2022). Each number is cut at quantile edges of the training
  data into bins; it becomes a vector saying how far it lies through each bin, which a per-column
  linear layer turns into an embedding. The edges follow the data, so heavy tails, skew and
  outliers cost nothing, and an MLP can draw the step-like shapes trees are good at.
- **TabM-mini** (Gorishniy et al., "TabM: Advancing Tabular Deep Learning with
  Parameter-Efficient Ensembling", 2024). *k* MLPs share every weight but a per-member scaling of
  their input and their output layer. Each member is trained on its own loss (the mean of the
  members' losses, not the loss of their mean); the prediction is the mean of their
  probabilities (classification) or values (regression). It costs about one wide MLP and behaves
  like an ensemble of *k*.

Both are ordinary layers of a :class:`~ml.models.spec.ModelSpec`, so the model is shown, edited,
explained, exported and resumed like any other. The embedding's bin edges are a buffer of the
model, set from the training inputs before training (:func:`fit_to_inputs`) and saved with the
weights, so an exported model carries them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import ModelSpecError

#: How many training rows the bin edges are measured on (quantiles settle long before this).
EDGE_SAMPLE = 50_000
#: The narrowest bin, in standardised units: a column with few distinct values (a 0/1 flag)
#: gets steps this sharp instead of a division by zero.
MIN_BIN_WIDTH = 1e-3


def infer_numeric_embed(shape, p: dict):
    """Output width, parameters and multiply-adds of a :class:`NumericEmbedding`."""
    if len(shape) != 1:
        raise ModelSpecError("Number embeddings need a flat feature vector (a table's row).")
    n = int(shape[0])
    features, bins, dim = _embed_sizes(n, p)
    width = features * dim + (n - features)
    return (width,), features * (bins * dim + dim), features * bins * dim


def _embed_sizes(n: int, p: dict) -> tuple[int, int, int]:
    features = int(p.get("features") or n)
    bins, dim = int(p["bins"]), int(p["dim"])
    if not 1 <= features <= n:
        raise ModelSpecError(f"Number embeddings cover {features} features, but the input has "
                             f"{n}.")
    if bins < 2 or dim < 1:
        raise ModelSpecError("Number embeddings need at least 2 bins and a width of at least 1.")
    return features, bins, dim


class NumericEmbedding(nn.Module):
    """Piecewise-linear embeddings of the first *features* inputs; the rest pass through.

    Input ``(batch, n)``; output ``(batch, features * dim + n - features)``: each embedded
    number's *dim* values, then the inputs that were not embedded (category embeddings, which
    come last in a TrainDesk table model).
    """

    def __init__(self, n_inputs: int, features: int, bins: int, dim: int):
        super().__init__()
        self.features, self.bins = int(features), int(bins)
        # Until fitted: even edges over +-2 standard deviations (the inputs are standardised).
        edges = torch.linspace(-2.0, 2.0, bins + 1).repeat(features, 1)
        self.register_buffer("edges", edges)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.weight = nn.Parameter(torch.empty(features, bins, dim))
        self.bias = nn.Parameter(torch.empty(features, dim))
        bound = 1.0 / math.sqrt(bins)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.act = nn.ReLU()

    @torch.no_grad()
    def fit_edges(self, x: torch.Tensor) -> None:
        """Set the bin edges to quantiles of the (standardised) inputs *x* it will see."""
        values = x[:, :self.features].double().cpu().numpy()
        q = np.linspace(0.0, 1.0, self.bins + 1)
        edges = np.quantile(values, q, axis=0).T  # (features, bins + 1)
        # Equal quantiles (a flag, a column of few values) would make empty bins: keep every
        # bin at least MIN_BIN_WIDTH wide, so the encoding stays a proper step.
        widths = np.maximum(np.diff(edges, axis=1), MIN_BIN_WIDTH)
        edges = np.concatenate([edges[:, :1], edges[:, :1] + np.cumsum(widths, axis=1)], axis=1)
        self.edges.copy_(torch.from_numpy(edges).to(self.edges.dtype))
        self.fitted.fill_(True)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """How far each number lies through each bin, ``(batch, features, bins)``: 0 before
        the bin, 1 after it; below the first and above the last edge it extrapolates."""
        left, right = self.edges[:, :-1], self.edges[:, 1:]
        t = (x[:, :self.features].unsqueeze(-1) - left) / (right - left)
        inner = t[..., 1:-1].clamp(0.0, 1.0)
        first = t[..., :1].clamp(max=1.0)
        last = t[..., -1:].clamp(min=0.0)
        return torch.cat([first, inner, last], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.encode(x)
        out = self.act(torch.einsum("bft,ftd->bfd", e, self.weight.to(e.dtype))
                       + self.bias.to(e.dtype))
        return torch.cat([out.flatten(1), x[:, self.features:]], dim=1)


def build_numeric_embed(shape, p: dict) -> NumericEmbedding:
    features, bins, dim = _embed_sizes(int(shape[0]), p)
    return NumericEmbedding(int(shape[0]), features, bins, dim)


def infer_ensemble(shape, p: dict):
    """Output width, parameters and multiply-adds of a :class:`EnsembleMLP`."""
    if len(shape) != 1:
        raise ModelSpecError("The MLP ensemble needs a flat feature vector.")
    d, k, blocks, width, out = _ensemble_sizes(int(shape[0]), p)
    body = d * width + width + (blocks - 1) * (width * width + width)
    params = k * d + body + k * (width * out + out)
    macs = k * (d + body + width * out)
    return (out,), params, macs


def _ensemble_sizes(d: int, p: dict) -> tuple[int, int, int, int, int]:
    k, blocks, width, out = (int(p["k"]), int(p["blocks"]), int(p["width"]),
                             int(p["out_features"]))
    if not 1 <= k <= 256:
        raise ModelSpecError(f"The ensemble needs 1 to 256 members (got {k}).")
    if blocks < 1 or width < 1 or out < 1:
        raise ModelSpecError("The MLP ensemble needs at least 1 block, a width of at least 1 "
                             "and at least 1 output.")
    if p.get("merge", "mean") not in ("mean", "probs"):
        raise ModelSpecError("The ensemble merges its members by 'mean' or 'probs'.")
    return d, k, blocks, width, out


class EnsembleMLP(nn.Module):
    """TabM-mini: *k* MLPs sharing their hidden layers, each with its own input scaling and
    output layer.

    In training mode it returns every member's output, ``(batch, k, out)``, so that each member
    is trained on its own loss (see :func:`members`); in eval mode, their merge ``(batch, out)``:
    ``probs`` gives the log of the mean class probabilities (a valid logit for softmax), ``mean``
    the mean value.
    """

    def __init__(self, d_in: int, k: int, blocks: int, width: int, dropout: float,
                 out_features: int, merge: str):
        super().__init__()
        self.k, self.merge = int(k), merge
        # Random signs make the members differ from the first step (TabM's initialisation).
        signs = torch.randint(0, 2, (k, d_in)).float() * 2 - 1
        self.scale = nn.Parameter(signs)
        layers: list[nn.Module] = []
        for i in range(blocks):
            layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU(),
                       nn.Dropout(float(dropout))]
        self.body = nn.Sequential(*layers)
        bound = 1.0 / math.sqrt(width)
        self.head_weight = nn.Parameter(torch.empty(k, width, out_features).uniform_(-bound,
                                                                                      bound))
        self.head_bias = nn.Parameter(torch.empty(k, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.unsqueeze(1) * self.scale.to(x.dtype))  # (batch, k, width)
        out = torch.einsum("bkw,kwo->bko", h, self.head_weight.to(h.dtype)) + \
            self.head_bias.to(h.dtype)
        if self.training:
            return out
        if self.merge == "probs":
            return torch.logsumexp(torch.log_softmax(out.float(), dim=-1), dim=1) - \
                math.log(self.k)
        return out.mean(dim=1)


def build_ensemble(shape, p: dict) -> EnsembleMLP:
    d, k, blocks, width, out = _ensemble_sizes(int(shape[0]), p)
    return EnsembleMLP(d, k, blocks, width, float(p["dropout"]), out, p.get("merge", "mean"))


def members(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An ensemble's per-member outputs ``(batch, k, out)`` and targets ``(batch,)`` as one batch
    of ``batch * k`` (so a loss is the mean of the members' losses); other outputs unchanged."""
    if out.dim() != 3:
        return out, y
    k = out.shape[1]
    return out.reshape(-1, out.shape[2]), y.repeat_interleave(k)


def merged(out: torch.Tensor) -> torch.Tensor:
    """An ensemble's per-member outputs averaged (for a running training metric)."""
    return out.mean(dim=1) if out.dim() == 3 else out


@torch.no_grad()
def fit_to_inputs(net: nn.Module, x: np.ndarray) -> bool:
    """Set the bin edges of every unfitted :class:`NumericEmbedding` of *net* from the training
    inputs *x* (what reaches the embedding after the layers before it). Returns whether any was
    fitted. Run on a fresh network, before training; a loaded or resumed one keeps its edges."""
    todo = [m for m in net.modules() if isinstance(m, NumericEmbedding) and not bool(m.fitted)]
    if not todo or len(x) == 0:
        return False
    rows = np.random.default_rng(0).permutation(len(x))[:EDGE_SAMPLE] if len(x) > EDGE_SAMPLE \
        else slice(None)
    seen: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(
        lambda mod, args: seen.setdefault(id(mod), args[0].detach())) for m in todo]
    was_training = net.training
    net.eval()
    try:
        net(torch.as_tensor(np.ascontiguousarray(x[rows])))
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    for m in todo:
        m.fit_edges(seen[id(m)])
    return True
