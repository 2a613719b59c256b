"""Fine-tuning a causal LM (ml.training.causal): LoRA and full training lower the validation
perplexity on a small memorisation set, a stopped fit resumes to the same weights, and a stop
ends after the current batch."""

from __future__ import annotations

import json

import pytest
import torch

from ml.data.chat import encode_examples, pack, read_chat
from ml.models.causal_lm import inspect_causal_lm, load_causal_lm
from ml.training.causal import LMSettings, LMTrainer, add_lora, perplexity

PAIRS = [("What is two plus two?", "Four."), ("Name a colour.", "Blue."),
         ("What is the capital of France?", "Paris."), ("hello there, how are you?",
                                                       "I am fine, thank you.")]


@pytest.fixture(scope="module")
def rows(tmp_path_factory, tiny_llama):
    path = tmp_path_factory.mktemp("chat") / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in PAIRS * 2), encoding="utf-8")
    _, tokenizer = load_causal_lm(inspect_causal_lm(tiny_llama))
    return pack(encode_examples(read_chat(path), tokenizer, 64), tokenizer.pad_token_id)


def _model(folder, settings: LMSettings):
    info = inspect_causal_lm(folder)
    torch.manual_seed(settings.seed)  # LoRA's initial adapters belong to the seed
    net, _ = load_causal_lm(info)
    return add_lora(net, settings, info.lora_targets) if settings.mode == "lora" else net


# LoRA adapts a random network's attention only, so it gains less than full training does.
@pytest.mark.parametrize("mode, kind, lr, gain", [("lora", "llama", 3e-2, 0.8),
                                                  ("full", "gpt2", 3e-3, 0.5)])
def test_fine_tuning_lowers_the_validation_perplexity(request, rows, mode, kind, lr, gain):
    settings = LMSettings(mode=mode, epochs=8, lr=lr, batch_size=1)
    model = _model(request.getfixturevalue(f"tiny_{kind}"), settings)
    before = perplexity(model, rows)
    fit = LMTrainer(model, settings).fit(rows, rows)
    assert fit.epochs_completed == 8 and not fit.stopped and fit.tokens_per_second > 0
    after = fit.history[-1]["val_perplexity"]
    assert after == pytest.approx(perplexity(model, rows))
    assert after < before * gain, (before, after)
    if mode == "lora":  # only the adapters trained
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        assert names and all("lora_" in n for n in names)


def test_a_stopped_fit_resumes_to_the_same_weights(tiny_llama, rows):
    settings = LMSettings(epochs=4, lr=1e-2, batch_size=2, lora_dropout=0.1)
    whole = LMTrainer(_model(tiny_llama, settings), settings)
    whole.fit(rows, rows)

    states = []
    first = LMTrainer(_model(tiny_llama, settings), settings)

    def stop_after_two(epoch, logs):
        states.append(first.state(epoch + 1))
        first.should_stop = epoch == 1

    first.on_epoch_end = stop_after_two
    cut = first.fit(rows, rows)
    assert cut.stopped and cut.epochs_completed == 2
    again = LMTrainer(_model(tiny_llama, settings), settings)
    done = again.fit(rows, rows, resume=states[-1])
    assert done.epochs_completed == 4 and [h["epoch"] for h in done.history] == [1, 2, 3, 4]
    for (name, p), (_, q) in zip(whole.trainable, again.trainable, strict=True):
        assert torch.equal(p, q), name
    assert done.history[-1]["loss"] == whole.history[-1]["loss"]
