"""Predicting one input at a time (the Try it panel) and whole files of them (batch prediction).

Every path goes through the same encoding as ``main.py predict``: a table row or a text becomes a
one-row DataFrame for :func:`predict_frame`; an image in memory (a drawing, the clipboard) is
decoded exactly as the same image read from a file (:func:`ml.data.images.image_array`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..data.images import IMAGE_SUFFIXES, image_array, load_image
from ..data.preprocessing import Preprocessor
from ..errors import DataError
from ..runs.folder import Run, check_threshold
from ..system.jobcontrol import check_stop
from ..training.trainer import predict_raw
from .evaluate import add_prediction_columns, is_binary, outputs_to_predictions, predict_frame

#: An answer is worded as unsure when its class is less likely than not (below one half: if the
#: probabilities are calibrated, it is more often wrong than right) or beats the next most likely
#: class by less than this many probability points (the "margin" of active learning's margin
#: sampling): 51% against 49% is a coin toss, however the 51% is rounded.
UNSURE_MARGIN = 0.2


def is_unsure(label: str, probabilities: list[tuple[str, float]]) -> bool:
    """Whether the answer *label* is too close to call (see :data:`UNSURE_MARGIN`).

    Parameters
    ----------
    label : str
        The class the model answers (with a decision threshold, not always the most probable).
    probabilities : list of (str, float)
        Every class's probability.
    """
    probs = dict(probabilities)
    if label not in probs:
        return False
    others = [p for name, p in probabilities if name != label]
    runner_up = max(others, default=0.0)
    return probs[label] < 0.5 or probs[label] - runner_up < UNSURE_MARGIN


def answer_text(label: str, probabilities: list[tuple[str, float]]) -> str:
    """The answer in words: ``"flower · 97.0%"``, or when unsure (:func:`is_unsure`) the two
    likeliest classes, ``"Not sure: flower 51%, china 49%"``."""
    probs = dict(probabilities)
    if label not in probs:
        return label
    if not is_unsure(label, probabilities):
        return f"{label}  ·  {100 * probs[label]:.1f}%"
    others = sorted(((p, name) for name, p in probabilities if name != label), reverse=True)
    second = f", {others[0][1]} {100 * others[0][0]:.0f}%" if others else ""
    return f"Not sure: {label} {100 * probs[label]:.0f}%{second}"


@dataclass
class Prediction:
    """What the model says about one input."""

    task: str
    #: The predicted class, or the predicted value formatted for people.
    label: str
    #: Regression: the predicted value; classification: the winning probability.
    value: float
    #: Classification: ``(class, probability)`` in the model's class order.
    probabilities: list[tuple[str, float]] = field(default_factory=list)
    #: Two classes: the probability of the second class from which it is said.
    threshold: float | None = None

    def ranked(self, k: int | None = None) -> list[tuple[str, float]]:
        """The classes, most probable first (the top *k*)."""
        out = sorted(self.probabilities, key=lambda p: -p[1])
        return out if k is None else out[:k]

    @property
    def unsure(self) -> bool:
        """Classification: the answer is too close to call (see :func:`is_unsure`)."""
        return self.task == "classification" and is_unsure(self.label, self.probabilities)

    def text(self) -> str:
        """The answer in words, as the Try it panel and ``main.py predict`` say it."""
        if self.task != "classification":
            return f"Predicted: {self.label}"
        return answer_text(self.label, self.probabilities)


@dataclass
class FormField:
    """One input of the table form, typed like the training column."""

    name: str
    type: str  # numeric | boolean | categorical | date
    default: object
    choices: list[str] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    #: Numeric: every value seen in the data is a whole number (a count, an age, a year), so
    #: the form shows and steps whole numbers.
    integer: bool = False


@dataclass
class CanvasStyle:
    """How a drawing must look to resemble the training images."""

    #: Light strokes on a dark background (MNIST, scikit-learn digits) or the reverse.
    light_ink: bool
    #: The drawing's longer side, as a fraction of the image, after centring.
    fill: float
    #: The model's image size ``(height, width)``.
    size: tuple[int, int]


class Predictor:
    """A trained run, loaded once, answering one input at a time.

    Safe to call from a worker thread while the GUI thread keeps the instance: calls are
    serialised by a lock (the network is not re-entrant in eval mode with shared buffers).

    Two classes are decided at :attr:`threshold`: the run's saved one unless *threshold* is
    given (``main.py predict --threshold``).
    """

    def __init__(self, run: Run, threshold: float | None = None):
        self.run = run
        self.net = run.load_model()
        self.pre: Preprocessor = run.preprocessor
        self._lock = threading.Lock()
        self._pixel_range = _pixel_range(run)
        self.threshold: float | None = None
        self.set_threshold(run.threshold if threshold is None else threshold)

    def set_threshold(self, threshold: float | None) -> None:
        """Decide two classes at *threshold* from now on (other models have none).

        Raises
        ------
        DataError
            If the model does not sort into two classes, or *threshold* is not in (0, 1).
        """
        if not is_binary(self.pre):
            if threshold is not None and threshold != self.run.threshold:
                raise DataError(f"A decision threshold applies only to models that sort into "
                                f"two classes; this one {_what(self.pre)}.")
            return
        self.threshold = check_threshold(threshold)

    # -- what the input looks like --------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.pre.kind

    @property
    def task(self) -> str:
        return self.pre.task

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of the model's images."""
        return int(self.pre.input_shape[-2]), int(self.pre.input_shape[-1])

    #: Images this small and gray are drawings (digits, letters, sketches): Try it offers a
    #: canvas to draw on. Anything in colour or larger is a photo: Try it offers a drop zone.
    DRAWING_MAX_SIDE = 32

    @property
    def input_style(self) -> str:
        """How people give this model an image: ``"drawing"`` (small grayscale images, such as
        8x8 or 28x28 digits) or ``"photo"`` (colour, or larger than
        :attr:`DRAWING_MAX_SIDE`); ``""`` for models that do not read images."""
        if self.kind != "image":
            return ""
        gray = self.image_mode in ("L", "1") or int(self.pre.input_shape[0]) == 1
        return "drawing" if gray and max(self.image_size) <= self.DRAWING_MAX_SIDE else "photo"

    @property
    def image_mode(self) -> str:
        if self.pre.image:
            return self.pre.image.get("mode", "RGB")
        return "L" if int(self.pre.input_shape[0]) == 1 else "RGB"

    def form_fields(self, examples: pd.DataFrame | None = None) -> list[FormField]:
        """The table form: one field per feature column, defaulting to the training fill value
        (numbers also get the range seen in *examples*, when given)."""
        fields = []
        for enc in self.pre.columns:
            if enc.type == "categorical":
                default = enc.fill_label if enc.fill_label is not None else (
                    enc.categories[0] if enc.categories else "")
                fields.append(FormField(enc.name, "categorical", default, list(enc.categories)))
                continue
            if enc.type == "date":
                default = (pd.Timestamp("1970-01-01") + pd.Timedelta(days=enc.fill)).date()
                fields.append(FormField(enc.name, "date", default.isoformat()))
            else:
                fields.append(_number_field(enc.name, enc.type, float(enc.fill), examples))
        return fields

    def canvas_style(self, images: np.ndarray | None = None) -> CanvasStyle:
        """How a drawing should be made and framed, learnt from training-like *images*
        (``uint8`` ``(n, C, H, W)``) when given, else from the model's input statistics."""
        mean = float(np.mean(self.pre.feature_mean)) if self.pre.feature_mean else 0.5
        if not self.pre.image:  # pixel columns: statistics are in the columns' own range
            lo, hi = self._pixel_range
            mean = (mean - lo) / (hi - lo) if hi > lo else 0.5
        light_ink = mean < 0.5
        fill = 0.8
        if images is not None and len(images):
            fill = _typical_fill(images, light_ink)
        return CanvasStyle(light_ink, fill, self.image_size)

    # -- predicting -----------------------------------------------------------------------------
    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``main.py predict`` for a table: *frame* plus ``prediction`` (and probabilities)."""
        with self._lock:
            return predict_frame(self.net, self.pre, frame, self.threshold)

    def predict_row(self, values: dict) -> Prediction:
        """Predict one table row given as ``{column: value}`` (missing columns get the fill)."""
        frame = pd.DataFrame([{enc.name: values.get(enc.name) for enc in self.pre.columns}])
        return self._one(self.predict_frame(frame))

    def predict_text(self, text: str) -> Prediction:
        """Predict one text (it goes in the first text column; the others stay empty)."""
        columns = self.pre.text_columns or ["text"]
        row = {name: (text if i == 0 else "") for i, name in enumerate(columns)}
        return self._one(self.predict_frame(pd.DataFrame([row])))

    def image_input(self, image: Image.Image | str | Path) -> np.ndarray:
        """The model's input for one image (a PIL image or a file): ``(1, C, H, W)`` float32,
        equal to what ``main.py predict`` feeds the network for that image as a file."""
        size, mode = self.image_size, self.image_mode
        if isinstance(image, (str, Path)):
            pixels = load_image(image, size, mode)
        else:
            pixels = image_array(image, size, mode)
        chw = np.ascontiguousarray(pixels.transpose(2, 0, 1))[None]
        if self.pre.image:
            return chw.astype(np.float32) / np.float32(255.0)
        lo, hi = self._pixel_range  # pixel columns, e.g. scikit-learn's digits in 0..16
        return (lo + chw.astype(np.float32) / np.float32(255.0) * np.float32(hi - lo)).astype(
            np.float32)

    def predict_image(self, image: Image.Image | str | Path) -> Prediction:
        """Predict one image (a PIL image, or a file path)."""
        return self.predict_input(self.image_input(image))

    def example_input(self, example: np.ndarray) -> np.ndarray:
        """The model's input ``(1, C, H, W)`` for one evaluated image example (``uint8`` pixels
        of an image-file model, or the pixel values a pixel-column model reads)."""
        x = np.asarray(example)[None] if np.ndim(example) == 3 else np.asarray(example)
        if self.pre.image or x.dtype == np.uint8:
            return x.astype(np.float32) / np.float32(255.0)
        return np.ascontiguousarray(x, dtype=np.float32)

    def predict_input(self, x: np.ndarray) -> Prediction:
        """Predict one model input ``(1, C, H, W)`` (see :meth:`image_input`)."""
        if not self.pre.image:
            frame = pd.DataFrame(x.reshape(1, -1), columns=[e.name for e in self.pre.columns])
            return self._one(self.predict_frame(frame))
        with self._lock:
            raw = predict_raw(self.net, x)
        pred, proba = outputs_to_predictions(raw, self.pre, self.threshold)
        return self._from_arrays(pred, proba)

    def explain_image(self, x: np.ndarray, target: int | None = None):
        """Where the model looks in model input *x* (see :func:`ml.evaluation.explain.saliency`)."""
        from .explain import saliency

        with self._lock:
            return saliency(self.net, x, target)

    def explain_text(self, text: str, target: int | None = None):
        """How much each word of *text* pushes the answer (occlusion)."""
        from .explain import token_importance

        with self._lock:
            return token_importance(self.net, self.pre, text, target)

    def predict_images(self, paths: list[str | Path], should_stop=None) -> pd.DataFrame:
        """Batch prediction for image files: a ``file`` column, ``prediction`` and, for
        classification, ``probability_<class>``. Files that cannot be read are listed with an
        ``error`` instead of a prediction."""
        rows, errors = [], []
        inputs = []
        for path in paths:
            check_stop(should_stop, "Prediction was cancelled.")
            try:
                inputs.append(self.image_input(path))
                rows.append(str(path))
            except DataError as exc:
                errors.append((str(path), str(exc)))
        out = pd.DataFrame({"file": rows})
        if inputs:
            x = np.concatenate(inputs)
            with self._lock:
                raw = predict_raw(self.net, x)
            pred, proba = outputs_to_predictions(raw, self.pre, self.threshold)
            add_prediction_columns(out, self.pre, pred, proba)
        if errors:
            bad = pd.DataFrame({"file": [p for p, _ in errors], "error": [e for _, e in errors]})
            out = pd.concat([out, bad], ignore_index=True)
        return out

    def answer(self, out: pd.DataFrame) -> str:
        """The answer in words (:meth:`Prediction.text`) when *out*, as :func:`predict_path`
        gives it, holds one predicted input; ``""`` for several rows or one that failed."""
        if len(out) != 1 or "prediction" not in out or pd.isna(out["prediction"].iloc[0]):
            return ""
        return self._one(out).text()

    def _one(self, out: pd.DataFrame) -> Prediction:
        row = out.iloc[0]
        if self.task == "classification":
            probs = [(name, float(row[f"probability_{name}"])) for name in self.pre.class_names]
            label = str(row["prediction"])
            return Prediction("classification", label, dict(probs)[label], probs,
                              self.threshold)
        value = float(row["prediction"])
        return Prediction("regression", f"{value:.4g}", value)

    def _from_arrays(self, pred: np.ndarray, proba: np.ndarray | None) -> Prediction:
        if self.task == "classification":
            probs = [(name, float(p)) for name, p in zip(self.pre.class_names, proba[0])]
            label = self.pre.class_names[int(pred[0])]
            return Prediction("classification", label, float(proba[0, int(pred[0])]), probs,
                              self.threshold)
        value = float(pred[0])
        return Prediction("regression", f"{value:.4g}", value)


def _number_field(name: str, kind: str, fill: float, examples: pd.DataFrame | None
                  ) -> FormField:
    """A numeric or boolean field, with the range seen in *examples* and, when all its values
    there are whole numbers, marked ``integer`` (its default then rounded to one)."""
    low = high = None
    integer = False
    if examples is not None and name in examples.columns and kind == "numeric":
        values = pd.to_numeric(examples[name], errors="coerce").dropna().to_numpy(np.float64)
        values = values[np.isfinite(values)]
        if len(values):
            low, high = float(values.min()), float(values.max())
            integer = bool(np.all(values == np.round(values)))
    # The training fill of a whole-number column can be a mean such as 3.4; the form shows the
    # whole number next to it, and predicts what it shows.
    default = float(round(fill)) if integer else fill
    return FormField(name, kind, default, low=low, high=high, integer=integer)


def _what(pre: Preprocessor) -> str:
    if pre.task == "classification":
        return f"sorts into {len(pre.class_names)} classes"
    return "predicts a number"


def image_files(folder: str | Path) -> list[Path]:
    """The image files in *folder* and its sub-folders, in a stable order.

    Raises
    ------
    DataError
        If *folder* holds no image files.
    """
    root = Path(folder)
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and p.is_file() and not any(part.startswith(".") for part in
                                               p.relative_to(root).parts))
    if not found:
        raise DataError(f"{root.name} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return found


def predict_path(predictor: Predictor, path: str | Path, should_stop=None) -> pd.DataFrame:
    """Batch prediction for a CSV/Excel table, an image file or a folder of images (the
    ``main.py predict`` command and the Try it panel's "Predict a file" button).

    Raises
    ------
    DataError
        If the input cannot be read or does not suit the model.
    """
    from ..data.tabular import read_table

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist.")
    is_image = path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES
    if is_image:
        if predictor.kind != "image":
            raise DataError(f"This model reads {predictor.kind} data, not images. Choose a CSV "
                            f"file with its columns.")
        files = image_files(path) if path.is_dir() else [path]
        out = predictor.predict_images(files, should_stop=should_stop)
        if path.is_dir():
            out["file"] = [str(Path(f).relative_to(path)) if Path(f).is_relative_to(path) else f
                           for f in out["file"]]
        return out
    frame = read_table(path, min_columns=1)
    return predictor.predict_frame(frame)


def _pixel_range(run: Run) -> tuple[float, float]:
    """The value range of a model's pixel columns (a sample's own, else 0..255)."""
    from ..data.samples import SAMPLE_PREFIX, get_sample

    source = str(run.config.get("data", {}).get("source", ""))
    if source.startswith(SAMPLE_PREFIX):
        try:
            info = get_sample(source)
        except DataError:
            return 0.0, 255.0
        if info.pixel_range:
            return float(info.pixel_range[0]), float(info.pixel_range[1])
    return 0.0, 255.0


def _typical_fill(images: np.ndarray, light_ink: bool) -> float:
    """The median size of the ink's bounding box, relative to the image, over up to 200
    training images (``uint8`` ``(n, C, H, W)``)."""
    sample = images[:200].astype(np.float32).mean(axis=1)  # (n, H, W) gray
    h, w = sample.shape[1:]
    fills = []
    for img in sample:
        ink = img if light_ink else img.max() - img
        mask = ink > 0.3 * ink.max() if ink.max() > 0 else None
        if mask is None or not mask.any():
            continue
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        fills.append(max((rows[-1] - rows[0] + 1) / h, (cols[-1] - cols[0] + 1) / w))
    return float(np.clip(np.median(fills), 0.3, 1.0)) if fills else 0.8


def frame_drawing(gray: np.ndarray, style: CanvasStyle) -> Image.Image:
    """Turn a drawing (``uint8`` ``(H, W)``, ink bright on black) into the image the model
    should see: cropped to the ink, scaled so its longer side fills ``style.fill`` of a square,
    centred on the ink's centre of mass, and inverted when the training images have dark ink.

    Returns a grayscale image at the canvas's own resolution; :meth:`Predictor.image_input`
    then resizes it exactly as it would a file.
    """
    size = max(gray.shape)
    mask = gray > 0
    canvas = np.zeros((size, size), np.uint8)
    if mask.any():
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        scale = style.fill * size / max(crop.shape)
        new_h, new_w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
        scaled = np.asarray(Image.fromarray(crop).resize((new_w, new_h),
                                                         Image.Resampling.BILINEAR))
        weights = scaled.astype(np.float64)
        total = weights.sum() or 1.0
        cy = (weights.sum(axis=1) * np.arange(new_h)).sum() / total
        cx = (weights.sum(axis=0) * np.arange(new_w)).sum() / total
        top = int(round(size / 2 - cy))
        left = int(round(size / 2 - cx))
        top = min(max(top, 0), size - new_h)
        left = min(max(left, 0), size - new_w)
        canvas[top:top + new_h, left:left + new_w] = scaled
    if not style.light_ink:
        canvas = 255 - canvas
    return Image.fromarray(canvas)
