"""Light and dark themes that follow the system (or the user's choice in View → Theme).

The palette does most of the work: Fusion draws every standard widget from it. What the palette
cannot reach is styled here once, by role, instead of with colours scattered over the pages:

- labels that are hints or captions set ``muted=True`` (:func:`mute`), problems ``problem=True``;
  the application style sheet colours them per theme;
- pyqtgraph plots get the theme's background, axis, title and legend colours, also when the theme
  changes while they are on screen;
- painted widgets ask :func:`colors` for their text colour.

Coloured banners (error, warning, ok) keep their own light backgrounds with dark text in both
themes: they are meant to stand out, and they stay readable either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

CHOICES = ("system", "light", "dark")


@dataclass(frozen=True)
class Colors:
    """The colours of one theme that code (not the palette) needs."""

    name: str
    window: str
    base: str
    text: str
    muted: str
    problem: str
    plot_background: str
    plot_foreground: str


LIGHT = Colors("light", window="#efefef", base="#ffffff", text="#1f1f1f", muted="#555555",
               problem="#b3261e", plot_background="#ffffff", plot_foreground="#333333")
DARK = Colors("dark", window="#2b2b2d", base="#1f1f21", text="#e8e8e8", muted="#a9a9ad",
              problem="#ff8a80", plot_background="#1f1f21", plot_foreground="#d0d0d0")

_current = LIGHT


def colors() -> Colors:
    """The colours of the theme in use."""
    return _current


def system_prefers_dark(app: QApplication | None = None) -> bool:
    """Whether the desktop asks for dark windows (False when it does not say)."""
    app = app or QApplication.instance()
    if app is None:
        return False
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def resolve(choice: str, app: QApplication | None = None) -> Colors:
    """``"system"`` | ``"light"`` | ``"dark"`` → the theme to use."""
    if choice == "dark" or (choice == "system" and system_prefers_dark(app)):
        return DARK
    return LIGHT


def palette_for(theme: Colors) -> QPalette:
    """A Fusion palette for *theme* (every colour group, disabled text included)."""
    if theme is LIGHT:
        from PySide6.QtWidgets import QStyleFactory

        return QStyleFactory.create("Fusion").standardPalette()
    p = QPalette()
    role = QPalette.ColorRole
    sets = {role.Window: theme.window, role.WindowText: theme.text, role.Base: theme.base,
            role.AlternateBase: "#2f2f33", role.ToolTipBase: "#ffffdc",
            role.ToolTipText: "#1f1f1f", role.PlaceholderText: "#8c8c90", role.Text: theme.text,
            role.Button: "#3a3a3d", role.ButtonText: theme.text, role.BrightText: "#ff6b6b",
            role.Light: "#4a4a4e", role.Midlight: "#404044", role.Mid: "#2f2f32",
            role.Dark: "#18181a", role.Shadow: "#000000", role.Highlight: "#3d7dd8",
            role.HighlightedText: "#ffffff", role.Link: "#8ab4f8", role.LinkVisited: "#c58af9"}
    for r, colour in sets.items():
        p.setColor(r, QColor(colour))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(disabled, r, QColor("#7a7a7e"))
    p.setColor(disabled, role.Button, QColor("#333336"))
    p.setColor(disabled, role.Highlight, QColor("#505054"))
    return p


def style_sheet(theme: Colors) -> str:
    """The application style sheet: colours by role (see the module docstring)."""
    return (f'QLabel[muted="true"] {{ color: {theme.muted}; }}\n'
            f'QLabel[problem="true"] {{ color: {theme.problem}; }}\n')


def mute(widget: QWidget) -> QWidget:
    """Show *widget*'s text as a hint or caption (greyer, in either theme)."""
    widget.setProperty("muted", True)
    return widget


def mark_problem(widget: QWidget, problem: bool = True) -> QWidget:
    """Show *widget*'s text as a problem (red, readable in either theme)."""
    widget.setProperty("problem", bool(problem))
    widget.style().unpolish(widget)  # a dynamic property: restyle now
    widget.style().polish(widget)
    return widget


def apply(choice: str = "system", app: QApplication | None = None) -> Colors:
    """Use the theme for *choice* everywhere: palette, style sheet, plots (new and open)."""
    global _current
    app = app or QApplication.instance()
    theme = resolve(choice, app)
    _current = theme
    app.setPalette(palette_for(theme))
    app.setStyleSheet(style_sheet(theme))
    _apply_to_plots(app, theme)
    return theme


def _apply_to_plots(app: QApplication, theme: Colors) -> None:
    import sys

    if "pyqtgraph" not in sys.modules:  # not loaded yet: configure it when it is
        return
    import pyqtgraph as pg

    pg.setConfigOptions(background=theme.plot_background, foreground=theme.plot_foreground)
    for widget in app.allWidgets():
        if isinstance(widget, (pg.PlotWidget, pg.GraphicsLayoutWidget)):
            widget.setBackground(theme.plot_background)
            _recolour_items(widget.scene().items(), theme)


def _recolour_items(items, theme: Colors) -> None:
    """Axes, titles and legend entries of open plots in *theme*'s foreground.

    pyqtgraph bakes the foreground colour into a title's or legend entry's text when it is set,
    so an open plot kept the old theme's text until it is drawn again; labels given their own
    colour keep it.
    """
    import pyqtgraph as pg

    for item in items:
        if isinstance(item, pg.AxisItem):
            item.setPen(theme.plot_foreground)
            item.setTextPen(theme.plot_foreground)
        elif (isinstance(item, pg.LabelItem) and item.opts.get("color") is None
              and item.text and item.isVisible()):  # a hidden (empty) title stays hidden
            item.setText(item.text)  # re-reads the foreground colour just configured
