""""Why is my GPU not used?": what this PyTorch can see, and what to do about it.

Everything here is read locally (torch's build information, the NVIDIA driver through NVML or
``/proc/driver/nvidia/version``, environment variables); nothing is downloaded or run.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

#: Where people get a PyTorch build for their GPU (shown, never opened by the app).
PYTORCH_INSTALL_PAGE = "https://pytorch.org/get-started/locally/"


@dataclass
class GpuReport:
    """The diagnosis: a verdict in one sentence, what to do, and the facts behind it."""

    verdict: str
    uses_gpu: bool
    advice: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)

    def text(self) -> str:
        """The whole report as plain text (the dialog's Copy button, ``main.py gpu``)."""
        width = max(len(k) for k, _ in self.facts) if self.facts else 0
        lines = [self.verdict, ""]
        if self.advice:
            lines += ["What to do:"] + [f"  - {a}" for a in self.advice] + [""]
        lines += [f"{k:<{width}}  {v}" for k, v in self.facts]
        return "\n".join(lines)


def nvidia_driver_version() -> str | None:
    """The NVIDIA driver's version when a driver is installed (None when there is none)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # noqa: BLE001 - no library, no driver, no GPU: all mean "unknown"
        pass
    proc = Path("/proc/driver/nvidia/version")
    try:
        first = proc.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    words = [w for w in first.split() if w[:1].isdigit() and "." in w]
    return words[0] if words else first.strip()


def _cuda_devices() -> list[tuple[str, str]]:
    facts = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        facts.append((f"GPU {i}", f"{props.name}, {props.total_memory / 2 ** 30:.1f} GiB, "
                                  f"compute capability {props.major}.{props.minor}"))
    return facts


def check_gpu() -> GpuReport:
    """Work out whether training can use a GPU here and, if not, why and what would fix it."""
    from .. import __version__

    cuda_build = torch.version.cuda
    hip_build = getattr(torch.version, "hip", None)
    mps = getattr(torch.backends, "mps", None)
    mps_built = bool(mps and mps.is_built())
    mps_ok = bool(mps and mps.is_available())
    driver = nvidia_driver_version()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    facts = [("TrainDesk", __version__), ("Python", platform.python_version()),
             ("Operating system", f"{platform.system()} {platform.release()} "
                                  f"({platform.machine()})"),
             ("PyTorch", torch.__version__),
             ("CUDA build", cuda_build or ("no (ROCm build)" if hip_build else
                                           "no (a CPU-only build)")),
             ("NVIDIA driver", driver or "not found")]
    if hip_build:
        facts.append(("ROCm build", hip_build))
    if cuda_build:
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        facts.append(("cuDNN", str(cudnn) if cudnn else "not available"))
    if visible is not None:
        facts.append(("CUDA_VISIBLE_DEVICES", repr(visible)))
    if platform.system() == "Darwin":
        facts.append(("Apple GPU (MPS)", "available" if mps_ok else
                      "built in, not available" if mps_built else "not in this build"))

    available = torch.cuda.is_available()
    if available:
        facts += _cuda_devices()
        name = torch.cuda.get_device_name(torch.cuda.current_device())
        return GpuReport(f"TrainDesk trains on the GPU: {name}.", True, [], facts)
    if mps_ok:
        return GpuReport("TrainDesk trains on this Mac's GPU (Apple MPS).", True, [], facts)

    advice: list[str] = []
    if visible is not None and visible.strip() in ("", "-1"):
        verdict = "The GPU is hidden from TrainDesk: CUDA_VISIBLE_DEVICES is set to none."
        advice.append("Unset CUDA_VISIBLE_DEVICES (or set it to 0) before starting TrainDesk.")
    elif not cuda_build and not hip_build and driver:
        verdict = (f"This computer has an NVIDIA GPU (driver {driver}), but this PyTorch was "
                   f"built for the CPU only, so it cannot use it.")
        advice += [f"Install a CUDA build of PyTorch {torch.__version__.split('+')[0]} into "
                   f"TrainDesk's environment: {PYTORCH_INSTALL_PAGE} shows the pip command for "
                   f"your CUDA version.",
                   "Or use the TrainDesk download made for NVIDIA GPUs."]
    elif cuda_build and not driver:
        verdict = (f"This PyTorch supports CUDA {cuda_build}, but no NVIDIA driver was found, "
                   f"so there is no GPU it can use.")
        advice += ["If this computer has an NVIDIA GPU, install NVIDIA's driver for it "
                   "(nvidia-smi should then list the GPU) and restart TrainDesk.",
                   "Laptops: make sure the NVIDIA GPU is switched on (not the integrated one "
                   "only)."]
    elif cuda_build:
        verdict = (f"An NVIDIA driver ({driver}) is installed and this PyTorch supports CUDA "
                   f"{cuda_build}, but PyTorch could not start the GPU.")
        advice += [f"The driver may be too old for CUDA {cuda_build}: update it, or install a "
                   f"PyTorch built for an older CUDA ({PYTORCH_INSTALL_PAGE}).",
                   "Check that nvidia-smi works, and that another program is not holding the "
                   "GPU in exclusive mode."]
    elif platform.system() == "Darwin" and mps_built:
        verdict = "This Mac's GPU (MPS) is not available to PyTorch."
        advice.append("Apple's GPU needs macOS 12.3 or newer on Apple silicon or an AMD GPU.")
    elif hip_build:
        verdict = "This PyTorch is built for AMD GPUs (ROCm), but it found none it can use."
        advice.append("Check that the ROCm driver sees the GPU (rocm-smi).")
    else:
        verdict = "No GPU was found: TrainDesk trains on the CPU."
        advice += ["That is fine for tables, texts and small images. For large image sets, a "
                   "computer with an NVIDIA GPU (and a CUDA build of PyTorch) trains "
                   "much faster."]
    return GpuReport(verdict, False, advice, facts)
