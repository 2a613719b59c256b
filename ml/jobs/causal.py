"""Fine-tuning a causal language model as a run: checked, split, trained, measured and saved.

:class:`CausalLMJob` is what ``main.py train --task causal-lm`` and the app's language-model
project run. Before anything is written it reads the model folder (:mod:`ml.models.causal_lm`)
and the examples (:mod:`ml.data.chat`), refuses a model whose training would not fit in memory
(with the numbers), and encodes every example through the model's chat template. Then the run
folder is made (see :mod:`ml.runs.folder`, "Language-model runs"), the perplexity of the base
model is measured on the validation and test examples, and the base model answers the first
test questions. After every epoch: a checkpoint (a kill loses at most the epoch in progress),
the best epoch's weights, the history line and the model's answer to a fixed prompt, so the
user sees it learn. A NaN loss goes back to the last epoch and retries at half the rate.
At the end, the best epoch's model answers the same questions, beside the base model's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.chat import IGNORE, ChatData, encode_examples, health, pack, read_chat
from ..errors import Cancelled, DataError, NothingToDo, RunError, TrainingError
from ..evaluation.generate import Continue, Sampling, generate
from ..models.causal_lm import CausalLM, inspect_causal_lm, load_causal_lm, memory_needed
from ..models.library import available_memory, format_bytes
from ..runs.folder import LM_WEIGHTS, RunFolder, data_fingerprint, now_iso
from ..runs.project import LanguageModelConfig
from ..system.device import amp_dtype, describe_device, release_device_memory, select_device
from ..system.resources import default_runs_dir
from ..training.causal import (
    LMSettings,
    LMTrainer,
    NonFiniteLoss,
    add_lora,
    perplexity,
    token_nll,
)

#: Share of the examples held out for validation and for the test, each (at least one).
HELD_OUT = 0.1
#: The fewest usable examples a fine-tuning takes (training, validation and test need some).
MIN_EXAMPLES = 5
#: Tokens of the answer to the fixed prompt after each epoch, and of the side-by-side answers.
SAMPLE_TOKENS, ANSWER_TOKENS = 48, 64
#: Test questions the base and the fine-tuned model both answer.
COMPARED = 3
#: Times a NaN loss is retried from the last epoch, each at half the learning rate.
NAN_RETRIES = 2
#: Bytes of each weights file hashed at evenly spaced places for the base model's fingerprint.
FINGERPRINT_SAMPLES, FINGERPRINT_CHUNK = 16, 65536


@dataclass
class LMResult:
    """A finished (or stopped) language-model run."""

    run_dir: Path
    name: str
    status: str
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryPlan:
    """What training takes against what the machine has, before anything is loaded."""

    model: CausalLM
    device: str
    full: int
    lora: int
    need: int
    available: int

    @property
    def fits(self) -> bool:
        return self.available <= 0 or self.need <= self.available

    def refusal(self, config: LanguageModelConfig) -> str:
        """The sentence that refuses a run that does not fit (with the numbers)."""
        how = "with LoRA" if config.mode == "lora" else "fully"
        advice = ("use LoRA (about " + format_bytes(self.lora) + "), " if config.mode == "full"
                  and self.lora < self.available else "")
        return (f"Fine-tuning {self.model.name} {how} needs about {format_bytes(self.need)} "
                f"at a batch of {config.batch_size} and {config.max_length} tokens, and "
                f"{self.device} has {format_bytes(self.available)} free. To make it fit, "
                f"{advice}lower the batch size or the context, or pick a smaller model.")


def memory_plan(model: CausalLM, config: LanguageModelConfig) -> MemoryPlan:
    """Full and LoRA training memory of *model* at *config*'s batch and context, and what the
    device it would train on has free (0: unknown)."""
    device = select_device(config.device)
    if device.type == "cuda":
        available, _ = torch.cuda.mem_get_info(device)
    else:
        available = available_memory()
    need = {mode: memory_needed(model, mode, config.batch_size, config.max_length,
                                config.lora_rank) for mode in ("full", "lora")}
    where = (f"{describe_device(device).name}'s memory" if device.type == "cuda"
             else "this computer's memory")
    return MemoryPlan(model=model, device=where, full=need["full"],
                      lora=need["lora"], need=need[config.mode], available=int(available))


def backbone_fingerprint(folder: Path) -> str:
    """A digest of a model folder's config and weights (sizes and spaced samples of each
    file), to notice a base model changed under a run that adapted it."""
    h = hashlib.blake2b(digest_size=16)
    for file in sorted(folder.glob("*.safetensors")) + [folder / "config.json"]:
        size = file.stat().st_size
        h.update(f"{file.name}:{size}".encode())
        with open(file, "rb") as fh:
            for i in range(FINGERPRINT_SAMPLES):
                fh.seek(size * i // FINGERPRINT_SAMPLES)
                h.update(fh.read(FINGERPRINT_CHUNK))
    return h.hexdigest()


def split_examples(n: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded example indices: :data:`HELD_OUT` each for validation and test, the rest train.

    Raises
    ------
    DataError
        With fewer than :data:`MIN_EXAMPLES` examples.
    """
    if n < MIN_EXAMPLES:
        raise DataError(f"The file has {n} usable example{'s' if n != 1 else ''}; fine-tuning "
                        f"needs at least {MIN_EXAMPLES} (some are kept for validation and the "
                        f"test).")
    k = max(1, round(n * HELD_OUT))
    order = np.random.default_rng(seed).permutation(n)
    return {"train": np.sort(order[2 * k:]), "val": np.sort(order[k:2 * k]),
            "test": np.sort(order[:k])}


def question(data: ChatData, index: int) -> list[dict] | Continue:
    """What example *index* asks: a conversation up to its last answer, or the first words of
    a text to go on with."""
    example = data.examples[int(index)]
    if data.kind != "chat":
        words = str(example).split()
        return Continue(" ".join(words[:max(1, min(8, len(words) // 2))]))
    last = max(i for i, turn in enumerate(example) if turn["role"] == "assistant")
    return example[:last]


def reference(data: ChatData, index: int) -> str:
    """The answer example *index* gives (its last assistant turn, or its whole text)."""
    example = data.examples[int(index)]
    if data.kind != "chat":
        return str(example)
    return [t["content"] for t in example if t["role"] == "assistant"][-1]


def shown(prompt: list[dict] | Continue) -> str:
    """A prompt as the user reads it: its last user turn, or the text to go on with."""
    if isinstance(prompt, Continue):
        return prompt.text
    users = [t["content"] for t in prompt if t["role"] == "user"]
    return users[-1] if users else prompt[-1]["content"]


def _settings(config: LanguageModelConfig, device: torch.device) -> LMSettings:
    precision = config.precision
    if precision == "auto":
        autocast = amp_dtype(device)
    else:
        autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        if autocast is not None and device.type != "cuda":
            raise TrainingError(f"{precision} training needs a CUDA GPU; this run trains on "
                                f"the CPU. Set the precision to Automatic or float32.")
    return LMSettings(mode=config.mode, epochs=config.epochs, lr=config.learning_rate,
                      batch_size=config.batch_size, seed=config.seed,
                      lora_rank=config.lora_rank, lora_alpha=config.alpha,
                      lora_dropout=config.lora_dropout, targets=tuple(config.lora_targets),
                      gradient_checkpointing=config.gradient_checkpointing, autocast=autocast)


def build_model(model: CausalLM, config: LanguageModelConfig, device: torch.device):
    """The base model (with fresh LoRA adapters for ``lora``, seeded) and its tokenizer."""
    net, tokenizer = load_causal_lm(model)
    if config.mode == "lora":
        torch.manual_seed(int(config.seed))  # the adapters' first values belong to the seed
        # Only the adapters' shape is read here: a load for export on the CPU must not meet
        # the training precision's check.
        net = add_lora(net, _settings(dataclasses.replace(config, precision="fp32"), device),
                       model.lora_targets)
    return net.to(device), tokenizer


@dataclass
class _Prepared:
    """Everything read and encoded before the run folder is written."""

    model: CausalLM
    data: ChatData
    net: Any
    tokenizer: Any
    rows: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    split: dict[str, np.ndarray]
    health: dict
    device: torch.device


def prepare(config: LanguageModelConfig, data_path: str, split: dict | None = None,
            ) -> _Prepared:
    """Read, check, load and encode (raising before anything is written).

    Raises
    ------
    ModelSpecError, DataError, TrainingError
        Not a causal LM folder; no usable example or a template that cannot write them; a
        model that will not fit in memory (the numbers are in the message).
    """
    config.validate()
    model = inspect_causal_lm(config.backbone)
    data = read_chat(data_path)
    plan = memory_plan(model, config)
    if not plan.fits:
        raise TrainingError(plan.refusal(config))
    device = select_device(config.device)
    _settings(config, device)  # a precision this device lacks is refused before loading
    net, tokenizer = build_model(model, config, device)
    encoded = encode_examples(data, tokenizer, config.max_length)
    split = split or split_examples(len(data.examples), config.seed)
    rows = {}
    for part, index in split.items():
        one = dataclasses.replace(encoded, input_ids=[encoded.input_ids[i] for i in index],
                                  labels=[encoded.labels[i] for i in index],
                                  lengths=[encoded.lengths[i] for i in index])
        rows[part] = pack(one, tokenizer.pad_token_id)
    if not int((rows["train"][1] != IGNORE).sum()):
        raise DataError("No training example has an answer left to learn from once cut to "
                        f"{config.max_length} tokens; raise the context (max length).")
    return _Prepared(model, data, net, tokenizer, rows, split, health(data, encoded), device)


class CausalLMJob:
    """One fine-tuning run of a causal LM (see the module). ``on_epoch(epoch, logs)`` gets
    plain numbers and the epoch's ``sample`` answer; ``on_batch(logs)`` each step's loss;
    ``on_message(text)`` what the user should read."""

    def __init__(self, config: LanguageModelConfig, data: str, *, run_dir: Path | None = None,
                 runs_dir: Path | None = None, name: str = "",
                 on_epoch: Callable[[int, dict], None] | None = None,
                 on_message: Callable[[str], None] | None = None,
                 on_batch: Callable[[dict], None] | None = None):
        self.config, self.data_path = config, str(data)
        self.run_dir, self.runs_dir, self.name = run_dir, runs_dir, name
        self.on_epoch = on_epoch or (lambda epoch, logs: None)
        self.say = on_message or (lambda text: None)
        self.on_batch = on_batch or (lambda logs: None)
        self._stop = False
        self._trainer: LMTrainer | None = None
        self._folder: RunFolder | None = None
        self._resume: dict | None = None
        self._more_epochs = False

    def request_stop(self) -> None:
        """Stop after the current batch; the run keeps its last epoch and can be resumed."""
        self._stop = True
        if self._trainer is not None:
            self._trainer.should_stop = True

    @classmethod
    def resume(cls, run_dir: str | Path, *, epochs: int | None = None,
               **kwargs: Any) -> CausalLMJob:
        """The job that continues the language-model run in *run_dir* from its checkpoint
        (with *epochs*: up to that many in all).

        Raises
        ------
        NothingToDo
            When the run has trained every epoch asked for.
        RunError
            Not a language-model run, or its base model changed since.
        """
        folder = RunFolder.open(run_dir)
        if not folder.is_language_model:
            raise RunError(f"{folder.path} is not a language-model run; resume it without "
                           f"--task causal-lm.")
        settings = folder.settings()
        config = LanguageModelConfig(**settings["language_model"])
        done = len(folder.read_history())
        if folder.status == "finished" and done >= (epochs or config.epochs):
            raise NothingToDo(f"{folder.path.name} has already trained all {done} epochs; "
                              f"nothing to do.")
        _check_backbone(folder, Path(config.backbone))
        source = settings["data"]["source"]
        if data_fingerprint(source).get("sha256") != settings["data"]["fingerprint"]["sha256"]:
            raise RunError(f"{Path(source).name} changed since {folder.title} started, so its "
                           f"examples are no longer the ones it was split into. Start a new "
                           f"run on the file as it is now.")
        more = epochs is not None and int(epochs) != config.epochs
        if more:  # recorded once the run has read its data and model again (see run)
            config.epochs = int(epochs)
        job = cls(config, source, run_dir=folder.path,
                  name=kwargs.pop("name", "") or folder.title, **kwargs)
        job._folder, job._more_epochs = folder, more
        job._resume = folder.load_checkpoint()
        return job

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> LMResult:
        """Train, measure and save; returns what the run made.

        Raises
        ------
        TrainDeskError
            For bad input (nothing is written then) or a training that cannot go on.
        """
        split = self._folder.split_rows() if self._folder is not None else None
        ready = prepare(self.config, self.data_path, split)
        if self._stop:  # stopped while the model and data were read: nothing is written
            release_device_memory(ready.device)
            raise Cancelled()
        folder = self._folder or self._start(ready)
        self._folder = folder
        if self._more_epochs:
            folder.change("language_model.epochs", self.config.epochs, "asked for when resuming")
        folder.update(status="running", ended=None)
        device = ready.device
        try:
            return self._train(ready, folder)
        except BaseException:
            folder.update(status="failed" if not self._stop else "stopped", ended=now_iso())
            raise
        finally:
            # The model and optimizer go first, or the device could not give their memory back.
            self._trainer = ready = None
            release_device_memory(device)

    def _train(self, ready: _Prepared, folder: RunFolder) -> LMResult:
        """Measure the base model, train, measure the tuned one. A Stop while the base or the
        tuned model answers keeps nothing of those answers: the resumed run asks again."""
        started = time.perf_counter()
        before = folder.info.get("before") or self._before(ready, folder)
        fit, lr = (None, None) if self._stop else self._fit(ready, folder)
        metrics = None
        if fit is not None and not fit.stopped:
            metrics = self._measure(ready, folder, before, fit, time.perf_counter() - started)
        stopped = metrics is None
        metrics = metrics if metrics is not None else folder.read_metrics()
        done = fit.epochs_completed if fit is not None else len(folder.read_history())
        folder.update(status="stopped" if stopped else "finished", ended=now_iso(),
                      epochs_done=done, **({"lr_now": lr} if lr is not None else {}))
        return LMResult(folder.path, folder.title, "stopped" if stopped else "finished",
                        metrics, folder.read_history())

    def _start(self, ready: _Prepared) -> RunFolder:
        label = f"{'LoRA' if self.config.mode == 'lora' else 'Full'} {ready.model.name}"
        if self.run_dir is not None:
            folder = RunFolder.claim(Path(self.run_dir))
        else:
            folder = RunFolder.create(Path(self.runs_dir or default_runs_dir()), label)
        config = {"data": {"source": str(Path(self.data_path).resolve()),
                           "kind": ready.data.kind,
                           "fingerprint": data_fingerprint(str(Path(self.data_path).resolve()))},
                  "language_model": {**dataclasses.asdict(self.config),
                                     "backbone": str(ready.model.path.resolve())},
                  "backbone": {"name": ready.model.name, "model_type": ready.model.model_type,
                               "params": ready.model.params,
                               "fingerprint": backbone_fingerprint(ready.model.path)}}
        folder.start_language_model(config=config, split=ready.split, info={
            "status": "running", "created": now_iso(), "name": self.name or label,
            "model": label, "device": describe_device(ready.device).name,
            "health": ready.health})
        self.say(f"run folder: {folder.path}")
        return folder

    def _prompt(self, ready: _Prepared) -> list[dict] | str | Continue:
        """The fixed prompt the model answers after every epoch."""
        if self.config.sample_prompt.strip():
            text = self.config.sample_prompt.strip()
            return Continue(text) if ready.data.kind != "chat" else text
        return question(ready.data, ready.split["test"][0])

    def _answer(self, ready: _Prepared, prompt, tokens: int) -> str:
        """*prompt*'s greedy answer (no random number is drawn, so a resumed run trains on as
        one never stopped); the model goes back to how it was."""
        was = ready.net.training
        try:
            return generate(ready.net, ready.tokenizer, prompt,
                            Sampling(max_new_tokens=tokens, temperature=0.0),
                            should_stop=lambda: self._stop)
        finally:
            ready.net.train(was)

    def _before(self, ready: _Prepared, folder: RunFolder) -> dict:
        """The base model's perplexity and answers, measured once before the first epoch."""
        self.say("measuring the base model ...")
        bs = self.config.batch_size
        tested = ready.split["test"][:COMPARED]
        before = {"val_perplexity": _finite(perplexity(ready.net, ready.rows["val"], bs)),
                  "test_perplexity": _finite(perplexity(ready.net, ready.rows["test"], bs)),
                  "answers": [self._answer(ready, question(ready.data, i), ANSWER_TOKENS)
                              for i in tested],
                  "sample": self._answer(ready, self._prompt(ready), SAMPLE_TOKENS)}
        if not self._stop:  # answers a Stop cut short are not the base model's
            folder.update(before=before, sample_prompt=shown(self._prompt(ready)))
        return before

    def _fit(self, ready: _Prepared, folder: RunFolder):
        """Train (from the checkpoint when resuming); a NaN loss goes back to the last epoch
        and retries at half the rate, :data:`NAN_RETRIES` times. Returns ``(fit, rate)``."""
        settings = _settings(self.config, ready.device)
        lr = float(folder.info.get("lr_now") or settings.lr)  # a retried run keeps its rate
        resume = self._resume
        for attempt in range(NAN_RETRIES + 1):
            self._trainer = LMTrainer(ready.net, dataclasses.replace(settings, lr=lr),
                                      on_epoch_end=lambda e, logs: self._epoch_done(
                                          ready, folder, e, logs),
                                      on_batch_end=lambda logs: self.on_batch(logs))
            self._trainer.should_stop = self._stop
            if resume is None:  # where a retry of the first epoch goes back to
                torch.manual_seed(int(self.config.seed))
                resume_from_start = self._trainer.state(0)
            try:
                return self._trainer.fit(ready.rows["train"], ready.rows["val"],
                                         resume=resume), lr
            except NonFiniteLoss as exc:
                if attempt == NAN_RETRIES:
                    raise TrainingError(f"{exc} It did so again after {NAN_RETRIES} retries at "
                                        f"half the rate each.") from None
                resume = folder.load_checkpoint() or resume_from_start
                lr /= 2
                back = int(resume["epoch"])
                self.say(f"The loss became NaN; going back to epoch {back} and training on "
                         f"at learning rate {lr:g}.")
                recovered = list(folder.info.get("recovered") or [])
                folder.update(recovered=recovered + [{"epoch": back + 1, "lr": lr,
                                                      "at": now_iso()}], lr_now=lr)
        raise AssertionError("unreachable")

    def _epoch_done(self, ready: _Prepared, folder: RunFolder, epoch: int, logs: dict) -> None:
        """Answer the fixed prompt, then save: best weights, checkpoint, history, run.json."""
        trainer = self._trainer
        sample = self._answer(ready, self._prompt(ready), SAMPLE_TOKENS)
        trainer.history[-1]["sample"] = sample
        logs = {**logs, "sample": sample}
        best = min((h.get("val_perplexity", math.inf) for h in trainer.history[:-1]),
                   default=math.inf)
        val = logs.get("val_perplexity", math.inf)
        # Best weights before the checkpoint: a kill between the two retrains this epoch to
        # the same weights on resume, whereas the other order could lose the best epoch's.
        if val < best or not folder.has_model:
            folder.save_weights({n: p.detach().cpu().contiguous()
                                 for n, p in trainer.trainable}, LM_WEIGHTS)
            folder.update(best_epoch=epoch + 1, best_val_perplexity=_finite(val))
        folder.save_checkpoint(trainer.state(epoch + 1))
        folder.write_history([json.dumps(h) for h in trainer.history])
        folder.update(epochs_done=epoch + 1)
        self.on_epoch(epoch, logs)

    def _measure(self, ready: _Prepared, folder: RunFolder, before: dict, fit,
                 seconds: float) -> dict | None:
        """Load the best epoch's weights; perplexity and answers after, beside before
        (``None``, and nothing written, when a Stop cut them short)."""
        load_tuned_weights(ready.net, folder)
        bs = self.config.batch_size
        tested = ready.split["test"][:COMPARED]
        compare = [{"prompt": shown(question(ready.data, i)),
                    "reference": reference(ready.data, i), "base": base,
                    "tuned": self._answer(ready, question(ready.data, i), ANSWER_TOKENS)}
                   for i, base in zip(tested, before["answers"])]
        info = folder.info
        metrics = {"task": "causal-lm",
                   "test": {"perplexity": _finite(perplexity(ready.net, ready.rows["test"], bs)),
                            "perplexity_before": before["test_perplexity"]},
                   "val": {"perplexity": _finite(perplexity(ready.net, ready.rows["val"], bs)),
                           "perplexity_before": before["val_perplexity"]},
                   "best_epoch": int(info.get("best_epoch") or fit.epochs_completed),
                   "epochs": fit.epochs_completed, "seconds": seconds,
                   "tokens_per_second": fit.tokens_per_second or _mean_speed(fit.history),
                   "examples": {k: len(v) for k, v in ready.split.items()},
                   "device": describe_device(ready.device).name, "compare": compare}
        if self._stop:  # cut answers: the run stays stopped and a resume measures again
            return None
        folder.write_metrics(metrics)
        return metrics


def _mean_speed(history: list[dict]) -> float:
    """Tokens per second over the epochs of *history* (a resume that only measured again)."""
    speeds = [h["tokens_per_second"] for h in history if h.get("tokens_per_second")]
    return float(np.mean(speeds)) if speeds else 0.0


def _finite(value: float) -> float | None:
    """*value* for a JSON file: ``None`` where it is not a finite number (a perplexity whose
    model gives a token no chance at all)."""
    return float(value) if math.isfinite(value) else None


def _check_backbone(folder: RunFolder, path: Path) -> None:
    """Refuse a run whose base model folder is gone or holds other weights now."""
    expected = (folder.settings().get("backbone") or {}).get("fingerprint")
    if not path.is_dir():
        raise RunError(f"The base model of {folder.title} ({path}) is gone; put the folder "
                       f"back there to use this run.")
    if expected and backbone_fingerprint(path) != expected:
        raise RunError(f"The base model folder {path} holds other weights than when "
                       f"{folder.title} was trained, so its adapters no longer fit it. Put "
                       f"the original model back.")


def load_tuned_weights(net, folder: RunFolder) -> None:
    """Copy the run's fine-tuned weights (adapters, or every weight) into *net*."""
    state = folder.load_weights(LM_WEIGHTS)
    params = dict(net.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise RunError(f"The weights of {folder.title} do not fit its model ({unknown[0]}).")
    device = next(net.parameters()).device
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(device))


def load_tuned(run_dir: str | Path, device: str = "auto"):
    """The fine-tuned model of the language-model run in *run_dir* and its tokenizer, in eval
    mode; also returns the run's folder. ``(model, tokenizer, folder)``.

    Raises
    ------
    RunError
        Not a language-model run, no trained weights yet, or its base model changed.
    """
    folder = RunFolder.open(run_dir)
    if not folder.is_language_model:
        raise RunError(f"{folder.title} did not fine-tune a language model; `generate` and "
                       f"`export --format hf|adapter` take runs made with --task causal-lm.")
    if not folder.has_model:
        raise RunError(f"{folder.title} has no trained epoch yet (status: {folder.status}); "
                       f"resume it first.")
    settings = folder.settings()
    config = LanguageModelConfig(**settings["language_model"])
    _check_backbone(folder, Path(config.backbone))
    net, tokenizer = build_model(inspect_causal_lm(config.backbone), config,
                                 select_device(device))
    load_tuned_weights(net, folder)
    return net.eval(), tokenizer, folder


def data_kind(folder: RunFolder) -> str:
    """``chat`` or ``text``: what the run's examples were (text runs continue a prompt)."""
    return str((folder.settings().get("data") or {}).get("kind") or "chat")


def check_ids(folder: RunFolder, tokenizer) -> torch.Tensor:
    """Token ids an export is checked on: the run's fixed prompt, as the model reads it
    (kept in run.json, so the check works after the data file has gone)."""
    from ..evaluation.generate import prompt_ids

    prompt = str(folder.info.get("sample_prompt") or "Hello")
    text = Continue(prompt) if data_kind(folder) == "text" else prompt
    return torch.tensor([prompt_ids(tokenizer, text)[:64] or [int(tokenizer.eos_token_id)]])


@dataclass(frozen=True)
class LMEstimate:
    """How long a fine-tuning will take here, from steps timed on the real model."""

    seconds: float
    epoch_seconds: float
    train_rows: int
    train_tokens: int
    memory: MemoryPlan

    @property
    def sentence(self) -> str:
        minutes = self.seconds / 60
        when = f"about {minutes:.0f} min" if minutes >= 2 else f"about {self.seconds:.0f} s"
        return (f"{when} in all ({self.epoch_seconds:.0f} s an epoch of {self.train_rows} rows, "
                f"{self.train_tokens:,} tokens), measured on this machine")


#: Training steps timed for an estimate (after one untimed warm-up step).
TIMED_STEPS = 2


def estimate(config: LanguageModelConfig, data_path: str, should_stop=None) -> LMEstimate:
    """Time a few training steps (forward and backward, no update: the weights stay as they
    are) on the real model and rows, and scale to the whole run, validation included."""
    ready = prepare(config, data_path)
    x, y, m = (torch.as_tensor(a) for a in ready.rows["train"])
    bs = int(config.batch_size)
    settings = _settings(config, ready.device)
    trainer = LMTrainer(ready.net, settings)
    rng = torch.get_rng_state()
    ready.net.train()
    times = []
    for step in range(TIMED_STEPS + 1):
        if should_stop is not None and should_stop():
            break
        began = time.perf_counter()
        start = (step * bs) % max(1, len(x))
        nll, n = token_nll(ready.net, x[start:start + bs], y[start:start + bs],
                               m[start:start + bs], settings.autocast)
        (nll / max(int(n), 1)).backward()
        trainer.optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - began)
    torch.set_rng_state(rng)
    per_batch = float(np.median(times[1:] or times))
    batches = math.ceil(len(x) / bs)
    val_batches = math.ceil(len(ready.rows["val"][0]) / bs)
    # A forward pass alone takes about a third of a training step; each epoch also answers
    # the fixed prompt (a few dozen single-token forward passes).
    epoch = per_batch * (batches + val_batches / 3) + SAMPLE_TOKENS * per_batch / (3 * bs)
    release_device_memory(ready.device)
    return LMEstimate(seconds=epoch * config.epochs + per_batch * val_batches,
                      epoch_seconds=epoch, train_rows=len(x), train_tokens=int(m.sum()),
                      memory=memory_plan(ready.model, config))


def token_health(data: ChatData, model: CausalLM, max_length: int) -> dict:
    """:func:`ml.data.chat.health` of *data* encoded by *model*'s tokenizer at *max_length*
    tokens (the tokenizer alone is loaded: quick even for a big model).

    Raises
    ------
    DataError
        When the model's chat template cannot write the examples.
    """
    from ..models.causal_lm import load_tokenizer

    return health(data, encode_examples(data, load_tokenizer(model), max_length))
