"""A loaded dataset, the user's choices resolved against it, and the arrays for training.

The flow is the same for the GUI and the CLI::

    dataset = load_dataset("sample:iris")        # read + describe columns
    summary = resolve(dataset, project.data)     # target, task, roles; DataError if unusable
    prepared = prepare(dataset, project.data)    # split + fit preprocessing on train + encode
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..project import DataConfig
from .preprocessing import Preprocessor, _natural_key, target_labels
from .samples import SAMPLE_PREFIX, SampleInfo, get_sample, load_sample_frame
from .split import split_indices
from .tabular import ColumnInfo, describe_columns, detect_task, read_table, to_numeric

#: A classification target with more classes than this is almost surely an identifier.
MAX_CLASSES = 1000


@dataclass
class Dataset:
    """A table read from a sample or a file, with what was inferred about its columns."""

    name: str
    source: str
    frame: pd.DataFrame
    columns: dict[str, ColumnInfo]
    sample: SampleInfo | None = None

    @property
    def default_target(self) -> str:
        """The sample's target, else the last column (the usual convention)."""
        if self.sample is not None:
            return self.sample.target
        return str(self.frame.columns[-1])

    @property
    def n_rows(self) -> int:
        return len(self.frame)


@dataclass
class DataSummary:
    """The user's data choices resolved against a dataset.

    Attributes
    ----------
    target, task : str
    types, roles : dict
        Final type and role of every column.
    features : list of str
        Feature columns in input order.
    image_shape : tuple or None
        ``(C, H, W)`` when the features form an image.
    class_counts : dict
        Classification: rows per class, in class order.
    n_rows, n_dropped : int
        Usable rows, and rows left out because the target is missing.
    warnings : list of str
        Problems that do not stop training but the user should know about.
    """

    target: str
    task: str
    types: dict[str, str]
    roles: dict[str, str]
    features: list[str]
    image_shape: tuple[int, ...] | None
    class_counts: dict[str, int]
    n_rows: int
    n_dropped: int
    warnings: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "image" if self.image_shape else "tabular"


@dataclass
class PreparedData:
    """Encoded arrays for each split, with the fitted preprocessing."""

    summary: DataSummary
    preprocessor: Preprocessor
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]  # positions of each split's rows in the dataset's frame

    @property
    def task(self) -> str:
        return self.summary.task


def load_dataset(source: str) -> Dataset:
    """Read a dataset from ``sample:NAME`` or a CSV path.

    Raises
    ------
    DataError
        If the source cannot be read as a table.
    """
    if not source:
        raise DataError("No data chosen. Pick a sample dataset or open a CSV file.")
    if source.startswith(SAMPLE_PREFIX):
        info = get_sample(source)
        frame = load_sample_frame(info.name)
        return Dataset(info.title, info.source, frame, describe_columns(frame), info)
    frame = read_table(source)
    return Dataset(Path(source).name, str(source), frame, describe_columns(frame))


def resolve(dataset: Dataset, config: DataConfig) -> DataSummary:
    """Apply the user's choices (*config*) to *dataset* and check that it can train a model.

    Raises
    ------
    DataError
        With a message saying what to change: an unknown target, a target with one class, text
        where numbers are needed, no features left, ...
    """
    config.split.validate()
    frame = dataset.frame
    columns = list(dataset.columns)
    target = config.target or dataset.default_target
    if not config.target and config.column_roles.get(target) in ("feature", "ignore"):
        raise DataError("Choose the column to predict (the target).")
    if target not in dataset.columns:
        shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise DataError(f"There is no column {target!r} in {dataset.name}. Columns: {shown}.")

    types = {c: config.column_types.get(c, info.type) for c, info in dataset.columns.items()}
    roles = {}
    for c in columns:
        if c == target:
            roles[c] = "target"
        elif c in config.column_roles and config.column_roles[c] != "target":
            roles[c] = config.column_roles[c]
        else:
            roles[c] = "ignore" if types[c] == "text" else "feature"
    warnings: list[str] = []
    for c in columns:
        if roles[c] == "feature" and types[c] == "text":
            raise DataError(f"Column {c!r} holds free text, which cannot be a feature yet. Set its "
                            f"role to ignore or its type to categorical.")
        if roles[c] == "ignore" and types[c] == "text" and c not in config.column_roles:
            warnings.append(f"Column {c!r} looks like free text or an identifier and is ignored.")

    # -- target and task ------------------------------------------------------------------------
    target_info = dataset.columns[target]
    task = config.task or detect_task(frame[target], target_info)
    y = frame[target]
    if task == "regression":
        numbers = to_numeric(y)
        present = y.notna() & (y.astype("string").str.strip() != "")
        not_numbers = present & numbers.isna()
        if not_numbers.sum() > 0.05 * max(int(present.sum()), 1):
            example = y[not_numbers].iloc[0]
            raise DataError(f"The target {target!r} holds text (for example {example!r}), so it "
                            f"cannot be predicted as a number. Choose classification, or another "
                            f"target column.")
        usable = numbers.notna()
        if not_numbers.any():
            warnings.append(f"{int(not_numbers.sum())} target values in {target!r} are not "
                            f"numbers; those rows are left out.")
        if usable.sum() and numbers[usable].nunique() < 2:
            raise DataError(f"Every value of the target {target!r} is the same, so there is "
                            f"nothing to predict. Choose another target column.")
        class_counts: dict[str, int] = {}
        n_not_numbers = 0
    else:
        labels_all = target_labels(y, types[target] == "numeric")
        usable = pd.Series([lab is not None for lab in labels_all], index=y.index)
        labels = [lab for lab in labels_all if lab is not None]
        n_not_numbers = int((y.notna() & ~usable).sum()) if types[target] == "numeric" else 0
        if n_not_numbers:
            warnings.append(f"{n_not_numbers} target value(s) in {target!r} are not numbers; "
                            f"those rows are left out.")
        counts = pd.Series(labels).value_counts()
        class_counts = {k: int(counts[k]) for k in sorted(counts.index, key=_natural_key)}
        if len(class_counts) < 2:
            only = next(iter(class_counts), "")
            raise DataError(f"The target {target!r} has only one class ({only!r}); a classifier "
                            f"needs at least two. Choose another target column.")
        if len(class_counts) > MAX_CLASSES or (
                len(class_counts) > 0.5 * usable.sum() and len(class_counts) > 20):
            raise DataError(f"The target {target!r} has {len(class_counts)} different values in "
                            f"{int(usable.sum())} rows - it looks like an identifier or a number. "
                            f"Choose regression or another target column.")
        rare = [k for k, v in class_counts.items() if v < 3]
        if rare:
            warnings.append(f"{len(rare)} class(es) have fewer than 3 rows (e.g. {rare[0]!r}); "
                            f"they appear only in training.")
    n_dropped = int(len(frame) - usable.sum())
    n_empty = n_dropped - (n_not_numbers if task == "classification" else 0)
    if n_empty and task == "classification":
        warnings.append(f"{n_empty} rows have no target value and are left out.")

    # -- features -------------------------------------------------------------------------------
    features = [c for c in columns if roles[c] == "feature"]
    if not features:
        raise DataError("No feature columns are left. Set at least one column's role to feature.")
    for c in features:
        if types[c] != "numeric":
            continue
        values = frame[c][usable]
        present = values.notna() & (values.astype("string").str.strip() != "")
        bad = present & to_numeric(values).isna()
        n_bad = int(bad.sum())
        if n_bad > 0.05 * max(int(present.sum()), 1):
            example = values[bad].iloc[0]
            raise DataError(f"Column {c!r} is set to numeric, but {n_bad} of {int(present.sum())} "
                            f"values are not numbers (for example {example!r}). Set its type to "
                            f"categorical, ignore it, or fix the file.")
        if n_bad:
            warnings.append(f"{n_bad} value(s) in {c!r} are not numbers and are treated as "
                            f"missing.")
    n_missing = {c: dataset.columns[c].n_missing for c in features if dataset.columns[c].n_missing}
    if n_missing:
        total = sum(n_missing.values())
        warnings.append(f"{total} missing value(s) in {len(n_missing)} feature column(s) are "
                        f"filled with the training median (numbers) or left empty (categories).")

    image_shape = None
    sample = dataset.sample
    if sample is not None and sample.kind == "image" and sample.image_shape:
        pixel_cols = [c for c in columns if c != sample.target]
        if features == pixel_cols and all(types[c] == "numeric" for c in features):
            image_shape = tuple(sample.image_shape)
    return DataSummary(target=target, task=task, types=types, roles=roles, features=features,
                       image_shape=image_shape, class_counts=class_counts,
                       n_rows=int(usable.sum()), n_dropped=n_dropped, warnings=warnings)


def prepare(dataset: Dataset, config: DataConfig) -> PreparedData:
    """Split the usable rows and encode them, fitting the preprocessing on the training rows."""
    summary = resolve(dataset, config)
    frame = dataset.frame
    y_raw = frame[summary.target]
    numeric_target = summary.types[summary.target] == "numeric"
    if summary.task == "regression":
        usable = to_numeric(y_raw).notna().to_numpy()
        labels = []
    else:
        labels_all = target_labels(y_raw, numeric_target)
        usable = np.array([lab is not None for lab in labels_all], dtype=bool)
        labels = [lab for lab in labels_all if lab is not None]
    positions = np.flatnonzero(usable)
    strat = None
    if summary.task == "classification" and config.split.stratify:
        order = {name: i for i, name in enumerate(summary.class_counts)}
        strat = np.array([order[lab] for lab in labels], dtype=np.int64)
    parts = split_indices(len(positions), config.split.val_fraction, config.split.test_fraction,
                          config.split.seed, strat)
    rows = {k: positions[v] for k, v in parts.items()}
    train_frame = frame.iloc[rows["train"]]
    pre = Preprocessor.fit(train_frame, features=summary.features, types=summary.types,
                           target=summary.target, task=summary.task,
                           image_shape=summary.image_shape)
    if summary.task == "classification":
        # Every class is a model output, even one that landed only outside training.
        pre.class_names = list(summary.class_counts)
    xs, ys = {}, {}
    for name, idx in rows.items():
        part = frame.iloc[idx]
        xs[name] = pre.transform_features(part)
        ys[name] = pre.transform_target(part)
    return PreparedData(summary=summary, preprocessor=pre, x=xs, y=ys, rows=rows)


def estimate_input_shape(dataset: Dataset, summary: DataSummary) -> tuple[int, ...]:
    """The model's input shape for *summary*, without fitting the preprocessing.

    Exact for numeric and boolean features and images; for categorical features it counts the
    categories in the whole file (training may see fewer).
    """
    if summary.image_shape:
        return tuple(summary.image_shape)
    width = 0
    for name in summary.features:
        if summary.types[name] == "categorical":
            width += max(1, dataset.columns[name].n_unique)
        else:
            width += 1
    return (width,)
