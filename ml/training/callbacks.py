"""Training callbacks: the hooks :class:`~ml.training.Trainer` calls, Keras-style.

Hooks receive plain Python values (floats, ints, strings), never tensors, so a callback can hand
them straight to another thread or to JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Logs = dict[str, Any]


class Callback:
    """Base class: override the hooks you need.

    ``on_batch_end(step, logs)`` is called after every batch. ``logs`` always has ``epoch``,
    ``batch``, ``batches`` and ``step``; it carries ``loss`` (the mean over the batches since the
    last read-out) only on the steps where the trainer read the running loss from the device -
    every ``log_every_n_steps`` batches and at the end of each epoch - so that a GPU is not
    synchronised on every batch. Those steps also carry ``lr`` (the learning rate of the step)
    and ``samples`` (samples trained so far in the epoch).
    """

    trainer: Any = None

    def set_trainer(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_fit_begin(self, logs: Logs) -> None:
        """Before the first epoch. ``logs`` describes the run (epochs, steps, device...)."""

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        """Before epoch *epoch* (0-based)."""

    def on_batch_end(self, step: int, logs: Logs) -> None:
        """After every optimisation step."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        """After an epoch and its validation; ``logs`` holds the epoch's metrics."""

    def on_fit_end(self, logs: Logs) -> None:
        """After training ends, stopped or not (``logs["stopped"]``)."""


class CallbackList(Callback):
    """Dispatch each hook to several callbacks in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks = list(callbacks)

    def set_trainer(self, trainer: Any) -> None:
        for cb in self.callbacks:
            cb.set_trainer(trainer)

    def wants(self, hook: str) -> bool:
        """Whether any callback implements *hook* (the trainer skips building the logs of a
        hook nobody listens to)."""
        base = getattr(Callback, hook)
        return any(getattr(type(cb), hook, base) is not base or hook in vars(cb)
                   for cb in self.callbacks)

    def on_fit_begin(self, logs: Logs) -> None:
        for cb in self.callbacks:
            cb.on_fit_begin(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_batch_end(self, step: int, logs: Logs) -> None:
        for cb in self.callbacks:
            cb.on_batch_end(step, logs)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_fit_end(self, logs: Logs) -> None:
        for cb in self.callbacks:
            cb.on_fit_end(logs)


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=print)``."""

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            if not name.startswith("on_"):
                raise TypeError(f"unknown hook {name}")
            setattr(self, name, fn)


class BestWeights(Callback):
    """Keep a CPU copy of the weights from the epoch with the best *monitor* value (lowest,
    or highest with ``mode="max"``; ``best_value`` is kept as lower-is-better).

    At the end of training the model gets those weights back (unless training was stopped before
    any validation ran). ``best_epoch`` tells which epoch it was.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min"):
        self.monitor = monitor
        self.sign = -1.0 if mode == "max" else 1.0
        self.best_value = float("inf")
        self.best_epoch = 0
        self.state: dict | None = None

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        value = logs.get(self.monitor)
        if value is not None and self.sign * value < self.best_value:
            self.best_value = self.sign * value
            self.best_epoch = int(logs["epoch"])
            self.state = {k: v.detach().to("cpu", copy=True)
                          for k, v in self.trainer.model.state_dict().items()}

    def on_fit_end(self, logs: Logs) -> None:
        if self.state is not None:
            self.trainer.model.load_state_dict(self.state)
        logs["best_epoch"] = self.best_epoch


class EarlyStopping(Callback):
    """Stop training when *monitor* (lower is better; higher with ``mode="max"``) has not
    improved by more than *min_delta* for *patience* epochs, as Keras' ``EarlyStopping``. The
    trainer reports the run as finished (``early_stopped``), not as stopped by the user."""

    def __init__(self, patience: int, min_delta: float = 0.0, monitor: str = "val_loss",
                 mode: str = "min"):
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.monitor = monitor
        self.sign = -1.0 if mode == "max" else 1.0
        self.best = float("inf")
        self.wait = 0
        self.stopped_epoch = 0

    def on_fit_begin(self, logs: Logs) -> None:
        self.best, self.wait, self.stopped_epoch = float("inf"), 0, 0

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        value = logs.get(self.monitor)
        if value is None:  # no validation set: the training loss
            value, sign = logs.get("loss"), 1.0
        else:
            sign = self.sign
        if value is None:
            return
        value = sign * value
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(logs["epoch"])
            self.trainer.early_stop = True


class FreezeLoaded(Callback):
    """Keep the parameters named *names* (loaded by transfer learning) fixed for the first
    *epochs* epochs, so a fresh last layer learns before the loaded body is adjusted.

    Frozen parameters get no gradient, which every optimizer skips; their BatchNorm statistics
    still follow the new data (that is what makes a loaded body fit new images).
    """

    def __init__(self, names: Iterable[str], epochs: int):
        self.names = set(names)
        self.epochs = int(epochs)

    def _set(self, trainable: bool) -> None:
        for name, param in self.trainer.model.named_parameters():
            if name in self.names:
                param.requires_grad_(trainable)

    def on_fit_begin(self, logs: Logs) -> None:
        if self.epochs > int(logs.get("first_epoch", 0)):  # a resumed run may be past them
            self._set(False)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if epoch + 1 == self.epochs:
            self._set(True)

    def on_fit_end(self, logs: Logs) -> None:
        self._set(True)
