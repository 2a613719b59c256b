"""``bench/bench_llm.py`` compares like with like: TrainDesk's run and the plain transformers +
peft loop train the same model on the same rows, and both report tokens per second."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from tests.conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    yield load_bench("bench_llm")
    sys.modules.pop("bench_llm", None)


def test_both_loops_train_the_same_small_model_and_report_tokens_per_second(bench, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("TRAINDESK_HOME", str(tmp_path / "home"))
    chats = bench.examples(40)
    assert len({c["messages"][0]["content"] for c in chats}) > 20
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in chats), encoding="utf-8")
    texts = [t["content"] for c in chats for t in c["messages"]]
    bench.make_model(tmp_path / "model", texts, hidden=64, layers=1, context=64)
    args = SimpleNamespace(epochs=1, batch=4, context=64)
    assert bench.plain(tmp_path / "model", data, args) > 0
    assert bench.traindesk(tmp_path / "model", data, tmp_path / "run", args) > 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 1
