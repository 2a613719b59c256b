"""A pretrained run on the Evaluate page: its evaluation, Try it with a photo and its Grad-CAM,
and a sentence with its word pieces' attributions."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.conftest import write_reviews
from tests.gui.test_data_import_gui import open_csv, open_folder
from tests.gui.test_pretrained_gui import make_photos
from tests.gui.test_train_extras import _train
from tests.gui.test_tryit_gui import _try_it


def test_a_probed_photo_model_is_evaluated_tried_and_explained(qtbot, window, user, tmp_path):
    open_folder(qtbot, window, user, make_photos(tmp_path / "pets"))
    window.state.choose_start("efficientnet_lite0", "probe")
    _train(qtbot, window, epochs=3, batch_size=4)
    assert user.errors == []
    panel = _try_it(qtbot, window)
    page = window.evaluate_page
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=60_000)
    assert page.evaluation.n == 2
    photo = tmp_path / "new.jpg"
    Image.fromarray(np.full((90, 120, 3), 200, np.uint8)).save(photo)
    panel.predict_image_file(str(photo))
    qtbot.waitUntil(lambda: panel.prediction is not None and panel.explanation is not None,
                    timeout=60_000)
    assert panel.prediction.label in ("cats", "dogs")
    assert panel.explanation.method == "Grad-CAM"   # inside the backbone
    assert panel.explanation.heatmap.shape == (224, 224)


def test_a_fine_tuned_text_backbone_explains_its_word_pieces(qtbot, window, user, tmp_path,
                                                            tiny_bert):
    open_csv(qtbot, window, user, write_reviews(tmp_path / "reviews.csv"))
    window.data_page.target_combo.setCurrentText("sentiment")
    window.state.choose_start(str(tiny_bert), "finetune")
    _train(qtbot, window, epochs=1, batch_size=16)
    assert user.errors == []
    panel = _try_it(qtbot, window)
    qtbot.keyClicks(panel.text_edit, "great film")
    qtbot.waitUntil(lambda: panel.explanation is not None, timeout=30_000)
    assert panel.explanation.tokens == ["great", "film"]
    assert "great" in panel.token_view.text()
