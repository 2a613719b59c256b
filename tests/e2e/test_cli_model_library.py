"""`main.py models`: the pretrained backbones' table, --json, and adding or removing a model
folder - every folder TrainDesk cannot use refused in one readable line."""

import json

import pytest

from tests.conftest import run_cli, run_main
from tests.e2e.test_cli import one_line_error
from tests.ml.test_model_library import REFUSALS, bad_folder


def test_models_lists_the_backbones_and_an_added_folder_until_it_is_removed(tiny_bert):
    proc = run_main("models", "--add", str(tiny_bert))
    assert proc.returncode == 0, proc.stderr
    assert f"train with --backbone {tiny_bert}" in proc.stdout
    proc = run_cli("models")  # in this process (plain `models` runs as a user runs it in
    assert proc.returncode == 0, proc.stderr  # tests/e2e/test_cli_models.py)
    table = proc.stdout.split("Pretrained backbones")[1].splitlines()[1:]
    assert table[0].split()[:7] == ["NAME", "KIND", "PARAMS", "SIZE", "INPUT", "LICENCE",
                                    "FITS"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert list(rows) == ["efficientnet_lite0", "minilm", str(tiny_bert)]
    assert "22.6M" in rows["minilm"] and "128 word pieces" in rows["minilm"]
    assert "224 px" in rows["efficientnet_lite0"] and "Apache-2.0" in rows["efficientnet_lite0"]
    assert "to fine-tune (batch of 32)" in rows["minilm"]
    proc = run_cli("models", "--json")
    doc = json.loads(proc.stdout)
    assert [b["key"] for b in doc["backbones"]] == ["efficientnet_lite0", "minilm",
                                                    str(tiny_bert)]
    assert doc["backbones"][2]["kind"] == "text" and doc["backbones"][1]["fit"]
    proc = run_cli("models", "--remove", str(tiny_bert))
    assert proc.returncode == 0 and "Removed" in proc.stdout
    assert str(tiny_bert) not in run_cli("models").stdout
    one_line_error(run_cli("models", "--remove", str(tiny_bert)), "is not in the model library")


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_models_add_refuses_a_folder_it_cannot_use_in_one_line(kind, tmp_path, tiny_bert):
    folder = bad_folder(kind, tmp_path, tiny_bert)
    run = run_main if kind == "remote_code" else run_cli  # one as a user runs it
    one_line_error(run("models", "--add", str(folder)), REFUSALS[kind])
    assert str(folder) not in run_cli("models").stdout
