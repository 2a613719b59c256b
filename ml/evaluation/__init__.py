"""Metrics and evaluation of trained models.

The names below load on first use (PEP 562): a child process that needs one light module of this
package (:mod:`ml.evaluation.yardstick` fits scikit-learn only) does not import torch with it.
"""

from __future__ import annotations

import importlib

_WHERE = {"Evaluation": "evaluate", "evaluate_arrays": "evaluate", "evaluate_run": "evaluate",
          "load_split": "evaluate", "predict_frame": "evaluate",
          "classification_metrics": "metrics", "confusion_matrix": "metrics",
          "regression_metrics": "metrics"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
