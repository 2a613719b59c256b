"""Image datasets: indexing folders, zips and CSVs; decoding; MNIST/CIFAR standard files."""

from __future__ import annotations

import gzip
import pickle
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ml.data import images as images_mod
from ml.data.images import (
    ImageIndex,
    decode_images,
    image_statistics,
    index_images,
    is_image_source,
    load_image,
    looks_like_path_table,
    thumbnail,
)
from ml.data.stdfiles import CIFAR10_CLASSES, FASHION_CLASSES, detect_standard, load_standard
from ml.errors import DataError


# -- helpers --------------------------------------------------------------------------------------
def _image(path: Path, size=(8, 6), color=(200, 30, 30), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


def _class_folders(root: Path, counts: dict[str, int], suffix=".png") -> Path:
    for k, (name, n) in enumerate(counts.items()):
        for i in range(n):
            _image(root / name / f"{i}{suffix}", color=(40 * k, 100, 20 * i))
    return root


def _zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, prefix + path.relative_to(folder).as_posix())
    return zip_path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims *width* x *height* (nothing behind it is ever decoded)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I",
                                                                      zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def _reasons(index: ImageIndex) -> dict[str, str]:
    return {s.path: s.reason for s in index.skipped}


# -- folders --------------------------------------------------------------------------------------
def test_class_folders_are_indexed_with_labels_sizes_and_skips(tmp_path, cache):
    root = _class_folders(tmp_path / "pets", {"cats": 3, "dogs": 2})
    _image(root / "dogs" / "puppies" / "deep.jpg", size=(10, 4))  # nested: counts for dogs
    _image(root / "loose.png")
    (root / "cats" / "notes.txt").write_text("hello")
    (root / ".DS_Store").write_bytes(b"\0")
    _image(root / "cats" / ".hidden.png")
    _image(root / ".git" / "x" / "y.png")
    index = index_images(root, cache_dir=cache)
    assert index.layout == "class-folders"
    assert Path(index.root) == root
    assert index.class_names == ["cats", "dogs"]
    assert index.class_counts() == {"cats": 3, "dogs": 3}
    assert list(index.frame.columns) == ["path", "label", "split", "width", "height", "mode"]
    assert set(index.frame["split"]) == {""}
    deep = index.frame[index.frame["path"].str.endswith("deep.jpg")].iloc[0]
    assert (deep["label"], deep["width"], deep["height"], deep["mode"]) == ("dogs", 10, 4, "RGB")
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in index.frame["path"])
    assert _reasons(index) == {"loose.png": "not inside a class folder",
                               "cats/notes.txt": "not an image file"}


def test_class_names_sort_numbers_first_and_numerically(tmp_path, cache):
    root = _class_folders(tmp_path / "d", {"10": 1, "2": 1, "cat": 1})
    assert index_images(root, cache_dir=cache).class_names == ["2", "10", "cat"]


def test_split_folders_record_the_split(tmp_path, cache):
    root = tmp_path / "data"
    _class_folders(root / "train", {"a": 3, "b": 3})
    _class_folders(root / "valid", {"a": 1, "b": 1})
    _class_folders(root / "test", {"a": 2, "b": 1})
    index = index_images(root, cache_dir=cache)
    assert index.layout == "split-folders"
    assert index.frame["split"].value_counts().to_dict() == {"train": 6, "test": 3, "val": 2}
    assert index.class_counts() == {"a": 6, "b": 5}


def test_is_image_source(tmp_path):
    assert is_image_source(tmp_path)
    assert is_image_source(_zip_folder(_class_folders(tmp_path / "f", {"a": 1}),
                                       tmp_path / "x.zip"))
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    assert not is_image_source(tmp_path / "t.csv")


# -- zips -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("wrapper", ["", "mydata/"])
def test_zip_of_class_folders_with_or_without_a_wrapping_folder(tmp_path, cache, wrapper):
    folder = _class_folders(tmp_path / "src", {"cats": 2, "dogs": 3})
    archive = _zip_folder(folder, tmp_path / "pets.zip", wrapper)
    index = index_images(archive, cache_dir=cache)
    assert index.layout == "class-folders"
    assert index.class_counts() == {"cats": 2, "dogs": 3}
    assert all(Path(p).is_relative_to(cache) for p in index.frame["path"])
    # The extraction is reused, and nothing half-done is left behind.
    again = index_images(archive, cache_dir=cache)
    assert again.frame["path"].tolist() == index.frame["path"].tolist()
    assert len(list(cache.iterdir())) == 1


def test_zip_of_split_folders(tmp_path, cache):
    folder = tmp_path / "src"
    _class_folders(folder / "train", {"a": 2, "b": 2})
    _class_folders(folder / "test", {"a": 1, "b": 1})
    (folder / "__MACOSX").mkdir()
    (folder / "__MACOSX" / "._junk").write_bytes(b"\0")
    index = index_images(_zip_folder(folder, tmp_path / "d.zip", "d/"), cache_dir=cache)
    assert index.layout == "split-folders"
    assert index.frame["split"].value_counts().to_dict() == {"train": 4, "test": 2}
    assert index.skipped == []


@pytest.mark.parametrize("entry", ["../evil.png", "a/../../evil.png", "/tmp/evil.png",
                                   "C:/evil.png", "..\\evil.png"])
def test_zip_with_an_escaping_entry_is_refused(tmp_path, cache, entry):
    archive = tmp_path / "bad.zip"
    good = _image(tmp_path / "ok.png")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(good, "cats/ok.png")
        zf.writestr(entry, good.read_bytes())
    with pytest.raises(DataError, match="outside its folder") as info:
        index_images(archive, cache_dir=cache)
    assert entry in str(info.value)
    assert not (tmp_path / "evil.png").exists()
    assert not cache.exists() or not any(cache.iterdir())


def test_zip_with_a_symlink_is_refused(tmp_path, cache):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("cats/a.png", _image(tmp_path / "a.png").read_bytes())
        link = zipfile.ZipInfo("dogs/b.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link.*dogs/b.png"):
        index_images(archive, cache_dir=cache)


def test_corrupt_zip_is_refused(tmp_path, cache):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DataError, match="broken.zip is not a readable zip file"):
        index_images(archive, cache_dir=cache)


def test_zip_bomb_is_refused(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(images_mod, "MAX_ZIP_BYTES", 1000)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/x.bin", b"\0" * 5000)
    with pytest.raises(DataError, match="limit"):
        index_images(archive, cache_dir=cache)


# -- bad files ------------------------------------------------------------------------------------
def test_unreadable_files_are_skipped_and_the_rest_imports(tmp_path, cache):
    root = _class_folders(tmp_path / "d", {"a": 2, "b": 2})
    (root / "a" / "garbage.png").write_bytes(b"definitely not a png" * 10)
    (root / "b" / "readme.md").write_text("# notes")
    rng = np.random.default_rng(0)
    big = _image(tmp_path / "big.png", size=(64, 64))
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(big)
    data = big.read_bytes()
    (root / "b" / "cut.png").write_bytes(data[: len(data) // 2])
    index = index_images(root, cache_dir=cache)
    assert index.class_counts() == {"a": 2, "b": 2}
    reasons = _reasons(index)
    assert reasons["a/garbage.png"].startswith("cannot be read as an image")
    assert reasons["b/readme.md"] == "not an image file"
    assert reasons["b/cut.png"] == "cannot be decoded (truncated file)"


def test_images_over_the_pixel_limit_are_skipped(tmp_path, cache):
    root = _class_folders(tmp_path / "d", {"a": 1, "b": 1})  # 8 x 6 = 48 pixels
    _image(root / "a" / "large.png", size=(20, 10))
    index = index_images(root, cache_dir=cache, max_pixels=100)
    assert _reasons(index) == {"a/large.png": "too large (200 pixels; the limit is 100)"}


@pytest.mark.parametrize("side", [10_000, 100_000])  # Pillow warns, then raises
def test_decompression_bombs_are_skipped_without_warnings(tmp_path, cache, side):
    root = _class_folders(tmp_path / "d", {"a": 1, "b": 1})
    _png_header_only(root / "a" / "bomb.png", side, side)
    index = index_images(root, cache_dir=cache)
    assert _reasons(index)["a/bomb.png"].startswith("too large (")
    with pytest.raises(DataError, match="too large"):
        load_image(root / "a" / "bomb.png", (4, 4))


def test_folder_errors(tmp_path, cache):
    with pytest.raises(DataError, match="Not found"):
        index_images(tmp_path / "nope", cache_dir=cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty has no images. Put the images in one sub-folder"):
        index_images(tmp_path / "empty", cache_dir=cache)
    _class_folders(tmp_path / "one", {"cats": 2})
    with pytest.raises(DataError, match=r"only one class \(cats\); a classifier needs at least"):
        index_images(tmp_path / "one", cache_dir=cache)
    _image(tmp_path / "flat" / "a.png")
    _image(tmp_path / "flat" / "b.png")
    with pytest.raises(DataError, match="no images inside class folders"):
        index_images(tmp_path / "flat", cache_dir=cache)


# -- CSV of paths ---------------------------------------------------------------------------------
def test_csv_of_paths_and_labels(tmp_path, cache):
    for i in range(5):
        _image(tmp_path / "img" / f"c{i}.png")
        _image(tmp_path / "img" / f"d{i}.jpg")
    rows = [(f"img/c{i}.png", "cat", "train") for i in range(5)]
    rows += [(f"img/d{i}.jpg", "dog", "test") for i in range(5)]
    rows += [("img/missing.png", "dog", "train"), (str(tmp_path / "img" / "c0.png"), "", "train")]
    frame = pd.DataFrame(rows, columns=["filename", "category", "split"])
    csv = tmp_path / "list.csv"
    frame.to_csv(csv, index=False)
    assert looks_like_path_table(frame, tmp_path) == "filename"
    assert looks_like_path_table(frame, tmp_path / "img") is None
    index = index_images(csv, cache_dir=cache, path_column="filename")
    assert index.layout == "csv"
    assert index.class_counts() == {"cat": 5, "dog": 5}
    assert index.frame["split"].tolist() == ["train"] * 5 + ["test"] * 5
    assert _reasons(index) == {"img/missing.png": "file not found",
                               str(tmp_path / "img" / "c0.png"): "has no label"}


def test_csv_without_a_path_column_is_refused(tmp_path, cache):
    csv = tmp_path / "plain.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    with pytest.raises(DataError, match="no column of image file paths"):
        index_images(csv, cache_dir=cache)


# -- decoding -------------------------------------------------------------------------------------
def test_transparency_is_composited_on_white(tmp_path):
    img = Image.new("RGBA", (2, 1))
    img.putpixel((0, 0), (255, 0, 0, 0))      # fully transparent red
    img.putpixel((1, 0), (0, 0, 255, 255))    # opaque blue
    img.save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png", (1, 2))
    assert out.shape == (1, 2, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [0, 0, 255]


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "p.png", transparency=0)
    with Image.open(tmp_path / "p.png") as check:
        assert check.mode == "P"
    out = load_image(tmp_path / "p.png", (1, 2))
    assert out[0].tolist() == [[255, 255, 255], [0, 255, 0]]


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[65535, 32768, 0]], dtype=np.uint16)).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as check:
        assert check.mode == "I;16"
    out = load_image(tmp_path / "g16.png", (1, 3), mode="L")
    assert out.shape == (1, 3, 1)
    assert out[0, :, 0].tolist() == [255, 128, 0]


def test_float_cmyk_and_bilevel_images(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert load_image(tmp_path / "f.tif", (1, 3), "L")[0, :, 0].tolist() == [0, 128, 255]
    Image.new("CMYK", (4, 4), (0, 0, 0, 0)).save(tmp_path / "c.tif")
    assert load_image(tmp_path / "c.tif", (2, 2)).min() == 255
    Image.new("1", (4, 4), 1).save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png", (2, 2), "L").min() == 255


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[:, 16:] = 255  # left half black, right half white, 32 wide x 16 high as stored
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    thumb = thumbnail(tmp_path / "photo.jpg", size=32)
    assert thumb.shape == (32, 16, 3)  # shown upright: taller than wide
    out = load_image(tmp_path / "photo.jpg", (32, 16))
    assert out[:14].mean() < 40 and out[18:].mean() > 215  # the left edge is now the top
    root = _class_folders(tmp_path / "d", {"a": 1, "b": 1})
    (tmp_path / "photo.jpg").rename(root / "a" / "photo.jpg")
    frame = index_images(root, cache_dir=tmp_path / "cache").frame
    photo = frame[frame["path"].str.endswith("photo.jpg")].iloc[0]
    assert (photo["width"], photo["height"]) == (16, 32)  # the size as shown
    # A PNG can carry EXIF too (an eXIf chunk); it is honoured as well.
    img.save(tmp_path / "photo.png", exif=exif)
    out = load_image(tmp_path / "photo.png", (32, 16))
    assert out[:14].mean() < 40 and out[18:].mean() > 215


def test_grayscale_mode_and_thumbnail_keep_shapes(tmp_path):
    path = _image(tmp_path / "wide.png", size=(40, 20), color=(10, 200, 10))
    gray = load_image(path, (5, 7), mode="L")
    assert gray.shape == (5, 7, 1)
    assert thumbnail(path, size=10).shape == (5, 10, 3)
    with pytest.raises(DataError, match="missing.png cannot be used: file not found"):
        load_image(tmp_path / "missing.png", (4, 4))


def test_decode_images_keeps_order_and_marks_failures(tmp_path, monkeypatch):
    monkeypatch.setattr(images_mod, "_CHUNK", 3)  # several chunks on two threads
    paths = []
    for i in range(10):
        paths.append(_image(tmp_path / f"{i}.png", size=(5 + i, 4), color=(i * 20, 0, 0)))
    (tmp_path / "bad.png").write_bytes(b"nope")
    paths[3] = tmp_path / "bad.png"
    paths[7] = tmp_path / "missing.png"
    calls = []
    imgs, ok, skipped = decode_images(paths, (4, 4), workers=2,
                                      progress=lambda d, t: calls.append((d, t)))
    assert imgs.shape == (10, 4, 4, 3) and imgs.dtype == np.uint8
    assert ok.tolist() == [i not in (3, 7) for i in range(10)]
    assert [s.path for s in skipped] == [str(paths[3]), str(paths[7])]
    assert skipped[1].reason == "file not found"
    assert imgs[[3, 7]].max() == 0
    assert [int(imgs[i, 0, 0, 0]) for i in (0, 5, 9)] == [0, 100, 180]
    assert calls[-1] == (10, 10)


def test_cancelling_raises_a_data_error(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(images_mod, "_CHUNK", 2)
    root = _class_folders(tmp_path / "d", {"a": 4, "b": 4})
    with pytest.raises(DataError, match="Import cancelled."):
        index_images(root, cache_dir=cache, should_stop=lambda: True)
    archive = _zip_folder(root, tmp_path / "d.zip")
    with pytest.raises(DataError, match="Import cancelled."):
        index_images(archive, cache_dir=cache, should_stop=lambda: True)
    assert not any(cache.iterdir())  # no half-unpacked folder is left behind
    paths = sorted(root.rglob("*.png"))
    for workers in (1, 2):
        with pytest.raises(DataError, match="Import cancelled."):
            decode_images(paths, (4, 4), workers=workers, should_stop=lambda: True)


def test_worker_processes_give_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setattr(images_mod, "_CHUNK", 4)
    monkeypatch.setattr(images_mod, "_PROCESS_MIN_IMAGES_COLD", 1)
    monkeypatch.setattr(images_mod, "_HELP_WHILE_STARTING", False)  # every chunk to workers
    paths = [_image(tmp_path / f"{i}.png", size=(6, 6), color=(i, 2 * i, 3 * i))
             for i in range(12)]
    try:
        imgs, ok, _ = decode_images(paths, (3, 3), workers=2)
        assert images_mod._pool is not None  # the workers ran it: no fallback to threads
    finally:
        images_mod.shutdown_workers()
    assert ok.all()
    assert imgs[:, 1, 1].tolist() == [[i, 2 * i, 3 * i] for i in range(12)]


def test_image_statistics(tmp_path, cache):
    root = _class_folders(tmp_path / "d", {"a": 2, "b": 1})
    _image(root / "b" / "gray.png", size=(3, 3), color=7, mode="L")
    stats = image_statistics(index_images(root, cache_dir=cache))
    assert stats["n_images"] == 4
    assert stats["class_counts"] == {"a": 2, "b": 2}
    assert stats["sizes"] == {"min": (3, 3), "max": (8, 6), "most_common": (8, 6),
                              "n_distinct": 2}
    assert stats["modes"] == {"RGB": 3, "L": 1}
    assert stats["mixed_sizes"] and stats["mixed_modes"]


# -- IDX (MNIST) ----------------------------------------------------------------------------------
def _idx_bytes(array: np.ndarray, declared: int | None = None) -> bytes:
    dims = list(array.shape)
    if declared is not None:
        dims[0] = declared
    return (bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *dims)
            + array.astype(np.uint8).tobytes())


def _write_idx(folder: Path, split: str, x: np.ndarray, y: np.ndarray, gz: bool = False,
               sep: str = "-") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, data, nd in (("images", x, 3), ("labels", y, 1)):
        name = f"{split}-{kind}{sep}idx{nd}-ubyte"
        payload = _idx_bytes(data)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)


@pytest.mark.parametrize("gz, sep", [(False, "-"), (True, "-"), (False, ".")])
def test_idx_round_trip(tmp_path, gz, sep):
    rng = np.random.default_rng(1)
    x_train, y_train = rng.integers(0, 256, (5, 28, 28)), np.array([0, 1, 2, 9, 9])
    x_test, y_test = rng.integers(0, 256, (3, 28, 28)), np.array([3, 4, 5])
    folder = tmp_path / "mnist"
    _write_idx(folder, "train", x_train, y_train, gz, sep)
    _write_idx(folder, "t10k", x_test, y_test, gz, sep)
    assert detect_standard(folder) == "idx"
    data = load_standard(folder)
    assert data.name == "MNIST" and data.class_names == [str(i) for i in range(10)]
    assert data.images.shape == (8, 28, 28, 1) and data.images.dtype == np.uint8
    assert np.array_equal(data.images[:5, :, :, 0], x_train)
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [0, 1, 2, 9, 9, 3, 4, 5]
    assert data.split.tolist() == ["train"] * 5 + ["test"] * 3
    # One images file: that split only, with the labels file beside it.
    single = next(folder.glob("t10k-images*"))
    assert detect_standard(single) == "idx"
    assert load_standard(single).split.tolist() == ["test"] * 3


def test_idx_fashion_names_and_one_split(tmp_path):
    folder = tmp_path / "fashion-mnist"
    _write_idx(folder, "t10k", np.zeros((2, 28, 28)), np.array([0, 9]))
    data = load_standard(folder)
    assert data.name == "Fashion-MNIST"
    assert data.class_names == list(FASHION_CLASSES)
    assert data.split.tolist() == ["test", "test"]
    assert load_standard(tmp_path).name == "Fashion-MNIST"  # the parent folder works too


def test_idx_damaged_files(tmp_path):
    folder = tmp_path / "m"
    _write_idx(folder, "train", np.zeros((3, 4, 4)), np.array([1, 2, 3]))
    (folder / "train-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((3, 4, 4)), 5))
    with pytest.raises(DataError, match="header says 5 images but the file holds 3"):
        load_standard(folder)
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x08\x03" + b"\0" * 50)
    with pytest.raises(DataError, match="not an IDX file"):
        load_standard(folder)
    (folder / "train-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((2, 4, 4))))
    with pytest.raises(DataError, match="2 images but train-labels-idx1-ubyte holds 3 labels"):
        load_standard(folder)
    (folder / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="no labels file"):
        load_standard(folder)
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken gzip")
    _write_idx(folder, "train", np.zeros((1, 4, 4)), np.array([1]))
    (folder / "train-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="damaged"):
        load_standard(folder)


# -- CIFAR-10 -------------------------------------------------------------------------------------
def _cifar_records(labels: list[int]) -> bytes:
    records = np.zeros((len(labels), 3073), np.uint8)
    records[:, 0] = labels
    planes = records[:, 1:].reshape(-1, 3, 32, 32)
    planes[:, 0], planes[:, 1], planes[:, 2] = 10, 20, 30
    planes[:, 0, 0, 1] = 200  # red of the pixel in row 0, column 1
    return records.tobytes()


def test_cifar_binary_round_trip(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "data_batch_1.bin").write_bytes(_cifar_records([0, 9]))
    (folder / "data_batch_2.bin").write_bytes(_cifar_records([3]))
    (folder / "test_batch.bin").write_bytes(_cifar_records([5]))
    for path in (folder, tmp_path):
        assert detect_standard(path) == "cifar10-bin"
        data = load_standard(path)
        assert data.name == "CIFAR-10" and data.class_names == list(CIFAR10_CLASSES)
        assert data.images.shape == (4, 32, 32, 3)
        assert data.images[0, 0, 1].tolist() == [200, 20, 30]
        assert data.images[2, 5, 5].tolist() == [10, 20, 30]
        assert data.labels.tolist() == [0, 9, 3, 5]
        assert data.split.tolist() == ["train"] * 3 + ["test"]
    (folder / "batches.meta.txt").write_text("\n".join(f"k{i}" for i in range(10)) + "\n\n")
    single = load_standard(folder / "test_batch.bin")
    assert single.class_names[0] == "k0" and single.labels.tolist() == [5]


def test_cifar_binary_with_a_bad_size_is_refused(tmp_path):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(_cifar_records([1]) + b"\0\0")
    with pytest.raises(DataError, match="not a whole number of CIFAR-10 records"):
        load_standard(path)


class _Trap:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_cifar_pickle_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    payload = pickle.dumps(_Trap(marker), protocol=4)
    assert payload.startswith(b"\x80\x04")
    (folder / "data_batch_1").write_bytes(payload)
    (tmp_path / "weird.pkl").write_bytes(payload)
    for path in (folder, folder / "data_batch_1", tmp_path / "weird.pkl"):
        assert detect_standard(path) == "cifar-python"
        with pytest.raises(DataError, match="binary version") as info:
            load_standard(path)
        assert "arbitrary code" in str(info.value)
    assert not marker.exists()


def test_ordinary_folders_are_not_standard_files(tmp_path):
    _class_folders(tmp_path / "pets", {"cats": 1, "dogs": 1})
    assert detect_standard(tmp_path / "pets") is None
    assert detect_standard(tmp_path / "pets" / "cats" / "0.png") is None
