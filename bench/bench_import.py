"""Import speed: TrainDesk's data import against the plain library call an engineer would write.

Parts (run all, or one with ``--only``):

* ``table``  - a 1,000,000 x 20 CSV (17 float columns, 2 categorical string columns and an
               integer label, about 150 MB): ``pd.read_csv(path, engine="pyarrow")`` alone
               against the app's path, ``read_table`` + ``describe_columns``. Target: the app
               takes at most 1.5 times as long.
* ``images`` - (to come) indexing an image folder.
* ``gui``    - (to come) how long the GUI stalls while a large file is imported.

Timings are round-robin over the repeats (the two contenders alternate, so both see the same
machine load) and the best of each is reported. Usage::

    .venv/bin/python bench/bench_import.py [--rows N] [--repeat N] [--only table]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ml.data.tabular import describe_columns, read_table  # noqa: E402

#: The app's import may take at most this many times as long as the bare pyarrow read.
TABLE_TARGET = 1.5


def write_table_csv(path: Path, n_rows: int, n_cols: int, seed: int = 0) -> Path:
    """Write the benchmark CSV: floats, two categorical columns and an integer label.

    pyarrow's CSV writer is used because ``DataFrame.to_csv`` takes a minute for this size.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(seed)
    n_float = max(n_cols - 3, 1)
    columns = {f"x{i}": rng.normal(size=n_rows).round(4) for i in range(n_float)}
    columns["colour"] = np.array(["red", "green", "blue", "yellow"])[rng.integers(0, 4, n_rows)]
    columns["city"] = np.array([f"city_{i:02d}" for i in range(40)])[rng.integers(0, 40, n_rows)]
    columns["label"] = rng.integers(0, 5, n_rows)
    pa_csv.write_csv(pa.table(columns), path)
    return path


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_table(n_rows: int = 1_000_000, n_cols: int = 20, repeat: int = 3) -> dict:
    """Time the bare pyarrow read against the app's read + describe on a generated CSV.

    Returns
    -------
    dict
        ``rows``, ``cols``, ``mb`` (file size), ``pyarrow_s``, ``app_s`` (best of *repeat*),
        ``ratio``, ``target`` and ``passed``.
    """
    with tempfile.TemporaryDirectory(prefix="traindesk-bench-") as tmp:
        path = write_table_csv(Path(tmp) / "table.csv", n_rows, n_cols)
        mb = path.stat().st_size / 1e6

        def plain() -> None:
            pd.read_csv(path, engine="pyarrow")

        def app() -> None:
            frame = read_table(path)
            describe_columns(frame)

        plain()  # warm the page cache and the imports for both
        times: dict[str, list[float]] = {"pyarrow": [], "app": []}
        for _ in range(repeat):
            times["pyarrow"].append(_timed(plain))
            times["app"].append(_timed(app))
    best_plain, best_app = min(times["pyarrow"]), min(times["app"])
    ratio = best_app / best_plain
    return {"rows": n_rows, "cols": n_cols, "mb": mb, "pyarrow_s": best_plain,
            "app_s": best_app, "ratio": ratio, "target": TABLE_TARGET,
            "passed": ratio <= TABLE_TARGET}


def print_table(result: dict) -> None:
    print(f"table: {result['rows']:,} x {result['cols']} CSV, {result['mb']:.0f} MB")
    print(f"  pd.read_csv(engine='pyarrow')      {result['pyarrow_s']:.2f} s")
    print(f"  read_table + describe_columns      {result['app_s']:.2f} s")
    print(f"  ratio {result['ratio']:.2f} (target <= {result['target']:.2f}): "
          f"{'PASS' if result['passed'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(float(s)), default=1_000_000,
                        help="rows of the generated table (default 1e6)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats (best is kept)")
    parser.add_argument("--only", choices=("table", "images", "gui"),
                        help="run one part only")
    args = parser.parse_args(argv)
    ok = True
    if args.only in (None, "table"):
        result = bench_table(args.rows, repeat=args.repeat)
        print_table(result)
        ok &= result["passed"]
    if args.only in ("images", "gui"):
        print(f"{args.only}: not written yet")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
