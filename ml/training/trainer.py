"""The training loop: a plain PyTorch loop with hooks and a stop flag.

Shaped after Keras 3's torch trainer and Lightning's fit loop: callbacks see Python floats only,
``should_stop`` is checked after every batch, and device memory is handed back when a run ends
(model and optimizer state moved to the CPU, caches emptied). Data that fits on the device is put
there once and batched by index - no per-sample DataLoader overhead; image sets too big to hold
are decoded batch by batch in DataLoader worker processes (:mod:`ml.training.loading`) - and
metrics are accumulated on the device and read out every ``log_every_n_steps`` steps, not every
batch.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch._dynamo  # noqa: F401 - see below
from torch import nn

from ..data.streaming import ImageFiles
from ..errors import OutOfMemory, TrainingError
from ..models.tabular import members, merged
from ..runs.project import TrainingConfig
from ..system.device import amp_dtype, describe_device, release_device_memory, select_device
from . import distributed
from .callbacks import BestWeights, Callback, CallbackList, EarlyStopping
from .checkpoint import earlier_epochs
from .schedules import Scheduler, make_scheduler

# Every torch optimizer imports torch._dynamo (and sympy) on its first construction. Done
# lazily, on a training QThread while Qt's thread pool was busy (thumbnails), that import hung
# the run for good (seen in the GUI tests, 2026-11-24). Importing it here, with this module,
# keeps that heavy import off worker threads.


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns."""

    history: list[dict] = field(default_factory=list)
    stopped: bool = False
    epochs_completed: int = 0
    seconds: float = 0.0
    samples_per_second: float = 0.0
    device: str = "cpu"
    best_epoch: int = 0
    #: Early stopping ended the run before its last epoch (a finished run, not a stopped one).
    early_stopped: bool = False


@dataclass(eq=False)
class _FitRun:
    """What :meth:`Trainer.fit` sets up once and each epoch reads (kept off the batch loop)."""

    device: torch.device
    info: object  # the device's description (its label names it in messages)
    gen: torch.Generator  # the data order
    train: object  # TensorBatches or LoaderBatches
    train_model: nn.Module  # the model, or its DistributedDataParallel wrapper
    dtype: torch.dtype | None  # autocast's, None without mixed precision
    autocast: Callable
    scaler: torch.amp.GradScaler
    weight: torch.Tensor | None  # class weights of the training loss
    n: int
    bs: int
    steps: int
    clip: float
    world: int
    rank: int

    @property
    def acc_dtype(self) -> torch.dtype:
        return torch.float32 if self.device.type == "mps" else torch.float64

    def close(self) -> None:
        """Stop the loader's workers and let go of the batches."""
        if hasattr(self.train, "close"):
            self.train.close()
        self.train = None


def as_model_input(xb: torch.Tensor) -> torch.Tensor:
    """Image bytes (``uint8``) become floats in [0, 1] on the device; other inputs pass as is.

    Images are kept as bytes until the last moment: a quarter of the memory, and a quarter of
    the host-to-device traffic.
    """
    if xb.dtype == torch.uint8:
        return xb.float().div_(255.0)
    return xb


class TensorBatches:
    """A dataset held as two tensors, batched by index.

    When the data fits in (a share of) the device's free memory it is moved there once. Otherwise
    it stays in pinned host memory and each batch is gathered into one of two pinned staging
    buffers and copied asynchronously, so the copy overlaps the previous step.
    """

    #: Share of free GPU memory the data may occupy before it is kept on the host instead.
    DEVICE_SHARE = 0.3
    #: Batches come out as they are stored: the trainer augments them.
    augments = False

    def __init__(self, x: np.ndarray, y: np.ndarray, device: torch.device,
                 channels_last: bool = False):
        self.device = device
        self.n = len(x)
        xt = torch.from_numpy(np.ascontiguousarray(x))
        yt = torch.from_numpy(np.ascontiguousarray(y))
        self.on_device = self._fits(xt.nbytes + yt.nbytes, device)
        self.channels_last = channels_last and xt.dim() == 4
        if self.on_device:
            self.x, self.y = xt.to(device), yt.to(device)
            if self.channels_last:
                self.x = self.x.contiguous(memory_format=torch.channels_last)
        else:
            self.x, self.y = xt.pin_memory(), yt.pin_memory()
            self._stage: list[tuple[torch.Tensor, torch.Tensor, torch.cuda.Event | None]] = []

    @classmethod
    def _fits(cls, nbytes: int, device: torch.device) -> bool:
        if device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes < cls.DEVICE_SHARE * free

    def index(self, perm: torch.Tensor) -> torch.Tensor:
        """Move a permutation to where the data lives."""
        return perm.to(self.device) if self.on_device else perm

    def batches(self, plan: list[torch.Tensor]):
        """Yield ``(x, y)`` for each index tensor of *plan*, in order."""
        for idx in plan:
            yield self.batch(idx)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.on_device:
            return self.x[idx], self.y[idx]
        return self._staged_batch(idx)

    def _staged_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._stage:
            for _ in range(2):
                bx = torch.empty((len(idx),) + tuple(self.x.shape[1:]), dtype=self.x.dtype,
                                 pin_memory=True)
                by = torch.empty((len(idx),) + tuple(self.y.shape[1:]), dtype=self.y.dtype,
                                 pin_memory=True)
                self._stage.append((bx, by, None))
            self._turn = 0
        bx, by, event = self._stage[self._turn]
        if event is not None:
            event.synchronize()  # the copy out of this buffer two batches ago must be done
        m = len(idx)
        torch.index_select(self.x, 0, idx, out=bx[:m])
        torch.index_select(self.y, 0, idx, out=by[:m])
        xb = bx[:m].to(self.device, non_blocking=True)
        yb = by[:m].to(self.device, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._stage[self._turn] = (bx, by, done)
        self._turn ^= 1
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, yb


def augment_seed(seed: int, step: int) -> int:
    """The augmentation seed of the batch trained at *step* (0-based) of a run seeded *seed*."""
    return (int(seed) * 1_000_003 + int(step)) % (2**63 - 1)


def monitored(monitor: str, task: str) -> tuple[str, str]:
    """The log key and direction (``min``/``max``) of a :data:`~ml.runs.project.MONITORS` choice."""
    if monitor == "val_metric":
        return ("val_accuracy", "max") if task == "classification" else ("val_mae", "min")
    return "val_loss", "min"


def loss_for(task: str, loss: str) -> str:
    """The loss a run of *task* uses for the setting *loss* (``auto`` resolved).

    Raises
    ------
    TrainingError
        For a loss of the other task (MSE for classes, BCE for a regression).
    """
    if loss == "auto":
        return "cross_entropy" if task == "classification" else "mse"
    fits = {"classification": ("cross_entropy", "bce"), "regression": ("mse", "huber")}
    if loss not in fits[task]:
        other = "regression" if task == "classification" else "classification"
        raise TrainingError(f"The {loss} loss is for {other}; this is {task}. Choose "
                            f"{' or '.join(fits[task])} (or automatic).")
    return loss


class Trainer:
    """Train a model on in-memory arrays.

    Parameters
    ----------
    model : nn.Module
        Returns class logits (classification) or one value per sample (regression).
    task : {"classification", "regression"}
    config : TrainingConfig
        Optimizer, learning rate, batch size, epochs, seed, device, AMP.
    callbacks : iterable of Callback
    log_every_n_steps : int
        How often the running loss is read from the device and passed to ``on_batch_end``.
    target_scale : float
        Regression: the target's standard deviation, so MAE is reported in original units.

    Attributes
    ----------
    should_stop : bool
        Set it (from any thread) to stop after the current batch.
    """

    def __init__(self, model: nn.Module, task: str, config: TrainingConfig, *,
                 callbacks: Iterable[Callback] = (), log_every_n_steps: int = 10,
                 target_scale: float = 1.0, device: torch.device | None = None,
                 augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 class_weights: Sequence[float] | None = None):
        config.validate()
        self.augment = augment
        self.class_weights = (None if class_weights is None
                              else torch.tensor(list(class_weights), dtype=torch.float32))
        self.model = model
        self.task = task
        self.config = config
        self.device = device or select_device(config.device)
        self.metric_name = "accuracy" if task == "classification" else "mae"
        self.monitor, mode = monitored(config.monitor, task)
        self.best = BestWeights(self.monitor, mode) if config.restore_best else None
        self.early_stop = False
        if config.early_stopping:
            callbacks = [*callbacks, EarlyStopping(config.patience, config.min_delta,
                                                   self.monitor, mode)]
        # BestWeights runs first at the end of fit, so later callbacks see the restored model.
        self.callbacks = CallbackList(([self.best] if self.best else []) + list(callbacks))
        self.callbacks.set_trainer(self)
        self.log_every_n_steps = max(1, int(log_every_n_steps))
        self.target_scale = float(target_scale)
        self.should_stop = False
        #: Set (from any thread) to hold training after the current batch; clear to go on.
        self.paused = threading.Event()
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Scheduler | None = None
        self.history: list[dict] = []
        self._step = 0
        self._generator: torch.Generator | None = None
        self._scaler: torch.amp.GradScaler | None = None
        self._loss_kind = ""  # the resolved loss, set when a fit starts

    # -- setup ----------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        grouping = getattr(self.model, "optimizer_groups", None)
        groups = grouping() if callable(grouping) else None
        if groups:  # discriminative rates; a group's lr_scale is kept by the schedule
            for group in groups:
                group["params"] = [p for p in group["params"] if p.requires_grad]
                group["lr"] = cfg.lr * group["lr_scale"]
            params = [g for g in groups if g["params"]]
        # Fused kernels update every parameter in one pass: on a CPU, Adam's step for a small
        # model is ~30% of the whole step unfused (measured in bench/bench_train.py).
        fused = ({"fused": True} if self.device.type in ("cuda", "cpu")
                 and all(p.dtype in (torch.float32, torch.float16, torch.bfloat16)
                         for p in self.model.parameters() if p.requires_grad) else {})
        if cfg.optimizer == "sgd":
            if cfg.nesterov and cfg.momentum <= 0:
                raise TrainingError("Nesterov momentum needs a momentum above 0 (e.g. 0.9); "
                                    "set one or switch Nesterov off.")
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay, nesterov=bool(cfg.nesterov),
                                   **fused)
        if cfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)

    def _loss_name(self) -> str:
        return loss_for(self.task, self.config.loss)

    def _loss(self, out: torch.Tensor, y: torch.Tensor,
              weight: torch.Tensor | None = None, training: bool = False) -> torch.Tensor:
        name = self._loss_kind or self._loss_name()
        out, y = members(out, y)  # an ensemble's members each learn from their own loss
        smoothing = float(self.config.label_smoothing) if training else 0.0
        if name == "cross_entropy":
            return nn.functional.cross_entropy(out.float(), y, weight=weight,
                                               label_smoothing=smoothing)
        if name == "bce":
            # One sigmoid per class against one-hot targets (smoothed towards 1/2).
            k = out.shape[1]
            target = nn.functional.one_hot(y, k).float()
            if smoothing:
                target = target * (1 - smoothing) + smoothing / 2
            per = nn.functional.binary_cross_entropy_with_logits(out.float(), target,
                                                                 reduction="none")
            if weight is not None:
                per = per * weight[y].unsqueeze(1)
            return per.sum(dim=1).mean()
        if name == "huber":
            return nn.functional.huber_loss(out.float().reshape(-1), y, delta=1.0)
        return nn.functional.mse_loss(out.float().reshape(-1), y)

    def _seed(self) -> torch.Generator:
        seed = int(self.config.seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return torch.Generator().manual_seed(seed)

    def _check_inputs(self, x: np.ndarray, y: np.ndarray, name: str) -> None:
        if len(x) == 0:
            raise TrainingError(f"The {name} set is empty.")
        if len(x) != len(y):
            raise TrainingError(f"The {name} set has {len(x)} inputs but {len(y)} targets.")

    # -- the loop -------------------------------------------------------------------------------
    def _wait_while_paused(self) -> float:
        """Hold until :attr:`paused` is cleared or a stop is asked for; return the seconds."""
        began = time.perf_counter()
        while self.paused.is_set() and not self.should_stop:
            time.sleep(0.02)
        return time.perf_counter() - began

    #: Under torchrun, every rank's random states at the last epoch's end (rank order).
    _rank_states: list[dict] | None = None

    def training_state(self) -> dict:
        """Everything needed to continue this fit exactly where it is (after an epoch): the
        optimizer, schedule, scaler, random states (python, numpy, torch, CUDA, the data
        order), the step count, the history and the best-weights and early-stopping records.
        Plain containers and tensors only: it loads with ``torch.load(weights_only=True)``."""
        best = self.best
        early = next((c for c in self.callbacks.callbacks if isinstance(c, EarlyStopping)),
                     None)
        rng = {**_random_states(), "data_order": self._generator.get_state()}
        if self._rank_states:  # under torchrun: every rank's own, gathered at the epoch's end
            rng["ranks"] = self._rank_states
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self._scaler.state_dict() if self._scaler.is_enabled() else {},
            "rng": rng,
            "step": self._step,
            "history": [dict(h) for h in self.history],
            "best": ({"value": best.best_value, "epoch": best.best_epoch, "state": best.state}
                     if best is not None else None),
            "early_stopping": ({"best": early.best, "wait": early.wait} if early else None),
        }

    def _restore(self, state: dict) -> None:
        """Undo :meth:`training_state`: continue the fit it was taken from."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state.get("scheduler") or {})
        if state.get("scaler") and self._scaler.is_enabled():
            self._scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        group = distributed.current()
        ranks = rng.get("ranks") or []
        # Each rank draws its own dropout masks (its share of a batch may be smaller): it goes
        # on from its own states, when the checkpoint was written by as many ranks.
        _set_random_states(ranks[group.rank] if group is not None and len(ranks) == group.world
                           else rng)
        self._generator.set_state(rng["data_order"])
        self._step = int(state["step"])
        self.history = [dict(h) for h in state["history"]]
        best = state.get("best")
        if best is not None and self.best is not None:
            self.best.best_value, self.best.best_epoch = best["value"], best["epoch"]
            self.best.state = best["state"]
        early = state.get("early_stopping")
        for cb in self.callbacks.callbacks:
            if isinstance(cb, EarlyStopping) and early is not None:
                cb.best, cb.wait = early["best"], early["wait"]

    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, *, resume: dict | None = None) -> FitResult:
        """Train for ``config.epochs`` epochs, or until :attr:`should_stop` is set.

        Parameters
        ----------
        resume : dict, optional
            A checkpoint (``{"epoch", "model", "training": training_state()}``): continue from
            it. With the same data and settings the result equals an uninterrupted fit. The
            epochs it had trained (its ``history``) reach the callbacks' ``on_fit_begin`` as
            ``earlier_epochs``, so live curves can show them first.

        Raises
        ------
        TrainingError
            If the loss becomes NaN or infinite (with advice on what to change).
        """
        self._check_inputs(x_train, y_train, "training")
        self.early_stop = False
        has_val = x_val is not None and y_val is not None and len(x_val) > 0
        cfg = self.config
        run = self._set_up_fit(x_train, y_train)
        result = FitResult(device=run.info.label)
        first_epoch = self._start_or_resume(resume, result)
        self.callbacks.on_fit_begin({
            "epochs": cfg.epochs, "steps_per_epoch": run.steps, "n_train": run.n,
            "n_val": len(x_val) if has_val else 0, "batch_size": run.bs,
            "device": run.info.label, "device_type": run.device.type,
            "amp": str(run.dtype).replace("torch.", "") if run.dtype else "off",
            "params": sum(p.numel() for p in self.model.parameters()),
            "first_epoch": first_epoch, "earlier_epochs": earlier_epochs(resume)})
        self._loss_kind = self._loss_name()
        self._fit_start = time.perf_counter()  # moved on by pauses: paused time is not training
        processed = 0
        try:
            for epoch in range(first_epoch, cfg.epochs):
                epoch_start = time.perf_counter()
                self.callbacks.on_epoch_begin(epoch, {"epoch": epoch + 1})
                loss_total, hit_total, seen = self._train_epoch(run, epoch)
                processed += seen
                n, bs = run.n, run.bs
                if self.should_stop and seen < n - (n % bs if n % bs < run.world else 0):
                    result.stopped = True
                    break
                logs = self._epoch_logs(epoch, loss_total, hit_total, seen, run.world,
                                        (x_val, y_val) if has_val else None)
                logs["epoch_seconds"] = time.perf_counter() - epoch_start
                logs["seconds"] = time.perf_counter() - self._fit_start
                self.history.append(logs)
                result.epochs_completed = epoch + 1
                self.callbacks.on_epoch_end(epoch, dict(logs))
                if run.world > 1:  # a signal may reach one rank after the epoch's readout
                    self.should_stop = any(distributed.gather(bool(self.should_stop)))
                if self.should_stop:
                    result.stopped = epoch + 1 < cfg.epochs
                    break
                if self.early_stop:
                    result.early_stopped = epoch + 1 < cfg.epochs
                    break
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            raise self._out_of_memory(exc, run) from None
        finally:
            result.seconds = time.perf_counter() - self._fit_start
            run.close()
            self._release()
        return self._end_fit(result, processed)

    def _set_up_fit(self, x_train, y_train) -> _FitRun:
        """Seed, move the model, make the optimizer, AMP, DDP, batches and the schedule."""
        cfg = self.config
        device = self.device
        conv = any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        channels_last = device.type == "cuda" and conv
        gen = self._generator = self._seed()
        self.model.to(device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._loss_name()  # a loss that does not fit the task stops here, before any work
        self.optimizer = self._make_optimizer()
        dtype = amp_dtype(device, cfg.amp)
        scaler = self._scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        if dtype is None:  # entering a disabled autocast still costs time on every batch
            autocast = contextlib.nullcontext
        else:
            autocast = functools.partial(torch.autocast, device.type, dtype=dtype)
        # Under torchrun: DistributedDataParallel, each rank taking its share of every batch.
        group = distributed.current()
        world, rank = (group.world, group.rank) if group else (1, 0)
        train_model = self.model
        if group is not None:
            from torch.nn.parallel import DistributedDataParallel

            train_model = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None,
                # Gradual unfreezing leaves frozen backbone groups without gradients.
                find_unused_parameters=bool(getattr(self.model, "has_backbone", False)))
        if isinstance(x_train, ImageFiles):  # too big to hold: decoded by worker processes
            from .loading import LoaderBatches

            # On a CPU the workers augment too, beside the decoding; a GPU augments faster.
            in_workers = self.augment if device.type == "cpu" else None
            train = LoaderBatches(x_train, y_train, device, channels_last, augment=in_workers,
                                  seed=int(cfg.seed))
        else:
            train = TensorBatches(x_train, y_train, device, channels_last)
        # Class weights shape the training loss only; validation loss stays comparable.
        weight = None if self.class_weights is None else self.class_weights.to(device)
        n, bs = train.n, min(int(cfg.batch_size), train.n)
        steps = math.ceil(n / bs)
        self.scheduler = make_scheduler(self.optimizer, cfg, cfg.epochs, steps)
        return _FitRun(device=device, info=describe_device(device), gen=gen, train=train,
                       train_model=train_model, dtype=dtype, autocast=autocast, scaler=scaler,
                       weight=weight, n=n, bs=bs, steps=steps, clip=float(cfg.grad_clip),
                       world=world, rank=rank)

    def _start_or_resume(self, resume: dict | None, result: FitResult) -> int:
        """The first epoch to train: 0, or the resumed checkpoint's, its state restored."""
        self._step = 0
        self.history = []
        if resume is None:
            return 0
        self.model.load_state_dict(resume["model"])
        self._restore(resume["training"])
        result.epochs_completed = int(resume["epoch"])
        return result.epochs_completed

    def _epoch_plan(self, run: _FitRun, perm: torch.Tensor) -> list[tuple]:
        """``(batch number, this rank's rows, rows of the whole batch)`` for each batch."""
        plan = []
        bs, world = run.bs, run.world
        for b in range(run.steps):
            idx = perm[b * bs:(b + 1) * bs]
            m_global = len(idx)
            if world > 1:
                if m_global < world:
                    continue  # a last sliver smaller than the group: skipped by all
                idx = torch.tensor_split(idx, world)[run.rank]
            plan.append((b, idx, m_global))
        return plan

    def _train_epoch(self, run: _FitRun, epoch: int) -> tuple[float, float, int]:
        """One pass over the training batches; the epoch's loss sum, hit sum and samples.

        The whole step stays inline in one loop: a call per batch would cost speed.
        """
        # Everything the inner loop needs, looked up once: a step of a small model takes well
        # under a millisecond on a CPU, so per-batch Python overhead shows in the speed.
        cfg, device, train, train_model = self.config, run.device, run.train, run.train_model
        optimizer, augment = self.optimizer, self.augment
        scaler, autocast = run.scaler, run.autocast
        loss_fn, metric_fn = self._loss, self._batch_metric
        dtype, weight, clip, world, steps = run.dtype, run.weight, run.clip, run.world, run.steps
        per_step_lr = self.scheduler.per_step
        scaling = scaler.is_enabled()
        batch_hooks = self.callbacks.wants("on_batch_end")
        every = self.log_every_n_steps
        self.model.train()
        perm = train.index(torch.randperm(run.n, generator=run.gen))
        # Running sums on the device (loss x samples; hits or absolute errors), read out every
        # few steps; counts stay exact past 2**24 in float64.
        loss_acc = torch.zeros((), device=device, dtype=run.acc_dtype)
        hit_acc = torch.zeros((), device=device, dtype=run.acc_dtype)
        seen = 0  # samples of this rank
        last = (0.0, 0)  # the loss sum and samples at the last read-out
        plan = self._epoch_plan(run, perm)
        last_b = plan[-1][0] if plan else -1
        fed = (train.batches([rows for _, rows, _ in plan], first_step=self._step)
               if train.augments else train.batches([rows for _, rows, _ in plan]))
        for (b, idx, m_global), (xb, yb) in zip(plan, fed):
            m = len(idx)
            xb = as_model_input(xb)
            if augment is not None and not train.augments:
                # Seeded by the step: the same draws wherever and whenever it runs.
                xb = augment(xb, seed=augment_seed(cfg.seed, self._step))
            if per_step_lr or b == 0:
                self.scheduler.before_step(epoch, b)
            if dtype is None:
                out = train_model(xb)
                loss = loss_fn(out, yb, weight, True)
            else:
                with autocast():
                    out = train_model(xb)
                    loss = loss_fn(out, yb, weight, True)
            # DDP averages gradients over ranks; weighting each rank's mean by its share makes
            # that the mean over the global batch, as in one process.
            step_loss = loss * (m * world / m_global) if world > 1 else loss
            optimizer.zero_grad(set_to_none=True)
            if scaling:
                scaler.scale(step_loss).backward()
                if clip > 0:
                    scaler.unscale_(optimizer)  # clip the true gradients
                    nn.utils.clip_grad_norm_(self.model.parameters(), clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                step_loss.backward()
                if clip > 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), clip)
                optimizer.step()
            # Detached tensors record no graph: no no_grad() block needed here.
            loss_acc.add_(loss.detach(), alpha=m)
            hit_acc.add_(metric_fn(out.detach(), yb))
            seen += m
            self._step += 1
            step = self._step
            readout = step % every == 0 or b == last_b
            logs = ({"epoch": epoch + 1, "batch": b + 1, "batches": steps, "step": step}
                    if readout or batch_hooks else None)
            if readout:
                last = self._read_out(run, logs, loss_acc, hit_acc, seen, last, epoch)
            if batch_hooks:
                self.callbacks.on_batch_end(step, logs)
            if world == 1:
                if self.paused.is_set():
                    self._fit_start += self._wait_while_paused()
                if self.should_stop:
                    break
            elif readout and self.should_stop:
                break
        return self._epoch_totals(run, loss_acc, hit_acc, seen)

    @staticmethod
    def _epoch_totals(run: _FitRun, loss_acc: torch.Tensor, hit_acc: torch.Tensor,
                      seen: int) -> tuple[float, float, int]:
        """The epoch's loss sum, hit sum and samples (over all ranks under torchrun)."""
        if run.world > 1:
            flags = torch.tensor([seen, 0.0], dtype=run.acc_dtype, device=run.device)
            loss_total, hit_total, seen, _ = distributed.all_reduce_sum(
                torch.cat([loss_acc.view(1), hit_acc.view(1), flags])).tolist()
            return loss_total, hit_total, int(seen)
        return float(loss_acc), float(hit_acc), seen

    def _read_out(self, run: _FitRun, logs: dict, loss_acc: torch.Tensor,
                  hit_acc: torch.Tensor, seen: int, last: tuple[float, int],
                  epoch: int) -> tuple[float, int]:
        """Every few steps: the running loss (one device sync) into *logs*; the new *last*."""
        if run.world > 1:  # every rank reads out at the same steps: stop together
            flags = torch.tensor([seen, float(self.should_stop)], dtype=run.acc_dtype,
                                 device=run.device)
            now = distributed.all_reduce_sum(
                torch.cat([loss_acc.view(1), hit_acc.view(1), flags])).tolist()
            total, done = now[0], int(now[2])
            self.should_stop = now[3] > 0
        else:
            total, done = float(loss_acc), seen  # the only device sync
        logs["loss"] = self._finite((total - last[0]) / (done - last[1]), epoch + 1)
        logs["lr"] = float(self.optimizer.param_groups[0]["lr"])
        logs["samples"] = done
        return total, done

    def _epoch_logs(self, epoch: int, loss_total: float, hit_total: float, seen: int,
                    world: int, val: tuple | None) -> dict:
        """The epoch's training and validation readings; the schedule steps on them."""
        logs = {"epoch": epoch + 1, "loss": self._finite(loss_total / seen, epoch + 1),
                self.metric_name: self._metric_value(hit_total, seen)}
        if val is not None:
            measured = self.evaluate_arrays(*val)
            logs["val_loss"] = self._finite(measured["loss"], epoch + 1)
            logs["val_" + self.metric_name] = measured[self.metric_name]
        if world > 1:  # rank 0's reading decides for all (BatchNorm statistics differ)
            logs = distributed.broadcast(logs)
            self._rank_states = _gathered_random_states()
        logs["lr"] = float(self.optimizer.param_groups[0]["lr"])
        self.scheduler.end_epoch(logs.get("val_loss", logs["loss"]))
        return logs

    def _out_of_memory(self, exc: RuntimeError, run: _FitRun) -> OutOfMemory:
        """The advice for a device out of memory, after letting go of the failed step."""
        # Drop every reference into the failed step (the epoch's frame holds the batch and
        # its outputs) before the memory is given back.
        exc.__traceback__ = None
        self.optimizer.zero_grad(set_to_none=True)
        epoch_now = len(self.history) + 1
        bs = run.bs
        return OutOfMemory(
            f"The {run.info.label} ran out of memory in epoch {epoch_now} with batches of "
            f"{bs}. Try a batch size of {max(1, bs // 2)} (or a smaller model or image "
            f"size); the epochs before it are saved, so Resume continues from there.",
            batch_size=bs, epoch=epoch_now)

    def _end_fit(self, result: FitResult, processed: int) -> FitResult:
        """Throughput and history into *result*; ``on_fit_end`` may name the best epoch."""
        result.samples_per_second = processed / result.seconds if result.seconds > 0 else 0.0
        result.history = list(self.history)
        end_logs = {"stopped": result.stopped, "epochs_completed": result.epochs_completed,
                    "seconds": result.seconds, "samples_per_second": result.samples_per_second}
        self.callbacks.on_fit_end(end_logs)
        result.best_epoch = int(end_logs.get("best_epoch") or result.epochs_completed)
        return result

    def _batch_metric(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = merged(out)
        if self.task == "classification":
            return (out.argmax(dim=1) == y).sum()
        return (out.float().reshape(-1) - y).abs().sum()

    def _metric_value(self, total: float, n: int) -> float:
        if self.task == "classification":
            return total / n
        return total / n * self.target_scale

    @staticmethod
    def _finite(value: float, epoch: int) -> float:
        if not math.isfinite(value):
            raise TrainingError(
                f"The loss became {'NaN' if math.isnan(value) else 'infinite'} in epoch {epoch}: "
                f"training diverged (the steps grew too large). Lower the learning rate (try 10 "
                f"times smaller), turn on gradient clipping (e.g. 1.0), or check the data for "
                f"extreme or broken values. The epochs before it are saved in the run.")
        return value

    def _release(self) -> None:
        """Move model and optimizer state off the device and give the memory back."""
        self.model.to("cpu")
        if self.optimizer is not None:
            for state in self.optimizer.state.values():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and value.device.type != "cpu":
                        state[key] = value.to("cpu")
        release_device_memory(self.device)

    # -- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_raw(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Model outputs (logits or standardised values) for *x*, as float32 numpy."""
        return predict_raw(self.model, x, self.device, batch_size or 4 * self.config.batch_size)

    @torch.no_grad()
    def evaluate_arrays(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Loss and the task metric on *x*, *y* (model left in eval mode)."""
        out = torch.from_numpy(predict_raw(self.model, x, self.device,
                                           max(1024, 4 * self.config.batch_size)))
        yt = torch.from_numpy(y)
        loss = float(self._loss(out, yt))
        metric = self._metric_value(float(self._batch_metric(out, yt)), len(y))
        return {"loss": loss, self.metric_name: metric}


@torch.no_grad()
def predict_raw(model: nn.Module, x: np.ndarray, device: torch.device | str = "cpu",
                batch_size: int = 1024) -> np.ndarray:
    """Run *model* in eval mode over *x* in batches and return float32 outputs on the CPU."""
    device = torch.device(device)
    model.eval()
    moved = next(model.parameters()).device != device
    if moved:
        model.to(device)
    outs = []
    try:
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device)
            xb = as_model_input(xb)
            outs.append(model(xb).float().cpu())
    finally:
        if moved:
            model.to("cpu")
    if not outs:
        return np.zeros((0, 1), np.float32)
    return torch.cat(outs).numpy()


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA's own type, or MPS's RuntimeError)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _random_states() -> dict:
    """This process's random states (python, numpy, torch, CUDA) as plain values."""
    np_state = np.random.get_state()
    return {"python": _plain(random.getstate()),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]),
                      int(np_state[3]), float(np_state[4])],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _gathered_random_states() -> list[dict]:
    """Every rank's :func:`_random_states`, in rank order. They travel as ``torch.save``
    bytes: tensors inside a gathered object do not unpickle in this PyTorch (its legacy
    storage loader fails on them)."""
    buffer = io.BytesIO()
    torch.save(_random_states(), buffer)
    return [torch.load(io.BytesIO(blob), weights_only=True)
            for blob in distributed.gather(buffer.getvalue())]


def _set_random_states(rng: dict) -> None:
    """Undo :func:`_random_states`."""
    random.setstate(_tuples(rng["python"]))
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _plain(value):
    """Tuples to lists, recursively (``random.getstate()`` for a weights-only checkpoint)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _tuples(value):
    """Undo :func:`_plain` for ``random.setstate``."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
