"""Indexing and decoding image datasets.

Image data arrives as a folder with one sub-folder per class, a folder split into ``train/``,
``val/`` and ``test/`` folders of class folders, a zip of either, or a CSV file of image paths and
labels. :func:`index_images` finds the images, reads each one's size and mode, checks that it
decodes, and lists every file it left out with the reason; :func:`decode_images` turns the files
into one ``uint8`` array for training.

Everything here guards against the files people really have: zips whose entries would escape the
extraction folder, zip and decompression bombs, truncated or mislabelled files, 16-bit and
palette images, transparency, and photos whose EXIF orientation says "rotate me".
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import warnings
import weakref
import zipfile
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import Cancelled, DataError
from ..system.jobcontrol import check_stop
from .naturalsort import natural_key

if TYPE_CHECKING:
    import pandas as pd

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
#: Images with more pixels than this are skipped: decoding one could exhaust memory.
DEFAULT_MAX_PIXELS = 40_000_000
#: A zip that would unpack to more than this is refused (a zip bomb, or simply too big).
MAX_ZIP_BYTES = 20 * 1000**3
#: ... and so is one with more entries than this (millions of empty files exhaust a disk too).
MAX_ZIP_ENTRIES = 5_000_000

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]

_SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "test": "test", "testing": "test"}
_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2, "": 3}
_LABEL_COLUMNS = ("label", "labels", "class", "target", "category", "y")
_SPLIT_COLUMNS = ("split", "subset", "set", "fold")
#: Operating-system clutter that is never reported as a skipped file.
_JUNK_FILES = frozenset({"thumbs.db", "desktop.ini"})
_DONE_MARKER = ".traindesk-extracted"
_NOT_IN_CLASS = "not inside a class folder"
_NOT_IMAGE = "not an image file"
#: Paths per task: large enough that pool overhead is small, small enough for smooth progress.
_CHUNK = 128
_PROGRESS_INTERVAL_S = 0.05
#: Images up to this size are checked by decoding them fully while indexing; larger non-JPEG,
#: non-PNG images only have their header read, to keep the import's memory and time bounded.
_FULL_CHECK_PIXELS = 4_000_000
#: Small images cost mostly Python time, which threads cannot share (the GIL), so many small
#: images are decoded in worker processes; larger ones decode in Pillow's C code, which releases
#: the GIL, so threads use every core without copying pixels between processes. Measured on 2
#: cores: 32x32 PNGs threads x1.0, processes x1.7-2.0; 64x64 x1.3 / x1.5-2.7; 128x128 x1.75 / x1.2.
_SMALL_IMAGE_PIXELS = 64 * 64
#: Fewer images than this are not worth sending to worker processes that are already running.
_PROCESS_MIN_IMAGES = 500
#: Starting workers takes each about a second of CPU (importing numpy, pandas and Pillow); on 2
#: cores that costs about what it saves on 5,000 small images, so indexing that many breaks even
#: and leaves the workers warm for decoding the same images for training.
_PROCESS_MIN_IMAGES_COLD = 5000
#: While worker processes start, the calling thread decodes too (tests switch this off).
_HELP_WHILE_STARTING = True
#: Worker processes stay this long after their last use: indexing a folder of small images
#: starts them, and decoding them for training usually follows within minutes.
_POOL_IDLE_S = 300.0


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of an import.

    Attributes
    ----------
    path : str
        The path shown to the user, relative to the dataset's folder when possible.
    reason : str
        Why it was left out, e.g. ``"not an image file"`` or
        ``"cannot be decoded (truncated file)"``.
    """

    path: str
    reason: str


@dataclass
class ImageIndex:
    """The usable images of a dataset and the files left out.

    Attributes
    ----------
    root : str
        The folder the images live in (inside the extraction folder for a zip; the CSV file's
        folder for a CSV of paths).
    frame : DataFrame
        One row per usable image: ``path`` (absolute), ``label`` (class name), ``split``
        (``"train"``, ``"val"``, ``"test"``, or ``""`` when the source gives none), ``width``,
        ``height`` and ``mode`` (Pillow's mode before any conversion, e.g. ``"RGB"``, ``"L"``,
        ``"P"``, ``"I;16"``).
    skipped : list of SkippedFile
    layout : str
        ``"class-folders"``, ``"split-folders"`` or ``"csv"``.
    """

    root: str
    frame: pd.DataFrame
    skipped: list[SkippedFile] = field(default_factory=list)
    layout: str = "class-folders"
    #: ``((height, width, mode), uint8 (n, C, H, W))`` when the images were decoded while
    #: indexing (``decode=True``), in frame order.
    decoded: tuple | None = None

    @property
    def class_names(self) -> list[str]:
        """The classes in :func:`~ml.data.naturalsort.natural_key` order (2 < 10 < "cat")."""
        return sorted({str(v) for v in self.frame["label"].unique()}, key=natural_key)

    def class_counts(self) -> dict[str, int]:
        """Images per class, in :attr:`class_names` order."""
        counts: Counter = Counter()
        for value, count in self.frame["label"].value_counts(sort=False, dropna=False).items():
            counts[str(value)] += int(count)
        return {name: int(counts[name]) for name in self.class_names}


class _Unusable(Exception):
    """One file cannot be used; the message is the reason shown to the user."""


class _Cancelled(Exception):
    """A worker noticed that the caller asked to stop."""


# -- public API -----------------------------------------------------------------------------------
def is_image_source(path: str | os.PathLike) -> bool:
    """Return True for a folder or a ``.zip`` file, the sources :func:`index_images` scans.

    A CSV of image paths is recognised from its contents instead: see
    :func:`looks_like_path_table`.
    """
    p = Path(path)
    return p.is_dir() or (p.is_file() and p.suffix.lower() == ".zip")


def looks_like_path_table(frame: pd.DataFrame, base_dir: str | os.PathLike) -> str | None:
    """Return the column of *frame* that lists image files, or None.

    A column qualifies when at least 90% of its first 50 non-empty values name existing files
    with an image suffix, either absolute or relative to *base_dir*.
    """
    import pandas as pd

    base = Path(base_dir)
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        values = [_cell_text(v) for v in column.head(500)]
        values = [v for v in values if v][:50]
        if not values:
            continue
        suffixed = [v for v in values if Path(v.replace("\\", "/")).suffix.lower()
                    in IMAGE_SUFFIXES]
        if len(suffixed) < 0.9 * len(values):
            continue
        found = sum(1 for v in suffixed if _listed_path(v, base).is_file())
        if found >= 0.9 * len(values):
            return str(name)
    return None


def index_images(source: str | os.PathLike, *, cache_dir: str | os.PathLike,
                 label_column: str | None = None, path_column: str | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, workers: int | None = None,
                 progress: Progress | None = None, should_stop: ShouldStop | None = None,
                 verify: bool = True, decode: bool = False,
                 max_decode_bytes: int = 2 * 1024**3) -> ImageIndex:
    """Find the images of a dataset, read their sizes and list the files left out.

    Parameters
    ----------
    source : str or PathLike
        A folder of class folders; a folder with ``train/`` and ``test/`` (and optionally
        ``val/``, ``valid/`` or ``validation/``) folders of class folders; a ``.zip`` of either
        (one wrapping top folder is fine); or a CSV file with a column of image paths (relative
        to the CSV's folder or absolute) and a column of labels.
    cache_dir : str or PathLike
        Where zips are unpacked, each into its own folder, reused while the zip is unchanged.
    label_column, path_column : str, optional
        The CSV's columns; detected when not given.
    max_pixels : int
        Images with more pixels are skipped.
    workers : int, optional
        Parallel workers; ``min(8, os.cpu_count())`` by default.
    progress : callable, optional
        ``progress(done, total)``, at most about 20 times a second.
    should_stop : callable, optional
        Returning True cancels with ``Cancelled("Import cancelled.")``.
    decode : bool
        Also decode every image, in the same pass, at the size and colour mode
        :func:`suggest_size` picks from a sample of headers (``ImageIndex.decoded``). A file is
        then opened once to check it and once more never: training uses these arrays. Skipped
        (checked with *verify* instead) when the arrays would exceed *max_decode_bytes*.
    verify : bool
        Also decode each image (JPEGs at 1/8 scale, large PNGs by checksum) so that truncated
        files are found now rather than in the middle of training. False reads headers only.

    Raises
    ------
    DataError
        For a missing source, an unsafe or unreadable zip, a CSV without a column of image
        paths, a dataset with no usable images or with only one class, or cancellation.
    """
    import pandas as pd  # here, not at the top: worker processes only decode, and start faster

    src = Path(source)
    if not src.exists():
        raise DataError(f"Not found: {src}. Check the path or choose another file or folder.")
    with _quiet_pillow():
        root, found, skipped, layout, label_column = _find_images(
            src, Path(cache_dir), label_column, path_column, progress, should_stop)
        paths = [str(item[0]) for item in found]
        results, decoded = _probe_images(paths, max_pixels=max_pixels, workers=workers,
                                         progress=progress, should_stop=should_stop,
                                         verify=verify, decode=decode,
                                         max_decode_bytes=max_decode_bytes)
    kept = [k for k, result in enumerate(results) if not isinstance(result, str)]
    skipped.extend(SkippedFile(found[k][3], result) for k, result in enumerate(results)
                   if isinstance(result, str))
    if len(kept) < len(found):
        found = [found[k] for k in kept]
        results = [results[k] for k in kept]
        paths = [paths[k] for k in kept]
    # Built column by column: a frame from 10,000 row tuples costs several times as much.
    facts = np.array([r[:2] for r in results], dtype=np.int64).reshape(-1, 2)
    frame = pd.DataFrame({"path": paths, "label": [item[1] for item in found],
                          "split": [item[2] for item in found], "width": facts[:, 0],
                          "height": facts[:, 1], "mode": [r[2] for r in results]})
    index = ImageIndex(str(root), frame, skipped, layout)
    if decoded is not None:
        shape, block = decoded
        index.decoded = (shape, block[np.asarray(kept, dtype=np.int64)]
                         if len(kept) < len(block) else block)
    _check_usable(index, src, label_column)
    return index


def _find_images(src: Path, cache_dir: Path, label_column: str | None, path_column: str | None,
                 progress: Progress | None, should_stop: ShouldStop | None) -> tuple:
    """``(root, found, skipped, layout, label_column)`` of a folder, zip or CSV of paths;
    *found* holds ``(path, label, split, shown name)``, sorted by split, class and path."""
    suffix = src.suffix.lower()
    if src.is_dir() or suffix == ".zip":
        if src.is_dir():
            folder = src
        else:
            folder = _extract_zip(src, cache_dir, progress, should_stop)
        root, found, skipped, layout = _scan_folder(folder)
    elif suffix in (".csv", ".tsv", ".txt"):
        root = src.parent
        found, skipped, label_column = _scan_csv(src, path_column, label_column)
        layout = "csv"
    else:
        raise DataError(f"{src.name} is not an image folder, a zip file or a CSV file of "
                        f"image paths; choose a folder with one sub-folder per class.")
    if layout != "csv":  # a CSV keeps its own row order
        # Keys built in a Python loop first: a key function called from inside list.sort
        # keeps the GIL for the whole sort, which froze the window for 0.2 s on 10,000 files.
        class_keys = {label: natural_key(label) for label in {item[1] for item in found}}
        # (Path objects compare in Python code too: compare their parts, plain strings.)
        keys = [(_SPLIT_ORDER[item[2]], class_keys[item[1]], str(item[0]).split(os.sep))
                for item in found]
        order = sorted(range(len(found)), key=keys.__getitem__)
        found = [found[i] for i in order]
    return root, found, skipped, layout, label_column


def _probe_images(paths: list[str], *, max_pixels: int, workers: int | None,
                  progress: Progress | None, should_stop: ShouldStop | None, verify: bool,
                  decode: bool, max_decode_bytes: int) -> tuple[list, tuple | None]:
    """Each file's ``(width, height, mode)`` or the reason it is skipped, in parallel; with
    *decode* (and room for it) also ``((height, width, mode), uint8 (n, C, H, W))``."""
    results: list[Any] = [None] * len(paths)

    def keep(start: int, chunk_result: list) -> None:
        results[start:start + len(chunk_result)] = chunk_result

    target = _sample_size(paths, max_pixels) if decode else None
    if target is not None:
        (height, width), mode = target
        if len(paths) * height * width * _channels(mode) > max_decode_bytes:
            target = None
    if target is None:
        _run_chunks(_probe_chunk, paths, (max_pixels, verify), keep, workers=workers,
                    progress=progress, should_stop=should_stop,
                    processes=_prefer_processes(paths, workers))
        return results, None
    (height, width), mode = target
    block = np.zeros((len(paths), _channels(mode), height, width), np.uint8)

    def keep_decoded(start: int, chunk_result: tuple) -> None:
        pixels, probes = chunk_result
        block[start:start + len(probes)] = pixels
        results[start:start + len(probes)] = probes

    _run_chunks(_probe_decode_chunk, paths, (max_pixels, (width, height), mode),
                keep_decoded, workers=workers, progress=progress,
                should_stop=should_stop, processes=_prefer_processes(paths, workers))
    return results, ((height, width, mode), block)


def load_image(path: str | os.PathLike, size: tuple[int, int], mode: str = "RGB",
               max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one image, resized to *size*.

    Parameters
    ----------
    path : str or PathLike
    size : tuple of int
        ``(height, width)``; the image is stretched to it (aspect not kept).
    mode : str
        ``"RGB"`` (3 channels) or ``"L"`` (grayscale, 1 channel).
    max_pixels : int
        Larger images are refused.

    Returns
    -------
    ndarray
        ``uint8`` of shape ``(height, width, channels)``. EXIF orientation is applied,
        transparency is composited on white, 16-bit and float images are scaled to 0..255.

    Raises
    ------
    DataError
        Naming the file and why it cannot be used.
    """
    height, width = _check_size(size)
    _channels(mode)
    with _quiet_pillow():
        try:
            return _decode_one(str(path), (width, height), mode, max_pixels)
        except _Unusable as exc:
            raise DataError(f"{Path(path).name} cannot be used: {exc}.") from None


def image_array(img: Image.Image, size: tuple[int, int], mode: str = "RGB") -> np.ndarray:
    """What :func:`load_image` makes of a file, for an image already in memory (a drawing, the
    clipboard): ``uint8`` ``(height, width, channels)``, decoded exactly the same way.

    Raises
    ------
    DataError
        If the image cannot be converted.
    """
    height, width = _check_size(size)
    _channels(mode)
    with _quiet_pillow():
        try:
            return _decode_opened(img.copy(), (width, height), mode)
        except _Unusable as exc:
            raise DataError(f"This image cannot be used: {exc}.") from None


def decode_images(paths: Sequence[str | os.PathLike], size: tuple[int, int], mode: str = "RGB",
                  *, max_pixels: int = DEFAULT_MAX_PIXELS, workers: int | None = None,
                  progress: Progress | None = None, should_stop: ShouldStop | None = None
                  ) -> tuple[np.ndarray, np.ndarray, list[SkippedFile]]:
    """Decode many images in parallel into one array.

    Many small images are decoded in worker processes (they cost mostly Python time, which
    threads cannot share); larger ones, and small batches, in threads.

    Parameters
    ----------
    paths : sequence of str or PathLike
    size : tuple of int
        ``(height, width)`` of every decoded image.
    mode : str
        ``"RGB"`` or ``"L"``.
    max_pixels, workers, progress, should_stop
        As for :func:`index_images`.

    Returns
    -------
    images : ndarray
        ``uint8`` ``(N, height, width, channels)`` in the order of *paths*; zeros where a file
        failed.
    ok : ndarray
        ``bool`` ``(N,)``, False where a file failed.
    skipped : list of SkippedFile
        The failed files, in the order of *paths*, each with the reason.

    Raises
    ------
    Cancelled
        ``"Import cancelled."`` when *should_stop* returns True.
    """
    height, width = _check_size(size)
    channels = _channels(mode)
    names = [str(p) for p in paths]
    images = np.zeros((len(names), height, width, channels), np.uint8)
    ok = np.zeros(len(names), bool)
    failures: dict[int, str] = {}

    def keep(start: int, chunk_result: tuple[np.ndarray, list[str | None]]) -> None:
        block, reasons = chunk_result
        images[start:start + len(block)] = block
        for k, reason in enumerate(reasons):
            if reason is None:
                ok[start + k] = True
            else:
                failures[start + k] = reason

    with _quiet_pillow():
        _run_chunks(_decode_chunk, names, ((width, height), mode, max_pixels), keep,
                    workers=workers, progress=progress, should_stop=should_stop,
                    processes=_prefer_processes(names, workers))
    skipped = [SkippedFile(names[i], failures[i]) for i in sorted(failures)]
    return images, ok, skipped


def image_statistics(index: ImageIndex) -> dict:
    """Summarise the sizes and modes of the images in *index*.

    Returns
    -------
    dict
        ``n_images``, ``class_counts``, ``sizes`` (``min`` and ``max``: the smallest and largest
        image by pixel count as ``(width, height)``; ``most_common``; ``n_distinct``),
        ``modes`` (mode -> count), ``mixed_sizes`` and ``mixed_modes``.
    """
    frame = index.frame
    sizes = Counter(zip(frame["width"].astype(int).tolist(), frame["height"].astype(int).tolist()))
    modes = Counter(str(m) for m in frame["mode"])
    by_area = sorted(sizes, key=lambda wh: (wh[0] * wh[1], wh))
    return {
        "n_images": len(frame),
        "class_counts": index.class_counts(),
        "sizes": {
            "min": by_area[0] if by_area else None,
            "max": by_area[-1] if by_area else None,
            "most_common": sizes.most_common(1)[0][0] if sizes else None,
            "n_distinct": len(sizes),
        },
        "modes": dict(modes.most_common()),
        "mixed_sizes": len(sizes) > 1,
        "mixed_modes": len(modes) > 1,
    }


def thumbnail(path: str | os.PathLike, size: int = 96,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Return a small RGB preview of an image, aspect kept, at most *size* pixels a side.

    Returns
    -------
    ndarray
        ``uint8`` ``(h, w, 3)``.

    Raises
    ------
    DataError
        Naming the file and why it cannot be shown.
    """
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    with _quiet_pillow():
        try:
            opened = _open(str(path), max_pixels)
            try:
                img = _flatten(_oriented(opened, (size, size), "RGB"))
                img.thumbnail((size, size), Image.Resampling.BILINEAR)
                return np.array(_finish(img, "RGB"))
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
                raise _Unusable(_failure_reason(exc)) from None
            finally:
                opened.close()  # multi-frame files keep their file open after load()
        except _Unusable as exc:
            raise DataError(f"{Path(path).name} cannot be shown: {exc}.") from None


# -- decoding one image ---------------------------------------------------------------------------
def _open(path: str, max_pixels: int) -> Image.Image:
    """Open *path* lazily (header only) and check its size against *max_pixels*."""
    try:
        img = Image.open(path)
    except FileNotFoundError:
        raise _Unusable("file not found") from None
    except IsADirectoryError:
        raise _Unusable("is a folder, not an image") from None
    except PermissionError:
        raise _Unusable("cannot be opened (permission denied)") from None
    except UnidentifiedImageError:
        raise _Unusable("cannot be read as an image (unknown or damaged format)") from None
    except Exception as exc:  # noqa: BLE001 - plugins raise anything on malformed headers
        raise _Unusable(_failure_reason(exc, max_pixels)) from None
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise _Unusable(f"too large ({width * height:,} pixels; the limit is {max_pixels:,})")
    if width < 1 or height < 1:
        img.close()
        raise _Unusable("cannot be read as an image (it has no pixels)")
    return img


def _failure_reason(exc: BaseException, max_pixels: int | None = None) -> str:
    if isinstance(exc, Image.DecompressionBombError):
        limit = f"; the limit is {max_pixels:,}" if max_pixels else ""
        return f"too large (more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels{limit})"
    if isinstance(exc, MemoryError):
        return "cannot be decoded (not enough memory)"
    text = str(exc).lower()
    if isinstance(exc, EOFError) or "truncat" in text or "broken" in text:
        return "cannot be decoded (truncated file)"
    return "cannot be decoded (damaged data)"


def _orientation(img: Image.Image) -> int:
    if img.format == "PNG" and "exif" not in img.info:
        # Most PNGs carry no EXIF; asking Pillow costs 5% of decoding a small one.
        return 1
    try:
        value = int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - damaged EXIF: show the pixels as stored
        return 1
    return value if 1 <= value <= 8 else 1


def _oriented(img: Image.Image, target: tuple[int, int] | None, mode: str) -> Image.Image:
    """Decode *img* (a JPEG at a reduced scale when that still covers *target* (w, h)) and
    apply its EXIF orientation."""
    if img.format == "JPEG" and target is not None:
        w, h = target if _orientation(img) < 5 else target[::-1]  # 5..8 swap the sides
        # Decoding at 1/2, 1/4 or 1/8 scale is much faster and still at least the target size.
        img.draft("L" if mode == "L" else None, (w, h))
    img.load()
    if _orientation(img) != 1:
        img = ImageOps.exif_transpose(img)
    return img


def _flatten(img: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit ``L``, ``LA``, ``RGB`` or ``RGBA``."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_to_uint8(np.asarray(img)))
    if mode == "1":
        return img.convert("L")
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in img.info
        return img.convert("RGBA" if transparent else "RGB")
    if mode == "La":
        return img.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return img.convert("RGBA" if mode == "RGBa" else "RGB")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale 16-bit, 32-bit or float pixels to 0..255 by their bit depth or range."""
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    data = values.astype(np.float64)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    lo, hi = float(data[finite].min()), float(data[finite].max())
    if values.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        scale, offset = 255.0, 0.0  # the usual 0..1 float image
    elif lo >= 0.0 and hi <= 255.0:
        scale, offset = 1.0, 0.0
    elif lo >= 0.0 and hi <= 65535.0:
        scale, offset = 255.0 / 65535.0, 0.0  # 16-bit data in a 32-bit image
    else:
        scale, offset = (255.0 / (hi - lo) if hi > lo else 0.0), lo
    data = (np.where(finite, data, offset) - offset) * scale  # NaN and inf become black
    return np.clip(np.rint(data), 0, 255).astype(np.uint8)


def _finish(img: Image.Image, mode: str) -> Image.Image:
    """Composite transparency on white and convert to *mode* (``RGB`` or ``L``)."""
    if img.mode in ("LA", "RGBA"):
        color = img.convert("L" if img.mode == "LA" else "RGB")
        background = Image.new(color.mode, img.size, 255 if color.mode == "L" else (255,) * 3)
        background.paste(color, mask=img.getchannel("A"))
        img = background
    return img if img.mode == mode else img.convert(mode)


def _decode_one(path: str, target: tuple[int, int], mode: str, max_pixels: int) -> np.ndarray:
    """Decode *path* to ``uint8`` ``(h, w, c)`` at *target* ``(w, h)``; raise _Unusable."""
    return _decode_opened(_open(path, max_pixels), target, mode)


def _probe_decode_one(path: str, target: tuple[int, int], mode: str, max_pixels: int
                      ) -> tuple[tuple[int, int, str], np.ndarray]:
    """:func:`_probe_one`'s facts and :func:`_decode_one`'s pixels from one opening of the
    file (opening costs as much as decoding a small PNG)."""
    opened = _open(path, max_pixels)
    try:
        facts = _facts(opened)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        opened.close()
        raise _Unusable(_failure_reason(exc)) from None
    return facts, _decode_opened(opened, target, mode)


def _facts(img: Image.Image) -> tuple[int, int, str]:
    """Width, height and mode as shown: EXIF orientation 5..8 swaps the sides. JPEG's EXIF
    comes with the header; other formats would need a full decode to find it."""
    width, height = img.size
    if img.format in ("JPEG", "MPO") and _orientation(img) >= 5:
        width, height = height, width
    return width, height, img.mode


def _decode_opened(opened: Image.Image, target: tuple[int, int], mode: str) -> np.ndarray:
    try:
        img = _flatten(_oriented(opened, target, mode))
        if img.size != target:
            # BILINEAR in Pillow averages over the whole footprint when shrinking (no aliasing);
            # reducing_gap first box-reduces big images, which is much faster.
            img = img.resize(target, Image.Resampling.BILINEAR, reducing_gap=3.0)
        pixels = np.array(_finish(img, mode))
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise _Unusable(_failure_reason(exc)) from None
    finally:
        opened.close()  # multi-frame files keep their file open after load()
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _probe_one(path: str, max_pixels: int, verify: bool) -> tuple[int, int, str]:
    img = _open(path, max_pixels)
    try:
        width, height, mode = _facts(img)
        if verify:
            if img.format == "JPEG":
                # At 1/8 scale libjpeg still reads every byte, so truncation is found cheaply.
                img.draft(None, (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
                img.load()
            elif img.size[0] * img.size[1] <= _FULL_CHECK_PIXELS:
                img.load()
            elif img.format == "PNG":
                img.verify()  # checks every chunk's CRC without inflating the pixels
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise _Unusable(_failure_reason(exc)) from None
    finally:
        img.close()
    return width, height, mode


# -- chunks of work (module-level so that worker processes can run them) --------------------------
def _probe_chunk(paths: list[str], max_pixels: int, verify: bool,
                 abort: Callable[[], bool] | None = None) -> list[tuple[int, int, str] | str]:
    out: list[tuple[int, int, str] | str] = []
    with _quiet_pillow():
        for path in paths:
            if abort is not None and abort():
                raise _Cancelled
            try:
                out.append(_probe_one(path, max_pixels, verify))
            except _Unusable as exc:
                out.append(str(exc))
    return out


def _probe_decode_chunk(paths: list[str], max_pixels: int, target: tuple[int, int], mode: str,
                        abort: Callable[[], bool] | None = None
                        ) -> tuple[np.ndarray, list[tuple[int, int, str] | str]]:
    """Header facts and pixels (``(n, C, H, W)``, the layout training takes) of each file in
    one go (a decode is also the best check)."""
    width, height = target
    block = np.zeros((len(paths), _channels(mode), height, width), np.uint8)
    out: list[tuple[int, int, str] | str] = []
    with _quiet_pillow():
        for k, path in enumerate(paths):
            if abort is not None and abort():
                raise _Cancelled
            try:
                probe, pixels = _probe_decode_one(path, target, mode, max_pixels)
                block[k] = pixels.transpose(2, 0, 1)
                out.append(probe)
            except _Unusable as exc:
                out.append(str(exc))
    return block, out


#: Suggested image side: the most common short side, clamped to this range (CPU-friendly).
AUTO_SIZE_RANGE = (8, 64)
_GRAY_MODES = frozenset({"L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def suggest_size(widths, heights, modes) -> tuple[tuple[int, int], str]:
    """``((side, side), mode)`` to decode at: the most common short side clamped to
    :data:`AUTO_SIZE_RANGE`, grayscale only when every image is gray."""
    sides = np.minimum(np.asarray(widths, dtype=np.int64), np.asarray(heights, dtype=np.int64))
    if len(sides):
        values, counts = np.unique(sides, return_counts=True)
        common = int(values[np.argmax(counts)])
    else:
        common = 32
    side = int(np.clip(common, *AUTO_SIZE_RANGE))
    gray = len(modes) > 0 and all(str(m) in _GRAY_MODES for m in modes)
    return (side, side), ("L" if gray else "RGB")


def _sample_size(paths: list[str], max_pixels: int, n: int = 200
                 ) -> tuple[tuple[int, int], str] | None:
    """:func:`suggest_size` from the headers of up to *n* files spread over the list."""
    step = max(1, len(paths) // n)
    probes = []
    with _quiet_pillow():
        for path in paths[::step][:n]:
            try:
                probes.append(_probe_one(path, max_pixels, False))
            except _Unusable:
                continue
    if not probes:
        return None
    widths, heights, modes = zip(*probes)
    return suggest_size(widths, heights, modes)


def _decode_chunk(paths: list[str], target: tuple[int, int], mode: str, max_pixels: int,
                  abort: Callable[[], bool] | None = None
                  ) -> tuple[np.ndarray, list[str | None]]:
    width, height = target
    block = np.zeros((len(paths), height, width, _channels(mode)), np.uint8)
    reasons: list[str | None] = []
    with _quiet_pillow():
        for k, path in enumerate(paths):
            if abort is not None and abort():
                raise _Cancelled
            try:
                block[k] = _decode_one(path, target, mode, max_pixels)
                reasons.append(None)
            except _Unusable as exc:
                reasons.append(str(exc))
    return block, reasons


# -- running chunks in parallel -------------------------------------------------------------------
def _workers(workers: int | None) -> int:
    return max(1, int(workers)) if workers is not None else min(8, os.cpu_count() or 1)


def _prefer_processes(paths: Sequence[str], workers: int | None) -> bool:
    """Use worker processes for many small images (see ``_SMALL_IMAGE_PIXELS``)."""
    n_workers = _workers(workers)
    with _pool_lock:
        warm = _pool is not None and _pool_size == n_workers
    enough = _PROCESS_MIN_IMAGES if warm else _PROCESS_MIN_IMAGES_COLD
    if n_workers < 2 or len(paths) < enough:
        return False
    try:
        with Image.open(paths[0]) as img:
            return img.size[0] * img.size[1] <= _SMALL_IMAGE_PIXELS
    except Exception:  # noqa: BLE001 - a bad first file says nothing about the rest
        return False


class _Ticker:
    """Calls ``progress(done, total)`` at most every ``_PROGRESS_INTERVAL_S`` seconds."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress = progress
        self.total = total
        self.last = -math.inf

    def __call__(self, done: int, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_INTERVAL_S:
            self.last = now
            self.progress(done, self.total)


def _check_stop(should_stop: ShouldStop | None) -> None:
    check_stop(should_stop, "Import cancelled.")


def _run_chunks(fn: Callable, items: list[str], args: tuple, consume: Callable[[int, Any], None],
                *, workers: int | None, progress: Progress | None,
                should_stop: ShouldStop | None, processes: bool = False) -> None:
    """Run ``fn(items[i:i + _CHUNK], *args)`` for every chunk and pass each result to
    ``consume(i, result)`` in the calling thread, in completion order."""
    ticker = _Ticker(progress, len(items))
    ticker(0, force=True)
    starts = list(range(0, len(items), _CHUNK))
    n_workers = _workers(workers)
    if n_workers < 2 or len(starts) < 2:
        done = 0
        for start in starts:
            done += _run_here(fn, items, start, args, consume, should_stop)
            ticker(done)
    elif processes:
        try:
            with _process_pool(n_workers) as pool:
                _run_in(pool, n_workers, fn, items, args, starts, consume, ticker, should_stop,
                        None)
        except (BrokenProcessPool, OSError, RuntimeError):
            # No worker processes here (a sandbox, a daemon process, a broken frozen build):
            # threads give the same result, only slower.
            _discard_pool()
            _run_chunks(fn, items, args, consume, workers=workers, progress=progress,
                        should_stop=should_stop, processes=False)
            return
    else:
        stop = threading.Event()
        with ThreadPoolExecutor(n_workers, thread_name_prefix="traindesk-images") as pool:
            _run_in(pool, n_workers, fn, items, args, starts, consume, ticker, should_stop, stop)
    _check_stop(should_stop)
    ticker(len(items), force=True)


def _run_here(fn: Callable, items: list[str], start: int, args: tuple,
              consume: Callable[[int, Any], None], should_stop: ShouldStop | None) -> int:
    """Run one chunk in the calling thread; return its size."""
    chunk = items[start:start + _CHUNK]
    try:
        consume(start, fn(chunk, *args, should_stop))
    except _Cancelled:
        raise Cancelled("Import cancelled.") from None
    return len(chunk)


def _run_in(pool: Executor, n_workers: int, fn: Callable, items: list[str], args: tuple,
            starts: list[int], consume: Callable[[int, Any], None], ticker: _Ticker,
            should_stop: ShouldStop | None, stop: threading.Event | None) -> None:
    """Run the chunks on *pool*, a few per worker in flight at a time (so that waiting and
    cancelling stay cheap however many chunks there are).

    With processes (*stop* is None) the calling thread also runs chunks, from the back of the
    queue, until the first worker answers, so the second or so that freshly spawned workers
    need to start is not lost.
    """
    abort = (stop.is_set,) if stop is not None else ()  # processes cannot share an Event
    queue = deque(starts)
    pending: dict[Any, int] = {}
    # Only while the workers start: once they run, a third decoder on two cores only slows
    # the hand-off of their results.
    helping = stop is None and _HELP_WHILE_STARTING and pool not in _warm_pools
    done_count = 0
    try:
        while queue or pending:
            _check_stop(should_stop)
            while queue and len(pending) < 4 * n_workers:
                start = queue.popleft()
                pending[pool.submit(fn, items[start:start + _CHUNK], *args, *abort)] = start
            if helping and queue and not any(f.done() for f in pending):
                done_count += _run_here(fn, items, queue.pop(), args, consume, should_stop)
                ticker(done_count)
                continue
            helping = False
            finished, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            if finished and stop is None:
                _warm_pools.add(pool)
            for future in finished:
                start = pending.pop(future)
                try:
                    result = future.result()
                except _Cancelled:
                    raise Cancelled("Import cancelled.") from None
                consume(start, result)
                done_count += min(_CHUNK, len(items) - start)
            ticker(done_count)
    finally:
        if pending:
            if stop is not None:
                stop.set()
            for future in pending:
                future.cancel()


_pool_lock = threading.Lock()
#: Process pools whose workers have answered at least once (started and imported).
_warm_pools: weakref.WeakSet = weakref.WeakSet()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_users = 0
_pool_timer: threading.Timer | None = None


@contextmanager
def _process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of spawned worker processes, kept warm between calls and closed when unused for
    ``_POOL_IDLE_S`` (each worker takes about a second to start: it imports numpy, pandas and
    Pillow).

    ``spawn`` is used everywhere: forking a process that runs Qt and torch threads is unsafe,
    and a frozen build hands spawned workers over through ``multiprocessing.freeze_support()``.
    """
    global _pool, _pool_size, _pool_users, _pool_timer
    with _pool_lock:
        if _pool_timer is not None:
            _pool_timer.cancel()
            _pool_timer = None
        if _pool is None or (_pool_size != workers and _pool_users == 0):
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            _pool_size = workers
        _pool_users += 1
        pool = _pool
    try:
        yield pool
    finally:
        with _pool_lock:
            _pool_users -= 1
            if _pool_users == 0 and _pool is pool:
                _pool_timer = threading.Timer(_POOL_IDLE_S, shutdown_workers)
                _pool_timer.daemon = True
                _pool_timer.start()


def _discard_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def shutdown_workers() -> None:
    """Stop the worker processes kept warm for decoding (they also stop five minutes after
    their last use). Safe to call at any time, e.g. when the application closes."""
    global _pool, _pool_timer
    with _pool_lock:
        if _pool_users:
            return  # in use again; the last user restarts the idle timer
        if _pool_timer is not None:
            _pool_timer.cancel()
            _pool_timer = None
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


# -- Pillow's warnings ----------------------------------------------------------------------------
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_filters: list[tuple] = []


@contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Silence Pillow's decompression-bomb and corrupt-EXIF warnings while reading images.

    TrainDesk checks its own pixel limit (and catches Pillow's DecompressionBombError above
    twice Pillow's), so the warning is noise. ``warnings.catch_warnings`` cannot be used from
    several threads at once (each restores the filter list it saw on entry), so the filters are
    installed once, reference-counted, for every thread.
    """
    global _quiet_depth
    with _quiet_lock:
        if _quiet_depth == 0:
            warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            _quiet_filters[:] = warnings.filters[:2]
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for item in _quiet_filters:
                    try:
                        warnings.filters.remove(item)
                    except ValueError:
                        pass  # the list was replaced meanwhile (catch_warnings)
                _quiet_filters.clear()
                refresh = getattr(warnings, "_filters_mutated", None)
                if refresh is not None:
                    refresh()


# -- finding the files ----------------------------------------------------------------------------
def _visible(name: str) -> bool:
    return not name.startswith(".") and name != "__MACOSX" and name.lower() not in _JUNK_FILES


def _list_dir(folder: Path) -> tuple[list[Path], list[Path]]:
    """Visible sub-folders and files of *folder*, sorted by name."""
    dirs, files = [], []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"Could not read the folder {folder}: {exc.strerror or exc}.") from None
    for entry in entries:
        if not _visible(entry.name):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        (dirs if is_dir else files).append(Path(entry.path))
    return dirs, files


def _unwrap(folder: Path) -> Path:
    """Step into a single wrapping folder (``data/cats``, ``data/dogs`` -> ``data``)."""
    for _ in range(5):
        dirs, files = _list_dir(folder)
        if len(dirs) != 1 or any(f.suffix.lower() in IMAGE_SUFFIXES for f in files):
            break
        if not _list_dir(dirs[0])[0]:
            break  # the only folder holds files: it is a class, not a wrapper
        folder = dirs[0]
    return folder


def _shown(path: Path | str, root: Path) -> str:
    # String operations: pathlib costs ~40 us a file, a second on 20,000 files.
    text, prefix = str(path), str(root).rstrip(os.sep) + os.sep
    if text.startswith(prefix):
        return text[len(prefix):].replace(os.sep, "/")
    return text


def _walk_files(folder: Path) -> Iterator[str]:
    """Visible files under *folder* at any depth, in a stable order (as strings)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        for name in sorted(filenames):
            if _visible(name):
                yield os.path.join(dirpath, name)


_Found = tuple["Path | str", str, str, str]  # path, label, split, path shown to the user


def _scan_classes(base: Path, split: str, root: Path, found: list[_Found],
                  skipped: list[SkippedFile]) -> None:
    dirs, files = _list_dir(base)
    for path in files:
        skipped.append(SkippedFile(_shown(path, root), _NOT_IN_CLASS))
    for class_dir in dirs:
        for path in _walk_files(class_dir):
            if os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES:
                found.append((path, class_dir.name, split, _shown(path, root)))
            else:
                skipped.append(SkippedFile(_shown(path, root), _NOT_IMAGE))


def _scan_folder(folder: Path) -> tuple[Path, list[_Found], list[SkippedFile], str]:
    root = _unwrap(folder)
    dirs, _ = _list_dir(root)
    splits = [(d, _SPLIT_FOLDERS[d.name.lower()]) for d in dirs
              if d.name.lower() in _SPLIT_FOLDERS]
    found: list[_Found] = []
    skipped: list[SkippedFile] = []
    names = {split for _, split in splits}
    if "train" in names and len(names) >= 2 and any(_list_dir(d)[0] for d, _ in splits):
        for path in (p for p in _list_dir(root)[1]):
            skipped.append(SkippedFile(_shown(path, root), _NOT_IN_CLASS))
        for d in dirs:
            if d.name.lower() not in _SPLIT_FOLDERS:
                for path in _walk_files(d):
                    skipped.append(SkippedFile(_shown(path, root),
                                               "not inside a train, val or test folder"))
        for d, split in splits:
            _scan_classes(d, split, root, found, skipped)
        return root, found, skipped, "split-folders"
    _scan_classes(root, "", root, found, skipped)
    return root, found, skipped, "class-folders"


# -- CSV of paths ---------------------------------------------------------------------------------
def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    return str(value).strip()


def _listed_path(value: str, base: Path) -> Path:
    """A path from a CSV cell: absolute, or relative to the CSV's folder; Windows separators are
    accepted everywhere."""
    path = Path(value)
    path = path if path.is_absolute() else base / path
    if "\\" in value and not path.exists():
        alt = Path(value.replace("\\", "/"))
        path = alt if alt.is_absolute() else base / alt
    return path


def _scan_csv(csv_path: Path, path_column: str | None, label_column: str | None
              ) -> tuple[list[_Found], list[SkippedFile], str]:
    from .tabular import read_table

    frame = read_table(csv_path)
    base = csv_path.parent
    name = csv_path.name
    if path_column is None:
        path_column = looks_like_path_table(frame, base)
        if path_column is None:
            raise DataError(f"{name} has no column of image file paths; add a column with each "
                            f"image's file name, relative to the CSV file's folder.")
    elif path_column not in frame.columns:
        raise DataError(f"{name} has no column {path_column!r}; choose the column that holds "
                        f"the image file paths.")
    split_column = next((c for c in frame.columns if str(c).lower() in _SPLIT_COLUMNS
                         and c != path_column and _is_split_column(frame[c])), None)
    if label_column is None:
        label_column = _guess_label_column(frame, name, path_column, split_column)
    elif label_column not in frame.columns:
        raise DataError(f"{name} has no column {label_column!r}; choose the column that holds "
                        f"each image's class.")
    found: list[_Found] = []
    skipped: list[SkippedFile] = []
    splits = frame[split_column] if split_column is not None else None
    for row, (raw, raw_label) in enumerate(zip(frame[path_column], frame[label_column])):
        value, label = _cell_text(raw), _cell_text(raw_label)
        if not value:
            skipped.append(SkippedFile(f"row {row + 2}", "has no file name"))
            continue
        if not label:
            skipped.append(SkippedFile(value, "has no label"))
            continue
        path = _listed_path(value, base)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(SkippedFile(value, _NOT_IMAGE))
        elif not path.is_file():
            skipped.append(SkippedFile(value, "file not found"))
        else:
            split = _SPLIT_FOLDERS.get(_cell_text(splits.iloc[row]).lower(), "") \
                if splits is not None else ""
            found.append((path.absolute(), label, split, value))
    return found, skipped, str(label_column)


def _is_split_column(column: pd.Series) -> bool:
    values = {_cell_text(v).lower() for v in column.dropna().unique()} - {""}
    return bool(values) and values <= set(_SPLIT_FOLDERS)


def _guess_label_column(frame: pd.DataFrame, name: str, path_column: str,
                        split_column: str | None) -> str:
    others = [c for c in frame.columns if c not in (path_column, split_column)
              and not str(c).startswith("Unnamed:")]
    if len(others) == 1:
        return others[0]
    for wanted in _LABEL_COLUMNS:
        for column in others:
            if str(column).strip().lower() == wanted:
                return column
    listed = ", ".join(str(c) for c in others[:6])
    raise DataError(f"{name} has several columns besides the image paths ({listed}); name the "
                    f"column that holds the classes 'label', or choose it.")


# -- checks on the result -------------------------------------------------------------------------
def _check_usable(index: ImageIndex, src: Path, label_column: str | None) -> None:
    name = src.name
    if index.frame.empty:
        reasons = [s.reason for s in index.skipped]
        unreadable = [s for s in index.skipped if s.reason.startswith(("cannot", "too large"))]
        if index.layout == "csv":
            first = index.skipped[0] if index.skipped else None
            detail = f" ({first.path}: {first.reason})" if first else ""
            raise DataError(f"None of the images listed in {name} can be used{detail}; check the "
                            f"paths, which are relative to the CSV file's folder.")
        if unreadable:
            raise DataError(f"None of the images in {name} can be read ({unreadable[0].path}: "
                            f"{unreadable[0].reason}); check that the files are complete images.")
        if _NOT_IN_CLASS in reasons:
            raise DataError(f"{name} has no images inside class folders. Put the images in one "
                            f"sub-folder per class, e.g. cats/ and dogs/.")
        raise DataError(f"{name} has no images. Put the images in one sub-folder per class, "
                        f"e.g. cats/ and dogs/.")
    classes = index.class_names
    if len(classes) < 2:
        if index.layout == "csv":
            raise DataError(f"{name} has only one class ({classes[0]}) in column "
                            f"{label_column!r}; a classifier needs at least two - add images of "
                            f"another class.")
        raise DataError(f"{name} has only one class ({classes[0]}); a classifier needs at least "
                        f"two - add a folder per class.")


# -- zips -----------------------------------------------------------------------------------------
def _zip_key(path: Path) -> str:
    st = path.stat()
    text = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _entry_parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]


def _check_entries(infos: list[zipfile.ZipInfo], name: str) -> int:
    """Refuse unsafe entries; return the total unpacked size."""
    if len(infos) > MAX_ZIP_ENTRIES:
        raise DataError(f"{name} holds {len(infos):,} files, more than TrainDesk's limit of "
                        f"{MAX_ZIP_ENTRIES:,}; unzip it yourself and open the folder.")
    total = 0
    for info in infos:
        entry = info.filename
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{name} contains a symbolic link ({entry}), which could point "
                            f"anywhere on this computer, so TrainDesk will not unpack it; unzip "
                            f"it yourself and check it.")
        parts = re.split(r"[\\/]", entry)
        if (entry.startswith(("/", "\\")) or ".." in parts or "\0" in entry
                or any(re.match(r"^[A-Za-z]:", p) for p in parts)):
            raise DataError(f"{name} has an entry that would be written outside its folder "
                            f"({entry}), so TrainDesk will not unpack it; get the data from a "
                            f"trusted source or unzip it yourself and check it.")
        if info.flag_bits & 0x1:
            raise DataError(f"{name} is password-protected; unzip it yourself and open the "
                            f"folder.")
        total += info.file_size
    if total > MAX_ZIP_BYTES:
        raise DataError(f"{name} would unpack to {total / 1000**3:,.1f} GB, more than "
                        f"TrainDesk's limit of {MAX_ZIP_BYTES / 1000**3:,.0f} GB; unzip it "
                        f"yourself and open the folder.")
    return total


def _extract_zip(path: Path, cache_dir: Path, progress: Progress | None,
                 should_stop: ShouldStop | None) -> Path:
    """Unpack *path* safely into its own folder under *cache_dir* and return that folder.

    The zip is unpacked into a temporary folder that is renamed into place only when complete,
    so an interrupted import never leaves a half folder that looks finished.
    """
    name = path.name
    target = cache_dir / _zip_key(path)
    if (target / _DONE_MARKER).is_file():
        return target
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{name} is not a readable zip file ({exc}); check that the download "
                        f"finished, or unzip it yourself and open the folder.") from None
    with archive:
        infos = archive.infolist()
        total = _check_entries(infos, name)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(cache_dir).free
        except OSError as exc:
            raise DataError(f"Could not create the folder {cache_dir} to unpack {name}: "
                            f"{exc.strerror or exc}.") from None
        if total > free:
            raise DataError(f"Not enough free disk space to unpack {name}: it needs "
                            f"{total / 1e9:,.1f} GB and {cache_dir} has {free / 1e9:,.1f} GB "
                            f"free.")
        partial = Path(tempfile.mkdtemp(prefix=f".{target.name}-", suffix=".partial",
                                        dir=cache_dir))
        try:
            _unpack(archive, infos, partial, name, progress, should_stop)
            (partial / _DONE_MARKER).write_text("complete\n", encoding="utf-8")
            if target.exists() and not (target / _DONE_MARKER).is_file():
                shutil.rmtree(target)  # left by an older, interrupted version
            try:
                os.replace(partial, target)
            except OSError:
                if not (target / _DONE_MARKER).is_file():
                    raise
                shutil.rmtree(partial, ignore_errors=True)  # unpacked meanwhile elsewhere
        except BaseException as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(exc, OSError):
                raise DataError(f"Could not unpack {name}: {exc.strerror or exc}.") from None
            raise
    return target


def _unpack(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest: Path, name: str,
            progress: Progress | None, should_stop: ShouldStop | None) -> None:
    ticker = _Ticker(progress, len(infos))
    top = dest.resolve()
    for k, info in enumerate(infos):
        _check_stop(should_stop)
        ticker(k)
        parts = _entry_parts(info.filename)
        if not parts or "__MACOSX" in parts:
            continue
        out = dest.joinpath(*parts)
        if not out.resolve().is_relative_to(top):  # belt and braces after _check_entries
            raise DataError(f"{name} has an entry that would be written outside its folder "
                            f"({info.filename}), so TrainDesk will not unpack it.")
        if info.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
                RuntimeError) as exc:
            raise DataError(f"{name} is not a readable zip file ({info.filename}: {exc}); check "
                            f"that the download finished, or unzip it yourself and open the "
                            f"folder.") from None


# -- small helpers --------------------------------------------------------------------------------
def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be (height, width) with positive sides, not {size}")
    return height, width


def _channels(mode: str) -> int:
    if mode == "RGB":
        return 3
    if mode == "L":
        return 1
    raise ValueError(f"mode must be 'RGB' or 'L', not {mode!r}")
