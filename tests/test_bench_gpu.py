"""``bench/gpu_check.sh`` and ``bench/bench_gpu.py`` stay runnable while no GPU is at hand: the
measurements run on the CPU at tiny sizes (no target judged), and the check itself refuses a
machine without CUDA in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, load_bench


def test_the_gpu_measurements_run_on_the_cpu_as_a_dry_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINDESK_HOME", str(tmp_path / "home"))
    bench = load_bench("bench_gpu")
    try:
        out = tmp_path / "figures.json"
        assert bench.main(["--device", "cpu", "--quick", "--out", str(out)]) == 0
    finally:
        for name in ("bench_gpu", "bench_train", "bench_pretrained"):
            sys.modules.pop(name, None)
    figures = json.loads(out.read_text())
    assert set(figures["loops"]["samples_per_second"]) == {
        "tutorial DataLoader loop (fp32)", "plain AMP loop", "TrainDesk Trainer"}
    assert all(r > 0 for r in figures["loops"]["ratios"].values())
    assert figures["backbone"]["images_per_second"] > 0
    assert figures["ddp"] | {"steps_per_second": None} == {
        "backend": "gloo", "steps": 10, "same_weights": True, "steps_per_second": None}
    assert figures["passed"] == {"ddp_same_weights": True}  # speed is judged on a GPU only


@pytest.mark.skipif(torch.cuda.is_available(), reason="there is a GPU here")
def test_without_a_gpu_the_check_says_so_in_one_line(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(tmp_path)],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=120,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 3
    assert done.stderr.strip().count("\n") == 0 and "no CUDA GPU" in done.stderr
    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu_check.sh")]).returncode == 0
