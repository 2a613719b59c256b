"""The first-run welcome (open a sample, open a file, or take the tour) and the 30-second tour."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..steps import STEPS, TOUR

#: How long the tour stays on each step: five steps, thirty seconds.
TOUR_STEP_MS = 6000


def _big(button: QPushButton) -> QPushButton:
    font = button.font()
    font.setPointSize(font.pointSize() + 2)
    font.setBold(True)
    button.setFont(font)
    button.setMinimumSize(240, 44)
    return button


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setObjectName("welcomeNote")
    return label


class WelcomeDialog(QDialog):
    """Three ways to begin. Emits what the user chose; the window does it.

    Shown on the first start, and from Help → Welcome.
    """

    sample_chosen = Signal(str)  # "sample:NAME"
    open_file_chosen = Signal()
    open_folder_chosen = Signal()  # a file dialog cannot pick a folder: its own button
    tour_chosen = Signal()

    def __init__(self, samples, show_at_start: bool, parent=None):
        super().__init__(parent)
        self.setObjectName("welcomeDialog")
        self.setWindowTitle("Welcome to TrainDesk")
        title = QLabel("Welcome to TrainDesk")
        font = title.font()
        font.setPointSize(font.pointSize() + 10)
        font.setBold(True)
        title.setFont(font)
        intro = _note("Train a neural network on your own data, on this computer, in five "
                      "steps: Data → Model → Train → Evaluate → Export. Nothing leaves this "
                      "machine. How would you like to begin?")

        self.sample_combo = QComboBox()
        self.sample_combo.setObjectName("welcomeSample")
        for info in samples:
            self.sample_combo.addItem(f"{info.title} ({info.task}, {info.kind})", info.source)
            self.sample_combo.setItemData(self.sample_combo.count() - 1, info.description,
                                          Qt.ItemDataRole.ToolTipRole)
        self.sample_button = _big(QPushButton("Open a sample"))
        self.sample_button.setObjectName("welcomeSampleButton")
        self.file_button = _big(QPushButton("Open a file…"))
        self.file_button.setObjectName("welcomeFileButton")
        self.folder_button = _big(QPushButton("Open a folder…"))
        self.folder_button.setObjectName("welcomeFolderButton")
        self.tour_button = _big(QPushButton("Take the 30-second tour"))
        self.tour_button.setObjectName("welcomeTourButton")
        self.sample_button.setDefault(True)

        grid = QGridLayout()
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(10)
        grid.addWidget(self.sample_button, 0, 0)
        sample_side = QVBoxLayout()
        sample_side.addWidget(_note("A small dataset that ships with TrainDesk, ready to train "
                                    "in under a minute:"))
        sample_side.addWidget(self.sample_combo)
        grid.addLayout(sample_side, 0, 1)
        open_buttons = QVBoxLayout()
        open_buttons.addWidget(self.file_button)
        open_buttons.addWidget(self.folder_button)
        grid.addLayout(open_buttons, 1, 0)
        grid.addWidget(_note("Your own table (CSV, Excel, Parquet), a folder or .zip of images "
                             "sorted into one folder per class, or a saved TrainDesk project. "
                             "You can also drop it onto the window."), 1, 1)
        grid.addWidget(self.tour_button, 2, 0)
        grid.addWidget(_note("What each of the five steps does, in thirty seconds."), 2, 1)
        grid.setColumnStretch(1, 1)

        self.show_check = QCheckBox("Show this window when TrainDesk starts")
        self.show_check.setObjectName("welcomeShowCheck")
        self.show_check.setChecked(show_at_start)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.show_check)
        bottom.addStretch(1)
        bottom.addWidget(close)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 24, 28, 20)
        layout.setSpacing(14)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addLayout(grid)
        layout.addStretch(1)
        layout.addLayout(bottom)
        self.resize(760, 420)

        self.sample_button.clicked.connect(self._on_sample)
        self.file_button.clicked.connect(self._on_file)
        self.folder_button.clicked.connect(self._on_folder)
        self.tour_button.clicked.connect(self._on_tour)

    @Slot()
    def _on_sample(self) -> None:
        source = self.sample_combo.currentData()
        self.accept()
        if source:
            self.sample_chosen.emit(source)

    @Slot()
    def _on_file(self) -> None:
        self.accept()
        self.open_file_chosen.emit()

    @Slot()
    def _on_folder(self) -> None:
        self.accept()
        self.open_folder_chosen.emit()

    @Slot()
    def _on_tour(self) -> None:
        self.accept()
        self.tour_chosen.emit()


class TourDialog(QDialog):
    """Walks through the five steps, six seconds each (or Back/Next at the user's pace).

    It shows each step's page when that step is open, and always marks the step in the list.

    Parameters
    ----------
    step_list : QListWidget
        The window's step list, whose items are highlighted in turn.
    show_step : callable
        ``show_step(row)`` shows that step's page if it is open (``MainWindow.go_to``).
    """

    def __init__(self, step_list, show_step, parent=None):
        super().__init__(parent)
        self.setObjectName("tourDialog")
        self.setWindowTitle("TrainDesk in 30 seconds")
        self.step_list = step_list
        self.show_step = show_step
        self.index = -1
        self.heading = QLabel()
        font = self.heading.font()
        font.setPointSize(font.pointSize() + 6)
        font.setBold(True)
        self.heading.setFont(font)
        self.text = _note("")
        self.text.setMinimumHeight(70)
        self.bar = QProgressBar()
        self.bar.setRange(0, len(STEPS))
        self.bar.setFormat("Step %v of %m")
        self.back_button = QPushButton("◀ Back")
        self.next_button = QPushButton("Next ▶")
        self.close_button = QPushButton("Close")
        self.back_button.clicked.connect(lambda: self.go(self.index - 1))
        self.next_button.clicked.connect(self._next)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.text)
        layout.addWidget(self.bar)
        layout.addLayout(buttons)
        self.resize(520, 220)
        self.timer = QTimer(self)
        self.timer.setInterval(TOUR_STEP_MS)
        self.timer.timeout.connect(self._next)
        self.finished.connect(self._clear_marks)

    def start(self) -> None:
        self.go(0)
        self.timer.start()
        self.show()

    def go(self, index: int) -> None:
        index = max(0, min(index, len(STEPS) - 1))
        self.index = index
        self.heading.setText(f"{index + 1}  {STEPS[index]}")
        self.text.setText(TOUR[index])
        self.bar.setValue(index + 1)
        self.back_button.setEnabled(index > 0)
        self.next_button.setText("Done" if index == len(STEPS) - 1 else "Next ▶")
        self.show_step(index)
        self._clear_marks()
        mark = QColor(self.palette().highlight().color())
        mark.setAlpha(90)
        self.step_list.item(index).setBackground(QBrush(mark))

    @Slot()
    def _next(self) -> None:
        if self.index >= len(STEPS) - 1:
            self.close()
        else:
            self.go(self.index + 1)
            self.timer.start()  # a click restarts the six seconds

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.timer.stop()
        self._clear_marks()
        super().closeEvent(event)

    @Slot()
    def _clear_marks(self) -> None:
        for i in range(self.step_list.count()):
            self.step_list.item(i).setBackground(QBrush())
