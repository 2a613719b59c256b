"""Evaluating a trained model on labelled data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.dataset import load_dataset
from ..data.preprocessing import Preprocessor
from ..data.rowhash import row_hashes
from ..data.tabular import read_table
from ..errors import DataError, RunError
from ..models.spec import TrainDeskNet
from ..runs.folder import DEFAULT_THRESHOLD, Run, data_fingerprint
from ..training.trainer import predict_raw
from .metrics import (
    ClassReport,
    confusion_matrix,
    full_classification_metrics,
    per_class_report,
    regression_metrics,
    with_threshold,
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
    #: Two classes: the probability of the second class from which it was predicted (see
    #: :attr:`ml.runs.folder.Run.threshold`); None for other models.
    threshold: float | None = None
    #: The target column (for sentences such as "rows where churn is “yes”"); "" for images.
    target: str = ""
    #: Regression: the target's training mean, the baseline's prediction (see
    #: :mod:`ml.evaluation.baseline`); None when unknown.
    target_mean: float | None = None
    #: What one evaluated example is called: "rows" or "images".
    unit: str = "rows"
    #: Another labelled file: how many of its rows are among the run's training (``train``)
    #: and validation (``val``) rows; None when that was not or could not be checked.
    overlap: dict[str, int] | None = None
    #: Where the rows stand with training, in words (see :attr:`rows_text`); "" for the default.
    rows_note: str = ""
    #: The classic model fitted beside the run, scored on these same rows (the run's test
    #: split only; :mod:`ml.evaluation.yardstick`); None when there is none.
    yardstick: Any = None

    @property
    def n(self) -> int:
        return len(self.y_true)

    @property
    def rows_text(self) -> str:
        """The evaluated rows in a few words that are true of them, e.g. "150 rows never used
        for training or to pick the best epoch" (the test split)."""
        return self.rows_note or split_rows_note(self.source, self.n, self.unit)


def split_rows_note(source: str, n: int, unit: str = "rows", refitted: bool = False) -> str:
    """What *n* rows of a run's own split *source* (``test split``, ``validation split``)
    were used for (*refitted*: the final fit trained on the validation rows too); for any
    other source, just how many there are."""
    if source == "test split":
        return f"{n:,} {unit} never used for training or to pick the best epoch"
    if source == "validation split" and refitted:
        return (f"{n:,} {unit} used to pick the number of epochs and then, in the final fit, "
                f"to train the model, so these scores are optimistic")
    if source == "validation split":
        return (f"{n:,} {unit} not trained on, but used to pick the best epoch, so the scores "
                f"flatter the model a little")
    return f"{n:,} {unit}"


def overlap_note(n: int, overlap: dict[str, int] | None, unit: str = "rows",
                 refitted: bool = False) -> str:
    """The rows of another file in words: how many the run trained on or picked its best epoch
    with (from :attr:`Evaluation.overlap`; *refitted*: the final fit trained on those too),
    or that this could not be checked."""
    if overlap is None and unit == "images":
        return f"{n:,} images; whether any were used for training is not checked for images"
    if overlap is None:
        return (f"{n:,} {unit}; whether any were used for training could not be checked (this "
                f"run was trained before TrainDesk kept a record of its training rows)")
    train, val = int(overlap.get("train", 0)), int(overlap.get("val", 0))
    if not train and not val:
        return f"{n:,} {unit}, none of them used for training or to pick the best epoch"
    parts = []
    if train:
        parts.append(f"{train:,} {'was' if train == 1 else 'were'} used for training")
    if val:
        parts.append(f"{val:,} to pick the number of epochs and then to train (the final fit)"
                     if refitted else f"{val:,} to pick the best epoch (validation)")
    unused = n - train - val
    rest = (f"; {unused:,} {'was' if unused == 1 else 'were'} never used" if unused
            else "; none was left out of training")
    return (f"{n:,} {unit}: {' and '.join(parts)}, so these scores are optimistic{rest}")


def count_overlap(run: Run, frame: pd.DataFrame) -> dict[str, int] | None:
    """How many rows of *frame* have the values of one of *run*'s training or validation rows
    (training first: a row in both counts once, as training); None when the run keeps no row
    hashes or *frame* lacks one of the hashed columns."""
    known = run.folder.row_hashes()
    if known is None or any(c not in frame.columns for c in known["columns"]):
        return None
    hashes = row_hashes(frame, known["columns"])
    in_train = np.isin(hashes, known["train"])
    in_val = ~in_train & np.isin(hashes, known["val"])
    return {"train": int(in_train.sum()), "val": int(in_val.sum())}


def is_binary(pre: Preprocessor) -> bool:
    """Whether *pre* sorts into exactly two classes (the models with a decision threshold)."""
    return pre.task == "classification" and len(pre.class_names) == 2


def decide(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class indices from probabilities: two classes say the second from *threshold* on
    (default :data:`~ml.runs.folder.DEFAULT_THRESHOLD`), more classes the most probable."""
    if proba.shape[1] == 2:
        return with_threshold(proba, DEFAULT_THRESHOLD if threshold is None else threshold)
    return proba.argmax(axis=1)


def outputs_to_predictions(raw: np.ndarray, pre: Preprocessor, threshold: float | None = None
                           ) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn raw network outputs into predictions (and class probabilities); two classes are
    decided at *threshold* (see :func:`decide`)."""
    if pre.task == "classification":
        z = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(z)
        proba = e / e.sum(axis=1, keepdims=True)
        return decide(proba, threshold), proba
    return pre.inverse_target(raw.reshape(-1)), None


def evaluate_arrays(net: TrainDeskNet, pre: Preprocessor, x: np.ndarray, y: np.ndarray,
                    source: str = "test", examples=None, threshold: float | None = None
                    ) -> Evaluation:
    """Evaluate *net* on encoded inputs *x* and encoded targets *y*; *examples* are the rows
    as the user knows them (see :attr:`Evaluation.examples`; images default to *x*); two
    classes are decided at *threshold*."""
    raw = predict_raw(net, x)
    pred, proba = outputs_to_predictions(raw, pre, threshold)
    if examples is None and pre.kind == "image":
        examples = x
    return evaluation_from_predictions(pre, y, pred, proba, source, examples, threshold)


def evaluation_from_predictions(pre: Preprocessor, y: np.ndarray, pred: np.ndarray,
                                proba: np.ndarray | None, source: str = "test",
                                examples=None, threshold: float | None = None) -> Evaluation:
    """Metrics for predictions *pred* (class indices, or values in the target's units) and
    probabilities *proba* against encoded targets *y*; *threshold*: the one *pred* was decided
    at (two classes)."""
    if pre.task == "classification":
        k = len(pre.class_names)
        cm = confusion_matrix(y, pred, k)
        used = (DEFAULT_THRESHOLD if threshold is None else float(threshold)) if k == 2 else None
        return Evaluation("classification", source, np.asarray(y), pred, proba,
                          list(pre.class_names), full_classification_metrics(y, pred, proba, k),
                          cm, per_class_report(cm), examples, used, **_described(pre))
    y_true = pre.inverse_target(y)
    return Evaluation("regression", source, y_true, pred, None, [],
                      regression_metrics(y_true, pred), examples=examples,
                      target_mean=float(pre.target_mean), **_described(pre))


def _described(pre: Preprocessor) -> dict:
    """What an :class:`Evaluation` says about its rows: the target's name and their unit."""
    image = pre.kind == "image"
    return {"target": "" if image else str(pre.target), "unit": "images" if image else "rows"}


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
        evaluation = evaluate_arrays(net, pre, x, y, Path(data).name, examples=examples,
                                     threshold=run.threshold)
        # Another file may hold the training rows themselves (it may be the training file).
        if isinstance(examples, pd.DataFrame):
            evaluation.overlap = count_overlap(run, examples)
        evaluation.rows_note = overlap_note(evaluation.n, evaluation.overlap, evaluation.unit,
                                            run.refitted)
        return evaluation
    if split not in ("test", "val"):
        raise DataError(f"Unknown split {split!r}; use test or val.")
    x, y, examples = load_split(run, split, with_examples=True)
    evaluation = evaluate_arrays(net, pre, x, y,
                                 "test split" if split == "test" else "validation split",
                                 examples, threshold=run.threshold)
    if split == "val":
        evaluation.rows_note = split_rows_note(evaluation.source, evaluation.n, evaluation.unit,
                                               run.refitted)
    if split == "test":
        from . import yardstick

        evaluation.yardstick = yardstick.read(run.path)
    return evaluation


def rethreshold(evaluation: Evaluation, threshold: float) -> Evaluation:
    """The same two-class *evaluation* decided at *threshold*: predictions, confusion matrix,
    per-class report and metrics follow it (the probabilities stay)."""
    if evaluation.task != "classification" or len(evaluation.class_names) != 2:
        return evaluation
    pred = with_threshold(evaluation.proba, threshold)
    cm = confusion_matrix(evaluation.y_true, pred, 2)
    return dataclasses.replace(
        evaluation, y_pred=pred, confusion=cm, report=per_class_report(cm),
        metrics=full_classification_metrics(evaluation.y_true, pred, evaluation.proba, 2),
        threshold=float(threshold))


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


def predict_frame(net: TrainDeskNet, pre: Preprocessor, frame: pd.DataFrame,
                  threshold: float | None = None) -> pd.DataFrame:
    """Return *frame* with a ``prediction`` column (and ``probability_<class>`` columns); two
    classes are decided at *threshold*."""
    pred, proba = outputs_to_predictions(predict_raw(net, pre.transform_features(frame)), pre,
                                         threshold)
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
