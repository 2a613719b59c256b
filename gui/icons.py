"""Icons drawn from SVG, sharp at any screen scale (HiDPI) and in the theme's text colour."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from ml.system.resources import resource_path

# 24x24 line icons for the five steps; {c} is the stroke colour.
_STEP_SVGS = {
    "Data": ('<rect x="3" y="4" width="18" height="16" rx="2"/>'
             '<path d="M3 9.5h18M3 15h18M9.5 4v16"/>'),
    "Model": ('<circle cx="5" cy="6" r="2.2"/><circle cx="5" cy="18" r="2.2"/>'
              '<circle cx="12" cy="12" r="2.2"/><circle cx="19" cy="12" r="2.2"/>'
              '<path d="M7 7l3 3.5M7 17l3-3.5M14.2 12h2.6"/>'),
    "Train": '<path d="M3 20V4M3 20h18"/><path d="M5 6c3 9 6 11 15 12"/>',
    "Evaluate": '<circle cx="12" cy="12" r="9"/><path d="M7.5 12.5l3 3 6-7"/>',
    "Export": ('<path d="M4 14v5a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-5"/>'
               '<path d="M12 3v12M7.5 7.5L12 3l4.5 4.5"/>'),
}
#: The pixel sizes and screen scales an icon is rendered for.
SIZES = (16, 20, 24, 32, 48)
SCALES = (1.0, 1.5, 2.0, 3.0)


def svg_icon(svg: str) -> QIcon:
    """A QIcon with pixmaps rendered from *svg* for every size and screen scale."""
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    icon = QIcon()
    for size in SIZES:
        for scale in SCALES:
            side = round(size * scale)
            pixmap = QPixmap(side, side)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter, QRectF(0, 0, side, side))
            painter.end()
            pixmap.setDevicePixelRatio(scale)
            icon.addPixmap(pixmap)
    return icon


def step_icon(step: str, colour: QColor | str) -> QIcon:
    """The line icon for one of the five steps, stroked in *colour*."""
    colour = QColor(colour).name()
    body = _STEP_SVGS[step]
    return svg_icon(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
                    f'<g fill="none" stroke="{colour}" stroke-width="1.8" '
                    f'stroke-linecap="round" stroke-linejoin="round">{body}</g></svg>')


def app_icon() -> QIcon:
    """TrainDesk's icon (window, task bar, dock), from the shipped SVG."""
    path = resource_path("icons", "traindesk.svg")
    return svg_icon(path.read_text(encoding="utf-8"))
