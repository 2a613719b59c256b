"""File → Watch a run folder: a run another process is writing shows its curves live in the
app, and once it has ended joins the project's runs; a folder that is not a run is refused."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.ml.test_run_watch import _train


def test_a_run_written_elsewhere_is_followed_live_and_joins_the_project(qtbot, window, user,
                                                                        tmp_path):
    out = tmp_path / "run"
    proc = _train(out, epochs=60)
    qtbot.waitUntil(lambda: (out / "run.json").is_file(), timeout=120_000)
    user.open_paths.append(str(out))
    window.watch_action.trigger()
    dialog = window._watching
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.snapshot is not None and len(dialog.snapshot.history) >= 2,
                    timeout=60_000)
    assert proc.poll() is None, "the run ended before it was seen live"
    assert dialog.snapshot.status == "running" and "Running: epoch" in dialog.status.text()
    assert not dialog.add_button.isEnabled()  # still being written
    assert dialog.plots[0].getPlotItem().listDataItems()  # its loss curves are drawn
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    qtbot.waitUntil(lambda: dialog.snapshot.status == "finished", timeout=30_000)
    assert len(dialog.snapshot.history) == 60
    x, _ = dialog.plots[0].getPlotItem().listDataItems()[0].getData()
    assert len(x) == 60
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    runs = window.state.project.runs
    assert [r.path for r in runs] == [str(out)] and runs[0].status == "finished"
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)  # not twice
    assert len(window.state.project.runs) == 1
    dialog.close()


def test_a_folder_that_is_not_a_run_is_refused(window, user, tmp_path):
    assert window.watch_run_folder(str(tmp_path)) is None
    assert user.errors and "not a run folder" in str(user.errors[-1])
