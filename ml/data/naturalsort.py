"""The one order for class names and category values: numbers numerically, words naturally.

Classes get their output index from this order and one-hot columns their position, so it must
be total and the same in every process: ties in the key would leave the order to set iteration,
which varies with the string hash seed.
"""

from __future__ import annotations

import math
import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(label: str) -> tuple:
    """Sort key: numbers first in numeric order, then words with their digit runs as numbers.

    ``2 < 10 < 2.5e1 < "cat"``; ``"img2" < "img10"``; letters compare case-insensitively
    (``"apple" < "Banana"``), and labels equal up to case or leading zeros are ordered by their
    exact text, so no two different labels tie. ``"nan"`` and ``"inf"`` are words.

    Parameters
    ----------
    label : str
        A class name or category value, as text.

    Returns
    -------
    tuple
        Comparable with the key of any other label.
    """
    try:
        number = float(label)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return (0, number, (), label)
    # re.split alternates text and digit runs, starting with text, so the parts at one position
    # are always both str or both int.
    parts = _DIGITS.split(label.casefold())
    natural = tuple(int(part) if i % 2 else part for i, part in enumerate(parts))
    return (1, 0.0, natural, label)
