"""Weights and checkpoint files, with the checksums that prove them whole.

A flipped bit inside a tensor leaves a weights file perfectly loadable, with wrong weights. So
every weights file and checkpoint carries a digest of its content, checked when it is read:
safetensors in its metadata, ``checkpoint.pt`` as an entry beside the state. Files without one
(written by an older TrainDesk, or by other tools) are read as before.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from ..errors import RunError
from ..system.fileio import atomic_path

#: Version of ``checkpoint.pt``'s layout (2: the whole training state, for resuming).
CHECKPOINT_FORMAT = 2


def state_digest(obj: Any) -> str:
    """A digest of a (nested) state: every tensor's name, dtype, shape and bytes, in order."""
    h = hashlib.blake2b(digest_size=16)

    def walk(value: Any, key: str) -> None:
        h.update(key.encode("utf-8", "surrogatepass"))
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous().reshape(-1)
            h.update(f"{t.dtype}{tuple(value.shape)}".encode())
            if t.numel():
                h.update(t.view(torch.uint8).numpy())  # the buffer itself: no copy
        elif isinstance(value, dict):
            for k in sorted(value, key=str):
                walk(value[k], f"{key}/{k}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{key}[{i}]")
        else:
            h.update(repr(value).encode("utf-8", "surrogatepass"))

    walk(obj, "")
    return h.hexdigest()


def _damaged(path: Path) -> RunError:
    return RunError(f"{path.name} in {path.parent} is damaged: its content does not match the "
                    f"checksum written with it (a disk or copy error). Train again, or restore "
                    f"the run folder from a backup.")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically with its checksum (read back by :func:`load_checkpoint`)."""
    with atomic_path(path, error=RunError) as tmp:
        torch.save({"state": state, "digest": state_digest(state)}, tmp)


def _unchecked(path: Path) -> RunError:
    return RunError(f"{path.name} in {path.parent} carries no checksum, so TrainDesk cannot tell "
                    f"whether it is whole; it is not used. Train the run again.")


def load_checkpoint(path: Path, *, require_digest: bool = False) -> dict:
    """Read a checkpoint (tensors only: ``weights_only``), checking its checksum.

    A checkpoint without one (written before checkpoints had checksums) is refused when
    *require_digest* is set, else read as it is.

    Raises
    ------
    RunError
        If the file cannot be read or does not match its checksum.
    """
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any damage: a clear message
        raise RunError(f"{path.name} in {path.parent} is damaged or not a TrainDesk checkpoint "
                       f"({type(exc).__name__}); it cannot be used.") from None
    if isinstance(doc, dict) and set(doc) == {"state", "digest"}:
        if state_digest(doc["state"]) != doc["digest"]:
            raise _damaged(path)
        return doc["state"]
    if require_digest:
        raise _unchecked(path)
    return doc  # written before checkpoints had checksums


def load_weights(path: Path, *, require_digest: bool = False) -> dict[str, torch.Tensor]:
    """Read a safetensors file written by :func:`save_weights`, checking its checksum.

    A file without one (another tool's, or TrainDesk's before weights had checksums) is refused
    when *require_digest* is set, else read as it is.

    Raises
    ------
    RunError
        If the file cannot be read or does not match its checksum.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise RunError(f"{path.name} in {path.parent} is damaged or is not a readable "
                       f"safetensors file ({exc}).") from None
    digest = metadata.get("digest")
    if digest is None and require_digest:
        raise _unchecked(path)
    if digest is not None and state_digest(state) != digest:
        raise _damaged(path)
    return state



def save_weights(run_dir: Path, net: torch.nn.Module | dict,
                 name: str = "model.safetensors") -> None:
    """Write weights (a network or a state dict) as safetensors: the final ones by default."""
    from safetensors.torch import save_file

    weights = net.state_dict() if hasattr(net, "state_dict") else net
    state = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    with atomic_path(run_dir / name, error=RunError) as tmp:
        save_file(state, str(tmp), metadata={"format": "traindesk-weights",
                                             "digest": state_digest(state)})


