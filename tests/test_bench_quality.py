"""``bench/bench_quality.py`` compares like with like: the 12 tables as the issue names them, the
same 80/20 rows for both models, and nothing that gives the target away."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    yield load_bench("bench_quality")
    sys.modules.pop("bench_quality", None)


def test_the_twelve_tables_load_without_row_names_or_leaks(bench):
    assert len(bench.TABLES) == 12
    assert sum(t.task == "classification" for t in bench.TABLES) == 6
    for table in bench.TABLES:
        frame = bench.load_table(table)
        assert "rownames" not in frame.columns and table.target in frame.columns
        assert not set(table.drop) & set(frame.columns)
        assert frame[table.target].notna().all() and len(frame) > 500


@pytest.mark.parametrize("n", [546, 8034])
def test_the_split_holds_out_a_fifth_shared_by_both_models(bench, n):
    fit, test = bench.split_rows(n, seed=2)
    assert not set(fit) & set(test) and len(fit) + len(test) == n
    assert len(test) == round(n * 0.2)
    again = bench.split_rows(n, seed=2)
    assert np.array_equal(fit, again[0]) and not np.array_equal(test, bench.split_rows(n, 3)[1])


def test_gradient_boosting_scores_a_table_with_text_columns(bench):
    table = next(t for t in bench.TABLES if t.name == "CPS1985")
    frame = bench.load_table(table)
    fit, test = bench.split_rows(len(frame), seed=0)
    score, _ = bench.boosting_score(frame, table, fit, test, seed=0)
    assert 0.0 < score < 1.0  # R2 on wages: far from perfect, far better than the mean


def test_the_two_text_sets_and_their_reference(bench):
    tweets = bench.load_text(bench.TEXTS[0])
    assert len(tweets) == bench.TWEETS and set(tweets["source"]) == set(bench.TWEET_SOURCES)
    assert list(tweets.columns) == ["text", "source"]
    topics = bench.load_text(bench.TEXTS[1])
    assert len(topics) == 600 and topics["topic"].nunique() == 5
    fit, test = bench.split_rows(len(topics), seed=0)
    score, _ = bench.tfidf_score(topics, bench.TEXTS[1], fit, test, seed=0)
    assert 0.5 < score < 1.0  # far better than 1 in 5, not perfect
