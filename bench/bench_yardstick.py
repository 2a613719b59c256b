"""What the classic yardstick fitted beside a run costs the run (ml.evaluation.yardstick).

The same run is trained with the yardstick off and on, alternately (off, on, off, on, ...), on a
50,000 x 20 table (the size issue 21 times) and on 6,000 tweets: the training loop's seconds
(``fit.seconds``: what the yardstick competes with for the cores) and the whole run's (with the
wait, if any, for the classic model after the last epoch). Target: the training loop at most 5%
slower with it on.

Usage::

    .venv/bin/python bench/bench_yardstick.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

#: The training loop may be at most this much slower with the yardstick on.
TARGET = 1.05


def synthetic_table(path: Path, n: int = 50_000, d: int = 20, seed: int = 0) -> Path:
    """A regression table: a smooth function of some numbers, a category, missing cells."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d - 1))
    group = rng.choice(list("abcdefgh"), n)
    y = (np.sin(x[:, 0]) * 2 + x[:, 1] * x[:, 2] + np.abs(x[:, 3])
         + (group == "c") * 1.5 + rng.normal(0, 0.3, n))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(d - 1)])
    frame["group"] = group
    frame.loc[rng.random(n) < 0.05, "x4"] = np.nan
    frame["y"] = y
    frame.to_csv(path, index=False)
    return path


def tweets(path: Path) -> Path:
    from bench_quality import TEXTS, load_text

    load_text(TEXTS[0]).to_csv(path, index=False)
    return path


def one_run(source: Path, target: str, runs: Path, on: bool,
            epochs: int | None = None) -> dict[str, float]:
    from ml.data.dataset import load_dataset
    from ml.evaluation import yardstick
    from ml.jobs.training import TrainingJob, apply_suggestions
    from ml.runs.project import Project

    project = Project(name="yardstick")
    project.data.source, project.data.target = str(source), target
    dataset = load_dataset(str(source))
    apply_suggestions(project, dataset)
    project.training.yardstick = on
    if epochs:
        project.training.epochs = epochs
    start = time.perf_counter()
    result = TrainingJob(project, dataset=dataset, runs_dir=runs,
                         on_message=lambda message: None).run()
    wall = time.perf_counter() - start
    found = yardstick.read(result.run_dir)
    return {"loop": result.fit.seconds, "wall": wall,
            "classic": found.seconds if found else float("nan"),
            "score": result.evaluation.metrics.get("r2", result.evaluation.metrics.get(
                "accuracy", float("nan"))),
            "classic_score": found.value if found else float("nan")}


def bench(name: str, source: Path, target: str, repeat: int, runs: Path) -> bool:
    results: dict[bool, list[dict]] = {False: [], True: []}
    for i in range(repeat):
        for on in (False, True):
            results[on].append(one_run(source, target, runs / f"{name}-{i}-{on}", on))
    off, on = ({k: float(np.median([r[k] for r in results[flag]])) for k in results[flag][0]}
               for flag in (False, True))
    ratio, wall_ratio = on["loop"] / off["loop"], on["wall"] / off["wall"]
    print(f"{name}: training loop {off['loop']:.1f} s off, {on['loop']:.1f} s on (x{ratio:.3f}); "
          f"whole run {off['wall']:.1f} s / {on['wall']:.1f} s (x{wall_ratio:.3f}); the classic "
          f"model took {on['classic']:.1f} s and scored {on['classic_score']:.3f} against "
          f"{on['score']:.3f}  (median of {repeat})", flush=True)
    return ratio <= TARGET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs each way (median)")
    parser.add_argument("--only", choices=["table", "tweets"], help="one of the two sets")
    args = parser.parse_args(argv)
    import bench_quality  # noqa: F401 - it switches the yardstick off when imported: on again

    os.environ.pop("TRAINDESK_NO_YARDSTICK", None)
    with tempfile.TemporaryDirectory(prefix="traindesk-yardstick-") as tmp:
        root = Path(tmp)
        os.environ["TRAINDESK_HOME"] = str(root / "home")
        ok = True
        if args.only != "tweets":
            ok = bench("table 50,000 x 20", synthetic_table(root / "table.csv"), "y",
                       args.repeat, root / "runs")
        if args.only != "table":
            ok = bench("tweets 6,000", tweets(root / "tweets.csv"), "source", args.repeat,
                       root / "runs") and ok
    print(f"target: the training loop at most x{TARGET:.2f} with the yardstick on: "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
