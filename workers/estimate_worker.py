"""Background checks for the Model page: timing a few training steps, and matching a weights
file to the network (both run off the GUI thread: they build a model and touch torch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Worker


def synthetic_batch(input_spec: Any, shape: tuple[int, ...], n: int, n_outputs: int, task: str,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs of the model's shape and type, and targets: timing does not depend on
    the values, so no data needs preparing."""
    rng = np.random.default_rng(seed)
    kind = getattr(input_spec, "kind", "tabular")
    if getattr(input_spec, "dtype", "float32") == "int64":
        vocab = max(3, int(getattr(input_spec, "vocab_size", 3)))
        x = rng.integers(1, vocab, size=(n, *shape), dtype=np.int64)
    elif kind == "image":
        x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    else:
        x = rng.normal(size=(n, *shape)).astype(np.float32)
    if task == "classification":
        y = rng.integers(0, max(n_outputs, 1), size=n, dtype=np.int64)
    else:
        y = rng.normal(size=n).astype(np.float32)
    return x, y


class EstimateWorker(Worker):
    """Time a few real training steps of *spec* with *training* settings; ``finished``
    carries :func:`ml.training.estimate.estimate_run`'s dict."""

    def __init__(self, spec, training, n_train: int, input_spec=None):
        super().__init__()
        self.spec, self.training, self.n_train, self.input_spec = spec, training, n_train, \
            input_spec

    def work(self) -> dict:
        from ml.models.spec import build_model
        from ml.training.estimate import estimate_run

        model = build_model(self.spec)
        batch = int(self.training.batch_size)
        n = min(max(batch * 4, batch + 1), max(self.n_train, 2))
        x, y = synthetic_batch(self.input_spec, tuple(self.spec.input_shape), n,
                               model.n_outputs, self.spec.task)
        return estimate_run(model, x, y, self.spec.task, self.training,
                            device=self.training.device, n_train=self.n_train)


def match_source(spec, source: str):
    """Load the weights in *source* and match them to a fresh model of *spec*: the
    :class:`~ml.models.transfer.TransferReport` the Model page shows."""
    from ml.models.spec import build_model
    from ml.models.transfer import load_weights, match_weights

    return match_weights(build_model(spec), load_weights(source))
