"""Chat, instruction and plain-text data for fine-tuning a causal language model.

Three shapes of file are read (:func:`read_chat`):

- **chat**: JSON lines, one conversation a line, ``{"messages": [{"role": "user", "content":
  "..."}, {"role": "assistant", "content": "..."}]}`` (roles ``system``, ``user``,
  ``assistant``), the format most tools write;
- **instructions**: a CSV or JSON lines with an instruction column and a response column
  (``instruction``/``response``, ``prompt``/``completion``, ``question``/``answer``,
  ``input``/``output``), each row one user turn and its answer; an optional ``system`` column;
- **text**: a ``.txt`` file (paragraphs separated by blank lines) or a CSV / JSON lines with a
  single ``text`` column, for continued pretraining.

Examples are then written out by the tokenizer's own chat template and encoded
(:func:`encode_examples`): the loss counts the assistant's tokens only (every other token's
label is :data:`IGNORE`), plain text counts every token. Short examples are packed several to a
row (:func:`pack`), whole, never cut across rows. :func:`health` says what a user should know
before training: duplicates, empty turns, examples longer than the context, and a histogram of
token lengths.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

#: The label of a token the loss does not count (PyTorch's cross-entropy ``ignore_index``).
IGNORE = -100
ROLES = ("system", "user", "assistant")
#: Instruction / response column pairs, in the order they are looked for.
PAIRS = (("instruction", "response"), ("prompt", "completion"), ("question", "answer"),
         ("input", "output"))
#: Unusable lines listed in a message at most.
LISTED = 3


@dataclass
class ChatData:
    """Examples read from one file.

    Attributes
    ----------
    kind : str
        ``chat`` (conversations: lists of ``{"role", "content"}``) or ``text``.
    examples : list
        The conversations, or the texts.
    skipped : list of str
        Why each unusable line or row was left out ("line 4: ..."), in file order.
    """

    kind: str
    examples: list[Any]
    source: str
    skipped: list[str] = field(default_factory=list)


def read_chat(path: str | Path) -> ChatData:
    """Read chat, instruction or plain-text examples from *path* (see the module).

    Raises
    ------
    DataError
        When the file cannot be read, is not one of the three shapes, or holds no usable
        example (the message says which lines are broken and why).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            data = _plain_text(path)
        elif suffix in (".jsonl", ".json"):
            data = _json_lines(path)
        elif suffix == ".csv":
            data = _rows(path, _csv_rows(path))
        else:
            raise DataError(f"{path.name}: use JSON lines (.jsonl), a CSV or a .txt file for "
                            f"language-model data.")
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not UTF-8 text; save it as UTF-8 and try again.") from None
    except OSError as exc:
        raise DataError(f"{path.name} cannot be read ({exc.strerror or exc}).") from None
    if not data.examples:
        listed = "; ".join(data.skipped[:LISTED])
        raise DataError(f"{path.name} has no usable example" + (f" ({listed})." if listed
                                                                 else "."))
    return data


def _plain_text(path: Path) -> ChatData:
    text = path.read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n")]
    return ChatData("text", [p for p in paragraphs if p], str(path))


def _json_lines(path: Path) -> ChatData:
    """Conversations (``messages``), instruction rows or texts, one JSON object a line."""
    records, skipped = [], []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                skipped.append(f"line {number}: not JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                skipped.append(f"line {number}: not a JSON object")
                continue
            records.append((number, record))
    if not records:  # every line broken: say why, not that columns are missing
        return ChatData("chat", [], str(path), skipped)
    if any("messages" in record for _, record in records):
        data = ChatData("chat", [], str(path), skipped)
        for number, record in records:
            conversation, why = _conversation(record.get("messages"))
            if why:
                data.skipped.append(f"line {number}: {why}")
            else:
                data.examples.append(conversation)
        return data
    data = _rows(path, [record for _, record in records])
    data.skipped[:0] = skipped
    return data


def _csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _conversation(messages: Any) -> tuple[list[dict], str]:
    """A checked conversation, or ``([], why it is unusable)``."""
    if not isinstance(messages, list) or not messages:
        return [], '"messages" is not a list of turns'
    turns = []
    for turn in messages:
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            return [], 'a turn without "role" and "content"'
        role, content = turn["role"], turn["content"]
        if role not in ROLES:
            return [], f"role {role!r} is not one of {', '.join(ROLES)}"
        if not isinstance(content, str):
            return [], f"a {role} turn whose content is not text"
        turns.append({"role": role, "content": content})
    if not any(t["role"] == "assistant" and t["content"].strip() for t in turns):
        return [], "no assistant answer to learn from"
    return turns, ""


def _rows(path: Path, rows: list[dict]) -> ChatData:
    """Instruction/response rows as one-turn conversations, or a ``text`` column as texts."""
    columns = {key.strip().lower(): key for row in rows[:1] for key in row}
    for asks, answers in PAIRS:
        if asks in columns and answers in columns:
            data = ChatData("chat", [], str(path))
            system = columns.get("system")
            for number, row in enumerate(rows, start=2 if path.suffix == ".csv" else 1):
                ask, answer = row.get(columns[asks]), row.get(columns[answers])
                if not (isinstance(ask, str) and ask.strip() and isinstance(answer, str)
                        and answer.strip()):
                    data.skipped.append(f"row {number}: an empty {asks} or {answers}")
                    continue
                turns = [{"role": "user", "content": ask}, {"role": "assistant",
                                                           "content": answer}]
                if system and isinstance(row.get(system), str) and row[system].strip():
                    turns.insert(0, {"role": "system", "content": row[system]})
                data.examples.append(turns)
            return data
    if "text" in columns:
        texts = [row.get(columns["text"]) for row in rows]
        return ChatData("text", [t for t in texts if isinstance(t, str) and t.strip()],
                        str(path))
    names = ", ".join(f"{a}/{b}" for a, b in PAIRS)
    raise DataError(f"{path.name} has neither chat messages (a \"messages\" list per line), "
                    f"instruction and response columns ({names}), nor a \"text\" column.")


# -- encoding -------------------------------------------------------------------------------------
@dataclass
class Encoded:
    """Token ids and labels per example (labels :data:`IGNORE` where the loss does not count),
    each cut to the context; ``lengths`` are the lengths before cutting."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    lengths: list[int]
    max_length: int

    @property
    def n_cut(self) -> int:
        """Examples longer than the context (cut at its end)."""
        return sum(n > self.max_length for n in self.lengths)


def _ids(encoded: Any) -> list[int]:
    """Token ids from what ``apply_chat_template(tokenize=True)`` returns (a list, or a
    mapping with ``input_ids`` in newer transformers)."""
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return [int(i) for i in ids]


def render(tokenizer: Any, conversation: list[dict]) -> tuple[list[int], list[int]]:
    """Ids of *conversation* written by *tokenizer*'s chat template, and its labels: the
    tokens of each assistant turn (what follows the template's prompt for it) count, the rest
    are :data:`IGNORE`.

    Raises
    ------
    DataError
        When the template cannot write these roles, or writes a conversation's start
        differently once a turn follows (then the answers cannot be told apart).
    """
    try:
        full = _ids(tokenizer.apply_chat_template(conversation, tokenize=True))
    except Exception as exc:  # noqa: BLE001 - a template's own error: say it plainly
        roles = "/".join(dict.fromkeys(t["role"] for t in conversation))
        raise DataError(f"The model's chat template cannot write a conversation of {roles} "
                        f"turns ({str(exc).strip() or type(exc).__name__}).") from None
    labels = [IGNORE] * len(full)
    for i, turn in enumerate(conversation):
        if turn["role"] != "assistant":
            continue
        prompt = _ids(tokenizer.apply_chat_template(conversation[:i], tokenize=True,
                                                    add_generation_prompt=True))
        end = len(_ids(tokenizer.apply_chat_template(conversation[:i + 1], tokenize=True)))
        start = len(prompt)
        if full[:start] != prompt or end < start:
            raise DataError("The model's chat template writes a conversation's start "
                            "differently once an answer follows, so the answers cannot be "
                            "told apart for the loss.")
        labels[start:end] = full[start:end]
    return full, labels


def encode_examples(data: ChatData, tokenizer: Any, max_length: int) -> Encoded:
    """Encode *data*'s examples for training on *max_length* tokens a row.

    Conversations go through :func:`render` (assistant tokens counted); texts are encoded
    whole, every token counted, with the end-of-text token after each when the tokenizer has
    one. Each example is cut to *max_length*.
    """
    ids, labels, lengths = [], [], []
    eos = getattr(tokenizer, "eos_token_id", None)
    for example in data.examples:
        if data.kind == "chat":
            one, counted = render(tokenizer, example)
        else:
            one = _ids(tokenizer(example, add_special_tokens=False)) + (
                [int(eos)] if eos is not None else [])
            counted = list(one)
        lengths.append(len(one))
        ids.append(one[:max_length])
        labels.append(counted[:max_length])
    return Encoded(ids, labels, lengths, int(max_length))


def pack(encoded: Encoded, pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``max_length`` tokens holding whole examples, several to a row where they fit
    (first fit, longest first), padded with *pad_id*: ``(input_ids, labels, attention)``,
    int64, attention 1 on every token and 0 on padding. Padding is never counted; an example
    is never split across rows."""
    n = encoded.max_length
    order = sorted(range(len(encoded.input_ids)), key=lambda i: -len(encoded.input_ids[i]))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = len(encoded.input_ids[i])
        slot = next((r for r, free in enumerate(room) if free >= size), None)
        if slot is None:
            rows.append([])
            room.append(n)
            slot = len(rows) - 1
        rows[slot].append(i)
        room[slot] -= size
    x = np.full((len(rows), n), pad_id, dtype=np.int64)
    y = np.full((len(rows), n), IGNORE, dtype=np.int64)
    attention = np.zeros((len(rows), n), dtype=np.int64)
    for r, members in enumerate(rows):
        at = 0
        for i in sorted(members):  # file order inside a row
            size = len(encoded.input_ids[i])
            x[r, at:at + size] = encoded.input_ids[i]
            y[r, at:at + size] = encoded.labels[i]
            at += size
        attention[r, :at] = 1
    return x, y, attention


# -- health ---------------------------------------------------------------------------------------
def health(data: ChatData, encoded: Encoded, bins: int = 10) -> dict[str, Any]:
    """What to know before training: ``examples``, ``duplicates`` (examples identical to an
    earlier one), ``empty_turns`` (turns with no text), ``too_long`` (cut to the context),
    ``counted_tokens`` (the tokens the loss counts), ``skipped`` (unusable lines), and
    ``histogram``: token lengths as ``{"edges", "counts"}``."""
    keys = [json.dumps(e, sort_keys=True) for e in data.examples]
    duplicates = sum(n - 1 for n in Counter(keys).values())
    empty = (sum(1 for e in data.examples for t in e if not t["content"].strip())
             if data.kind == "chat" else 0)
    lengths = np.asarray(encoded.lengths, dtype=np.int64)
    counts, edges = np.histogram(lengths, bins=max(1, min(bins, len(set(lengths.tolist())))))
    return {"examples": len(data.examples), "duplicates": int(duplicates),
            "empty_turns": int(empty), "too_long": encoded.n_cut,
            "max_length": encoded.max_length,
            "counted_tokens": int(sum(sum(1 for v in y if v != IGNORE)
                                      for y in encoded.labels)),
            "skipped": list(data.skipped),
            "histogram": {"edges": [float(e) for e in edges],
                          "counts": [int(c) for c in counts]}}
