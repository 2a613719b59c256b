"""The main window: a step list, the five pages, Back/Next, the File menu and a status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMainWindow,
                               QMessageBox, QPushButton, QStackedWidget, QVBoxLayout, QWidget)

from ml import __version__
from ml.errors import TrainDeskError
from ml.project import PROJECT_SUFFIX, Project
from ml.training.device import describe_device
from workers import gc_guard

from . import dialogs, report_pdf
from .pages import DataPage, EvaluatePage, ExportPage, ModelPage, TrainPage
from .settings import add_recent, open_settings, recent_projects
from .state import STEPS, ProjectState

PROJECT_FILTER = f"TrainDesk projects (*{PROJECT_SUFFIX})"


class MainWindow(QMainWindow):
    """TrainDesk's window. Pages share one :class:`ProjectState`."""

    def __init__(self, state: ProjectState | None = None):
        super().__init__()
        gc_guard.install()  # widgets must never be collected on a worker thread
        report_pdf.install()  # reports written from the Export step come with a PDF
        self.state = state or ProjectState(parent=self)
        self.resize(1360, 860)
        self.setAcceptDrops(True)  # a data file, a folder or a project dropped anywhere
        self.settings = open_settings()
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.setMinimumSize(QSize(1024, 680))

        self.step_list = QListWidget()
        self.step_list.setObjectName("stepList")
        self.step_list.setFixedWidth(190)
        font = self.step_list.font()
        font.setPointSize(14)
        self.step_list.setFont(font)
        self.step_list.setSpacing(6)
        for i, name in enumerate(STEPS):
            item = QListWidgetItem(f"{i + 1}  {name}")
            item.setSizeHint(QSize(170, 44))
            self.step_list.addItem(item)
        self.step_list.currentRowChanged.connect(self._on_step_selected)

        self.data_page = DataPage(self.state)
        self.model_page = ModelPage(self.state)
        self.train_page = TrainPage(self.state)
        self.evaluate_page = EvaluatePage(self.state)
        self.export_page = ExportPage(self.state)
        self.pages = QStackedWidget()
        for page in (self.data_page, self.model_page, self.train_page, self.evaluate_page,
                     self.export_page):
            self.pages.addWidget(page)

        self.back_button = QPushButton("◀  Back")
        self.back_button.setObjectName("backButton")
        self.next_button = QPushButton("Next  ▶")
        self.next_button.setObjectName("nextButton")
        for button in (self.back_button, self.next_button):
            button.setMinimumSize(120, 34)
        self.back_button.setShortcut(QKeySequence("Alt+Left"))
        self.next_button.setShortcut(QKeySequence("Alt+Right"))
        self.back_button.clicked.connect(self.go_back)
        self.next_button.clicked.connect(self.go_next)
        self.step_hint = QLabel("")
        self.step_hint.setStyleSheet("color: #555;")
        nav = QHBoxLayout()
        nav.addWidget(self.back_button)
        nav.addStretch(1)
        nav.addWidget(self.step_hint)
        nav.addWidget(self.next_button)

        right = QVBoxLayout()
        right.addWidget(self.pages, 1)
        right.addLayout(nav)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addWidget(self.step_list)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)

        self._build_menus()
        self.device_status = QLabel(f"  {describe_device('auto').label}  ")
        self.device_status.setObjectName("deviceStatus")
        self.data_status = QLabel("")
        self.run_status = QLabel("")
        self.statusBar().addWidget(self.data_status, 1)
        self.statusBar().addPermanentWidget(self.run_status)
        self.statusBar().addPermanentWidget(self.device_status)

        self.state.steps_changed.connect(self._update_steps)
        self.state.dirty_changed.connect(self._update_title)
        self.state.project_replaced.connect(self._update_title)
        self.state.dataset_changed.connect(self._update_status)
        self.state.data_config_changed.connect(self._update_status)
        self.state.training_changed.connect(self._on_training_changed)
        self.train_page.run_finished.connect(self._on_run_finished)
        self.train_page.edit_requested.connect(lambda: self.go_to(1))
        self.train_page.run_listed.connect(self._save_runs)
        self.step_list.setCurrentRow(0)
        self._update_steps()
        self._update_title()
        self._update_status()

    # -- menus ----------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.new_action = self._action(file_menu, "&New project", QKeySequence.StandardKey.New,
                                       self.new_project)
        self.open_action = self._action(file_menu, "&Open project…", QKeySequence.StandardKey.Open,
                                        self._on_open_triggered)
        file_menu.addSeparator()
        self.save_action = self._action(file_menu, "&Save", QKeySequence.StandardKey.Save,
                                        self.save)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.save_as_action = self._action(file_menu, "Save &as…",
                                           QKeySequence.StandardKey.SaveAs, self.save_as)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        go_menu = self.menuBar().addMenu("&Go")
        for i, name in enumerate(STEPS):
            self._action(go_menu, f"{i + 1}  {name}", QKeySequence(f"Ctrl+{i + 1}"),
                         lambda checked=False, row=i: self.go_to(row))
        help_menu = self.menuBar().addMenu("&Help")
        self.glossary_action = self._action(help_menu, "&Glossary", QKeySequence("F1"),
                                            self.show_glossary)
        self.gpu_action = self._action(help_menu, "Why is my &GPU not used?…", None,
                                       self.show_gpu_check)
        self.log_action = self._action(help_menu, "Where is the &log file?", None,
                                       self.show_log_location)
        self._action(help_menu, "&About TrainDesk", None, self._on_about)

    def _action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # -- navigation -----------------------------------------------------------------------------
    def go_to(self, row: int) -> bool:
        """Show step *row* if it is unlocked."""
        if not self.state.step_enabled(row):
            self.statusBar().showMessage(self.state.step_hint(row), 4000)
            return False
        self.step_list.setCurrentRow(row)
        return True

    @Slot()
    def go_next(self) -> None:
        self.go_to(min(self.step_list.currentRow() + 1, len(STEPS) - 1))

    @Slot()
    def go_back(self) -> None:
        self.go_to(max(self.step_list.currentRow() - 1, 0))

    @Slot(int)
    def _on_step_selected(self, row: int) -> None:
        if row < 0:
            return
        self.pages.setCurrentIndex(row)
        self._update_nav()

    @Slot()
    def _update_steps(self) -> None:
        for i in range(len(STEPS)):
            item = self.step_list.item(i)
            enabled = self.state.step_enabled(i)
            flags = item.flags()
            if enabled:
                item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                item.setToolTip("")
            else:
                item.setFlags(flags & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable)
                item.setToolTip(self.state.step_hint(i))
        # If the current step lost its inputs, fall back to the last one that has them.
        row = self.step_list.currentRow()
        while row > 0 and not self.state.step_enabled(row):
            row -= 1
        if row != self.step_list.currentRow():
            self.step_list.setCurrentRow(row)
        self._update_nav()

    def _update_nav(self) -> None:
        row = self.step_list.currentRow()
        self.back_button.setEnabled(row > 0)
        last = row >= len(STEPS) - 1
        can_next = not last and self.state.step_enabled(row + 1)
        self.next_button.setEnabled(can_next)
        self.step_hint.setText("" if last or can_next else self.state.step_hint(row + 1))

    # -- status ---------------------------------------------------------------------------------
    @Slot()
    def _update_title(self) -> None:
        project = self.state.project
        where = f" — {project.path.name}" if project.path else ""
        self.setWindowTitle(f"TrainDesk — {project.name}{where}[*]")
        self.setWindowModified(self.state.dirty)

    @Slot()
    def _update_status(self) -> None:
        state = self.state
        if state.dataset is None:
            self.data_status.setText("  No data")
            return
        target = state.summary.target if state.summary else "?"
        task = state.summary.task if state.summary else "not ready"
        unit = "images" if state.dataset.kind == "image" else "rows"
        self.data_status.setText(f"  {state.dataset.name} · {state.dataset.n_rows:,} {unit} · "
                                 f"target {target} ({task})")

    @Slot(bool)
    def _on_training_changed(self, running: bool) -> None:
        self.run_status.setText("  Training …  " if running else "")
        for action in (self.new_action, self.open_action):
            action.setEnabled(not running)
        self.data_page.setEnabled(not running)
        self.model_page.setEnabled(not running)

    @Slot(object)
    def _on_run_finished(self, result) -> None:
        self.run_status.setText(f"  Last run: {result.status}  ")
        self._save_runs()

    @Slot()
    def _save_runs(self) -> None:
        if self.state.project.path is not None:
            self._write(self.state.project.path)  # a saved project records its runs at once

    # -- projects -------------------------------------------------------------------------------
    @Slot()
    def new_project(self) -> None:
        if not self._confirm_discard():
            return
        self.state.replace_project(Project(), None)
        self.go_to(0)

    @Slot()
    def _on_open_triggered(self) -> None:
        if not self._confirm_discard():
            return
        path = dialogs.open_file(self, "Open a project", PROJECT_FILTER)
        if path:
            self.open_project(path)

    # -- drag and drop --------------------------------------------------------------------------
    @staticmethod
    def _dropped_path(mime) -> str:
        """The first existing local file or folder among the dropped URLs."""
        if not mime.hasUrls():
            return ""
        for url in mime.urls():
            path = url.toLocalFile()
            if path and Path(path).exists():
                return path
        return ""

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._dropped_path(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._dropped_path(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        path = self._dropped_path(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.open_dropped(path)

    def open_dropped(self, path: str) -> None:
        """A project opens (after asking about unsaved changes); anything else is data for the
        Data step, read like File → Open data (a bad file gets the importer's message)."""
        if Path(path).suffix.lower() == PROJECT_SUFFIX:
            if self._confirm_discard():
                self.open_project(path)
            return
        self.go_to(0)
        self.data_page.load_source(path)

    def open_project(self, path: str | Path) -> bool:
        """Open a project; on failure show why and keep the current one."""
        try:
            project = Project.load(path)
        except TrainDeskError as exc:
            dialogs.show_error(self, "Could not open the project", str(exc))
            return False
        self.state.replace_project(project, None)
        self._remember(project.path)
        self.go_to(0)
        if project.data.source:
            # Read in the background like any import (a big file must not freeze the window);
            # a failure is reported and the project stays open with its settings and runs.
            self.data_page.load_source(project.data.source, project.data.read_options,
                                       keep_settings=True, reopening=True)
        return True

    @Slot()
    def save(self) -> bool:
        if self.state.project.path is None:
            return self.save_as()
        return self._write(self.state.project.path)

    @Slot()
    def save_as(self) -> bool:
        start = str(Path.home() / f"{self.state.project.name}{PROJECT_SUFFIX}")
        path = dialogs.save_file(self, "Save the project", PROJECT_FILTER, start)
        return self._write(Path(path)) if path else False

    def _write(self, path: Path) -> bool:
        try:
            self.state.project.save(path)
        except TrainDeskError as exc:
            dialogs.show_error(self, "Could not save the project", str(exc))
            return False
        self.state.set_dirty(False)
        self._update_title()
        self._remember(self.state.project.path)
        self.statusBar().showMessage(f"Saved {self.state.project.path}", 4000)
        return True

    # -- what the app remembers -----------------------------------------------------------------
    def _remember(self, path) -> None:
        if path is not None:
            add_recent(self.settings, path)

    @Slot()
    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        projects = recent_projects(self.settings)
        for path in projects:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda checked=False, p=path: self.open_recent(p))
        if not projects:
            self.recent_menu.addAction("No recent projects").setEnabled(False)

    def open_recent(self, path: str) -> bool:
        """File → Open recent → *path* (after asking about unsaved changes)."""
        if not self._confirm_discard():
            return False
        return self.open_project(path)

    def _confirm_discard(self) -> bool:
        if not self.state.dirty:
            return True
        answer = dialogs.ask_save_discard_cancel(self, "Unsaved changes",
                                         "Save the changes to this project first?")
        if answer == "save":
            return self.save()
        return answer == "discard"

    @Slot()
    def show_log_location(self) -> QMessageBox:
        """Help → the log file's path, selectable (to attach it to a bug report)."""
        from .crash import log_path

        box = QMessageBox(QMessageBox.Icon.Information, "Log file",
                          f"TrainDesk writes what it does and every error to<br><b>{log_path()}"
                          f"</b><br>(with up to five older files beside it).", parent=self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setObjectName("logBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    @Slot()
    def show_glossary(self):
        """Help → Glossary: the ML words of the app in plain words (non-modal, stays open)."""
        from .widgets.glossary_dialog import GlossaryDialog

        if getattr(self, "_glossary", None) is None:
            self._glossary = GlossaryDialog(self)
        self._glossary.show()
        self._glossary.activateWindow()  # to the front when it was already open
        return self._glossary

    @Slot()
    def show_gpu_check(self):
        """Help → "Why is my GPU not used?" (reads only local facts: quick, no worker)."""
        from .widgets.gpu_dialog import GpuDialog

        dialog = GpuDialog(parent=self)
        dialog.setModal(True)
        dialog.show()
        self._gpu_dialog = dialog  # kept for tests and so it is not collected while open
        return dialog

    @Slot()
    def _on_about(self) -> None:
        QMessageBox.about(self, "About TrainDesk",
                          f"<h3>TrainDesk {__version__}</h3><p>Train neural networks "
                          f"point-and-click, offline, on your own workstation.</p>"
                          f"<p>Compute device: {describe_device('auto').label}</p>")

    # -- closing --------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if self.train_page.is_training():
            if not dialogs.ask_yes_no(self, "Training is running",
                                      "Stop training and quit? The run so far is kept."):
                event.ignore()
                return
            # Let the stopped run finish saving and enter the project before asking to save it.
            self.train_page.stop_and_wait()
        if not self._confirm_discard():
            event.ignore()
            return
        for page in (self.train_page, self.data_page):
            page.shutdown()
        self.evaluate_page.runner.shutdown()
        self.evaluate_page.tryit.shutdown()
        self.export_page.runner.shutdown()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()
        event.accept()
