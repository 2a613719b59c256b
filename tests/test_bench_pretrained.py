"""The few-shot photo set of ``bench/bench_pretrained.py`` is what docs/benchmarks.md says."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    yield load_bench("bench_pretrained")
    sys.modules.pop("bench_pretrained", None)


@pytest.mark.parametrize("size", [(640, 427), (720, 477), (900, 277), (301, 199)])
def test_crops_never_share_a_pixel(bench, size):
    n = bench.SHOTS + bench.VAL_SHOTS + bench.TEST_SHOTS
    for seed in range(5):
        boxes = bench.crop_boxes(*size, n, np.random.default_rng(seed))
        covered = np.zeros(size[::-1], int)
        for left, top, right, bottom in boxes:
            assert 0 <= left < right <= size[0] and 0 <= top < bottom <= size[1]
            covered[top:bottom, left:right] += 1
        assert len(boxes) == n and covered.max() == 1


def test_docstring_summaries_do_not_name_the_package(bench):
    text = bench._summary("Return a `torch.Tensor` from numpy.ndarray data, as in NumPy.\n\n"
                          "Second paragraph.")
    assert text == "Return a from data, as in ."
