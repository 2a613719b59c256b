"""A loaded dataset, the user's choices resolved against it, and the arrays for training.

The flow is the same for the GUI and the CLI::

    dataset = load_dataset("sample:iris")        # read + describe columns (or index images)
    summary = resolve(dataset, project.data)     # target, task, roles; DataError if unusable
    prepared = prepare(dataset, project.data)    # split + fit preprocessing on train + encode

Three kinds of data arrive here: tables (CSV, Excel, Parquet, JSON lines), tables with a column
of free text (a text model reads it), and images (a folder of class folders, a zip of one, a CSV
of file paths, MNIST/Fashion-MNIST IDX files or CIFAR-10's binary batches).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..runs.project import DataConfig
from ..system.jobcontrol import check_stop
from .naturalsort import natural_key
from .preprocessing import Preprocessor, class_codes
from .samples import SAMPLE_PREFIX, SampleInfo, get_sample, load_sample_frame
from .split import fold_parts, split_indices
from .streaming import ImageFiles, should_stream
from .tabular import (
    ColumnInfo,
    ReadOptions,
    TableInfo,
    describe_column,
    describe_columns,
    detect_task,
    read_table,
    to_numeric,
    too_deep,
)

#: A classification target with more classes than this is almost surely an identifier.
MAX_CLASSES = 1000

Progress = Callable[[float, str], None]


@dataclass
class Dataset:
    """Data read from a sample, a file or a folder, with what was inferred about it.

    Attributes
    ----------
    name, source : str
    frame : DataFrame
        Tables: the table. Images: one row per image (``path`` or ``index``, ``label``,
        ``split``, ``width``, ``height``, ``mode``).
    columns : dict of ColumnInfo
    kind : str
        ``tabular`` (which includes text columns) or ``image``.
    table_info : TableInfo or None
        How a table file was read (format, delimiter, encoding, decimal mark, sheets).
    images : ImageIndex or None
        Image files found (folders, zips, CSVs of paths).
    arrays : ArrayImages or None
        Images held in memory (IDX, CIFAR-10 binary).
    skipped : list of SkippedFile
        Files left out of the import, each with the reason.
    """

    name: str
    source: str
    frame: pd.DataFrame
    columns: dict[str, ColumnInfo]
    sample: SampleInfo | None = None
    kind: str = "tabular"
    table_info: TableInfo | None = None
    images: Any = None
    arrays: Any = None
    skipped: list = field(default_factory=list)
    _decoded: dict = field(default_factory=dict, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)
    #: ``(height, width, mode)`` the images were decoded at on import (the suggested size).
    auto_image: tuple | None = None

    @property
    def default_target(self) -> str:
        """The sample's target, the label of images, else the last column (the usual
        convention)."""
        if self.sample is not None:
            return self.sample.target
        if self.kind == "image":
            return "label"
        return str(self.frame.columns[-1])

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """*compute()* once per dataset: the data never changes after loading, and the GUI
        resolves the same target after every click."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def class_codes(self, target: str, numeric: bool) -> tuple[np.ndarray, list[str]]:
        """:func:`~ml.data.preprocessing.class_codes` of a column, computed once."""
        return self.memo(("codes", target, numeric),
                         lambda: class_codes(self.frame[target], numeric))

    def image_facts(self) -> dict:
        """What an image dataset holds, counted once (column-wise: the Data page asks on the
        GUI thread).

        Returns
        -------
        dict
            ``class_counts`` (class name -> images, classes in natural order: 2 < 10 < "cat"),
            ``size_counts`` (``(width, height)`` -> images, most common first) and
            ``mode_counts`` (Pillow mode -> images, most common first).
        """
        def count() -> dict:
            frame = self.frame
            classes: dict[str, int] = {}
            for value, n in frame["label"].value_counts(sort=False, dropna=False).items():
                classes[str(value)] = classes.get(str(value), 0) + int(n)
            sizes = frame.groupby(["width", "height"]).size().sort_values(ascending=False)
            modes = frame["mode"].value_counts()
            return {"class_counts": {k: classes[k] for k in sorted(classes, key=natural_key)},
                    "size_counts": {(int(w), int(h)): int(n) for (w, h), n in sizes.items()},
                    "mode_counts": {str(m): int(n) for m, n in modes.items()}}

        return self.memo(("image facts",), count)

    @property
    def given_splits(self) -> bool:
        """Whether the source itself divides the rows into train / test (/ val)."""
        return "split" in self.frame.columns and bool((self.frame["split"] != "").any())


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

    image_mode: str = ""
    text_columns: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.text_columns:
            return "text"
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


def load_dataset(source: str, options: ReadOptions | dict | None = None, *,
                 progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Dataset:
    """Read a dataset from ``sample:NAME``, a table file, an image folder or zip, or a
    standard file (IDX, CIFAR-10 binary).

    Parameters
    ----------
    options : ReadOptions or dict, optional
        How to read a table (delimiter, encoding, sheet, ...); detected when empty.
    progress : callable, optional
        ``progress(fraction, message)`` now and then.
    should_stop : callable, optional
        Returning True cancels the import with ``Cancelled("Import cancelled.")``.

    Raises
    ------
    DataError
        If the source cannot be read; the message says what to do.
    """
    say = progress or (lambda fraction, message: None)
    if not source:
        raise DataError("No data chosen. Pick a sample dataset or open a file or folder.")
    if source.startswith(SAMPLE_PREFIX):
        info = get_sample(source)
        frame = load_sample_frame(info.name)
        return Dataset(info.title, info.source, frame, describe_columns(frame), info)
    from .images import index_images, looks_like_path_table
    from .stdfiles import detect_standard, load_standard

    path = Path(source)
    if not path.exists():
        raise DataError(f"File not found: {path}. Check the path or choose another file.")
    standard = detect_standard(path)
    if standard is not None:
        say(0.1, f"Reading {path.name} ...")
        arrays = load_standard(path)  # explains the refusal of pickled CIFAR itself
        return _array_dataset(arrays, str(source))
    if path.is_dir() or path.suffix.lower() == ".zip":
        index = index_images(path, cache_dir=_cache_dir(), should_stop=should_stop,
                             progress=_fraction_progress(say, "Reading images"), decode=True)
        return _image_dataset(index, path.name, str(source))
    if isinstance(options, dict):
        options = ReadOptions.from_dict(options)
    say(0.05, f"Reading {path.name} ...")
    frame, info = read_table(path, options=options, with_info=True, should_stop=should_stop,
                             progress=lambda f: say(0.05 + 0.7 * f, f"Reading {path.name} ..."))
    try:
        path_column = looks_like_path_table(frame, path.parent)
    except RecursionError:  # a cell holding a list nested near Python's limit, turned into text
        raise too_deep(path.name) from None
    if path_column is not None:
        index = index_images(path, cache_dir=_cache_dir(), path_column=path_column,
                             should_stop=should_stop,
                             progress=_fraction_progress(say, "Reading images"), decode=True)
        return _image_dataset(index, path.name, str(source))
    say(0.8, "Describing columns ...")
    _check_stop(should_stop)
    try:
        columns = describe_columns(frame)
    except RecursionError:
        raise too_deep(path.name) from None
    dataset = Dataset(path.name, str(source), frame, columns, table_info=info)
    say(1.0, "Done")
    return dataset


def _check_stop(should_stop) -> None:
    check_stop(should_stop, "Import cancelled.")


def _fraction_progress(say: Progress, message: str):
    def report(done: int, total: int) -> None:
        say(done / max(total, 1), f"{message}: {done:,} of {total:,}")
    return report


def _cache_dir() -> Path:
    from ..system.resources import traindesk_home

    return traindesk_home() / "cache" / "imports"


def _image_dataset(index, name: str, source: str) -> Dataset:
    frame = index.frame.reset_index(drop=True)
    columns = {"label": describe_column(frame["label"])}
    dataset = Dataset(name, source, frame, columns, kind="image", images=index,
                      skipped=list(index.skipped))
    if index.decoded is not None:
        # Decoded while checking the files: the suggested size is the one they were decoded
        # at, and training at it needs no second pass.
        (h, w, mode), nchw = index.decoded
        dataset.auto_image = (h, w, mode)
        dataset._decoded[(h, w, mode)] = (nchw, np.ones(len(nchw), dtype=bool))
        index.decoded = None  # one copy of the pixels is enough
    return dataset


def _array_dataset(arrays, source: str) -> Dataset:
    n, h, w, c = arrays.images.shape
    frame = pd.DataFrame({
        "index": np.arange(n),
        "label": pd.Series(np.asarray(arrays.class_names, dtype=object)[arrays.labels],
                           dtype=object),
        "split": pd.Series(arrays.split, dtype=object),
        "width": w, "height": h, "mode": "L" if c == 1 else "RGB"})
    columns = {"label": describe_column(frame["label"])}
    return Dataset(arrays.name, source, frame, columns, kind="image", arrays=arrays)


def resolve(dataset: Dataset, config: DataConfig) -> DataSummary:
    """Apply the user's choices (*config*) to *dataset* and check that it can train a model.

    Raises
    ------
    DataError
        With a message saying what to change: an unknown target, a target with one class, text
        where numbers are needed, no features left, ...
    """
    config.split.validate()
    if dataset.kind == "image":
        return _resolve_images(dataset, config)
    frame = dataset.frame
    target = _target_column(dataset, config)
    types = {c: config.column_types.get(c, info.type) for c, info in dataset.columns.items()}
    warnings: list[str] = []
    roles, text_columns = _column_roles(dataset, config, target, types, warnings)
    task, usable, class_counts, n_not_numbers = _resolve_target(dataset, config, target, types,
                                                                warnings)
    n_empty = int(len(frame) - usable.sum()) - (n_not_numbers if task == "classification" else 0)
    if n_empty and task == "classification":
        warnings.append(f"{n_empty} rows have no target value and are left out.")

    features = [c for c in dataset.columns if roles[c] == "feature"]
    if not features:
        raise DataError("No feature columns are left. Set at least one column's role to feature.")
    drop = [c for c in features if config.missing.get(c) == "drop"]
    if drop:
        usable, class_counts = _drop_missing_rows(dataset, target, types, drop, task, usable,
                                                  class_counts, warnings)
    n_dropped = int(len(frame) - usable.sum())
    _check_numeric_features(dataset, features, types, usable, warnings)
    n_missing = {c: dataset.columns[c].n_missing for c in features
                 if dataset.columns[c].n_missing and c not in drop and types[c] != "text"}
    if n_missing:
        total = sum(n_missing.values())
        warnings.append(f"{total} missing value(s) in {len(n_missing)} feature column(s) are "
                        f"filled as set per column (default: the training median for numbers, "
                        f"no category for categories).")
    return DataSummary(target=target, task=task, types=types, roles=roles, features=features,
                       image_shape=_sample_image_shape(dataset, features, types),
                       class_counts=class_counts, n_rows=int(usable.sum()), n_dropped=n_dropped,
                       warnings=warnings, text_columns=text_columns)


def _target_column(dataset: Dataset, config: DataConfig) -> str:
    """The column to predict: the one chosen, else the dataset's default (refused if unknown)."""
    columns = list(dataset.columns)
    target = config.target or dataset.default_target
    if not config.target and config.column_roles.get(target) in ("feature", "ignore"):
        raise DataError("Choose the column to predict (the target).")
    if target not in dataset.columns:
        shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise DataError(f"There is no column {target!r} in {dataset.name}. Columns: {shown}.")
    return target


def _column_roles(dataset: Dataset, config: DataConfig, target: str, types: dict[str, str],
                  warnings: list[str]) -> tuple[dict[str, str], list[str]]:
    """Each column's role (chosen, or inferred) and the text columns a text model reads."""
    frame = dataset.frame
    columns = list(dataset.columns)
    roles = {}
    for c in columns:
        if c == target:
            roles[c] = "target"
        elif c in config.column_roles and config.column_roles[c] != "target":
            roles[c] = config.column_roles[c]
        else:
            # Identifiers and empty columns carry no signal; free text is read by a text model
            # (projects from before text models ignored it, and keep doing so).
            info = dataset.columns[c]
            roles[c] = "ignore" if info.id_like or info.n_missing == len(frame) else "feature"
            if types[c] == "text" and config.legacy_v1:
                roles[c] = "ignore"
    _keep_lone_identifiers(dataset, config, roles, warnings)
    for c in columns:
        if dataset.columns[c].n_missing == len(frame) and c != target:
            if roles[c] == "feature":
                raise DataError(f"Column {c!r} is empty in every row, so it cannot be a feature. "
                                f"Set its role to ignore.")
            if c not in config.column_roles:
                warnings.append(f"Column {c!r} is empty in every row and is ignored.")
    text_columns = [c for c in columns if roles[c] == "feature" and types[c] == "text"]
    for c in columns:
        if roles[c] == "ignore" and c not in config.column_roles and dataset.columns[c].id_like:
            warnings.append(f"Column {c!r} looks like an identifier (a different value on every "
                            f"row) and is ignored.")
    if text_columns:
        others = [c for c in columns if roles[c] == "feature" and c not in text_columns]
        if others:
            shown = ", ".join(repr(c) for c in others[:4]) + (" ..." if len(others) > 4 else "")
            read = ", ".join(map(repr, text_columns))
            warnings.append(f"A text model reads only the text in {read};"
                            f" {shown} {'is' if len(others) == 1 else 'are'} not used. Set the "
                            f"text column's role to ignore to use the other columns instead.")
            for c in others:
                roles[c] = "ignore"
    return roles, text_columns


def _keep_lone_identifiers(dataset: Dataset, config: DataConfig, roles: dict[str, str],
                           warnings: list[str]) -> None:
    """Use the proposed-ignore identifiers after all when nothing else is left to learn from:
    in a table of just ``x = 0, 1, 2, ...`` and a target the numbers are the feature."""
    if any(role == "feature" for role in roles.values()):
        return
    n_rows = len(dataset.frame)
    lone = [c for c, info in dataset.columns.items()
            if roles[c] == "ignore" and c not in config.column_roles and info.id_like
            and info.n_missing < n_rows]
    for c in lone:
        roles[c] = "feature"
        warnings.append(f"Column {c!r} looks like an identifier (a different value on every "
                        f"row), but it is the only column to learn from, so it is used. Set "
                        f"its role to ignore if it only numbers the rows.")


def _resolve_target(dataset: Dataset, config: DataConfig, target: str, types: dict[str, str],
                    warnings: list[str]) -> tuple[str, pd.Series, dict[str, int], int]:
    """The task, the rows with a usable target, the class counts and the non-number targets."""
    frame = dataset.frame
    target_info = dataset.columns[target]
    task = config.task or dataset.memo(("task", target),
                                       lambda: detect_task(frame[target], target_info))
    y = frame[target]
    if task == "regression":
        return task, _numeric_target(dataset, target, warnings), {}, 0
    codes, names = dataset.class_codes(target, types[target] == "numeric")
    usable = pd.Series(codes >= 0, index=y.index)
    n_not_numbers = int((y.notna() & ~usable).sum()) if types[target] == "numeric" else 0
    if n_not_numbers:
        warnings.append(f"{n_not_numbers} target value(s) in {target!r} are not numbers; "
                        f"those rows are left out.")
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    class_counts = {k: int(counts[names.index(k)]) for k in sorted(names, key=natural_key)}
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
    return task, usable, class_counts, n_not_numbers


def _numeric_target(dataset: Dataset, target: str, warnings: list[str]) -> pd.Series:
    """The rows whose regression target is a number (refused when it is mostly text)."""
    y = dataset.frame[target]
    numbers = dataset.memo(("numbers", target), lambda: to_numeric(y))
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
    return usable


def _drop_missing_rows(dataset: Dataset, target: str, types: dict[str, str], drop: list[str],
                       task: str, usable: pd.Series, class_counts: dict[str, int],
                       warnings: list[str]) -> tuple[pd.Series, dict[str, int]]:
    """Leave out the rows missing a value in a *drop* column; the usable rows and classes."""
    frame = dataset.frame
    keep = ~_missing_mask(frame, drop, types)
    n_gone = int((usable & ~keep).sum())
    usable = usable & keep
    if n_gone:
        warnings.append(f"{n_gone} row(s) with missing values in {', '.join(map(repr, drop))} "
                        f"are dropped.")
    if task == "classification":
        codes, names = dataset.class_codes(target, types[target] == "numeric")
        kept = codes[keep.to_numpy() & (codes >= 0)]
        counts = np.bincount(kept, minlength=len(names))
        class_counts = {k: int(counts[names.index(k)]) for k in sorted(names, key=natural_key)
                        if counts[names.index(k)]}
        if len(class_counts) < 2:
            raise DataError("Dropping the rows with missing values leaves fewer than two "
                            "classes. Fill the missing values instead of dropping them.")
    if not usable.any():
        raise DataError("Every row has a missing value in a column set to drop such rows. "
                        "Fill the missing values instead.")
    return usable, class_counts


def _check_numeric_features(dataset: Dataset, features: list[str], types: dict[str, str],
                            usable: pd.Series, warnings: list[str]) -> None:
    """Refuse numeric columns that are mostly text; note the values read as missing."""
    frame = dataset.frame
    for c in features:
        if types[c] != "numeric":
            continue
        values = frame[c][usable]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            # Already numbers: only infinities (inf, 1e400) are not usable; they count as missing.
            n_inf = dataset.columns[c].n_invalid
            if n_inf:
                warnings.append(f"{n_inf} value(s) in {c!r} are not numbers (infinite) and are "
                                f"treated as missing.")
            continue
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


def _sample_image_shape(dataset: Dataset, features: list[str],
                        types: dict[str, str]) -> tuple[int, ...] | None:
    """A built-in image sample read as a table (digits): the shape its pixel columns make."""
    sample = dataset.sample
    if sample is not None and sample.kind == "image" and sample.image_shape:
        pixel_cols = [c for c in dataset.columns if c != sample.target]
        if features == pixel_cols and all(types[c] == "numeric" for c in features):
            return tuple(sample.image_shape)
    return None


def _missing_mask(frame: pd.DataFrame, columns: list[str], types: dict[str, str]) -> pd.Series:
    """Rows where any of *columns* is missing (empty, or not a number in a numeric column)."""
    mask = pd.Series(False, index=frame.index)
    for c in columns:
        col = frame[c]
        empty = col.isna()
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            empty |= col.astype("string").str.strip().fillna("") == ""
        if types[c] == "numeric":
            empty |= to_numeric(col).isna()
        mask |= empty
    return mask


def image_settings(dataset: Dataset, config: DataConfig) -> tuple[int, int, str]:
    """The ``(height, width, mode)`` images are decoded to: the user's choice, or a size and
    colour mode suggested by the images themselves."""
    from .images import suggest_size

    frame = dataset.frame
    if dataset.auto_image is not None:
        (auto_side, _, auto_mode) = dataset.auto_image
    else:
        (auto_side, _), auto_mode = suggest_size(frame["width"], frame["height"],
                                                 frame["mode"].unique().tolist())
    size = int(config.image_size) if config.image_size else int(auto_side)
    mode = config.image_mode if config.image_mode != "auto" else auto_mode
    return size, size, mode


def _resolve_images(dataset: Dataset, config: DataConfig) -> DataSummary:
    frame = dataset.frame
    if config.task == "regression":
        raise DataError("Images can be classified, not regressed, in TrainDesk. Choose "
                        "classification.")
    facts = dataset.image_facts()
    class_counts = dict(facts["class_counts"])
    if len(class_counts) < 2:
        only = next(iter(class_counts), "")
        raise DataError(f"The images have only one class ({only!r}); a classifier needs at least "
                        f"two. Add a folder per class.")
    h, w, mode = image_settings(dataset, config)
    warnings = []
    if dataset.skipped:
        warnings.append(f"{len(dataset.skipped)} file(s) were skipped (see the list of skipped "
                        f"files).")
    if len(facts["size_counts"]) > 1:
        warnings.append(f"The images have {len(facts['size_counts'])} different sizes; all are "
                        f"resized to {w} x {h}.")
    modes = set(facts["mode_counts"])
    if len(modes) > 1:
        shown = ", ".join(sorted(modes))
        warnings.append(f"The images mix colour modes ({shown}); all are converted to "
                        f"{'grayscale' if mode == 'L' else 'RGB'}.")
    rare = [k for k, v in class_counts.items() if v < 3]
    if rare:
        warnings.append(f"{len(rare)} class(es) have fewer than 3 images (e.g. {rare[0]!r}); "
                        f"they appear only in training.")
    channels = 1 if mode == "L" else 3
    types = {"label": "categorical", "image": "image"}
    return DataSummary(target="label", task="classification", types=types,
                       roles={"label": "target", "image": "feature"}, features=["image"],
                       image_shape=(channels, h, w), class_counts=class_counts,
                       n_rows=len(frame), n_dropped=0, warnings=warnings, image_mode=mode)


def prepare(dataset: Dataset, config: DataConfig, *, progress: Progress | None = None,
            should_stop: Callable[[], bool] | None = None, backbone=None) -> PreparedData:
    """Split the usable rows and encode them, fitting the preprocessing on the training rows.

    Images are decoded here (in parallel, cached on *dataset* per size and mode) and returned as
    ``uint8`` ``(n, C, H, W)``; text as ``int64`` token ids; tables as ``float32``. A pretrained
    *backbone* (:class:`ml.models.backbones.Backbone`) decides the preprocessing: its image side,
    three channels (grey images are repeated) and normalisation, or its own tokenizer.
    """
    config = for_backbone(config, backbone)
    summary = resolve(dataset, config)
    if summary.kind == "image" and dataset.kind == "image":
        fixed = ((backbone.mean, backbone.std) if backbone is not None
                 and backbone.kind == "image" else None)
        return _prepare_images(dataset, config, summary, progress, should_stop, fixed)
    frame = dataset.frame
    rows = split_rows(dataset, config, summary)
    train_frame = frame.iloc[rows["train"]]
    pre = Preprocessor.fit(train_frame, features=summary.features, types=summary.types,
                           target=summary.target, task=summary.task,
                           image_shape=summary.image_shape, missing=config.missing,
                           fill_values=config.fill_values, encodings=config.encodings,
                           text=config.text, one_hot_only=config.legacy_v1, backbone=backbone)
    if summary.task == "classification":
        # Every class is a model output, even one that landed only outside training.
        pre.class_names = list(summary.class_counts)
    xs, ys = {}, {}
    for name, idx in rows.items():
        _check_stop(should_stop)
        part = frame.iloc[idx]
        xs[name] = pre.transform_features(part)
        ys[name] = pre.transform_target(part)
    return PreparedData(summary=summary, preprocessor=pre, x=xs, y=ys, rows=rows)


def for_backbone(config: DataConfig, backbone) -> DataConfig:
    """*config* with the image side and colour mode a pretrained image backbone reads."""
    if backbone is None or backbone.kind != "image":
        return config
    import dataclasses

    return dataclasses.replace(config, image_size=int(backbone.image_size), image_mode="RGB")


def split_rows(dataset: Dataset, config: DataConfig, summary: DataSummary
               ) -> dict[str, np.ndarray]:
    """Frame positions of the train / val / test rows of a table, exactly as :func:`prepare`
    splits them (rows without a target, or dropped for missing values, are in none)."""
    frame = dataset.frame
    y_raw = frame[summary.target]
    numeric_target = summary.types[summary.target] == "numeric"
    if summary.task == "regression":
        usable = to_numeric(y_raw).notna().to_numpy()
        codes = np.zeros(0, np.int64)
    else:
        codes, names = dataset.class_codes(summary.target, numeric_target)
        usable = codes >= 0
        # Class numbers in the summary's (natural) order, as the stratification has always used.
        order = {name: i for i, name in enumerate(summary.class_counts)}
        codes = np.array([order.get(n, -1) for n in names] + [-1], dtype=np.int64)[codes]
    drop = [c for c in summary.features if config.missing.get(c) == "drop"]
    if drop:
        usable &= ~_missing_mask(frame, drop, summary.types).to_numpy()
    positions = np.flatnonzero(usable)
    strat = None
    if summary.task == "classification" and config.split.stratify:
        strat = codes[positions]
    parts = split_indices(len(positions), config.split.val_fraction, config.split.test_fraction,
                          config.split.seed, strat)
    parts = fold_parts(parts, config.split.folds, config.split.fold, config.split.seed, strat)
    return {k: positions[v] for k, v in parts.items()}


def decoded_images(dataset: Dataset, height: int, width: int, mode: str, *,
                   progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """All images of *dataset* as ``uint8`` ``(n, C, H, W)`` and a mask of those that decoded.

    Decoded once per size and mode and kept on the dataset, so a second run starts at once.
    Files that fail to decode are added to ``dataset.skipped``.
    """
    key = (int(height), int(width), mode)
    if key in dataset._decoded:
        return dataset._decoded[key]
    if dataset.arrays is not None:
        images = _convert_arrays(dataset.arrays.images, height, width, mode)
        ok = np.ones(len(images), dtype=bool)
    else:
        from .images import decode_images

        say = progress or (lambda fraction, message: None)
        paths = dataset.frame["path"].astype(str).tolist()
        nhwc, ok, skipped = decode_images(
            paths, (height, width), mode, should_stop=should_stop,
            progress=_fraction_progress(say, "Decoding images"))
        _check_stop(should_stop)
        known = {s.path for s in dataset.skipped}
        dataset.skipped.extend(s for s in skipped if s.path not in known)
        images = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    dataset._decoded.clear()  # one size at a time: images are big
    dataset._decoded[key] = (images, ok)
    return images, ok


def _convert_arrays(images: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """In-memory ``(n, H, W, C)`` bytes to ``(n, C', height, width)`` in colour *mode*."""
    from PIL import Image

    n, h, w, c = images.shape
    out_c = 1 if mode == "L" else 3
    if c == 3 and out_c == 1:  # ITU-R 601 luma, as Pillow's convert("L")
        images = (images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
                  ).round().clip(0, 255).astype(np.uint8)[..., None]
    elif c == 1 and out_c == 3:
        images = np.repeat(images, 3, axis=3)
    if (h, w) != (height, width):
        resized = np.empty((n, height, width, images.shape[3]), np.uint8)
        for i in range(n):
            img = Image.fromarray(images[i].squeeze(-1) if out_c == 1 else images[i])
            arr = np.asarray(img.resize((width, height), Image.Resampling.BILINEAR))
            resized[i] = arr.reshape(height, width, -1)
        images = resized
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def _given_or_random_split(split: np.ndarray, strat: np.ndarray | None, config: DataConfig
                           ) -> dict[str, np.ndarray]:
    """Positions of each part: the source's own train/val/test where it has them; the parts it
    lacks are carved from its training rows (stratified like any other split)."""
    given = {name: np.flatnonzero(split == name) for name in ("train", "val", "test")}
    # Rows the source leaves unassigned (a blank split cell) are training rows, not lost rows.
    given["train"] = np.flatnonzero((split == "train") | (split == ""))
    if not any(len(v) for v in given.values()):
        return split_indices(len(split), config.split.val_fraction, config.split.test_fraction,
                             config.split.seed, strat)
    rng = np.random.default_rng(config.split.seed)
    for name, fraction in (("test", config.split.test_fraction),
                           ("val", config.split.val_fraction)):
        if len(given[name]) or not len(given["train"]):
            continue
        pool = given["train"]
        groups = [pool] if strat is None else [pool[strat[pool] == c]
                                               for c in np.unique(strat[pool])]
        carved = []
        for members in groups:
            k = int(round(len(members) * fraction))
            if len(members) - k >= 1 and (strat is None or len(members) >= 3):
                carved.append(rng.permutation(members)[:k])
        taken = np.sort(np.concatenate(carved)) if carved else np.zeros(0, np.int64)
        given[name] = taken
        given["train"] = np.setdiff1d(pool, taken)
    for name in ("train", "val", "test"):
        if not len(given[name]):
            raise DataError(f"There are too few images to make a {name} set. Add images or "
                            f"change the validation and test shares.")
    return {k: v.astype(np.int64) for k, v in given.items()}


def _prepare_images(dataset: Dataset, config: DataConfig, summary: DataSummary,
                    progress: Progress | None, should_stop: Callable[[], bool] | None,
                    normalization: tuple | None = None) -> PreparedData:
    c, h, w = summary.image_shape
    frame = dataset.frame
    streamed = dataset.arrays is None and should_stream(len(frame), (c, h, w),
                                                        config.image_loading)
    if streamed:
        # Checked at import; decoded batch by batch while training (DataLoader workers).
        images = ImageFiles(frame["path"].astype(str).tolist(), (h, w), summary.image_mode)
        ok = np.ones(len(frame), bool)
    else:
        images, ok = decoded_images(dataset, h, w, summary.image_mode, progress=progress,
                                    should_stop=should_stop)
    positions = np.flatnonzero(ok)
    if len(positions) < 2:
        raise DataError("None of the images could be decoded. Check the files (see the list of "
                        "skipped files).")
    class_names = list(summary.class_counts)
    order = {name: i for i, name in enumerate(class_names)}
    labels = frame["label"].astype(str).map(order).to_numpy(np.int64)
    strat = labels[positions] if config.split.stratify else None
    split = (frame["split"].astype(str).to_numpy() if dataset.given_splits
             else np.full(len(frame), "", dtype=object))
    parts = _given_or_random_split(split[positions], strat, config)
    parts = fold_parts(parts, config.split.folds, config.split.fold, config.split.seed, strat)
    rows = {k: positions[v] for k, v in parts.items()}
    image = {"height": h, "width": w, "mode": summary.image_mode, "channels": c}
    if dataset.arrays is None:
        image["path_column"] = "path"
    if streamed:
        # Channel statistics from up to 2,000 training images, not a pass over all of them.
        sample = np.random.default_rng(config.split.seed).permutation(rows["train"])[:2000]
        if normalization is not None:  # given: one image tells the shape
            sample = sample[:1]
        stats_from = images[np.sort(sample)]
        xs = {k: images.take(v) for k, v in rows.items()}
    else:
        stats_from = images[rows["train"]]
        xs = {k: images[v] for k, v in rows.items()}
    pre = Preprocessor.fit_images(frame["label"], stats_from, target="label",
                                  image=image, class_names=class_names,
                                  normalization=normalization)
    ys = {k: labels[v] for k, v in rows.items()}
    return PreparedData(summary=summary, preprocessor=pre, x=xs, y=ys, rows=rows)


def backbone_text_length(dataset: Dataset, summary: DataSummary, backbone) -> int:
    """The word pieces a text backbone would read per text of *dataset* (as :func:`prepare`
    fits it, from a sample of the whole file); 0 for data without text."""
    if not summary.text_columns or backbone is None or backbone.kind != "text":
        return 0
    from .preprocessing import _join_text
    from .text import piece_length

    def compute() -> int:
        from pathlib import Path

        try:
            text = (Path(backbone.folder) / "tokenizer.json").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return 0
        texts = _join_text(dataset.frame, list(summary.text_columns)).tolist()
        return piece_length(text, texts, backbone.max_length)

    return dataset.memo(("piece_length", backbone.key, tuple(summary.text_columns)), compute)


def estimate_model_input(dataset: Dataset, summary: DataSummary, config: DataConfig):
    """The :class:`~ml.models.spec.InputSpec` of a model for *summary*, without fitting.

    Exact for numbers, images and embeddings; one-hot widths count the categories of the whole
    file (training may see fewer); a text model's length and vocabulary are estimates.
    """
    from ..models.spec import InputSpec
    from .preprocessing import EMBED_ABOVE

    if summary.image_shape:
        return InputSpec(tuple(summary.image_shape), kind="image")
    if summary.text_columns:
        from .text import TextSettings

        settings = TextSettings.from_dict(config.text)
        length = settings.max_length or 64
        vocab = min(settings.max_vocab, sum(dataset.columns[c].n_unique * 4
                                            for c in summary.text_columns)) + 2
        return InputSpec((length,), dtype="int64", kind="text", vocab_size=max(vocab, 3))
    width, embeddings = 0, []
    for name in summary.features:
        kind = summary.types[name]
        if kind == "categorical":
            n = max(1, dataset.columns[name].n_unique)
            how = config.encodings.get(name, "auto")
            if how == "embedding" or (how == "auto" and n > EMBED_ABOVE):
                embeddings.append((width, n + 1))
                width += 1
            else:
                width += n
        else:
            width += 3 if kind == "date" else 1
    return InputSpec((width,), embeddings=tuple(embeddings))
