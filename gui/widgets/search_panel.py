"""Hyperparameter search: the dialog that sets one up, and the table of its trials."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ml.errors import TrainDeskError
from ml.jobs.search import PARAMETERS, SearchSpace
from ml.labels import setting_label
from ml.runs.project import Project

from ..theme import mark_problem, mute

#: A trial's state (ml.jobs.search.Trial.state) as the table says it.
STATES = {"complete": "finished", "pruned": "stopped early (hopeless)", "failed": "failed",
          "stopped": "stopped"}

#: Spin boxes for each range: (decimals, step, minimum, maximum) of the two bounds.
_RANGE_SPINS = {"lr": (5, 0.0001, 1e-6, 10.0), "width": (0, 8, 1, 4096),
                "depth": (0, 1, 1, 12), "dropout": (2, 0.05, 0.0, 0.95),
                "weight_decay": (6, 1e-5, 1e-8, 1.0)}


class SearchDialog(QDialog):
    """Tick what to search, set ranges and a budget; ``settings()`` gives the choice."""

    def __init__(self, project: Project, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("searchDialog")
        self.setWindowTitle("Search for better settings")
        self.project = project
        self.checks: dict[str, QCheckBox] = {}
        self.low: dict[str, QDoubleSpinBox] = {}
        self.high: dict[str, QDoubleSpinBox] = {}
        self.choices: dict[str, dict] = {}
        space_box = self._build_space()

        form = self._build_budget()
        epochs = project.training.epochs
        note = QLabel(f"Each trial is a full run of up to {epochs} epochs and is kept in the "
                      f"run history. Searching runs in the background; you can stop it at "
                      f"any time and keep the trials so far.")
        note.setWordWrap(True)
        mute(note)
        self.error = QLabel()
        mark_problem(self.error)
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start = buttons.addButton("Start search", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(space_box)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def _build_space(self) -> QGroupBox:
        """A row per setting: whether to search it, and its range or its choices."""
        grid = QGridLayout()
        grid.addWidget(QLabel("<b>Search</b>"), 0, 0)
        grid.addWidget(QLabel("<b>from</b>"), 0, 1)
        grid.addWidget(QLabel("<b>to</b>"), 0, 2)
        defaults = {"lr", "batch_size", "dropout", "weight_decay"}
        hand_made = bool(self.project.model.layers)
        for r, (name, (label, default)) in enumerate(PARAMETERS.items(), start=1):
            check = QCheckBox(label)
            check.setObjectName(f"search_{name}")
            check.setChecked(name in defaults)
            if hand_made and name in ("width", "depth"):
                check.setChecked(False)
                check.setEnabled(False)
                check.setToolTip("Width and depth apply to presets; this model's layers were "
                                 "edited by hand.")
            self.checks[name] = check
            grid.addWidget(check, r, 0)
            if isinstance(default, list):
                row = QHBoxLayout()
                boxes = {}
                for value in default:
                    box = QCheckBox(str(value))
                    box.setChecked(True)
                    boxes[value] = box
                    row.addWidget(box)
                row.addStretch(1)
                self.choices[name] = boxes
                grid.addLayout(row, r, 1, 1, 2)
                continue
            decimals, step, lo, hi = _RANGE_SPINS[name]
            for col, value, store in ((1, default[0], self.low), (2, default[1], self.high)):
                spin = QDoubleSpinBox()
                spin.setDecimals(decimals)
                spin.setRange(lo, hi)
                spin.setSingleStep(step)
                spin.setValue(value)
                store[name] = spin
                grid.addWidget(spin, r, col)
        space_box = QGroupBox("What to search")
        space_box.setLayout(grid)
        return space_box

    def _build_budget(self) -> QFormLayout:
        """Trials, time budget, strategy and pruning."""
        self.trials = QSpinBox()
        self.trials.setObjectName("searchTrials")
        self.trials.setRange(1, 10_000)
        self.trials.setValue(20)
        self.minutes = QDoubleSpinBox()
        self.minutes.setObjectName("searchMinutes")
        self.minutes.setRange(0, 10_000)
        self.minutes.setDecimals(0)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setSuffix(" min")
        self.sampler = QComboBox()
        self.sampler.addItem("Bayesian (TPE): learns from earlier trials", "tpe")
        self.sampler.addItem("Random", "random")
        self.pruning = QCheckBox("Stop hopeless trials early (below the median of earlier "
                                 "trials)")
        self.pruning.setChecked(True)
        form = QFormLayout()
        form.addRow("Trials", self.trials)
        form.addRow("Time budget", self.minutes)
        form.addRow("Strategy", self.sampler)
        form.addRow("", self.pruning)
        return form

    def settings(self) -> dict:
        """``{"space": SearchSpace, "trials", "minutes", "sampler", "pruning"}``."""
        params = [n for n, c in self.checks.items() if c.isChecked()]
        ranges = {}
        for name in params:
            if name in self.choices:
                ranges[name] = [v for v, box in self.choices[name].items() if box.isChecked()]
            else:
                lo, hi = self.low[name].value(), self.high[name].value()
                ranges[name] = (int(lo), int(hi)) if name in ("width", "depth") else (lo, hi)
        return {"space": SearchSpace(params=params, ranges=ranges),
                "trials": self.trials.value(),
                "minutes": self.minutes.value() or None,
                "sampler": self.sampler.currentData(), "pruning": self.pruning.isChecked()}

    @Slot()
    def _accept(self) -> None:
        try:
            self.settings()["space"].validate(self.project)
        except TrainDeskError as exc:
            self.error.setText(str(exc))
            return
        self.accept()


class SearchResultsPanel(QWidget):
    """The trials of the latest search, best first on request; "Use the best" applies it."""

    use_best = Signal(dict)  # the best trial's parameter values

    COLUMNS = ("Trial", "State", "Validation", "Epochs", "Settings")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("No search yet. Use “More ▾ › Search for better settings…” to "
                            "start one.")
        self.title.setWordWrap(True)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("trialsTable")
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.best_button = QPushButton("Use the best settings")
        self.best_button.setObjectName("useBestButton")
        self.best_button.setEnabled(False)
        self.best_button.clicked.connect(self._use_best)
        row = QHBoxLayout()
        row.addWidget(self.title, 1)
        row.addWidget(self.best_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        self.trials: list[dict] = []
        self.best: int | None = None
        self.metric = "accuracy"

    def start(self) -> None:
        self.trials, self.best = [], None
        self.table.setRowCount(0)
        self.best_button.setEnabled(False)
        self.title.setText("Searching …")

    def add_trial(self, info: dict) -> None:
        """One finished trial (``TrainingWorker.trial_finished``)."""
        self.trials.append(info["trial"])
        self.best, self.metric = info["best"], info["metric"]
        self._fill()

    def _fill(self) -> None:
        self.table.setRowCount(len(self.trials))
        accuracy = self.metric == "accuracy"
        for r, t in enumerate(self.trials):
            value = t.get("value")
            shown = "" if value is None or not math.isfinite(value) else (
                f"{100 * value:.1f}%" if accuracy else f"{value:.4g}")
            params = ", ".join(f"{setting_label(k)} {v:.3g}" if isinstance(v, float)
                               else f"{setting_label(k)} {v}" for k, v in t["params"].items())
            state = STATES.get(t["state"], t["state"]) + (" ★ best" if t["number"] == self.best
                                                          else "")
            cells = (str(t["number"]), state, shown, str(t.get("epochs", "")),
                     params + (f" — {t['error']}" if t.get("error") else ""))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if t["number"] == self.best:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)
        best = self.best_trial()
        self.best_button.setEnabled(best is not None)
        name = "accuracy" if accuracy else "MAE"
        text = f"{len(self.trials)} trial(s)"
        if best is not None:
            value = self.table.item(self.trials.index(best), 2).text()
            text += f"; best: trial {best['number']} with validation {name} {value}"
        else:
            text += "; none finished yet"
        self.title.setText(text)

    def best_trial(self) -> dict | None:
        return next((t for t in self.trials if t["number"] == self.best), None)

    def finish(self, stopped: bool) -> None:
        if stopped:
            self.title.setText(self.title.text() + " (stopped)")

    @Slot()
    def _use_best(self) -> None:
        best = self.best_trial()
        if best is not None:
            self.use_best.emit(dict(best["params"]))
