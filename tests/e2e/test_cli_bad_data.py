"""Bad data on the command line: one readable line, exit status 2, no traceback."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli, run_main
from tests.e2e.test_cli import one_line_error
from tests.ml.test_import_pipeline import make_image_folder


def _empty_sheet(path):
    from openpyxl import Workbook

    Workbook().save(path)


def _zip_with_traversal(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cats/a.png", b"x")
        zf.writestr("../escape.png", b"x")


def _single_class(path):
    pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 7, "y": ["same"] * 30}).to_csv(
        path, index=False)


CASES = [
    ("empty.csv", lambda p: p.write_bytes(b""), ["--target", "y"], "empty"),
    ("garbage.csv", lambda p: p.write_bytes(bytes(range(256)) * 8), ["--target", "y"],
     "binary"),
    ("ragged.csv", lambda p: p.write_bytes(b"a,b,y\n1,2,3\n4,5,6,7,8\n"), ["--target", "y"],
     "same number of fields"),
    ("single.csv", _single_class, ["--target", "y"], "only one class"),
    ("empty.xlsx", _empty_sheet, ["--target", "y"], "no data"),
    ("no_images", lambda p: p.mkdir(), [], "no images"),
    ("evil.zip", _zip_with_traversal, [], "escape"),
    ("one_class", lambda p: make_image_folder(p, classes=("cats",), n=3), [], "one class"),
]


@pytest.mark.parametrize("name, make, extra, words", CASES, ids=[c[0] for c in CASES])
def test_bad_data_gets_one_line(tmp_path, name, make, extra, words):
    path = tmp_path / name
    make(path)
    # The first as a user runs it; the others in this process (the same code and the same one
    # line, without importing torch again).
    run = run_main if name == CASES[0][0] else run_cli
    one_line_error(run("train", "--data", str(path), *extra, "--epochs", "1"), words)
