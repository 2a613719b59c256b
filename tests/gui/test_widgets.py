import numpy as np
from PySide6.QtGui import QFontMetrics

from gui.widgets.plots import ConfusionMatrixWidget


def test_confusion_matrix_leaves_room_for_its_labels(qtbot):
    widget = ConfusionMatrixWidget()
    qtbot.addWidget(widget)
    widget.resize(690, 600)
    labels = ["setosa", "versicolor", "virginica"]
    widget.set_matrix(np.eye(3, dtype=int), labels)
    area, _ = widget._geometry()
    room = widget._label_width()
    widest = max(QFontMetrics(widget._label_font()).horizontalAdvance(lab) for lab in labels)
    assert room > widest
    # Row labels sit between the title band and the matrix; column labels (rotated) below it.
    assert area.left() - widget.TITLE_BAND >= room
    assert widget.height() - area.bottom() >= room
    widget.grab()  # paints without errors
