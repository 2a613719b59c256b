"""The Try it tab: draw, fill a form or type, and the answer equals ``main.py predict``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPoint, Qt

from ml.evaluation.tryit import Predictor
from ml.runs.folder import load_run
from tests.conftest import run_cli
from tests.gui.conftest import load_sample
from tests.gui.test_data_page import open_csv
from tests.gui.test_train_extras import _train
from tests.ml.test_import_pipeline import make_text_csv


def _try_it(qtbot, window):
    window.go_to(3)
    panel = window.evaluate_page.show_try_it()
    qtbot.waitUntil(lambda: panel.predictor is not None, timeout=30_000)
    return panel


def _stroke(qtbot, canvas, points):
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(*points[0]))
    for x, y in points[1:]:
        qtbot.mouseMove(canvas, QPoint(x, y))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(*points[-1]))


def test_a_drawn_digit_is_predicted_like_the_same_image_file(qtbot, window, user, tmp_path):
    load_sample(qtbot, window, "digits")
    _train(qtbot, window, epochs=3)
    panel = _try_it(qtbot, window)
    assert panel.inputs.currentIndex() == 1 and panel.style_.light_ink
    # Small gray images are drawn: the canvas, not the photo drop zone.
    assert panel.canvas.isVisibleTo(panel) and not panel.drop_zone.isVisibleTo(panel)
    canvas = panel.canvas
    _stroke(qtbot, canvas, [(140, 40), (140, 120), (140, 200), (141, 240)])  # a "1"
    qtbot.waitUntil(lambda: panel.prediction is not None, timeout=20_000)
    assert not canvas.is_empty()
    framed = panel.framed_drawing()
    png = tmp_path / "drawn.png"
    framed.save(png)
    predictor = panel.predictor
    # The canvas gives the model exactly the tensor the same image as a file gives.
    np.testing.assert_array_equal(predictor.image_input(framed), predictor.image_input(png))
    proc = run_cli("predict", str(window.state.current_run.path), str(png))
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()[:2]
    cli = dict(zip(header.split(","), row.split(",")))
    shown = panel.prediction
    assert cli["prediction"] == shown.label
    for name, p in shown.probabilities:
        assert float(cli[f"probability_{name}"]) == pytest.approx(p, abs=1e-6)
    assert len(panel.bars.bars) == 10 and panel.bars.winner == shown.label
    assert shown.label in panel.answer.text()
    assert panel.model_view.pixmap() is not None and not panel.model_view.pixmap().isNull()
    # Where the model looked: Grad-CAM (the digits model is convolutional), at the model's size.
    assert panel.method_label.text() == "Grad-CAM"
    heat = panel.explanation.heatmap
    assert heat.shape == (8, 8) and heat.max() == pytest.approx(1.0) and heat.min() >= 0
    panel.explain_check.setChecked(False)
    assert panel.method_label.text() == ""
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    assert canvas.is_empty() and panel.prediction is None

    # The same image dropped as a file, and pasted from the clipboard, gets the same answer.
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent, QGuiApplication, QImage

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    panel.dropEvent(drop)
    qtbot.waitUntil(lambda: panel.prediction is not None, timeout=20_000)
    assert [p for _, p in panel.prediction.probabilities] == pytest.approx(
        [p for _, p in shown.probabilities], abs=1e-6)
    panel._show(None)
    QGuiApplication.clipboard().setImage(QImage(str(png)))
    qtbot.mouseClick(panel.paste_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prediction is not None, timeout=20_000)
    assert [p for _, p in panel.prediction.probabilities] == pytest.approx(
        [p for _, p in shown.probabilities], abs=1e-6)
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(panel.paste_button, Qt.MouseButton.LeftButton)
    assert "clipboard holds no image" in panel.banner.text()


def test_the_form_predicts_as_values_change_and_files_are_predicted(qtbot, window, user,
                                                                     tmp_path):
    load_sample(qtbot, window, "iris")
    _train(qtbot, window, epochs=3)
    panel = _try_it(qtbot, window)
    assert panel.inputs.currentIndex() == 2
    assert set(panel.form_widgets) == {"sepal_length", "sepal_width", "petal_length",
                                       "petal_width"}
    qtbot.waitUntil(lambda: panel.prediction is not None, timeout=20_000)
    panel.form_widgets["petal_length"].setValue(6.5)
    panel.form_widgets["petal_width"].setValue(2.4)
    expected = Predictor(load_run(window.state.current_run.path)).predict_row(panel.form_values())
    qtbot.waitUntil(lambda: panel.prediction.label == expected.label
                    and abs(panel.prediction.value - expected.value) < 1e-6, timeout=20_000)
    panel.fill_random_row()
    rows = tmp_path / "new_flowers.csv"
    pd.DataFrame({"sepal_length": [5.1, 6.7], "sepal_width": [3.5, 3.0],
                  "petal_length": [1.4, 5.2], "petal_width": [0.2, 2.3]}).to_csv(rows, index=False)
    out = tmp_path / "predicted.csv"
    user.open_paths.append(str(rows))
    user.save_paths.append(str(out))
    qtbot.mouseClick(panel.batch_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Wrote 2 predictions" in panel.banner.text(), timeout=20_000)
    written = pd.read_csv(out)
    assert len(written) == 2 and "prediction" in written and "probability_setosa" in written
    assert written["prediction"][0] == "setosa"
    assert panel.batch_button.isEnabled()
    # A broken file: a message, and the earlier predictions are not touched.
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\x89PNG\x00\x00garbage")
    user.open_paths.append(str(broken))
    user.save_paths.append(str(out))
    qtbot.mouseClick(panel.batch_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.banner.kind == "error", timeout=20_000)
    assert "binary" in panel.banner.text() and len(pd.read_csv(out)) == 2
    assert panel.batch_button.isEnabled()
    # A form prediction landing afterwards (a debounced edit) keeps the file's error in view.
    panel.predict_form()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=20_000)
    assert panel.banner.kind == "error" and "binary" in panel.banner.text()


def test_text_is_predicted_at_every_keystroke(qtbot, window, user, tmp_path):
    open_csv(qtbot, window, user, make_text_csv(tmp_path / "reviews.csv"))
    window.data_page.target_combo.setCurrentText("sentiment")
    _train(qtbot, window, epochs=3)
    panel = _try_it(qtbot, window)
    assert panel.inputs.currentIndex() == 3
    answers = []
    panel.predicted.connect(lambda p: answers.append(p.label))
    qtbot.keyClicks(panel.text_edit, "great")
    qtbot.waitUntil(lambda: len(answers) >= 1, timeout=20_000)
    expected = Predictor(load_run(window.state.current_run.path)).predict_text("great")
    qtbot.waitUntil(lambda: panel.prediction.value == pytest.approx(expected.value, abs=1e-6),
                    timeout=20_000)
    assert panel.prediction.label == expected.label
    assert "great" in panel.token_view.text() and "background-color" in panel.token_view.text()
    assert panel.explanation.tokens == ["great"]


def test_a_mistake_opens_in_try_it_with_its_saliency(qtbot, window, user):
    load_sample(qtbot, window, "digits")
    _train(qtbot, window, epochs=1)
    window.go_to(3)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=30_000)
    dialog = page.show_mistakes()
    qtbot.addWidget(dialog)
    row = dialog.selected_row()
    assert row is not None
    qtbot.mouseClick(dialog.explain_button, Qt.MouseButton.LeftButton)
    panel = page.tryit
    assert page.page_tabs.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.prediction is not None and panel.explanation is not None,
                    timeout=30_000)
    ev = page.evaluation
    assert panel.prediction.label == ev.class_names[int(ev.y_pred[row])]
    assert panel.prediction.value == pytest.approx(float(ev.proba[row].max()), abs=1e-5)
    assert panel.explanation.heatmap.shape == (8, 8)


def test_two_runs_and_their_ensemble_side_by_side_then_exported(qtbot, window, user, tmp_path):
    load_sample(qtbot, window, "iris")
    _train(qtbot, window, epochs=3)
    window.state.update_training(epochs=4, lr=0.02)
    _train(qtbot, window, epochs=4)
    window.go_to(3)
    dialog = window.evaluate_page.open_compare()
    qtbot.addWidget(dialog)
    assert dialog.run_list.count() == 2 and len(dialog.checked_paths()) == 1
    assert not dialog.compare_button.isEnabled()
    dialog.check_paths([r.path for r in window.state.project.runs])
    dialog.ensemble_check.setChecked(True)
    qtbot.mouseClick(dialog.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.comparison is not None, timeout=30_000)
    assert dialog.table.columnCount() == 3 and "ensemble" in dialog.table.horizontalHeaderItem(
        2).text()
    rows = [dialog.table.verticalHeaderItem(r).text() for r in range(dialog.table.rowCount())]
    assert "Accuracy" in rows and "Log loss" in rows
    assert dialog.left_matrix.isVisibleTo(dialog) and not dialog.left_scatter.isVisibleTo(dialog)
    assert dialog.export_button.isEnabled()
    out = tmp_path / "ens.onnx"
    user.save_paths.append(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: out.is_file() and "identical predictions" in dialog.banner.text(),
                    timeout=60_000)
    dialog.close()


def test_a_photo_set_gets_a_drop_zone_a_large_preview_and_a_confidence_bar(qtbot, window,
                                                                          user, tmp_path):
    from PIL import Image

    from tests.gui.test_data_import_gui import open_folder
    from tests.ml.test_import_pipeline import make_image_folder

    open_folder(qtbot, window, user, make_image_folder(tmp_path / "photos", n=10))
    _train(qtbot, window, epochs=1)
    panel = _try_it(qtbot, window)
    assert panel.inputs.currentIndex() == 1
    assert panel.drop_zone.isVisibleTo(panel) and not panel.canvas.isVisibleTo(panel)
    assert not panel.clear_button.isVisibleTo(panel)
    photo = tmp_path / "holiday.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(photo)
    panel.predict_image_file(str(photo))
    qtbot.waitUntil(lambda: panel.prediction is not None and panel.drop_zone.photo is not None,
                    timeout=20_000)
    # The photo itself, large: not the model's 24x24 pixels blown up in a small tile.
    assert (panel.drop_zone.photo.width(), panel.drop_zone.photo.height()) == (400, 300)
    assert panel.drop_zone.width() > 1.5 * panel.model_view.width()
    shown = panel.prediction
    p = dict(shown.probabilities)[shown.label]
    assert panel.confidence.isVisibleTo(panel) and panel.confidence.value() == round(100 * p)
    assert panel.answer.text() == shown.text()
    # A file that cannot be read: a plain sentence, and the last photo's answer is gone.
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a png")
    panel.predict_image_file(str(broken))
    qtbot.waitUntil(lambda: panel.banner.kind == "error", timeout=20_000)
    assert "broken.png" in panel.banner.text() and "Traceback" not in panel.banner.text()
    assert panel.prediction is None and panel.answer.text() == "" and panel.bars.bars == []
    assert not panel.confidence.isVisibleTo(panel)
    qtbot.waitUntil(lambda: not panel.previewer.is_running(), timeout=20_000)
    assert panel.drop_zone.photo is None


def test_a_close_answer_says_not_sure(qtbot):
    from gui import theme
    from gui.widgets.tryit_panel import UNSURE_COLOUR, TryItPanel
    from ml.evaluation.tryit import Prediction

    panel = TryItPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 600)
    panel.show()
    theme.apply("dark")  # the amber must survive a theme's style sheet
    try:
        panel._show(Prediction("classification", "flower", 0.506,
                               [("flower", 0.506), ("china", 0.494)]))
        assert panel.answer.text() == "Not sure: flower 51%, china 49%"
        bar = panel.confidence
        assert bar.value() == 51 and "not sure" in bar.format() and bar.isVisible()

        def amber() -> bool:  # the chunk's colour as drawn (Fusion shades it a little)
            c = bar.grab().toImage().pixelColor(6, bar.height() // 2)
            return c.red() > 180 and c.blue() < 100 and UNSURE_COLOUR in bar.styleSheet()

        assert amber()
        panel._show(Prediction("classification", "flower", 0.97,
                               [("flower", 0.97), ("china", 0.03)]))
        assert panel.answer.text() == "flower  ·  97.0%" and bar.value() == 97
        assert "not sure" not in bar.format()
        assert not amber()
    finally:
        theme.apply("light")
        panel.shutdown()


def test_whole_number_fields_show_no_decimals(qtbot, window, user):
    load_sample(qtbot, window, "diabetes")
    _train(qtbot, window, epochs=1)
    panel = _try_it(qtbot, window)
    sex, age, bmi = (panel.form_widgets[n] for n in ("sex", "age", "bmi"))
    assert sex.decimals() == 0 and age.decimals() == 0 and "." not in age.text()
    assert bmi.decimals() > 0
    for field in panel.form_widgets.values():  # "25.7" and "4", not "25.700" and "4.0000"
        assert "." not in field.text() or not field.text().endswith("0"), field.text()
    age.stepBy(1)
    assert float(age.value()).is_integer()
    qtbot.waitUntil(lambda: panel.prediction is not None, timeout=20_000)
