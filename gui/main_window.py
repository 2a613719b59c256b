"""The main window: a step list, the five pages, Back/Next, the menus and a status bar.

Start-up is split in two so that the window is on screen fast. The window itself (step list,
menus, status bar) needs only Qt; the pages need PyTorch, pandas and pyqtgraph, which take
seconds to import. ``MainWindow(deferred=True)`` shows a "Starting" page and
:meth:`MainWindow.start_loading` imports and builds the rest once the window has been painted,
a group at a time on the GUI thread so the page can say what it is loading (imports are kept off
worker threads: see the note in ``ml/training/trainer.py``). ``ready`` is emitted when the app can
train. Without *deferred* (tests, benches) everything is built in the constructor.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QObject, QPoint, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ml import __version__
from ml.errors import TrainDeskError
from ml.runs.project import PROJECT_SUFFIX, Project

from . import dialogs, theme
from .glossary import explain_terms
from .icons import step_icon
from .mlflow_logging import MlflowLogging
from .settings import add_recent, open_settings, recent_projects
from .steps import STEPS
from .theme import mute

if TYPE_CHECKING:
    from .state import ProjectState

PROJECT_FILTER = f"TrainDesk projects (*{PROJECT_SUFFIX})"
#: Closing the window gives the background jobs this long to stop (issue 18: under 5 s in all).
CLOSE_TIMEOUT_S = 4.0
#: ... and then this long more, for one that missed its checks, before the process ends anyway.
LATE_JOB_TIMEOUT_S = 30.0


class MainWindow(QMainWindow):
    """TrainDesk's window. Pages share one :class:`ProjectState`."""

    #: Everything is imported and built: the app can train.
    ready = Signal()
    #: The window closed after everything was saved or discarded (autosave can go).
    closed_cleanly = Signal()

    #: What :meth:`start_loading` imports, in order, with what the start-up page says meanwhile.
    LOADING = (("Loading PyTorch …", "ml.training.trainer"),
               ("Loading the data tools …", "ml.data.dataset"),
               ("Loading the charts …", "pyqtgraph"),
               ("Loading the pages …", "gui.pages"))

    def __init__(self, state: ProjectState | None = None, *, deferred: bool = False):
        super().__init__()
        self.state = state
        self.is_ready = False
        self._watching = None  # the File → Watch a run folder dialog, once opened
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

        self.pages = QStackedWidget()
        self.startup_page = _StartupPage(len(self.LOADING) + 1)
        self.pages.addWidget(self.startup_page)
        self.step_list.setEnabled(False)

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
        mute(self.step_hint)
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
        self.step_list.setIconSize(QSize(22, 22))
        self._update_step_icons()
        app = QApplication.instance()
        app.styleHints().colorSchemeChanged.connect(self._on_system_scheme_changed)
        self.device_status = QLabel("  …  ")
        self.device_status.setObjectName("deviceStatus")
        self.data_status = QLabel("  Starting …")
        self.run_status = QLabel("")
        self.statusBar().addWidget(self.data_status, 1)
        self.statusBar().addPermanentWidget(self.run_status)
        self.statusBar().addPermanentWidget(self.device_status)
        self.setWindowTitle("TrainDesk")
        self._set_project_actions_enabled(False)
        self.back_button.setEnabled(False)
        self.next_button.setEnabled(False)
        if not deferred:
            for _, module in self.LOADING:
                importlib.import_module(module)
            self._build_pages()

    # -- start-up -------------------------------------------------------------------------------
    def start_loading(self) -> None:
        """Import the heavy modules and build the pages, one group per event-loop turn so the
        start-up page repaints in between; emits :attr:`ready` at the end. Loading begins once
        the window has been painted (or after 0.3 s, should no paint come)."""
        self._loading_steps = list(self.LOADING)
        self._paint_watch = _FirstPaint(self, self._begin_loading)
        QTimer.singleShot(300, self._begin_loading)

    def _begin_loading(self) -> None:
        if self._paint_watch is not None:
            self.removeEventFilter(self._paint_watch)
            self._paint_watch = None
            self._load_next()

    def _load_next(self) -> None:
        if self._loading_steps:
            text, module = self._loading_steps.pop(0)
            self.startup_page.show_step(text)
            importlib.import_module(module)
            QTimer.singleShot(0, self._load_next)
        else:
            self.startup_page.show_step("Building the pages …")
            self._build_pages()

    def _build_pages(self) -> None:
        from ml.system.device import describe_device
        from workers import gc_guard

        from . import report_pdf
        from .app import configure_pyqtgraph
        from .autosave import Autosaver
        from .pages import DataPage, EvaluatePage, ExportPage, ModelPage, TrainPage
        from .state import ProjectState

        configure_pyqtgraph()  # plots take the theme's colours when they are made
        gc_guard.install()  # widgets must never be collected on a worker thread
        report_pdf.install()  # reports written from the Export step come with a PDF
        if self.state is None:
            self.state = ProjectState(parent=self)
        self.autosaver = Autosaver(self.state, parent=self)
        self.closed_cleanly.connect(self.autosaver.discard)
        self.data_page = DataPage(self.state)
        self.model_page = ModelPage(self.state)
        self.train_page = TrainPage(self.state)
        self.evaluate_page = EvaluatePage(self.state)
        self.export_page = ExportPage(self.state)
        for page in (self.data_page, self.model_page, self.train_page, self.evaluate_page,
                     self.export_page):
            self.pages.addWidget(page)
        self._build_lm_pages()
        self.pages.removeWidget(self.startup_page)
        self.startup_page.deleteLater()
        self.startup_page = None
        self.device_status.setText(f"  {describe_device('auto').label}  ")

        self.state.steps_changed.connect(self._update_steps)
        self.state.dirty_changed.connect(self._update_title)
        self.state.project_replaced.connect(self._update_title)
        self.state.dataset_changed.connect(self._update_status)
        self.state.data_config_changed.connect(self._update_status)
        self.state.lm_changed.connect(self._update_status)
        self.state.training_changed.connect(self._on_training_changed)
        self.train_page.run_finished.connect(self._on_run_finished)
        self.train_page.edit_requested.connect(lambda: self.go_to(1))
        self.train_page.run_listed.connect(self._save_runs)
        self.step_list.setEnabled(True)
        self._set_project_actions_enabled(True)
        self.is_ready = True
        self.restore_panel_state()
        self.step_list.setCurrentRow(0)  # from no row: shows the Data page
        self._update_steps()
        self._update_title()
        self._update_status()
        self.ready.emit()

    def _build_lm_pages(self) -> None:
        """The five steps of a language-model project, after the standard ones in the stack
        (:meth:`_page_index` picks by the project's kind)."""
        from .pages.lm_data_model import LMDataPage, LMModelPage
        from .pages.lm_run_pages import LMEvaluatePage, LMExportPage, LMTrainPage

        self.lm_data_page = LMDataPage(self.state)
        self.lm_model_page = LMModelPage(self.state)
        self.lm_train_page = LMTrainPage(self.state)
        self.lm_evaluate_page = LMEvaluatePage(self.state)
        self.lm_export_page = LMExportPage(self.state)
        for page in (self.lm_data_page, self.lm_model_page, self.lm_train_page,
                     self.lm_evaluate_page, self.lm_export_page):
            self.pages.addWidget(page)
        self.lm_train_page.run_finished.connect(self._on_run_finished)
        self.lm_train_page.run_listed.connect(self._save_runs)
        self.state.project_replaced.connect(
            lambda: self._on_step_selected(self.step_list.currentRow()))

    def _page_index(self, row: int) -> int:
        return row + (len(STEPS) if self.state.is_language_model else 0)

    def _active_train_page(self):
        return self.lm_train_page if self.state.is_language_model else self.train_page

    # -- menus ----------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.new_action = self._action(file_menu, "&New project", QKeySequence.StandardKey.New,
                                       self.new_project)
        self.new_lm_action = self._action(file_menu, "New &language-model project", None,
                                          self.new_language_model_project)
        self.open_action = self._action(file_menu, "&Open project…", QKeySequence.StandardKey.Open,
                                        self._on_open_triggered)
        self.watch_action = self._action(file_menu, "&Watch a run folder…", None,
                                         self.watch_run_folder)
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
        # Start, pause and stop from any step: window-wide shortcuts, listed where users look.
        self.training_menu = self.menuBar().addMenu("&Training")
        self.training_menu.aboutToShow.connect(self._update_training_actions)
        self.start_action = self._action(self.training_menu, "&Start training",
                                         QKeySequence("Ctrl+Return"), self.start_training)
        self.pause_action = self._action(self.training_menu, "&Pause / continue",
                                         QKeySequence("Ctrl+P"), self.toggle_pause)
        self.stop_action = self._action(self.training_menu, "S&top",
                                        QKeySequence("Ctrl+."), self.stop_training)
        self.start_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.mlflow = MlflowLogging(self, self.settings, self.training_menu)
        view_menu = self.menuBar().addMenu("&View")
        theme_menu = view_menu.addMenu("&Theme")
        self.theme_actions = {}
        group = QActionGroup(self)
        for choice, text in (("system", "Follow the &system"), ("light", "&Light"),
                             ("dark", "&Dark")):
            action = self._action(theme_menu, text, None,
                                  lambda checked=False, c=choice: self.set_theme(c))
            action.setCheckable(True)
            group.addAction(action)
            self.theme_actions[choice] = action
        self.theme_actions[self.theme_choice()].setChecked(True)
        help_menu = self.menuBar().addMenu("&Help")
        self.welcome_action = self._action(help_menu, "&Welcome…", None, self.show_welcome)
        self.tour_action = self._action(help_menu, "The 30-second &tour", None, self.start_tour)
        help_menu.addSeparator()
        self.glossary_action = self._action(help_menu, "&Glossary", QKeySequence("F1"),
                                            self.show_glossary)
        self.gpu_action = self._action(help_menu, "Why is my &GPU not used?…", None,
                                       self.show_gpu_check)
        self.log_action = self._action(help_menu, "Where is the &log file?", None,
                                       self.show_log_location)
        self._action(help_menu, "&About TrainDesk", None, self._on_about)

    # -- theme ----------------------------------------------------------------------------------
    def theme_choice(self) -> str:
        """The theme the user chose: ``"system"`` (the default), ``"light"`` or ``"dark"``."""
        choice = str(self.settings.value("view/theme", "system"))
        return choice if choice in theme.CHOICES else "system"

    def set_theme(self, choice: str) -> None:
        """View → Theme: switch now (every open panel and plot follows) and remember it."""
        if choice not in theme.CHOICES:
            raise ValueError(choice)
        self.settings.setValue("view/theme", choice)
        self.settings.sync()
        self.theme_actions[choice].setChecked(True)
        self.apply_theme()

    def apply_theme(self) -> None:
        """Apply the chosen theme (also when the system switches between light and dark)."""
        theme.apply(self.theme_choice())
        self._update_step_icons()

    def _update_step_icons(self) -> None:
        colour = self.palette().windowText().color()
        for i, name in enumerate(STEPS):
            self.step_list.item(i).setIcon(step_icon(name, colour))

    @Slot()
    def _on_system_scheme_changed(self) -> None:
        if self.theme_choice() == "system":
            self.apply_theme()

    def _set_project_actions_enabled(self, enabled: bool) -> None:
        for action in (self.new_action, self.new_lm_action, self.open_action, self.save_action,
                       self.save_as_action,
                       self.start_action, self.pause_action, self.stop_action,
                       self.welcome_action, self.tour_action):
            action.setEnabled(enabled)
        self.recent_menu.setEnabled(enabled)

    @Slot()
    def _update_training_actions(self) -> None:
        """Grey out what cannot be done now (the shortcuts still answer, with a hint)."""
        if not self.is_ready:
            return
        if self.state.is_language_model:
            busy = self.lm_train_page.is_training()
            self.start_action.setEnabled(not busy)
            self.pause_action.setEnabled(False)
            self.stop_action.setEnabled(busy)
            return
        page = self.train_page
        self.start_action.setEnabled(not page.is_training())
        self.pause_action.setEnabled(page.pause_button.isEnabled())
        self.pause_action.setText("&Continue" if page.pause_button.isChecked() else "&Pause")
        self.stop_action.setEnabled(page.stop_button.isEnabled())

    @Slot()
    def start_training(self) -> None:
        """Training → Start (Ctrl+Enter): go to the Train step and start, if the model is ready."""
        if not self.is_ready or self._active_train_page().is_training():
            return
        if not self.go_to(2):
            return  # the status bar says what is missing
        page = self._active_train_page()
        if page.start_button.isEnabled():
            page.start_button.click()
        else:
            self.statusBar().showMessage("Training cannot start yet: " +
                                         (page.start_button.toolTip()
                                          or "check the model settings."), 5000)

    @Slot()
    def toggle_pause(self) -> None:
        """Training → Pause / continue (Ctrl+P)."""
        if self.is_ready and self.train_page.pause_button.isEnabled():
            self.train_page.pause_button.toggle()
        else:
            self.statusBar().showMessage("Nothing is training.", 3000)

    @Slot()
    def stop_training(self) -> None:
        """Training → Stop (Ctrl+.): stop after the current batch, keeping the run."""
        if self.is_ready and self.state.is_language_model and self.lm_train_page.is_training():
            self.lm_train_page.stop()
        elif self.is_ready and self.train_page.is_training():
            self.train_page.stop_training()
        else:
            self.statusBar().showMessage("Nothing is training.", 3000)

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
        if not self.is_ready:
            return False
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
        if row < 0 or not self.is_ready:
            return
        self.pages.setCurrentIndex(self._page_index(row))
        # Panels fill in as data and runs arrive: explain the ML words shown now.
        explain_terms(self.pages.currentWidget())
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
        if state.is_language_model:
            data = state.lm_data
            self.data_status.setText(f"  {Path(data.source).name} · {len(data.examples):,} "
                                     f"examples · language model" if data is not None
                                     else "  Language model · no examples yet")
            return
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
        for action in (self.new_action, self.new_lm_action, self.open_action):
            action.setEnabled(not running)
        for page in (self.data_page, self.model_page, self.lm_data_page, self.lm_model_page):
            page.setEnabled(not running)

    @Slot(object)
    def _on_run_finished(self, result) -> None:
        self.run_status.setText(f"  Last run: {result.status}  ")
        self._save_runs()
        self.mlflow.run_finished(str(result.run_dir))

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
    def watch_run_folder(self, path: str = ""):
        """File → Watch a run folder: the live curves of a run another process writes (a
        cluster job on a shared folder); once it has ended it can join the project."""
        from .widgets.run_watch import RunWatchDialog  # loaded when first used

        path = path or dialogs.open_folder(self, "Choose the run folder to watch")
        if not path:
            return None
        try:
            dialog = RunWatchDialog(path, self)
        except TrainDeskError as exc:
            dialogs.show_error(self, "Not a run folder", exc)
            return None
        if self._watching is not None:  # one watched run at a time
            self._watching.close()
            self._watching.deleteLater()
        dialog.add_requested.connect(self._add_watched_run)
        dialog.show()
        self._watching = dialog
        return dialog

    @Slot(str)
    def _add_watched_run(self, path: str) -> None:
        snapshot = self._watching.snapshot if self._watching is not None else None
        if snapshot is None or str(snapshot.path) != path:
            return
        if snapshot.language_model != self.state.is_language_model:
            kind = "a language-model" if snapshot.language_model else "a table, text or image"
            self.statusBar().showMessage(f"That run joins {kind} project; open or start one "
                                         f"to add it.", 6000)
            return
        if any(Path(r.path).resolve() == Path(path).resolve() for r in self.state.project.runs):
            self.statusBar().showMessage("That run is already in the project.", 4000)
            return
        self.state.add_run(snapshot.record(), make_current=False)
        self._save_runs()
        self.statusBar().showMessage(f"Added {snapshot.title} to the project's runs.", 4000)

    @Slot()
    def new_language_model_project(self) -> None:
        """File → New language-model project: fine-tune a causal LM on chat examples."""
        if not self._confirm_discard():
            return
        self.state.replace_project(Project(name="Language model", kind="language-model"),
                                   None)
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
        if self.is_ready and self._dropped_path(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.is_ready and self._dropped_path(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        path = self._dropped_path(event.mimeData()) if self.is_ready else ""
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
            dialogs.show_error(self, "Could not open the project", exc)
            return False
        self.state.replace_project(project, None)
        self._remember(project.path)
        self.go_to(0)
        if project.kind == "language-model":
            self._reopen_language_model(project)
        elif project.data.source:
            # Read in the background like any import (a big file must not freeze the window);
            # a failure is reported and the project stays open with its settings and runs.
            self.data_page.load_source(project.data.source, project.data.read_options,
                                       keep_settings=True, reopening=True)
        return True

    def _reopen_language_model(self, project: Project) -> None:
        """Read an opened language-model project's examples and model again (in the
        background, like any import)."""
        config = project.language_model
        if config.data:
            self.lm_data_page.load(config.data)
        if config.backbone:
            self.lm_model_page.load(config.backbone)
        self.state.set_dirty(False)

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
            dialogs.show_error(self, "Could not save the project", exc)
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
        QMessageBox.about(self, "About TrainDesk", self.about_text())

    def about_text(self) -> str:
        """The About box: the version, the device, and each pretrained model that ships with
        TrainDesk with its source, licence and the sha256 its weights are checked against."""
        from html import escape

        from ml.models.library import shipped_models
        from ml.system.device import describe_device

        models = "".join(
            f"<li><b>{escape(m['name'])}</b> - licence {escape(m['license'] or 'unknown')}"
            f"<br>{escape(m['source'])}<br><small>{escape(m['file'] or 'weights')} sha256 "
            f"<code>{m['sha256']}</code></small></li>" for m in shipped_models())
        return (f"<h3>TrainDesk {__version__}</h3><p>Train neural networks "
                f"point-and-click, offline, on your own workstation.</p>"
                f"<p>Compute device: {describe_device('auto').label}</p>"
                f"<p>Pretrained models shipped with TrainDesk (see docs/models.md):</p>"
                f"<ul>{models}</ul>")

    # -- closing --------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if not self.is_ready:  # closed while starting: nothing to save but the geometry
            self.settings.setValue("window/geometry", self.saveGeometry())
            event.accept()
            return
        if self.train_page.is_training():
            if not dialogs.ask_yes_no(self, "Training is running",
                                      "Stop training and quit? The run so far is kept."):
                event.ignore()
                return
            # Let the stopped run finish saving and enter the project before asking to save it.
            self.train_page.stop_and_wait()
        if self.lm_train_page.is_training():
            if not dialogs.ask_yes_no(self, "Fine-tuning is running",
                                      "Stop fine-tuning and quit? The epochs so far are kept."):
                event.ignore()
                return
            self.lm_train_page.stop()
            self.lm_train_page.runner.wait_for_result()
        if not self._confirm_discard():
            event.ignore()
            return
        self.shutdown_jobs()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.save_panel_state()
        self.settings.sync()
        self.closed_cleanly.emit()
        event.accept()

    def shutdown_jobs(self) -> bool:
        """Cancel every background job of the process and join it (the window is closing).

        Each job stops at its next check, so this takes well under :data:`CLOSE_TIMEOUT_S`;
        one that does not is waited for longer rather than left running, since ending the
        process under a running thread aborts it and may cut a write short.
        """
        import logging

        from workers.jobs import job_registry

        registry = job_registry()
        if registry.shutdown_all(CLOSE_TIMEOUT_S):
            return True
        logging.getLogger(__name__).warning(
            "jobs still running %.0f s after closing: %s", CLOSE_TIMEOUT_S,
            ", ".join(job.name for job in registry.jobs()))
        return registry.join_all(LATE_JOB_TIMEOUT_S)

    # -- first start, tour and recovery --------------------------------------------------------
    def after_start(self, argv: list[str] | None = None) -> None:
        """What :func:`gui.app.run_app` does once the window is ready: open the project named
        on the command line, or bring back unsaved work after a crash, or welcome a new user."""
        argv = argv or []
        if argv and argv[0].endswith(PROJECT_SUFFIX):
            self.open_project(argv[0])
        elif self.recover_unsaved_work():
            pass
        elif self.settings.value("welcome/show", True) not in (False, "false"):
            self.show_welcome()

    def recover_unsaved_work(self) -> bool:
        """Restore the newest autosave left by a TrainDesk that did not close cleanly, and say
        so (non-blocking). Returns whether anything was restored."""
        from .autosave import find_orphans

        orphans = find_orphans(self.autosaver.folder)
        if not orphans:
            return False
        newest = orphans[0]
        project = newest.project
        self.state.replace_project(project, None)
        self.state.set_dirty(True)  # restored work is unsaved work (autosaved again at once)
        self.autosaver.write_now()
        newest.file.unlink(missing_ok=True)  # it now lives in this session's autosave
        self.go_to(0)
        if project.data.source:
            self.data_page.load_source(project.data.source, project.data.read_options,
                                       keep_settings=True, reopening=True)
        where = (f"Save (Ctrl+S) writes it to {project.path}." if project.path else
                 "Save it (Ctrl+S) to keep it.")
        more = (f"\n\n{len(orphans) - 1} older unsaved project(s) are kept in "
                f"{self.autosaver.folder}; they come back one at a time at the next starts."
                if len(orphans) > 1 else "")
        dialogs.show_info(self, "Unsaved work restored",
                          f"TrainDesk did not close properly last time. Your unsaved changes to "
                          f"\u201c{project.name}\u201d, as of {newest.when}, were restored. "
                          f"{where}{more}")
        return True

    @Slot()
    def show_welcome(self):
        """The welcome window (first start; Help → Welcome)."""
        from ml.data.samples import list_samples

        from .widgets.welcome import WelcomeDialog

        first = self.settings.value("welcome/seen") is None
        show_again = self.settings.value("welcome/show", False) in (True, "true") and not first
        dialog = WelcomeDialog(list_samples(), show_again, parent=self)
        self.settings.setValue("welcome/seen", True)
        self.settings.setValue("welcome/show", show_again)
        dialog.show_check.toggled.connect(
            lambda on: (self.settings.setValue("welcome/show", on), self.settings.sync()))
        dialog.sample_chosen.connect(self._open_sample)
        dialog.open_file_chosen.connect(self._open_any_file)
        dialog.open_folder_chosen.connect(self._open_any_folder)
        dialog.tour_chosen.connect(self.start_tour)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self._welcome = dialog
        return dialog

    @Slot(str)
    def _open_sample(self, source: str) -> None:
        if self._confirm_discard():
            self.go_to(0)
            self.data_page.load_source(source)

    @Slot()
    def _open_any_file(self) -> None:
        from .pages.data_page import FILE_FILTER

        path = dialogs.open_file(self, "Open a data file or a project",
                                 f"{PROJECT_FILTER};;{FILE_FILTER}")
        if path:
            self.open_dropped(path)

    @Slot()
    def _open_any_folder(self) -> None:
        path = dialogs.open_folder(self, "Open a folder of images (one sub-folder per class)")
        if path:
            self.open_dropped(path)

    @Slot()
    def start_tour(self):
        """The 30-second tour of the five steps (Help → The 30-second tour)."""
        from .widgets.welcome import TourDialog

        tour = TourDialog(self.step_list, self.go_to, parent=self)
        tour.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        tour.move(self.mapToGlobal(self.step_list.geometry().topRight()) + QPoint(24, 40))
        tour.start()
        self._tour = tour
        return tour

    # -- panel state ----------------------------------------------------------------------------
    def _panels(self) -> dict:
        """The splitters and tab bars whose state is remembered, by settings key."""
        return {"data/splitter": self.data_page.splitter,
                "data/imageSplitter": self.data_page.image_panel.splitter,
                "model/settingsTabs": self.model_page.settings_tabs,
                "model/viewTabs": self.model_page.view_tabs,
                "train/splitter": self.train_page.splitter,
                "export/tabs": self.export_page.tabs}

    def save_panel_state(self) -> None:
        """Remember the splitters' positions and the chosen tabs (``panels/...``)."""
        for key, widget in self._panels().items():
            if isinstance(widget, QSplitter):
                self.settings.setValue(f"panels/{key}", widget.saveState())
            else:
                self.settings.setValue(f"panels/{key}", widget.currentIndex())

    def restore_panel_state(self) -> None:
        """Put the panels back the way they were; a value that no longer fits is ignored."""
        for key, widget in self._panels().items():
            value = self.settings.value(f"panels/{key}")
            if value is None:
                continue
            if isinstance(widget, QSplitter):
                if isinstance(value, (bytes, bytearray, QByteArray)):
                    widget.restoreState(value)
                continue
            try:
                index = int(value)
            except (TypeError, ValueError):
                continue
            if 0 <= index < widget.count() and widget.isTabEnabled(index):
                widget.setCurrentIndex(index)


class _FirstPaint(QObject):
    """Calls *then* (on the next event-loop turn) once *widget* has painted for the first
    time; an event filter only while the window starts, so it costs nothing afterwards."""

    def __init__(self, widget: QWidget, then):
        super().__init__(widget)
        self._then = then
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, self._then)  # after this paint reaches the screen
        return False


class _StartupPage(QWidget):
    """What the window shows while the heavy modules load (a second or two, once)."""

    def __init__(self, steps: int):
        super().__init__()
        self.setObjectName("startupPage")
        self.title = QLabel("TrainDesk")
        font = self.title.font()
        font.setPointSize(26)
        font.setBold(True)
        self.title.setFont(font)
        self.text = QLabel("Starting …")
        self.bar = QProgressBar()
        self.bar.setRange(0, steps)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(320)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        for widget in (self.title, self.text, self.bar):
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)

    def show_step(self, text: str) -> None:
        self.text.setText(text)
        self.bar.setValue(self.bar.value() + 1)
        # The import that follows blocks the event loop, so the layout is settled and the page
        # painted here and now (without activate() the label kept the width of its old text).
        self.layout().activate()
        self.repaint()
