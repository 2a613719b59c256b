"""A causal LM's answer to a prompt, token by token, for the chat try-it panel and ``main.py
generate``: the prompt written by the tokenizer's chat template, then sampled with temperature
and top-p (temperature 0: always the most likely token), each new piece of text handed to a
callback as soon as it is known, until the end token, the token limit or a stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Sampling:
    """How tokens are chosen: ``temperature`` 0 is greedy; ``top_p`` keeps the smallest set of
    most likely tokens whose probabilities add up to it."""

    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0


def prompt_ids(tokenizer, messages: list[dict] | str | Continue) -> list[int]:
    """The ids the model continues: *messages* (or one user turn of text) through the chat
    template with the assistant's turn opened; plain text when the tokenizer has no template,
    or when it is to be continued as it stands (:class:`Continue`)."""
    if isinstance(messages, Continue):
        return list(tokenizer(messages.text, add_special_tokens=False)["input_ids"])
    if isinstance(messages, str):
        if not getattr(tokenizer, "chat_template", None):
            return list(tokenizer(messages)["input_ids"])
        messages = [{"role": "user", "content": messages}]
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    return [int(i) for i in (out["input_ids"] if hasattr(out, "keys") else out)]


@dataclass(frozen=True)
class Continue:
    """A text the model goes on writing, not a question to answer (a model fine-tuned on plain
    text, for continued pretraining)."""

    text: str


def _choose(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    if sampling.temperature <= 0:
        return int(logits.argmax())
    logits = logits.cpu()  # the seeded generator lives on the CPU
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    ordered, index = probs.sort(descending=True)
    keep = ordered.cumsum(0) - ordered < sampling.top_p  # always the most likely one
    ordered = ordered * keep
    pick = torch.multinomial(ordered / ordered.sum(), 1, generator=generator)
    return int(index[pick])


@torch.no_grad()
def generate(model, tokenizer, messages: list[dict] | str | Continue,
             sampling: Sampling | None = None, *, on_text: Callable[[str], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> str:
    """The model's answer to *messages*; *on_text* gets each new piece as it is generated."""
    sampling = sampling or Sampling()
    should_stop = should_stop or (lambda: False)
    generator = torch.Generator().manual_seed(int(sampling.seed))
    model.eval()
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids(tokenizer, messages)], device=device)
    stop_ids = {tokenizer.eos_token_id} | set(_end_of_turn(tokenizer))
    past, new, said = None, [], ""
    for _ in range(int(sampling.max_new_tokens)):
        if should_stop():
            break
        out = model(input_ids=ids if past is None else ids[:, -1:], cache=past, use_cache=True)
        past = out.cache
        token = _choose(out.logits[0, -1], sampling, generator)
        if token in stop_ids:
            break
        new.append(token)
        ids = torch.cat([ids, torch.tensor([[token]], device=device)], dim=1)
        # A piece is said once its bytes make whole characters: an unfinished one decodes as
        # U+FFFD at the end, and is held back until the next token completes it.
        said = _say(said, tokenizer.decode(new, skip_special_tokens=True).rstrip("\ufffd"),
                    on_text)
    text = tokenizer.decode(new, skip_special_tokens=True)
    _say(said, text, on_text)
    return text


def _say(said: str, text: str, on_text: Callable[[str], None] | None) -> str:
    """Hand *on_text* what *text* adds to what was *said*; return what is said now."""
    if len(text) > len(said) and text.startswith(said):
        if on_text is not None:
            on_text(text[len(said):])
        return text
    return said


def _end_of_turn(tokenizer) -> list[int]:
    """Ids that end an assistant turn in common templates (ChatML's ``<|im_end|>``, Llama 3's
    ``<|eot_id|>``, Gemma's ``<end_of_turn>``) that this tokenizer has."""
    vocab = tokenizer.get_vocab()
    return [vocab[t] for t in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")
            if t in vocab]
