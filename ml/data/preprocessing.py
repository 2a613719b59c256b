"""Turning raw table columns into the float arrays a network eats - fitted on training rows only.

A :class:`Preprocessor` is fitted on the training split and then applied unchanged to every other
split and to new data. Its state is plain JSON (:meth:`Preprocessor.to_dict`), so that it travels
with every run and every export, and raw input can be fed to an exported model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .naturalsort import natural_key
from .tabular import to_boolean, to_numeric

#: 3: numeric, yes/no and date columns with missing training cells gain a "was missing" feature
#: (``indicator``); a version-2 document has none and encodes as it did.
PREPROCESSING_VERSION = 3


#: Categorical columns with more categories than this are embedded (when encoding is "auto").
EMBED_ABOVE = 30
_DATE_PARTS = ("days", "month", "weekday")


@dataclass
class ColumnEncoding:
    """How one raw column becomes one or more features.

    Attributes
    ----------
    name, type : str
        Column name; ``numeric``, ``boolean``, ``categorical`` or ``date``.
    fill : float
        Numeric, boolean and date: the value for missing cells (from the training split).
    categories : list of str
        Categorical: the categories seen in training, in output order.
    encoding : str
        Categorical: ``onehot`` (one feature per category) or ``embedding`` (one feature holding
        the category's number, 1-based, 0 for unknown or missing; the model embeds it).
    fill_label : str or None
        Categorical: the category that missing cells get (most frequent / constant), or None for
        "no category" (all zeros / unknown).
    strategy : str
        The missing-value strategy that produced ``fill``/``fill_label``.
    indicator : bool
        Numeric, boolean and date: one more feature, 1 where the cell was missing. Set when the
        training rows have missing cells, so that the model can tell a filled median from a
        measured one (missingness often says something: an unreported income, an unsold house).
    """

    name: str
    type: str
    fill: float = 0.0
    categories: list[str] = field(default_factory=list)
    encoding: str = "onehot"
    fill_label: str | None = None
    strategy: str = "auto"
    date_format: str = ""
    indicator: bool = False

    @property
    def width(self) -> int:
        if self.type == "categorical":
            return len(self.categories) if self.encoding == "onehot" else 1
        return (len(_DATE_PARTS) if self.type == "date" else 1) + int(self.indicator)

    def feature_names(self) -> list[str]:
        if self.type == "categorical":
            if self.encoding == "embedding":
                return [f"{self.name} (category number)"]
            return [f"{self.name}={c}" for c in self.categories]
        names = ([f"{self.name} ({part})" for part in _DATE_PARTS] if self.type == "date"
                 else [self.name])
        return names + [f"{self.name} (missing)"] if self.indicator else names

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "type": self.type, "strategy": self.strategy}
        if self.type == "categorical":
            doc.update(categories=self.categories, encoding=self.encoding,
                       fill_label=self.fill_label)
        else:
            doc.update(fill=self.fill, indicator=self.indicator)
        if self.type == "date":
            doc["date_format"] = self.date_format
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ColumnEncoding:
        return cls(doc["name"], doc["type"], float(doc.get("fill", 0.0)),
                   [str(c) for c in doc.get("categories", [])],
                   str(doc.get("encoding", "onehot")), doc.get("fill_label"),
                   str(doc.get("strategy", "auto")), str(doc.get("date_format", "")),
                   bool(doc.get("indicator", False)))


def date_format(series: pd.Series) -> str:
    """The date format that parses most of *series* (ISO, the common day/month orders, or
    pandas' "mixed"): chosen once, on the training rows, and used for every later row."""
    from .tabular import _DATE_FORMATS, _parse_dates

    if pd.api.types.is_datetime64_any_dtype(series):
        return "native"
    text = series.dropna().astype("string").str.strip()
    text = text[text != ""]
    sample = text.iloc[::max(1, len(text) // 500)][:500]
    if not len(sample):
        return "ISO8601"
    best, best_share = "ISO8601", -1.0
    for fmt in ("ISO8601", *_DATE_FORMATS, "mixed", "mixed-dayfirst"):
        share = float(_parse_dates(sample, fmt).notna().mean())
        if share > best_share:
            best, best_share = fmt, share
        if share >= 0.95:
            break
    return best


def to_dates(series: pd.Series, fmt: str | None = None) -> pd.Series:
    """Parse *series* as dates in UTC without a time zone (NaT where a cell is not a date).

    Time zones and daylight-saving offsets are normalised to UTC, so ``+01:00`` and ``+02:00``
    cells of one column parse together.
    """
    from .tabular import _parse_dates

    if pd.api.types.is_datetime64_any_dtype(series):
        dates = series
    else:
        fmt = fmt or date_format(series)
        if fmt == "native":  # trained on parsed dates; new data arrives as ISO text
            fmt = "ISO8601"
        dates = _parse_dates(series.astype("string").str.strip(), fmt)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates


def _date_parts(series: pd.Series, fmt: str | None = None) -> np.ndarray:
    """Dates as three features: days since 1970, month (1-12), weekday (0 = Monday); NaN if
    missing."""
    dates = to_dates(series, fmt)
    days = (dates - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
    return np.stack([days.to_numpy(np.float64), dates.dt.month.to_numpy(np.float64),
                     dates.dt.day_of_week.to_numpy(np.float64)], axis=1)


@dataclass
class Preprocessor:
    """Encoder for features and target, fitted on the training split.

    Attributes
    ----------
    task : str
    target : str
        Name of the target column.
    columns : list of ColumnEncoding
        Feature columns in model-input order (tables, and images given as pixel columns).
    input_shape : list of int
        Shape of one sample: ``[n_features]``, ``[C, H, W]`` for images, ``[max_length]`` for
        text.
    kind : str
        ``tabular``, ``image`` or ``text``.
    class_names : list of str
        Classification: the labels, in the order of the model's outputs.
    target_mean, target_std : float
        Regression: the model is trained on ``(y - mean) / std``; predictions are reported in
        the original units.
    feature_mean, feature_std : list of float
        Standardisation applied by the model's first layer (per feature, or per channel for
        images). Fitted on the training split only.
    image : dict
        Images read from files: ``path_column``, ``height``, ``width``, ``mode`` (``RGB`` or
        ``L``). Pixels reach the model as floats in [0, 1].
    text_columns : list of str
        Text: the columns whose words the model reads (joined with a space).
    tokenizer : dict
        Text: the fitted :class:`ml.data.text.Tokenizer` as JSON.
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
    image: dict[str, Any] = field(default_factory=dict)
    text_columns: list[str] = field(default_factory=list)
    tokenizer: dict[str, Any] = field(default_factory=dict)

    # -- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(cls, train: pd.DataFrame, *, features: list[str], types: dict[str, str], target: str,
            task: str, image_shape: tuple[int, ...] | None = None,
            missing: dict[str, str] | None = None, fill_values: dict[str, Any] | None = None,
            encodings: dict[str, str] | None = None, text: dict[str, Any] | None = None,
            one_hot_only: bool = False, backbone=None) -> Preprocessor:
        """Fit encodings and statistics on the training rows *train*.

        ``types[target]`` decides how class labels are read: a numeric target's labels are
        numbers (``"1"`` and ``"1.0"`` are one class), anything else is read as text.
        ``missing``, ``fill_values`` and ``encodings`` hold the user's per-column choices
        (see :class:`ml.runs.project.DataConfig`); text features switch to a token model.
        *one_hot_only* keeps projects from before embeddings one-hot encoded. A pretrained text
        *backbone* (:class:`ml.models.backbones.Backbone`) brings its own tokenizer.
        """
        missing, fill_values, encodings = missing or {}, fill_values or {}, encodings or {}
        text_features = [name for name in features if types[name] == "text"]
        if text_features:
            from .text import TextSettings, Tokenizer

            if backbone is not None and backbone.kind == "text":
                doc = _word_pieces(backbone, _join_text(train, text_features))
                length = doc["max_length"]
            else:
                settings = TextSettings.from_dict(text or {})
                tok = Tokenizer.fit(_join_text(train, text_features).tolist(), settings)
                doc, length = tok.to_dict(), tok.max_length
            pre = cls(task=task, target=target, columns=[], input_shape=[length],
                      kind="text", text_columns=list(text_features), tokenizer=doc,
                      target_numeric=types.get(target) == "numeric")
            pre._fit_target(train)
            return pre

        default = "onehot" if one_hot_only else "auto"
        encodings_out = [_fit_column(train[name], name, types[name], missing.get(name, "auto"),
                                     fill_values.get(name), encodings.get(name, default))
                         for name in features]
        kind = "image" if image_shape else "tabular"
        n_features = sum(e.width for e in encodings_out)
        if n_features == 0:
            raise DataError("No feature columns are left. Set at least one column's role to "
                            "feature.")
        shape = list(image_shape) if image_shape else [n_features]
        pre = cls(task=task, target=target, columns=encodings_out, input_shape=shape, kind=kind,
                  target_numeric=types.get(target) == "numeric")
        pre._fit_target(train)
        x = pre.transform_features(train)
        pre.fit_normalization(x)
        return pre

    @classmethod
    def fit_images(cls, train_labels: pd.Series, x_train: np.ndarray, *, target: str,
                   image: dict[str, Any], class_names: list[str],
                   normalization: tuple[Sequence[float], Sequence[float]] | None = None
                   ) -> Preprocessor:
        """Preprocessing for images decoded from files or arrays.

        *x_train* is ``uint8`` of shape ``(n, C, H, W)``; the per-channel statistics are those of
        ``x / 255``, which is what the model sees - unless *normalization* gives them (a
        pretrained backbone's mean and std), which saves a pass over the images.
        """
        pre = cls(task="classification", target=target, columns=[],
                  input_shape=list(x_train.shape[1:]), kind="image", image=dict(image),
                  class_names=list(class_names))
        if normalization is None:
            pre.fit_normalization(x_train)
        else:
            pre.feature_mean = [float(v) for v in normalization[0]]
            pre.feature_std = [float(v) for v in normalization[1]]
        return pre

    def _fit_target(self, train: pd.DataFrame) -> None:
        if self.task == "classification":
            labels = target_labels(train[self.target], self.target_numeric)
            self.class_names = sorted({lab for lab in labels if lab is not None},
                                      key=natural_key)
        else:
            y = to_numeric(train[self.target]).to_numpy()
            self.target_mean = float(np.mean(y))
            self.target_std = float(np.std(y)) or 1.0

    def fit_normalization(self, x: np.ndarray) -> None:
        """Per-feature (tables) or per-channel (images) mean and std of encoded inputs *x*.

        ``uint8`` image bytes are measured as ``x / 255``. Embedded category numbers are left
        unscaled (mean 0, std 1): they are looked up, not multiplied.
        """
        if self.kind == "image":
            axes = (0,) + tuple(range(2, x.ndim))
            # float64 sums in chunks: exact enough and no full float copy of a big image set.
            n_ch = x.shape[1]
            total = np.zeros(n_ch)
            total_sq = np.zeros(n_ch)
            count = 0
            for i in range(0, len(x), 2048):
                chunk = x[i:i + 2048].astype(np.float64)
                if x.dtype == np.uint8:
                    chunk /= 255.0
                total += chunk.sum(axis=axes)
                total_sq += (chunk ** 2).sum(axis=axes)
                count += chunk.size // n_ch
            mean = total / max(count, 1)
            std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean ** 2, 0.0))
        else:
            mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std < 1e-8, 1.0, std)  # constant features pass through unscaled
        for pos, _ in self.embedded_positions():
            mean[pos], std[pos] = 0.0, 1.0
        self.feature_mean = [float(v) for v in mean]
        self.feature_std = [float(v) for v in std]

    def embedded_positions(self) -> list[tuple[int, int]]:
        """``(input position, number of codes incl. 0 for unknown)`` of each embedded column."""
        out, pos = [], 0
        for enc in self.columns:
            if enc.type == "categorical" and enc.encoding == "embedding":
                out.append((pos, len(enc.categories) + 1))
            pos += enc.width
        return out

    # -- applying -------------------------------------------------------------------------------
    def transform_features(self, df: pd.DataFrame) -> np.ndarray:
        """Encode the feature columns of *df* for the model.

        Tables and pixel columns give ``float32`` of shape ``(n, *input_shape)``: missing cells get
        the training fill value; one-hot categories not seen in training encode as all zeros,
        embedded ones as 0. Image files give ``float32`` pixels in [0, 1]; text gives ``int64``
        token ids. The standardisation is not applied here - the model's first layer does it, so
        that exported models take these values directly.

        Raises
        ------
        DataError
            If a column the model needs is missing from *df*, or an image cannot be read.
        """
        if self.kind == "text":
            self._require(df, self.text_columns)
            return self._tokenizer().encode(_join_text(df, self.text_columns).tolist())
        if self.image:
            return self.transform_images(df).astype(np.float32) / np.float32(255.0)
        self._require(df, [e.name for e in self.columns])
        n = len(df)
        blocks = []
        for enc in self.columns:
            blocks.append(_encode_column(df[enc.name], enc, n))
        x = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), np.float32)
        return np.ascontiguousarray(x.reshape((n, *self.input_shape)), dtype=np.float32)

    def transform_images(self, df: pd.DataFrame, **kwargs) -> np.ndarray:
        """Decode the image files named in *df* to ``uint8`` ``(n, C, H, W)``.

        Raises
        ------
        DataError
            Naming the first file that cannot be decoded.
        """
        from .images import decode_images

        column = self.image.get("path_column", "path")
        self._require(df, [column])
        images, ok, skipped = decode_images(
            df[column].astype(str).tolist(), (int(self.image["height"]), int(self.image["width"])),
            self.image.get("mode", "RGB"), **kwargs)
        if not ok.all():
            first = skipped[0] if skipped else None
            detail = f"{first.path}: {first.reason}" if first else "unknown file"
            raise DataError(f"{int((~ok).sum())} image(s) could not be read ({detail}). Remove or "
                            f"replace them.")
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))

    def _require(self, df: pd.DataFrame, names: list[str]) -> None:
        missing = [name for name in names if name not in df.columns]
        if missing:
            raise DataError(f"The data has no column {missing[0]!r}, which the model needs "
                            f"({len(missing)} missing in all).")

    def _tokenizer(self):
        from .text import load_tokenizer

        cached = getattr(self, "_tok_cache", None)
        if cached is None:
            cached = load_tokenizer(self.tokenizer)
            object.__setattr__(self, "_tok_cache", cached)
        return cached

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

    @property
    def input_dtype(self) -> str:
        """What the model takes: ``int64`` token ids for text, else ``float32``."""
        return "int64" if self.kind == "text" else "float32"

    @property
    def vocab_size(self) -> int:
        if self.kind != "text":
            return 0
        return int(self.tokenizer.get("vocab_size") or len(self.tokenizer.get("vocab", [])))

    def model_input(self):
        """The :class:`~ml.models.spec.InputSpec` a network for this data must take."""
        from ..models.spec import InputSpec

        return InputSpec(shape=tuple(self.input_shape), dtype=self.input_dtype, kind=self.kind,
                         embeddings=tuple(self.embedded_positions()),
                         vocab_size=self.vocab_size)

    def feature_names(self) -> list[str]:
        if self.kind == "text":
            return [f"token {i + 1}" for i in range(self.input_shape[0])]
        return [name for enc in self.columns for name in enc.feature_names()]

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return a self-describing JSON document of this preprocessing."""
        doc = {
            "version": PREPROCESSING_VERSION,
            "task": self.task,
            "target": self.target,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "input_dtype": self.input_dtype,
            "columns": [e.to_dict() for e in self.columns],
            "feature_names": self.feature_names(),
            "class_names": list(self.class_names),
            "target_type": "numeric" if self.target_numeric else "label",
            "target_scaling": {"mean": self.target_mean, "std": self.target_std},
            "normalization": {
                "mean": self.feature_mean, "std": self.feature_std,
                "per": "channel" if self.kind == "image" else "feature",
                "applied_by": "model"},
        }
        if self.image:
            doc["image"] = dict(self.image, scale="pixel / 255", layout="NCHW")
        if self.kind == "text":
            doc["text_columns"] = list(self.text_columns)
            doc["tokenizer"] = self.tokenizer
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Preprocessor:
        """Rebuild a preprocessor from :meth:`to_dict` output."""
        try:
            if doc.get("version", 0) > PREPROCESSING_VERSION:
                raise DataError("The preprocessing was written by a newer TrainDesk.")
            columns = [ColumnEncoding.from_dict(c) for c in doc["columns"]]
            image = {k: v for k, v in (doc.get("image") or {}).items()
                     if k in ("path_column", "height", "width", "mode", "channels")}
            return cls(task=doc["task"], target=doc["target"], columns=columns,
                       input_shape=list(doc["input_shape"]), kind=doc.get("kind", "tabular"),
                       class_names=list(doc.get("class_names", [])),
                       target_mean=float(doc["target_scaling"]["mean"]),
                       target_std=float(doc["target_scaling"]["std"]),
                       feature_mean=list(doc["normalization"]["mean"]),
                       feature_std=list(doc["normalization"]["std"]),
                       target_numeric=doc.get("target_type") == "numeric",
                       image=image, text_columns=list(doc.get("text_columns", [])),
                       tokenizer=dict(doc.get("tokenizer") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"The preprocessing description is incomplete ({exc}).") from None


def _word_pieces(backbone, texts: pd.Series) -> dict[str, Any]:
    """The tokenizer document of a pretrained text backbone (its whole tokenizer.json), cutting
    texts where 95% of the training texts end (at most the backbone's length): padding costs a
    transformer as much as words, so short texts train many times faster."""
    from pathlib import Path

    from .text import WordPieces, piece_length

    path = Path(backbone.folder) / "tokenizer.json"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"The tokenizer of {backbone.title} cannot be read ({exc}).") from None
    length = piece_length(text, texts.tolist(), backbone.max_length)
    return WordPieces.document(text, length, backbone.key)


def _join_text(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """The text columns of *df* as one string per row (missing cells are empty)."""
    parts = [df[c].astype("string").fillna("") for c in columns]
    out = parts[0]
    for part in parts[1:]:
        out = out + " " + part
    return out.astype(object)


def _fit_column(col: pd.Series, name: str, kind: str, strategy: str, constant: Any,
                encoding: str) -> ColumnEncoding:
    """Fit one feature column's encoding and missing-value fill on the training rows."""
    if kind in ("numeric", "boolean", "date"):
        fmt = ""
        if kind == "numeric":
            values = to_numeric(col)
        elif kind == "boolean":
            values = to_boolean(col)
        else:
            fmt = date_format(col)
            values = pd.Series(_date_parts(col, fmt)[:, 0], index=col.index)
            if not values.notna().any():
                raise DataError(f"Column {name!r} has no readable dates in the training rows. "
                                f"Set its type to categorical or its role to ignore.")
        present = values.dropna()
        if strategy == "constant" and kind == "date":
            fill = _constant_date(constant, name)
        elif strategy == "constant":
            fill = _constant_number(constant, name, kind)
        elif not len(present):
            fill = 0.0
        elif strategy == "mean":
            fill = float(present.mean())
        elif strategy == "most_frequent" or (strategy == "auto" and kind == "boolean"):
            fill = float(present.mode().iloc[0])
        else:  # median, and auto for numbers and dates
            fill = float(present.median())
        return ColumnEncoding(name, kind, fill=fill, strategy=strategy, date_format=fmt,
                              indicator=bool(values.isna().any()))
    if kind == "categorical":
        labels = _labels(col.dropna())
        counts = pd.Series(labels, dtype=object).value_counts() if labels else pd.Series()
        cats = sorted(set(labels) - {""}, key=natural_key)
        fill_label = None
        if strategy == "most_frequent" and len(counts):
            fill_label = str(counts.index[0])
        elif strategy == "constant":
            fill_label = "" if constant is None else str(constant).strip()
            if not fill_label:
                raise DataError(f"Column {name!r} fills missing cells with a constant, but no "
                                f"value is set. Enter the value to use.")
            if fill_label not in cats:
                cats.append(fill_label)
        if encoding == "auto":
            encoding = "embedding" if len(cats) > EMBED_ABOVE else "onehot"
        if encoding == "embedding" and not cats:
            raise DataError(f"Column {name!r} has no values in the training rows, so there is "
                            f"nothing to embed. Set its role to ignore.")
        return ColumnEncoding(name, "categorical", categories=cats, encoding=encoding,
                              fill_label=fill_label, strategy=strategy)
    raise DataError(f"Column {name!r} holds free text, which cannot be a feature of a table "
                    f"model; set its role to ignore.")


def _constant_date(value: Any, name: str) -> float:
    """A date typed by the user (``2020-01-31``) as days since 1970."""
    text = "" if value is None else str(value).strip()
    dates = to_dates(pd.Series([text], dtype=object)) if text else pd.Series([pd.NaT])
    if not text or pd.isna(dates.iloc[0]):
        raise DataError(f"Column {name!r} fills missing cells with {value!r}, which is not a "
                        f"date. Enter a date such as 2020-01-31.")
    return float((dates.iloc[0] - pd.Timestamp("1970-01-01")).total_seconds() / 86400.0)


def _constant_number(value: Any, name: str, kind: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"Column {name!r} fills missing cells with {value!r}, which is not a "
                        f"number. Enter a number.") from None
    if not np.isfinite(number):
        raise DataError(f"Column {name!r} needs a finite fill value.")
    if kind == "boolean" and number not in (0.0, 1.0):
        raise DataError(f"Column {name!r} is yes/no; fill missing cells with 0 or 1.")
    return number


def _encode_column(col: pd.Series, enc: ColumnEncoding, n: int) -> np.ndarray:
    if enc.type in ("numeric", "boolean", "date"):
        values, missing = _filled(col, enc)
        if enc.indicator:
            values = np.concatenate([values, missing[:, None]], axis=1)
        return values.astype(np.float32)
    labels = np.asarray(_labels(col, keep_missing=True), dtype=object)
    if enc.fill_label is not None:
        labels[pd.isna(labels) | (labels == "")] = enc.fill_label
    if enc.encoding == "embedding":
        index = {cat: i + 1 for i, cat in enumerate(enc.categories)}
        return np.array([index.get(lab, 0) for lab in labels], np.float32)[:, None]
    onehot = np.zeros((n, len(enc.categories)), np.float32)
    for j, cat in enumerate(enc.categories):
        onehot[:, j] = labels == cat
    return onehot


def _filled(col: pd.Series, enc: ColumnEncoding) -> tuple[np.ndarray, np.ndarray]:
    """A number, yes/no or date column as ``(n, width without indicator)`` floats with missing
    cells filled, and which cells were missing."""
    if enc.type == "date":
        parts = _date_parts(col, enc.date_format or None)
        missing = np.isnan(parts[:, 0])
        if missing.any():
            fill = pd.Timestamp("1970-01-01") + pd.Timedelta(days=enc.fill)
            parts[missing] = [enc.fill, fill.month, fill.weekday()]
        return parts, missing
    values = (to_numeric(col) if enc.type == "numeric" else to_boolean(col)).to_numpy(
        np.float64, na_value=np.nan)
    missing = np.isnan(values)
    return np.where(missing, enc.fill, values)[:, None], missing


def class_codes(series: pd.Series, numeric: bool) -> tuple[np.ndarray, list[str]]:
    """Vectorised :func:`target_labels`: a class number per row (-1 when missing) and the class
    names, in order of first appearance. ``"1"`` and ``"1.0"`` of a numeric target are one
    class."""
    if numeric:
        series = to_numeric(series)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    names: list[str] = []
    index: dict[str, int] = {}
    remap = np.full(len(uniques) + 1, -1, dtype=np.int64)  # last slot: code -1 stays -1
    for i, value in enumerate(np.asarray(uniques, dtype=object)):
        name = _label_of(value)
        if name == "":
            continue
        if name not in index:
            index[name] = len(names)
            names.append(name)
        remap[i] = index[name]
    return remap[codes], names


def target_labels(series: pd.Series, numeric: bool) -> list[str | None]:
    """Class labels of a target column; ``None`` for a missing (or, if *numeric*, non-number) cell.
    """
    if numeric:
        series = to_numeric(series)
    labels = _labels(series, keep_missing=True)
    return [None if lab is None or lab == "" else lab for lab in labels]


def _labels(series: pd.Series, keep_missing: bool = False) -> list:
    """Class labels as strings; whole-number floats print without ``.0`` (``3.0`` -> ``"3"``).

    Each distinct value is converted once (``pd.factorize``): a million rows of a few classes
    take milliseconds, not a Python loop over every cell.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    names = [_label_of(v) for v in np.asarray(uniques, dtype=object)]
    names.append(None if keep_missing else "")  # code -1: missing
    table = np.empty(len(names), dtype=object)
    table[:] = names
    return table[codes].tolist()


def _label_of(value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return str(value).strip()
