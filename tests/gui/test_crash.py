"""Unexpected errors: logged to a rotating file, the project saved first, one plain message
with the details behind a button."""

from __future__ import annotations

import logging
import sys

import pytest

from gui import crash
from ml.runs.project import Project


@pytest.fixture
def logging_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored afterwards
    path = crash.setup_logging()
    yield path
    crash.stop_logging()


def _raise_inside():
    try:
        {}["missing key"]
    except KeyError:
        return sys.exc_info()


def test_the_log_rotates_and_records_errors(logging_home):
    assert logging_home == crash.log_path() and logging_home.parent.name == "logs"
    handler = crash._handler
    assert handler.maxBytes == crash.LOG_BYTES and handler.backupCount == crash.LOG_BACKUPS
    logging.getLogger("traindesk.test").info("hello from the test")
    handler.flush()
    assert "hello from the test" in logging_home.read_text(encoding="utf-8")
    for _ in range(crash.LOG_BYTES // 5_000 + 5):
        logging.getLogger("traindesk.test").info("x" * 5_000)
    assert logging_home.with_name("traindesk.log.1").is_file()  # rotated, not grown


def test_an_unhandled_error_saves_the_project_first_and_explains(qtbot, window, logging_home,
                                                                 tmp_path):
    window.state.project.save(tmp_path / "mine.tdproj")
    window.state.update_training(epochs=7)  # an unsaved change
    assert window.state.dirty
    shown = []
    crash.install_excepthook(lambda: window, show=lambda *a: shown.append(a))
    sys.excepthook(*_raise_inside())
    (title, message, details), = shown
    assert "did not expect" in message and "missing key" in message
    assert f"saved first, to {tmp_path / 'mine.tdproj'}" in message
    assert str(logging_home) in message
    assert "Traceback" in details and "_raise_inside" in details
    assert Project.load(tmp_path / "mine.tdproj").training.epochs == 7
    assert not window.state.dirty
    crash._handler.flush()
    assert "_raise_inside" in logging_home.read_text(encoding="utf-8")


def test_a_never_saved_project_goes_to_a_recovery_copy(qtbot, window, logging_home):
    window.state.update_training(epochs=9)
    assert window.state.project.path is None and window.state.dirty
    shown = []
    crash.install_excepthook(lambda: window, show=lambda *a: shown.append(a))
    sys.excepthook(*_raise_inside())
    copies = list((crash.log_path().parents[1] / "recovery").glob("*.tdproj"))
    assert len(copies) == 1 and str(copies[0]) in shown[0][1]
    assert Project.load(copies[0]).training.epochs == 9
    assert window.state.project.path is None  # the user's project keeps no recovery name


def test_nothing_to_save_says_the_saved_work_is_safe(logging_home):
    shown = []
    crash.install_excepthook(lambda: None, show=lambda *a: shown.append(a))
    sys.excepthook(*_raise_inside())
    assert "not affected" in shown[0][1]


def test_help_shows_where_the_log_is(qtbot, window, logging_home):
    window.log_action.trigger()
    box = window.findChild(type(window.show_log_location()), "logBox")
    assert box is not None and str(crash.log_path()) in box.text()
    for b in window.findChildren(type(box), "logBox"):
        b.close()


def test_a_failing_worker_is_logged_with_its_traceback(qtbot, logging_home):
    from workers.base import FunctionWorker, TaskRunner

    def broken():
        raise ValueError("a bug in a worker")

    runner = TaskRunner()
    errors = []
    runner.errored.connect(errors.append)
    runner.start(FunctionWorker(broken))
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    assert "a bug in a worker" in errors[0] and "log file" in errors[0]
    assert runner.shutdown()
    crash._handler.flush()
    text = logging_home.read_text(encoding="utf-8")
    assert "worker failed" in text and "in broken" in text
