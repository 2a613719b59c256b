""""Why is my GPU not used?": each situation gets its own verdict and advice."""

from __future__ import annotations

import re

import pytest
import torch

from ml.system import gpu_check
from ml.system.gpu_check import check_gpu, nvidia_driver_version
from tests.conftest import run_main


@pytest.fixture
def machine(monkeypatch):
    """Pretend to be a machine: a PyTorch build, a driver, a visible GPU or not."""

    def make(cuda_build=None, driver=None, available=False, visible=None, hip=None):
        monkeypatch.setattr(torch.version, "cuda", cuda_build)
        monkeypatch.setattr(torch.version, "hip", hip, raising=False)
        monkeypatch.setattr(gpu_check, "nvidia_driver_version", lambda: driver)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        monkeypatch.setattr(gpu_check.platform, "system", lambda: "Linux")
        return check_gpu()

    return make


def test_a_cpu_build_on_a_machine_with_an_nvidia_driver(machine):
    report = machine(cuda_build=None, driver="555.42.06")
    assert not report.uses_gpu
    assert "NVIDIA GPU (driver 555.42.06)" in report.verdict and "CPU only" in report.verdict
    assert any("CUDA build of PyTorch" in a and gpu_check.PYTORCH_INSTALL_PAGE in a
               for a in report.advice)
    text = report.text()
    assert "CUDA build        no (a CPU-only build)" in text and "555.42.06" in text
    assert text.splitlines()[0] == report.verdict


def test_a_cuda_build_without_a_driver(machine):
    report = machine(cuda_build="12.8", driver=None)
    assert "no NVIDIA driver was found" in report.verdict
    assert any("nvidia-smi" in a for a in report.advice)


def test_a_cuda_build_and_a_driver_that_cannot_start(machine):
    report = machine(cuda_build="12.8", driver="470.10")
    assert "could not start the GPU" in report.verdict
    assert any("too old for CUDA 12.8" in a for a in report.advice)


def test_a_hidden_gpu(machine):
    report = machine(cuda_build="12.8", driver="555.42.06", visible="")
    assert "CUDA_VISIBLE_DEVICES" in report.verdict
    assert ("CUDA_VISIBLE_DEVICES", "''") in report.facts


def test_no_gpu_at_all_is_fine_for_small_data(machine):
    report = machine()
    assert report.verdict == "No GPU was found: TrainDesk trains on the CPU."
    assert ("NVIDIA driver", "not found") in report.facts
    assert ("PyTorch", torch.__version__) in report.facts


def test_a_working_gpu(machine, monkeypatch):
    class Props:
        name, total_memory, major, minor = "NVIDIA H200", 141 * 2 ** 30, 9, 0

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props)
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91000)
    report = machine(cuda_build="12.8", driver="575.1", available=True)
    assert report.uses_gpu and report.advice == []
    assert report.verdict == "TrainDesk trains on the GPU: NVIDIA H200."
    assert ("GPU 0", "NVIDIA H200, 141.0 GiB, compute capability 9.0") in report.facts


def test_the_driver_version_is_read_from_proc_when_nvml_is_missing(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_nvml(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nvml)
    fake = tmp_path / "version"
    fake.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 "
                    "01:44:30 UTC 2024\nGCC version: gcc 12\n")
    real_path = gpu_check.Path
    monkeypatch.setattr(gpu_check, "Path", lambda p: fake if "nvidia" in str(p)
                        else real_path(p))
    assert nvidia_driver_version() == "550.54.14"
    fake.unlink()
    assert nvidia_driver_version() is None


def test_main_py_gpu_prints_the_report():
    proc = run_main("gpu")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == check_gpu().verdict
    assert re.search(rf"^PyTorch\s+{re.escape(torch.__version__)}$", proc.stdout, re.M)
