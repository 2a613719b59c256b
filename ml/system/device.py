"""Choosing the device, and giving its memory back after a run."""

from __future__ import annotations

import gc
import platform
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import TrainingError


@dataclass(frozen=True)
class DeviceInfo:
    """What the user sees about the compute device."""

    type: str  # cuda | mps | cpu
    name: str  # e.g. "NVIDIA H100 80GB HBM3" or "CPU (2 threads)"
    index: int | None = None

    @property
    def label(self) -> str:
        return {"cuda": "GPU", "mps": "Apple GPU", "cpu": "CPU"}[self.type] + f": {self.name}"


def cuda_available() -> bool:
    return torch.cuda.is_available()


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def select_device(choice: str = "auto") -> torch.device:
    """Resolve ``auto``/``cuda``/``mps``/``cpu`` to a device.

    ``auto`` prefers CUDA, then Apple's MPS, then the CPU.

    Raises
    ------
    TrainingError
        If a GPU is asked for explicitly but is not available.
    """
    if choice == "auto":
        if cuda_available():
            return torch.device("cuda", torch.cuda.current_device())
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda":
        if not cuda_available():
            raise TrainingError("No CUDA GPU is available (this PyTorch build or machine has "
                                "none). Set the device to Auto or CPU.")
        return torch.device("cuda", torch.cuda.current_device())
    if choice == "mps":
        if not mps_available():
            raise TrainingError("Apple's GPU (MPS) is not available here. Set the device to Auto "
                                "or CPU.")
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | str = "auto") -> DeviceInfo:
    """Return a human description of *device* (``auto`` resolves it first)."""
    if isinstance(device, str):
        device = select_device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return DeviceInfo("cuda", torch.cuda.get_device_name(index), index)
    if device.type == "mps":
        return DeviceInfo("mps", platform.machine() or "Apple silicon")
    return DeviceInfo("cpu", f"{platform.processor() or platform.machine()} "
                             f"({torch.get_num_threads()} threads)".strip())


def amp_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The mixed-precision dtype for *device*: bf16 where supported, else fp16; None on CPU."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


#: The full garbage collection :func:`release_device_memory` runs. A GUI replaces it with one
#: that runs on its own thread, where destroying collected widgets is safe.
_collect_garbage: Callable[[], object] = gc.collect


def set_garbage_collector(collect: Callable[[], object]) -> None:
    """Use *collect* (a no-argument full collection) instead of :func:`gc.collect`."""
    global _collect_garbage
    _collect_garbage = collect


def release_device_memory(device: torch.device) -> None:
    """Return cached device memory to the driver after a run.

    On the CPU there is no cache to empty, and a full ``gc.collect()`` costs a noticeable
    fraction of a second in a process holding pandas and torch, so it runs for GPUs only.
    """
    if device.type == "cpu":
        return
    _collect_garbage()  # tensors in reference cycles must go before the cache can be emptied
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
