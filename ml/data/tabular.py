"""Reading tables from disk and describing their columns.

The reader is careful about the files people really have: it checks for a missing, empty or
binary file before pandas sees it, sniffs the delimiter, falls back from UTF-8 to cp1252, and turns
every parser failure into a :class:`~ml.errors.DataError` that says what to do.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")
#: A column is numeric when at least this share of its non-missing values parse as numbers;
#: the rest are then treated as missing values (with a warning).
NUMERIC_SHARE = 0.95
#: Object columns with at most this many distinct values (or 5% of the rows) are categorical.
MAX_CATEGORIES = 50
_TRUE = {"true", "yes", "y", "t"}
_FALSE = {"false", "no", "n", "f"}


@dataclass(frozen=True)
class ColumnInfo:
    """What TrainDesk found in one column.

    Attributes
    ----------
    name : str
    type : str
        Inferred type: ``numeric``, ``categorical``, ``boolean`` or ``text``.
    n_missing : int
        Empty cells (and, for numeric columns, cells that are not numbers).
    n_unique : int
        Distinct non-missing values.
    n_invalid : int
        Non-empty cells that are not numbers, in a column inferred as numeric.
    example : str
        One value from the column, for display.
    """

    name: str
    type: str
    n_missing: int
    n_unique: int
    n_invalid: int = 0
    example: str = ""


def read_table(path: str | Path, min_columns: int = 2) -> pd.DataFrame:
    """Read a delimited text table.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.tsv`` or ``.txt`` file. The delimiter (comma, semicolon, tab or pipe) is
        sniffed; the encoding is UTF-8 (with or without BOM) or, failing that, cp1252.
    min_columns : int
        2 for training data (features and a target); 1 for data to predict on.

    Raises
    ------
    DataError
        For a missing, empty, binary or malformed file, or one with fewer than two columns.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"File not found: {p}. Check the path or choose another file.")
    if p.is_dir():
        raise DataError(f"{p} is a folder. Choose a CSV file.")
    if p.suffix.lower() not in TEXT_SUFFIXES:
        raise DataError(f"{p.name} is not a CSV file. TrainDesk reads .csv, .tsv and .txt tables; "
                        f"export your data as CSV and open that.")
    try:
        with open(p, "rb") as fh:
            head = fh.read(256 * 1024)
    except OSError as exc:
        raise DataError(f"Could not read {p.name}: {exc.strerror or exc}.") from None
    if not head.strip():
        raise DataError(f"{p.name} is empty. Choose a file with a header row and data rows.")
    if b"\x00" in head:
        raise DataError(f"{p.name} is not a text table (it contains binary data). Choose a CSV "
                        f"file.")
    encoding = "utf-8-sig"
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the buffer's end
            encoding = "cp1252"
        text = head.decode(encoding, errors="replace")
    sep = _sniff_delimiter(text, p.suffix.lower())
    try:
        df = pd.read_csv(p, sep=sep, encoding=encoding, low_memory=False,
                         skipinitialspace=True, on_bad_lines="error")
    except pd.errors.EmptyDataError:
        raise DataError(f"{p.name} has no columns. Choose a file with a header row.") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(f"{p.name} is not a consistent table ({detail}). Check that every row "
                        f"has the same number of fields.") from None
    except UnicodeDecodeError:
        try:
            df = pd.read_csv(p, sep=sep, encoding="cp1252", low_memory=False,
                             skipinitialspace=True)
        except Exception as exc:  # noqa: BLE001 - any parser failure is a data problem here
            raise DataError(f"Could not read {p.name}: {exc}.") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"Could not read {p.name}: {exc}.") from None
    df.columns = _unique_names(str(c).strip() for c in df.columns)
    if df.shape[1] < min_columns:
        raise DataError(f"{p.name} has only one column. A table needs feature columns and a "
                        f"target column; check that the file is comma-, semicolon- or "
                        f"tab-separated.")
    if len(df) == 0:
        raise DataError(f"{p.name} has a header but no data rows.")
    return df


def _unique_names(names) -> list[str]:
    """Header names made unique the way pandas does it (``a``, ``a.1``, ...).

    Pandas only renames exact duplicates; stripping spaces can create new ones (``a`` and
    ``a ``), and two columns with one name would break every later lookup.
    """
    seen: dict[str, int] = {}
    out = []
    for name in names:
        candidate = name or "column"
        while candidate in seen:
            seen[name] += 1
            candidate = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        seen[candidate] = seen.get(candidate, 0)
        out.append(candidate)
    return out


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and text and not text.endswith("\n"):
        lines = lines[:-1]  # the last line may be cut at the buffer boundary
    sample = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",;\t|"} if lines else {}
        best = max(counts, key=counts.get) if counts else ","
        return best if counts.get(best) else ","


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


def describe_column(series: pd.Series) -> ColumnInfo:
    """Infer the type of one column and count what matters about it."""
    name = str(series.name)
    present = series.dropna()
    if present.dtype == object or pd.api.types.is_string_dtype(present):
        present = present[present.astype("string").str.strip() != ""]
    n_missing = int(len(series) - len(present))
    example = str(present.iloc[0]) if len(present) else ""
    if len(present) == 0:
        return ColumnInfo(name, "text", n_missing, 0, 0, example)
    n_unique = int(present.nunique())
    if pd.api.types.is_bool_dtype(series):
        return ColumnInfo(name, "boolean", n_missing, n_unique, 0, example)
    if pd.api.types.is_numeric_dtype(series):
        infinite = int((~np.isfinite(present.astype("float64"))).sum())
        return ColumnInfo(name, "numeric", n_missing + infinite, n_unique, infinite, example)
    lowered = present.astype("string").str.strip().str.lower()
    if n_unique <= 2 and set(lowered.unique()) <= (_TRUE | _FALSE):
        return ColumnInfo(name, "boolean", n_missing, n_unique, 0, example)
    numbers = pd.to_numeric(lowered, errors="coerce")
    numbers = numbers.where(np.isfinite(numbers.astype("float64")))
    n_numbers = int(numbers.notna().sum())
    if n_numbers >= NUMERIC_SHARE * len(present):
        invalid = len(present) - n_numbers
        return ColumnInfo(name, "numeric", n_missing + invalid, int(numbers.nunique()), invalid,
                          example)
    if n_unique <= max(MAX_CATEGORIES, int(0.05 * len(series))) and n_unique < len(present):
        return ColumnInfo(name, "categorical", n_missing, n_unique, 0, example)
    return ColumnInfo(name, "text", n_missing, n_unique, 0, example)


def describe_columns(df: pd.DataFrame) -> dict[str, ColumnInfo]:
    """Describe every column of *df*, keyed by name."""
    return {str(c): describe_column(df[c]) for c in df.columns}


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
