"""The learning-rate range test (Leslie Smith, 2015; as fastai's ``lr_find``).

The network trains for a few dozen mini-batches while the learning rate grows exponentially from
tiny to huge; the loss first barely moves, then falls, then explodes. A good rate lies where it
falls fastest. The test runs through the real :class:`~.trainer.Trainer` - its optimizer, loss,
class weights, mixed precision, batching and augmentation - so the curve is the one a run would
see, and afterwards the network and the optimizer are put back exactly as they were: the test
teaches the model nothing.

The proposal follows fastai's two heuristics, combined: the *steepest* point of the smoothed
curve (its most negative slope against log lr), bounded above by a tenth of the rate where the
smoothed loss is lowest (the *minimum / 10* rule), because the steepest point can sit close to
the edge of the explosion.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import Cancelled, TrainingError
from ..runs.project import TrainingConfig
from .trainer import Trainer, _FitRun, as_model_input, augment_seed

#: The smoothing of the loss curve (an exponential moving average, bias-corrected).
BETA = 0.98
#: The test ends once the smoothed loss is this many times its best: it has exploded.
EXPLODED = 4.0
#: Fewer recorded steps than this make no curve worth reading.
MIN_POINTS = 10


@dataclass
class LRFinderResult:
    """What :func:`find_lr` measured and proposes.

    Attributes
    ----------
    lrs, losses : list of float
        The learning rate of each step and the smoothed training loss after it.
    suggested : float
        The proposed learning rate.
    reason : str
        Why, in plain words (for a label or a console line).
    steepest, lowest : float
        The rate where the smoothed loss falls fastest, and where it is lowest.
    exploded : bool
        The test stopped early because the loss blew up (the usual ending).
    """

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    suggested: float = float("nan")
    reason: str = ""
    steepest: float = float("nan")
    lowest: float = float("nan")
    exploded: bool = False

    def rows(self, count: int = 8) -> list[tuple[float, float]]:
        """About *count* ``(lr, loss)`` pairs spread over the curve, for a compact table."""
        if not self.lrs:
            return []
        picks = np.unique(np.linspace(0, len(self.lrs) - 1, max(2, count)).round().astype(int))
        return [(self.lrs[i], self.losses[i]) for i in picks]


def find_lr(net: nn.Module, task: str, training_config: TrainingConfig, x_train, y_train, *,
            device: torch.device | str, start: float = 1e-7, end: float = 10.0,
            steps: int = 100, should_stop: Callable[[], bool] | None = None,
            progress: Callable[[float, str], None] | None = None,
            class_weights: Sequence[float] | None = None,
            augment: Callable | None = None) -> LRFinderResult:
    """Run the range test on *net* and propose a learning rate; *net* ends as it began.

    Parameters
    ----------
    net : nn.Module
        The network as training would start from it (not changed: its weights, buffers and
        train/eval modes are restored afterwards).
    task : {"classification", "regression"}
    training_config : TrainingConfig
        The optimizer, loss, batch size, AMP and seed of the run (its schedule is ignored: the
        test drives the rate itself).
    x_train, y_train
        The training split, as :meth:`Trainer.fit` takes it; short data is cycled over.
    device : torch.device or str
    start, end : float
        The first and the last learning rate tried.
    steps : int
        Mini-batches at most (one rate each).
    should_stop : callable, optional
        Polled after every batch; True raises :class:`~ml.errors.Cancelled`.
    progress : callable, optional
        ``progress(fraction, message)``.
    class_weights, augment
        As the :class:`Trainer` takes them.

    Raises
    ------
    TrainingError
        When the curve cannot be read (it says why, and to keep the current rate).
    Cancelled
        When *should_stop* returned True.
    """
    current = float(training_config.lr)
    if not (0 < start < end) or int(steps) < MIN_POINTS:
        raise TrainingError(f"The learning-rate test needs 0 < start < end and at least "
                            f"{MIN_POINTS} steps. Keep the current rate ({current:g}).")
    # The test sets the rate itself, every step: no schedule, warm-up or early stopping.
    config = dataclasses.replace(training_config, schedule="constant", warmup_epochs=0,
                                 early_stopping=False, restore_best=False)
    trainer = Trainer(net, task, config, device=torch.device(device), augment=augment,
                      class_weights=class_weights)
    trainer._check_inputs(x_train, y_train, "training")
    saved = _Saved.take(net)
    run = trainer._set_up_fit(x_train, y_train)
    try:
        if run.world > 1:
            raise TrainingError(f"The learning-rate test runs in one process; start it without "
                                f"torchrun. Keep the current rate ({current:g}).")
        opt_state = copy.deepcopy(trainer.optimizer.state_dict())
        trainer._loss_kind = trainer._loss_name()
        try:
            lrs, losses, exploded = _sweep(trainer, run, start, end, int(steps),
                                           should_stop or (lambda: False), progress)
        finally:
            trainer.optimizer.load_state_dict(opt_state)
    finally:
        run.close()
        trainer._release()
        saved.put_back(net)
    return suggest(lrs, losses, current, exploded=exploded)


@dataclass
class _Saved:
    """A network's weights, buffers, modes and place, and the random generators' states."""

    state: dict
    modes: list[bool]
    device: torch.device
    rng: tuple

    @classmethod
    def take(cls, net: nn.Module) -> _Saved:
        first = next(net.parameters(), None)
        return cls(state=copy.deepcopy(net.state_dict()),
                   modes=[m.training for m in net.modules()],
                   device=first.device if first is not None else torch.device("cpu"),
                   rng=(random.getstate(), np.random.get_state(), torch.get_rng_state()))

    def put_back(self, net: nn.Module) -> None:
        net.to(self.device)
        net.load_state_dict(self.state)  # copies into the same tensors: exactly as before
        for module, mode in zip(net.modules(), self.modes):
            module.training = mode
        # The test seeds and draws from the global generators; whoever called it should not
        # find them moved.
        random.setstate(self.rng[0])
        np.random.set_state(self.rng[1])
        torch.set_rng_state(self.rng[2])


def _batches(trainer: Trainer, run: _FitRun):
    """Training batches without end: shuffled epochs, one after another."""
    step = 0
    while True:
        perm = run.train.index(torch.randperm(run.n, generator=run.gen))
        rows = [idx for _, idx, _ in trainer._epoch_plan(run, perm)]
        fed = (run.train.batches(rows, first_step=step) if run.train.augments
               else run.train.batches(rows))
        for batch in fed:
            step += 1
            yield batch


def _sweep(trainer: Trainer, run: _FitRun, start: float, end: float, steps: int,
           should_stop: Callable[[], bool], progress) -> tuple[list[float], list[float], bool]:
    """Train one batch per rate, the rate growing exponentially; the rates, smoothed losses
    and whether the loss exploded."""
    factor = (end / start) ** (1.0 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    trainer.model.train()
    feed = _batches(trainer, run)
    for i in range(steps):
        lr = start * factor**i
        value = _step(trainer, run, next(feed), lr, i)
        if not math.isfinite(value):
            return lrs, losses, True
        average = BETA * average + (1 - BETA) * value
        smoothed = average / (1 - BETA ** (i + 1))
        lrs.append(lr)
        losses.append(smoothed)
        if i >= MIN_POINTS - 1:
            best = min(best, smoothed)
        if progress is not None:
            progress((i + 1) / steps, f"Trying learning rate {lr:.1e} ({i + 1} of {steps})")
        if should_stop():
            raise Cancelled("The learning-rate test was stopped; the learning rate is "
                            "unchanged.")
        # The first few smoothed values are averages of a handful of batches: too noisy to be
        # the best to compare with (a lucky first batch would end the test at once).
        if i >= MIN_POINTS and smoothed > EXPLODED * best:
            return lrs, losses, True
    return lrs, losses, False


def _step(trainer: Trainer, run: _FitRun, batch, lr: float, i: int) -> float:
    """One optimizer step at *lr*, as :meth:`Trainer._train_epoch` takes it; its loss."""
    optimizer, scaler = trainer.optimizer, run.scaler
    for group in optimizer.param_groups:
        # Discriminative rates (a pretrained backbone's earlier layers) keep their ratios:
        # the test moves the base rate, as a schedule does.
        group["lr"] = lr * group.get("lr_scale", 1.0)
    xb, yb = batch
    xb = as_model_input(xb)
    if trainer.augment is not None and not run.train.augments:
        xb = trainer.augment(xb, seed=augment_seed(trainer.config.seed, i))
    with run.autocast():
        out = run.train_model(xb)
        loss = trainer._loss(out, yb, run.weight, True)
    optimizer.zero_grad(set_to_none=True)
    if scaler.is_enabled():
        scaler.scale(loss).backward()
        if run.clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(trainer.model.parameters(), run.clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if run.clip > 0:
            nn.utils.clip_grad_norm_(trainer.model.parameters(), run.clip)
        optimizer.step()
    return float(loss.detach())


def suggest(lrs: Sequence[float], losses: Sequence[float], current: float, *,
            exploded: bool = False) -> LRFinderResult:
    """The proposal for a measured curve (smoothed losses): the steepest descent, at most a
    tenth of the rate with the lowest loss.

    Raises
    ------
    TrainingError
        For a curve too short to read, or one whose loss never falls.
    """
    keep = f"Keep the current rate ({current:g})."
    lrs, losses = [float(v) for v in lrs], [float(v) for v in losses]
    if not lrs:
        raise TrainingError(f"The learning-rate test could not find a rate: the loss was not "
                            f"a number from the first batch on (check the data for broken or "
                            f"extreme values). {keep}")
    if len(lrs) < MIN_POINTS:
        raise TrainingError(f"The learning-rate test could not find a rate: the loss blew up "
                            f"after only {len(lrs)} steps (at {lrs[-1]:.1e}). {keep}")
    # The first smoothed values average only a few batches (one lucky first batch is not the
    # lowest loss): the median of them is the level the loss starts from, and the slope and
    # the lowest point are looked for after them.
    settled = MIN_POINTS // 2
    low = settled + int(np.argmin(losses[settled:]))
    if low < settled + 2 or losses[low] >= 0.99 * float(np.median(losses[:MIN_POINTS])):
        raise TrainingError(f"The learning-rate test could not find a rate: the loss did not "
                            f"fall at any rate from {lrs[0]:.0e} to {lrs[-1]:.0e}. {keep}")
    slopes = np.gradient(np.asarray(losses[settled:low + 1]), np.log10(lrs[settled:low + 1]))
    steep = lrs[settled + int(np.argmin(slopes))]
    lowest = lrs[low]
    bound = lowest / 10
    if steep <= bound:
        chosen = steep
        reason = (f"The loss falls fastest at {steep:.2g} (steepest slope), well below where "
                  f"it is lowest ({lowest:.2g}).")
    else:
        chosen = float(f"{bound:.2g}")
        reason = (f"The loss falls fastest at {steep:.2g} (steepest slope), close to where it "
                  f"is lowest ({lowest:.2g}); a rate 10x below that lowest point, "
                  f"{chosen:.2g}, is safer.")
    return LRFinderResult(lrs=lrs, losses=losses, suggested=float(f"{chosen:.2g}"),
                          reason=reason, steepest=steep, lowest=lowest, exploded=exploded)
