"""Data health: what will hurt the model, found before training, each with a plain sentence.

:func:`check_health` looks at a dataset and the user's choices and returns :class:`Finding`\\ s:
class imbalance (with class weights offered), missing values, constant columns, duplicate rows,
rows shared by the training and test sets (leakage), identifier columns, categoricals with very
many values, classes too small for a stratified split, images of mixed sizes or colour modes, and
files left out of an import. The GUI lists them; the CLI prints them before training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import TrainDeskError
from ..runs.project import DataConfig
from ..system.jobcontrol import ShouldStop, check_stop
from .dataset import Dataset, DataSummary, resolve, split_rows

#: The largest class this many times the smallest counts as imbalanced.
IMBALANCE_RATIO = 3.0
#: Categorical columns with more distinct values than this are flagged.
HIGH_CARDINALITY = 100


@dataclass(frozen=True)
class Finding:
    """One health check that found something.

    Attributes
    ----------
    key : str
        Which check (``imbalance``, ``missing``, ``constant``, ``duplicates``, ``leakage``,
        ``id_like``, ``high_cardinality``, ``tiny_classes``, ``mixed_sizes``, ``mixed_modes``,
        ``skipped``).
    severity : str
        ``warning`` (likely to hurt) or ``info``.
    count : int
        How many rows, columns, classes or files are affected.
    message : str
        One plain sentence for the user, with what to do.
    action : str
        A fix the app can apply: ``class_weights`` or ``ignore_columns`` (else empty).
    columns : tuple of str
        The columns concerned, for ``ignore_columns``.
    """

    key: str
    severity: str
    count: int
    message: str
    action: str = ""
    columns: tuple[str, ...] = ()


def check_health(dataset: Dataset, config: DataConfig,
                 summary: DataSummary | None = None, *,
                 should_stop: ShouldStop | None = None) -> list[Finding]:
    """Run every check that applies to *dataset* under *config*.

    Raises
    ------
    TrainDeskError
        When the choices cannot be resolved (no target, a column that is gone ...): the data
        could not be checked, which is not the same as nothing found.
    Cancelled
        When *should_stop* returns True between two checks (the row checks hash every row).
    """
    if summary is None:
        summary = resolve(dataset, config)
    findings: list[Finding] = []
    if summary.task == "classification":
        findings += _class_checks(summary, config)
    check_stop(should_stop, _STOPPED)
    if dataset.kind == "image":
        findings += _image_checks(dataset)
    else:
        findings += _column_checks(dataset, summary)
        check_stop(should_stop, _STOPPED)
        findings += _row_checks(dataset, config, summary)
    return findings


_STOPPED = "The health check was stopped."


def health_record(dataset: Dataset, config: DataConfig,
                  summary: DataSummary | None = None) -> dict:
    """Run the checks and return their outcome as JSON, to keep with a run: ``{"outcome":
    "ok" | "findings" | "failed", "findings": [...], "error": why it failed}``. A check that
    fails is an outcome too (never raised): it is advisory, and must not read as "ok"."""
    try:
        findings = check_health(dataset, config, summary)
    except TrainDeskError as exc:
        return {"outcome": "failed", "findings": [], "error": str(exc)}
    return {"outcome": "findings" if findings else "ok", "error": "",
            "findings": [{"key": f.key, "severity": f.severity, "count": f.count,
                          "message": f.message} for f in findings]}


def findings_of(record: dict) -> list[Finding]:
    """The findings of a :func:`health_record` (those that cannot be read are left out)."""
    out = []
    for item in record.get("findings") or []:
        try:
            out.append(Finding(str(item["key"]), str(item["severity"]), int(item["count"]),
                               str(item["message"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _class_checks(summary: DataSummary, config: DataConfig) -> list[Finding]:
    out = []
    counts = summary.class_counts
    if len(counts) >= 2:
        big = max(counts, key=counts.get)
        small = min(counts, key=counts.get)
        ratio = counts[big] / max(counts[small], 1)
        if ratio >= IMBALANCE_RATIO:
            out.append(Finding(
                "imbalance", "warning", len(counts),
                f"The classes are imbalanced: {big!r} has {counts[big]:,} rows, {small!r} only "
                f"{counts[small]:,} ({ratio:.0f}x fewer). The model may ignore the small classes; "
                f"weighting the classes in the loss makes each count equally.",
                action="class_weights"))
    tiny = [k for k, v in counts.items() if v < 3]
    if tiny and config.split.stratify:
        shown = ", ".join(repr(k) for k in tiny[:5])
        out.append(Finding(
            "tiny_classes", "warning", len(tiny),
            f"{len(tiny)} class(es) have fewer than 3 rows ({shown}); a stratified split cannot "
            f"put them in validation or test, so they are only trained on. Add examples or "
            f"merge them into another class."))
    return out


def _column_checks(dataset: Dataset, summary: DataSummary) -> list[Finding]:
    out = []
    frame = dataset.frame
    features = summary.features
    missing = {c: dataset.columns[c].n_missing for c in features if dataset.columns[c].n_missing}
    if missing:
        worst = max(missing, key=missing.get)
        out.append(Finding(
            "missing", "warning" if missing[worst] > 0.2 * len(frame) else "info",
            sum(missing.values()),
            f"{sum(missing.values()):,} cells are missing in {len(missing)} feature column(s) "
            f"(most in {worst!r}: {missing[worst]:,}). Choose per column how to fill them, or "
            f"drop those rows, in the Columns table.",
            columns=tuple(missing)))
    constant = [c for c in features
                if dataset.columns[c].n_unique <= 1 and summary.types[c] != "text"]
    if constant:
        out.append(Finding(
            "constant", "warning", len(constant),
            f"{len(constant)} column(s) hold a single value ({', '.join(map(repr, constant[:5]))})"
            f" and cannot help the model; ignore them.",
            action="ignore_columns", columns=tuple(constant)))
    id_like = [c for c, info in dataset.columns.items()
               if info.id_like and c != summary.target]
    if id_like:
        used = [c for c in id_like if c in features]
        out.append(Finding(
            "id_like", "warning" if used else "info", len(id_like),
            f"{len(id_like)} column(s) look like identifiers - a different value on every row "
            f"({', '.join(map(repr, id_like[:5]))}). They carry no pattern to learn"
            + ("; ignore them." if used else " and are ignored."),
            action="ignore_columns" if used else "", columns=tuple(used)))
    high = [c for c in features if summary.types[c] == "categorical"
            and dataset.columns[c].n_unique > HIGH_CARDINALITY]
    if high:
        out.append(Finding(
            "high_cardinality", "info", len(high),
            f"{len(high)} categorical column(s) have more than {HIGH_CARDINALITY} values "
            f"({', '.join(map(repr, high[:5]))}); they are embedded (a learned vector per "
            f"value) rather than one-hot encoded. Rare values may be learned poorly.",
            columns=tuple(high)))
    return out


def _row_checks(dataset: Dataset, config: DataConfig, summary: DataSummary) -> list[Finding]:
    out = []
    frame = dataset.frame
    cols = summary.features + [summary.target]
    hashes = _row_hashes(frame[cols])
    ordered = np.sort(hashes)  # plain sorts release the GIL; np.unique's extra steps do not
    n_dup = int(np.count_nonzero(ordered[1:] == ordered[:-1])) if len(ordered) else 0
    if n_dup:
        out.append(Finding(
            "duplicates", "info" if n_dup < 0.05 * len(frame) else "warning", n_dup,
            f"{n_dup:,} row(s) repeat an earlier row exactly. Repeats weigh some examples more "
            f"than others; remove them from the file if they are not real repeats."))
    try:
        rows = split_rows(dataset, config, summary)
    except TrainDeskError:
        return out
    feature_hashes = _row_hashes(frame[summary.features])
    # Arrays, not Python sets: numpy's sort releases the GIL, so the GUI thread stays live.
    train = np.sort(feature_hashes[rows["train"]])
    test = feature_hashes[rows["test"]]
    at = np.minimum(np.searchsorted(train, test), len(train) - 1)
    shared = int(np.count_nonzero(train[at] == test)) if len(train) else 0
    if shared:
        out.append(Finding(
            "leakage", "warning", shared,
            f"{shared:,} test row(s) also appear in the training set with the same features. "
            f"The test score will look better than the model really is; remove the duplicate "
            f"rows from the file."))
    return out


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row (equal rows, equal hashes)."""
    try:
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError:  # unhashable cells (mixed objects): compare their text instead
        return pd.util.hash_pandas_object(frame.astype("string"), index=False).to_numpy()


def _image_checks(dataset: Dataset) -> list[Finding]:
    out = []
    frame = dataset.frame
    sizes = frame.groupby(["width", "height"]).size().sort_values(ascending=False)
    if len(sizes) > 1:
        (w, h), n = sizes.index[0], int(sizes.iloc[0])
        out.append(Finding(
            "mixed_sizes", "info", int(len(sizes)),
            f"The images come in {len(sizes)} sizes (most common {w} x {h}, {n:,} images). All "
            f"are resized to the size chosen below; very different shapes get stretched."))
    modes = frame["mode"].astype(str).value_counts()
    if len(modes) > 1:
        shown = ", ".join(f"{m} ({c:,})" for m, c in modes.items())
        out.append(Finding(
            "mixed_modes", "info", int(len(modes)),
            f"The images mix colour modes: {shown}. All are converted to the colour mode chosen "
            f"below."))
    if dataset.skipped:
        out.append(Finding(
            "skipped", "warning", len(dataset.skipped),
            f"{len(dataset.skipped):,} file(s) were left out (for example "
            f"{dataset.skipped[0].path}: {dataset.skipped[0].reason}). See the list of skipped "
            f"files."))
    return out
