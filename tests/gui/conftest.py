"""GUI fixtures: the main window with every dialog answered by the test."""

from __future__ import annotations

import pytest

from gui import dialogs


class DialogRecorder:
    """Stands in for the user in front of message boxes and file dialogs."""

    def __init__(self):
        self.errors: list[tuple[str, str]] = []
        self.infos: list[tuple[str, str]] = []
        self.open_paths: list[str] = []
        self.save_paths: list[str] = []
        self.yes_no = True
        self.save_discard_cancel = "discard"

    def show_error(self, parent, title, message, details=None):
        self.errors.append((title, str(message)))

    def show_info(self, parent, title, message):
        self.infos.append((title, message))

    def open_file(self, parent, title, filters, directory=""):
        return self.open_paths.pop(0) if self.open_paths else ""

    def open_folder(self, parent, title, directory=""):
        return self.open_paths.pop(0) if self.open_paths else ""

    def save_file(self, parent, title, filters, directory=""):
        return self.save_paths.pop(0) if self.save_paths else ""

    def ask_yes_no(self, parent, title, question):
        return self.yes_no

    def ask_save_discard_cancel(self, parent, title, question):
        return self.save_discard_cancel


@pytest.fixture
def user(monkeypatch) -> DialogRecorder:
    recorder = DialogRecorder()
    for name in ("show_error", "show_info", "open_file", "open_folder", "save_file", "ask_yes_no",
                 "ask_save_discard_cancel"):
        monkeypatch.setattr(dialogs, name, getattr(recorder, name))
    return recorder


@pytest.fixture(autouse=True)
def slow_machine(monkeypatch):
    """Text data is proposed the fast text model, as on a slow machine: whether MiniLM would
    train in 10 minutes here must not change what a test trains. A test that wants MiniLM
    proposed sets a faster speed (``ml.training.estimate.machine_flops``)."""
    from ml.training import estimate

    monkeypatch.setattr(estimate, "machine_flops", lambda device="auto": 1e9)


@pytest.fixture
def window(qtbot, user):
    from gui.app import configure_pyqtgraph
    from gui.main_window import MainWindow

    configure_pyqtgraph()
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.state.set_dirty(False)
    win.close()


def load_sample(qtbot, window, name: str) -> None:
    """Click the sample in the list, as a user would, and wait until it is loaded."""
    from PySide6.QtCore import Qt

    page = window.data_page
    for i in range(page.sample_list.count()):
        item = page.sample_list.item(i)
        if item.data(Qt.ItemDataRole.UserRole) == f"sample:{name}":
            rect = page.sample_list.visualItemRect(item)
            qtbot.mouseClick(page.sample_list.viewport(), Qt.MouseButton.LeftButton,
                             pos=rect.center())
            break
    else:
        raise AssertionError(f"no sample {name}")
    qtbot.waitUntil(lambda: window.state.dataset is not None
                    and window.state.dataset.source == f"sample:{name}", timeout=20_000)
