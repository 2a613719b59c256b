"""Autosave of unsaved work after every edit, and its recovery after a crash or a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gui import autosave
from ml.runs.project import Project

from .conftest import load_sample

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_orphan(folder, pid: int, started: float, name: str, saved_at: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    project = Project(name=name)
    doc = {"format": autosave.AUTOSAVE_FORMAT, "version": 1, "pid": pid,
           "process_started": started, "saved_at": saved_at, "project_path": None,
           "project": project.to_dict()}
    (folder / f"{pid}.json").write_text(json.dumps(doc))


def test_each_edit_is_autosaved_atomically_and_saving_removes_it(qtbot, window, user, tmp_path):
    saver = window.autosaver
    assert not saver.file.exists()
    load_sample(qtbot, window, "iris")
    qtbot.waitUntil(saver.file.exists, timeout=5000)
    window.model_page.epochs_spin.setValue(37)
    qtbot.waitUntil(lambda: json.loads(saver.file.read_text())["project"]["training"]["epochs"]
                    == 37, timeout=5000)
    doc = json.loads(saver.file.read_text())
    assert doc["pid"] == os.getpid() and doc["project"]["data"]["source"] == "sample:iris"
    assert not list(saver.folder.glob("*.tmp*"))  # written via a temporary file + os.replace
    user.save_paths.append(str(tmp_path / "kept.tdproj"))
    assert window.save()
    assert not saver.file.exists()  # nothing unsaved, nothing to recover
    window.model_page.epochs_spin.setValue(38)
    qtbot.waitUntil(saver.file.exists, timeout=5000)
    assert json.loads(saver.file.read_text())["project_path"] == str(tmp_path / "kept.tdproj")


def test_a_clean_close_leaves_no_autosave(qtbot, user):
    from gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.state.project.name = "Edited"
    win.state.set_dirty(True)
    assert win.autosaver.write_now() is not None
    user.save_discard_cancel = "discard"
    assert win.close()
    assert not win.autosaver.file.exists()


def test_a_failing_autosave_is_logged_once_and_retried(qtbot, window, monkeypatch, caplog):
    from ml.errors import TrainDeskError

    calls = []

    def full_disk(path, doc, **kw):
        calls.append(path)
        raise TrainDeskError("No space left on the device.")

    with monkeypatch.context() as patch:
        patch.setattr(autosave, "atomic_write_json", full_disk)
        window.state.set_dirty(True)
        assert window.autosaver.write_now() is None and window.autosaver.failing
        assert window.autosaver.write_now() is None
        assert len(calls) == 2
        assert sum("Autosave failed" in r.getMessage() for r in caplog.records) == 1
    assert window.autosaver.write_now() is not None and not window.autosaver.failing


def test_only_autosaves_of_ended_processes_are_recovered(tmp_path):
    folder = tmp_path / "autosave"
    me = autosave._process_started(os.getpid())
    _write_orphan(folder, os.getpid(), me, "still running", time.time())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_orphan(folder, dead.pid, 12345.0, "older", time.time() - 60)
    # A reused pid: a live process, but not the one that wrote the file.
    _write_orphan(folder, os.getppid(), 1.0, "newer", time.time())
    (folder / "junk.json").write_text("{not json")
    found = autosave.find_orphans(folder)
    assert [o.project.name for o in found] == ["newer", "older"]
    assert (folder / "junk.json").exists()  # unreadable files are left for a person to see


@pytest.mark.timeout(240)
def test_after_a_kill_the_next_start_restores_the_unsaved_project(qtbot, window, user,
                                                                  tmp_path):
    # A real TrainDesk process: open a sample, change a setting, wait for the autosave, then
    # die by SIGKILL (no handler, no atexit, nothing flushed).
    script = textwrap.dedent("""
        import sys, time
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from gui.main_window import MainWindow
        w = MainWindow()
        w.show()
        w.data_page.load_source("sample:iris")
        deadline = time.time() + 60
        while w.state.dataset is None and time.time() < deadline:
            app.processEvents()
            time.sleep(0.01)
        w.state.project.name = "Flower study"
        w.model_page.epochs_spin.setValue(23)
        while not (w.autosaver.file.exists()
                   and '"epochs": 23' in w.autosaver.file.read_text()):
            app.processEvents()
            time.sleep(0.01)
        print("autosaved", flush=True)
        while True:
            app.processEvents()
            time.sleep(0.01)
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "autosaved", proc.stderr.read()[-3000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)  # reaps it and closes the pipes
    assert list(window.autosaver.folder.glob("*.json"))

    # The next start (this window, as run_app does once it is ready).
    window.after_start([])
    state = window.state
    assert state.project.name == "Flower study" and state.project.training.epochs == 23
    assert state.dirty  # restored work is unsaved until the user saves it
    qtbot.waitUntil(lambda: state.dataset is not None, timeout=20_000)
    assert state.dataset.source == "sample:iris"
    assert window.model_page.epochs_spin.value() == 23
    (title, message), = user.infos
    assert title == "Unsaved work restored" and "Flower study" in message
    # The orphan now lives in this session's own autosave; a second start finds nothing.
    assert [p.name for p in window.autosaver.folder.glob("*.json")] == [
        window.autosaver.file.name]
    assert autosave.find_orphans(window.autosaver.folder) == []
