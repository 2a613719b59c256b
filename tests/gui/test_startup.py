"""Start-up (fast, without a display), the first-run welcome and tour, the Training shortcuts, and
the Details of an error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from shiboken6 import isValid

from gui import dialogs
from gui.main_window import MainWindow
from ml.errors import DataError, details_for

from .conftest import load_sample

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=180)


def test_the_window_is_shown_before_torch_pandas_and_pyqtgraph_are_imported():
    out = _python("""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from gui.main_window import MainWindow
        w = MainWindow(deferred=True)
        w.show()
        heavy = [m for m in ("torch", "pandas", "pyqtgraph", "sklearn", "onnx") if m in sys.modules]
        print("heavy before:", heavy)
        assert not heavy, heavy
        assert w.pages.currentWidget() is w.startup_page and not w.step_list.isEnabled()
        assert not w.start_action.isEnabled() and not w.open_action.isEnabled()
        w.ready.connect(app.quit)
        w.start_loading()
        app.exec()
        # the five steps, and the five of a language-model project
        assert w.is_ready and "torch" in sys.modules and w.pages.count() == 10
        assert w.pages.currentWidget() is w.data_page and w.step_list.isEnabled()
        assert w.open_action.isEnabled()
        print("ok")
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ok" in out.stdout


def test_main_starts_without_a_display_and_becomes_ready(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TRAINDESK_STARTUP_PROBE="1",
               TRAINDESK_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    marks = dict(line.split()[1:] for line in out.stdout.splitlines()
                 if line.startswith("startup-probe"))
    assert float(marks["painted"]) < float(marks["ready"])
    assert "Traceback" not in out.stderr


def test_without_any_display_main_says_how_to_run_headless(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    if sys.platform.startswith("linux"):
        assert out.returncode == 0 and "headless" in out.stdout


def test_the_starting_page_shows_each_step_in_full(qtbot):
    win = MainWindow(deferred=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    page = win.startup_page
    page.show_step("Loading the data tools …")  # longer than "Starting …"
    label = page.text
    assert label.width() >= label.fontMetrics().horizontalAdvance(label.text())
    win.close()


def test_closing_while_starting_is_fine(qtbot):
    win = MainWindow(deferred=True)
    qtbot.addWidget(win)
    win.show()
    assert not win.is_ready
    # dropping is refused until the pages exist (see test_drop)
    assert win.close()


# -- welcome and tour -----------------------------------------------------------------------------
def test_the_first_start_welcomes_and_a_sample_opens_from_it(qtbot, window, user):
    window.after_start([])
    dialog = window._welcome
    assert dialog.isVisible() and not dialog.show_check.isChecked()
    assert dialog.sample_combo.count() >= 3
    index = dialog.sample_combo.findData("sample:iris")
    dialog.sample_combo.setCurrentIndex(index)
    qtbot.mouseClick(dialog.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state.dataset is not None
                    and window.state.dataset.source == "sample:iris", timeout=20_000)
    qtbot.waitUntil(lambda: not isValid(dialog))  # closed and gone
    # Not again at the next start, unless the user asks for it.
    window.after_start([])
    assert window._welcome is dialog
    shown = window.show_welcome()
    shown.show_check.setChecked(True)
    shown.reject()
    window.after_start([])
    assert window._welcome is not shown and window._welcome.isVisible()
    assert window._welcome.show_check.isChecked()
    window._welcome.reject()


def test_welcome_open_a_file_opens_data_or_a_project(qtbot, window, user, tmp_path):
    csv = tmp_path / "tiny.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(40)))
    user.open_paths.append(str(csv))
    dialog = window.show_welcome()
    qtbot.mouseClick(dialog.file_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state.dataset is not None, timeout=20_000)
    assert window.state.dataset.name == "tiny.csv" or "tiny" in window.state.dataset.name


def test_the_tour_walks_the_five_steps_in_thirty_seconds(qtbot, window, monkeypatch):
    from gui.widgets import welcome

    assert welcome.TOUR_STEP_MS * 5 == 30_000
    monkeypatch.setattr(welcome, "TOUR_STEP_MS", 40)
    load_sample(qtbot, window, "iris")  # Data and Model are open, the rest is not yet
    tour = window.start_tour()
    assert tour.isVisible() and tour.heading.text().endswith("Data")
    assert window.step_list.item(0).background().style() != Qt.BrushStyle.NoBrush
    tour.go(1)
    assert window.step_list.currentRow() == 1  # an open step is shown
    assert window.step_list.item(0).background().style() == Qt.BrushStyle.NoBrush
    tour.go(3)  # Evaluate is not open: only marked in the list
    assert window.step_list.currentRow() == 1 and "accuracy" in tour.text.text()
    tour.go(0)
    tour.timer.setInterval(40)
    seen = set()
    tour.timer.timeout.connect(lambda: seen.add(tour.index))
    qtbot.waitUntil(lambda: not isValid(tour) or not tour.isVisible(), timeout=5000)
    assert seen >= {1, 2, 3, 4}
    assert all(window.step_list.item(i).background().style() == Qt.BrushStyle.NoBrush
               for i in range(5))


# -- Training shortcuts ---------------------------------------------------------------------------
def test_start_pause_and_stop_have_window_wide_shortcuts(qtbot, window):
    shortcuts = {a.text(): a.shortcut().toString() for a in window.training_menu.actions()
                 if not a.shortcut().isEmpty()}
    assert shortcuts == {"&Start training": "Ctrl+Return", "&Pause / continue": "Ctrl+P",
                         "S&top": "Ctrl+."}
    # The Train page's button has no shortcut of its own (two would make both ambiguous).
    assert window.train_page.start_button.shortcut().isEmpty()
    # No duplicate shortcut anywhere in the menus.
    keys = [a.shortcut().toString() for m in window.menuBar().findChildren(type(window.menuBar()
            .actions()[0].menu())) for a in m.actions() if not a.shortcut().isEmpty()]
    assert len(keys) == len(set(keys)), keys


def test_ctrl_enter_starts_from_any_step_and_ctrl_p_ctrl_dot_pause_and_stop(qtbot, window):
    load_sample(qtbot, window, "digits")
    window.model_page.epochs_spin.setValue(500)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    assert window.step_list.currentRow() == 0
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(window.train_page.is_training, timeout=10_000)
    assert window.step_list.currentRow() == 2
    qtbot.waitUntil(window.train_page.pause_button.isEnabled, timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert window.train_page.pause_button.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert not window.train_page.pause_button.isChecked()
    curves = window.train_page.curves
    qtbot.waitUntil(lambda: len(curves.curve_data("train_loss")[0]) >= 1, timeout=30_000)
    window.go_to(0)  # the shortcut works from any step
    qtbot.keyClick(window, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.train_page.is_training(), timeout=30_000)
    assert window.state.project.runs[-1].status == "stopped"


def test_the_shortcuts_say_why_when_there_is_nothing_to_do(qtbot, window):
    window.toggle_pause()
    assert window.statusBar().currentMessage() == "Nothing is training."
    window.start_training()  # no data yet: the Train step is locked
    assert window.step_list.currentRow() == 0
    assert window.statusBar().currentMessage()


# -- errors: the plain message, and Details --------------------------------------------------------
def test_an_error_box_has_the_message_and_the_technical_part_under_details(qtbot):
    try:
        try:
            int("x")
        except ValueError as cause:
            raise DataError("The column 'age' holds text where numbers are expected.") from cause
    except DataError as exc:
        box = dialogs.show_error(None, "Could not open the data", exc)
    qtbot.addWidget(box)
    assert box.text() == "The column 'age' holds text where numbers are expected."
    details = box.detailedText()
    assert "ValueError: invalid literal for int()" in details and "DataError" in details
    assert "Traceback" in details
    box.close()


def test_a_worker_error_brings_its_details_to_the_box(qtbot):
    from workers.base import FunctionWorker, TaskRunner

    def fail():
        raise DataError("That file is not a table.")

    runner = TaskRunner()
    messages = []
    runner.errored.connect(messages.append)
    runner.start(FunctionWorker(fail))
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert "in fail" in details_for(messages[0])
    box = dialogs.show_error(None, "Could not open the data", messages[0])
    qtbot.addWidget(box)
    assert "DataError: That file is not a table." in box.detailedText()
    box.close()
    plain = dialogs.show_error(None, "Note", "Nothing technical to add.")
    qtbot.addWidget(plain)
    assert plain.detailedText() == ""
    assert plain.standardButtons() == QMessageBox.StandardButton.Ok
    plain.close()
    runner.shutdown()
