"""Language-model data (ml.data.chat): chat lines, instruction columns and plain text are read
with clear refusals, written by the tokenizer's chat template with the loss on the assistant's
tokens only, packed whole, and checked for what a user should know before training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml.data.chat import IGNORE, encode_examples, health, pack, read_chat, render
from ml.errors import DataError
from tests.conftest import make_chat_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return make_chat_tokenizer()


def _lines(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records)
                    + "\n", encoding="utf-8")
    return path


CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Two plus two?"},
        {"role": "assistant", "content": "Four."}, {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."}]


def test_chat_lines_are_read_and_broken_lines_are_listed(tmp_path):
    path = _lines(tmp_path / "chat.jsonl", [
        {"messages": CHAT}, "{not json", {"messages": [{"role": "robot", "content": "x"}]},
        {"messages": [{"role": "user", "content": "hi"}]}])
    data = read_chat(path)
    assert data.kind == "chat" and data.examples == [CHAT]
    assert data.skipped[0].startswith("line 2: not JSON")
    assert "role 'robot' is not one of system, user, assistant" in data.skipped[1]
    assert data.skipped[2] == "line 4: no assistant answer to learn from"


def test_instruction_columns_and_plain_text(tmp_path):
    (tmp_path / "pairs.csv").write_text("Instruction,Response\nTwo plus two?,Four.\n,empty\n",
                                        encoding="utf-8")
    data = read_chat(tmp_path / "pairs.csv")
    assert data.examples == [[{"role": "user", "content": "Two plus two?"},
                              {"role": "assistant", "content": "Four."}]]
    assert data.skipped == ["row 3: an empty instruction or response"]
    (tmp_path / "book.txt").write_text("First paragraph.\n\nSecond one.\n", encoding="utf-8")
    text = read_chat(tmp_path / "book.txt")
    assert text.kind == "text" and text.examples == ["First paragraph.", "Second one."]


@pytest.mark.parametrize("content, message", [
    ('{"messages": 3}\n', 'has no usable example (line 1: "messages" is not a list'),
    ("just words\n", "has no usable example (line 1: not JSON"),
    ('{"a": 1}\n', 'neither chat messages'),
])
def test_files_without_a_usable_example_are_refused_plainly(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        read_chat(path)
    with pytest.raises(DataError, match="use JSON lines"):
        read_chat(_lines(tmp_path / "data.xlsx", ["x"]))


def test_the_loss_counts_the_assistants_tokens_only(tokenizer):
    ids, labels = render(tokenizer, CHAT)
    counted = [i for i, y in zip(ids, labels) if y != IGNORE]
    assert all(y in (IGNORE, i) for i, y in zip(ids, labels))
    # What is counted is the two answers with their end-of-turn marks, nothing of the prompts.
    assert tokenizer.decode(counted) == "Four.<|im_end|>\nBlue.<|im_end|>\n"


def test_a_template_that_cannot_write_a_role_is_refused(tokenizer):
    old = tokenizer.chat_template
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                               "{{ raise_exception('no system turns') }}{% endif %}"
                               "{{ m['content'] }}{% endfor %}")
    try:
        with pytest.raises(DataError, match="cannot write a conversation of system/user/"
                                            "assistant turns .no system turns"):
            render(tokenizer, CHAT)
    finally:
        tokenizer.chat_template = old


def test_examples_are_cut_packed_whole_and_checked(tokenizer, tmp_path):
    short = [{"role": "user", "content": "Two plus two?"}, {"role": "assistant",
                                                           "content": "Four."}]
    path = _lines(tmp_path / "c.jsonl", [{"messages": short}] * 3 + [{"messages": CHAT}])
    data = read_chat(path)
    encoded = encode_examples(data, tokenizer, max_length=64)
    length = len(render(tokenizer, short)[0])
    assert encoded.lengths[:3] == [length] * 3 and encoded.n_cut == (encoded.lengths[3] > 64)
    x, y, attention = pack(encoded, tokenizer.pad_token_id)
    assert x.shape[1] == 64 and x.dtype == np.int64
    assert len(x) < 4  # short examples share rows
    # Every example's tokens are in the rows exactly once, whole; padding is never counted.
    assert int((y != IGNORE).sum()) == sum(sum(v != IGNORE for v in lab)
                                           for lab in encoded.labels)
    assert not ((attention == 0) & (y != IGNORE)).any()
    assert int(attention.sum()) == sum(len(ids) for ids in encoded.input_ids)
    found = health(data, encoded)
    assert found["examples"] == 4 and found["duplicates"] == 2 and found["empty_turns"] == 0
    assert sum(found["histogram"]["counts"]) == 4
    assert found["counted_tokens"] == int((y != IGNORE).sum())


def test_examples_longer_than_the_context_are_cut_and_counted(tokenizer, tmp_path):
    data = read_chat(_lines(tmp_path / "c.jsonl", [{"messages": CHAT}] * 2))
    encoded = encode_examples(data, tokenizer, max_length=10)
    assert encoded.n_cut == 2 and all(len(ids) == 10 for ids in encoded.input_ids)
    assert health(data, encoded)["too_long"] == 2
    text = read_chat(_lines(tmp_path / "t.jsonl", [{"text": "hello there"}]))
    plain = encode_examples(text, tokenizer, max_length=32)
    assert plain.labels == plain.input_ids  # continued pretraining counts every token
    assert plain.input_ids[0][-1] == tokenizer.eos_token_id
