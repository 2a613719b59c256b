"""Turning raw table columns into the float arrays a network eats - fitted on training rows only.

A :class:`Preprocessor` is fitted on the training split and then applied unchanged to every other
split and to new data. Its state is plain JSON (:meth:`Preprocessor.to_dict`), so that it travels
with every run and every export, and raw input can be fed to an exported model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .tabular import to_boolean, to_numeric

PREPROCESSING_VERSION = 1


@dataclass
class ColumnEncoding:
    """How one raw column becomes one or more features."""

    name: str
    type: str  # numeric | boolean | categorical
    fill: float = 0.0  # numeric/boolean: value for missing cells (training median / mode)
    categories: list[str] = field(default_factory=list)  # categorical: one-hot order

    @property
    def width(self) -> int:
        return len(self.categories) if self.type == "categorical" else 1

    def feature_names(self) -> list[str]:
        if self.type == "categorical":
            return [f"{self.name}={c}" for c in self.categories]
        return [self.name]


@dataclass
class Preprocessor:
    """Encoder for features and target, fitted on the training split.

    Attributes
    ----------
    task : str
    target : str
        Name of the target column.
    columns : list of ColumnEncoding
        Feature columns in model-input order.
    class_names : list of str
        Classification: the labels, in the order of the model's outputs.
    target_mean, target_std : float
        Regression: the model is trained on ``(y - mean) / std``; predictions are reported in
        the original units.
    input_shape : list of int
        Shape of one sample: ``[n_features]`` or ``[C, H, W]`` for images.
    feature_mean, feature_std : list of float
        Standardisation applied by the model's first layer (per feature, or per channel for
        images). Fitted on the training split only.
    """

    task: str
    target: str
    columns: list[ColumnEncoding]
    input_shape: list[int]
    kind: str = "tabular"
    class_names: list[str] = field(default_factory=list)
    target_mean: float = 0.0
    target_std: float = 1.0
    feature_mean: list[float] = field(default_factory=list)
    feature_std: list[float] = field(default_factory=list)
    target_numeric: bool = False

    # -- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(cls, train: pd.DataFrame, *, features: list[str], types: dict[str, str], target: str,
            task: str, image_shape: tuple[int, ...] | None = None) -> "Preprocessor":
        """Fit encodings and statistics on the training rows *train*.

        ``types[target]`` decides how class labels are read: a numeric target's labels are
        numbers (``"1"`` and ``"1.0"`` are one class), anything else is read as text.
        """
        encodings = []
        for name in features:
            kind = types[name]
            col = train[name]
            if kind == "numeric":
                values = to_numeric(col)
                fill = float(values.median()) if values.notna().any() else 0.0
                encodings.append(ColumnEncoding(name, "numeric", fill=fill))
            elif kind == "boolean":
                values = to_boolean(col)
                fill = float(values.mode().iloc[0]) if values.notna().any() else 0.0
                encodings.append(ColumnEncoding(name, "boolean", fill=fill))
            elif kind == "categorical":
                labels = _labels(col.dropna())
                cats = sorted(set(labels), key=_natural_key)
                encodings.append(ColumnEncoding(name, "categorical", categories=cats))
            else:
                raise DataError(f"Column {name!r} holds free text, which cannot be a feature yet; "
                                f"set its role to ignore.")
        kind = "image" if image_shape else "tabular"
        n_features = sum(e.width for e in encodings)
        if n_features == 0:
            raise DataError("No feature columns are left. Set at least one column's role to "
                            "feature.")
        shape = list(image_shape) if image_shape else [n_features]
        pre = cls(task=task, target=target, columns=encodings, input_shape=shape, kind=kind,
                  target_numeric=types.get(target) == "numeric")
        if task == "classification":
            labels = target_labels(train[target], pre.target_numeric)
            pre.class_names = sorted({lab for lab in labels if lab is not None}, key=_natural_key)
        else:
            y = to_numeric(train[target]).to_numpy()
            pre.target_mean = float(np.mean(y))
            pre.target_std = float(np.std(y)) or 1.0
        x = pre.transform_features(train)
        if kind == "image":
            axes = (0,) + tuple(range(2, x.ndim))
            mean, std = x.mean(axis=axes), x.std(axis=axes)
        else:
            mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std < 1e-8, 1.0, std)  # constant features pass through unscaled
        pre.feature_mean = [float(v) for v in mean]
        pre.feature_std = [float(v) for v in std]
        return pre

    # -- applying -------------------------------------------------------------------------------
    def transform_features(self, df: pd.DataFrame) -> np.ndarray:
        """Encode the feature columns of *df* to ``float32`` of shape ``(n, *input_shape)``.

        Missing cells get the training fill value; categories not seen in training encode as all
        zeros. The standardisation is not applied here - the model's first layer does it, so that
        exported models take these raw values directly.

        Raises
        ------
        DataError
            If a feature column is missing from *df*.
        """
        missing = [e.name for e in self.columns if e.name not in df.columns]
        if missing:
            raise DataError(f"The data has no column {missing[0]!r}, which the model needs "
                            f"({len(missing)} missing in all).")
        n = len(df)
        blocks = []
        for enc in self.columns:
            col = df[enc.name]
            if enc.type == "numeric":
                values = to_numeric(col).fillna(enc.fill).to_numpy(np.float32)
                blocks.append(values[:, None])
            elif enc.type == "boolean":
                values = to_boolean(col).fillna(enc.fill).to_numpy(np.float32)
                blocks.append(values[:, None])
            else:
                labels = np.asarray(_labels(col, keep_missing=True), dtype=object)
                onehot = np.zeros((n, len(enc.categories)), np.float32)
                for j, cat in enumerate(enc.categories):
                    onehot[:, j] = labels == cat
                blocks.append(onehot)
        x = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), np.float32)
        return np.ascontiguousarray(x.reshape((n, *self.input_shape)), dtype=np.float32)

    def transform_target(self, df: pd.DataFrame) -> np.ndarray:
        """Encode the target: class indices (int64) or standardised values (float32)."""
        if self.target not in df.columns:
            raise DataError(f"The data has no target column {self.target!r}.")
        col = df[self.target]
        if self.task == "classification":
            index = {name: i for i, name in enumerate(self.class_names)}
            labels = target_labels(col, self.target_numeric)
            unknown = [lab for lab in labels if lab not in index]
            if unknown:
                raise DataError(f"The target column {self.target!r} has a class the model does not "
                                f"know: {unknown[0]!r}. Known classes: "
                                f"{', '.join(self.class_names[:10])}.")
            return np.array([index[lab] for lab in labels], dtype=np.int64)
        y = to_numeric(col)
        if y.isna().any():
            bad = col[y.isna()].iloc[0]
            raise DataError(f"The target column {self.target!r} must hold numbers for regression, "
                            f"but has {bad!r}.")
        return ((y.to_numpy(np.float64) - self.target_mean) / self.target_std).astype(np.float32)

    def inverse_target(self, values: np.ndarray) -> np.ndarray:
        """Undo the regression target scaling."""
        return np.asarray(values, np.float64) * self.target_std + self.target_mean

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) if self.task == "classification" else 1

    def feature_names(self) -> list[str]:
        return [name for enc in self.columns for name in enc.feature_names()]

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return a self-describing JSON document of this preprocessing."""
        return {
            "version": PREPROCESSING_VERSION,
            "task": self.task,
            "target": self.target,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "columns": [
                {"name": e.name, "type": e.type, "fill": e.fill, "categories": e.categories}
                if e.type == "categorical" else {"name": e.name, "type": e.type, "fill": e.fill}
                for e in self.columns],
            "feature_names": self.feature_names(),
            "class_names": list(self.class_names),
            "target_type": "numeric" if self.target_numeric else "label",
            "target_scaling": {"mean": self.target_mean, "std": self.target_std},
            "normalization": {
                "mean": self.feature_mean, "std": self.feature_std,
                "per": "channel" if self.kind == "image" else "feature",
                "applied_by": "model"},
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Preprocessor":
        """Rebuild a preprocessor from :meth:`to_dict` output."""
        try:
            if doc.get("version", 0) > PREPROCESSING_VERSION:
                raise DataError("The preprocessing was written by a newer TrainDesk.")
            columns = [ColumnEncoding(c["name"], c["type"], float(c.get("fill", 0.0)),
                                      list(c.get("categories", []))) for c in doc["columns"]]
            return cls(task=doc["task"], target=doc["target"], columns=columns,
                       input_shape=list(doc["input_shape"]), kind=doc.get("kind", "tabular"),
                       class_names=list(doc.get("class_names", [])),
                       target_mean=float(doc["target_scaling"]["mean"]),
                       target_std=float(doc["target_scaling"]["std"]),
                       feature_mean=list(doc["normalization"]["mean"]),
                       feature_std=list(doc["normalization"]["std"]),
                       target_numeric=doc.get("target_type") == "numeric")
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"The preprocessing description is incomplete ({exc}).") from None


def target_labels(series: pd.Series, numeric: bool) -> list[str | None]:
    """Class labels of a target column; ``None`` for a missing (or, if *numeric*, non-number) cell.
    """
    if numeric:
        series = to_numeric(series)
    labels = _labels(series, keep_missing=True)
    return [None if lab is None or lab == "" else lab for lab in labels]


def _labels(series: pd.Series, keep_missing: bool = False) -> list:
    """Class labels as strings; whole-number floats print without ``.0`` (``3.0`` -> ``"3"``)."""
    out = []
    for value in series.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append(None if keep_missing else "")
            continue
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        out.append(str(value).strip())
    return out


def _natural_key(label: str):
    """Sort numbers numerically and before words: 2 < 10 < 'cat'."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)
