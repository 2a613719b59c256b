"""Beyond one GPU: ``main.py train`` under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node=N main.py train ...`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` set. :func:`setup` joins them into one process group (NCCL
when each process has a GPU, Gloo on CPUs); the trainer then wraps the model in
DistributedDataParallel and gives every process its share of each batch, so the global batch
size - and the result - match a single process. Only rank 0 writes the run folder and prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import TrainingError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the group."""

    rank: int
    world: int
    local_rank: int
    backend: str


_current: DistInfo | None = None


def requested() -> bool:
    """True when started by torchrun (or a similar launcher) with more than one process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def setup(device_choice: str = "auto") -> DistInfo | None:
    """Join the process group the launcher describes; None when there is none.

    Each process uses the GPU of its ``LOCAL_RANK`` when CUDA is there (and not turned off with
    ``--device cpu``), else the CPU with Gloo.

    Raises
    ------
    TrainingError
        If the environment is incomplete or the group cannot be formed.
    """
    global _current
    if _current is not None or not requested():
        return _current
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise TrainingError("WORLD_SIZE is set but RANK is not: start multi-process training "
                            "with torchrun (see the README).") from None
    use_cuda = torch.cuda.is_available() and device_choice in ("auto", "cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(f"Could not join the {world} training processes ({exc}).") from None
    _current = DistInfo(rank, world, local_rank, backend)
    return _current


def teardown() -> None:
    """Leave the process group (at the end of the command)."""
    global _current
    if _current is not None and dist.is_initialized():
        dist.destroy_process_group()
    _current = None


def current() -> DistInfo | None:
    """The group this process is in, or None for ordinary single-process training."""
    return _current


def is_main() -> bool:
    """True on rank 0 - the process that writes files and prints - and without a group."""
    return _current is None or _current.rank == 0


def device() -> torch.device:
    """This process's device in the group."""
    if _current is not None and _current.backend == "nccl":
        return torch.device("cuda", _current.local_rank)
    return torch.device("cpu")


def broadcast(obj: Any) -> Any:
    """Rank 0's *obj* on every rank (a no-op without a group)."""
    if _current is None:
        return obj
    box = [obj if _current.rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any) -> list[Any]:
    """Every rank's *obj*, in rank order, on every rank (``[obj]`` without a group)."""
    if _current is None:
        return [obj]
    every: list[Any] = [None] * _current.world
    dist.all_gather_object(every, obj)
    return every


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of *tensor* over all ranks (in place; a no-op without a group)."""
    if _current is not None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def agree(facts: dict[str, str]) -> dict[str, str]:
    """Check that every rank holds the same *facts* (digests of its data split, of the
    checkpoint it resumes from, ...); returns them. A no-op without a group.

    On a cluster each node reads the data and the run folder itself: a node that sees another
    copy of the file, or an older checkpoint on a folder that is not really shared, would train
    on other rows or from another epoch and silently spoil the run. This catches it first.

    Raises
    ------
    TrainingError
        On every rank, naming what differs and on which ranks.
    """
    if _current is None:
        return facts
    every = gather(dict(facts))
    for key in facts:
        seen = {rank: theirs.get(key) for rank, theirs in enumerate(every)}
        if len(set(seen.values())) > 1:
            odd = [rank for rank, value in seen.items() if value != seen[0]]
            raise TrainingError(
                f"The training processes do not agree on the {key.replace('_', ' ')}: ranks "
                f"{', '.join(map(str, odd))} see another one than rank 0. Every node must read "
                f"the same data file and run folder: put them on a folder all nodes share.")
    return facts

