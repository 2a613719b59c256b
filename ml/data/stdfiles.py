"""The standard image files people download: MNIST / Fashion-MNIST IDX files and CIFAR-10.

IDX files (optionally gzipped) and CIFAR-10's *binary* batches are plain arrays with a tiny
header, read here with ``numpy.frombuffer`` after checking the header against the file size.
CIFAR-10's *Python* version is a pickle, and loading a pickle can run arbitrary code, so it is
recognised only to explain that the binary version is needed; it is never unpickled.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR_PICKLE_MESSAGE = (
    "This is the Python (pickle) version of CIFAR-10, which TrainDesk does not open because "
    "loading a pickle can run arbitrary code. Download the binary version "
    "(cifar-10-binary.tar.gz) and open its cifar-10-batches-bin folder.")

#: train-images-idx3-ubyte, t10k-labels.idx1-ubyte.gz, ...
_IDX_NAME = re.compile(r"^(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$", re.IGNORECASE)
_IDX_SPLITS = {"train": "train", "t10k": "test"}
_IDX_FOLDER = re.compile(r"mnist|raw|idx|ubyte", re.IGNORECASE)
#: IDX type codes; only unsigned bytes are images or labels.
_IDX_TYPES = {0x08: "unsigned bytes", 0x09: "signed bytes", 0x0B: "16-bit integers",
              0x0C: "32-bit integers", 0x0D: "32-bit floats", 0x0E: "64-bit floats"}
#: An IDX file whose header promises more than this is refused rather than read into memory.
_IDX_MAX_BYTES = 8 * 1000**3
_CIFAR_BIN = re.compile(r"^(data_batch_\d+|test_batch)\.bin$", re.IGNORECASE)
_CIFAR_PY = re.compile(r"^(data_batch_\d+|test_batch|batches\.meta)$", re.IGNORECASE)
_CIFAR_RECORD = 1 + 3 * 32 * 32
_PICKLE_SUFFIXES = {"", ".pkl", ".pickle", ".p"}


@dataclass
class ArrayImages:
    """Images held in memory.

    Attributes
    ----------
    images : ndarray
        ``uint8`` ``(N, H, W, C)``.
    labels : ndarray
        ``int64`` ``(N,)``, indices into *class_names*.
    class_names : list of str
    split : ndarray
        ``object`` ``(N,)`` of ``"train"`` / ``"test"``.
    name : str
        ``"MNIST"``, ``"Fashion-MNIST"`` or ``"CIFAR-10"``.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    split: np.ndarray
    name: str


def detect_standard(path: str | os.PathLike) -> str | None:
    """Recognise a standard dataset file or folder.

    Returns
    -------
    str or None
        ``"idx"`` (MNIST-style IDX files), ``"cifar10-bin"`` (CIFAR-10 binary batches),
        ``"cifar-python"`` (the pickled CIFAR version, which :func:`load_standard` refuses) or
        None.
    """
    p = Path(path)
    if p.is_file():
        if _IDX_NAME.match(p.name):
            return "idx"
        if _CIFAR_BIN.match(p.name):
            return "cifar10-bin"
        if _looks_pickled(p):
            return "cifar-python"
        return None
    if not p.is_dir():
        return None
    if _idx_files(p) or (_idx_folder(p) is not None):
        return "idx"
    if _cifar_bin_folder(p) is not None:
        return "cifar10-bin"
    if _cifar_py_folder(p):
        return "cifar-python"
    return None


def load_standard(path: str | os.PathLike) -> ArrayImages:
    """Load MNIST / Fashion-MNIST IDX files or CIFAR-10 binary batches.

    Parameters
    ----------
    path : str or PathLike
        A folder holding the files (or its parent: ``cifar-10-batches-bin``'s, or
        torchvision's ``MNIST/raw``), or one file: an IDX images file (its labels file is found
        beside it) or one CIFAR-10 ``.bin`` batch.

    Raises
    ------
    DataError
        For damaged files, missing label files, the pickled CIFAR-10 version, or anything else.
    """
    p = Path(path)
    kind = detect_standard(p)
    if kind == "idx":
        return _load_idx(p)
    if kind == "cifar10-bin":
        return _load_cifar_bin(p)
    if kind == "cifar-python":
        raise DataError(_pickle_message(p))
    raise DataError(f"{p.name} is not an MNIST, Fashion-MNIST or CIFAR-10 file or folder; open "
                    f"the folder that holds train-images-idx3-ubyte or data_batch_1.bin.")


# -- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------------------
def _idx_files(folder: Path) -> dict[tuple[str, str], Path]:
    """``{(split, "images" | "labels"): path}`` for the IDX files directly in *folder*.

    Kaggle's copies put each file in a folder of the same name; those are looked into too.
    """
    found: dict[tuple[str, str], Path] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return found
    for entry in entries:
        match = _IDX_NAME.match(entry.name)
        if not match:
            continue
        if entry.is_dir():
            inner = entry / entry.name
            if not inner.is_file():
                continue
            entry = inner
        key = (_IDX_SPLITS[match.group(1).lower()], match.group(2).lower())
        # Prefer the unpacked file when both it and the .gz are there.
        if key not in found or found[key].suffix.lower() == ".gz":
            found[key] = entry
    return found


def _idx_folder(folder: Path) -> Path | None:
    """The one folder at most two levels below *folder* that holds IDX files (torchvision's
    ``MNIST/raw``). Only folders named like MNIST's are looked into, so that checking a large
    folder of images stays cheap."""
    level = [folder]
    for _ in range(2):
        level = [d for parent in level for d in _subfolders(parent) if _IDX_FOLDER.search(d.name)]
        hits = [d for d in level if _idx_files(d)]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return None  # several datasets: the user must pick one
    return None


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []


def _load_idx(path: Path) -> ArrayImages:
    if path.is_file():
        match = _IDX_NAME.match(path.name)
        assert match is not None
        split = _IDX_SPLITS[match.group(1).lower()]
        files = {k: v for k, v in _idx_files(path.parent).items() if k[0] == split}
        files.setdefault((split, match.group(2).lower()), path)
        folder = path.parent
    else:
        folder = path if _idx_files(path) else _idx_folder(path)
        assert folder is not None
        files = _idx_files(folder)
    images, labels, splits = [], [], []
    for split in ("train", "test"):
        image_file, label_file = files.get((split, "images")), files.get((split, "labels"))
        if image_file is None and label_file is None:
            continue
        prefix = "train" if split == "train" else "t10k"
        if image_file is None:
            raise DataError(f"{label_file.name} has no images file beside it; put "
                            f"{prefix}-images-idx3-ubyte(.gz) in the same folder.")
        if label_file is None:
            raise DataError(f"{image_file.name} has no labels file beside it; put "
                            f"{prefix}-labels-idx1-ubyte(.gz) in the same folder.")
        x = _read_idx(image_file, "images")
        y = _read_idx(label_file, "labels")
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
            raise DataError(f"{image_file.name} does not hold images (its header gives "
                            f"{x.ndim} dimensions); choose an images file.")
        if y.ndim != 1:
            raise DataError(f"{label_file.name} does not hold labels (its header gives "
                            f"{y.ndim} dimensions); choose a labels file.")
        if len(x) != len(y):
            raise DataError(f"{image_file.name} holds {len(x):,} images but {label_file.name} "
                            f"holds {len(y):,} labels; the two files must come from the same "
                            f"download.")
        images.append(x if x.ndim == 4 else x[..., None])
        labels.append(y.astype(np.int64))
        splits.append(np.full(len(y), split, dtype=object))
    if len(images) == 2 and images[0].shape[1:] != images[1].shape[1:]:
        raise DataError(f"The train and test images in {folder.name} have different sizes "
                        f"({images[0].shape[2]}x{images[0].shape[1]} and "
                        f"{images[1].shape[2]}x{images[1].shape[1]}); they come from different "
                        f"datasets.")
    y_all = np.concatenate(labels)
    fashion = any("fashion" in part.lower() for part in (*folder.parts[-3:], path.name))
    n_classes = int(y_all.max()) + 1 if len(y_all) else 10
    if fashion and n_classes <= len(FASHION_CLASSES):
        names, title = list(FASHION_CLASSES), "Fashion-MNIST"
    else:
        names, title = [str(i) for i in range(max(10, n_classes))], "MNIST"
    return ArrayImages(np.ascontiguousarray(np.concatenate(images)), y_all, names,
                       np.concatenate(splits), title)


def _read_idx(path: Path, what: str) -> np.ndarray:
    """Read one IDX file, checking its header against its size."""
    name = path.name
    try:
        with (gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")) as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DataError(f"{name} is not an IDX file (its first bytes are wrong); download "
                                f"it again.")
            code, ndim = head[2], head[3]
            if code != 0x08:
                kind = _IDX_TYPES.get(code, f"unknown type 0x{code:02x}")
                raise DataError(f"{name} holds {kind}, but {what} must be unsigned bytes; it is "
                                f"not an MNIST-style {what} file.")
            if not 1 <= ndim <= 4:
                raise DataError(f"{name} is damaged: its header gives {ndim} dimensions.")
            dims_raw = fh.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise DataError(f"{name} is damaged: the file ends inside its header; download "
                                f"it again.")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            expected = int(np.prod(dims, dtype=np.int64))
            if expected > _IDX_MAX_BYTES:
                raise DataError(f"{name} is damaged: its header promises {expected:,} bytes.")
            data = _read_at_most(fh, expected + 1)  # one byte more reveals trailing data
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{name} is too large to load into memory ({expected:,} bytes); use a "
                        f"computer with more memory or a smaller extract.") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{name} is damaged or not fully downloaded ({exc}); download it "
                        f"again.") from None
    if len(data) != expected:
        per_item = max(1, expected // dims[0]) if dims[0] else 1
        held = f"{len(data) // per_item:,}" if len(data) <= expected else "more than that"
        raise DataError(f"{name} is damaged: the header says {dims[0]:,} {what} but the file "
                        f"holds {held}; download it again.")
    return np.frombuffer(data, np.uint8).reshape(dims)


def _read_at_most(fh, size: int) -> bytearray:
    """Up to *size* bytes of *fh*, read in blocks: one ``read(size)`` allocates *size* bytes up
    front, which a damaged header can set to gigabytes however short the file is."""
    data = bytearray()
    while len(data) < size:
        block = fh.read(min(size - len(data), 64 * 1024**2))
        if not block:
            break
        data += block
    return data


# -- CIFAR-10 binary ------------------------------------------------------------------------------
def _cifar_bin_files(folder: Path) -> list[Path]:
    try:
        return sorted((p for p in folder.iterdir() if p.is_file() and _CIFAR_BIN.match(p.name)),
                      key=_cifar_order)
    except OSError:
        return []


def _cifar_order(path: Path) -> tuple[int, int]:
    digits = re.findall(r"\d+", path.name)
    return (1, 0) if path.name.lower().startswith("test") else (0, int(digits[0]))


def _cifar_bin_folder(folder: Path) -> Path | None:
    if _cifar_bin_files(folder):
        return folder
    inner = folder / "cifar-10-batches-bin"
    return inner if _cifar_bin_files(inner) else None


def _load_cifar_bin(path: Path) -> ArrayImages:
    if path.is_file():
        files, folder = [path], path.parent
    else:
        folder = _cifar_bin_folder(path)
        assert folder is not None
        files = _cifar_bin_files(folder)
    images, labels, splits = [], [], []
    for file in files:
        size = file.stat().st_size
        if size == 0 or size % _CIFAR_RECORD:
            raise DataError(f"{file.name} is damaged: its size ({size:,} bytes) is not a whole "
                            f"number of CIFAR-10 records ({_CIFAR_RECORD:,} bytes each); "
                            f"download it again.")
        records = np.fromfile(file, np.uint8).reshape(-1, _CIFAR_RECORD)
        y = records[:, 0].astype(np.int64)
        if y.max() >= len(CIFAR10_CLASSES):
            raise DataError(f"{file.name} is not a CIFAR-10 batch (it has labels up to "
                            f"{int(y.max())}, CIFAR-10 has 10 classes).")
        # Each record stores the red, then green, then blue 32x32 plane.
        images.append(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(y)
        split = "test" if file.name.lower().startswith("test") else "train"
        splits.append(np.full(len(y), split, dtype=object))
    return ArrayImages(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels),
                       _cifar_names(folder), np.concatenate(splits), "CIFAR-10")


def _cifar_names(folder: Path) -> list[str]:
    meta = folder / "batches.meta.txt"
    try:
        names = [line.strip() for line in meta.read_text(encoding="utf-8",
                                                         errors="replace").splitlines()]
    except OSError:
        return list(CIFAR10_CLASSES)
    names = [n for n in names if n][:len(CIFAR10_CLASSES)]
    return names if len(names) == len(CIFAR10_CLASSES) else list(CIFAR10_CLASSES)


# -- CIFAR-10 python (pickle): recognised, never loaded -------------------------------------------
def _looks_pickled(path: Path) -> bool:
    if _CIFAR_PY.match(path.name):
        return True
    if path.suffix.lower() not in _PICKLE_SUFFIXES:
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5  # PROTO opcode


def _cifar_py_folder(folder: Path) -> bool:
    if folder.name.lower() == "cifar-10-batches-py" or (folder / "cifar-10-batches-py").is_dir():
        return True
    try:
        return any(p.is_file() and _CIFAR_PY.match(p.name) for p in folder.iterdir())
    except OSError:
        return False


def _pickle_message(path: Path) -> str:
    if path.is_file() and not _CIFAR_PY.match(path.name):
        return (f"{path.name} is a Python pickle file, which TrainDesk does not open because "
                f"loading a pickle can run arbitrary code; for CIFAR-10, download the binary "
                f"version (cifar-10-binary.tar.gz) and open its cifar-10-batches-bin folder.")
    return CIFAR_PICKLE_MESSAGE
