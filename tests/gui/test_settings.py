"""Settings: versioned with a migration, recent projects, the window's geometry."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from gui import settings as st
from gui.main_window import MainWindow
from ml.runs.project import Project


def test_an_old_settings_file_is_migrated_and_keeps_what_it_had(tmp_path):
    a, b = tmp_path / "a.tdproj", tmp_path / "b.tdproj"
    for p in (a, b):
        Project().save(p)
    path = st.settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The version-0 layout: no version, one '|'-joined string, a top-level geometry.
    path.write_text(f"[General]\nrecent={a}|{b}|{tmp_path / 'gone.tdproj'}\n"
                    f"geometry=@ByteArray(xyz)\n", encoding="utf-8")
    settings = st.open_settings()
    assert int(settings.value("version")) == st.SETTINGS_VERSION
    assert st.recent_projects(settings) == [str(a), str(b)]  # the missing file is not offered
    assert settings.value("window/geometry") == b"xyz" and settings.value("geometry") is None
    assert st.migrate(settings) == st.SETTINGS_VERSION  # a second time changes nothing
    again = QSettings(str(path), QSettings.Format.IniFormat)
    assert int(again.value("version")) == st.SETTINGS_VERSION


def test_recent_projects_newest_first_once_and_capped(tmp_path):
    settings = st.open_settings()
    paths = []
    for i in range(st.MAX_RECENT + 3):
        paths.append(Project().save(tmp_path / f"p{i}.tdproj"))
        st.add_recent(settings, paths[-1])
    st.add_recent(settings, paths[2])
    recent = st.recent_projects(settings)
    assert recent[0] == str(paths[2]) and len(recent) == st.MAX_RECENT
    assert len(set(recent)) == len(recent)
    assert st.recent_projects(st.open_settings()) == recent  # written to disk


def test_opened_and_saved_projects_are_offered_again(qtbot, window, user, tmp_path):
    saved = tmp_path / "mine.tdproj"
    user.save_paths.append(str(saved))
    assert window.save()
    other = Project()
    other.name = "other"
    other_path = other.save(tmp_path / "other.tdproj")
    assert window.open_project(other_path)
    window._fill_recent_menu()
    names = [a.text() for a in window.recent_menu.actions()]
    assert names == ["other.tdproj", "mine.tdproj"]
    window.recent_menu.actions()[1].trigger()
    assert window.state.project.path == saved.resolve()


def test_an_empty_recent_menu_says_so(qtbot, window):
    window._fill_recent_menu()
    (only,) = window.recent_menu.actions()
    assert only.text() == "No recent projects" and not only.isEnabled()


def test_the_window_comes_back_where_it_was(qtbot):
    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    first.resize(1000, 700)  # within the offscreen screen (1024 wide): no clamping
    qtbot.waitUntil(lambda: first.height() != 0)
    size = (first.width(), first.height())
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == size
    second.close()
