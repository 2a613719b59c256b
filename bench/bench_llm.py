"""LoRA fine-tuning speed: TrainDesk's language-model run against a plain transformers + peft
loop on the same model, rows, batch and context, measured in the same run (target >= 0.95).

The model is a randomly initialised Llama built here from a config (no download), with a
byte-level BPE tokenizer trained here on the examples; the examples are generated question /
answer pairs in the chat format. TrainDesk's side is the whole headless run
(:class:`ml.jobs.causal.CausalLMJob`, as ``main.py train --task causal-lm`` runs it) and its
figure is the one the run records (``metrics.json`` ``tokens_per_second``: training steps only,
not the validation, checkpoints or sample answers after each epoch). The reference loop reads
the same packed rows and calls the model with ``labels`` (transformers' own shifted loss),
with the same LoRA settings, AdamW and gradient clipping. The two alternate, ``--repeat``
times each, and the medians are compared.

Usage::

    .venv/bin/python bench/bench_llm.py [--hidden 256] [--layers 4] [--examples 256] \
        [--epochs 2] [--batch 8] [--context 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
THINGS = ["river", "mountain", "violin", "teapot", "lantern", "glacier", "compass", "harbour",
          "orchard", "library", "comet", "bakery", "meadow", "lighthouse", "canyon", "falcon"]
COLOURS = ["red", "blue", "green", "amber", "silver", "violet", "golden", "grey"]


def examples(n: int, seed: int = 0) -> list[dict]:
    """*n* generated question / answer conversations."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        thing, colour = rng.choice(THINGS), rng.choice(COLOURS)
        count = rng.randint(2, 40)
        out.append({"messages": [
            {"role": "user", "content": f"How many {colour} {thing}s are there, and where?"},
            {"role": "assistant", "content": f"There are {count} {colour} {thing}s, all of "
                                             f"them near the old {rng.choice(THINGS)}."}]})
    return out


def make_model(folder: Path, texts: list[str], hidden: int, layers: int, context: int) -> None:
    """A random Llama of *hidden* width and *layers* layers with a BPE tokenizer (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=1000, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                        eos_token="<eos>", pad_token="<eos>")
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                         intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=max(1, hidden // 64),
                         num_key_value_heads=max(1, hidden // 64),
                         max_position_embeddings=context, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(str(folder))


def traindesk(model: Path, data: Path, out: Path, args) -> float:
    """Tokens per second of TrainDesk's run, as its metrics.json records them."""
    from ml.jobs.causal import CausalLMJob
    from ml.runs.project import LanguageModelConfig

    config = LanguageModelConfig(backbone=str(model), epochs=args.epochs, lr=1e-3,
                                 batch_size=args.batch, max_length=args.context,
                                 device="cpu", precision="fp32")
    result = CausalLMJob(config, str(data), run_dir=out).run()
    return float(result.metrics["tokens_per_second"])


def plain(model: Path, data: Path, args) -> float:
    """Tokens per second of a plain transformers + peft loop over the same packed rows."""
    import warnings

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ml.data.chat import encode_examples, pack, read_chat
    from ml.jobs.causal import split_examples

    tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
    net = AutoModelForCausalLM.from_pretrained(str(model), local_files_only=True,
                                               dtype=torch.float32)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = get_peft_model(net, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16,
                                             lora_dropout=0.05,
                                             target_modules=["q_proj", "k_proj", "v_proj",
                                                             "o_proj"]))
    chat = read_chat(data)
    encoded = encode_examples(chat, tokenizer, args.context)
    train = split_examples(len(chat.examples), 0)["train"]
    encoded.input_ids = [encoded.input_ids[i] for i in train]
    encoded.labels = [encoded.labels[i] for i in train]
    encoded.lengths = [encoded.lengths[i] for i in train]
    x, y, m = (torch.as_tensor(a) for a in pack(encoded, tokenizer.pad_token_id))
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    net.train()
    tokens, seconds = 0, 0.0
    for _ in range(args.epochs):
        order = torch.randperm(len(x))
        began = time.perf_counter()
        for start in range(0, len(order), args.batch):
            idx = order[start:start + args.batch]
            loss = net(input_ids=x[idx], attention_mask=m[idx], labels=y[idx]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            tokens += int(m[idx].sum())
        seconds += time.perf_counter() - began
    return tokens / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["TRAINDESK_HOME"] = str(tmp / "home")
        chats = examples(args.examples)
        data = tmp / "chat.jsonl"
        data.write_text("".join(json.dumps(c) + "\n" for c in chats), encoding="utf-8")
        texts = [t["content"] for c in chats for t in c["messages"]]
        make_model(tmp / "model", texts * 4, args.hidden, args.layers, args.context)
        ours, theirs = [], []
        for i in range(args.repeat):  # alternate, so a slow spell of the machine hits both
            theirs.append(plain(tmp / "model", data, args))
            ours.append(traindesk(tmp / "model", data, tmp / f"run{i}", args))
            print(f"round {i + 1}: plain loop {theirs[-1]:,.0f} tokens/s, TrainDesk "
                  f"{ours[-1]:,.0f} tokens/s", flush=True)
    ratio = statistics.median(ours) / statistics.median(theirs)
    params = f"hidden {args.hidden}, {args.layers} layers"
    print(f"LoRA fine-tuning ({params}, batch {args.batch}, context {args.context}, "
          f"{torch.get_num_threads()} threads): TrainDesk {statistics.median(ours):,.0f} "
          f"tokens/s, plain transformers + peft {statistics.median(theirs):,.0f} tokens/s, "
          f"ratio {ratio:.3f} (target >= 0.95) {'MET' if ratio >= 0.95 else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"ours": ours, "plain": theirs, "ratio": ratio,
                                               "settings": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
