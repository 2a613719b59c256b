"""Fuzzing the importers: random and damaged files load, or are refused in plain words.

The contract, for every importer the app offers (tables, image folders and zips, IDX, CIFAR-10
binary, project files): whatever the bytes, the entry point the GUI and the CLI call either
returns a usable result or raises the app's own :class:`~ml.errors.TrainDeskError` (usually a
``DataError`` or ``ProjectError``) with a non-empty message. Any other exception is a bug, and so
is a hang: every example runs under a SIGALRM time box and fails with "hang" after
:data:`HANG_S` seconds. pytest turns warnings into errors here, so a warning escaping an importer
fails the test too.

Inputs are mostly *mutations of valid files* (bit flips, random bytes, inserted separators, quotes
and NULs, deleted or repeated ranges, truncation), because random bytes rarely get past the first
check of a format. Zips (and so Excel workbooks) are also damaged inside: one member is mutated and
the archive rebuilt, so the damage reaches the XML and image decoders. The number of examples per
family is a module constant, for docs/reliability.md (``TRAINDESK_FUZZ_SCALE`` multiplies them).
Set ``TRAINDESK_FUZZ_REPORT=FILE`` to get how many examples of each family loaded and how many
were refused, as JSON.

Random bytes given to the CSV reader directly are covered by
``tests/ml/test_tabular_io.py::test_any_bytes_give_a_frame_or_a_data_error``; PNG headers claiming
10,000 and 100,000 pixels a side by
``tests/ml/test_images.py::test_decompression_bombs_are_skipped_without_warnings``.
"""

from __future__ import annotations

import contextlib
import encodings
import functools
import gzip
import io
import json
import math
import os
import pkgutil
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ml.data.dataset import Dataset, load_dataset
from ml.errors import DataError, ProjectError, TrainDeskError
from ml.runs.project import DataConfig, Project, RunRecord, TrainingConfig
from tests.conftest import ROOT

# -- examples per family --------------------------------------------------------------------------
#: Mutated CSV files, some read with random read options.
CSV_EXAMPLES = 150
#: Excel workbooks: mutated bytes, or one mutated part inside a rebuilt workbook.
EXCEL_EXAMPLES = 60
#: Mutated Parquet files.
PARQUET_EXAMPLES = 100
#: JSON lines files: random lines, mutated valid lines, or a mutated valid file.
JSONL_EXAMPLES = 150
#: MNIST-style IDX folders with one file's header or body damaged (plain or gzipped); half as
#: many with the bytes of a gzipped file damaged.
IDX_EXAMPLES = 100
#: CIFAR-10 binary folders with one batch damaged.
CIFAR_EXAMPLES = 60
#: Folders of class folders holding valid, mutated and random image files.
IMAGE_FOLDER_EXAMPLES = 60
#: Zips of class folders: mutated bytes, a mutated member, or a renamed member.
ZIP_EXAMPLES = 60
#: Project documents with random JSON values put at random places (or keys removed).
PROJECT_EXAMPLES = 300
#: Project files with mutated bytes.
PROJECT_BYTES_EXAMPLES = 150

#: An example that runs longer than this has hung.
HANG_S = 10
#: Peak memory an absurdly sized input may add (resident set, measured in a subprocess).
MAX_GROWTH_MB = 1500


#: Multiplies every count above, for longer hunts: ``TRAINDESK_FUZZ_SCALE=10``.
SCALE = float(os.environ.get("TRAINDESK_FUZZ_SCALE", "1"))


def _fuzz_settings(examples: int):
    return settings(max_examples=max(1, round(examples * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


# -- the contract ---------------------------------------------------------------------------------
class _Hang(BaseException):
    """Raised by the time box's alarm. A BaseException, so that no importer's ``except
    Exception`` can turn a hang into an ordinary refusal."""


@contextlib.contextmanager
def _time_box(seconds: float, what: str):
    """Fail with "hang" when the body runs longer than *seconds* (SIGALRM, main thread).

    pytest-timeout uses SIGALRM too: its handler and what is left of its timer are restored.
    """
    def alarm(signum, frame):
        raise _Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    except _Hang:
        pytest.fail(f"hang: {what} ran for more than {seconds} s", pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 1e-3))


_OUTCOMES: Counter = Counter()


def _load_or_refuse(family: str, load: Callable[[], Any]) -> Any:
    """Run *load* in a time box; return its result, or the TrainDeskError it raised.

    Any other exception propagates and fails the example (Hypothesis then shrinks it).
    """
    with _time_box(HANG_S, family):
        try:
            result = load()
        except TrainDeskError as exc:
            message = str(exc).strip()
            assert message, f"{type(exc).__name__} without a message"
            assert "Traceback" not in message
            _OUTCOMES[family, f"refused ({type(exc).__name__})"] += 1
            return exc
    _OUTCOMES[family, "loaded"] += 1
    return result


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    yield
    target = os.environ.get("TRAINDESK_FUZZ_REPORT")
    if target:
        report: dict[str, dict[str, int]] = {}
        for (family, outcome), n in sorted(_OUTCOMES.items()):
            report.setdefault(family, {})[outcome] = n
        Path(target).write_text(json.dumps(report, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@contextlib.contextmanager
def _example_dir(scratch: Path):
    """A fresh folder per example: the zip cache is keyed by path, size and modification time,
    which two quick examples of one size could share."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_dataset(dataset: Dataset) -> None:
    """What a loaded dataset must hold, whatever file it came from."""
    assert isinstance(dataset, Dataset)
    assert dataset.n_rows > 0
    assert set(dataset.columns) <= set(map(str, dataset.frame.columns))
    if dataset.images is not None:  # IDX and CIFAR files may hold one class; training refuses
        assert dataset.frame["label"].nunique() >= 2
    for skipped in dataset.skipped:
        assert skipped.reason.strip(), skipped


# -- mutations ------------------------------------------------------------------------------------
_SEPARATORS = [b'"', b"\x00", b",", b";", b"\t", b"|", b"\n", b"\r", b"\r\n", b"\\", b"'",
               b"\xff\xfe", b"\xef\xbb\xbf", b'""', b',"', b'\n"', b"\x00\x00\x00\x00"]
_XML = [b"<", b">", b"&", b'"', b"<!--", b"]]>", b"\x00", b"&#0;", b"<v>NaN</v>", b"<v>1e999</v>",
        b'<c r="A1" t="s"><v>99999</v></c>', b'<c r="XFD1048576"><v>1</v></c>', b'r="A0"',
        b'<dimension ref="A1:XFD1048576"/>', b'<row r="1048576">', b'<sheet name="x" r:id="rId9"/>']
_JSON = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b"\\u0000", b"\\ud800", b"NaN",
         b"1e999", b"\n", b"\x00", b"null", b"\xff"]


@st.composite
def _mutated(draw, base: bytes, specials: list[bytes] = _SEPARATORS, max_edits: int = 4) -> bytes:
    """*base* with 1 to *max_edits* edits at positions anywhere, or near either end (where
    headers, zip directories and Parquet footers live)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_edits))):
        last = max(len(data) - 1, 0)
        at = draw(st.one_of(st.integers(0, last), st.integers(0, min(last, 64)),
                            st.integers(max(0, last - 64), last)))
        kind = draw(st.sampled_from(["flip", "byte", "insert", "delete", "repeat", "truncate"]))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.one_of(st.sampled_from(specials), st.binary(min_size=1,
                                                                               max_size=8)))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 32))]
        elif kind == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 256))]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


# -- valid files to start from --------------------------------------------------------------------
def _table(n: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "id": np.arange(n),
        "size": rng.normal(10, 3, n).round(3),
        "colour": rng.choice(["red", "green", "blue"], n),
        "note": rng.choice(['plain', 'with, comma', 'with "quotes"', "two\nlines", "é ü"], n),
        "member": rng.choice([True, False], n),
        "day": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "label": rng.choice(["high", "low"], n),
    })


@functools.cache
def _valid_csv() -> bytes:
    return _table().to_csv(index=False).encode("utf-8")


@functools.cache
def _valid_xlsx() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "data"
    frame = _table(12)
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        sheet.append([v.item() if hasattr(v, "item") else v for v in row])
    book.create_sheet("notes").append(["just", "a", "note"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@functools.cache
def _valid_parquet() -> bytes:
    frame = _table(16)
    frame["colour"] = frame["colour"].astype("category")
    frame["count"] = pd.array([1, None] * 8, dtype="Int64")
    out = io.BytesIO()
    frame.to_parquet(out, engine="pyarrow", index=False)
    return out.getvalue()


@functools.cache
def _valid_jsonl() -> bytes:
    frame = _table(10)
    lines = [json.dumps({**rec, "tags": ["a", "b"], "extra": {"k": 1}})
             for rec in frame.to_dict(orient="records")]
    return ("\n".join(lines) + "\n").encode("utf-8")


@functools.cache
def _valid_image(fmt: str) -> bytes:
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def _idx(array: np.ndarray) -> bytes:
    return (bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(np.uint8).tobytes())


@functools.cache
def _valid_idx() -> dict[str, bytes]:
    rng = np.random.default_rng(5)
    return {"train-images-idx3-ubyte": _idx(rng.integers(0, 256, (6, 5, 5))),
            "train-labels-idx1-ubyte": _idx(np.array([0, 1, 2, 0, 1, 2])),
            "t10k-images-idx3-ubyte": _idx(rng.integers(0, 256, (2, 5, 5))),
            "t10k-labels-idx1-ubyte": _idx(np.array([1, 0]))}


def _cifar_records(labels: list[int]) -> bytes:
    records = np.random.default_rng(len(labels)).integers(0, 256, (len(labels), 3073),
                                                          dtype=np.uint8)
    records[:, 0] = labels
    return records.tobytes()


@functools.cache
def _valid_cifar() -> dict[str, bytes]:
    return {"data_batch_1.bin": _cifar_records([0, 9, 3]),
            "test_batch.bin": _cifar_records([5, 1])}


@functools.cache
def _valid_image_zip() -> bytes:
    return _zip_bytes({f"pets/{label}/{i}.png": _valid_image("PNG")
                       for label in ("cats", "dogs") for i in range(2)})


def _project_doc(version: int) -> dict:
    project = Project(
        name="Fuzz",
        data=DataConfig(source="sample:iris", target="species", task="classification",
                        column_types={"sepal_length": "numeric"},
                        missing={"petal_width": "constant"}, fill_values={"petal_width": 0.5},
                        read_options={"delimiter": ";"}, augment={"hflip": True},
                        text={"max_vocab": 5000}),
        training=TrainingConfig(optimizer="sgd", lr=0.01, epochs=3, schedule="step"),
        runs=[RunRecord(id="r1", path="runs/r1", created="2026-01-01", status="finished",
                        metrics={"accuracy": 0.9})])
    doc = project.to_dict()
    if version == 1:  # what version 1 wrote: no read options, no legacy flag
        doc["version"] = 1
        for key in ("read_options", "legacy_v1", "missing", "fill_values", "augment", "text"):
            doc["data"].pop(key)
    return doc


# -- tables ---------------------------------------------------------------------------------------
#: Every codec Python knows, text encodings or not (rot13, base64, idna, punycode, ...).
_CODECS = sorted({m.name for m in pkgutil.iter_modules(encodings.__path__)} - {"aliases"})
_READ_OPTIONS = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "format": st.sampled_from(["auto", "csv", "excel", "parquet", "jsonl", "xls", "", None]),
    "delimiter": st.sampled_from([",", ";", "\t", "|", " ", "tab", "", "ab", "\n", '"', None]),
    "encoding": st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1", "ascii",
                                 "no-such-codec", "", None]) | st.sampled_from(_CODECS),
    "decimal": st.sampled_from([".", ",", "", ";", None]),
    "quotechar": st.sampled_from(['"', "'", "", "ab", ",", "\n"]),
    "header": st.sampled_from([True, False, "yes", 1, None]),
    "sheet": st.sampled_from(["data", "notes", "nope", "", 3, None]),
}))


@_fuzz_settings(CSV_EXAMPLES)
@given(content=_mutated(_valid_csv()), suffix=st.sampled_from([".csv", ".tsv", ".txt"]),
       options=_READ_OPTIONS)
def test_a_damaged_csv_file_loads_or_is_refused_with_a_data_error(scratch, content, suffix,
                                                                   options):
    with _example_dir(scratch) as folder:
        path = folder / f"table{suffix}"
        path.write_bytes(content)
        result = _load_or_refuse("csv", lambda: load_dataset(str(path), options))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)


@st.composite
def _damaged_workbooks(draw) -> bytes:
    base = _valid_xlsx()
    if draw(st.booleans()):
        return draw(_mutated(base))
    members = _zip_members(base)
    names = sorted(members)
    name = draw(st.sampled_from(names))
    if draw(st.integers(0, 5)) == 0:
        del members[name]  # a missing part
    else:
        members[name] = draw(_mutated(members[name], _XML))
    return _zip_bytes(members)


_SHEET_OPTIONS = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "sheet": st.sampled_from(["data", "notes", " DATA ", "nope", "", 3, None]),
    "header": st.booleans()}))


@_fuzz_settings(EXCEL_EXAMPLES)
@given(content=_damaged_workbooks(), options=_SHEET_OPTIONS)
def test_a_damaged_excel_workbook_loads_or_is_refused_with_a_data_error(scratch, content,
                                                                        options):
    with _example_dir(scratch) as folder:
        path = folder / "book.xlsx"
        path.write_bytes(content)
        result = _load_or_refuse("excel", lambda: load_dataset(str(path), options))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)


@_fuzz_settings(PARQUET_EXAMPLES)
@given(content=_mutated(_valid_parquet()))
def test_a_damaged_parquet_file_loads_or_is_refused_with_a_data_error(scratch, content):
    with _example_dir(scratch) as folder:
        path = folder / "table.parquet"
        path.write_bytes(content)
        result = _load_or_refuse("parquet", lambda: load_dataset(str(path)))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)


def _containers(children):
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children,
                                                            max_size=4)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10), _containers,
    max_leaves=12)
_RECORDS = st.dictionaries(st.sampled_from(["a", "b", "label", ""]) | st.text(max_size=4),
                           _JSON_VALUES, max_size=5).map(json.dumps)


def _nested(depth: int, inner: str = "1") -> str:
    """*inner* inside *depth* JSON lists, as text (json.dumps itself would recurse)."""
    return "[" * depth + inner + "]" * depth


#: Records with a value nested up to past the recursion limit of Python's JSON reader.
_DEEP_RECORDS = st.integers(1, 1200).map(lambda d: f'{{"a": {_nested(d)}, "b": 1}}')


@st.composite
def _json_lines_files(draw) -> bytes:
    how = draw(st.sampled_from(["lines", "mutated lines", "mutated file", "array"]))
    if how == "mutated file":
        return draw(_mutated(_valid_jsonl(), _JSON))
    valid = _valid_jsonl().decode("utf-8").splitlines()
    line = st.one_of(_RECORDS, _JSON_VALUES.map(json.dumps), st.text(max_size=30),
                     st.sampled_from(valid), _DEEP_RECORDS)
    if how == "mutated lines":
        line = st.one_of(line, st.sampled_from(valid).flatmap(
            lambda v: _mutated(v.encode("utf-8"), _JSON, max_edits=2).map(
                lambda b: b.decode("utf-8", "replace"))))
    lines = draw(st.lists(line, min_size=1, max_size=12))
    if how == "array":
        return ("[" + ",\n".join(lines) + "]").encode("utf-8", "surrogatepass")
    newline = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
    return newline.join(lines).encode("utf-8", "surrogatepass")


@_fuzz_settings(JSONL_EXAMPLES)
@given(content=_json_lines_files(), suffix=st.sampled_from([".jsonl", ".ndjson", ".json"]))
def test_random_or_damaged_json_lines_load_or_are_refused_with_a_data_error(scratch, content,
                                                                           suffix):
    with _example_dir(scratch) as folder:
        path = folder / f"records{suffix}"
        path.write_bytes(content)
        result = _load_or_refuse("json lines", lambda: load_dataset(str(path)))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)


# -- standard image files -------------------------------------------------------------------------
_SIZES = st.one_of(st.integers(0, 8), st.sampled_from([255, 256, 65535, 65536, 2**24, 2**31 - 1,
                                                       2**31, 2**32 - 1]),
                   st.integers(0, 2**32 - 1))


@st.composite
def _damaged_idx(draw, base: bytes) -> bytes:
    """An IDX file with its header rewritten (type, dimension count, sizes) or its bytes
    mutated near the header."""
    if draw(st.booleans()):
        return draw(_mutated(base))
    data = bytearray(base)
    ndim = data[3]
    part = draw(st.sampled_from(["magic", "type", "ndim", "size"]))
    if part == "magic":
        data[draw(st.integers(0, 1))] = draw(st.integers(1, 255))
    elif part == "type":
        data[2] = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]))
    elif part == "ndim":
        data[3] = draw(st.integers(0, 255))
    else:
        struct.pack_into(">I", data, 4 + 4 * draw(st.integers(0, ndim - 1)), draw(_SIZES))
    return bytes(data)


@_fuzz_settings(IDX_EXAMPLES)
@given(victim=st.sampled_from(sorted(_valid_idx())), data=st.data(), gz=st.booleans(),
       open_file=st.booleans())
def test_an_idx_folder_with_a_damaged_file_loads_or_is_refused_with_a_data_error(
        scratch, victim, data, gz, open_file):
    files = dict(_valid_idx())
    files[victim] = data.draw(_damaged_idx(files[victim]), label="damaged")
    with _example_dir(scratch) as folder:
        mnist = folder / "mnist"
        mnist.mkdir()
        for name, content in files.items():
            if gz:
                (mnist / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
            else:
                (mnist / name).write_bytes(content)
        source = next(mnist.glob("train-images*")) if open_file else mnist
        result = _load_or_refuse("idx", lambda: load_dataset(str(source)))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)


@_fuzz_settings(IDX_EXAMPLES // 2)
@given(content=_mutated(gzip.compress(_valid_idx()["train-images-idx3-ubyte"], mtime=0)))
def test_a_damaged_gzip_of_an_idx_file_is_refused_with_a_data_error(scratch, content):
    files = dict(_valid_idx())
    with _example_dir(scratch) as folder:
        for name, data in files.items():
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        (folder / "train-images-idx3-ubyte.gz").write_bytes(content)
        result = _load_or_refuse("idx", lambda: load_dataset(str(folder)))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)


@_fuzz_settings(CIFAR_EXAMPLES)
@given(victim=st.sampled_from(sorted(_valid_cifar())), data=st.data(),
       meta=st.one_of(st.none(), st.text(max_size=60)), open_file=st.booleans())
def test_a_cifar_folder_with_a_damaged_batch_loads_or_is_refused_with_a_data_error(
        scratch, victim, data, meta, open_file):
    files = dict(_valid_cifar())
    files[victim] = data.draw(st.one_of(_mutated(files[victim]), st.binary(max_size=40)),
                              label="damaged")
    with _example_dir(scratch) as folder:
        batches = folder / "cifar-10-batches-bin"
        batches.mkdir()
        for name, content in files.items():
            (batches / name).write_bytes(content)
        if meta is not None:
            (batches / "batches.meta.txt").write_text(meta, encoding="utf-8", errors="replace")
        source = batches / victim if open_file else folder
        result = _load_or_refuse("cifar-10", lambda: load_dataset(str(source)))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)


# -- image folders and zips -----------------------------------------------------------------------
_IMAGE_BYTES = st.one_of(
    st.sampled_from(["PNG", "JPEG", "GIF", "BMP"]).map(_valid_image),
    st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]).flatmap(
        lambda fmt: _mutated(_valid_image(fmt))),
    st.binary(max_size=300))
_IMAGE_SUFFIX = st.sampled_from([".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".webp"])


@_fuzz_settings(IMAGE_FOLDER_EXAMPLES)
@given(files=st.lists(st.tuples(st.sampled_from(["cats", "dogs", "7"]), _IMAGE_BYTES,
                                _IMAGE_SUFFIX), min_size=1, max_size=8))
def test_a_folder_of_broken_images_loads_the_good_ones_or_is_refused(scratch, files):
    with _example_dir(scratch) as folder:
        root = folder / "pets"
        for i, (label, content, suffix) in enumerate(files):
            (root / label).mkdir(parents=True, exist_ok=True)
            (root / label / f"{i}{suffix}").write_bytes(content)
        result = _load_or_refuse("image folder", lambda: load_dataset(str(root)))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)
            # Every file is either imported or listed as skipped, with its reason.
            assert result.n_rows + len(result.skipped) == len(files)


_MEMBER_NAMES = ["../evil.png", "/abs/cats/x.png", "pets\\..\\..\\x.png", "C:/x/cats/y.png",
                 "pets/cats/", "pets/./cats/z.png", "pets/dogs/.hidden.png", "__MACOSX/a.png",
                 "pets/cats/a/b/c/deep.png", "pets/ünï/x.png", "pets/" + "n" * 300 + ".png",
                 "pets/cats/x.png/y.png", "pets"]


@st.composite
def _damaged_zips(draw) -> bytes:
    base = _valid_image_zip()
    how = draw(st.sampled_from(["bytes", "member", "name", "flags"]))
    if how == "bytes":
        return draw(_mutated(base))
    members = _zip_members(base)
    name = draw(st.sampled_from(sorted(members)))
    if how == "member":
        members[name] = draw(_mutated(members[name]))
        return _zip_bytes(members)
    if how == "name":
        members[draw(st.sampled_from(_MEMBER_NAMES) | st.text(min_size=1, max_size=20))] = \
            members.pop(name)
        try:
            return _zip_bytes(members)
        except (UnicodeEncodeError, ValueError, IndexError):
            return base  # a name zipfile itself refuses to write ("/", lone surrogates)
    # A member marked as a symbolic link or as encrypted, or compressed by an unknown method.
    attr = draw(st.sampled_from(["link", "encrypted", "method"]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for member, data in members.items():
            info = zipfile.ZipInfo(member)
            if member == name and attr == "link":
                info.external_attr = 0o120777 << 16
            elif member == name and attr == "encrypted":
                info.flag_bits |= 0x1
            zf.writestr(info, data)
    data = bytearray(out.getvalue())
    if attr == "method":  # 99 (AES) in every central directory entry
        at = data.find(b"PK\x01\x02")
        while at >= 0:
            struct.pack_into("<H", data, at + 10, 99)
            at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


@_fuzz_settings(ZIP_EXAMPLES)
@given(content=_damaged_zips())
def test_a_damaged_zip_of_image_folders_loads_or_is_refused_with_a_data_error(scratch, content):
    with _example_dir(scratch) as folder:
        path = folder / "pets.zip"
        path.write_bytes(content)
        result = _load_or_refuse("image zip", lambda: load_dataset(str(path)))
        if not isinstance(result, TrainDeskError):
            _check_dataset(result)
            unpacked = Path(result.images.root).resolve()
            home = Path(os.environ["TRAINDESK_HOME"]).resolve()
            assert unpacked.is_relative_to(home), "unpacked outside the cache"


# -- project files --------------------------------------------------------------------------------
def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in *doc*: ``("data", "split", "seed")``, ``("runs", 0, "id")``, ..."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


#: Stands for a value nested *depth* lists deep, put into the JSON text after json.dumps.
_DEEP_MARK = "__nested_{}__"
_PROJECT_VALUES = _JSON_VALUES | st.integers(1, 1200).map(_DEEP_MARK.format)


def _project_json(doc: dict) -> str:
    text = json.dumps(doc)
    for depth in {int(m) for m in re.findall(r'"__nested_(\d+)__"', text)}:
        text = text.replace(json.dumps(_DEEP_MARK.format(depth)), _nested(depth))
    return text


@st.composite
def _damaged_project_docs(draw) -> dict:
    doc = _project_doc(draw(st.sampled_from([1, 2])))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        *parents, last = path
        holder = doc
        for key in parents:
            holder = holder[key]
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "remove":
            del holder[last]
        elif action == "add" and isinstance(holder, dict):
            holder[draw(st.text(max_size=12))] = draw(_PROJECT_VALUES)
        else:
            holder[last] = draw(_PROJECT_VALUES)
    return doc


@_fuzz_settings(PROJECT_EXAMPLES)
@given(doc=_damaged_project_docs())
def test_a_project_with_random_values_loads_or_is_refused_with_a_project_error(scratch, doc):
    with _example_dir(scratch) as folder:
        path = folder / "p.tdproj"
        path.write_text(_project_json(doc), encoding="utf-8")
        result = _load_or_refuse("project values", lambda: Project.load(path))
        if isinstance(result, TrainDeskError):
            assert isinstance(result, ProjectError)
            return
        # What loads is valid and can be saved and read back.
        result.validate()
        again = Project.load(result.save(folder / "again.tdproj"))
        assert again.to_dict() == result.to_dict() or _has_nan(result.to_dict())


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


@_fuzz_settings(PROJECT_BYTES_EXAMPLES)
@given(content=_mutated(json.dumps(_project_doc(2), indent=1).encode("utf-8"), _JSON))
def test_a_project_file_with_damaged_bytes_loads_or_is_refused_with_a_project_error(scratch,
                                                                                   content):
    with _example_dir(scratch) as folder:
        path = folder / "p.tdproj"
        path.write_bytes(content)
        result = _load_or_refuse("project bytes", lambda: Project.load(path))
        if isinstance(result, TrainDeskError):
            assert isinstance(result, ProjectError)
        else:
            result.validate()


# -- absurd sizes, bounded memory -----------------------------------------------------------------
def _in_subprocess(script: str, timeout: float = 120) -> dict:
    """Run *script* in a fresh Python (imports done, ``load_dataset`` and ``TrainDeskError``
    defined, ``baseline()`` marking the memory before the load) and return the JSON it prints
    last, with ``growth_mb``: the peak resident memory above the baseline."""
    prelude = textwrap.dedent("""
        import json, resource, sys
        sys.path.insert(0, sys.argv[1])
        from ml.data.dataset import load_dataset
        from ml.errors import TrainDeskError
        _base = [0]
        def baseline():
            _base[0] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        def done(**result):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            result["growth_mb"] = (peak - _base[0]) / (1024 * 1024 if sys.platform == "darwin"
                                                       else 1024)
            print(json.dumps(result))
    """)
    proc = subprocess.run([sys.executable, "-W", "error", "-c", prelude + textwrap.dedent(script),
                           str(ROOT)], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform == "win32", reason="resource is Unix-only")
@pytest.mark.parametrize("name_length", [8, 40])  # the header fits the first read, or does not
def test_a_csv_with_100000_columns_is_refused_quickly_in_bounded_memory(tmp_path, name_length):
    """It used to load, in 1.4 GB and 90 s on 2 cores; now it is refused before parsing."""
    path = tmp_path / "wide.csv"
    n = 100_000
    header = ",".join(f"f{i:0{name_length - 1}d}" for i in range(n))
    rows = [",".join(str((i * r) % 97) if i % 2 else f"w{(i + r) % 5}" for i in range(n))
            for r in range(1, 4)]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = _in_subprocess(f"""
        import time
        baseline()
        started = time.monotonic()
        try:
            dataset = load_dataset({str(path)!r})
        except TrainDeskError as exc:
            done(outcome="refused", message=str(exc), seconds=time.monotonic() - started)
        else:
            done(outcome="loaded", shape=list(dataset.frame.shape),
                 seconds=time.monotonic() - started)
    """)
    assert result["outcome"] == "refused", result
    assert result["message"] == ("wide.csv has more than 16,384 columns, TrainDesk's limit; keep "
                                 "only the columns you need and save them as a new file.")
    assert result["growth_mb"] < MAX_GROWTH_MB, result
    assert result["seconds"] < 10, result


def test_a_wide_parquet_file_is_refused_before_its_columns_are_described(tmp_path):
    """The limit holds for every format (Parquet and JSON are checked after reading)."""
    path = tmp_path / "wide.parquet"
    pd.DataFrame(np.zeros((2, 16_385), np.float32),
                 columns=[f"c{i}" for i in range(16_385)]).to_parquet(path)
    with pytest.raises(DataError, match="more than 16,384 columns"):
        load_dataset(str(path))


def _far_cell_workbook(cell: str) -> bytes:
    """The valid workbook with one more cell, *cell* (XML), in a row of its own at the end."""
    members = _zip_members(_valid_xlsx())
    sheet = members["xl/worksheets/sheet1.xml"]
    row = re.search(rb'r="[A-Z]+(\d+)"', cell).group(1)
    members["xl/worksheets/sheet1.xml"] = sheet.replace(
        b"</sheetData>", b'<row r="' + row + b'">' + cell + b"</row></sheetData>")
    return _zip_bytes(members)


@pytest.mark.parametrize("cell", [
    b'<c r="XFD1048576"><v>1</v></c>',  # pandas pads every row to it: 17 billion cells
    b'<c r="ZZ400000"><v>1</v></c>',
])
def test_a_workbook_with_one_value_far_away_is_refused_without_padding_to_it(tmp_path, cell):
    """Regression: a 5 KB workbook with one value at XFD1048576 had the process killed for
    memory, inside pandas."""
    path = tmp_path / "far.xlsx"
    path.write_bytes(_far_cell_workbook(cell))
    with _time_box(HANG_S, "far cell"), pytest.raises(
            DataError, match=r"The sheet 'data' of far.xlsx spans more than 20,000,000 cells"):
        load_dataset(str(path))


def test_a_workbook_with_a_styled_empty_cell_far_away_still_loads(tmp_path):
    path = tmp_path / "styled.xlsx"
    path.write_bytes(_far_cell_workbook(b'<c r="XFD1048576" s="0"/>'))
    with _time_box(HANG_S, "styled cell"):
        assert load_dataset(str(path)).frame.shape == (12, 7)


@pytest.mark.skipif(sys.platform == "win32", reason="resource is Unix-only")
@pytest.mark.parametrize("lines, keys, message", [
    (400, 500, "more than 16,384 columns"),  # 3 MB: pyarrow took 2 GB, 2,000 lines aborted it
    (10_000, 1, "most cells of the table would be empty"),  # 10,000 x 10,001 mostly empty
])
def test_json_lines_with_ever_new_keys_are_refused_in_bounded_memory(tmp_path, lines, keys,
                                                                     message):
    path = tmp_path / "keys.jsonl"
    path.write_text("\n".join(json.dumps({**{f"k{i}_{j}": j for j in range(keys)}, "y": i % 2})
                              for i in range(lines)) + "\n", encoding="utf-8")
    result = _in_subprocess(f"""
        baseline()
        try:
            load_dataset({str(path)!r})
        except TrainDeskError as exc:
            done(outcome="refused", message=str(exc))
        else:
            done(outcome="loaded")
    """)
    assert result["outcome"] == "refused" and message in result["message"], result
    assert result["growth_mb"] < 200, result


def _claiming(fmt: str, side: int) -> bytes:
    """A small *fmt* image whose header is patched to claim *side* x *side* pixels."""
    data = bytearray(_valid_image({"TIFF": "TIFF"}.get(fmt, fmt)))
    if fmt == "JPEG":
        at = data.find(b"\xff\xc0")  # start of frame: precision, height, width
        struct.pack_into(">HH", data, at + 5, side, side)
    elif fmt == "BMP":
        struct.pack_into("<ii", data, 18, side, side)
    elif fmt == "GIF":
        struct.pack_into("<HH", data, 6, side, side)  # the logical screen
        at = data.find(b"\x2c")  # the first image descriptor
        struct.pack_into("<HH", data, at + 5, side, side)
    elif fmt == "TIFF":
        offset = struct.unpack_from("<I", data, 4)[0]
        for k in range(struct.unpack_from("<H", data, offset)[0]):
            entry = offset + 2 + 12 * k
            tag, kind = struct.unpack_from("<HH", data, entry)
            if tag in (256, 257):  # ImageWidth, ImageLength
                struct.pack_into("<H" if kind == 3 else "<I", data, entry + 8, side)
    return bytes(data)


@pytest.mark.skipif(sys.platform == "win32", reason="resource is Unix-only")
def test_image_headers_claiming_50000_by_50000_pixels_are_skipped_without_allocating(tmp_path):
    """JPEG, BMP, GIF and TIFF headers (PNG is covered in tests/ml/test_images.py) in a folder
    imported the way the app does (decoding included)."""
    root = tmp_path / "pets"
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            (root / label / f"{i}.png").write_bytes(_valid_image("PNG"))
    bombs = {"JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif"}
    for fmt, suffix in bombs.items():
        content = _claiming(fmt, 50_000)
        with pytest.raises(Image.DecompressionBombError, match="2500000000 pixels"):
            Image.open(io.BytesIO(content))  # the patch took
        (root / "cats" / f"bomb{suffix}").write_bytes(content)
    result = _in_subprocess(f"""
        baseline()
        dataset = load_dataset({str(root)!r})
        done(rows=dataset.n_rows, skipped={{s.path: s.reason for s in dataset.skipped}})
    """)
    assert result["rows"] == 4
    assert sorted(result["skipped"]) == sorted(f"cats/bomb{s}" for s in bombs.values())
    assert all(reason.startswith("too large (") for reason in result["skipped"].values()), result
    assert result["growth_mb"] < 200, result  # one such image would need 7.5 GB


def test_an_idx_header_promising_gigabytes_is_refused_without_allocating_them(tmp_path):
    """Regression: the reader asked for the promised size in one ``read()``, which allocates it
    up front; with less memory than the header claims that was a bare MemoryError."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(
        bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 1000, 2800, 2800) + bytes(100))
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(1000)))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="damaged: the header says 1,000 images"):
            load_dataset(str(folder))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 1024**2, f"{peak / 1024**2:,.0f} MB"  # the header promises 7.8 GB


# -- regressions found by the fuzzers -------------------------------------------------------------
def test_a_version_1_project_whose_data_is_not_an_object_is_refused(tmp_path):
    """Was an AttributeError from the version 1 -> 2 migration."""
    doc = _project_doc(1)
    doc["data"] = [1]
    path = tmp_path / "p.tdproj"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ProjectError, match="'data' should be an object; fix it in the project"):
        Project.load(path)


@pytest.mark.parametrize("text, message", [
    # More digits than Python converts to an int by default: was a ValueError.
    ('"seed": ' + "9" * 5000, "p.tdproj is damaged or not a TrainDesk project"),
    # Deeper than the JSON reader recurses: was a RecursionError.
    ('"name": ' + _nested(100_000), "p.tdproj is damaged or not a TrainDesk project"),
    # Readable, but too deep to copy: was a RecursionError.
    ('"name": ' + _nested(800), "The project file is damaged .it holds values nested too deeply"),
])
def test_a_project_with_an_unreadable_json_value_is_refused(tmp_path, text, message):
    body = json.dumps(_project_doc(2))
    path = tmp_path / "p.tdproj"
    path.write_text(body[:-1] + ", " + text + "}", encoding="utf-8")
    with pytest.raises(ProjectError, match=message):
        Project.load(path)


def test_a_project_with_a_weight_decay_that_is_not_a_number_is_refused(tmp_path):
    """NaN passed validation and then failed the first training with a bare ValueError."""
    body = json.dumps(_project_doc(2)).replace('"weight_decay": 0.0001', '"weight_decay": NaN')
    path = tmp_path / "p.tdproj"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ProjectError, match=r"Weight decay must be 0 or a positive number \(got"):
        Project.load(path)


@pytest.mark.parametrize("name, content", [
    # pyarrow reads these; turning the nested lists into text recursed (from depth ~95).
    ("deep.jsonl", f'{{"a": {_nested(120)}, "b": 2}}\n' * 2),
    # Deeper than the JSON reader recurses, in the line-by-line reader and in an array.
    ("deeper.jsonl", f'{{"a": 1, "b": 2}}\n{{"a": {_nested(100_000)}, "b": 3}}\n'),
    ("deeper.json", f'[{{"a": 1, "b": {_nested(100_000)}}}]'),
])
def test_json_nested_too_deeply_is_refused_with_a_data_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match="nested too deeply"):
        load_dataset(str(path))


@pytest.mark.parametrize("name, valid, text, message", [
    ("t.parquet", _valid_parquet, b'with "quotes"', "is not a Parquet file, or it is damaged"),
    ("t.jsonl", _valid_jsonl, b'"low"', "is not UTF-8 text"),
])
def test_text_that_is_not_utf8_is_refused(tmp_path, name, valid, text, message):
    """Found by the Parquet and JSON lines fuzzers: Arrow does not check UTF-8 when reading, so
    one damaged byte in a text value was a UnicodeDecodeError later, while the columns were
    described."""
    data = bytearray(valid())
    data[data.find(text) + 1] = 0x80
    path = tmp_path / name
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"{name} {message}"):
        load_dataset(str(path))


@pytest.mark.parametrize("name, content", [
    ("key.jsonl", '{"\\ud800id": 0, "b": 1}\n{"id": 1, "b": 2}\n'),
    ("value.jsonl", '{"a": "x\\udc00", "b": 1}\n{"a": "y", "b": 2}\n'),
    ("array.json", '[{"a": "\\ud800", "b": 1}, {"a": "y", "b": 2}]'),
])
def test_json_with_half_a_surrogate_pair_is_refused_with_a_data_error(tmp_path, name, content):
    """Found by the JSON lines fuzzer: Python's JSON reader accepts ``\\ud800``, which no UTF-8
    text can hold, so pandas failed with a UnicodeEncodeError."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=r"escape such as \\ud800 that stands for no character"):
        load_dataset(str(path))


def test_json_with_a_whole_surrogate_pair_still_loads(tmp_path):
    path = tmp_path / "emoji.jsonl"
    path.write_text('{"a": "\\ud83d\\ude00", "b": 1}\n{"a": "y", "b": 2}\n', encoding="utf-8")
    assert load_dataset(str(path)).frame["a"].tolist() == ["\U0001f600", "y"]


@pytest.mark.parametrize("encoding", ["rot13", "base64", "hex", "zlib", "idna", "punycode",
                                      "undefined"])
def test_a_codec_that_is_not_a_text_encoding_is_refused_as_a_read_option(tmp_path, encoding):
    """codecs.lookup knows these, so they passed the check, then failed reading with a
    LookupError, UnicodeError or AttributeError (``--encoding`` of the CLI is free text)."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"Unknown text encoding '{encoding}'"):
        load_dataset(str(path), {"encoding": encoding})
