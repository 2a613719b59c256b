"""Try it: give the model a new input - a drawing, an image, a form, a text - and watch it answer.

Every prediction runs in a worker (the latest input wins: an older answer arriving late is
dropped), through :class:`ml.evaluation.tryit.Predictor`, so what the panel shows is what
``main.py predict`` says for the same input.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from PySide6.QtCore import QPoint, QRect, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ml.data.images import IMAGE_SUFFIXES
from ml.evaluation.tryit import CanvasStyle, Prediction, Predictor, frame_drawing, predict_path
from ml.runs.folder import load_run
from ml.system.fileio import atomic_write_text
from ml.system.jobcontrol import check_stop
from workers.base import FunctionWorker, TaskRunner

from .. import dialogs
from ..theme import mute
from .common import MessageBanner


# -- the answer -----------------------------------------------------------------------------------
class ProbabilityBars(QWidget):
    """Class probabilities as big horizontal bars, the most probable first (at most 10)."""

    MAX_BARS = 10

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("probabilityBars")
        self.bars: list[tuple[str, float]] = []
        self.winner = ""
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_probabilities(self, ranked: list[tuple[str, float]], winner: str) -> None:
        self.bars = ranked[:self.MAX_BARS]
        self.winner = winner
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(360, 34 * max(3, len(self.bars)))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        if not self.bars:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        row_h = min(40, max(18, self.height() // len(self.bars)))
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, row_h * 0.42))
        painter.setFont(font)
        name_w = min(self.width() // 3, max(painter.fontMetrics().horizontalAdvance(n)
                                            for n, _ in self.bars) + 12)
        pct_w = painter.fontMetrics().horizontalAdvance("100.0%") + 10
        bar_w = max(10, self.width() - name_w - pct_w)
        for i, (name, p) in enumerate(self.bars):
            y = i * row_h
            painter.setPen(self.palette().text().color())  # readable in either theme
            painter.drawText(QRect(0, y, name_w - 8, row_h),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight,
                                                              name_w - 8))
            painter.fillRect(QRect(name_w, y + 4, bar_w, row_h - 8),
                             self.palette().alternateBase().color())
            colour = QColor("#2f7ed8") if name == self.winner else QColor("#9db8d9")
            painter.fillRect(QRect(name_w, y + 4, max(1, int(bar_w * p)), row_h - 8), colour)
            painter.drawText(QRect(name_w + bar_w + 6, y, pct_w, row_h),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             f"{100 * p:.1f}%")
        painter.end()


# -- drawing --------------------------------------------------------------------------------------
class DrawingCanvas(QWidget):
    """A square to draw on with the mouse: white ink on black, like MNIST's digits (the panel
    inverts the result when the training images have dark ink)."""

    drawn = Signal()  # a stroke ended (or the canvas was cleared)
    SIDE = 280

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("drawingCanvas")
        self.setFixedSize(self.SIDE, self.SIDE)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.pen_width = 22
        self.image = QImage(self.SIDE, self.SIDE, QImage.Format.Format_Grayscale8)
        self.image.fill(0)
        self._last: QPoint | None = None
        self.setToolTip("Draw with the mouse; the model answers when you let go")

    def set_pen_for(self, model_height: int) -> None:
        """Strokes as thick, relative to the image, as in the training images."""
        self.pen_width = int(round(self.SIDE * max(0.07, 1.1 / max(1, model_height))))

    def clear(self) -> None:
        self.image.fill(0)
        self.update()
        self.drawn.emit()

    def is_empty(self) -> bool:
        return not self.pixels().any()

    def pixels(self) -> np.ndarray:
        """The drawing as ``uint8`` ``(H, W)``, ink bright."""
        ptr = self.image.constBits()
        stride = self.image.bytesPerLine()
        raw = np.frombuffer(ptr, np.uint8, count=stride * self.SIDE).reshape(self.SIDE, stride)
        return raw[:, :self.SIDE].copy()

    def draw_line(self, a: QPoint, b: QPoint) -> None:
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255), self.pen_width, Qt.PenStyle.SolidLine,
                            Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        painter.drawLine(a, b)
        painter.end()
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._last = event.position().toPoint()
            self.draw_line(self._last, self._last)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._last is not None:
            point = event.position().toPoint()
            self.draw_line(self._last, point)
            self._last = point

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._last is not None:
            self._last = None
            self.drawn.emit()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.drawImage(0, 0, self.image)
        painter.setPen(QColor("#888"))
        painter.drawRect(0, 0, self.SIDE - 1, self.SIDE - 1)
        painter.end()


class PhotoDropZone(QWidget):
    """A big square to drop a photo on (or click, to open one), showing the photo itself large
    and smoothly scaled - not the model's few pixels, which the panel shows beside it."""

    clicked = Signal()
    HINT = "Drop a photo here\nor click to open one"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("photoDropZone")
        self.setMinimumSize(260, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Drop an image file here, or click to open one")
        self.photo: QImage | None = None

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(420, 380)

    def set_photo(self, image: QImage | None) -> None:
        """Show *image* (``None`` or a null image: the empty zone and its hint)."""
        self.photo = None if image is None or image.isNull() else image
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = self.rect().adjusted(2, 2, -2, -2)
        if self.photo is None:
            pen = QPen(self.palette().mid().color(), 2, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRoundedRect(area, 10, 10)
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.3)
            painter.setFont(font)
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, self.HINT)
        else:
            shown = QPixmap.fromImage(self.photo).scaled(
                area.size(), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
            painter.drawPixmap(area.x() + (area.width() - shown.width()) // 2,
                               area.y() + (area.height() - shown.height()) // 2, shown)
        painter.end()


class NumberField(QDoubleSpinBox):
    """A number in the form, written without trailing zeros ("4", "25.7", not "4.0000")."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt's name
        text = super().textFromValue(value)
        point = self.locale().decimalPoint()
        return text.rstrip("0").rstrip(point) if point in text else text


def qimage_to_pil(image: QImage) -> Image.Image:
    """A QImage (clipboard, drop) as an RGBA PIL image."""
    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    raw = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return Image.fromarray(raw[:, :4 * w].reshape(h, w, 4).copy(), "RGBA")


# -- the work done off the GUI thread -------------------------------------------------------------
def _load(run_path: str) -> Predictor:
    return Predictor(load_run(run_path))


#: The confidence bar's colour when the answer is unsure: amber, a caution in either theme.
UNSURE_COLOUR = "#d9822b"

#: The longest side of a photo's preview: sharp on a large screen, quick to decode and scale.
PREVIEW_SIDE = 1024


def _preview(payload) -> QImage:
    """A photo (a file or a PIL image) as an RGB QImage of at most :data:`PREVIEW_SIDE` a side,
    upright as its EXIF says (decoded here, off the GUI thread: a photo can be 50 megapixels).

    Raises
    ------
    DataError
        When the file cannot be read.
    """
    from ml.data.images import thumbnail

    if isinstance(payload, Image.Image):
        img = payload.convert("RGB")
        img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BILINEAR)
        pixels = np.asarray(img)
    else:
        pixels = thumbnail(payload, PREVIEW_SIDE)
    h, w = pixels.shape[:2]
    rgb = np.ascontiguousarray(pixels[:, :, :3])
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _predict(predictor: Predictor, kind: str, payload) -> tuple[Prediction, object, object]:
    """One prediction, the model's input to show (images) and the explanation: a saliency map
    for images, token importance for texts."""
    if kind in ("image", "array"):
        x = predictor.image_input(payload) if kind == "image" else predictor.example_input(
            payload)
        prediction = predictor.predict_input(x)
        target = (predictor.pre.class_names.index(prediction.label)
                  if prediction.task == "classification" else None)
        return prediction, x[0], predictor.explain_image(x, target)
    if kind == "text":
        prediction = predictor.predict_text(payload)
        return prediction, None, predictor.explain_text(payload) if payload.strip() else None
    return predictor.predict_row(payload), None, None


def token_html(tokens: list[str], scores) -> str:
    """Words shaded by how much they push the answer: green for, red against."""
    import html

    top = max((abs(float(v)) for v in scores), default=0.0) or 1.0
    spans = []
    for word, value in zip(tokens, scores):
        strength = min(1.0, abs(float(value)) / top)
        rgb = "46,160,67" if value >= 0 else "215,58,73"
        spans.append(f'<span style="background-color: rgba({rgb},{0.08 + 0.6 * strength:.2f});'
                     f'">&nbsp;{html.escape(word)}&nbsp;</span>')
    return " ".join(spans)


def _predict_file(predictor: Predictor, source: str, out: str, should_stop=None
                  ) -> tuple[int, str]:
    frame = predict_path(predictor, source, should_stop=should_stop)
    check_stop(should_stop, "Prediction was cancelled.")  # before the file is written
    atomic_write_text(out, frame.to_csv(index=False))
    return len(frame), out


class TryItPanel(QWidget):
    """The Try it tab of the Evaluate page (see the module docstring)."""

    predicted = Signal(object)  # the Prediction shown

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.predictor: Predictor | None = None
        self.prediction: Prediction | None = None
        self._input = None  # the last image input, as the model saw it
        self._pending = None  # an example to explain once the model has loaded
        self._last_request = None  # (kind, payload, note) of the answer shown
        self._note = ""  # what the shown answer is about, in words
        self.explanation = None  # its Saliency (images) or TokenImportance (texts)
        self.style_: CanvasStyle | None = None
        self._examples = None
        self._run_path = ""
        self._batch_error = False  # the banner's error is about a batch file, not an input
        self.loader = TaskRunner(self)
        self.loader.finished.connect(self._on_loaded)
        self.loader.errored.connect(self._on_error)
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_predicted)
        self.runner.errored.connect(self._on_error)
        self.batch = TaskRunner(self)
        self.batch.finished.connect(self._on_batch_done)
        self.batch.errored.connect(self._on_batch_error)
        # A photo's large preview is decoded beside the prediction; a file that cannot be read
        # leaves the zone empty (the prediction's error says why).
        self.previewer = TaskRunner(self)
        self.previewer.finished.connect(lambda image: self.drop_zone.set_photo(image))
        self.previewer.errored.connect(lambda _message: self.drop_zone.set_photo(None))
        self.setAcceptDrops(True)

        image_page = self._build_image_page()

        table_page = self._build_table_page()

        text_page = self._build_text_page()

        self.inputs = QStackedWidget()
        self.inputs.addWidget(QLabel("Train a model to try it."))
        self.inputs.addWidget(image_page)
        self.inputs.addWidget(table_page)
        self.inputs.addWidget(text_page)

        right = self._build_answer()

        body = QHBoxLayout()
        body.addWidget(self.inputs, 1)
        body.addLayout(right, 1)
        self._body = body
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addLayout(body, 1)

        # Text re-predicts on every keystroke; a 60 ms pause merges a burst of them.
        self._text_timer = QTimer(self)
        self._text_timer.setSingleShot(True)
        self._text_timer.setInterval(60)
        self._text_timer.timeout.connect(lambda: self._request("text",
                                                               self.text_edit.toPlainText()))
        self._form_timer = QTimer(self)
        self._form_timer.setSingleShot(True)
        self._form_timer.setInterval(30)
        self._form_timer.timeout.connect(self.predict_form)

    DRAW_HINT = "Draw in the square, drop an image file here, open one or paste one."
    PHOTO_HINT = "Drop a photo in the frame, open one or paste one."

    def _build_image_page(self) -> QWidget:
        """Draw, open or paste an image; what the model sees and where it looks."""
        # Inputs: one page per kind of model.
        self.canvas = DrawingCanvas()
        self.canvas.drawn.connect(self.predict_drawing)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.canvas.clear)
        self.open_button = QPushButton("Open image…")
        self.open_button.setObjectName("tryOpenImage")
        self.open_button.clicked.connect(self._on_open_image)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Predict the image on the clipboard")
        self.paste_button.clicked.connect(self.paste_image)
        self.image_hint = QLabel(self.DRAW_HINT)
        self.image_hint.setWordWrap(True)
        # Photo sets get a drop zone showing the photo large instead of the canvas.
        self.drop_zone = PhotoDropZone()
        self.drop_zone.clicked.connect(self._on_open_image)
        self.drop_zone.hide()
        self.model_view = QLabel()
        self.model_view.setObjectName("modelInputView")
        self.heat_view = QLabel()
        self.heat_view.setObjectName("saliencyView")
        self.heat_view.setToolTip("Red to yellow: where the answer comes from")
        for view in (self.model_view, self.heat_view):
            view.setFixedSize(170, 170)
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)
            view.setStyleSheet("border: 1px solid palette(mid); background: palette(base);")
        self.model_view.setToolTip("What the model sees: the input at the model's size")
        image_page = QWidget()
        il = QHBoxLayout(image_page)
        col = QVBoxLayout()
        col.addWidget(self.canvas)
        col.addWidget(self.drop_zone)
        buttons = QHBoxLayout()
        for b in (self.clear_button, self.open_button, self.paste_button):
            buttons.addWidget(b)
        col.addLayout(buttons)
        col.addWidget(self.image_hint)
        col.addStretch(1)
        self._image_column = col
        il.addLayout(col, 1)
        self.explain_check = QCheckBox("Show where it looks")
        self.explain_check.setObjectName("explainCheck")
        self.explain_check.setChecked(True)
        self.explain_check.setToolTip("Grad-CAM for convolutional networks, gradient × input "
                                      "otherwise: red to yellow where the answer comes from")
        self.explain_check.toggled.connect(lambda _: self._show_input())
        self.method_label = QLabel("")
        mute(self.method_label)
        seen = QVBoxLayout()
        seen.addWidget(QLabel("The model sees:"))
        seen.addWidget(self.model_view)
        seen.addWidget(self.explain_check)
        seen.addWidget(self.heat_view)
        seen.addWidget(self.method_label)
        seen.addStretch(1)
        il.addLayout(seen)
        return image_page

    def _build_table_page(self) -> QWidget:
        """A field per input column, and Fill from a random test row."""
        self.form = QFormLayout()
        self.form_widgets: dict[str, QWidget] = {}
        form_box = QWidget()
        form_box.setLayout(self.form)
        form_scroll = QScrollArea()
        form_scroll.setWidgetResizable(True)
        form_scroll.setWidget(form_box)
        self.random_button = QPushButton("Fill from a random test row")
        self.random_button.setObjectName("randomRowButton")
        self.random_button.clicked.connect(self.fill_random_row)
        table_page = QWidget()
        tl = QVBoxLayout(table_page)
        tl.addWidget(self.random_button, 0, Qt.AlignmentFlag.AlignLeft)
        tl.addWidget(form_scroll, 1)
        return table_page

    def _build_text_page(self) -> QWidget:
        """Type a text; each word shaded by how much it pushes the answer."""
        self.text_edit = QPlainTextEdit()
        self.text_edit.setObjectName("tryText")
        self.text_edit.setPlaceholderText("Type here: the model answers as you type.")
        self.text_edit.textChanged.connect(self._on_text_changed)
        self.token_view = QLabel("")
        self.token_view.setObjectName("tokenView")
        self.token_view.setWordWrap(True)
        self.token_view.setTextFormat(Qt.TextFormat.RichText)
        self.token_view.setStyleSheet("font-size: 15px; padding: 4px;")
        self.token_view.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.token_caption = QLabel("Type, and each word is shaded by how much it pushes the "
                                    "answer.")
        self.token_caption.setWordWrap(True)
        mute(self.token_caption)
        text_page = QWidget()
        xl = QVBoxLayout(text_page)
        self.text_edit.setMaximumHeight(180)
        xl.addWidget(self.text_edit)
        xl.addWidget(self.token_caption)
        xl.addWidget(self.token_view, 1)
        return text_page

    def _build_answer(self) -> QVBoxLayout:
        """The answer, its probabilities and Predict a whole file."""
        # The answer.
        self.answer = QLabel("")
        self.answer.setObjectName("tryAnswer")
        font = self.answer.font()
        font.setPointSize(22)
        font.setBold(True)
        self.answer.setFont(font)
        self.answer.setWordWrap(True)
        self.input_note = QLabel("")
        self.input_note.setObjectName("tryInputNote")
        mute(self.input_note).setStyleSheet("font-size: 13px;")
        self.confidence = QProgressBar()
        self.confidence.setObjectName("confidenceBar")
        self.confidence.setRange(0, 100)
        self.confidence.setToolTip("How likely the model thinks its answer is")
        self.confidence.hide()
        self.threshold_note = QLabel("")
        self.threshold_note.setObjectName("tryThresholdNote")
        self.threshold_note.setWordWrap(True)
        mute(self.threshold_note).setStyleSheet("font-size: 13px;")
        self.threshold_note.hide()
        self.bars = ProbabilityBars()
        self.batch_button = QPushButton("Predict a whole file…")
        self.batch_button.setObjectName("batchPredictButton")
        self.batch_button.setToolTip("Predict every row of a CSV file (or every image of a "
                                     "folder) and save the predictions as a CSV file")
        self.batch_button.clicked.connect(self.predict_file)
        self.banner = MessageBanner()
        self.banner.setObjectName("tryBanner")
        right = QVBoxLayout()
        right.addWidget(self.answer)
        right.addWidget(self.confidence)
        right.addWidget(self.input_note)
        right.addWidget(self.threshold_note)
        right.addWidget(self.bars, 1)
        right.addWidget(self.batch_button, 0, Qt.AlignmentFlag.AlignRight)
        return right

    def _say_threshold(self) -> None:
        """Two classes: from which probability the answer is the second class."""
        p = self.predictor
        threshold = p.threshold if p is not None else None
        self.threshold_note.setVisible(threshold is not None)
        if threshold is not None:
            no, yes = (html.escape(str(n)) for n in p.pre.class_names)
            self.threshold_note.setText(
                f"Says <b>{yes}</b> from a probability of <b>{threshold:.2f}</b> on, else "
                f"<b>{no}</b> (the run's decision threshold, set on the Metrics tab).")

    @Slot(str, float)
    def use_threshold(self, run_path: str, threshold: float) -> None:
        """The run *run_path* now decides at *threshold*: so does this panel, and the answer
        shown is asked again."""
        if self.predictor is None or run_path != self._run_path or \
                self.predictor.threshold is None:
            return
        self.predictor.set_threshold(threshold)
        self._say_threshold()
        if self.prediction is not None and self._last_request is not None:
            self._request(*self._last_request)

    # -- the run --------------------------------------------------------------------------------
    def set_run(self, run_path: str | None, examples=None) -> None:
        """Load *run_path*'s model (in the background); *examples* are evaluated rows or images,
        used for the form's ranges, random rows and the canvas's framing."""
        self._examples = examples
        if not run_path:
            self._run_path = ""
            self.predictor = None
            self._say_threshold()
            self.loader.cancel()
            self.runner.cancel()
            self.inputs.setCurrentIndex(0)
            self._show(None)
            return
        if run_path == self._run_path and self.predictor is not None:
            self._prepare_inputs()
            return
        self._run_path = run_path
        self.predictor = None
        self.banner.show_message("Loading the model …", "info")
        self.loader.start(FunctionWorker(_load, run_path))

    @Slot(object)
    def _on_loaded(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.banner.clear_message()
        self._say_threshold()
        self._prepare_inputs()
        if self._pending is not None:
            self.explain_example(*self._pending)

    def _prepare_inputs(self) -> None:
        p = self.predictor
        self._show(None)
        photo = p.input_style == "photo"  # the photo gets the room the answer spares
        self._body.setStretch(0, 3 if photo else 1)
        self._body.setStretch(1, 2 if photo else 1)
        self.batch_button.setText("Predict a folder of images…" if p.kind == "image" else
                                  "Predict a whole file…")
        if p.kind == "image":
            images = self._examples if isinstance(self._examples, np.ndarray) else None
            if images is None and isinstance(self._examples, pd.DataFrame):
                images = _pixel_rows(p, self._examples)
            self.style_ = p.canvas_style(images)
            self.canvas.set_pen_for(self.style_.size[0])
            self.canvas.image.fill(0)
            self.canvas.update()
            self._show_image_input(p.input_style)
            self.inputs.setCurrentIndex(1)
        elif p.kind == "text":
            self.inputs.setCurrentIndex(3)
            if self.text_edit.toPlainText():
                self._text_timer.start()
        else:
            self._build_form(p)
            self.inputs.setCurrentIndex(2)
            self.predict_form()

    def _show_image_input(self, style: str) -> None:
        """The canvas for drawing-style sets, the drop zone and its large preview for photos."""
        photo = style == "photo"
        self.canvas.setVisible(not photo)
        self.clear_button.setVisible(not photo)
        self.drop_zone.setVisible(photo)
        self.drop_zone.set_photo(None)
        self.image_hint.setText(self.PHOTO_HINT if photo else self.DRAW_HINT)
        col = self._image_column
        col.setStretch(col.indexOf(self.drop_zone), 1 if photo else 0)
        col.setStretch(col.count() - 1, 0 if photo else 1)  # the spacer under the canvas

    def _build_form(self, p: Predictor) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.form_widgets = {}
        examples = self._examples if isinstance(self._examples, pd.DataFrame) else None
        for f in p.form_fields(examples):
            if f.type == "categorical":
                w = QComboBox()
                w.addItems(f.choices)
                w.setCurrentText(str(f.default))
                w.currentIndexChanged.connect(self._form_timer.start)
            elif f.type == "boolean":
                w = QCheckBox()
                w.setChecked(bool(f.default >= 0.5))
                w.toggled.connect(self._form_timer.start)
            elif f.type == "date":
                w = QLineEdit(str(f.default))
                w.setPlaceholderText("YYYY-MM-DD")
                w.editingFinished.connect(self._form_timer.start)
            else:
                w = NumberField()
                span = (f.high - f.low) if f.low is not None else 0.0
                if f.integer:  # counts, ages, years: whole numbers, stepped by whole numbers
                    w.setDecimals(0)
                    w.setSingleStep(max(1.0, round(span / 50)))
                else:
                    w.setDecimals(4 if span and span < 10 else 3)
                    w.setSingleStep(span / 50 if span else 0.1)
                w.setRange(-1e12, 1e12)
                w.setValue(float(f.default))
                if f.low is not None:
                    w.setToolTip(f"Seen in the data: {f.low:.4g} to {f.high:.4g}")
                w.valueChanged.connect(self._form_timer.start)
            w.setObjectName(f"field_{f.name}")
            self.form_widgets[f.name] = w
            self.form.addRow(f.name, w)

    # -- inputs ---------------------------------------------------------------------------------
    def form_values(self) -> dict:
        out = {}
        for name, w in self.form_widgets.items():
            if isinstance(w, QComboBox):
                out[name] = w.currentText()
            elif isinstance(w, QCheckBox):
                out[name] = 1.0 if w.isChecked() else 0.0
            elif isinstance(w, QLineEdit):
                out[name] = w.text().strip() or None
            else:
                out[name] = w.value()
        return out

    @Slot()
    def predict_form(self) -> None:
        if self.predictor is not None and self.form_widgets:
            self._request("table", self.form_values(), "The values in the form")

    @Slot()
    def fill_random_row(self) -> None:
        """Put a random evaluated row in the form (and predict it)."""
        rows = self._examples
        if not isinstance(rows, pd.DataFrame) or not len(rows):
            return
        self.fill_row(rows.iloc[int(np.random.default_rng().integers(len(rows)))])

    def fill_row(self, row: pd.Series) -> None:
        """Put one table row in the form (and predict it)."""
        for name, w in self.form_widgets.items():
            value = row.get(name)
            missing = value is None or (isinstance(value, float) and value != value)
            if isinstance(w, QComboBox):
                if not missing:
                    w.setCurrentText(str(value))
            elif isinstance(w, QCheckBox):
                w.setChecked(not missing and str(value).lower() in ("1", "1.0", "true", "yes"))
            elif isinstance(w, QLineEdit):
                w.setText("" if missing else str(value))
            elif not missing:
                try:
                    w.setValue(float(value))
                except (TypeError, ValueError):
                    pass
        self.predict_form()

    def framed_drawing(self) -> Image.Image:
        """The canvas as the model should see it (cropped, scaled, centred, inked)."""
        return frame_drawing(self.canvas.pixels(), self.style_)

    @Slot()
    def predict_drawing(self) -> None:
        if self.predictor is None or self.style_ is None:
            return
        if self.canvas.is_empty():
            self._show(None)
            return
        self._request("image", self.framed_drawing(), "Your drawing")

    def predict_image_file(self, path: str) -> None:
        if self.predictor is not None:
            self._request("image", path, Path(path).name)

    @Slot()
    def _on_open_image(self) -> None:
        pattern = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        path = dialogs.open_file(self, "Try an image", f"Images ({pattern});;All files (*)")
        if path:
            self.predict_image_file(path)

    @Slot()
    def paste_image(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.banner.show_message("The clipboard holds no image. Copy one (for example "
                                     "from an image viewer or a screenshot) and paste again.",
                                     "warning")
            return
        self._request("image", qimage_to_pil(image), "The pasted image")

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if self._dropped_file(event.mimeData()) or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        path = self._dropped_file(event.mimeData())
        if path:
            self.predict_image_file(path)
        elif event.mimeData().hasImage():
            self._request("image", qimage_to_pil(QImage(event.mimeData().imageData())),
                          "The dropped image")
        event.acceptProposedAction()

    def _dropped_file(self, mime) -> str:
        if self.predictor is None or self.predictor.kind != "image" or not mime.hasUrls():
            return ""
        for url in mime.urls():
            path = url.toLocalFile()
            if path and Path(path).suffix.lower() in IMAGE_SUFFIXES:
                return path
        return ""

    @Slot()
    def _on_text_changed(self) -> None:
        if self.predictor is not None and self.predictor.kind == "text":
            self._text_timer.start()

    # -- predicting -----------------------------------------------------------------------------
    def _request(self, kind: str, payload, note: str = "") -> None:
        self._note = note
        self._last_request = (kind, payload, note)  # asked again when the threshold moves
        # A new input replaces the last input's error, not a batch file's (a debounced form
        # prediction landing just after a batch failed must not hide why it failed).
        if self.banner.kind == "error" and not self._batch_error:
            self.banner.clear_message()
        self.runner.start(FunctionWorker(_predict, self.predictor, kind, payload))
        if self.drop_zone.isVisibleTo(self):
            self._preview_input(kind, payload)

    def _preview_input(self, kind: str, payload) -> None:
        """Show a photo input large in the drop zone (a file or pasted image is decoded in the
        background; an evaluated example is already the model's few pixels)."""
        from .examples import image_pixmap

        if kind == "array":
            self.previewer.cancel()
            chw = np.asarray(payload)
            self.drop_zone.set_photo(image_pixmap(chw, max(chw.shape[-2:])).toImage())
        elif kind == "image":
            self.previewer.start(FunctionWorker(_preview, payload))

    def is_busy(self) -> bool:
        return self.runner.is_running() or self.loader.is_running()

    @Slot(object)
    def _on_predicted(self, result) -> None:
        prediction, shown, explained = result
        self._input, self.explanation = shown, explained
        if shown is not None:
            self._show_input()
        if self.predictor is not None and self.predictor.kind == "text":
            self.token_view.setText(token_html(explained.tokens, explained.scores)
                                    if explained is not None else "")
            towards = (f"the answer <b>{prediction.label}</b>"
                       if prediction.task == "classification" else "the predicted value up")
            self.token_caption.setText(f"Each word shaded by how much it pushes {towards}: "
                                       f"green for it, red against it (each word hidden in "
                                       f"turn).")
        self._show(prediction)

    def _show_input(self) -> None:
        """The model's input, with the saliency map over it when asked for."""
        from .examples import image_pixmap, overlay_pixmap

        shown, explained = self._input, self.explanation
        if shown is None:
            return
        side = self.model_view.width() - 4
        self.model_view.setPixmap(image_pixmap(shown, side))
        explain = self.explain_check.isChecked() and explained is not None
        self.heat_view.setVisible(explain)
        if explain:
            self.heat_view.setPixmap(overlay_pixmap(shown, explained.heatmap, side))
            self.method_label.setText(explained.method)
        else:
            self.heat_view.clear()
            self.method_label.setText("")

    def explain_example(self, evaluation, row: int) -> None:
        """Show one evaluated example here: its prediction, and why (images: the saliency map;
        rows: the form filled with it; texts: the shaded words)."""
        if self.predictor is None:  # still loading: done when it is
            self._pending = (evaluation, row)
            return
        self._pending = None
        examples = evaluation.examples
        if isinstance(examples, np.ndarray) or (examples is not None and not isinstance(
                examples, pd.DataFrame)):
            truth = (evaluation.class_names[int(evaluation.y_true[row])]
                     if evaluation.task == "classification" else f"{evaluation.y_true[row]:.4g}")
            self._request("array", np.asarray(examples[row]),
                          f"Example {int(row) + 1} of the {evaluation.source} (it is {truth})")
        elif isinstance(examples, pd.DataFrame):
            record = examples.iloc[int(row)]
            if self.predictor.kind == "text":
                words = [str(record[c]) for c in self.predictor.pre.text_columns
                         if c in record and pd.notna(record[c])]
                self.text_edit.setPlainText(" ".join(words))
            else:
                self.fill_row(record)

    def _show(self, prediction: Prediction | None) -> None:
        self.prediction = prediction
        if prediction is None:
            self.answer.setText("")
            self.bars.set_probabilities([], "")
            self.model_view.clear()
            self.heat_view.clear()
            self.method_label.setText("")
            self.token_view.setText("")
            self.input_note.setText("")
            self._input = self.explanation = None
            self.confidence.hide()
            self.previewer.cancel()
            self.drop_zone.set_photo(None)
            return
        self.input_note.setText(self._note)
        self.answer.setText(prediction.text())  # "Not sure: ..." when too close to call
        if prediction.task == "classification":
            self.bars.set_probabilities(prediction.ranked(), prediction.label)
            self._show_confidence(prediction)
        else:
            self.bars.set_probabilities([], "")
            self.confidence.hide()
        self.predicted.emit(prediction)

    def _show_confidence(self, prediction: Prediction) -> None:
        """The answer's probability as a bar, amber when the answer is unsure."""
        value = dict(prediction.probabilities).get(prediction.label, prediction.value)
        self.confidence.setValue(round(100 * value))
        self.confidence.setFormat("Confidence %p%: not sure" if prediction.unsure else
                                  "Confidence %p%")
        # The chunk's colour only (a palette set here would lose to the application's style
        # sheet once a theme is applied; the style keeps drawing the bar in the theme).
        self.confidence.setStyleSheet(f"selection-background-color: {UNSURE_COLOUR};"
                                      if prediction.unsure else "")
        self.confidence.show()

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self._batch_error = False
        self._show(None)  # the answer shown was for an earlier input: it must not stay
        self.banner.show_message(message, "error")

    @Slot(str)
    def _on_batch_error(self, message: str) -> None:
        self.batch_button.setEnabled(True)
        self._batch_error = True
        self.banner.show_message(message, "error")

    # -- batch prediction -----------------------------------------------------------------------
    @Slot()
    def predict_file(self) -> None:
        """Pick a CSV file (or, for image models, a folder), then where to save the CSV."""
        if self.predictor is None:
            return
        if self.predictor.kind == "image":
            source = dialogs.open_folder(self, "Predict every image of a folder")
        else:
            source = dialogs.open_file(self, "Predict every row of a file",
                                       "Tables (*.csv *.tsv *.txt *.xlsx);;All files (*)")
        if not source:
            return
        default = str(Path(source).with_name(Path(source).stem + "_predictions.csv"))
        out = dialogs.save_file(self, "Save the predictions", "CSV files (*.csv)", default)
        if not out:
            return
        self.batch_button.setEnabled(False)
        self._batch_error = False
        self.banner.show_message(f"Predicting {Path(source).name} …", "info")
        self.batch.start(FunctionWorker(_predict_file, self.predictor, source, out))

    @Slot(object)
    def _on_batch_done(self, result) -> None:
        n, out = result
        self.batch_button.setEnabled(True)
        self.banner.show_message(f"Wrote {n:,} predictions to {out}.", "ok")

    def shutdown(self) -> None:
        for runner in (self.loader, self.runner, self.batch, self.previewer):
            runner.shutdown()


def _pixel_rows(p: Predictor, rows: pd.DataFrame) -> np.ndarray | None:
    """Pixel-column image rows as ``uint8`` ``(n, C, H, W)`` (for the canvas's framing)."""
    names = [e.name for e in p.pre.columns]
    if not set(names) <= set(rows.columns):
        return None
    values = rows[names].to_numpy(np.float64)
    top = values.max() or 1.0
    return np.clip(values / top * 255, 0, 255).astype(np.uint8).reshape(
        len(rows), *p.pre.input_shape)
