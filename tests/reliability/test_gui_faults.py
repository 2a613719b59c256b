"""Faults met through the window: a full disk while training, Stop pressed at once."""

from __future__ import annotations

import errno
import os

from PySide6.QtCore import Qt

from ml.runs.weights import load_checkpoint
from tests.gui.conftest import load_sample


def test_a_full_disk_while_training_is_said_plainly_and_the_app_goes_on(qtbot, window, user,
                                                                         monkeypatch):
    import ml.system.fileio as fileio
    from ml.training.checkpoint import RunWriter

    real_fsync, real_epoch_end = fileio._fsync_file, RunWriter.on_epoch_end
    full = {"disk": False}

    def fsync(path):
        if full["disk"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(path)

    def on_epoch_end(self, epoch, logs):
        if logs["epoch"] == 3:
            full["disk"] = True
        return real_epoch_end(self, epoch, logs)

    monkeypatch.setattr(fileio, "_fsync_file", fsync)
    monkeypatch.setattr(RunWriter, "on_epoch_end", on_epoch_end)
    load_sample(qtbot, window, "iris")
    window.state.update_training(epochs=8)
    window.go_to(2)
    page = window.train_page
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.is_training(), timeout=60_000)
    (title, message), = user.errors
    assert title == "Training failed" and "the disk is full" in message
    assert "Free some space" in message
    run = window.state.project.runs[-1]
    assert run.status == "failed"
    from pathlib import Path

    assert load_checkpoint(Path(run.path) / "checkpoint.pt")["epoch"] == 2  # kept
    # Space again: the app trains as before.
    full["disk"] = False
    monkeypatch.setattr(RunWriter, "on_epoch_end", real_epoch_end)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.is_training(), timeout=60_000)
    assert window.state.project.runs[-1].status == "finished"
    assert len(user.errors) == 1


def test_stop_pressed_right_after_start_is_not_a_failure(qtbot, window, user):
    load_sample(qtbot, window, "digits")
    window.go_to(2)
    page = window.train_page
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    page.stop_training()  # before the data is even prepared
    qtbot.waitUntil(lambda: not page.is_training(), timeout=60_000)
    assert user.errors == []
    assert page.progress.format() in ("Stopped", "Training stopped") or \
        window.state.project.runs[-1].status == "stopped"
    assert not [r for r in window.state.project.runs if r.status == "failed"]
