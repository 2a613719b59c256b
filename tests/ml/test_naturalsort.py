"""One natural order for class names and category values (images, tables, summaries)."""

import random
import subprocess
import sys
from pathlib import Path

from ml.data.naturalsort import natural_key


def test_numbers_numerically_and_before_words():
    labels = ["cat", "10", "2", "-1", "2.5", "1e2", "dog"]
    assert sorted(labels, key=natural_key) == ["-1", "2", "2.5", "10", "1e2", "cat", "dog"]


def test_digit_runs_inside_words_compare_as_numbers():
    labels = ["img10", "img2", "img1", "img1b", "img1a", "x9y10", "x9y9"]
    assert sorted(labels, key=natural_key) == ["img1", "img1a", "img1b", "img2", "img10",
                                               "x9y9", "x9y10"]


def test_case_is_ignored_then_breaks_ties():
    assert sorted(["banana", "Apple", "apple", "Cherry"], key=natural_key) == [
        "Apple", "apple", "banana", "Cherry"]


def test_non_finite_numbers_are_words_and_nothing_ties():
    labels = ["nan", "inf", "1", "01", "1.0", "img02", "img2", "NaN", "-inf"]
    keys = [natural_key(label) for label in labels]
    assert len(set(keys)) == len(labels)  # a total order: no two different labels tie
    ordered = sorted(labels, key=natural_key)
    assert ordered[:3] == ["01", "1", "1.0"]  # equal numbers by their exact text
    assert set(ordered[3:]) == {"nan", "inf", "NaN", "-inf", "img02", "img2"}


def test_order_does_not_depend_on_input_order_or_hash_seed():
    labels = ["1", "01", "1.0", "b", "B", "a10", "a9", "A9"]
    expected = sorted(labels, key=natural_key)
    for seed in range(5):
        shuffled = labels[:]
        random.Random(seed).shuffle(shuffled)
        assert sorted(set(shuffled), key=natural_key) == expected
    code = ("from ml.data.naturalsort import natural_key; "
            f"print(sorted(set({labels!r}), key=natural_key))")
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={"PYTHONHASHSEED": hash_seed},
                             cwd=Path(__file__).parents[2])
        assert out.stdout.strip() == repr(expected)


def test_images_and_tables_agree(tmp_path):
    import pandas as pd

    from ml.data.images import ImageIndex
    from ml.data.preprocessing import Preprocessor

    labels = ["img10", "img2", "Cat", "cat", "3", "nan"]
    frame = pd.DataFrame({"path": [f"{i}.png" for i in range(len(labels))], "label": labels})
    index = ImageIndex(root=str(tmp_path), frame=frame)
    table = pd.DataFrame({"x": range(len(labels)), "y": labels})
    pre = Preprocessor.fit(table, target="y", features=["x"], task="classification",
                           types={"x": "numeric", "y": "categorical"})
    assert index.class_names == pre.class_names == ["3", "Cat", "cat", "img2", "img10", "nan"]
