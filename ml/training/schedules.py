"""Learning-rate schedules with warm-up, stepped by the trainer, and drawn by the Model page.

Every schedule is a factor of the base learning rate as a function of the position in the run
(in epochs, fractional within an epoch), so the trainer, a resumed run and the plot all agree:

* ``constant`` - 1;
* ``step`` - ``step_gamma ** (epochs since warm-up // step_size)``;
* ``cosine`` - half a cosine from 1 to 0 over the epochs after warm-up;
* ``onecycle`` - Smith's one-cycle policy: up from 1/25 to 1 over the warm-up (30% of the run
  when no warm-up is set), then a cosine down to 1/10,000;
* ``plateau`` - 1, multiplied by ``plateau_factor`` each time the validation loss has not
  improved for ``plateau_patience`` epochs (so it is only known while training).

Warm-up (``warmup_epochs``) rises linearly from nearly 0 to the full rate, step by step, before
the schedule starts (for one-cycle it is the rising phase).
"""

from __future__ import annotations

import math

import numpy as np

from ..runs.project import TrainingConfig


def lr_factor(config: TrainingConfig, position: float, epochs: int) -> float:
    """The schedule's factor at *position* epochs into a run of *epochs* (plateau: 1)."""
    epochs = max(int(epochs), 1)
    warmup = min(float(config.warmup_epochs), float(epochs))
    if config.schedule == "onecycle":
        rise = warmup if warmup > 0 else 0.3 * epochs
        if position < rise:
            return 1 / 25 + (1 - 1 / 25) * position / rise
        span = max(epochs - rise, 1e-9)
        t = min(max((position - rise) / span, 0.0), 1.0)
        return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * t))
    if warmup > 0 and position < warmup:
        return max(position / warmup, 1e-3)
    after = position - warmup
    if config.schedule == "step":
        return float(config.step_gamma) ** int(after // max(int(config.step_size), 1))
    if config.schedule == "cosine":
        span = max(epochs - warmup, 1e-9)
        t = min(max(after / span, 0.0), 1.0)
        return 0.5 * (1 + math.cos(math.pi * t))
    return 1.0


def schedule_curve(config: TrainingConfig, epochs: int, steps_per_epoch: int = 1) -> np.ndarray:
    """The learning rate at every step of a run: ``epochs * steps_per_epoch`` values (each
    taken at the start of its step). Plateau is drawn flat: its drops depend on validation."""
    steps = max(int(steps_per_epoch), 1)
    return np.array([config.lr * lr_factor(config, i / steps, epochs)
                     for i in range(max(int(epochs), 1) * steps)], dtype=np.float64)


class Scheduler:
    """Sets the optimizer's learning rate before every step; reduces it on plateaus.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    config : TrainingConfig
    epochs, steps_per_epoch : int
    """

    def __init__(self, optimizer, config: TrainingConfig, epochs: int, steps_per_epoch: int):
        self.optimizer = optimizer
        self.config = config
        self.epochs = max(int(epochs), 1)
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.plateau_scale = 1.0
        self.best = math.inf
        self.bad_epochs = 0
        self.per_step = config.schedule in ("cosine", "onecycle") or config.warmup_epochs > 0

    def factor(self, epoch: int, batch: int) -> float:
        position = epoch + batch / self.steps_per_epoch
        return lr_factor(self.config, position, self.epochs) * self.plateau_scale

    def before_step(self, epoch: int, batch: int) -> None:
        """Set the rate for batch *batch* (0-based) of epoch *epoch* (0-based)."""
        if not self.per_step and batch:
            return  # constant within the epoch: set once
        lr = self.config.lr * self.factor(epoch, batch)
        for group in self.optimizer.param_groups:
            # Discriminative rates (a pretrained backbone's earlier layers learn slower).
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def end_epoch(self, val_loss: float | None) -> None:
        """Count an epoch without a better validation loss (plateau)."""
        if self.config.schedule != "plateau" or val_loss is None or not math.isfinite(val_loss):
            return
        if val_loss < self.best * (1 - 1e-4):
            self.best, self.bad_epochs = val_loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.config.plateau_patience:
            self.plateau_scale *= float(self.config.plateau_factor)
            self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "best": self.best,
                "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale = float(state.get("plateau_scale", 1.0))
        self.best = float(state.get("best", math.inf))
        self.bad_epochs = int(state.get("bad_epochs", 0))


def make_scheduler(optimizer, config: TrainingConfig, epochs: int,
                   steps_per_epoch: int) -> Scheduler:
    """The :class:`Scheduler` for *config*."""
    return Scheduler(optimizer, config, epochs, steps_per_epoch)
