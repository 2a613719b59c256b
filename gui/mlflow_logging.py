"""Training → Log finished runs to MLflow: each run that ends is logged in the background to
an MLflow tracking store (:mod:`ml.jobs.tracking`) - by default a SQLite file in the TrainDesk
home, or the store the user names. Remembered in the settings (``tracking/mlflow``,
``tracking/mlflow_uri``)."""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMainWindow, QMenu

from . import dialogs


class MlflowLogging(QObject):
    """The two menu entries and the queue of runs to log (folds and trials end in quick
    succession; they are logged one after another)."""

    def __init__(self, window: QMainWindow, settings: QSettings, menu: QMenu):
        super().__init__(window)
        self.window, self.settings = window, settings
        menu.addSeparator()
        self.toggle = QAction("Log finished runs to &MLflow", window, checkable=True)
        self.toggle.setChecked(settings.value("tracking/mlflow", False, type=bool))
        self.toggle.toggled.connect(self._remember)
        menu.addAction(self.toggle)
        self.store_action = QAction("MLflow tracking s&tore…", window)
        self.store_action.triggered.connect(self.choose_store)
        menu.addAction(self.store_action)
        self._runner = None  # made on first use: the window shows before torch is imported
        self.queue: list[str] = []
        menu.aboutToShow.connect(self._describe)  # not at start: it would load torch early

    @property
    def runner(self):
        """The background runner of the logging (a :class:`workers.base.TaskRunner`)."""
        if self._runner is None:
            from workers.base import TaskRunner

            self._runner = TaskRunner(self)
            self._runner.finished.connect(self._on_logged)
            self._runner.errored.connect(self._on_failed)
        return self._runner

    def uri(self) -> str:
        """The store runs go to ("" for the local default)."""
        return str(self.settings.value("tracking/mlflow_uri", "") or "")

    def set_store(self, uri: str) -> None:
        self.settings.setValue("tracking/mlflow_uri", uri.strip())
        self._describe()

    @Slot()
    def _describe(self) -> None:
        from ml.jobs.tracking import default_uri, is_local  # torch loads later, not at start

        uri = self.uri() or default_uri()
        where = "on this machine" if is_local(uri) else "on a server (sent over the network)"
        self.toggle.setToolTip(f"Each finished run's settings, curves and model files go to "
                               f"{uri}, {where}.")

    @Slot(bool)
    def _remember(self, on: bool) -> None:
        self.settings.setValue("tracking/mlflow", on)

    @Slot()
    def choose_store(self) -> None:
        uri, ok = QInputDialog.getText(
            self.window, "MLflow tracking store",
            "Tracking URI - empty: a SQLite file in the TrainDesk home. Only a server's URI "
            "(http://…) sends anything over the network.", text=self.uri())
        if ok:
            self.set_store(uri)

    def run_finished(self, run_dir: str) -> None:
        """A run ended: log it, when the user asked for that."""
        if self.toggle.isChecked():
            self.queue.append(str(run_dir))
            self._next()

    def _next(self) -> None:
        from ml.jobs.tracking import log_run
        from workers.base import FunctionWorker

        if self.queue and not self.runner.is_running():
            self.runner.start(FunctionWorker(log_run, self.queue.pop(0), self.uri() or None))

    @Slot(object)
    def _on_logged(self, logged) -> None:
        self.window.statusBar().showMessage(logged.sentence(), 8000)
        self._next()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        dialogs.show_error(self.window, "Could not log the run to MLflow",
                           f"{message} The run itself is saved; switch the logging off in the "
                           f"Training menu, or choose another store there.")
        self._next()
