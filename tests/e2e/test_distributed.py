"""``main.py train`` under torchrun: two CPU processes (Gloo) give what one process gives with
the same global batch, and resume the same way."""

import json
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, run_main

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="this PyTorch has no torch.distributed")

ARGS = ["--data", "sample:wine", "--model", "mlp", "--hidden", "32,16", "--dropout", "0",
        "--batch-size", "32", "--seed", "5", "--schedule", "cosine", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", str(ROOT / "main.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(ROOT))


def _same_weights(a_dir, b_dir, atol=1e-5):
    a = load_file(str(a_dir / "model.safetensors"))
    b = load_file(str(b_dir / "model.safetensors"))
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol) for k in a)


def _losses(run_dir):
    return [v for h in map(json.loads, (run_dir / "history.jsonl").read_text().splitlines())
            for v in (h["loss"], h["val_loss"])]


def test_two_gloo_processes_match_one_process_and_resume_alike(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    proc = run_main("train", *ARGS, "--epochs", "3", "--out", str(one))
    assert proc.returncode == 0, proc.stderr
    proc = _torchrun("train", *ARGS, "--epochs", "3", "--out", str(two))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("status: finished") == 1  # rank 0 alone reports
    assert json.loads((two / "run.json").read_text())["processes"] == 2
    assert _same_weights(one, two)
    assert _losses(one) == pytest.approx(_losses(two), rel=1e-5)

    # Extending both runs to 5 epochs: the same way, with the same result.
    assert run_main("train", "--resume", str(one), "--epochs", "5", "--quiet").returncode == 0
    proc = _torchrun("train", "--resume", str(two), "--epochs", "5", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert len(_losses(two)) == 10 and _same_weights(one, two)


def test_a_refusal_under_torchrun_is_one_line_per_process_and_no_hang(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "run.json").write_text("{}")
    proc = _torchrun("train", *ARGS, "--epochs", "1", "--out", str(out))
    assert proc.returncode != 0
    assert "already holds a run" in proc.stderr


def test_fine_tuning_a_backbone_under_torchrun(tmp_path, tiny_bert):
    """Gradual unfreezing leaves frozen groups without gradients: DDP must allow that."""
    from tests.conftest import write_reviews

    data = write_reviews(tmp_path / "reviews.csv")
    out = tmp_path / "run"
    proc = _torchrun("train", "--data", str(data), "--target", "sentiment", "--backbone",
                     str(tiny_bert), "--mode", "finetune", "--epochs", "2", "--batch-size", "8",
                     "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "run.json").read_text())["processes"] == 2
