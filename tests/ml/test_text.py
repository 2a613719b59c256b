"""Tokenisation of free text: vocabulary, encoding, settings and text-column detection."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ml.data.text import PAD, UNK, TextSettings, Tokenizer, looks_like_text
from ml.errors import DataError

REVIEWS = [
    "The battery lasts all day, and the screen is bright.",
    "Terrible battery! It died after two hours.",
    "Great screen, great price; I'd buy it again.",
    "The price is fair but the battery is weak.",
    "Shipping was slow and the box was damaged.",
]


def fit(texts=REVIEWS, **kwargs) -> Tokenizer:
    return Tokenizer.fit(texts, TextSettings(**kwargs))


# -- vocabulary -----------------------------------------------------------------------------------
def test_vocab_starts_with_specials_and_is_ordered_by_frequency_then_alphabet():
    tok = fit(["b a c a", "c a"])
    assert tok.vocab == [PAD, UNK, "a", "c", "b"]
    assert tok.vocab_size == 5
    tok = fit(["zeta alpha mid", "mid alpha zeta"])
    assert tok.vocab[2:] == ["alpha", "mid", "zeta"]


def test_vocab_limit_is_respected_and_deterministic():
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 500, 20)) for _ in range(300)]
    tok = fit(texts, max_vocab=100)
    assert tok.vocab_size == 102
    assert fit(texts, max_vocab=100).vocab == tok.vocab
    assert fit(list(reversed(texts)), max_vocab=100).vocab == tok.vocab
    # The kept words are the most frequent ones.
    counts = pd.Series(" ".join(texts).split()).value_counts()
    assert set(tok.vocab[2:]) >= set(counts.index[counts > counts.iloc[100]])


def test_min_count_turns_rare_words_into_unknown():
    tok = fit(["common common rare", "common other other"], min_count=2)
    assert tok.vocab == [PAD, UNK, "common", "other"]
    assert tok.encode(["rare common"])[0, :2].tolist() == [1, 2]


@pytest.mark.parametrize("lowercase", [True, False])
def test_lowercase_on_and_off(lowercase):
    tok = fit(["Good good GOOD"], lowercase=lowercase)
    if lowercase:
        assert tok.vocab[2:] == ["good"]
        assert tok.tokenize("GoOd") == ["good"]
    else:
        assert sorted(tok.vocab[2:]) == ["GOOD", "Good", "good"]
        assert tok.tokenize("GoOd") == ["GoOd"]
        assert tok.encode(["GoOd"])[0, 0] == 1


def test_tokenize_splits_words_punctuation_and_contractions():
    tok = fit()
    assert tok.tokenize("I'd say: it's great, isn't it?") == [
        "i'd", "say", ":", "it's", "great", ",", "isn't", "it", "?"]
    assert tok.tokenize(None) == []
    assert tok.tokenize(float("nan")) == []
    assert tok.tokenize(pd.NA) == []
    assert tok.tokenize("") == []
    assert tok.tokenize(42) == ["42"]


# -- encoding -------------------------------------------------------------------------------------
def test_encode_pads_truncates_and_marks_unknown_words():
    tok = fit(["a b c d e f g h i j"], max_length=4)
    ids = tok.encode(["a b", "a b c d e f", "zzz a", None, ""])
    assert ids.dtype == np.int64
    assert ids.shape == (5, 4)
    a, b, c, d = (tok.vocab.index(w) for w in "abcd")
    assert ids.tolist() == [[a, b, 0, 0], [a, b, c, d], [1, a, 0, 0], [0] * 4, [0] * 4]


def test_encode_matches_tokenize_for_many_texts():
    # More texts than one chunk of the fast path, with missing values and a stray NUL character.
    rng = np.random.default_rng(1)
    words = ["alpha", "beta", "gamma", "delta", "don't", "Ünïcode", "!", "?", "日本語"]
    texts: list = [" ".join(rng.choice(words, rng.integers(0, 15))) for _ in range(45_000)]
    texts[7], texts[11], texts[13] = None, float("nan"), "beta\x00gamma"
    tok = fit(texts[:1000], max_length=10)
    ids = tok.encode(texts)
    assert ids.shape == (45_000, 10)
    for i in [0, 1, 7, 11, 13, 20_000, 39_999, 40_000, 44_999]:
        expected = [tok.vocab.index(t) if t in tok.vocab else 1 for t in tok.tokenize(texts[i])]
        expected = (expected + [0] * 10)[:10]
        assert ids[i].tolist() == expected, i
    assert tok.tokenize("beta\x00gamma") == ["beta", "gamma"]


def test_encode_of_nothing_and_of_a_series():
    tok = fit()
    assert tok.encode([]).shape == (0, tok.max_length)
    series = pd.Series(REVIEWS, index=range(100, 105))
    assert np.array_equal(tok.encode(series), tok.encode(REVIEWS))


def test_auto_max_length_is_the_95th_percentile_clamped():
    texts = [" ".join(["w"] * n) for n in range(1, 101)]
    assert fit(texts).max_length == math.ceil(np.percentile(np.arange(1, 101), 95))
    assert fit(["one two"]).max_length == 8
    assert fit([" ".join(["w"] * 2000)]).max_length == 512
    # Missing and empty texts do not pull the length down.
    assert fit(texts + [None] * 500 + [""] * 500).max_length == fit(texts).max_length
    assert fit(texts, max_length=3).max_length == 3


@pytest.mark.parametrize("texts", [[], [None, float("nan")], ["", "   ", "\n"]])
def test_fit_without_any_words_is_a_data_error(texts):
    with pytest.raises(DataError, match="no words"):
        Tokenizer.fit(texts, TextSettings())


def test_unicode_text_is_tokenised():
    tok = fit(["Crème brûlée très bonne", "日本語のテキスト、とても良い。", "Straße 🙂 naïve"])
    assert tok.tokenize("Crème BRÛLÉE") == ["crème", "brûlée"]
    assert "、" in tok.tokenize("日本語のテキスト、とても良い。")
    assert "🙂" in tok.vocab
    ids = tok.encode(["crème brûlée", "日本語のテキスト、とても良い。"])
    assert (ids[:, 0] > 1).all()


def test_coverage_and_preview():
    tok = fit(["a b c"], max_length=3)
    assert tok.coverage(["a b x y"]) == pytest.approx(0.5)
    assert tok.coverage([None, ""]) == 1.0
    items = tok.preview(["a x", "a b c a b", None], n=2)
    assert len(items) == 2
    assert items[0] == {"text": "a x", "tokens": ["a", "x"], "ids": [tok.vocab.index("a"), 1],
                        "n_unknown": 1, "truncated": False}
    assert items[1]["tokens"] == ["a", "b", "c"] and items[1]["truncated"] is True
    assert tok.preview([None])[0]["text"] == ""


def test_round_trip_through_json_gives_identical_encodings():
    tok = fit(REVIEWS, lowercase=False, max_vocab=100, min_count=1)
    doc = json.loads(json.dumps(tok.to_dict()))
    assert doc["version"] == 1
    again = Tokenizer.from_dict(doc)
    assert again == tok
    probe = REVIEWS + ["unseen words here", None, "The BATTERY"]
    assert np.array_equal(again.encode(probe), tok.encode(probe))


@pytest.mark.parametrize("doc", [{}, {"vocab": ["a"], "max_length": 3},
                                 {"vocab": [PAD, UNK], "max_length": 0},
                                 {"version": 99, "vocab": [PAD, UNK], "max_length": 3}])
def test_damaged_tokenizer_documents_are_data_errors(doc):
    with pytest.raises(DataError):
        Tokenizer.from_dict(doc)


# -- settings -------------------------------------------------------------------------------------
def test_settings_round_trip_and_ignore_unknown_keys():
    settings = TextSettings(lowercase=False, max_vocab=500, max_length=64, min_count=3)
    assert TextSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    assert TextSettings.from_dict({"future_option": 1}) == TextSettings()
    assert TextSettings.from_dict(None) == TextSettings()
    assert TextSettings.from_dict({"max_vocab": 500.0}).max_vocab == 500


@pytest.mark.parametrize("doc", [{"lowercase": "yes"}, {"max_vocab": "many"},
                                 {"max_length": 2.5}, {"min_count": True}])
def test_settings_with_wrong_types_are_data_errors(doc):
    with pytest.raises(DataError, match="must be"):
        TextSettings.from_dict(doc)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_vocab": 99}, "vocabulary size"),
    ({"max_vocab": 1_000_001}, "vocabulary size"),
    ({"max_length": -1}, "tokens kept"),
    ({"max_length": 5000}, "tokens kept"),
    ({"min_count": 0}, "minimum word count"),
])
def test_validate_rejects_out_of_range_values(kwargs, message):
    settings = TextSettings(**kwargs)
    with pytest.raises(DataError, match=message) as info:
        settings.validate()
    assert str(info.value).count(". ") == 0  # one plain sentence
    with pytest.raises(DataError):
        Tokenizer.fit(REVIEWS, settings)


# -- detecting text columns -----------------------------------------------------------------------
def _reviews(n: int, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "screen", "battery", "price", "fast", "slow", "love", "hate", "the",
             "it", "is", "was", "very"]
    return pd.Series([" ".join(rng.choice(words, rng.integers(4, 20))) for _ in range(n)])


def test_looks_like_text():
    assert looks_like_text(_reviews(300))
    assert looks_like_text(pd.Series(REVIEWS * 2 + [None, "Fine."]))  # 50% distinct is enough
    # Long single sentences in a script without spaces.
    sentence = "条评论，产品质量非常好，物流也很快，下次还会再买这个牌子的东西。"
    cjk = pd.Series([f"这是第{i}{sentence}" for i in range(50)])
    assert looks_like_text(cjk)


@pytest.mark.parametrize("series", [
    pd.Series(np.random.default_rng(0).choice(["red", "green", "blue"], 500)),  # categories
    pd.Series(["New York City, USA", "Paris, France"] * 200),  # repeated long-ish labels
    pd.Series([f"CUST-{i:06d}" for i in range(500)]),  # unique one-word codes
    pd.Series([f"3f2a9c1e-7b4d-4e8a-9f10-{i:012d}" for i in range(500)]),  # UUIDs, 36 chars
    pd.Series(np.random.default_rng(0).normal(size=500)),  # numbers
    pd.Series([f"{x:.6f}" for x in np.random.default_rng(0).normal(size=500)]),  # numbers as text
    pd.Series([None] * 10, dtype=object),
    pd.Series([], dtype=object),
    pd.Series(["", " "] * 5),
])
def test_non_text_columns_are_not_text(series):
    assert not looks_like_text(series)


def test_looks_like_text_is_fast_on_a_million_rows():
    import time

    big = pd.Series([f"review {i} says the battery is good" for i in range(1_000_000)])
    start = time.perf_counter()
    assert looks_like_text(big)
    assert not looks_like_text(pd.Series(np.arange(1_000_000)).astype(str))
    assert time.perf_counter() - start < 2.0
