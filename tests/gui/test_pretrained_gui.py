"""The Model page's start for pretrained backbones (issue 20): what it proposes for photos and
text, the ways of training and their settings, scratch one choice away, what the layer editor,
diagram and augmentation preview show, and a linear probe trained end to end."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QStandardItemModel

from tests.gui.test_data_import_gui import open_csv, open_folder
from tests.gui.test_train_extras import _train
from tests.ml.test_import_pipeline import make_text_csv


def make_photos(root, n=6, size=40):
    """Two classes of *n* colour pictures, *size* px: big enough to be proposed a backbone."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            if c == 0:
                img[:, : size // 2] += 150
            else:
                img[: size // 2, :] += 150
            Image.fromarray(img).save(root / name / f"{name}_{i}.png")
    return root


def _entries(combo) -> list:
    return [combo.itemData(i) for i in range(combo.count())]


def _choose(qtbot, combo, value) -> None:
    """Pick *value* as a user does (``activated`` fires)."""
    index = combo.findData(value)
    assert index >= 0, value
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def _lora_enabled(choice) -> bool:
    model = choice.mode_combo.model()
    assert isinstance(model, QStandardItemModel)
    return model.item(choice.mode_combo.findData("lora")).isEnabled()


def test_photos_are_proposed_efficientnet_fine_tuning_with_probe_and_scratch_a_choice_away(
        qtbot, window, user, tmp_path):
    open_folder(qtbot, window, user, make_photos(tmp_path / "pets"))
    state, page = window.state, window.model_page
    choice = page.start_choice
    window.go_to(1)
    model = state.project.model
    assert (model.backbone, model.train_mode) == ("efficientnet_lite0", "finetune")
    assert "EfficientNet-Lite0" in state.proposal
    assert state.spec.name == "efficientnet_lite0-finetune"
    assert state.spec.input_shape == [3, 224, 224]  # what the backbone reads, in colour
    assert (state.project.training.lr, state.project.training.batch_size) == (1e-3, 16)
    assert _entries(choice.start_combo) == ["efficientnet_lite0", "__library__", ""]
    assert not _lora_enabled(choice)  # EfficientNet has no attention layers
    assert choice.head_spin.isVisibleTo(page) and not choice.rank_spin.isVisibleTo(page)
    assert "EfficientNet-Lite0 · fine-tune" in page.input_label.text()
    # The backbone decides the layers: preset and editor are off, and say why.
    assert not page.preset_combo.isEnabled() and not page.editor.isEnabled()
    assert page.editor_note.isVisibleTo(page) and "new head" in page.editor_note.text()
    assert page.editor.tree.topLevelItem(0).text(1).startswith("Pretrained: EfficientNet")
    assert page.diagram.boxes[1][0].startswith("1. Pretrained: EfficientNet-Lite0")
    learning = int(page.params_card.value_label.text().replace(",", ""))
    assert learning == state.model_summary.total_params > 3_000_000

    _choose(qtbot, choice.mode_combo, "probe")
    assert model.train_mode == "probe" and state.spec.name == "efficientnet_lite0-probe"
    assert (state.project.training.lr, state.project.training.epochs) == (3e-3, 30)
    assert not choice.head_spin.isVisibleTo(page)
    assert int(page.params_card.value_label.text().replace(",", "")) == 1280 * 2 + 2

    _choose(qtbot, choice.start_combo, "")
    assert model.backbone == "" and state.spec.name == "cnn"
    assert state.spec.input_shape == [3, 40, 40]
    assert page.preset_combo.isEnabled() and page.editor.isEnabled()
    assert not choice.mode_combo.isVisibleTo(page) and not page.editor_note.isVisibleTo(page)
    assert user.errors == []


def test_small_images_start_from_scratch(qtbot, window, user, tmp_path):
    open_folder(qtbot, window, user, make_photos(tmp_path / "tiny", size=24))
    assert window.state.project.model.backbone == ""
    assert window.state.spec.name == "cnn" and window.state.proposal == ""
    # ...but EfficientNet is still offered.
    assert "efficientnet_lite0" in _entries(window.model_page.start_choice.start_combo)


def test_text_offers_minilm_with_lora_and_proposes_it_only_when_fast_enough(
        qtbot, window, user, tmp_path, monkeypatch):
    open_csv(qtbot, window, user, make_text_csv(tmp_path / "reviews.csv"))
    state, page = window.state, window.model_page
    choice = page.start_choice
    window.go_to(1)
    # On a slow machine (the fixture's speed) MiniLM would take too long: the fast model.
    assert state.project.model.backbone == "" and state.spec.name == "text"
    assert "fast bag-of-embeddings" in state.proposal and "minutes" in state.proposal
    assert _entries(choice.start_combo) == ["minilm", "__library__", ""]
    _choose(qtbot, choice.start_combo, "minilm")
    assert state.spec.name == "minilm-finetune" and 8 <= state.spec.input_shape[0] < 128
    assert _lora_enabled(choice)
    _choose(qtbot, choice.mode_combo, "lora")
    assert state.project.model.train_mode == "lora" and choice.rank_spin.isVisibleTo(page)
    choice.rank_spin.setValue(4)
    assert state.project.model.lora_rank == 4
    assert "MiniLM · LoRA" in page.input_label.text()
    learning = int(page.params_card.value_label.text().replace(",", ""))
    assert learning < state.model_summary.total_params // 100  # the adapters and the head

    from ml.training import estimate

    monkeypatch.setattr(estimate, "machine_flops", lambda device="auto": 1e13)
    page._suggest()  # "Suggest for my data" on a fast machine
    assert state.project.model.backbone == "minilm"
    assert state.project.model.train_mode == "finetune"
    assert "MiniLM" in state.proposal and "on this machine" in state.proposal
    assert choice.proposal_label.text() == state.proposal
    page.undo_stack.undo()  # the suggestion's network part is undone
    assert state.project.model.backbone == "minilm"
    assert state.project.model.train_mode == "lora"


def test_the_augmentation_preview_shows_what_the_backbone_sees(qtbot, window, user, tmp_path):
    open_folder(qtbot, window, user, make_photos(tmp_path / "pets"))
    panel = window.data_page.image_panel
    preview = panel.preview
    qtbot.waitUntil(lambda: preview._images is not None, timeout=5000)
    preview.refresh_now()
    assert preview._images.shape[1:] == (224, 224, 3)
    assert not panel.size_spin.isEnabled() and "EfficientNet-Lite0" in panel.input_label.text()
    window.state.choose_start("")
    preview.refresh_now()
    assert preview._images.shape[1:] == (40, 40, 3) and panel.size_spin.isEnabled()


def test_a_linear_probe_trains_end_to_end(qtbot, window, user, tmp_path):
    open_folder(qtbot, window, user, make_photos(tmp_path / "pets"))
    state = window.state
    state.choose_start("efficientnet_lite0", "probe")
    page = _train(qtbot, window, epochs=3, batch_size=4)
    assert user.errors == []
    run = state.current_run
    assert run is not None and run.record.status == "finished"
    assert run.record.model == "efficientnet_lite0-probe"
    assert "EfficientNet-Lite0 · linear probe" in run.record.title
    assert page is not None
