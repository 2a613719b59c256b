"""Small building blocks shared by the pages."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from ..theme import mute


def heading(text: str, size: int = 16) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSize(size)
    font.setBold(True)
    label.setFont(font)
    return label


class MessageBanner(QLabel):
    """An inline message: ``error`` (red), ``warning`` (amber) or ``ok`` (green)."""

    STYLES = {
        "error": "background:#fdecea; color:#8a1c12; border:1px solid #f5c2bd;",
        "warning": "background:#fff8e1; color:#6d4c00; border:1px solid #ffe08a;",
        "ok": "background:#e8f5e9; color:#1b5e20; border:1px solid #b7dfb9;",
        "info": "background:#e8f0fe; color:#174ea6; border:1px solid #c6d7fb;",
    }

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.kind = ""
        self.hide()

    def show_message(self, text: str, kind: str = "info") -> None:
        if not text:
            self.clear_message()
            return
        self.kind = kind
        self.setText(text)
        self.setStyleSheet(f"QLabel {{{self.STYLES[kind]} border-radius:4px; padding:6px 8px;}}")
        self.show()

    def clear_message(self) -> None:
        self.kind = ""
        self.setText("")
        self.hide()


class MetricCard(QFrame):
    """A big number with a caption, for a screen people look at from across a room."""

    def __init__(self, caption: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("metricCard")
        self.setStyleSheet("QFrame#metricCard { border:1px solid #d0d7de; border-radius:6px; "
                           "background: palette(base); }")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 8, 14, 8)
        self.value_label = FitLabel("-", points=24, smallest=14)
        self.caption_label = QLabel(caption)
        # A narrow card (a projector's 1280 pixels) wraps its caption instead of cutting it.
        self.caption_label.setWordWrap(True)
        mute(self.caption_label).setStyleSheet("font-size: 11pt;")
        for w in (self.value_label, self.caption_label):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(w)

    def set_value(self, text: str, caption: str | None = None) -> None:
        self.value_label.setText(text)
        if caption is not None:
            self.caption_label.setText(caption)


class FitLabel(QLabel):
    """One line of big bold text that takes a smaller font where its room is narrower.

    Its size hint is the text at *points*; its minimum, the text at *smallest*, so a layout
    shrinks it that far without cutting a digit off.
    """

    def __init__(self, text: str = "", points: int = 24, smallest: int = 14,
                 parent: QWidget | None = None):
        super().__init__(text, parent)
        self._points, self._smallest = points, smallest
        self.setFont(self._font(points))

    def _font(self, points: int) -> QFont:
        font = QFont(self.font())
        font.setPointSize(points)
        font.setBold(True)
        return font

    def _size_at(self, points: int) -> QSize:
        metrics = QFontMetrics(self._font(points))
        margin = 2 * (self.margin() + self.contentsMargins().left())
        return QSize(metrics.horizontalAdvance(self.text()) + margin + 4, metrics.height() + 2)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return self._size_at(self._points)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(self._size_at(self._smallest).width(), self._size_at(self._points).height())

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        super().setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        points = self._points
        while points > self._smallest and self._size_at(points).width() > self.width():
            points -= 1
        if self.font().pointSize() != points:
            self.setFont(self._font(points))


class CardRow(QWidget):
    """Cards side by side while they fit, else in two rows, else one above the other.

    A breakpoint layout: the columns follow the width the row is given, so the cards are never
    squeezed below their minimum (which cut their text off at 1280 pixels).
    """

    def __init__(self, cards: Sequence[QWidget], parent: QWidget | None = None):
        super().__init__(parent)
        self.cards = list(cards)
        self.columns = 0
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._place(len(self.cards))

    def _widest(self, minimum: bool) -> int:
        hints = (c.minimumSizeHint() if minimum else c.sizeHint() for c in self.cards)
        return max((h.width() for h in hints), default=0) + self._grid.horizontalSpacing()

    def columns_for(self, width: int) -> int:
        """How many cards fit side by side in *width* pixels: all (their numbers in a smaller
        font if need be, which costs less height than a second row), half, or one."""
        n = len(self.cards)
        if n * self._widest(minimum=True) <= width:
            return n
        half = max(1, -(-n // 2))
        return half if half * self._widest(minimum=True) <= width else 1

    def _place(self, columns: int) -> None:
        self.columns = columns
        for card in self.cards:
            self._grid.removeWidget(card)
        for i, card in enumerate(self.cards):
            self._grid.addWidget(card, i // columns, i % columns)
        for c in range(len(self.cards)):
            self._grid.setColumnStretch(c, 1 if c < columns else 0)
        # The grid's minimum follows the columns now; the row's own minimum stays one card's
        # width, so a narrower window reflows the cards instead of cutting them.
        self.setMinimumWidth(self._widest(minimum=True))

    def _reflow(self) -> None:
        columns = self.columns_for(self.width())
        if columns != self.columns:
            self._place(columns)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._reflow()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # a card's text (and width) changed
            self._reflow()
        return super().event(event)


def format_duration(seconds: float, *, clock: bool = False) -> str:
    """A time span in words (``"250 ms"``, ``"4.5 s"``, ``"2.5 min"``, ``"1.5 h"``).

    With *clock*, as a ticking clock (``"01:05"``, ``"1:02:03"``) for the elapsed time and ETA
    of a live run. A span not known (NaN or infinite) is ``"--:--"`` on the clock, else ``""``.
    """
    if not math.isfinite(seconds):
        return "--:--" if clock else ""
    if clock:
        h, rest = divmod(int(round(seconds)), 3600)
        m, s = divmod(rest, 60)
        return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_scaled(n: float, units: tuple[str, ...], sep: str = "") -> str:
    """``1234567`` -> ``"1.2M"``: thousands steps, one decimal after the first unit."""
    for unit in units:
        if n < 1000 or unit == units[-1]:
            return f"{n:.0f}{sep}{unit}" if unit == units[0] else f"{n:.1f}{sep}{unit}"
        n /= 1000
    raise AssertionError("unreachable")


def format_bytes(n: float) -> str:
    return format_scaled(n, ("B", "KB", "MB", "GB"), " ")


def format_count(n: float) -> str:
    return format_scaled(n, ("", "K", "M", "G"))
