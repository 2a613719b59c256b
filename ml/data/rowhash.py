"""One number per table row, from its values: to tell later whether a file's rows were trained on.

A run keeps the hashes of its training and validation rows (see :mod:`ml.runs.folder`); an
evaluation on another file hashes that file's rows the same way and counts the matches. Two
reads of the same values must give the same hash even when the dtypes differ (``3`` in one file
and ``3.0`` in another, a column read as numbers in one and as text in the other because of a
stray cell), so every column is first brought to one canonical form.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def row_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``uint64`` hash of each row of *frame* over *columns* (in that order).

    Numbers (and booleans, and text that is all numbers) are hashed as float64, so ``3`` and
    ``3.0`` match; anything else as its stripped text; a missing cell as missing. 64 bits keep
    accidental matches below one in ten million even between two million-row tables.

    Raises
    ------
    KeyError
        If *frame* lacks one of *columns*.
    """
    canonical = pd.DataFrame({str(i): _canonical(frame[c]) for i, c in enumerate(columns)},
                             index=frame.index)
    return pd.util.hash_pandas_object(canonical, index=False).to_numpy(dtype=np.uint64)


def _canonical(column: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(column.dtype) or (
            pd.api.types.is_numeric_dtype(column.dtype)
            and not pd.api.types.is_complex_dtype(column.dtype)):
        return pd.Series(column.to_numpy(dtype="float64", na_value=np.nan), index=column.index)
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column.astype("string")
    text = column.astype("string").str.strip()
    text = text.mask(text == "")
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() == text.notna().sum():  # text of numbers only: as the numbers
        return pd.Series(numbers.to_numpy(dtype="float64", na_value=np.nan), index=column.index)
    return text


def count_in(hashes: np.ndarray, known: np.ndarray) -> int:
    """How many of *hashes* are among *known*."""
    if len(hashes) == 0 or len(known) == 0:
        return 0
    return int(np.isin(hashes, known).sum())
