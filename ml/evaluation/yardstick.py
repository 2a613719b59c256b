"""A classic model fitted beside every table or text run, so that a score is never read alone.

A user with a table would otherwise reach for gradient boosting; one with texts for TF-IDF and
logistic regression. So whenever a table or text network trains, scikit-learn's
``HistGradientBoosting`` (tables) or TF-IDF + logistic regression (texts; ridge regression for
numbers) is fitted *in a child process* on the rows the network learnt from (its training and
validation splits) and scored on the same test rows. The Evaluate page, the report and
``main.py evaluate`` then say both numbers in plain words (:meth:`Yardstick.text`).

The child starts with the run, runs on one thread at a lower priority, so the network keeps the
cores (the slowdown is measured by ``bench/bench_yardstick.py``), and is ended when the run is
stopped. Its result is ``yardstick.json`` in the run folder, owned by this module
(:func:`write`, :func:`read`; version :data:`YARDSTICK_VERSION`).

The child is ``python -m ml.evaluation.yardstick WORK`` (frozen: ``main.py yardstick-child WORK``);
this module imports numpy only at the top, so the child never loads torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: The hidden command of ``main.py`` that runs :func:`main` (for the frozen bundle).
COMMAND = "yardstick-child"
#: The run folder's file, and its format's version.
FILE = "yardstick.json"
YARDSTICK_VERSION = 1
#: Within this much of each other (accuracy or R2), the two models are called level.
LEVEL = 0.005
#: gradient boosting takes categories as codes below this many; more are read as numbers.
MAX_CATEGORIES = 250
#: How often a waiting parent looks at the stop flag (seconds).
POLL_S = 0.1
#: Set to 1 to fit no classic model beside any run of this process and its children (a cluster
#: that counts every core a job uses; the test suite, whose thousand tiny runs would each wait).
OFF_VARIABLE = "TRAINDESK_NO_YARDSTICK"

_NAMES = {"table": "gradient-boosting model", "text": "TF-IDF + logistic-regression model"}
_WHAT = {"table": "scikit-learn's HistGradientBoosting with its defaults",
         "text": "scikit-learn's TfidfVectorizer on words and word pairs, then "
                 "LogisticRegression"}
_TRY = {"table": "more epochs, more ensemble members (the TabM preset, on the Model page), a "
                 "hyperparameter search, or checking the column types on the Data page",
        "text": "the pretrained text encoder on the Model page, more epochs, or a longer text "
                "length on the Data page"}


@dataclass(frozen=True)
class Yardstick:
    """The classic model's score beside the network's, on the same test rows."""

    #: ``table`` (gradient boosting) or ``text`` (TF-IDF + logistic regression).
    kind: str
    #: ``accuracy`` (classification) or ``r2`` (regression); higher is better for both.
    metric: str
    #: The classic model's score on the test rows.
    value: float
    #: The network's score on the same rows.
    model: float
    #: Rows the classic model was fitted on (the network's training and validation rows).
    n_fit: int
    #: Test rows both were scored on.
    n_test: int
    #: How long the classic model took to fit and predict.
    seconds: float

    @property
    def gap(self) -> float:
        """The network's score minus the classic model's (positive: the network is ahead)."""
        return self.model - self.value

    @property
    def name(self) -> str:
        return _NAMES.get(self.kind, "classic model")

    def text(self) -> str:
        """What a user reads: both scores in plain words, and what to try when the classic model
        wins."""
        what = "accuracy" if self.metric == "accuracy" else "R²"
        head = (f"A {self.name} ({_WHAT.get(self.kind, 'scikit-learn')}, fitted on the same "
                f"{self.n_fit:,} rows in {self.seconds:.1f} s) gets {what} {self.value:.3f} on "
                f"the same {self.n_test:,} test rows; yours gets {self.model:.3f}.")
        if abs(self.gap) < LEVEL:
            return head + " The two are level."
        if self.gap > 0:
            return head + f" Yours is ahead by {self.gap:.3f}."
        return (head + f" The {self.name} is ahead by {-self.gap:.3f}: try "
                f"{_TRY.get(self.kind, 'more epochs')}.")

    def to_dict(self) -> dict:
        return {"version": YARDSTICK_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, doc: dict) -> Yardstick:
        return cls(kind=str(doc["kind"]), metric=str(doc["metric"]), value=float(doc["value"]),
                   model=float(doc["model"]), n_fit=int(doc["n_fit"]),
                   n_test=int(doc["n_test"]), seconds=float(doc["seconds"]))


def write(run_dir: str | Path, yardstick: Yardstick) -> None:
    """Save *yardstick* in the run folder (atomically)."""
    from ..system.fileio import atomic_write_json

    atomic_write_json(Path(run_dir) / FILE, yardstick.to_dict())


def read(run_dir: str | Path) -> Yardstick | None:
    """The run's yardstick; None when it has none (switched off, stopped, an image model, a run
    from before yardsticks) or its file is unreadable or from a newer TrainDesk."""
    try:
        doc = json.loads((Path(run_dir) / FILE).read_text(encoding="utf-8"))
        if int(doc.get("version", 0)) > YARDSTICK_VERSION:
            return None
        return Yardstick.from_dict(doc)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def beside(evaluation) -> Yardstick | None:
    """The yardstick of an :class:`~ml.evaluation.evaluate.Evaluation`, with the network's
    score as this evaluation has it (a two-class threshold may have moved it); None when it has
    none or was scored on other rows."""
    found = getattr(evaluation, "yardstick", None)
    if found is None or found.n_test != evaluation.n:
        return None
    score = evaluation.metrics.get(found.metric)
    return found if score is None else dataclasses.replace(found, model=float(score))


# -- the parent: hand the rows over, start, wait or stop -----------------------------------------
def kind_of(preprocessor) -> str | None:
    """``table`` or ``text`` for data a classic model can take; None for images."""
    if preprocessor.kind == "text":
        return "text"
    if preprocessor.kind == "tabular" and not preprocessor.image:
        return "table"
    return None


class Background:
    """A classic model being fitted in a child process while the network trains.

    Use :meth:`start`; then :meth:`finish` once the network is evaluated, or :meth:`close`
    (always, e.g. in a ``finally``) to end the child and remove its folder.
    """

    def __init__(self, kind: str, task: str, work: Path, process: subprocess.Popen,
                 y_test: np.ndarray, n_fit: int):
        self.kind, self.task, self.work, self.process = kind, task, work, process
        self.y_test, self.n_fit = y_test, n_fit

    @classmethod
    def start(cls, frame, prepared, seed: int = 0) -> Background | None:
        """Hand the training + validation rows and the test rows of *prepared* (from the
        dataset's *frame*) to a child and start it; None when the data is not a table or text,
        has no test rows, :data:`OFF_VARIABLE` is set, or the child cannot start (the run goes
        on without a yardstick)."""
        pre = prepared.preprocessor
        kind = kind_of(pre)
        rows = prepared.rows
        if os.environ.get(OFF_VARIABLE, "") not in ("", "0"):
            return None
        if kind is None or frame is None or not len(rows.get("test", ())):
            return None
        fit_rows = np.concatenate([rows["train"], rows["val"]])
        y_fit = np.concatenate([prepared.y["train"], prepared.y["val"]])
        y_test = prepared.y["test"]
        if prepared.task == "regression":  # in the target's own units, like the R2 it is given
            y_fit, y_test = pre.inverse_target(y_fit), pre.inverse_target(y_test)
        work = Path(tempfile.mkdtemp(prefix="traindesk-yardstick-"))
        try:
            _hand_over(work, kind, prepared.task, pre, frame, fit_rows, rows["test"], y_fit,
                       seed)
            from ..system.child import start_child

            # One thread, lower priority: the network's training keeps the cores.
            process = start_child(__name__, COMMAND, work, env={
                "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "TRAINDESK_YARDSTICK_NICE": "10"})
        except Exception:  # noqa: BLE001 - a yardstick that cannot start never fails the run
            shutil.rmtree(work, ignore_errors=True)
            return None
        return cls(kind, prepared.task, work, process, np.asarray(y_test), len(fit_rows))

    def finish(self, model_score: float, should_stop=None,
               say=lambda message: None) -> Yardstick | None:
        """Wait for the child (saying so when it is still fitting) and score its predictions;
        None when stopped or when the child failed (a classic model that cannot be fitted is no
        reason to fail the run)."""
        if self.process.poll() is None:
            say(f"Waiting for the {_NAMES[self.kind]} this run is compared with ...")
        while self.process.poll() is None:
            if should_stop is not None and should_stop():
                self.close()
                return None
            time.sleep(POLL_S)
        try:
            result = json.loads((self.work / "result.json").read_text(encoding="utf-8"))
            predicted = np.load(self.work / "predicted.npy", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if not result.get("ok") or len(predicted) != len(self.y_test):
            return None
        return Yardstick(kind=self.kind, metric="accuracy" if self.task == "classification"
                         else "r2", value=_score(self.task, self.y_test, predicted),
                         model=float(model_score), n_fit=self.n_fit, n_test=len(self.y_test),
                         seconds=float(result.get("seconds", 0.0)))

    def close(self) -> None:
        """End the child if it still runs and remove its folder."""
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            pass
        shutil.rmtree(self.work, ignore_errors=True)


def _score(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    if task == "classification":
        return float(np.mean(predicted.astype(np.int64) == y.astype(np.int64)))
    y, predicted = y.astype(np.float64), predicted.astype(np.float64)
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum((y - predicted) ** 2))
    return 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)


def _hand_over(work: Path, kind: str, task: str, pre, frame, fit_rows, test_rows, y_fit,
               seed: int) -> None:
    """Write the child's inputs into *work*: ``meta.json``, ``y_fit.npy`` and either the table
    (``x_fit.npy``, ``x_test.npy``: numbers with NaN where missing, categories as codes) or the
    texts (``texts.json``)."""
    from ..system.fileio import atomic_write_json

    meta = {"kind": kind, "task": task, "seed": int(seed)}
    np.save(work / "y_fit.npy", np.asarray(y_fit))
    if kind == "text":
        from ..data.preprocessing import _join_text

        texts = _join_text(frame, pre.text_columns)
        atomic_write_json(work / "texts.json", {
            "fit": texts.iloc[fit_rows].tolist(), "test": texts.iloc[test_rows].tolist()})
    else:
        x, categorical = table_matrix(pre, frame)
        np.save(work / "x_fit.npy", x[fit_rows])
        np.save(work / "x_test.npy", x[test_rows])
        meta["categorical"] = categorical
    atomic_write_json(work / "meta.json", meta)


def table_matrix(pre, frame) -> tuple[np.ndarray, list[bool]]:
    """The raw feature columns as gradient boosting takes them: one float column per input
    column, NaN where missing (it learns where missing cells go), categories as their training
    code (NaN when unknown), dates as days since 1970; and which columns are categories."""
    import pandas as pd

    from ..data.preprocessing import _date_parts, _labels
    from ..data.tabular import to_boolean, to_numeric

    columns, categorical = [], []
    for enc in pre.columns:
        col = frame[enc.name]
        if enc.type == "numeric":
            values = to_numeric(col).to_numpy(np.float64, na_value=np.nan)
        elif enc.type == "boolean":
            values = to_boolean(col).to_numpy(np.float64, na_value=np.nan)
        elif enc.type == "date":
            values = _date_parts(col, enc.date_format or None)[:, 0]
        else:
            index = {cat: float(i) for i, cat in enumerate(enc.categories)}
            labels = pd.Series(_labels(col, keep_missing=True), dtype=object)
            values = labels.map(index).to_numpy(np.float64, na_value=np.nan)
        columns.append(np.asarray(values, np.float64))
        categorical.append(enc.type == "categorical" and len(enc.categories) <= MAX_CATEGORIES)
    x = np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))
    return x, categorical


# -- the child ----------------------------------------------------------------------------------
def _fit_and_predict(work: Path) -> np.ndarray:
    import warnings

    meta = json.loads((work / "meta.json").read_text(encoding="utf-8"))
    y = np.load(work / "y_fit.npy", allow_pickle=False)
    classify = meta["task"] == "classification"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes are not the user's business here
        if meta["kind"] == "text":
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression, Ridge

            texts = json.loads((work / "texts.json").read_text(encoding="utf-8"))
            vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
            try:
                x_fit = vectorizer.fit_transform(texts["fit"])
            except ValueError:  # too few texts for min_df=2: every word counts
                vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
                x_fit = vectorizer.fit_transform(texts["fit"])
            model = (LogisticRegression(max_iter=1000) if classify else Ridge())
            model.fit(x_fit, y)
            return model.predict(vectorizer.transform(texts["test"]))
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        x_fit = np.load(work / "x_fit.npy", allow_pickle=False)
        x_test = np.load(work / "x_test.npy", allow_pickle=False)
        mask = np.asarray(meta.get("categorical") or [False] * x_fit.shape[1], bool)
        model_type = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        model = model_type(categorical_features=mask if mask.any() else None,
                           random_state=int(meta.get("seed", 0)))
        model.fit(x_fit, y)
        return model.predict(x_test)


def main(argv: list[str]) -> int:
    """The child: fit on ``WORK``'s rows, write ``predicted.npy`` and ``result.json``."""
    from ..system.fileio import atomic_write_json

    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(json.dumps({"ok": False, "error": "usage: yardstick-child WORK_FOLDER"}))
        return 2
    work = Path(argv[0])
    nice = int(os.environ.get("TRAINDESK_YARDSTICK_NICE", "0") or 0)
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    started = time.perf_counter()
    try:
        predicted = _fit_and_predict(work)
    except Exception as exc:  # noqa: BLE001 - scikit-learn raises many kinds; the run goes on
        result = {"ok": False, "error": str(exc)}
    else:
        np.save(work / "predicted.npy", np.asarray(predicted))
        result = {"ok": True, "seconds": round(time.perf_counter() - started, 3)}
    atomic_write_json(work / "result.json", result)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
