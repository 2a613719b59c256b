"""Feeding the trainer from files: a DataLoader with worker processes, for streamed image sets.

The workers start with ``spawn`` - safe inside the frozen bundle (``main.py`` calls
``freeze_support()``) and the same on every OS - and stay up for the whole fit; each decodes
and resizes whole batches (:func:`ml.data.streaming.decode_into`) ahead of the training step,
into pinned memory when the device is a GPU so the copy overlaps the step.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..data.streaming import ImageFiles, decode_into


class ImageFileDataset(torch.utils.data.Dataset):
    """Images and labels for a ``DataLoader``: picklable (paths and settings only), so spawned
    worker processes can decode batches by themselves."""

    def __init__(self, files: ImageFiles, labels: np.ndarray, augment=None):
        self.paths = list(files.paths)
        self.size, self.mode = files.size, files.mode
        self.channels = files.shape[1]
        self.labels = np.asarray(labels)
        self.augment = augment  # an Augmenter (picklable): applied here, in the worker

    def __len__(self) -> int:
        return len(self.paths)

    def __getitems__(self, batch):
        """*batch* is ``(augmentation seed, rows)`` from the sampler (or plain rows)."""
        seed, rows = batch if isinstance(batch, tuple) else (None, batch)
        out = np.empty((len(rows), self.channels, *self.size), np.uint8)
        decode_into([self.paths[i] for i in rows], out, self.size, self.mode)
        x = torch.from_numpy(out)
        if self.augment is not None:
            x = self.augment(x.float().div_(255.0), seed=seed)
        return x, torch.from_numpy(self.labels[np.asarray(rows)])

    def __getitem__(self, row: int):
        x, y = self.__getitems__([row])
        return x[0], y[0]


def _whole_batch(batch):
    """``collate_fn`` for :meth:`ImageFileDataset.__getitems__`: it already made the batch."""
    return batch


class _EpochBatches:
    """The batch sampler: this epoch's index lists, replaced before each epoch (persistent
    workers keep running; the main process hands them the indices)."""

    def __init__(self):
        self.batches: list[tuple[int, list[int]]] = []  # (augmentation seed, rows)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class LoaderBatches:
    """The trainer's view of an :class:`ImageFiles` training set (see ``TensorBatches``):
    :meth:`batches` yields the batches of an epoch, decoded ahead by worker processes."""

    on_device = False

    def __init__(self, files: ImageFiles, labels: np.ndarray, device: torch.device,
                 channels_last: bool = False, workers: int | None = None, augment=None,
                 seed: int = 0):
        self.n = len(files)
        self.device = device
        self.channels_last = channels_last
        #: The workers augment (each batch seeded by its step, as the trainer would).
        self.augments = augment is not None
        self.seed = int(seed)
        self.sampler = _EpochBatches()
        workers = default_workers() if workers is None else int(workers)
        self.workers = workers
        self.loader = torch.utils.data.DataLoader(
            ImageFileDataset(files, labels, augment), batch_sampler=self.sampler,
            collate_fn=_whole_batch, num_workers=workers,
            pin_memory=device.type == "cuda",
            multiprocessing_context="spawn" if workers else None,
            persistent_workers=workers > 0, prefetch_factor=4 if workers else None,
            # Its own generator: seeding the workers must not draw from the global torch RNG,
            # or dropout would differ from the same run held in memory (and from a resume).
            generator=torch.Generator().manual_seed(0))

    def index(self, perm: torch.Tensor) -> torch.Tensor:
        return perm

    def batches(self, plan: list[torch.Tensor], first_step: int = 0):
        """Yield ``(x, y)`` on the device for each index tensor of *plan*, in order; the
        batches are the run's steps *first_step*, *first_step* + 1, ..."""
        from .trainer import augment_seed

        self.sampler.batches = [(augment_seed(self.seed, first_step + i), idx.tolist())
                                for i, idx in enumerate(plan)]
        for xb, yb in self.loader:
            xb = xb.to(self.device, non_blocking=True)
            yb = yb.to(self.device, non_blocking=True)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, yb

    def close(self) -> None:
        """Stop the worker processes."""
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self.loader = None


#: How many processes decode streamed batches ahead of the training loop: all cores but one, at
#: most four (decoding a batch of JPEGs is far cheaper than a training step on a GPU).
#: ``TRAINDESK_LOADER_WORKERS=N`` sets N; 0 decodes in the training thread.
WORKER_PROCESSES = os.environ.get("TRAINDESK_LOADER_WORKERS", "")


def default_workers() -> int:
    """Decoding processes (see :data:`WORKER_PROCESSES`)."""
    spare = max(0, (os.cpu_count() or 2) - 1)
    if str(WORKER_PROCESSES).strip():
        return max(0, min(int(WORKER_PROCESSES), spare))
    return min(4, spare)
