"""Small settings dataclasses read from a project file: known fields, typed, defaults.

The augmentation and text settings are each a flat dataclass of true/false switches and
numbers; this is the one reader that checks each value's type against its field.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, TypeVar

import numpy as np

from ..errors import DataError

T = TypeVar("T")


def settings_from_dict(cls: type[T], d: Any, *, setting: str, not_a_dict: str) -> T:
    """Build dataclass *cls* from *d*: unknown keys are ignored, missing ones take defaults.

    Fields annotated ``bool`` take only true/false, ``int`` whole numbers (see :func:`as_int`)
    and ``float`` finite numbers. Ranges are left to the dataclass's own ``validate``.

    Parameters
    ----------
    cls : type
        A dataclass whose fields are all ``bool``, ``int`` or ``float``.
    d : dict or None
        The values from the project file; None or empty for the defaults.
    setting : str
        How a message names one value, e.g. ``"The text setting"``.
    not_a_dict : str
        The message when *d* is not a set of named values.

    Raises
    ------
    DataError
        When *d* is not a dict or a value has the wrong type.
    """
    d = d or {}
    if not isinstance(d, dict):
        raise DataError(not_a_dict)
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in d:
            continue
        value = d[f.name]
        what = f"{setting} {f.name!r}"
        if f.type in (bool, "bool"):
            if not isinstance(value, bool):
                raise DataError(f"{what} must be true or false (got {value!r}).")
        elif f.type in (int, "int"):
            value = as_int(value, what)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise DataError(f"{what} must be a number (got {value!r}).")
            value = float(value)
        values[f.name] = value
    return cls(**values)


def as_int(value: Any, what: str) -> int:
    """*value* as an int: ints and whole floats pass (JSON may write 100.0), anything else fails."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{what} must be a whole number (got {value!r}).")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise DataError(f"{what} must be a whole number (got {value!r}).")
    return int(value)
