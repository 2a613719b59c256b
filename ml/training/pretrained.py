"""Training a pretrained backbone three ways: linear probe, fine-tune, LoRA.

- **Linear probe**: the backbone is frozen, so its features are computed once per image or text
  and cached on disk (keyed by the backbone's weights and the data's digest); only the head is
  trained, on the cached features - a second run on the same data starts in seconds.
- **Fine-tune** (the fastai ``fine_tune`` recipe, with ULMFiT's gradual unfreezing): the head
  alone first, then one more backbone group each epoch from the top, earlier groups at smaller
  rates (:func:`ml.models.backbones.optimizer_groups`); frozen batch norms stay in eval mode.
- **LoRA**: low-rank adapters on the attention layers of a transformer backbone (peft); they are
  kept beside the run and merged into the weights it saves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import Cancelled
from ..models import backbones
from ..models.spec import ModelSpec, TrainDeskNet, build_model
from .callbacks import Callback, Logs
from .trainer import as_model_input

#: Backbone passes are batched this big when features are computed.
FEATURE_BATCH = 64
#: Version of the feature cache files (a change makes old caches unused, not wrong).
FEATURE_CACHE_VERSION = 1
#: The feature cache keeps its newest files up to this size.
FEATURE_CACHE_BYTES = 2 * 1024 ** 3


class GradualUnfreeze(Callback):
    """Train only the head for *head_epochs*, then unfreeze one backbone group per epoch from
    the output down, until all of it trains."""

    def __init__(self, head_epochs: int):
        self.head_epochs = int(head_epochs)

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        net = self.trainer.model
        backbones.set_trainable_groups(net, max(0, epoch - self.head_epochs + 1))

    def on_fit_end(self, logs: Logs) -> None:
        backbones.set_trainable_groups(self.trainer.model, 10 ** 6)


# -- linear probe --------------------------------------------------------------------------------
def head_network(net: TrainDeskNet) -> TrainDeskNet:
    """A network of *net*'s head alone (the layers after its backbone), reading features."""
    spec = net.spec
    dim = int(spec.layers[0]["feature_dim"])
    head_spec = ModelSpec(input_shape=[dim], layers=[dict(x) for x in spec.layers[1:]],
                          task=spec.task, name=spec.name)
    head = build_model(head_spec)
    head.body.load_state_dict(nn.Sequential(*list(net.body)[1:]).state_dict())
    return head


def put_head(net: TrainDeskNet, head: TrainDeskNet) -> None:
    """Copy a trained head back under the backbone of *net*."""
    for i, layer in enumerate(list(head.body)):
        net.body[i + 1].load_state_dict(layer.state_dict())


def features(net: TrainDeskNet, x, *, device: torch.device, cache_dir: Path | None,
             progress: Callable[[float, str], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """The backbone's features of *x* (``float32`` ``(n, dim)``), from the cache when this
    backbone has seen exactly these inputs before."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{feature_key(net, x)}.npy"
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(x), int(net.spec.layers[0]["feature_dim"])):
                return cached
        except (OSError, ValueError):
            pass
    out = _compute(net, x, device, progress, should_stop)
    if path is not None:
        _save(path, out)
    return out


@torch.no_grad()
def _compute(net: TrainDeskNet, x, device, progress, should_stop) -> np.ndarray:
    backbone = net.body[0]
    net.eval()
    net.to(device)
    parts = []
    n = len(x)
    for start in range(0, n, FEATURE_BATCH):
        if should_stop is not None and should_stop():
            raise Cancelled()
        xb = torch.from_numpy(np.ascontiguousarray(x[start:start + FEATURE_BATCH])).to(device)
        parts.append(backbone(net.normalize(as_model_input(xb))).float().cpu().numpy())
        if progress is not None:
            progress(min(start + FEATURE_BATCH, n) / n, "Computing the backbone's features")
    dim = int(net.spec.layers[0]["feature_dim"])
    return np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)


def feature_key(net: TrainDeskNet, x) -> str:
    """A digest of the backbone (its architecture and pretrained weights), its normalisation
    and the exact inputs: equal keys give equal features."""
    h = hashlib.sha256(f"v{FEATURE_CACHE_VERSION}".encode())
    layer = {k: v for k, v in net.spec.layers[0].items() if k != "title"}
    h.update(repr(sorted(layer.items(), key=lambda kv: kv[0])).encode())
    info = backbones.resolve(layer["backbone"])
    h.update((info.sha256 or "|".join(f"{p}:{Path(p).stat().st_mtime_ns}"
                                      for p in info.weights)).encode())
    for buffer in net.normalize.buffers():
        h.update(buffer.numpy().tobytes())
    if isinstance(x, np.ndarray):
        h.update(str((x.shape, x.dtype.str)).encode())
        for start in range(0, len(x), 4096):
            h.update(np.ascontiguousarray(x[start:start + 4096]).tobytes())
    else:  # image files decoded on demand: their paths, sizes and times
        h.update(str(getattr(x, "shape", len(x))).encode())
        for p in getattr(x, "paths", []):
            try:
                st = Path(p).stat()
                h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
            except OSError:
                h.update(str(p).encode())
    return h.hexdigest()[:32]


def _save(path: Path, values: np.ndarray) -> None:
    import io

    from ..system.fileio import atomic_write_bytes

    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
        _trim(path.parent, keep=path)
    except OSError:
        pass  # a cache that cannot be written costs time next run, nothing else


def _trim(folder: Path, keep: Path, limit: int = FEATURE_CACHE_BYTES) -> None:
    """Delete the least recently written feature files while the cache holds over *limit*."""
    files = sorted((p for p in folder.glob("*.npy") if p != keep),
                   key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files) + keep.stat().st_size
    for old in files:
        if total <= limit:
            break
        total -= old.stat().st_size
        old.unlink(missing_ok=True)
