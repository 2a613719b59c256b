"""Several runs side by side, and averaged into one model (an ensemble).

Runs are compared on the same rows: the split they share (same data file, same split) or a new
labelled file. An ensemble averages its members' class probabilities (or, for numbers, their
predictions in the target's units) and is evaluated and exported like a single run - the export
holds every member and does the averaging inside the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.preprocessing import Preprocessor
from ..errors import DataError
from ..models.spec import InferenceModel
from ..runs.folder import Run
from ..system.jobcontrol import ShouldStop, check_stop
from ..training.trainer import predict_raw
from .evaluate import (
    Evaluation,
    decide,
    evaluation_from_predictions,
    load_split,
    outputs_to_predictions,
)

#: What members must share to take the same input (the rest - scaling statistics, target
#: scaling - lives inside each member's network or inference wrapper).
_SAME_INPUT = ("task", "kind", "input_shape", "input_dtype", "columns", "class_names", "image",
               "text_columns", "tokenizer")


@dataclass
class Comparison:
    """Several models evaluated on the same rows: ``names[i]`` scored ``evaluations[i]``."""

    names: list[str]
    evaluations: list[Evaluation]
    #: Index of the ensemble's evaluation in the lists, or None for a plain comparison.
    ensemble: int | None = None


def check_compatible(runs: list[Run]) -> None:
    """Raise :class:`DataError` unless *runs* take the same input and give the same outputs."""
    if len(runs) < 2:
        raise DataError("Choose at least two runs.")
    first = runs[0].preprocessor.to_dict()
    for run in runs[1:]:
        doc = run.preprocessor.to_dict()
        for key in _SAME_INPUT:
            if doc.get(key) != first.get(key):
                what = {"task": "task", "class_names": "classes", "columns": "input columns",
                        "input_shape": "input size", "tokenizer": "vocabulary"}.get(key, key)
                raise DataError(f"Runs {runs[0].path.name} and {run.path.name} differ in their "
                                f"{what}, so they cannot be combined. Choose runs trained on the "
                                f"same data with the same preprocessing.")


class Ensemble:
    """Runs averaged into one model (see the module docstring)."""

    def __init__(self, runs: list[Run]):
        check_compatible(runs)
        self.runs = list(runs)
        self.preprocessor: Preprocessor = runs[0].preprocessor
        self._nets = [run.load_model() for run in runs]

    @property
    def task(self) -> str:
        return self.preprocessor.task

    @property
    def name(self) -> str:
        return f"ensemble of {len(self.runs)}"

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (class indices or values) and averaged probabilities for inputs *x*."""
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / np.float32(255.0)
        outs = [outputs_to_predictions(predict_raw(net, x), run.preprocessor)
                for net, run in zip(self._nets, self.runs)]
        if self.task == "classification":
            proba = np.mean([p for _, p in outs], axis=0)
            return decide(proba), proba  # two classes: at the default threshold
        return np.mean([pred for pred, _ in outs], axis=0), None

    def inference_model(self) -> EnsembleModel:
        """One module for export: every member's probabilities (or values), averaged."""
        members = [InferenceModel(net, run.preprocessor.task, run.preprocessor.target_mean,
                                  run.preprocessor.target_std)
                   for net, run in zip(self._nets, self.runs)]
        return EnsembleModel(members).eval()


class EnsembleModel(nn.Module):
    """The mean of several :class:`InferenceModel` outputs (probabilities or values)."""

    def __init__(self, members: list[InferenceModel]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.task = members[0].task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


def shared_split(runs: list[Run], split: str) -> np.ndarray:
    """The rows of *split* the runs share; :class:`DataError` if they were split differently."""
    sources = {str(run.config.get("data", {}).get("source", "")) for run in runs}
    if len(sources) > 1:
        raise DataError("These runs were trained on different data files. Compare them on a "
                        "labelled file instead.")
    rows = runs[0].split_rows()[split]
    for run in runs[1:]:
        if not np.array_equal(run.split_rows()[split], rows):
            raise DataError(f"Runs {runs[0].path.name} and {run.path.name} have different "
                            f"{'test' if split == 'test' else 'validation'} rows (another seed "
                            f"or split), so their scores are not comparable. Compare them on a "
                            f"labelled file instead.")
    return rows


def compare_runs(runs: list[Run], split: str = "test", data: str | Path | None = None,
                 ensemble: bool = False, *, should_stop: ShouldStop | None = None
                 ) -> Comparison:
    """Evaluate *runs* on the same rows (a shared split, or labelled file *data*); with
    *ensemble*, also their average, listed last.

    Raises
    ------
    DataError
        If the runs cannot be compared or combined (see :func:`check_compatible`).
    Cancelled
        When *should_stop* returns True between two runs.
    """
    from .evaluate import evaluate_run

    if ensemble:
        check_compatible(runs)
    elif len(runs) < 2:
        raise DataError("Choose at least two runs.")
    if data is None:
        shared_split(runs, split)
    evaluations = []
    for run in runs:
        check_stop(should_stop, "The comparison was stopped.")
        evaluations.append(evaluate_run(run, data, split))
    check_stop(should_stop, "The comparison was stopped.")
    names = [run.path.name for run in runs]
    if not ensemble:
        return Comparison(names, evaluations)
    model = Ensemble(runs)
    pre = model.preprocessor
    first = evaluations[0]
    if data is None:
        x, y = load_split(runs[0], split)
    else:
        from .evaluate import labelled_inputs

        x, y, _ = labelled_inputs(pre, data)
    pred, proba = model.predict(x)
    combined = evaluation_from_predictions(pre, y, pred, proba, first.source, first.examples)
    return Comparison(names + [model.name], evaluations + [combined], ensemble=len(names))
