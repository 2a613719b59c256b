"""Language-model work off the GUI thread: fine-tuning (:class:`ml.jobs.causal.CausalLMJob`)
and answers streamed piece by piece (:func:`ml.evaluation.generate.generate`)."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal

from ml.evaluation.generate import Continue, Sampling, generate
from ml.jobs.causal import CausalLMJob, LMResult, data_kind, load_tuned
from ml.runs.project import LanguageModelConfig

from .base import Worker

#: Seconds between two ``batches`` signals.
BATCH_INTERVAL = 0.2


class LMTrainingWorker(Worker):
    """Fine-tune (or resume, with *resume* a run folder). ``epoch_finished(logs)`` after every
    epoch (plain numbers and the epoch's sample answer), ``message(text)`` what the run says;
    ``finished`` gets the :class:`~ml.jobs.causal.LMResult`. Cancelling stops after the current
    batch and still delivers the stopped run."""

    epoch_finished = Signal(dict)
    #: Steps since the last signal: ``[(epoch position, loss), ...]`` (at most every
    #: :data:`BATCH_INTERVAL` seconds, so a fast model cannot flood the window).
    batches = Signal(list)
    message = Signal(str)
    run_started = Signal(str)

    def __init__(self, config: LanguageModelConfig | None, *, runs_dir: Path,
                 resume: str = "", name: str = ""):
        super().__init__()
        self.config, self.runs_dir, self.resume, self.name = config, runs_dir, resume, name
        self.job: CausalLMJob | None = None
        self._pending: list[tuple[float, float]] = []
        self._last_batch_emit = 0.0

    def _on_batch(self, logs: dict) -> None:
        self._pending.append((logs["epoch"] - 1 + logs["batch"] / logs["batches"], logs["loss"]))
        now = time.monotonic()
        if now - self._last_batch_emit >= BATCH_INTERVAL or logs["batch"] == logs["batches"]:
            self._last_batch_emit = now
            self.batches.emit(self._pending)
            self._pending = []

    def cancel(self) -> None:
        super().cancel()
        if self.job is not None:
            self.job.request_stop()

    def _say(self, text: str) -> None:
        if text.startswith("run folder: "):
            self.run_started.emit(text.removeprefix("run folder: "))
        self.message.emit(text)

    def work(self) -> LMResult:
        hooks = {"on_epoch": lambda epoch, logs: self.epoch_finished.emit(dict(logs)),
                 "on_message": self._say, "on_batch": self._on_batch}
        if self.resume:
            self.job = CausalLMJob.resume(self.resume, epochs=self.config.epochs
                                          if self.config else None, **hooks)
            self.run_started.emit(str(self.job.run_dir))
        else:
            self.job = CausalLMJob(self.config, self.config.data, runs_dir=self.runs_dir,
                                   name=self.name, **hooks)
        if self.cancelled:
            self.job.request_stop()
        return self.job.run()


class LoadedModel:
    """A run's fine-tuned model, loaded once and kept for the try-it panel (the GUI thread
    holds it; one generation uses it at a time)."""

    def __init__(self, run_dir: str):
        self.run_dir = str(run_dir)
        self.model, self.tokenizer, folder = load_tuned(run_dir, "auto")
        self.kind = data_kind(folder)
        self.lora = hasattr(self.model, "disable_adapter")


class GenerateWorker(Worker):
    """One answer, streamed: ``piece(text)`` as each part is written; ``finished(text)``.
    *prompt* is a question or a whole conversation (``[{"role", "content"}, ...]`` ending with
    the user's turn). *loaded* is a :class:`LoadedModel`, or a run folder to load first
    (``loaded`` tells the page, to keep it)."""

    piece = Signal(str)
    loaded = Signal(object)

    def __init__(self, loaded: LoadedModel | str, prompt: str | list[dict], sampling: Sampling,
                 *, base: bool = False):
        super().__init__()
        self._loaded, self.prompt, self.sampling, self.base = loaded, prompt, sampling, base

    def work(self) -> str:
        loaded = self._loaded
        if isinstance(loaded, str):
            self.report_progress(0.0, "loading the model …")
            loaded = LoadedModel(loaded)
            self.loaded.emit(loaded)
        prompt = self.prompt
        if loaded.kind == "text":  # tuned on plain text: it goes on with the last words given
            prompt = Continue(prompt[-1]["content"] if isinstance(prompt, list) else prompt)
        call = lambda: generate(loaded.model, loaded.tokenizer, prompt, self.sampling,  # noqa: E731
                                on_text=self.piece.emit, should_stop=self.token)
        if self.base and loaded.lora:
            with loaded.model.disable_adapter():
                return call()
        return call()
