"""Turning free text into token ids for a text model.

A :class:`Tokenizer` splits text into words and punctuation with a Unicode-aware regular
expression, keeps the most frequent training words as its vocabulary, and encodes each text as a
fixed-length row of ids (id 0 pads, id 1 stands for any word outside the vocabulary). It is fitted
on the training split only, so validation and test words the model never saw count as unknown,
exactly as they will for new data. The fitted tokenizer is plain JSON, stored with the
preprocessing of a run.

:func:`looks_like_text` decides whether a column holds free text (reviews, descriptions) rather
than short codes, categories or identifiers.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .settings import as_int, settings_from_dict

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
#: Version of :meth:`Tokenizer.to_dict` documents.
TOKENIZER_VERSION = 1
#: Words (with an inner apostrophe: "don't", "l'eau") or single punctuation marks. ``\w`` is
#: Unicode-aware, so accented letters and CJK characters are word characters.
TOKEN_RE = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
#: The automatic length covers this percentile of the training texts' token counts ...
AUTO_LENGTH_PERCENTILE = 95
#: ... clamped to this range.
AUTO_LENGTH_MIN, AUTO_LENGTH_MAX = 8, 512
MAX_VOCAB_RANGE = (100, 1_000_000)
MAX_LENGTH_LIMIT = 4096
MIN_COUNT_RANGE = (1, 1000)
#: Marks the end of each text when a chunk of texts is tokenised at once (see _token_chunks).
_SEP = "\x00"
#: Texts tokenised together.
CHUNK = 20_000
#: :func:`looks_like_text` looks at this many values at most.
TEXT_SAMPLE = 2000
#: Scripts written without spaces between words (Thai, Japanese kana, CJK ideographs): there a long
#: value with no spaces is still a sentence, not an identifier.
_SPACELESS_SCRIPT = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


@dataclass
class TextSettings:
    """The user's tokenisation choices (stored in the project file).

    Attributes
    ----------
    lowercase : bool
        Lower-case the text before splitting it, so "Good" and "good" are one word.
    max_vocab : int
        Most frequent training words kept (PAD and UNK come on top), 100 to 1,000,000.
    max_length : int
        Tokens per example (longer texts are cut, shorter ones padded); 0 picks the length that
        fits 95% of the training texts, clamped to 8..512.
    min_count : int
        Training words seen fewer times than this are treated as unknown, 1 to 1000.
    """

    lowercase: bool = True
    max_vocab: int = 20000
    max_length: int = 0
    min_count: int = 1

    def validate(self) -> None:
        """Raise :class:`DataError` when a value is out of range."""
        lo, hi = MAX_VOCAB_RANGE
        if not lo <= self.max_vocab <= hi:
            raise DataError(f"The vocabulary size must be from {lo:,} to {hi:,} words (got "
                            f"{self.max_vocab:,}).")
        if not 0 <= self.max_length <= MAX_LENGTH_LIMIT:
            raise DataError(f"The tokens kept per example must be from 1 to {MAX_LENGTH_LIMIT}, "
                            f"or 0 for automatic (got {self.max_length}).")
        lo, hi = MIN_COUNT_RANGE
        if not lo <= self.min_count <= hi:
            raise DataError(f"The minimum word count must be from {lo} to {hi} (got "
                            f"{self.min_count}).")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TextSettings:
        """Settings from a project file; unknown keys are ignored, missing ones take defaults.

        Raises
        ------
        DataError
            When a value has the wrong type (the range is checked by :meth:`validate`).
        """
        return settings_from_dict(
            cls, d, setting="The text setting",
            not_a_dict="The text settings in the project file are not a set of named values; "
                       "remove them to use the defaults.")


def _as_str(text: Any) -> str:
    """*text* as a string; missing values (None, NaN, pd.NA) become empty."""
    if type(text) is str:
        return text
    if text is None:
        return ""
    try:
        if pd.isna(text):
            return ""
    except (TypeError, ValueError):  # pd.isna of a list-like is not a single truth value
        pass
    return str(text)


@dataclass
class Tokenizer:
    """A fitted word vocabulary and the fixed length texts are encoded to.

    Attributes
    ----------
    settings : TextSettings
    vocab : list of str
        Index = token id; ``vocab[0]`` is :data:`PAD` and ``vocab[1]`` is :data:`UNK`.
    max_length : int
        Tokens per encoded example (resolved; never 0).
    """

    settings: TextSettings
    vocab: list[str]
    max_length: int

    def __post_init__(self) -> None:
        self._index = {word: i for i, word in enumerate(self.vocab)}
        # The encoder's lookup also maps the end-of-text marker, to -1.
        self._lookup = {**self._index, _SEP: -1}

    # -- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(cls, texts: Iterable[str | None], settings: TextSettings) -> Tokenizer:
        """Build the vocabulary and length from the *training* texts.

        The vocabulary is ordered by frequency (most frequent first), ties alphabetically, so the
        same texts always give the same ids.

        Raises
        ------
        DataError
            For invalid settings, or when there is no text at all.
        """
        settings.validate()
        counts: Counter[str] = Counter()
        lengths = []
        for tokens, _ in _token_chunks(texts, settings.lowercase):
            counts.update(tokens)
            is_sep = np.fromiter(map(_SEP.__eq__, tokens), dtype=bool, count=len(tokens))
            lengths.append(np.diff(np.flatnonzero(is_sep), prepend=-1) - 1)
        counts.pop(_SEP, None)
        all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        # Empty texts say nothing about how long a text is; the percentile ignores them.
        all_lengths = all_lengths[all_lengths > 0]
        if not all_lengths.size:
            raise DataError("The text column has no words in the training rows. Choose a column "
                            "that holds text, or check that the file was read correctly.")
        kept = [(word, n) for word, n in counts.items() if n >= settings.min_count]
        kept.sort(key=lambda item: (-item[1], item[0]))
        vocab = [PAD, UNK] + [word for word, _ in kept[:settings.max_vocab]]
        if settings.max_length:
            length = settings.max_length
        else:
            length = math.ceil(float(np.percentile(all_lengths, AUTO_LENGTH_PERCENTILE)))
            length = min(max(length, AUTO_LENGTH_MIN), AUTO_LENGTH_MAX)
        return cls(settings=settings, vocab=vocab, max_length=length)

    # -- using ----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids, PAD and UNK included (the size of the model's embedding table)."""
        return len(self.vocab)

    def tokenize(self, text: str | None) -> list[str]:
        """Split *text* into words and punctuation marks (lower-cased if the settings say so)."""
        return _tokenize(text, self.settings.lowercase)

    def encode(self, texts: Sequence[Any]) -> np.ndarray:
        """Encode *texts* as an ``int64`` array ``(len(texts), max_length)``.

        Texts are cut after ``max_length`` tokens and right-padded with 0; words outside the
        vocabulary become 1; missing texts are all padding.
        """
        parts = [self._encode_chunk(tokens, n) for tokens, n in
                 _token_chunks(texts, self.settings.lowercase)]
        if not parts:
            return np.zeros((0, self.max_length), dtype=np.int64)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _encode_chunk(self, tokens: list[str], n: int) -> np.ndarray:
        """Ids ``(n, max_length)`` of *n* texts whose *tokens* end in one :data:`_SEP` each."""
        ids = np.fromiter(map(self._lookup.get, tokens, itertools.repeat(UNK_ID)),
                          dtype=np.int64, count=len(tokens))
        is_sep = ids == -1
        sep_pos = np.flatnonzero(is_sep)
        row = np.cumsum(is_sep) - is_sep
        starts = np.concatenate(([0], sep_pos[:-1] + 1))
        col = np.arange(len(ids)) - starts[row]
        keep = ~is_sep & (col < self.max_length)
        out = np.zeros((n, self.max_length), dtype=np.int64)
        out[row[keep], col[keep]] = ids[keep]
        return out

    def coverage(self, texts: Iterable[Any]) -> float:
        """Share of the tokens of *texts* that are in the vocabulary (1.0 when there are none)."""
        total = known = 0
        for tokens, _ in _token_chunks(texts, self.settings.lowercase):
            ids = np.fromiter(map(self._lookup.get, tokens, itertools.repeat(UNK_ID)),
                              dtype=np.int64, count=len(tokens))
            total += int((ids != -1).sum())
            known += int((ids > UNK_ID).sum())
        return known / total if total else 1.0

    def preview(self, texts: Iterable[Any], n: int = 5) -> list[dict[str, Any]]:
        """How the first *n* texts are tokenised, for display.

        Returns
        -------
        list of dict
            Per text: ``text`` (the original, missing = ""), ``tokens`` and ``ids`` (the tokens
            the model sees, i.e. at most ``max_length``, unknown words keep their spelling in
            ``tokens`` and have id 1 in ``ids``), ``n_unknown`` (unknown among those) and
            ``truncated`` (whether tokens were cut off).
        """
        out = []
        for text in itertools.islice(texts, max(n, 0)):
            all_tokens = _tokenize(text, self.settings.lowercase)
            tokens = all_tokens[:self.max_length]
            ids = [self._index.get(tok, UNK_ID) for tok in tokens]
            out.append({"text": _as_str(text), "tokens": tokens, "ids": ids,
                        "n_unknown": sum(1 for i in ids if i == UNK_ID),
                        "truncated": len(all_tokens) > self.max_length})
        return out

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain JSON document that :meth:`from_dict` turns back into this tokenizer."""
        return {"version": TOKENIZER_VERSION, "settings": self.settings.to_dict(),
                "vocab": list(self.vocab), "max_length": self.max_length,
                "pad_id": PAD_ID, "unk_id": UNK_ID,
                "pattern": TOKEN_RE.pattern, "lowercase": self.settings.lowercase}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tokenizer:
        """Rebuild a tokenizer from :meth:`to_dict` output.

        Raises
        ------
        DataError
            When the document is from a newer TrainDesk or is incomplete.
        """
        if not isinstance(d, dict) or "vocab" not in d or "max_length" not in d:
            raise DataError("The saved tokenizer is missing or incomplete; train the model again.")
        if d.get("version", 1) > TOKENIZER_VERSION:
            raise DataError("The saved tokenizer was written by a newer TrainDesk; update "
                            "TrainDesk to use it.")
        vocab = d["vocab"]
        if (not isinstance(vocab, list) or len(vocab) < 2 or vocab[:2] != [PAD, UNK]
                or not all(isinstance(w, str) for w in vocab)):
            raise DataError("The saved tokenizer's vocabulary is damaged; train the model again.")
        length = as_int(d["max_length"], "The saved tokenizer's length")
        if length < 1:
            raise DataError("The saved tokenizer's length is not positive; train the model again.")
        return cls(settings=TextSettings.from_dict(d.get("settings")), vocab=list(vocab),
                   max_length=length)


def _clean(text: Any) -> str:
    """*text* as a string without :data:`_SEP` (a control character no real text needs)."""
    text = text if type(text) is str else _as_str(text)
    return text.replace(_SEP, " ") if _SEP in text else text


def _tokenize(text: Any, lowercase: bool) -> list[str]:
    text = _clean(text)
    return TOKEN_RE.findall(text.lower() if lowercase else text)


def _token_chunks(texts: Iterable[Any], lowercase: bool) -> Iterator[tuple[list[str], int]]:
    """Tokens of up to :data:`CHUNK` texts at a time, each text's tokens followed by :data:`_SEP`.

    Joining the texts and running the regular expression once per chunk saves the per-call cost
    of a million small calls, lets the caller work on whole arrays, and the chunks keep the memory
    for a million texts bounded. ``_SEP`` is a punctuation token to the regular expression (and
    no text keeps one, see :func:`_clean`), so it marks exactly where each text ends.
    """
    it = iter(texts)
    while True:
        chunk = [_clean(t) for t in itertools.islice(it, CHUNK)]
        if not chunk:
            return
        joined = _SEP.join(chunk) + _SEP
        yield TOKEN_RE.findall(joined.lower() if lowercase else joined), len(chunk)


def looks_like_text(series: pd.Series) -> bool:
    """Whether *series* holds free text rather than categories, codes, numbers or identifiers.

    Free text means strings whose median is at least 4 words, or at least 30 characters in more
    than one word (or in a script written without spaces, such as Chinese), with at least half of
    the non-missing values distinct. Long one-word values (UUIDs, hashes, URLs, paths) are
    identifiers, not text. At most :data:`TEXT_SAMPLE` values are examined (a seeded random
    sample), so this is fast on a million rows.
    """
    values = series.dropna()
    if len(values) > TEXT_SAMPLE:
        # A (seeded) random sample rather than the head or an even stride: files are often sorted
        # by a column, or repeat in blocks.
        values = values.sample(TEXT_SAMPLE, random_state=0)
    is_str = [isinstance(v, str) for v in values]
    if not values.size or sum(is_str) < 0.9 * len(is_str):
        return False
    strings = values[is_str].astype(object).str.strip()
    strings = strings[strings != ""]
    if strings.empty:
        return False
    # Numbers stored as strings ("12.5", "1,000") are not text, however long or varied.
    numbers = pd.to_numeric(strings.str.replace(",", "", regex=False), errors="coerce")
    if numbers.notna().mean() > 0.5:
        return False
    if strings.nunique() < 0.5 * len(strings):
        return False
    n_words = float(strings.str.split().str.len().median())
    if n_words >= 4:
        return True
    if strings.str.len().median() < 30:
        return False
    return n_words >= 2 or strings.str.contains(_SPACELESS_SCRIPT.pattern).mean() > 0.5


class WordPieces:
    """A pretrained backbone's own tokenizer (its ``tokenizer.json``, run by ``tokenizers``).

    Encodes each text as ``[CLS] pieces ... [SEP]`` cut and padded to ``max_length``, exactly as
    the backbone was trained to read it. The whole ``tokenizer.json`` is kept in the document, so
    a run (and its exported package) needs no model folder to encode new text.
    """

    TYPE = "pretrained"

    def __init__(self, doc: dict[str, Any]):
        from tokenizers import Tokenizer as FastTokenizer

        try:
            self._tok = FastTokenizer.from_str(doc["json"])
            self.max_length = int(doc["max_length"])
            self.pad_id = int(doc.get("pad_id", 0))
            self.unk_id = int(doc.get("unk_id", UNK_ID))
        except (KeyError, TypeError, ValueError, Exception) as exc:
            raise DataError(f"The saved word-piece tokenizer is damaged ({exc}); train the model "
                            f"again.") from None
        self._tok.enable_truncation(self.max_length)
        self._tok.enable_padding(length=self.max_length, pad_id=self.pad_id)
        self.doc = doc
        #: Ids position 0 holds [CLS]: the first word piece is at 1.
        self.first_position = 1

    @classmethod
    def document(cls, tokenizer_json: str, max_length: int, backbone: str) -> dict[str, Any]:
        """The preprocessing's tokenizer document for a backbone's ``tokenizer.json``."""
        from tokenizers import Tokenizer as FastTokenizer

        tok = FastTokenizer.from_str(tokenizer_json)
        pad = tok.padding["pad_id"] if tok.padding else tok.token_to_id("[PAD]")
        unk = tok.token_to_id("[UNK]")
        return {"type": cls.TYPE, "backbone": backbone, "max_length": int(max_length),
                "pad_id": int(pad or 0), "unk_id": int(UNK_ID if unk is None else unk),
                "vocab_size": int(tok.get_vocab_size()), "json": tokenizer_json}

    @property
    def vocab_size(self) -> int:
        return int(self.doc.get("vocab_size") or self._tok.get_vocab_size())

    def tokenize(self, text: Any) -> list[str]:
        """The word pieces of *text* that the model reads (without [CLS] / [SEP] / padding)."""
        enc = self._tok.encode(_as_str(text))
        return [t for t, special in zip(enc.tokens, enc.special_tokens_mask, strict=True)
                if not special]

    def encode(self, texts: Sequence[Any]) -> np.ndarray:
        """``int64`` ids ``(len(texts), max_length)``; missing texts are empty."""
        strings = [_as_str(t) for t in texts]
        if not strings:
            return np.zeros((0, self.max_length), dtype=np.int64)
        out = np.empty((len(strings), self.max_length), dtype=np.int64)
        for start in range(0, len(strings), CHUNK):
            batch = self._tok.encode_batch(strings[start:start + CHUNK])
            out[start:start + len(batch)] = [e.ids for e in batch]
        return out

    def coverage(self, texts: Iterable[Any]) -> float:
        """Share of word pieces that are not the unknown piece (1.0 when there are none)."""
        total = known = 0
        for text in texts:
            ids = self._tok.encode(_as_str(text)).ids
            total += len(ids)
            known += sum(1 for i in ids if i != self.unk_id)
        return known / total if total else 1.0

    def preview(self, texts: Iterable[Any], n: int = 5) -> list[dict[str, Any]]:
        """How the first *n* texts are cut into word pieces (see :meth:`Tokenizer.preview`)."""
        out = []
        for text in itertools.islice(texts, max(n, 0)):
            self._tok.no_truncation()
            full = self._tok.encode(_as_str(text))
            self._tok.enable_truncation(self.max_length)
            enc = self._tok.encode(_as_str(text))
            keep = [i for i, m in enumerate(enc.special_tokens_mask) if not m]
            out.append({"text": _as_str(text), "tokens": [enc.tokens[i] for i in keep],
                        "ids": [enc.ids[i] for i in keep],
                        "n_unknown": sum(1 for i in keep if enc.ids[i] == self.unk_id),
                        "truncated": len(full.ids) > self.max_length})
        return out

    def to_dict(self) -> dict[str, Any]:
        return dict(self.doc)


def piece_length(tokenizer_json: str, texts: Sequence[Any], limit: int) -> int:
    """Word pieces (with [CLS] and [SEP]) that cover :data:`AUTO_LENGTH_PERCENTILE` % of
    *texts* (a seeded sample of up to :data:`TEXT_SAMPLE`), from 8 up to *limit*."""
    from tokenizers import Tokenizer as FastTokenizer

    tok = FastTokenizer.from_str(tokenizer_json)
    tok.no_truncation()
    tok.no_padding()
    strings = [_as_str(t) for t in texts]
    if len(strings) > TEXT_SAMPLE:
        pick = np.random.default_rng(0).choice(len(strings), TEXT_SAMPLE, replace=False)
        strings = [strings[i] for i in pick]
    if not strings:
        return int(limit)
    counts = [len(e.ids) for e in tok.encode_batch(strings)]
    length = math.ceil(float(np.percentile(counts, AUTO_LENGTH_PERCENTILE)))
    return int(min(max(length, AUTO_LENGTH_MIN), limit))


def load_tokenizer(doc: dict[str, Any]) -> Tokenizer | WordPieces:
    """The tokenizer a preprocessing document holds: TrainDesk's own words, or word pieces."""
    if isinstance(doc, dict) and doc.get("type") == WordPieces.TYPE:
        return WordPieces(doc)
    return Tokenizer.from_dict(doc)
