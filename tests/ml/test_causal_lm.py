"""Causal LM folders (ml.models.causal_lm): described from their files alone, refused with one
sentence when unusable, loaded offline, and their training memory estimated."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from ml.errors import ModelSpecError
from ml.models.causal_lm import inspect_causal_lm, load_causal_lm, lora_params, memory_needed


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_a_folder_is_described_without_loading_and_then_loads_offline(request, kind):
    folder = request.getfixturevalue(f"tiny_{kind}")
    info = inspect_causal_lm(folder)
    net, tokenizer = load_causal_lm(info)
    # The values stored (a tied output layer once), counted from the headers alone.
    assert info.params == sum(p.numel() for p in net.parameters())
    assert 100_000 < info.params < 1_000_000 and info.layers == 2 and info.hidden == 64
    assert info.context == 128 and info.has_chat_template
    assert info.architecture in ("LlamaForCausalLM", "GPT2LMHeadModel")
    assert info.lora_targets == (("c_attn", "c_proj") if kind == "gpt2" else
                                 ("q_proj", "k_proj", "v_proj", "o_proj"))
    ids = tokenizer("hello there", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert net(ids).logits.shape == (1, ids.shape[1], len(tokenizer))


def test_memory_for_full_fine_tuning_and_lora(tiny_llama):
    info = inspect_causal_lm(tiny_llama)
    full = memory_needed(info, "full", batch=4, context=64)
    lora = memory_needed(info, "lora", batch=4, context=64, rank=8)
    assert lora < full
    assert full - lora == info.params * 12 - lora_params(info, 8) * 16
    assert memory_needed(info, "lora", 8, 64) > lora  # activations grow with the batch


def _broken(src, tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(src, folder)
    return folder


def test_folders_that_are_not_usable_causal_lms_are_refused(tiny_llama, tiny_bert, tmp_path):
    with pytest.raises(ModelSpecError, match="not a causal language model"):
        inspect_causal_lm(tiny_bert)  # an encoder
    remote = _broken(tiny_llama, tmp_path, "remote")
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"x": "y.Z"}}))
    with pytest.raises(ModelSpecError, match="remote code"):
        inspect_causal_lm(remote)
    no_tok = _broken(tiny_llama, tmp_path, "no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / name).unlink(missing_ok=True)
    with pytest.raises(ModelSpecError, match="has no tokenizer"):
        inspect_causal_lm(no_tok)
    with pytest.raises(ModelSpecError, match="is not a model folder"):
        inspect_causal_lm(tmp_path)
    with pytest.raises(ModelSpecError, match="is not a folder"):
        inspect_causal_lm(tmp_path / "nothing")
