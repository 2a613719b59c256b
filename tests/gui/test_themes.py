"""Light and dark themes on every panel, HiDPI icons, tooltips for the ML words, panel state.

Qt warnings fail these tests (``qt_log_level_fail`` in pyproject.toml), so rendering every panel
in both themes also proves that no style sheet or paint emits one.
"""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QTabWidget, QWidget

from gui import theme
from gui.glossary import GLOSSARY, terms_in, visible_text
from gui.main_window import MainWindow

from .test_export_extras import _train_iris


def _luminance(colour: QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return (0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF())
            + 0.0722 * channel(colour.blueF()))


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _visit_every_panel(qtbot, window):
    """Show each step and each tab in it; yield the page after each."""
    for row in range(5):
        assert window.go_to(row), row
        page = window.pages.currentWidget()
        yield page
        for tabs in page.findChildren(QTabWidget):
            for i in range(tabs.count()):
                if tabs.isTabEnabled(i) and tabs.isVisible():
                    tabs.setCurrentIndex(i)
                    qtbot.wait(5)
                    yield page


def test_every_panel_renders_in_both_themes_readably(qtbot, window, user):
    import pyqtgraph as pg

    _train_iris(qtbot, window, epochs=3)
    try:
        for choice in ("dark", "light"):
            window.set_theme(choice)
            colours = theme.colors()
            background = window.palette().color(QPalette.ColorRole.Window)
            assert (background.lightness() < 100) == (choice == "dark")
            text = window.palette().color(QPalette.ColorRole.WindowText)
            assert contrast(text, background) > 7
            for page in _visit_every_panel(qtbot, window):
                assert not page.grab().isNull()
                for label in page.findChildren(QLabel):
                    if not label.isVisible() or not label.text():
                        continue
                    if label.property("muted") or label.property("problem"):
                        fg = label.palette().color(QPalette.ColorRole.WindowText)
                        assert contrast(fg, background) >= 3.0, (choice, label.text(),
                                                                 fg.name())
            plots = [w for w in window.findChildren(pg.PlotWidget)]
            assert plots
            for plot in plots:
                assert plot.backgroundBrush().color().name() == colours.plot_background
    finally:
        window.set_theme("system")


def test_the_theme_follows_the_system_unless_the_user_chose_one(qtbot, window, monkeypatch):
    assert window.theme_choice() == "system"
    with monkeypatch.context() as patch:
        patch.setattr(theme, "system_prefers_dark", lambda app=None: True)
        window._on_system_scheme_changed()  # what the desktop's switch triggers
        assert theme.colors() is theme.DARK
        window.set_theme("light")
        window._on_system_scheme_changed()
        assert theme.colors() is theme.LIGHT and window.theme_actions["light"].isChecked()
        second = MainWindow()
        qtbot.addWidget(second)
        assert second.theme_choice() == "light"  # remembered
        second.close()
        window.set_theme("system")
    window.apply_theme()


def test_icons_are_sharp_on_hidpi_screens(qtbot, window):
    from gui.icons import app_icon

    for icon in (app_icon(), window.step_list.item(0).icon()):
        assert not icon.isNull()
        for scale in (1.0, 2.0, 3.0):
            pixmap = icon.pixmap(QSize(24, 24), scale)  # what a 200% or 300% screen asks
            assert pixmap.width() == round(24 * scale) and pixmap.devicePixelRatio() == scale
    window.set_theme("dark")
    dark = window.step_list.item(0).icon().pixmap(QSize(24, 24), 1.0).toImage()
    window.set_theme("light")
    light = window.step_list.item(0).icon().pixmap(QSize(24, 24), 1.0).toImage()
    assert dark != light  # drawn in the theme's text colour
    window.set_theme("system")


def test_every_ml_word_on_screen_has_a_plain_tooltip(qtbot, window, user):
    _train_iris(qtbot, window, epochs=3)
    window.go_to(3)  # the evaluation fills in
    qtbot.wait(200)
    missing, seen = [], set()
    for every in (False, True):  # the Model page's Basic settings, then All settings
        window.model_page.show_all_settings(every)
        for page in _visit_every_panel(qtbot, window):
            for widget in page.findChildren(QWidget):
                text = visible_text(widget)
                if not widget.isVisible() or not text or len(text) > 80:
                    continue
                terms = terms_in(text)
                seen.update(terms)
                if terms and not widget.toolTip():
                    missing.append(text)
    assert not missing, sorted(set(missing))
    # The words the issue names are on screen, and explained.
    assert {"Epoch", "Batch size", "Learning rate", "Dropout", "F1 score"} <= seen
    assert set(seen) <= set(GLOSSARY)


def test_terms_are_found_as_words():
    assert terms_in("Epochs:") == ["Epoch"]
    assert "Learning rate" in terms_in("Learning rate (step size)")
    assert terms_in("F1 (macro)") == ["F1 score"]
    assert terms_in("Epochal") == ["Epoch"]  # a word start is enough: plurals match
    assert terms_in("Open file…") == []


def test_splitters_and_tabs_come_back_as_they_were(qtbot, user):
    first = MainWindow()
    qtbot.addWidget(first)
    first.resize(1300, 850)
    first.show()
    qtbot.waitExposed(first)
    first.model_page.view_tabs.setCurrentIndex(first.model_page.view_tabs.count() - 1)
    first.data_page.splitter.setSizes([420, 860])
    sizes = first.data_page.splitter.sizes()
    assert first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    second.resize(1300, 850)
    second.show()
    qtbot.waitExposed(second)
    assert (second.model_page.view_tabs.currentIndex()
            == second.model_page.view_tabs.count() - 1)
    assert abs(second.data_page.splitter.sizes()[0] - sizes[0]) <= 2
    second.close()
    # A value that no longer fits (an older layout) is ignored, not an error.
    second.settings.setValue("panels/model/viewTabs", 99)
    second.settings.setValue("panels/train/splitter", "garbage")
    third = MainWindow()
    qtbot.addWidget(third)
    third.close()
