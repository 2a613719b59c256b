"""Shared fixtures: an isolated TrainDesk home per test, tiny datasets, CUDA skipping."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.watchdog import Watchdog  # noqa: E402

_WATCHDOG = Watchdog()


def pytest_configure(config):
    _WATCHDOG.configure()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _WATCHDOG.enter(item.nodeid)
    try:
        return (yield)
    finally:
        _WATCHDOG.leave()


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def traindesk_home(tmp_path_factory, monkeypatch) -> Path:
    """Runs, exports and logs of every test go to a fresh folder, never to ~/TrainDesk."""
    home = tmp_path_factory.mktemp("traindesk_home")
    monkeypatch.setenv("TRAINDESK_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_yardstick(request, monkeypatch):
    """Runs fit no classic model beside them - in this process and in the ``main.py``
    subprocesses, which inherit the variable (each would cost a child process and a second or
    two of waiting); tests marked ``yardstick`` keep it."""
    from ml.evaluation import yardstick

    if "yardstick" in request.keywords:
        monkeypatch.delenv(yardstick.OFF_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(yardstick.OFF_VARIABLE, "1")


@pytest.fixture(autouse=True)
def no_final_fit(request, monkeypatch):
    """In-process runs end without the final fit (ml.jobs.refit): it would add a second fit to
    each of the suite's hundreds of small table runs. Tests marked ``refit`` keep it, and the
    ``main.py`` subprocesses, which run as a user's do, always have it."""
    if "refit" not in request.keywords:
        from ml.jobs import refit

        monkeypatch.setattr(refit, "applies", lambda *args, **kwargs: False)


@pytest.fixture
def mixed_csv(tmp_path) -> Path:
    """A small CSV with numeric, categorical and boolean features, missing cells and a label."""
    rng = np.random.default_rng(0)
    n = 240
    size = rng.normal(10, 3, n)
    colour = rng.choice(["red", "green", "blue"], n)
    member = rng.choice(["yes", "no"], n)
    score = size + (colour == "red") * 4 + (member == "yes") * 2 + rng.normal(0, 0.5, n)
    label = np.where(score > np.median(score), "high", "low")
    df = pd.DataFrame({"id": np.arange(n), "size": size.round(3), "colour": colour,
                       "member": member, "label": label})
    df.loc[[3, 17, 40], "size"] = np.nan
    df.loc[[5, 9], "colour"] = np.nan
    path = tmp_path / "mixed.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def regression_csv(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    n = 300
    x1, x2 = rng.normal(0, 1, n), rng.uniform(0, 10, n)
    y = 3 * x1 + 0.5 * x2 ** 1.5 + 20 + rng.normal(0, 0.3, n)
    path = tmp_path / "reg.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "price": y}).to_csv(path, index=False)
    return path


def run_main(*args: str, env: dict | None = None, timeout: int = 300):
    """Run ``python main.py ARGS`` in a subprocess; return the CompletedProcess."""
    import subprocess

    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=str(ROOT))


def run_cli(*args: str):
    """Run the headless command ARGS in this process (``ml.cli.main``, as ``main.py`` does) and
    return what :func:`run_main` returns. For the many bad-input cases, whose one-line answers
    need no fresh interpreter (each saves the seconds of importing torch again); every kind of
    case still has one run through :func:`run_main`, as a user runs it."""
    import contextlib
    import io
    import subprocess

    from ml.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["main.py", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _no_threads_left_behind(request):
    """Every worker thread a test started has ended by the end of the test.

    Qt tests also collect garbage on the GUI thread only, as the app does (workers/gc_guard.py).
    """
    if "qtbot" in request.fixturenames:
        from workers import gc_guard

        gc_guard.install(request.getfixturevalue("qapp"))
    yield
    if "qtbot" not in request.fixturenames:
        return
    from PySide6.QtTest import QTest

    from workers import gc_guard
    from workers.base import thread_reaper

    reaper = thread_reaper()
    try:
        assert reaper.wait_all(60_000), "a worker thread did not end"
        QTest.qWait(10)  # let queued thread-finished slots run
    finally:
        gc_guard.uninstall()


# -- tiny pretrained models (issue 20): built from configs, so tests stay fast and offline --------
TINY_WORDS = ("good great fine nice love best happy bad awful poor hate worst sad boring film "
              "movie plot story it was the a is and very not really").split()


def make_tiny_bert(folder: Path) -> Path:
    """A 2-layer, 16-wide BERT with a word-piece tokenizer.json over :data:`TINY_WORDS`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, ".": 4, ",": 5}
    for word in TINY_WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        pad_token_id=0)
    BertModel(config).save_pretrained(str(folder))
    return folder


def make_tiny_vit(folder: Path, size: int = 32) -> Path:
    """A 2-layer, 16-wide ViT reading *size* px images (mean and std 0.5)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import json

    import torch
    from transformers import ViTConfig, ViTModel

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = ViTConfig(image_size=size, patch_size=8, num_channels=3, hidden_size=16,
                       num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    ViTModel(config).save_pretrained(str(folder))
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"height": size, "width": size}, "image_mean": [0.5] * 3,
         "image_std": [0.5] * 3}))
    return folder


# -- tiny causal language models (issue 22) --------------------------------------------------------
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                 "{% endif %}")
CHAT_TEXTS = ("hello there, how are you?", "I am fine, thank you.", "What is two plus two?",
              "Four.", "Name a colour.", "Blue.", "What is the capital of France?", "Paris.")


def make_chat_tokenizer(folder: Path | None = None):
    """A byte-level BPE tokenizer trained here on :data:`CHAT_TEXTS` (300 ids), with a
    ChatML-style template; saved to *folder* when given. No download."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(list(CHAT_TEXTS) * 10, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>",
                                 pad_token="<eos>")
    hf.chat_template = CHAT_TEMPLATE
    if folder is not None:
        hf.save_pretrained(str(folder))
    return hf


def make_tiny_causal_lm(folder: Path, kind: str = "llama") -> Path:
    """A Llama- or GPT-2-style causal LM of a few hundred thousand parameters, random weights
    (seed 0) in safetensors, with :func:`make_chat_tokenizer`'s tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = make_chat_tokenizer(folder)
    ids = {"vocab_size": len(tokenizer), "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.eos_token_id}
    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128,
                                           **ids))
    else:
        model = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128,
                                             num_hidden_layers=2, num_attention_heads=4,
                                             num_key_value_heads=2, max_position_embeddings=128,
                                             **ids))
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny_llama") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny_gpt2") / "tiny-gpt2", "gpt2")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    return make_tiny_vit(tmp_path_factory.mktemp("tiny_vit") / "tiny-vit")


def write_reviews(path: Path, n: int = 120, seed: int = 0) -> Path:
    """A two-class text table (``review``, ``sentiment``) in :data:`TINY_WORDS`."""
    rng = np.random.default_rng(seed)
    good, bad = ["good", "great", "nice", "love", "best"], ["bad", "awful", "poor", "hate", "worst"]
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = rng.choice(good if label == "pos" else bad, 2)
        rows.append((f"the {rng.choice(['film', 'movie', 'plot'])} was {words[0]} and "
                     f"{words[1]}.", label))
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(path, index=False)
    return path


def write_image_folder(root: Path, per_class: int = 6, side: int = 40) -> Path:
    """Two classes of small coloured images: mostly red ones and mostly blue ones."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, channel in (("red", 0), ("blue", 2)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (side, side, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(160, 255, (side, side), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


def load_bench(name: str):
    """The module ``bench/NAME.py`` (bench scripts are not a package), registered in
    ``sys.modules`` while it is used (dataclasses look their module up)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
