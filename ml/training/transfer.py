"""Transfer learning: start a network from the weights of an earlier run or of a file.

Tensors are matched by name and shape. What fits is loaded; what does not - usually the last
layer, when the new data has other classes - keeps its fresh initialisation. The input
standardisation is never loaded: the new data's own statistics are used. Files are read as
tensors only (safetensors, or ``torch.load(weights_only=True)``): no code in a file runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import RunError, TrainDeskError

#: Prefixes other tools put before parameter names (DDP, Lightning, wrappers).
_PREFIXES = ("module.", "model.", "net.")
#: Buffers of the input standardisation: always from the new data.
_STATISTICS = ("normalize.mean", "normalize.std")


class TransferError(TrainDeskError):
    """A weights file that cannot be used."""


@dataclass
class TransferReport:
    """What was loaded from a weights file into a network."""

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    new: list[str] = field(default_factory=list)
    loaded_values: int = 0
    total_values: int = 0

    def describe(self) -> str:
        """Two or three plain lines for the Model page and the command line."""
        name = Path(self.source).name or self.source
        lines = [f"From {name}: loaded {len(self.loaded)} tensors "
                 f"({self.loaded_values:,} of {self.total_values:,} weights)."]
        if self.new:
            lines.append(f"Starting fresh: {', '.join(_short(self.new))} (no matching weights "
                         f"in the file).")
        mismatched = [f"{n} ({why})" for n, why in self.skipped if why.startswith("shape")]
        if mismatched:
            lines.append(f"Skipped: {', '.join(_short(mismatched, 3))}.")
        return "\n".join(lines)


def _short(names: list[str], n: int = 4) -> list[str]:
    return names[:n] + ([f"and {len(names) - n} more"] if len(names) > n else [])


def _run_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The final weights of a TrainDesk run folder, read (and checked) by its owner."""
    from ..runs.folder import RunFolder

    if not RunFolder.is_run(folder):
        raise TransferError(f"{folder} is not a TrainDesk run folder (no run.json). Pick a run "
                            f"folder or a weights file.")
    try:
        run = RunFolder.open(folder)
        if not run.has_model:
            raise TransferError(f"The run {folder.name} has no final weights (it did not "
                                f"finish). Pick a finished run.")
        return run.load_weights()
    except RunError as exc:
        raise TransferError(str(exc)) from None


def load_weights(source: str | Path) -> dict[str, torch.Tensor]:
    """Read the tensors of a run folder, a ``.safetensors`` file or a PyTorch state dict.

    Raises
    ------
    TransferError
        For a missing, damaged or non-weights file (e.g. a pickled object, which is refused).
    """
    path = Path(source)
    if not path.exists():
        raise TransferError(f"Not found: {path}. Pick a run folder or a weights file.")
    if path.is_dir():
        return _run_weights(path)
    if path.suffix.lower() == ".safetensors":
        from ..runs.weights import load_weights  # checks the checksum TrainDesk's own files carry

        try:
            state = load_weights(path)
        except RunError as exc:
            raise TransferError(str(exc)) from None
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for bad files
            raise TransferError(f"{path.name} is not a weights file TrainDesk can read: only "
                                f"tensors are accepted (a safetensors file, or a PyTorch "
                                f"state dict saved with torch.save(model.state_dict(), ...)). "
                                f"({type(exc).__name__})") from None
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise TransferError(f"{path.name} holds no named tensors (a state dict). Save the "
                            f"weights with torch.save(model.state_dict(), ...).")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise TransferError(f"{path.name} holds no tensors.")
    return tensors


def _candidates(name: str) -> list[str]:
    out = [name]
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            out.append(name[len(prefix):])
    return out


def match_weights(model: nn.Module, weights: dict[str, torch.Tensor],
                  source: str = "") -> TransferReport:
    """Match *weights* to *model*'s parameters and buffers by name and shape.

    Raises
    ------
    TransferError
        When nothing in *weights* fits the model.
    """
    target = model.state_dict()
    report = TransferReport(source=source)
    report.total_values = sum(t.numel() for k, t in target.items() if k not in _STATISTICS
                              and t.is_floating_point())
    by_name: dict[str, torch.Tensor] = {}
    for name, tensor in weights.items():
        for candidate in _candidates(name):
            if candidate in target:
                by_name[candidate] = tensor
                break
        else:
            report.skipped.append((name, "not in this model"))
    first_mismatch = ""
    for name, tensor in target.items():
        if name in _STATISTICS:
            if name in by_name:
                report.skipped.append((name, "statistics of the new data are used"))
            continue
        given = by_name.get(name)
        if given is None:
            if tensor.is_floating_point():
                report.new.append(name)
            continue
        if tuple(given.shape) != tuple(tensor.shape):
            why = (f"shape differs: file {' x '.join(map(str, given.shape)) or 'scalar'}, "
                   f"model {' x '.join(map(str, tensor.shape)) or 'scalar'}")
            report.skipped.append((name, why))
            report.new.append(name)
            first_mismatch = first_mismatch or f"{name}: {why}"
            continue
        report.loaded.append(name)
        if tensor.is_floating_point():
            report.loaded_values += tensor.numel()
    if not report.loaded:
        detail = f" ({first_mismatch})" if first_mismatch else ""
        raise TransferError(f"None of the {len(weights)} tensors in "
                            f"{Path(source).name or 'the file'} fit this model{detail}. Pick "
                            f"weights saved from a model with the same layers.")
    return report


@torch.no_grad()
def apply_weights(model: nn.Module, weights: dict[str, torch.Tensor],
                  report: TransferReport) -> None:
    """Copy the tensors *report* matched into *model*."""
    target = model.state_dict()
    by_name = {}
    for name, tensor in weights.items():
        for candidate in _candidates(name):
            if candidate in target:
                by_name[candidate] = tensor
                break
    for name in report.loaded:
        target[name].copy_(by_name[name].to(target[name].dtype))


def start_from(model: nn.Module, source: str) -> TransferReport:
    """Load the fitting weights of *source* (a run folder or a file) into *model*."""
    weights = load_weights(source)
    report = match_weights(model, weights, source)
    apply_weights(model, weights, report)
    return report


def body_names(model: nn.Module, report: TransferReport) -> list[str]:
    """The loaded parameters without the last layer's (the head): what is frozen while the
    head learns the new task."""
    with_params = [name.split(".")[1] for name, _ in model.named_parameters()
                   if name.startswith("body.")]
    head = f"body.{with_params[-1]}." if with_params else None
    return [n for n in report.loaded if head is None or not n.startswith(head)]
