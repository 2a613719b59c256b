"""Model quality: each default preset, with default settings, against scikit-learn.

For every built-in sample (and a generated text dataset) the app's headless path trains the
preset it proposes with the settings it suggests - no tuning - and the test-split score is
compared with scikit-learn on exactly the same split and encoded features:

* classification tables: ``LogisticRegression`` and ``MLPClassifier`` (standardised inputs);
  target: the app reaches the better of the two (within 1 point of accuracy: a test split of
  30-60 rows moves 2-3 points per row);
* the 8 x 8 digits images: at least 97% accuracy;
* regression (diabetes): R2 of ``LinearRegression`` and ``MLPRegressor``, same rule in R2;
* text (generated reviews): well above the majority class, and next to a bag-of-words
  ``LogisticRegression``.

Every score is the mean over the splits of ``--seeds`` seeds (default 10): test splits of 24-90
rows move a single score by several points per row.

Usage::

    .venv/bin/python bench/bench_models.py [--only NAME] [--all-presets]

``--all-presets`` also trains every other preset of the data's kind (for information).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ml.data.dataset import load_dataset, resolve  # noqa: E402
from ml.jobs.training import TrainingJob, apply_suggestions  # noqa: E402
from ml.runs.project import Project  # noqa: E402

#: Accuracy (or R2) the app may fall short of the best scikit-learn model by.
TOLERANCE = 0.01
DIGITS_TARGET = 0.97


def write_reviews(path: Path, n: int = 3000, seed: int = 0) -> Path:
    """A review-like text dataset: sentiment carried by a few words among many neutral ones."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    good = ["great", "excellent", "love", "perfect", "wonderful", "happy", "recommend", "best"]
    bad = ["terrible", "awful", "hate", "broken", "worst", "refund", "disappointed", "poor"]
    neutral = [f"word{i}" for i in range(400)] + ["the", "a", "it", "was", "and", "product",
                                                  "delivery", "box", "price", "color"]
    rows = []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = list(rng.choice(neutral, size=rng.integers(6, 30)))
        cues = rng.choice(good if positive else bad, size=rng.integers(1, 3))
        noise = rng.choice(bad if positive else good, size=rng.integers(0, 2))
        words += list(cues) + list(noise)
        rng.shuffle(words)
        rows.append((" ".join(words), "positive" if positive else "negative"))
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(path, index=False)
    return path


def run_app(source: str, runs: Path, preset: str | None = None, seed: int = 0
            ) -> tuple[dict, object, float]:
    """Train with the app's defaults (or *preset*) on the split of *seed*; return test metrics,
    the prepared data and the seconds taken."""
    project = Project(name="bench")
    project.data.source = source
    project.data.split.seed = seed
    dataset = load_dataset(source)
    project.data.target = dataset.default_target
    summary = resolve(dataset, project.data)
    apply_suggestions(project, dataset, summary)
    project.training.seed = seed
    if preset is not None:
        project.model.preset = preset
    start = time.perf_counter()
    result = TrainingJob(project, dataset=dataset, runs_dir=runs).run()
    return result.metrics["test"], result.prepared, time.perf_counter() - start


def sklearn_scores(prepared) -> dict[str, float]:
    """scikit-learn on the app's split and encoded features."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train = prepared.x["train"].reshape(len(prepared.x["train"]), -1).astype(np.float64)
    x_test = prepared.x["test"].reshape(len(prepared.x["test"]), -1).astype(np.float64)
    y_train, y_test = prepared.y["train"], prepared.y["test"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: the scores are what counts
        if prepared.task == "classification":
            models = {"logistic regression": LogisticRegression(max_iter=3000),
                      "MLPClassifier": MLPClassifier(max_iter=1000, random_state=0)}
            score = accuracy_score
        else:
            models = {"linear regression": LinearRegression(),
                      "MLPRegressor": MLPRegressor(max_iter=2000, random_state=0)}
            score = r2_score
        out = {}
        for name, model in models.items():
            pipe = make_pipeline(StandardScaler(), model).fit(x_train, y_train)
            out[name] = float(score(y_test, pipe.predict(x_test)))
    return out


def text_reference(source: str, prepared) -> dict[str, float]:
    """Majority class and bag-of-words logistic regression on the app's split."""
    import pandas as pd
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(source)
    rows = prepared.rows
    text, label = frame.columns[0], frame.columns[1]
    train, test = frame.iloc[rows["train"]], frame.iloc[rows["test"]]
    vectorizer = CountVectorizer().fit(train[text])
    model = LogisticRegression(max_iter=2000).fit(vectorizer.transform(train[text]), train[label])
    majority = float((test[label] == train[label].mode()[0]).mean())
    return {"majority class": majority,
            "bag-of-words logistic regression": float(
                (model.predict(vectorizer.transform(test[text])) == test[label]).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one case: iris, wine, breast_cancer, digits, diabetes, "
                                       "text")
    parser.add_argument("--seeds", type=int, default=10,
                        help="splits (seeds) each score is averaged over (default 10)")
    parser.add_argument("--all-presets", action="store_true",
                        help="also train every other preset of the data's kind")
    args = parser.parse_args(argv)
    from ml.models.presets import PRESET_INFO

    ok = True
    with tempfile.TemporaryDirectory(prefix="traindesk-bench-") as tmp:
        tmp_path = Path(tmp)
        cases = [("iris", "sample:iris"), ("wine", "sample:wine"),
                 ("breast_cancer", "sample:breast_cancer"), ("digits", "sample:digits"),
                 ("diabetes", "sample:diabetes"),
                 ("text", str(write_reviews(tmp_path / "reviews.csv")))]
        for name, source in cases:
            if args.only and args.only != name:
                continue
            # Test splits of 24-90 rows move a score by several points per row: every score is
            # the mean over the splits of several seeds, the same splits for both sides.
            runs = [run_app(source, tmp_path / "runs", seed=seed) for seed in range(args.seeds)]
            prepared = runs[0][1]
            key = "accuracy" if prepared.task == "classification" else "r2"
            app = float(np.mean([m[key] for m, _, _ in runs]))
            seconds = float(np.mean([t for _, _, t in runs]))
            per_seed = [text_reference(source, p) if name == "text" else sklearn_scores(p)
                        for _, p, _ in runs]
            refs = {ref: float(np.mean([r[ref] for r in per_seed])) for ref in per_seed[0]}
            if name == "text":
                passed = app >= refs["majority class"] + 0.15
                rule = "well above the majority class (+15 points)"
            elif name == "digits":
                passed = app >= DIGITS_TARGET
                rule = f">= {DIGITS_TARGET:.0%}"
            else:
                passed = app >= max(refs.values()) - TOLERANCE
                rule = f">= best scikit-learn - {TOLERANCE}"
            ok &= passed
            kind = prepared.summary.kind
            print(f"{name} ({kind}, {prepared.task}; {len(prepared.y['test'])} test rows, "
                  f"mean of {args.seeds} splits):")
            print(f"  app, default preset        {key} {app:.3f}  ({seconds:.1f} s a run)")
            for ref, value in refs.items():
                print(f"  {ref:26s} {key} {value:.3f}")
            print(f"  target {rule}: {'PASS' if passed else 'FAIL'}")
            if args.all_presets:
                for other, info in PRESET_INFO.items():
                    if info.kind != kind:
                        continue
                    scores = [run_app(source, tmp_path / "runs", other, seed)[0][key]
                              for seed in range(args.seeds)]
                    print(f"    preset {other:12s} {key} {np.mean(scores):.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
