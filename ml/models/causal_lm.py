"""Causal language models the user already has: a local Hugging Face folder, described and
checked before anything is loaded, then loaded offline.

:func:`inspect_causal_lm` reads ``config.json``, the safetensors headers and the tokenizer files
only; it refuses a folder that is not a causal LM, asks for remote code, holds only pickled
weights, or has no tokenizer, each with one sentence saying what to do. :func:`memory_needed`
says what training it takes, full or LoRA, at a batch and context, so a model that will not
fit is refused with the numbers before a run starts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelSpecError
from .backbones import _read_config, _weight_files, safetensors_values

#: What an architecture's name ends with when it is a causal LM (``LlamaForCausalLM``,
#: ``GPT2LMHeadModel``).
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
#: The causal LM families the desktop bundle carries (build.spec): Llama (and SmolLM2, which
#: is one), Qwen, Mistral, Phi, Gemma, GPT-2, SmolLM3. From source, any type transformers has.
CAUSAL_TYPES = frozenset({"llama", "qwen2", "qwen3", "mistral", "phi", "phi3", "gemma", "gemma2",
                          "gemma3_text", "gpt2", "smollm3"})
#: The linear layers LoRA adapts by default, per model type: the attention projections.
LORA_TARGETS = {
    "gpt2": ("c_attn", "c_proj"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense"),
}
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
#: Files one of which a folder's tokenizer needs.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
#: Training bytes per parameter: float32 weights, gradients and AdamW's two moments.
FULL_BYTES_PER_PARAM = 16
#: Bytes kept for the backward pass per token, per layer and unit of width, in float32 (about
#: 34 values: the attention and MLP inputs and outputs, Korthikanti et al. 2022, without the
#: attention matrices that fused attention does not keep).
ACTIVATION_BYTES = 34 * 4


@dataclass(frozen=True)
class CausalLM:
    """A causal LM folder, as read without loading it."""

    path: Path
    name: str
    model_type: str
    architecture: str
    params: int
    layers: int
    hidden: int
    context: int
    has_chat_template: bool

    @property
    def lora_targets(self) -> tuple[str, ...]:
        return LORA_TARGETS.get(self.model_type, DEFAULT_LORA_TARGETS)


def inspect_causal_lm(path: str | os.PathLike) -> CausalLM:
    """Describe the causal LM in folder *path*.

    Raises
    ------
    ModelSpecError
        Not a folder, no ``config.json``, remote code, only pickled weights, not a causal LM,
        or no tokenizer.
    """
    folder = Path(path).expanduser()
    name = folder.name or str(folder)
    if not folder.is_dir():
        raise ModelSpecError(f"{folder} is not a folder. Pick the folder that holds the "
                             f"language model's config.json, weights and tokenizer.")
    config = _read_config(folder, name)
    architectures = [str(a) for a in config.get("architectures") or []]
    causal = [a for a in architectures if a.endswith(CAUSAL_SUFFIXES)]
    if not causal:
        what = architectures[0] if architectures else str(config.get("model_type") or
                                                           "model of unknown type")
        raise ModelSpecError(f"{name} is a {what}, not a causal language model (one that "
                             f"writes text, such as Llama, Qwen, Mistral, Phi, Gemma, GPT-2 "
                             f"or SmolLM). Pick such a model's folder.")
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelSpecError(f"{name} has no tokenizer (tokenizer.json). Save the model with "
                             f"its tokenizer (tokenizer.save_pretrained) and pick it again.")
    params = sum(safetensors_values(p, ()) for p in _weight_files(folder))
    return CausalLM(
        path=folder, name=name, model_type=str(config.get("model_type", "")),
        architecture=causal[0], params=int(params),
        layers=int(config.get("num_hidden_layers") or config.get("n_layer") or 0),
        hidden=int(config.get("hidden_size") or config.get("n_embd") or 0),
        context=int(config.get("max_position_embeddings") or config.get("n_positions") or 0),
        has_chat_template=_has_chat_template(folder))


def is_causal_folder(folder: Path) -> bool:
    """Whether *folder*'s config.json names a causal LM architecture (cheap; nothing else is
    checked: :func:`inspect_causal_lm` says what else is wrong)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    names = config.get("architectures") if isinstance(config, dict) else None
    return isinstance(names, list) and any(str(a).endswith(CAUSAL_SUFFIXES) for a in names)


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        doc = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and bool(doc.get("chat_template"))


def lora_params(model: CausalLM, rank: int) -> int:
    """Roughly the values LoRA of *rank* adds: two ``hidden x rank`` matrices per adapted
    projection and layer."""
    return 2 * rank * model.hidden * len(model.lora_targets) * model.layers


def memory_needed(model: CausalLM, mode: str, batch: int, context: int, rank: int = 8) -> int:
    """Bytes of memory training *model* takes by *mode* (``full`` or ``lora``) on batches of
    *batch* examples of *context* tokens, in float32: the weights (with gradients and AdamW's
    moments for what trains) and the activations kept for the backward pass."""
    activations = batch * context * model.layers * model.hidden * ACTIVATION_BYTES
    if mode == "full":
        return model.params * FULL_BYTES_PER_PARAM + activations
    return model.params * 4 + lora_params(model, rank) * FULL_BYTES_PER_PARAM + activations


def _library_error(model: CausalLM, exc: Exception) -> ModelSpecError:
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelSpecError(f"{model.name} cannot be loaded as a language model ({why}).")


def load_tokenizer(model: CausalLM):
    """The folder's tokenizer alone, offline (a padding token set to the end token when it
    has none: padding is never counted).

    Raises
    ------
    ModelSpecError
        When transformers cannot read it.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model.path), local_files_only=True,
                                                  trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - a library's error, said in one line
        raise _library_error(model, exc) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(model: CausalLM):
    """The model and its tokenizer, loaded offline from the folder (no remote code, weights
    from safetensors). Returns ``(model, tokenizer)``; the model is in float32, in eval mode.

    Raises
    ------
    ModelSpecError
        When transformers cannot load the folder (the message says why).
    """
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    tokenizer = load_tokenizer(model)
    hf_logging.disable_progress_bar()  # its bars would interleave with our own progress
    try:
        net = AutoModelForCausalLM.from_pretrained(str(model.path), local_files_only=True,
                                                   trust_remote_code=False, use_safetensors=True,
                                                   dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - a library's error, said in one line
        raise _library_error(model, exc) from None
    return net.eval(), tokenizer
