"""settings.ini files written by earlier TrainDesk windows are read as they were meant.

``settings-3ce5085`` is the first settings file there was (version 2: recent projects and the
window's geometry); ``settings-bcc8884`` adds the keys that came later without a new version
(theme, welcome, panels). Both were written by that version's own main window, offscreen (see
tests/fixtures/README.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QMainWindow

from gui import settings as st

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _install(version: str) -> Path:
    """The fixture as this test's settings.ini (TRAINDESK_HOME is a fresh folder per test)."""
    path = st.settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / f"settings-{version}" / "settings.ini", path)
    return path


@pytest.mark.parametrize("version", ["3ce5085", "bcc8884"])
def test_an_old_settings_file_is_read_with_everything_it_held(qtbot, version):
    path = _install(version)
    before = path.read_bytes()
    settings = st.open_settings()
    assert st.migrate(settings) == st.SETTINGS_VERSION == 2  # already current: nothing to do
    assert path.read_bytes() == before  # reading a current file does not rewrite it
    # The recent project it remembers is an absolute path on the machine that wrote it; it is
    # kept, and offered only while that file exists.
    stored = f"/tmp/golden/recent-{version}/recent.tdproj"
    assert settings.value("recent/projects") == stored
    assert st.recent_projects(settings) == ([stored] if Path(stored).is_file() else [])
    geometry = settings.value("window/geometry")
    assert isinstance(geometry, (bytes, QByteArray)) and len(geometry) > 0
    probe = QMainWindow()
    qtbot.addWidget(probe)
    assert probe.restoreGeometry(geometry)
    if version == "bcc8884":
        assert settings.value("view/theme") == "dark"
        assert settings.value("welcome/seen") in (True, "true")
        assert settings.value("welcome/show") in (False, "false")
        assert {k for k in settings.allKeys() if k.startswith("panels/")} == {
            "panels/data/imageSplitter", "panels/data/splitter", "panels/export/tabs",
            "panels/model/settingsTabs", "panels/model/viewTabs", "panels/train/splitter"}


@pytest.mark.parametrize("version", ["3ce5085", "bcc8884"])
def test_the_window_starts_with_an_old_settings_file_and_keeps_it(qtbot, user, version):
    from gui.main_window import MainWindow

    path = _install(version)
    window = MainWindow()
    qtbot.addWidget(window)
    theme = "dark" if version == "bcc8884" else "system"
    assert window.theme_actions[theme].isChecked()
    window.show()
    qtbot.waitExposed(window)
    window.state.set_dirty(False)
    window.close()
    settings = st.open_settings()
    assert int(settings.value("version")) == st.SETTINGS_VERSION
    assert settings.value("recent/projects") == f"/tmp/golden/recent-{version}/recent.tdproj"
    assert settings.value("view/theme", "system") == theme
    assert path.is_file()
