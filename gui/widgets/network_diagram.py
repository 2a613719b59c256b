"""A diagram of the network: one box per layer with its output shape, readable on a projector,
and saved as PNG or SVG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
)
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView

from .layer_editor import count_text, describe_layer, layer_title, shape_text

BOX_W, BOX_H, GAP = 380.0, 58.0, 26.0
#: Box colours by family (fill, border): the eye finds convolutions, dense layers, ...
_FAMILIES = {
    "conv": ("#e3f2fd", "#1565c0"), "pool": ("#ede7f6", "#5e35b1"),
    "norm": ("#f1f8e9", "#558b2f"), "dense": ("#fff3e0", "#ef6c00"),
    "seq": ("#e0f7fa", "#00838f"), "act": ("#fafafa", "#757575"),
    "io": ("#eceff1", "#37474f"), "error": ("#fdecea", "#c62828"),
}


def _family(kind: str) -> str:
    if "conv" in kind or kind == "residual_block":
        return "conv"
    if "pool" in kind:
        return "pool"
    if "norm" in kind:
        return "norm"
    if kind in ("linear", "embed_columns", "dropout", "flatten"):
        return "dense"
    if kind in ("embedding", "embedding_bag", "lstm", "gru", "transformer_encoder",
                "pretrained"):
        return "seq"
    return "act"


class NetworkDiagram(QGraphicsView):
    """Boxes from input to output, each with the layer's name, settings and output shape."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("networkDiagram")
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setBackgroundBrush(QBrush(QColor("white")))
        self.boxes: list[tuple[str, str, bool]] = []  # (title, detail, is_error) per box

    def set_network(self, input_shape: Sequence[int] | None, layers: Sequence[dict],
                    checks: Sequence, n_outputs: int = 0, task: str = "") -> None:
        """Draw *layers* (with their :class:`~ml.models.spec.LayerCheck` *checks*)."""
        scene = self.scene()
        scene.clear()
        self.boxes = []
        boxes = [("Input", shape_text(input_shape), "io", "")]
        for i, layer in enumerate(layers):
            check = checks[i] if i < len(checks) else None
            kind = layer.get("type", "")
            title = f"{i + 1}. {layer_title(layer)}"
            settings = describe_layer(layer)
            error = getattr(check, "error", None)
            if error:
                detail = error if len(error) < 70 else error[:67] + "..."
                boxes.append((title, detail, "error", error))
                continue
            shape = shape_text(getattr(check, "output_shape", None))
            cost = f" · {count_text(check.params)} params" if check and check.params else ""
            boxes.append((title + (f"  ({settings})" if settings else ""), f"→ {shape}{cost}",
                          _family(kind), ""))
        if task:
            what = "class scores" if task == "classification" else "value(s)"
            boxes.append(("Output", f"{n_outputs} {what}", "io", ""))
        title_font = QFont(self.font())
        title_font.setPointSizeF(max(11.0, title_font.pointSizeF() * 1.15))
        title_font.setBold(True)
        detail_font = QFont(self.font())
        detail_font.setPointSizeF(max(10.0, detail_font.pointSizeF()))
        y = 0.0
        for n, (title, detail, family, tip) in enumerate(boxes):
            fill, border = _FAMILIES[family]
            path = QPainterPath()
            path.addRoundedRect(QRectF(0, y, BOX_W, BOX_H), 8, 8)
            box = scene.addPath(path, QPen(QColor(border), 2), QBrush(QColor(fill)))
            if tip:
                box.setToolTip(tip)
            # A long title (a backbone's name, many settings) is cut to the box, whole in
            # the tooltip, rather than running past its edge.
            shown = QFontMetrics(title_font).elidedText(title, Qt.TextElideMode.ElideRight,
                                                        int(BOX_W - 24))
            t = scene.addSimpleText(shown, title_font)
            t.setPos(12, y + 6)
            if shown != title:
                box.setToolTip(tip or title)
            d = scene.addSimpleText(detail, detail_font)
            d.setBrush(QBrush(QColor("#b71c1c" if family == "error" else "#263238")))
            d.setPos(12, y + 8 + t.boundingRect().height())
            self.boxes.append((title, detail, family == "error"))
            if n + 1 < len(boxes):  # an arrow down to the next box
                x, y0, y1 = BOX_W / 2, y + BOX_H, y + BOX_H + GAP
                pen = QPen(QColor("#546e7a"), 2)
                scene.addLine(x, y0, x, y1 - 2, pen)
                head = QPainterPath(QPointF(x, y1))
                head.lineTo(x - 6, y1 - 9)
                head.lineTo(x + 6, y1 - 9)
                head.closeSubpath()
                scene.addPath(head, pen, QBrush(QColor("#546e7a")))
            y += BOX_H + GAP
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-16, -16, 16, 16))

    def save_image(self, path: str | Path) -> Path:
        """Write the diagram as SVG (by the suffix ``.svg``) or PNG (anything else, at twice
        the screen size so it stays sharp on a slide). Written atomically."""
        from ml.system.fileio import atomic_write_bytes

        path = Path(path)
        rect = self.scene().sceneRect()
        if path.suffix.lower() == ".svg":
            from PySide6.QtCore import QBuffer, QByteArray, QIODevice
            from PySide6.QtSvg import QSvgGenerator

            data = QByteArray()
            buffer = QBuffer(data)
            buffer.open(QIODevice.OpenModeFlag.WriteOnly)
            generator = QSvgGenerator()
            generator.setOutputDevice(buffer)
            generator.setSize(QSize(int(rect.width()), int(rect.height())))
            generator.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
            generator.setTitle("TrainDesk network")
            painter = QPainter(generator)
            self.scene().render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
            painter.end()
            buffer.close()
            atomic_write_bytes(path, bytes(data.data()))
            return path
        scale = 2
        image = QImage(int(rect.width() * scale), int(rect.height() * scale),
                       QImage.Format.Format_ARGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        painter.setRenderHints(QPainter.RenderHint.Antialiasing
                               | QPainter.RenderHint.TextAntialiasing)
        self.scene().render(painter, QRectF(0, 0, image.width(), image.height()), rect)
        painter.end()
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice

        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        buffer.close()
        atomic_write_bytes(path, bytes(data.data()))
        return path
