"""Why the model says what it says: permutation feature importance for tables.

Shuffling one column of the evaluation rows breaks its link to the target while keeping its
values; how much the score drops is how much the model relies on that column (Breiman, 2001;
scikit-learn's ``permutation_importance``). Columns are the user's raw columns - a one-hot
encoded category counts as one - and the score is accuracy for classes, R² for numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.preprocessing import Preprocessor
from ..errors import DataError
from ..models.spec import TrainDeskNet
from ..training.trainer import predict_raw
from .evaluate import outputs_to_predictions
from .metrics import regression_metrics


@dataclass
class Importance:
    """Mean and standard deviation of the score drop per column, most important first."""

    features: list[str]
    mean: np.ndarray
    std: np.ndarray
    baseline: float
    score: str  # accuracy | r2


def _score(net: TrainDeskNet, pre: Preprocessor, frame: pd.DataFrame, y: np.ndarray) -> float:
    pred, _ = outputs_to_predictions(predict_raw(net, pre.transform_features(frame)), pre)
    if pre.task == "classification":
        return float(np.mean(pred == y))
    return regression_metrics(pre.inverse_target(y), pred)["r2"]


def permutation_importance(net: TrainDeskNet, pre: Preprocessor, frame: pd.DataFrame, *,
                           repeats: int = 5, seed: int = 0,
                           should_stop=None) -> Importance:
    """Score drop when each feature column of *frame* (rows with the target) is shuffled.

    Raises
    ------
    DataError
        For a model that does not read table columns (images, text), or rows without the
        target.
    """
    if pre.kind != "tabular" or not pre.columns:
        raise DataError("Feature importance by shuffling columns is for table models; images "
                        "and texts are explained per example.")
    if pre.target not in frame.columns:
        raise DataError(f"The rows have no target column {pre.target!r} to score against.")
    frame = frame[frame[pre.target].notna()].reset_index(drop=True)
    if len(frame) < 2:
        raise DataError("At least two labelled rows are needed to measure importance.")
    y = pre.transform_target(frame)
    baseline = _score(net, pre, frame, y)
    rng = np.random.default_rng(seed)
    names = [c.name for c in pre.columns]
    drops = np.zeros((len(names), repeats))
    for i, name in enumerate(names):
        shuffled = frame.copy()
        for r in range(repeats):
            if should_stop is not None and should_stop():
                raise DataError("Cancelled.")
            shuffled[name] = frame[name].to_numpy()[rng.permutation(len(frame))]
            drops[i, r] = baseline - _score(net, pre, shuffled, y)
    mean, std = drops.mean(axis=1), drops.std(axis=1)
    order = np.argsort(-mean, kind="stable")
    return Importance([names[i] for i in order], mean[order], std[order], baseline,
                      "accuracy" if pre.task == "classification" else "r2")
