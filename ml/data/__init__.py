"""Reading, describing, splitting and encoding data.

The names below load on first use (PEP 562): image-decoding worker processes import
``ml.data.images`` and should not pay for pandas-heavy modules they never touch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Dataset": "dataset", "DataSummary": "dataset", "PreparedData": "dataset",
    "load_dataset": "dataset", "prepare": "dataset", "resolve": "dataset",
    "Preprocessor": "preprocessing",
    "SampleInfo": "samples", "get_sample": "samples", "list_samples": "samples",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ml.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
