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


def test_confusion_matrix_cells_can_show_the_share_of_each_true_class(qtbot):
    widget = ConfusionMatrixWidget()
    qtbot.addWidget(widget)
    widget.set_matrix(np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]]), ["a", "b", "c"])
    assert widget.cell_text(0, 1) == "2"
    widget.set_normalized(True)
    assert [widget.cell_text(0, j) for j in range(3)] == ["80%", "20%", "0%"]
    assert widget.cell_text(1, 1) == "75%" and widget.cell_text(2, 2) == "-"  # absent class
    widget.grab()


def test_a_big_frame_is_offered_to_the_view_in_batches_as_it_scrolls(qtbot):
    """A view lays out every row its model reports: a million rows at once froze the window.
    Rows arrive a batch at a time, and scrolling to the end brings the next batch."""
    import pandas as pd
    from PySide6.QtWidgets import QTableView

    from gui.widgets.table_models import DataFrameModel

    n = 2 * DataFrameModel.batch + 123
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "name": [f"r{i}" for i in range(n)]})
    model = DataFrameModel(frame)
    assert model.rowCount() == DataFrameModel.batch and model.total_rows == n
    view = QTableView()
    view.setModel(model)
    view.resize(400, 300)
    qtbot.addWidget(view)
    view.show()
    view.scrollToBottom()  # a user dragging the scroll bar to the end
    qtbot.waitUntil(lambda: model.rowCount() > DataFrameModel.batch, timeout=2000)
    while model.canFetchMore():
        model.fetchMore()
    assert model.rowCount() == n and not model.canFetchMore()
    assert model.data(model.index(n - 1, 1)) == f"r{n - 1}"
    model.set_frame(frame.head(5))  # a new, small frame starts over
    assert model.rowCount() == 5 and not model.canFetchMore()


def test_example_thumbnails_scale_float_images_and_keep_their_pixels(qtbot):
    import numpy as np

    from gui.widgets.examples import image_pixmap

    digit = np.zeros((1, 8, 8), np.float32)
    digit[0, 2:6, 3] = 16.0  # the digits sample's 0..16 intensities
    image = image_pixmap(digit, 64).toImage()
    assert image.width() == 64
    assert image.pixelColor(3 * 8 + 4, 3 * 8 + 4).value() == 255  # a stroke pixel: white
    assert image.pixelColor(4, 4).value() == 0
    rgb = np.zeros((3, 4, 4), np.uint8)
    rgb[0] = 200
    assert image_pixmap(rgb, 4).toImage().pixelColor(1, 1).red() == 200


def test_format_duration_in_words_and_as_a_clock():
    from gui.widgets.common import format_duration

    assert [format_duration(s) for s in (0.25, 4.5, 150, 5400)] == [
        "250 ms", "4.5 s", "2.5 min", "1.5 h"]
    assert [format_duration(s, clock=True) for s in (0, 65.4, 3723)] == [
        "00:00", "01:05", "1:02:03"]
    assert format_duration(float("nan"), clock=True) == "--:--"
    assert format_duration(float("inf")) == ""
