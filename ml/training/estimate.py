"""How long a run will take and how much memory it needs: a few real epochs, timed and scaled.

A fresh copy of the model trains on a sample of the real training rows through the same
:meth:`Trainer.fit` a run uses - its batching, the streamed image decoding in worker processes,
augmentation, a validation pass each epoch and :class:`~.checkpoint.RunWriter`'s checkpoint
writes (into a temporary folder on the runs' disk) - for a few short epochs. Each part is timed
on its own and scaled to the run:

``start_up``
    What the first epoch took beyond a later one: decoding processes starting, first steps.
``train_steps``
    A step's time (from one batch's end to the next, so waiting for data is in it) x steps per
    epoch, plus each epoch's fixed cost, x epochs; minus ``loading``.
``loading``
    Gathering and augmenting the batches on the training thread, timed apart over the sample.
    Streamed images are decoded by worker processes alongside the steps instead:
    ``loading_alongside`` is their decoding work, which shows in ``train_steps`` only where
    they are slower than a step.
``validation``
    One validation pass's time per validation row x validation rows x epochs (the whole
    validation split is used when it is small, a sample of :data:`VAL_SAMPLE_ROWS` otherwise).
``checkpoints``
    One epoch's checkpoint, history and best-weights writes x epochs, plus what the writes grow
    by as the history they carry lengthens over the run.

``seconds_total`` is their sum: what :attr:`FitResult.seconds` (and the Train page's clock)
measures. Preparing the data before and evaluating the test split after are given apart
(``seconds_preparing``, ``seconds_finishing``). Not modelled: early stopping (the estimate is for
every planned epoch), frozen transferred layers (a little faster in their epochs), a fine-tuned
backbone's gradual unfreezing (its first epochs are faster: every epoch is timed with all of it
learning). A linear probe (:func:`estimate_probe`) adds ``features``, the backbone's one pass.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.streaming import ImageFiles
from ..errors import Cancelled
from ..runs.project import TrainingConfig
from ..system.device import describe_device, select_device
from .callbacks import Callback
from .checkpoint import RunWriter
from .trainer import TensorBatches, Trainer, as_model_input, augment_seed

#: Training batches per sample epoch (all of them when the run has fewer).
SAMPLE_STEPS = 8
#: Validation rows timed: the whole split below this, a sample of this many above.
VAL_SAMPLE_ROWS = 2048
#: Sample epochs: at least this many (the first is the warm-up) ...
MIN_EPOCHS = 3
#: ... and more, up to MAX_EPOCHS, until the later ones add up to this many seconds (a short
#: epoch is timed several times over, so one slow moment on a busy machine does not decide).
MIN_STEADY_SECONDS = 0.4
MAX_EPOCHS = 12
#: Past this many seconds of sampling no further epoch is started (a big model's epoch of
#: SAMPLE_STEPS can take seconds; two epochs then tell enough).
MAX_SAMPLE_SECONDS = 15.0


@dataclass(frozen=True)
class RunEstimate:
    """What a run of ``epochs`` epochs will take (seconds) and need (bytes); see the module."""

    device: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    n_train: int
    n_val: int
    start_up: float
    train_steps: float
    loading: float
    validation: float
    checkpoints: float
    #: Decoding work of the streaming worker processes (done alongside the steps), else 0.
    loading_alongside: float
    loader_workers: int
    augmented: bool
    seconds_preparing: float
    seconds_finishing: float
    #: The highest memory seen while training: GPU memory allocated on CUDA, else the
    #: process's resident memory (RAM); None where it cannot be read.
    peak_memory_bytes: int | None
    memory_kind: str  # "GPU" or "RAM"
    sampled_steps: int
    sampled_epochs: int
    #: A linear probe: the frozen backbone's one pass over the training and validation rows
    #: (before the head's epochs; cached, so a second run on the same data skips it).
    features: float = 0.0
    #: The final fit on the training and validation rows (:mod:`ml.jobs.refit`) at its
    #: longest (every epoch again); 0 when the run has none. Not part of the total: it trains
    #: the epochs validation picks, usually far fewer.
    final_fit: float = 0.0

    @property
    def seconds_total(self) -> float:
        return self.features + self.start_up + self.train_steps + self.loading + \
            self.validation + self.checkpoints

    @property
    def seconds_per_epoch(self) -> float:
        return (self.seconds_total - self.start_up - self.features) / max(1, self.epochs)

    @property
    def seconds_per_batch(self) -> float:
        return (self.train_steps + self.loading) / max(1, self.epochs * self.steps_per_epoch)

    def parts(self) -> dict[str, float]:
        """The parts of :attr:`seconds_total`, in the order a run goes through them."""
        return {"features": self.features, "start_up": self.start_up,
                "train_steps": self.train_steps,
                "loading": self.loading, "validation": self.validation,
                "checkpoints": self.checkpoints}

    def as_dict(self) -> dict:
        """Plain values (for JSON), with the derived totals."""
        return {**dataclasses.asdict(self), "seconds_total": self.seconds_total,
                "seconds_per_epoch": self.seconds_per_epoch,
                "seconds_per_batch": self.seconds_per_batch}


class _Clock(Callback):
    """Timestamps of a sample fit: each epoch's begin, batch ends, and the two sides of the
    checkpoint writer (this callback sits before it, :class:`_ClockAfter` after it)."""

    def __init__(self, should_stop: Callable[[], bool], sample_rss: Callable[[], None]):
        self.should_stop, self.sample_rss = should_stop, sample_rss
        self.began = 0.0
        self.epochs: list[dict] = []
        self.cancelled = False

    def on_fit_begin(self, logs) -> None:
        self.began = time.perf_counter()

    def on_epoch_begin(self, epoch, logs) -> None:
        self.epochs.append({"begin": time.perf_counter(), "batches": []})

    def on_batch_end(self, step, logs) -> None:
        now = self.epochs[-1]["batches"]
        now.append(time.perf_counter())
        if len(now) == 1:
            self.sample_rss()  # once an epoch: reading it each step would slow small steps
        if self.should_stop():
            self.cancelled = self.trainer.should_stop = True

    def on_epoch_end(self, epoch, logs) -> None:
        self.epochs[-1]["validated"] = time.perf_counter()


class _ClockAfter(Callback):
    """After the checkpoint writer: its end, and when to stop sampling."""

    def __init__(self, clock: _Clock):
        self.clock = clock

    def on_epoch_end(self, epoch, logs) -> None:
        clock = self.clock
        clock.epochs[-1]["written"] = time.perf_counter()
        clock.sample_rss()
        done = len(clock.epochs)
        steady = sum(e["written"] - e["begin"] for e in clock.epochs[1:])
        if done >= MAX_EPOCHS or (done >= MIN_EPOCHS and steady >= MIN_STEADY_SECONDS) or \
                (done >= 2 and time.perf_counter() - clock.began > MAX_SAMPLE_SECONDS):
            self.trainer.should_stop = True


def _phases(epoch: dict) -> dict[str, float]:
    """One sample epoch in parts: fixed cost, per-step time, validation, checkpoint."""
    t = epoch["batches"]
    first = t[0] - epoch["begin"]
    per_step = (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else first
    return {"fixed": max(0.0, first - per_step), "per_step": per_step,
            "validation": epoch["validated"] - t[-1], "checkpoint": epoch["written"] -
            epoch["validated"], "whole": epoch["written"] - epoch["begin"]}


def _sample(x, rows: np.ndarray):
    return x.take(rows) if isinstance(x, ImageFiles) else x[rows]


def _sample_rows(n: int, k: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


class _PeakMemory:
    """The highest memory reading: CUDA's allocation peak, or this process's resident set."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, None
        self._process = None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            return
        try:
            import psutil

            self._process = psutil.Process(os.getpid())
        except ImportError:  # pragma: no cover - a required dependency
            pass
        self.sample()

    def sample(self) -> None:
        if self._process is not None:
            self.peak = max(self.peak or 0, int(self._process.memory_info().rss))

    def read(self, extra_device_bytes: int = 0) -> int | None:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device)) + extra_device_bytes
        return self.peak


def _feed_seconds(x, y, bs: int, device: torch.device, augment, seed: int) -> float:
    """Seconds to gather (or decode) and augment one batch, as the run's data path does it:
    on the training thread for held data, in one worker process's code for streamed images."""
    rows = np.arange(min(len(x), bs))
    if isinstance(x, ImageFiles):
        from .loading import ImageFileDataset

        in_workers = augment if device.type == "cpu" else None
        dataset = ImageFileDataset(x.take(rows), y[rows], in_workers)
        start = time.perf_counter()
        dataset.__getitems__((augment_seed(seed, 0), list(range(len(rows)))))
    else:
        batches = TensorBatches(x[rows], y[rows], device)
        start = time.perf_counter()
        for i in range(2):
            xb, _ = batches.batch(batches.index(torch.from_numpy(rows)))
            xb = as_model_input(xb)
            if augment is not None:
                xb = augment(xb, seed=augment_seed(seed, i))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) / 2
    return time.perf_counter() - start


def _history_cost(trainer: Trainer, folder: Path, epochs: int) -> float:
    """Seconds a checkpoint write grows by, on average over the run, as the history it carries
    grows from the sample's few epochs to the run's: timed with the real writer at both lengths
    (the history is pickled twice in each checkpoint and ``history.jsonl`` rewritten whole)."""
    have = list(trainer.history)
    if not have or epochs <= len(have):
        return 0.0
    line = dict(have[-1])

    def write(n: int) -> float:
        trainer.history = [dict(line, epoch=i + 1) for i in range(n)]
        writer = RunWriter(folder, [json.dumps(h) for h in trainer.history[:-1]])
        writer.set_trainer(trainer)
        best = trainer.best
        saved = None if best is None else best.best_epoch
        if best is not None:
            best.best_epoch = -1  # the best-weights write is timed in the sample epochs
        try:
            began = time.perf_counter()
            writer.on_epoch_end(n - 1, dict(line, epoch=n))
            return time.perf_counter() - began
        finally:
            if best is not None:
                best.best_epoch = saved

    try:
        short = min(write(len(have)) for _ in range(2))
        long = min(write((epochs + 1) // 2) for _ in range(2))
    finally:
        trainer.history = have
    return max(0.0, long - short)


def _sample_fit(make_trainer: Callable[[list[Callback]], Trainer], data: tuple,
                should_stop: Callable[[], bool], memory: _PeakMemory,
                checkpoint_dir: Path | None, epochs: int) -> tuple[_Clock, float]:
    """Train on the sample until :class:`_ClockAfter` has seen enough epochs; the checkpoints
    go to a temporary folder (on the run's disk when *checkpoint_dir* exists). Returns the
    clock and :func:`_history_cost`."""
    clock = _Clock(should_stop, memory.sample)
    base = checkpoint_dir if checkpoint_dir is not None and checkpoint_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=".estimate-", dir=base) as tmp:
        trainer = make_trainer([clock, RunWriter(Path(tmp)), _ClockAfter(clock)])
        trainer.fit(*data)
        if clock.cancelled:
            raise Cancelled("The estimate was stopped.")
        growth = _history_cost(trainer, Path(tmp), epochs)
    return clock, growth


def estimate_fit(model: nn.Module, task: str, config: TrainingConfig, x_train, y_train,
                 x_val=None, y_val=None, *, augment=None, class_weights=None,
                 target_scale: float = 1.0, n_test: int = 0, checkpoint_dir: Path | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 seconds_preparing: float = 0.0) -> RunEstimate:
    """Time a short fit of a copy of *model* on a sample of the data and scale it to the run.

    Parameters
    ----------
    model : nn.Module
        Left untouched (a deep copy trains).
    task : str
    config : TrainingConfig
        The run's settings (batch size, epochs, optimizer, device, AMP ...).
    x_train, y_train, x_val, y_val : ndarray or ImageFiles
        The run's prepared splits; only a sample of the rows is trained on.
    augment, class_weights, target_scale
        As the run passes them to :class:`Trainer`.
    n_test : int
        Test rows evaluated after training (for ``seconds_finishing``).
    checkpoint_dir : Path, optional
        A folder on the disk the run will write to (default: the temporary folder's disk).
    should_stop : callable, optional
        Polled after every sample batch; when it returns True, :class:`Cancelled` is raised.
    seconds_preparing : float
        Measured by the caller; carried into the result.

    Raises
    ------
    Cancelled
        When *should_stop* asked for it.
    """
    should_stop = should_stop or (lambda: False)
    device = select_device(config.device)
    n_train, bs = len(x_train), max(1, min(int(config.batch_size), len(x_train)))
    n_val = 0 if x_val is None else len(x_val)
    rows = _sample_rows(n_train, bs * SAMPLE_STEPS, int(config.seed))
    val_rows = _sample_rows(n_val, VAL_SAMPLE_ROWS, int(config.seed) + 1)
    data = (_sample(x_train, rows), y_train[rows],
            _sample(x_val, val_rows) if n_val else None, y_val[val_rows] if n_val else None)
    sample_cfg = dataclasses.replace(config, epochs=MAX_EPOCHS, early_stopping=False)
    net = copy.deepcopy(model)

    def make_trainer(callbacks: list[Callback]) -> Trainer:
        return Trainer(net, task, sample_cfg, callbacks=callbacks, device=device,
                       augment=augment, class_weights=class_weights, target_scale=target_scale)

    memory = _PeakMemory(device)
    epochs, steps = int(config.epochs), math.ceil(n_train / bs)
    clock, growth = _sample_fit(make_trainer, data, should_stop, memory,
                                Path(checkpoint_dir) if checkpoint_dir is not None else None,
                                epochs)
    mid, start_up = _steady_phases(clock)
    streamed = isinstance(x_train, ImageFiles)
    workers = 0
    if streamed:
        from .loading import default_workers

        workers = default_workers()
    feed = _feed_seconds(x_train, y_train, bs, device, augment, int(config.seed))
    step_total = epochs * (mid["fixed"] + steps * mid["per_step"])
    loading = 0.0 if streamed and workers else min(step_total, epochs * steps * feed)
    val_per_row = mid["validation"] / max(1, len(val_rows))
    extra = 0
    if device.type == "cuda" and TensorBatches._fits(_nbytes(x_train, y_train), device):
        extra = _nbytes(x_train, y_train) - _nbytes(data[0], data[1])  # all of it on the GPU
    return RunEstimate(
        device=describe_device(device).label, epochs=epochs, steps_per_epoch=steps,
        batch_size=bs, n_train=n_train, n_val=n_val, start_up=start_up,
        train_steps=step_total - loading, loading=loading,
        validation=epochs * val_per_row * n_val,
        checkpoints=epochs * (mid["checkpoint"] + growth),
        loading_alongside=epochs * steps * feed if streamed and workers else 0.0,
        loader_workers=workers, augmented=augment is not None,
        seconds_preparing=float(seconds_preparing),
        seconds_finishing=val_per_row * int(n_test),
        peak_memory_bytes=memory.read(max(0, extra)),
        memory_kind="GPU" if device.type == "cuda" else "RAM",
        sampled_steps=sum(len(e["batches"]) for e in clock.epochs),
        sampled_epochs=len(clock.epochs))


def _steady_phases(clock) -> tuple[dict, float]:
    """The median time of each phase over the steady epochs, and the start-up seconds."""
    # The later epochs are the steady state; the first one's extra is start-up.
    steady = [_phases(e) for e in clock.epochs[1:]] or [_phases(clock.epochs[0])]
    mid = {k: statistics.median(p[k] for p in steady) for k in steady[0]}
    first = _phases(clock.epochs[0])
    start_up = max(0.0, clock.epochs[0]["begin"] - clock.began + first["whole"] - mid["whole"])
    return mid, start_up


def _nbytes(x, y) -> int:
    if isinstance(x, ImageFiles):
        return 0  # streamed: only batches are ever on the device
    return int(np.asarray(x).nbytes + np.asarray(y).nbytes)


# -- a rough estimate before any data is prepared (the Model page's proposal) --------------------
#: Share of a plain matrix product's speed a network's training reaches (attention, norms and
#: activations run slower than the big products); 0.5 matched MiniLM and EfficientNet-Lite0
#: fine-tuning on the 2-core test machine within a factor of about 1.5.
NETWORK_EFFICIENCY = 0.5
#: A training step costs about this many forward passes (backward: two more); LoRA skips the
#: weight gradients of the frozen backbone.
PASSES = {"finetune": 3.0, "lora": 2.2, "probe": 1.0, "scratch": 3.0}
_FLOPS: dict[str, float] = {}


def machine_flops(device: str = "auto") -> float:
    """Float32 multiply-add throughput of *device*, in FLOP/s: a 50 ms timed matrix product of a
    transformer's shape, measured once per process."""
    target = select_device(device)
    key = str(target)
    if key in _FLOPS:
        return _FLOPS[key]
    a = torch.randn(1024, 384, device=target)
    b = torch.randn(384, 1536, device=target)
    for _ in range(2):
        a @ b
    n, began = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - began < 0.05:
        a @ b
        n += 1
        if target.type == "cuda":
            torch.cuda.synchronize(target)
    _FLOPS[key] = 2.0 * 1024 * 384 * 1536 * n / max(time.perf_counter() - began, 1e-9)
    return _FLOPS[key]


def rough_seconds(macs_per_sample: int, n_train: int, n_val: int, epochs: int,
                  mode: str = "scratch", flops: float | None = None,
                  head_epochs: int = 0) -> float:
    """Seconds training will take from the network's cost alone (no sample epochs): what a
    proposal needs to know before the data is prepared. *mode* ``probe``: one forward pass of
    every row (the cached features), the head's epochs counted as free; ``finetune``: the
    first *head_epochs* pass forward only (the backbone is frozen), the others all the way."""
    flops = flops or machine_flops()
    per_forward = 2.0 * float(macs_per_sample) / (flops * NETWORK_EFFICIENCY)
    if mode == "probe":
        return per_forward * (n_train + n_val)
    frozen = min(max(0, int(head_epochs)), epochs) if mode == "finetune" else 0
    passes = frozen * 1.0 + (epochs - frozen) * PASSES.get(mode, 3.0)
    return per_forward * (passes * n_train + epochs * n_val)


#: Rows whose backbone features a probe's estimate computes (two of the run's batches).
FEATURE_SAMPLE_ROWS = 32


def estimate_probe(net: nn.Module, task: str, config: TrainingConfig, x_train, y_train,
                   x_val=None, y_val=None, **options) -> RunEstimate:
    """A linear probe's estimate: the frozen backbone's one pass over every training and
    validation row (its features, cached for the next run) timed on a sample, then
    :func:`estimate_fit` of the head alone on features of that shape. *net* is the whole
    network (a :class:`~ml.models.spec.TrainDeskNet` with a backbone first); *options* as
    :func:`estimate_fit` takes them (augmentation is not used by a probe)."""
    from .pretrained import _compute, head_network

    device = select_device(config.device)
    n_val = 0 if x_val is None else len(x_val)
    rows = _sample_rows(len(x_train), FEATURE_SAMPLE_ROWS, int(config.seed))
    sample = _sample(x_train, rows)
    copy_net = copy.deepcopy(net)
    memory = _PeakMemory(device)
    _compute(copy_net, _sample(x_train, rows[:2]), device, None, None)  # warm-up
    began = time.perf_counter()
    feats = _compute(copy_net, sample, device, None, options.get("should_stop"))
    per_row = (time.perf_counter() - began) / max(1, len(rows))
    memory.sample()
    dim = feats.shape[1]
    head = head_network(copy_net)
    options.pop("augment", None)
    zeros = np.zeros((len(x_train), dim), np.float32)
    val = np.zeros((n_val, dim), np.float32) if n_val else None
    fit = estimate_fit(head, task, config, zeros, y_train, val, y_val, **options)
    peak = max(v for v in (fit.peak_memory_bytes, memory.read()) if v is not None) \
        if fit.peak_memory_bytes is not None or memory.read() is not None else None
    return dataclasses.replace(fit, features=per_row * (len(x_train) + n_val),
                               peak_memory_bytes=peak)
