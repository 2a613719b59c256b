"""Under torchrun every rank checks that it holds the same data, split and checkpoint as rank
0 (ml.training.distributed.agree): a node that reads another copy of the file, or a folder
that is not really shared, is refused on every rank with what differs."""

from __future__ import annotations

import pytest

from ml.errors import TrainingError
from ml.training import distributed


def test_ranks_that_see_another_split_are_refused_with_what_differs(monkeypatch):
    facts = {"data": "abc", "data_split": "111", "checkpoint": ""}
    assert distributed.agree(facts) == facts  # one process: nothing to compare
    monkeypatch.setattr(distributed, "_current", distributed.DistInfo(0, 3, 0, "gloo"))
    monkeypatch.setattr(distributed, "gather", lambda obj: [obj, obj, obj])
    assert distributed.agree(facts) == facts
    monkeypatch.setattr(distributed, "gather",
                        lambda obj: [obj, obj, {**obj, "data_split": "222"}])
    with pytest.raises(TrainingError, match="do not agree on the data split: ranks 2 ") as err:
        distributed.agree(facts)
    assert "a folder all nodes share" in str(err.value)
