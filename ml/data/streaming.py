"""Image sets too big to decode into memory: decoded per batch, while training runs.

:class:`ImageFiles` stands in for the ``uint8`` ``(n, C, H, W)`` array an image set is decoded
to: code that slices it (evaluation, export checks) gets decoded arrays, while the trainer feeds
it through :class:`ml.training.loading.LoaderBatches` - a ``DataLoader`` whose worker processes
decode and resize the next batches while the current one trains. No torch here: the data
package loads without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .images import DEFAULT_MAX_PIXELS, _decode_one, _quiet_pillow, _Unusable

#: Decoded image sets above this share of the machine's memory are streamed, not held.
MEMORY_SHARE = 0.25


def should_stream(n_images: int, shape: Sequence[int], choice: str = "auto") -> bool:
    """Whether an image set of *n_images* decoded to *shape* ``(C, H, W)`` is streamed:
    ``choice`` ``stream`` or ``memory`` decides; ``auto`` streams what would take more than
    :data:`MEMORY_SHARE` of the memory."""
    if choice != "auto":
        return choice == "stream"
    need = n_images * int(np.prod(shape))
    return need > MEMORY_SHARE * _total_memory()


def _total_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - no psutil: assume a modest machine
        return 8 * 2**30


def decode_into(paths: Iterable[str], out: np.ndarray, size: tuple[int, int], mode: str
                ) -> int:
    """Decode *paths* into *out* ``(k, C, H, W)``; a file that fails becomes zeros. Returns
    how many failed (files were checked at import, so this is a file changed since)."""
    height, width = size
    failed = 0
    with _quiet_pillow():
        for i, path in enumerate(paths):
            try:
                out[i] = _decode_one(str(path), (width, height), mode,
                                     DEFAULT_MAX_PIXELS).transpose(2, 0, 1)
            except _Unusable:
                out[i] = 0
                failed += 1
    return failed


class ImageFiles:
    """A read-only, lazily decoded ``uint8`` ``(n, C, H, W)`` image set.

    Indexing with an integer, a slice or an index array decodes those images (in threads:
    Pillow releases the GIL while it decodes); :meth:`take` makes a lazy subset.
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, paths: Sequence[str], size: tuple[int, int], mode: str):
        self.paths = np.asarray([str(p) for p in paths], dtype=object)
        self.size = (int(size[0]), int(size[1]))
        self.mode = mode
        channels = 1 if mode == "L" else 3
        self.shape = (len(self.paths), channels, *self.size)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def take(self, rows) -> ImageFiles:
        return ImageFiles(self.paths[np.asarray(rows)], self.size, self.mode)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        paths = self.paths[key]
        out = np.empty((len(paths), *self.shape[1:]), np.uint8)
        workers = min(8, os.cpu_count() or 1, max(1, len(paths) // 16))
        if workers <= 1:
            decode_into(paths, out, self.size, self.mode)
            return out
        bounds = np.linspace(0, len(paths), workers + 1).astype(int)
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda k: decode_into(paths[bounds[k]:bounds[k + 1]],
                                                out[bounds[k]:bounds[k + 1]], self.size,
                                                self.mode), range(workers)))
        return out

    def __array__(self, dtype=None, copy=None):  # noqa: D105 - numpy protocol
        data = self[:]
        return data if dtype is None else data.astype(dtype)
