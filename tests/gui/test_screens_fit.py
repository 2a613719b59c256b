"""Every screen fits and is readable (issue 19, findings 7-9): the pages lay out without
cutting text from the minimum window size up, the dark theme keeps findings, plot text and the
confusion matrix readable (also after a live switch), and every action has a keyboard path."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QApplication, QLabel, QWidget

from gui import theme
from gui.widgets.plots import _readable_on
from ml.data.health import Finding

from .conftest import load_sample
from .test_export_extras import _train_iris
from .test_themes import contrast

SIZES = ((1024, 680), (1280, 720))  # the window's minimum, and a projector


def _clipped(page: QWidget) -> list[tuple]:
    """Visible labels and buttons given less room than their text needs."""
    out = []
    for w in page.findChildren(QWidget):
        if not w.isVisible() or not isinstance(w, (QLabel, QAbstractButton)):
            continue
        if isinstance(w, QLabel) and not w.text():
            continue
        if w.isWindow() or w.objectName() in _ELIDED_BY_DESIGN:
            continue
        hint = w.minimumSizeHint()
        if isinstance(w, QLabel) and w.wordWrap():
            need = (0, w.heightForWidth(w.width()))
        else:
            need = (hint.width(), hint.height())
        if w.width() + 1 < need[0] or w.height() + 1 < need[1]:
            out.append((type(w).__name__, w.text()[:40], (w.width(), w.height()), need))
    return out


_ELIDED_BY_DESIGN: set[str] = set()


def test_model_evaluate_and_export_pages_fit_at_the_minimum_size_and_a_projector(
        qtbot, window, user):
    _train_iris(qtbot, window, epochs=2)
    window.go_to(3)
    qtbot.waitUntil(lambda: window.evaluate_page.evaluation is not None, timeout=30_000)
    for size in SIZES:
        window.resize(*size)
        for row in range(5):
            assert window.go_to(row)
            qtbot.wait(50)
            found = _clipped(window.pages.currentWidget())
            assert not found, (size, row, found)
            if row == 2:  # the live plots stack without overlapping
                curves = window.train_page.curves
                assert (curves.loss_plot.geometry().bottom()
                        < curves.lr_plot.geometry().top()), size
        matrix = window.evaluate_page.matrix  # laid out whole (its tab scrolls if need be)
        assert matrix.height() >= matrix.minimumHeight(), (size, matrix.height())
        cards = window.model_page.cards_row
        assert cards.columns in (2, 4)
        for card in cards.cards:  # every digit of every headline number is on screen
            label = card.value_label
            assert label.width() >= label.fontMetrics().horizontalAdvance(label.text())
        export = window.export_page
        buttons = list(export.format_buttons.values())
        hints = [w for w in buttons[0].parent().findChildren(QLabel) if w.isVisible()]
        for button, hint, nxt in zip(buttons, hints, buttons[1:]):
            assert hint.geometry().top() >= button.geometry().bottom() - 1
            assert hint.geometry().bottom() <= nxt.geometry().top() + 1, (size, hint.text())


def test_per_class_table_gives_long_class_names_the_room(qtbot, window, user):
    page = window.evaluate_page
    window.resize(1280, 720)
    name = "Iris versicolor (the long name)"
    page.class_model.set_rows([[name, 0.9, 0.8, 0.85, 12], ["b", 1.0, 1.0, 1.0, 3]])
    page.class_view.show()
    page.class_view.resize(420, 200)
    view = page.class_view
    needed = view.fontMetrics().horizontalAdvance(name)
    header = view.horizontalHeader()
    assert header.sectionResizeMode(0) == header.ResizeMode.Stretch
    assert all(header.sectionResizeMode(c) == header.ResizeMode.ResizeToContents
               for c in range(1, 5))
    qtbot.waitUntil(lambda: view.columnWidth(0) > needed, timeout=3000)
    assert page.class_model.data(page.class_model.index(0, 0), Qt.ItemDataRole.ToolTipRole) == name


def test_dark_theme_health_findings_are_readable(qtbot, window):
    window.set_theme("dark")
    try:
        view = window.data_page.health_view
        view.set_findings([Finding("missing", "warning", 3, "3 rows have missing values: fill "
                                   "them or drop them."),
                           Finding("id_like", "info", 1, "Column id looks like an identifier.")])
        qtbot.wait(10)
        from gui.widgets.health import _COLOURS

        for finding in view.findings:
            row = view.findChild(QWidget, f"finding_{finding.key}")
            background = QColor(_COLOURS[finding.severity][0])
            text = [lab for lab in row.findChildren(QLabel) if lab.text() == finding.message][0]
            text.ensurePolished()
            fg = text.palette().color(text.foregroundRole())
            assert contrast(fg, background) >= 4.5, (finding.key, fg.name())
    finally:
        window.set_theme("system")


def _html(label: pg.LabelItem) -> str:
    return label.item.toHtml().lower()


def test_a_live_theme_switch_recolours_plot_titles_legends_and_the_matrix(qtbot, window, user):
    window.set_theme("light")
    _train_iris(qtbot, window, epochs=2)
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    titled = [w for w in window.findChildren(pg.PlotWidget) if w.getPlotItem().titleLabel.text]
    assert titled
    try:
        for choice in ("dark", "light", "dark"):
            window.set_theme(choice)
            fg = theme.colors().plot_foreground.lower().lstrip("#")
            note = window.model_page.schedule_plot.note  # the schedule's caption too
            assert note.color.name() == QColor(theme.colors().muted).name(), choice
            for widget in titled:
                assert fg in _html(widget.getPlotItem().titleLabel), (choice, widget)
                legend = widget.getPlotItem().legend
                for _sample, label in (legend.items if legend is not None else []):
                    assert fg in _html(label), (choice, label.text)
            matrix = page.matrix
            matrix.set_matrix(np.array([[5, 0], [1, 4]]), ["a", "b"])
            matrix.resize(400, 360)
            image = matrix.grab().toImage()
            area, cell = matrix._geometry()
            empty = image.pixelColor(int(area.left() + 1.5 * cell), int(area.top() + 0.5 * cell))
            base = matrix.palette().base().color()
            assert (empty.lightness() < 100) == (choice == "dark"), (choice, empty.name())
            assert abs(empty.lightness() - base.lightness()) < 20
            for i in range(2):
                for j in range(2):
                    fill = matrix.cell_color(i, j, matrix.matrix[i, j] / matrix.matrix[i].sum())
                    assert contrast(_readable_on(fill), fill) >= 4.5
    finally:
        window.set_theme("system")


def test_tab_leaves_every_table_in_one_press(qtbot, window):
    load_sample(qtbot, window, "iris")
    page = window.data_page
    page.tabs.setCurrentIndex(page.preview_tab)
    qtbot.waitUntil(lambda: page.preview_model.rowCount() > 0)
    page.preview.setFocus()
    page.preview.setCurrentIndex(page.preview_model.index(0, 0))
    qtbot.waitUntil(page.preview.hasFocus)
    qtbot.keyClick(page.preview, Qt.Key.Key_Tab)
    assert not page.preview.hasFocus()
    assert QApplication.focusWidget() is not None
    for view in window.findChildren(QAbstractItemView):
        if hasattr(view, "tabKeyNavigation"):
            assert not view.tabKeyNavigation(), view.objectName()


def test_the_confusion_matrix_opens_a_cells_examples_from_the_keyboard(qtbot, window, user):
    from gui.widgets.examples import ExamplesDialog

    _train_iris(qtbot, window, epochs=2)
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    matrix = page.matrix
    assert matrix.focusPolicy() & Qt.FocusPolicy.TabFocus
    matrix.setFocus()
    qtbot.waitUntil(matrix.hasFocus)
    qtbot.keyClick(matrix, Qt.Key.Key_Right)
    qtbot.keyClick(matrix, Qt.Key.Key_Down)
    qtbot.keyClick(matrix, Qt.Key.Key_Down)
    assert matrix.current == (2, 1)
    with qtbot.waitSignal(matrix.cell_clicked) as signal:
        qtbot.keyClick(matrix, Qt.Key.Key_Return)
    assert signal.args == [2, 1]
    dialogs = [w for w in QApplication.topLevelWidgets()
               if isinstance(w, ExamplesDialog) and w.isVisible()]
    assert dialogs
    for dialog in dialogs:
        dialog.close()


def test_the_welcome_dialog_opens_a_folder_and_the_empty_data_page_invites_a_drop(
        qtbot, window, user, tmp_path):
    page = window.data_page
    assert page.preview_stack.currentWidget() is page.drop_hint
    assert page.drop_hint.isVisible() and "Drop" in page.drop_hint.text()
    dialog = window.show_welcome()
    folder = tmp_path / "nowhere"
    user.open_paths.append(str(folder))
    opened = []
    window.data_page.load_source = opened.append
    qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    assert opened == [str(folder)]
