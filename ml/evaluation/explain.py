"""Why the model says what it says: permutation feature importance for tables, saliency maps
for images, and token importance for texts.

Shuffling one column of the evaluation rows breaks its link to the target while keeping its
values; how much the score drops is how much the model relies on that column (Breiman, 2001;
scikit-learn's ``permutation_importance``). Columns are the user's raw columns - a one-hot
encoded category counts as one - and the score is accuracy for classes, R² for numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..data.preprocessing import Preprocessor
from ..errors import DataError
from ..models.spec import TrainDeskNet
from ..system.jobcontrol import check_stop
from ..training.trainer import predict_raw
from .evaluate import outputs_to_predictions
from .metrics import regression_metrics


@dataclass
class Importance:
    """Mean and standard deviation of the score drop per column, most important first."""

    features: list[str]
    mean: np.ndarray
    std: np.ndarray
    baseline: float
    score: str  # accuracy | r2


def _score(net: TrainDeskNet, pre: Preprocessor, frame: pd.DataFrame, y: np.ndarray) -> float:
    pred, _ = outputs_to_predictions(predict_raw(net, pre.transform_features(frame)), pre)
    if pre.task == "classification":
        return float(np.mean(pred == y))
    return regression_metrics(pre.inverse_target(y), pred)["r2"]


def permutation_importance(net: TrainDeskNet, pre: Preprocessor, frame: pd.DataFrame, *,
                           repeats: int = 5, seed: int = 0,
                           should_stop=None) -> Importance:
    """Score drop when each feature column of *frame* (rows with the target) is shuffled.

    Raises
    ------
    DataError
        For a model that does not read table columns (images, text), or rows without the
        target.
    """
    if pre.kind != "tabular" or not pre.columns:
        raise DataError("Feature importance by shuffling columns is for table models; images "
                        "and texts are explained per example.")
    if pre.target not in frame.columns:
        raise DataError(f"The rows have no target column {pre.target!r} to score against.")
    frame = frame[frame[pre.target].notna()].reset_index(drop=True)
    if len(frame) < 2:
        raise DataError("At least two labelled rows are needed to measure importance.")
    y = pre.transform_target(frame)
    baseline = _score(net, pre, frame, y)
    rng = np.random.default_rng(seed)
    names = [c.name for c in pre.columns]
    drops = np.zeros((len(names), repeats))
    for i, name in enumerate(names):
        shuffled = frame.copy()
        for r in range(repeats):
            check_stop(should_stop, "Cancelled.")
            shuffled[name] = frame[name].to_numpy()[rng.permutation(len(frame))]
            drops[i, r] = baseline - _score(net, pre, shuffled, y)
    mean, std = drops.mean(axis=1), drops.std(axis=1)
    order = np.argsort(-mean, kind="stable")
    return Importance([names[i] for i in order], mean[order], std[order], baseline,
                      "accuracy" if pre.task == "classification" else "r2")


# -- images -----------------------------------------------------------------------------------
@dataclass
class Saliency:
    """Where in an image the model looked for its answer."""

    #: ``Grad-CAM`` (conv nets: the last convolutional feature map, weighted by the gradient of
    #: the answer) or ``gradient x input`` (other networks).
    method: str
    #: ``(H, W)`` float32 in [0, 1] at the input's size: 1 is where the answer comes from most.
    heatmap: np.ndarray
    #: The class explained (classification), or None for regression.
    target: int | None


def saliency(net: TrainDeskNet, x: np.ndarray, target: int | None = None) -> Saliency:
    """Explain the answer for one image *x*, the model's input ``(1, C, H, W)``.

    Grad-CAM (Selvaraju et al., 2017) for networks with convolutions: the last 4-D activation,
    channel-weighted by the mean gradient of the score of *target* (default: the predicted class;
    regression: the output), rectified and resized bilinearly to the image. Otherwise the
    gradient times the input, summed over channels in absolute value.
    """
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if xt.ndim != 4 or xt.shape[0] != 1:
        raise DataError("Saliency explains one image at a time: pass (1, C, H, W).")
    net.eval()
    captured: list[torch.Tensor] = []

    def keep(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[-1] > 1:
            output.retain_grad()
            captured.append(output)

    # A pretrained backbone is one layer: its own last feature map is hooked inside it.
    inner = [m for layer in net.body.children() for m in getattr(layer, "cam_modules",
                                                                 lambda: [])()]
    hooks = [m.register_forward_hook(keep) for m in [*net.body.children(), *inner]]
    try:
        with torch.enable_grad():
            xt.requires_grad_(True)
            out = net(xt)
            if out.shape[-1] > 1:
                target = int(out[0].argmax()) if target is None else int(target)
                score = out[0, target]
            else:
                target, score = None, out[0].sum()
            score.backward()
    finally:
        for hook in hooks:
            hook.remove()
        net.zero_grad(set_to_none=True)  # the weights' gradients were a by-product
    h, w = x.shape[-2:]
    if captured and captured[-1].grad is not None:
        act, grad = captured[-1].detach(), captured[-1].grad.detach()
        weights = grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * act).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        method = "Grad-CAM"
    else:
        cam = (xt.grad.detach() * xt.detach()).abs().sum(dim=1)[0]
        method = "gradient x input"
    heat = cam.numpy().astype(np.float32)
    top = float(heat.max())
    heat = heat / top if top > 0 else np.zeros_like(heat)
    return Saliency(method, heat, target)


# -- texts ------------------------------------------------------------------------------------
@dataclass
class TokenImportance:
    """How much each word of a text pushes the answer (occlusion)."""

    tokens: list[str]
    #: Per token: the answer's log-odds (classification: ``log p / (1 - p)``, which still moves
    #: when a confident model's probability is 0.9999) or value (regression, in the target's
    #: units) minus what it becomes when the word is replaced by the unknown word. Positive: the
    #: word supports the answer.
    scores: np.ndarray
    #: The class explained, or None for regression.
    target: int | None


def token_importance(net: TrainDeskNet, pre: Preprocessor, text: str,
                     target: int | None = None) -> TokenImportance:
    """Occlude each word of *text* in turn (it becomes the unknown word) and measure the change
    of the answer. Words past the model's maximum length are not read, so they get 0."""
    from ..data.text import UNK_ID

    if pre.kind != "text":
        raise DataError("Token importance needs a text model.")
    tokenizer = pre._tokenizer()
    tokens = tokenizer.tokenize(text)
    ids = tokenizer.encode([text])
    # A backbone's word pieces start after its [CLS] marker and are hidden by its own [UNK].
    first, unknown = getattr(tokenizer, "first_position", 0), getattr(tokenizer, "unk_id", UNK_ID)
    n = min(len(tokens), ids.shape[1] - first)
    batch = np.repeat(ids, n + 1, axis=0)
    for i in range(n):
        batch[i + 1, i + first] = unknown
    raw = predict_raw(net, batch)
    if pre.task == "classification":
        z = raw.astype(np.float64)
        target = int(z[0].argmax()) if target is None else int(target)
        others = np.delete(z, target, axis=1)
        top = others.max(axis=1)
        values = z[:, target] - (top + np.log(np.exp(others - top[:, None]).sum(axis=1)))
    else:
        target = None
        values = pre.inverse_target(raw.reshape(-1))
    scores = np.zeros(len(tokens), np.float64)
    scores[:n] = values[0] - values[1:]
    return TokenImportance(tokens, scores, target)
