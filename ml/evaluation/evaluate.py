"""Evaluating a trained model on labelled data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.dataset import load_dataset
from ..data.preprocessing import Preprocessor
from ..data.tabular import read_table
from ..errors import DataError, RunError
from ..models.spec import TrainDeskNet
from ..runs.folder import Run, data_fingerprint
from ..training.trainer import predict_raw
from .metrics import (
    ClassReport,
    confusion_matrix,
    full_classification_metrics,
    per_class_report,
    regression_metrics,
)


@dataclass
class Evaluation:
    """Predictions and metrics on one labelled set.

    For classification ``y_true``/``y_pred`` are class indices and ``proba`` the probabilities;
    for regression they are values in the target's own units and ``proba`` is None.
    """

    task: str
    source: str
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    class_names: list[str]
    metrics: dict[str, float]
    confusion: np.ndarray | None = None
    report: ClassReport | None = None
    #: What each evaluated row was, to show examples: the table rows (a DataFrame, text
    #: columns included) or the images (``uint8`` ``(N, C, H, W)``); None when unknown.
    examples: object = None

    @property
    def n(self) -> int:
        return len(self.y_true)


def outputs_to_predictions(raw: np.ndarray, pre: Preprocessor
                           ) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn raw network outputs into predictions (and class probabilities)."""
    if pre.task == "classification":
        z = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(z)
        proba = e / e.sum(axis=1, keepdims=True)
        return proba.argmax(axis=1), proba
    return pre.inverse_target(raw.reshape(-1)), None


def evaluate_arrays(net: TrainDeskNet, pre: Preprocessor, x: np.ndarray, y: np.ndarray,
                    source: str = "test", examples=None) -> Evaluation:
    """Evaluate *net* on encoded inputs *x* and encoded targets *y*; *examples* are the rows
    as the user knows them (see :attr:`Evaluation.examples`; images default to *x*)."""
    raw = predict_raw(net, x)
    pred, proba = outputs_to_predictions(raw, pre)
    if examples is None and pre.kind == "image":
        examples = x
    return evaluation_from_predictions(pre, y, pred, proba, source, examples)


def evaluation_from_predictions(pre: Preprocessor, y: np.ndarray, pred: np.ndarray,
                                proba: np.ndarray | None, source: str = "test",
                                examples=None) -> Evaluation:
    """Metrics for predictions *pred* (class indices, or values in the target's units) and
    probabilities *proba* against encoded targets *y*."""
    if pre.task == "classification":
        k = len(pre.class_names)
        cm = confusion_matrix(y, pred, k)
        return Evaluation("classification", source, np.asarray(y), pred, proba,
                          list(pre.class_names), full_classification_metrics(y, pred, proba, k),
                          cm, per_class_report(cm), examples)
    y_true = pre.inverse_target(y)
    return Evaluation("regression", source, y_true, pred, None, [],
                      regression_metrics(y_true, pred), examples=examples)


def labelled_inputs(pre: Preprocessor, data: str | Path):
    """Encoded inputs, encoded targets and example rows of a new labelled file (or, for image
    models, a labelled image folder).

    Raises
    ------
    DataError
        If *data* cannot be read or lacks the model's columns or the target.
    """
    if pre.kind == "image":
        x, y = _labelled_images(pre, data)
        return x, y, x
    frame = read_table(data)
    if pre.target not in frame.columns:
        raise DataError(f"{Path(data).name} has no target column {pre.target!r}, so it cannot "
                        f"be used to evaluate. Use 'predict' for unlabelled data.")
    frame = frame[frame[pre.target].notna()]
    return (pre.transform_features(frame), pre.transform_target(frame),
            frame.reset_index(drop=True))


def evaluate_run(run: Run, data: str | Path | None = None, split: str = "test") -> Evaluation:
    """Evaluate a run on its test (or validation: *split* ``"val"``) split, or on every row of
    a new labelled file *data*.

    Raises
    ------
    RunError
        If the run's data file is gone or changed since training (then pass *data*).
    DataError
        If *data* cannot be read or lacks the model's columns or the target.
    """
    net = run.load_model()
    pre = run.preprocessor
    if data is not None:
        x, y, examples = labelled_inputs(pre, data)
        return evaluate_arrays(net, pre, x, y, Path(data).name, examples=examples)
    if split not in ("test", "val"):
        raise DataError(f"Unknown split {split!r}; use test or val.")
    x, y, examples = load_split(run, split, with_examples=True)
    return evaluate_arrays(net, pre, x, y,
                           "test split" if split == "test" else "validation split", examples)


#: What :func:`load_split`'s "the split no longer exists" errors advise, after the reason.
SPLIT_ADVICE = (" Evaluate on another labelled file instead (in the app: 'Evaluate on another "
                "labelled file'; on the command line: --data FILE).")


def load_split(run: Run, name: str = "test", with_examples: bool = False):
    """Re-read a run's data and return the encoded inputs and targets of one split (and, with
    *with_examples*, the split's rows as :attr:`Evaluation.examples` holds them).

    Raises
    ------
    RunError
        If the data file is gone or changed since training.
    """
    source = run.config.get("data", {}).get("source", "")
    expected = run.config.get("data_fingerprint", {}).get("sha256")
    try:
        current = data_fingerprint(source)["sha256"]
    except (OSError, DataError):
        raise RunError(f"The data file of this run ({source}) is not available any more."
                       + SPLIT_ADVICE) from None
    if expected and current != expected:
        raise RunError(f"The data file {source} changed after this run was trained, so its "
                       f"{name} split no longer exists." + SPLIT_ADVICE)
    dataset = load_dataset(source, run.config.get("data", {}).get("read_options") or None)
    rows = run.split_rows()[name]
    n = len(dataset.frame)
    # Without a fingerprint (older runs) a shorter file is only noticed here, not as an IndexError.
    if len(rows) and (int(rows.max()) >= n or int(rows.min()) < 0):
        raise RunError(f"The data file {source} has {n:,} rows, but this run's {name} split "
                       f"uses row {int(rows.max()) + 1:,}: the file changed after training, so "
                       f"the split no longer exists." + SPLIT_ADVICE)
    pre = run.preprocessor
    if dataset.kind == "image":
        x, y = _encode_images(dataset, pre, rows)
        return (x, y, x) if with_examples else (x, y)
    part = dataset.frame.iloc[rows]
    x, y = pre.transform_features(part), pre.transform_target(part)
    return (x, y, part.reset_index(drop=True)) if with_examples else (x, y)


def _encode_images(dataset, pre: Preprocessor, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``uint8`` images and class indices of *rows* of an image dataset, as the run saw them."""
    from ..data.dataset import decoded_images

    images, ok = decoded_images(dataset, int(pre.image["height"]), int(pre.image["width"]),
                                pre.image.get("mode", "RGB"))
    rows = np.asarray(rows, dtype=np.int64)
    if not ok[rows].all():
        raise DataError("Some images of this split can no longer be decoded.")
    index = {name: i for i, name in enumerate(pre.class_names)}
    labels = dataset.frame["label"].astype(str).to_numpy()[rows]
    unknown = [lab for lab in labels if lab not in index]
    if unknown:
        raise DataError(f"The images include a class the model does not know: {unknown[0]!r}. "
                        f"Known classes: {', '.join(pre.class_names[:10])}.")
    return images[rows], np.array([index[lab] for lab in labels], dtype=np.int64)


def _labelled_images(pre: Preprocessor, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode a labelled image source (folder, zip, IDX ...) for an image model."""
    dataset = load_dataset(str(source))
    if dataset.kind != "image":
        raise DataError(f"{Path(source).name} holds no labelled images. Choose a folder with one "
                        f"sub-folder per class.")
    return _encode_images(dataset, pre, np.flatnonzero(
        np.ones(len(dataset.frame), dtype=bool)))


def predict_frame(net: TrainDeskNet, pre: Preprocessor, frame: pd.DataFrame) -> pd.DataFrame:
    """Return *frame* with a ``prediction`` column (and ``probability_<class>`` columns)."""
    pred, proba = outputs_to_predictions(predict_raw(net, pre.transform_features(frame)), pre)
    out = frame.copy()
    add_prediction_columns(out, pre, pred, proba)
    return out


def add_prediction_columns(out: pd.DataFrame, pre: Preprocessor, pred: np.ndarray,
                           proba: np.ndarray | None) -> None:
    """Add ``prediction`` (class names or values) and ``probability_<class>`` columns."""
    if pre.task == "classification":
        out["prediction"] = [pre.class_names[i] for i in pred]
        for j, name in enumerate(pre.class_names):
            out[f"probability_{name}"] = proba[:, j]
    else:
        out["prediction"] = pred
