"""How long a run will take: a few real training steps, timed on the chosen device."""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn

from ..runs.project import TrainingConfig
from ..system.device import describe_device, release_device_memory, select_device
from .trainer import Trainer, as_model_input


def estimate_run(model: nn.Module, x: np.ndarray, y: np.ndarray, task: str,
                 config: TrainingConfig, *, device: str = "auto", n_batches: int = 5,
                 n_train: int | None = None) -> dict:
    """Time *n_batches* training steps (forward, backward, optimizer step) after two warm-up
    steps, on a copy of *model* (the model itself is left untouched).

    Parameters
    ----------
    model : nn.Module
    x, y : ndarray
        Inputs and targets shaped and typed like the real ones (values do not matter).
    task : str
    config : TrainingConfig
        Batch size, optimizer, loss and AMP as the run will use them.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    n_batches : int
    n_train : int, optional
        Training rows of the real run (default ``len(x)``).

    Returns
    -------
    dict
        ``seconds_per_batch``, ``seconds_per_epoch``, ``seconds_total`` (for
        ``config.epochs``), ``peak_memory_bytes`` (CUDA only, else None) and ``device``.
    """
    dev = select_device(device)
    net = copy.deepcopy(model).to(dev)
    trainer = Trainer(net, task, config, device=dev)
    optimizer = trainer._make_optimizer()
    batch = max(1, min(int(config.batch_size), len(x)))
    n_train = int(n_train if n_train is not None else len(x))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    net.train()
    times = []
    rng = np.random.default_rng(0)
    try:
        for i in range(2 + max(1, int(n_batches))):
            idx = torch.from_numpy(rng.integers(0, len(x), batch))
            xb, yb = as_model_input(xt[idx].to(dev)), yt[idx].to(dev)
            start = time.perf_counter()
            out = net(xb)
            loss = trainer._loss(out, yb, training=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= 2:
                times.append(time.perf_counter() - start)
        peak = int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None
    finally:
        del net, optimizer
        release_device_memory(dev)
    per_batch = float(np.median(times))
    per_epoch = per_batch * math.ceil(n_train / batch)
    return {"seconds_per_batch": per_batch, "seconds_per_epoch": per_epoch,
            "seconds_total": per_epoch * int(config.epochs), "peak_memory_bytes": peak,
            "device": describe_device(dev).label}
