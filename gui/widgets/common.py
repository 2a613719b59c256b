"""Small building blocks shared by the pages."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

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
        self.value_label = QLabel("-")
        font = self.value_label.font()
        font.setPointSize(24)
        font.setBold(True)
        self.value_label.setFont(font)
        self.caption_label = QLabel(caption)
        mute(self.caption_label).setStyleSheet("font-size: 11pt;")
        for w in (self.value_label, self.caption_label):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(w)

    def set_value(self, text: str, caption: str | None = None) -> None:
        self.value_label.setText(text)
        if caption is not None:
            self.caption_label.setText(caption)


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
