"""CPU, memory and GPU readings for the Train page's meters (cheap enough to poll each second)."""

from __future__ import annotations

import os

import torch


class SystemMonitor:
    """Sample this process's CPU and memory use, and the GPU's when one is used.

    ``cpu_percent`` is the process's share of the whole machine (100 = every core busy), read
    as the difference since the previous sample, as the system monitors show it.
    """

    def __init__(self):
        try:
            import psutil
        except ImportError:  # pragma: no cover - a required dependency; meters just go blank
            psutil = None
        self._psutil = psutil
        self._process = psutil.Process(os.getpid()) if psutil else None
        self.cores = (psutil.cpu_count() if psutil else os.cpu_count()) or 1
        if self._process is not None:
            self._process.cpu_percent(None)  # the first reading is a baseline

    def sample(self, device: str = "cpu") -> dict:
        """Readings now: ``cpu_percent``, ``ram_bytes`` (this process), ``ram_total``, and for
        a CUDA device ``gpu_percent`` (None where the driver cannot tell), ``gpu_bytes`` and
        ``gpu_total``."""
        out: dict = {}
        if self._process is not None:
            out["cpu_percent"] = self._process.cpu_percent(None) / self.cores
            out["ram_bytes"] = self._process.memory_info().rss
            out["ram_total"] = self._psutil.virtual_memory().total
        if device.startswith("cuda") and torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            out["gpu_bytes"], out["gpu_total"] = total - free, total
            try:
                out["gpu_percent"] = float(torch.cuda.utilization())
            except Exception:  # noqa: BLE001 - needs NVML (pynvml); the memory still shows
                out["gpu_percent"] = None
        return out

