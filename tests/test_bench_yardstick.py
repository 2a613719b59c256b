"""``bench/bench_yardstick.py`` times like with like: the same run with the yardstick off and on."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from tests.conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    yield load_bench("bench_yardstick")
    sys.modules.pop("bench_yardstick", None)


def test_the_table_has_numbers_a_category_and_missing_cells(bench, tmp_path):
    frame = pd.read_csv(bench.synthetic_table(tmp_path / "t.csv", n=500, d=6))
    assert frame.shape == (500, 7) and frame["group"].nunique() == 8
    assert frame["x4"].isna().any() and frame["y"].notna().all()


@pytest.mark.yardstick
def test_one_run_each_way_reports_the_loop_and_the_classic_model(bench, tmp_path):
    source = bench.synthetic_table(tmp_path / "t.csv", n=400, d=6)
    off = bench.one_run(source, "y", tmp_path / "off", on=False, epochs=2)
    on = bench.one_run(source, "y", tmp_path / "on", on=True, epochs=2)
    assert off["loop"] > 0 and off["classic"] != off["classic"]  # NaN: none fitted
    assert on["classic"] > 0 and 0.0 < on["classic_score"] <= 1.0
