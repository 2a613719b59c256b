"""Fine-tuning a causal language model on packed rows: LoRA (peft) or every weight.

The rows come from :func:`ml.data.chat.pack`: token ids, labels (``IGNORE`` where the loss does
not count: prompts, padding) and an attention mask. The loss is the mean negative log-likelihood
of the counted tokens, each predicted from the tokens before it; perplexity is its exponential
over a whole split (:func:`perplexity`).

Plain callbacks and a stop flag, as :class:`~ml.training.trainer.Trainer` has: ``on_epoch_end
(epoch, logs)`` gets Python floats only. :meth:`LMTrainer.state` is everything needed to go on
after an epoch (the trainable weights, AdamW, the random states), plain tensors that load with
``weights_only=True``; a fit resumed from it ends with the same weights as one never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.chat import IGNORE
from ..errors import TrainingError


@dataclass
class LMSettings:
    """How a causal LM is fine-tuned (``mode``: ``lora`` or ``full``)."""

    mode: str = "lora"
    epochs: int = 3
    lr: float = 2e-4
    batch_size: int = 4
    seed: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    #: The linear layers LoRA adapts (empty: the model type's attention projections).
    targets: tuple[str, ...] = ()
    #: Recompute activations in the backward pass: less memory, about a third more time.
    gradient_checkpointing: bool = False
    #: Autocast on a GPU: ``bf16``, ``fp16`` (with loss scaling) or ``None`` (float32).
    autocast: torch.dtype | None = None


class NonFiniteLoss(TrainingError):
    """The loss became NaN or infinite (the job may go back to its last epoch and retry)."""


@dataclass
class LMFit:
    """What :meth:`LMTrainer.fit` returns."""

    history: list[dict] = field(default_factory=list)
    stopped: bool = False
    epochs_completed: int = 0
    seconds: float = 0.0
    tokens_per_second: float = 0.0


def add_lora(model, settings: LMSettings, targets: tuple[str, ...]):
    """*model* wrapped with LoRA adapters on *targets* (peft); only they train."""
    import warnings

    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type="CAUSAL_LM", r=settings.lora_rank,
                        lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                        target_modules=list(settings.targets or targets))
    with warnings.catch_warnings():  # peft asks transformers about deprecated properties
        warnings.simplefilter("ignore")
        return get_peft_model(model, config)


def model_device(model) -> torch.device:
    """Where *model*'s weights are."""
    return next(model.parameters()).device


def token_nll(model, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
              autocast: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood of the counted tokens of a batch, and how many (the
    batch is moved to the model's device; *autocast* runs the forward pass in that dtype)."""
    device = model_device(model)
    x, y, mask = (t.to(device, non_blocking=True) for t in (x, y, mask))
    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
        logits = model(input_ids=x, attention_mask=mask).logits[:, :-1]
    target = y[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                            target.reshape(-1), ignore_index=IGNORE,
                                            reduction="sum")
    return nll, (target != IGNORE).sum()


@torch.no_grad()
def perplexity(model, rows: tuple[np.ndarray, np.ndarray, np.ndarray],
               batch_size: int = 8, autocast: torch.dtype | None = None) -> float:
    """The perplexity of *model* on packed *rows* (``inf`` when no token counts)."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(rows[0]), batch_size):
            x, y, m = (torch.as_tensor(a[start:start + batch_size]) for a in rows)
            nll, n = token_nll(model, x, y, m, autocast)
            total, count = total + float(nll), count + int(n)
    finally:
        model.train(was)
    if not count:
        return math.inf
    mean = total / count
    return math.exp(mean) if mean < 700 else math.inf  # exp overflows a float past ~709


class LMTrainer:
    """Fine-tune *model* (a transformers causal LM, already wrapped with LoRA for ``lora``)."""

    def __init__(self, model, settings: LMSettings, *,
                 on_epoch_end: Callable[[int, dict], None] | None = None,
                 on_batch_end: Callable[[dict], None] | None = None):
        self.model, self.settings = model, settings
        self.on_epoch_end = on_epoch_end or (lambda epoch, logs: None)
        #: After every step: ``{"epoch", "batch", "batches", "loss"}`` (plain numbers).
        self.on_batch_end = on_batch_end or (lambda logs: None)
        self.should_stop = False
        if settings.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        self.trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW([p for _, p in self.trainable], lr=settings.lr,
                                           weight_decay=settings.weight_decay)
        self.generator = torch.Generator().manual_seed(int(settings.seed))
        self.history: list[dict] = []
        # fp16 needs its loss scaled so small gradients do not vanish; bf16 and float32 do not.
        self.scaler = torch.amp.GradScaler(model_device(model).type,
                                           enabled=settings.autocast == torch.float16)

    def state(self, epoch: int) -> dict:
        """Everything needed to go on after *epoch* (tensors and plain values only); the
        weights are copied to the CPU, so a kept state costs no device memory."""
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"epoch": int(epoch),
                "trainable": {n: p.detach().to("cpu", copy=True) for n, p in self.trainable},
                "optimizer": self.optimizer.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "cuda": cuda,
                        "order": self.generator.get_state()},
                "scaler": self.scaler.state_dict(),
                "history": [dict(h) for h in self.history]}

    def _restore(self, state: dict) -> int:
        params = dict(self.trainable)
        with torch.no_grad():
            for name, value in state["trainable"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # a retry after a NaN goes on at a lower rate
            group["lr"] = self.settings.lr
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"].get("cuda") and torch.cuda.is_available():  # dropout on the GPU
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.generator.set_state(state["rng"]["order"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.history = [dict(h) for h in state["history"]]
        return int(state["epoch"])

    def fit(self, train: tuple[np.ndarray, ...], val: tuple[np.ndarray, ...] | None = None, *,
            resume: dict | None = None) -> LMFit:
        """Train for ``settings.epochs`` epochs over the packed *train* rows; after each, the
        perplexity on *val*. Stops after the current batch once :attr:`should_stop` is set.

        Raises
        ------
        NonFiniteLoss
            When the loss becomes NaN or infinite.
        """
        first = self._restore(resume) if resume is not None else 0
        if resume is None:
            torch.manual_seed(int(self.settings.seed))
        result = LMFit(epochs_completed=first, history=self.history)
        began, tokens, trained = time.perf_counter(), 0, 0.0
        self.model.train()
        for epoch in range(first, self.settings.epochs):
            epoch_began = time.perf_counter()
            loss, counted, seen = self._epoch(train, epoch)
            epoch_seconds = time.perf_counter() - epoch_began
            tokens, trained = tokens + seen, trained + epoch_seconds
            if self.should_stop and seen < int(train[2].sum()):
                result.stopped = True
                break
            logs = {"epoch": epoch + 1, "loss": loss, "tokens": seen,
                    "tokens_per_second": seen / epoch_seconds if epoch_seconds > 0 else 0.0,
                    "seconds": time.perf_counter() - began}
            if val is not None and len(val[0]):
                logs["val_perplexity"] = perplexity(self.model, val, self.settings.batch_size,
                                                    self.settings.autocast)
            self.history.append(logs)
            result.epochs_completed = epoch + 1
            self.on_epoch_end(epoch, dict(logs))
            if self.should_stop:
                result.stopped = epoch + 1 < self.settings.epochs
                break
        result.seconds = time.perf_counter() - began
        # Training steps only: validation, checkpoints and sample answers are not throughput.
        result.tokens_per_second = tokens / trained if trained > 0 else 0.0
        self.model.eval()
        return result

    def _epoch(self, train: tuple[np.ndarray, ...], epoch: int) -> tuple[float, int, int]:
        """One pass in a seeded order: ``(mean loss per counted token, counted, tokens)``."""
        x_all, y_all, m_all = (torch.as_tensor(a) for a in train)
        order = torch.randperm(len(x_all), generator=self.generator)
        bs = int(self.settings.batch_size)
        total, counted, seen = 0.0, 0, 0
        for start in range(0, len(order), bs):
            if self.should_stop:
                break
            idx = order[start:start + bs]
            seen += int(m_all[idx].sum())
            nll, n = token_nll(self.model, x_all[idx], y_all[idx], m_all[idx],
                               self.settings.autocast)
            if int(n) == 0:  # prompts only: nothing to learn from this batch
                continue
            loss = nll / n
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"The loss became {float(loss.detach())} in epoch "
                                    f"{epoch + 1}. Lower the learning rate (now "
                                    f"{self.settings.lr:g}).")
            self._step(loss)
            total, counted = total + float(nll.detach()), counted + int(n)
            self.on_batch_end({"epoch": epoch + 1, "batch": start // bs + 1,
                               "batches": math.ceil(len(order) / bs),
                               "loss": float(loss.detach())})
        return (total / counted if counted else math.nan), counted, seen

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.settings.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for _, p in self.trainable],
                                           self.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
