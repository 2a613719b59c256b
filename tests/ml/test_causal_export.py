"""A fine-tuned causal LM exported (ml.export.causal) as a peft adapter and as a merged folder
that transformers loads with the same logits, and its answers generated token by token
(ml.evaluation.generate)."""

from __future__ import annotations

import warnings

import pytest
import torch

from ml.errors import ExportError
from ml.evaluation.generate import Sampling, generate, prompt_ids
from ml.export.causal import save_adapter, save_merged
from ml.models.causal_lm import inspect_causal_lm, load_causal_lm
from ml.training.causal import LMSettings, add_lora


@pytest.fixture
def lora_model(tiny_llama):
    info = inspect_causal_lm(tiny_llama)
    torch.manual_seed(0)
    net, tokenizer = load_causal_lm(info)
    model = add_lora(net, LMSettings(lora_rank=4), info.lora_targets)
    with torch.no_grad():  # trained-looking adapters: B is zero when LoRA starts
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return model.eval(), tokenizer


def test_the_adapter_and_the_merged_folder_give_the_same_logits(lora_model, tiny_llama,
                                                                tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model, tokenizer = lora_model
    ids = torch.tensor([prompt_ids(tokenizer, "What is two plus two?")])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    adapter = save_adapter(model, tmp_path / "adapter")
    assert {p.name for p in adapter.iterdir()} >= {"adapter_config.json",
                                                  "adapter_model.safetensors"}
    base, _ = load_causal_lm(inspect_causal_lm(tiny_llama))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft asks about a renamed property
        again = PeftModel.from_pretrained(base, str(adapter)).eval()(input_ids=ids).logits
    torch.testing.assert_close(again, expected, atol=1e-5, rtol=1e-5)

    diff = save_merged(model, tokenizer, tmp_path / "merged", ids)
    assert diff <= 1e-4
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"),
                                                  local_files_only=True)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(input_ids=ids).logits, expected, atol=1e-4,
                                   rtol=1e-4)
    assert (tmp_path / "merged" / "tokenizer.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_exports_refuse_a_used_folder_and_a_missing_adapter(lora_model, tiny_gpt2, tmp_path):
    model, tokenizer = lora_model
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not empty"):
        save_adapter(model, used)
    assert (used / "keep.txt").read_text() == "mine"
    full, _ = load_causal_lm(inspect_causal_lm(tiny_gpt2))
    with pytest.raises(ExportError, match="no LoRA adapter"):
        save_adapter(full, tmp_path / "none")


def test_answers_stream_piece_by_piece_and_stop_when_asked(lora_model):
    model, tokenizer = lora_model
    pieces = []
    greedy = Sampling(max_new_tokens=12, temperature=0.0)
    text = generate(model, tokenizer, "Name a colour.", greedy, on_text=pieces.append)
    assert "".join(pieces) == text
    assert generate(model, tokenizer, "Name a colour.", greedy) == text  # greedy: the same
    shorter = generate(model, tokenizer, "Name a colour.", Sampling(3, 0.0))
    assert text.startswith(shorter.rstrip("\ufffd")) and len(shorter) < len(text)
    sampled = [generate(model, tokenizer, "Name a colour.", Sampling(12, 1.0, 0.95, seed))
               for seed in (1, 1, 2)]
    assert sampled[0] == sampled[1]  # a seed gives the same answer
    calls = []
    generate(model, tokenizer, "Name a colour.", greedy,
             should_stop=lambda: len(calls) > 2 or calls.append(1) is not None and False)
    assert len(calls) == 3


def test_an_exported_folder_is_readable_like_any_folder_the_user_makes(tmp_path):
    import os
    import stat

    from ml.export.causal import _into_place

    out = _into_place(tmp_path / "merged", lambda tmp: (tmp / "config.json").write_text("{}"))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # mkdtemp alone: owner-only
