"""The Data page's image panel: thumbnails, class filter, image and augmentation settings, the
augmentation preview and skipped files."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

CLASSES = ("apple", "banana", "cherry")
COLOURS = {"apple": (200, 30, 30), "banana": (230, 210, 40), "cherry": (120, 20, 90)}


def make_fruit_folder(root, n=6, size=40):
    """3 class folders of coloured shapes, plus a broken PNG and a text file (both skipped)."""
    rng = np.random.default_rng(0)
    for name in CLASSES:
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(n):
            img = np.full((size, size, 3), 245, np.uint8)
            r = int(rng.integers(6, 14))
            cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
            yy, xx = np.mgrid[:size, :size]
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = COLOURS[name]
            img[: size // 4, : size // 2] = (40, 40, 40)  # asymmetric: flips are visible
            Image.fromarray(img).save(folder / f"{name}_{i}.png")
    (root / "apple" / "broken.png").write_bytes(b"this is not a png")
    (root / "banana" / "notes.txt").write_text("hello")
    return root


@pytest.fixture
def fruit_state(tmp_path):
    from gui.state import ProjectState
    from ml.data.dataset import load_dataset

    folder = make_fruit_folder(tmp_path / "fruit")
    state = ProjectState()
    state.set_dataset(load_dataset(str(folder)))
    # The panel's own size and colour: a proposed backbone (EfficientNet) would decide them.
    state.choose_start("")
    return state


@pytest.fixture
def make_panel(qtbot):
    panels = []

    def make(state, width=1100, height=800):
        from gui.pages.image_panel import ImagePanel

        panel = ImagePanel(state)
        qtbot.addWidget(panel)
        panel.resize(width, height)
        panel.show()
        qtbot.waitExposed(panel)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.shutdown()


def visible_rows(panel) -> list[int]:
    """The rows the grid shows now (probed on a fine raster, fast for any number of rows)."""
    view = panel.grid.view
    area, step = view.viewport().rect(), view.gridSize() / 3
    rows = {view.indexAt(QPoint(x, y)).row()
            for x in range(0, area.width(), max(step.width(), 1))
            for y in range(0, area.height(), max(step.height(), 1))}
    return sorted(rows - {-1})


def test_thumbnails_arrive_for_the_visible_rows(qtbot, fruit_state, make_panel):
    panel = make_panel(fruit_state)
    model = panel.grid.model
    assert model.rowCount() == 18
    rows = visible_rows(panel)
    assert rows
    qtbot.waitUntil(lambda: all(model.has_thumbnail(r) for r in rows), timeout=10_000)
    icon = model.data(model.index(rows[0], 0), Qt.ItemDataRole.DecorationRole)
    assert icon.cacheKey() != model._waiting.cacheKey()
    # Small images are enlarged with whole pixels: 40 px -> 80 px of a 96 px thumbnail.
    assert panel.grid.loader.cached(model.key(rows[0])).width() == 80
    assert model.data(model.index(0, 0)) == "apple"
    tip = model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
    assert "apple_0.png" in tip and "40 × 40" in tip and "RGB" in tip
    assert "18</b> images" in panel.stats_label.text()
    assert "3</b> classes" in panel.stats_label.text()
    assert "40 × 40" in panel.stats_label.text()


def test_class_filter_reduces_the_rows(qtbot, fruit_state, make_panel):
    panel = make_panel(fruit_state)
    combo = panel.grid.class_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "All classes (18)", "apple (6)", "banana (6)", "cherry (6)"]
    combo.setCurrentIndex(2)
    model = panel.grid.model
    assert model.rowCount() == 6
    assert {model.data(model.index(r, 0)) for r in range(6)} == {"banana"}
    assert panel.grid.count_label.text() == "6 of 18 images"
    rows = visible_rows(panel)
    qtbot.waitUntil(lambda: all(model.has_thumbnail(r) for r in rows), timeout=10_000)
    panel.grid.set_class(None)
    assert model.rowCount() == 18


def test_settings_write_to_the_project(qtbot, fruit_state, make_panel):
    panel = make_panel(fruit_state)
    data = fruit_state.project.data
    spin = panel.findChild(type(panel.size_spin), "imageSizeSpin")
    assert spin.value() == 0 and spin.text() == "Auto (40 px)"
    spin.setValue(32)
    assert data.image_size == 32
    assert fruit_state.summary.image_shape == (3, 32, 32)
    spin.setValue(2)  # no usable size: becomes the smallest one
    assert data.image_size == 4 and spin.value() == 4
    spin.stepBy(-1)  # below the smallest size: back to automatic
    assert data.image_size == 0

    combo = panel.findChild(type(panel.mode_combo), "imageModeCombo")
    combo.setCurrentIndex(combo.findData("L"))
    assert data.image_mode == "L"
    assert fruit_state.summary.image_shape[0] == 1
    assert not panel.saturation_spin.isEnabled()

    check = panel.findChild(type(panel.hflip_check), "hflipCheck")
    check.setChecked(True)
    assert data.augment["hflip"] is True
    panel.findChild(type(panel.rotation_spin), "rotationSpin").setValue(20)
    assert data.augment["rotation"] == 20
    panel.crop_spin.setValue(80)
    assert data.augment["crop_scale"] == pytest.approx(0.8)

    # A change from elsewhere (opening a project) shows in the widgets without writing back.
    writes = []
    fruit_state.data_config_changed.connect(lambda: writes.append(1))
    data.augment = {"vflip": True}
    data.image_size = 48
    fruit_state.data_config_changed.emit()
    assert len(writes) == 1
    assert panel.vflip_check.isChecked() and not check.isChecked()
    assert spin.value() == 48 and panel.rotation_spin.value() == 0


def test_augmentation_preview_shows_variants_and_follows_settings(qtbot, fruit_state,
                                                                  make_panel):
    panel = make_panel(fruit_state)
    preview = panel.findChild(type(panel.preview), "augmentPreview")
    qtbot.waitUntil(lambda: preview._images is not None and not preview._timer.isActive(),
                    timeout=5000)
    assert preview.variants is None
    assert preview.message_label.isVisible()
    assert "No augmentation" in preview.message_label.text()
    assert len(preview._images) == 3  # one image of each class

    with qtbot.waitSignal(preview.updated, timeout=5000):
        panel.hflip_check.setChecked(True)
    assert preview.variants is not None and preview.variants.shape == (3, 4, 40, 40, 3)
    assert not preview.message_label.isVisible()
    cells = preview._cells
    assert all(cell.isVisible() for row in cells for cell in row)
    assert cells[0][1].pixmap().width() >= 72
    first = preview.variants.copy()

    with qtbot.waitSignal(preview.updated, timeout=5000):
        panel.rotation_spin.setValue(90)
    assert not np.array_equal(first, preview.variants)

    before = preview.variants.copy()
    qtbot.mouseClick(preview.shuffle_button, Qt.MouseButton.LeftButton)
    assert not np.array_equal(before, preview.variants)

    # Rapid changes are recomputed once, after a pause.
    updates = []
    preview.updated.connect(lambda: updates.append(1))
    for degrees in (10, 20, 30, 40):
        panel.rotation_spin.setValue(degrees)
    qtbot.waitUntil(lambda: bool(updates), timeout=5000)
    qtbot.wait(250)
    assert len(updates) == 1

    # The preview follows the decoded size and colour mode.
    with qtbot.waitSignal(preview.updated, timeout=5000):
        panel.size_spin.setValue(24)
    assert preview.variants.shape == (3, 4, 24, 24, 3)
    with qtbot.waitSignal(preview.updated, timeout=5000):
        panel.hflip_check.setChecked(False)
        panel.rotation_spin.setValue(0)
    assert preview.variants is None and "No augmentation" in preview.message_label.text()


def test_skipped_files_are_listed(qtbot, fruit_state, make_panel):
    panel = make_panel(fruit_state)
    table = panel.findChild(type(panel.skipped_view), "skippedTable")
    assert panel.skipped_box.isVisible()
    assert panel.skipped_box.title() == "Skipped files (2)"
    model = table.model()
    files = {model.data(model.index(r, 0)): model.data(model.index(r, 1))
             for r in range(model.rowCount())}
    assert any("broken.png" in f for f in files)
    assert any("notes.txt" in f and reason == "not an image file"
               for f, reason in files.items())


def test_no_skipped_files_hides_the_list(qtbot, tmp_path, make_panel):
    from gui.state import ProjectState
    from ml.data.dataset import load_dataset

    folder = make_fruit_folder(tmp_path / "clean")
    (folder / "apple" / "broken.png").unlink()
    (folder / "banana" / "notes.txt").unlink()
    state = ProjectState()
    state.set_dataset(load_dataset(str(folder)))
    panel = make_panel(state)
    assert not panel.skipped_box.isVisible()


def big_fake_dataset(n=100_000):
    from ml.data.dataset import Dataset

    labels = np.array([f"class_{i % 10}" for i in range(n)], dtype=object)
    frame = pd.DataFrame({"path": [f"/nonexistent/traindesk/img_{i}.png" for i in range(n)],
                          "label": labels, "split": "", "width": 32, "height": 32,
                          "mode": "RGB"})
    return Dataset("fake", "/nonexistent/traindesk", frame, {}, kind="image")


def test_a_huge_dataset_requests_only_the_visible_thumbnails(qtbot, make_panel):
    from gui.state import ProjectState

    state = ProjectState()
    state.set_dataset(big_fake_dataset())
    panel = make_panel(state, 900, 700)
    model, loader = panel.grid.model, panel.grid.loader
    assert model.rowCount() == 100_000
    rows = visible_rows(panel)
    assert 0 < len(rows) < 200
    # Every file is missing: each visible row ends as a broken placeholder with the reason.
    qtbot.waitUntil(lambda: all(loader.failure(model.key(r)) for r in rows), timeout=20_000)
    assert 0 < loader.requests_queued < 500
    tip = model.data(model.index(rows[0], 0), Qt.ItemDataRole.ToolTipRole)
    assert "file not found" in tip
    assert not model.has_thumbnail(rows[0])
    assert panel.preview.message_label.text()  # no image decodes: said so, no crash

    # Scrolling to the end asks for the rows now on screen, not the ones in between.
    before = loader.requests_queued
    last = model.rowCount() - 1

    def at_the_end() -> bool:
        panel.grid.view.scrollToBottom()  # the batched layout may still be growing the range
        return last in visible_rows(panel)

    qtbot.waitUntil(at_the_end, timeout=30_000)
    qtbot.waitUntil(lambda: loader.failure(model.key(model.rowCount() - 1)) != "",
                    timeout=20_000)
    assert loader.requests_queued - before < 500


def test_in_memory_images_show_enlarged(qtbot, make_panel):
    from gui.state import ProjectState
    from ml.data.dataset import Dataset

    rng = np.random.default_rng(0)
    n = 40
    images = rng.integers(0, 255, (n, 28, 28, 1), dtype=np.uint8)
    frame = pd.DataFrame({"index": np.arange(n), "label": [str(i % 4) for i in range(n)],
                          "split": ["train"] * 30 + ["test"] * 10, "width": 28, "height": 28,
                          "mode": "L"})
    arrays = types.SimpleNamespace(images=images, name="digits")
    state = ProjectState()
    state.set_dataset(Dataset("digits", "/tmp/digits", frame, {}, kind="image", arrays=arrays))
    panel = make_panel(state)
    assert "train 30 · test 10 (given by the files)" in panel.stats_label.text()
    model = panel.grid.model
    rows = visible_rows(panel)
    qtbot.waitUntil(lambda: all(model.has_thumbnail(r) for r in rows), timeout=10_000)
    assert panel.grid.loader.cached(model.key(0)).width() == 84  # 28 px x 3, nearest-neighbour
    preview = panel.preview
    with qtbot.waitSignal(preview.updated, timeout=5000):
        panel.hflip_check.setChecked(True)
    assert preview.variants.shape == (3, 4, 28, 28, 1)
    assert preview._cells[0][0].pixmap().width() == 84


def test_shutdown_leaves_no_running_threads(qtbot, fruit_state, make_panel):
    panel = make_panel(fruit_state)
    loader = panel.grid.loader
    panel.shutdown()
    assert loader.pool.activeThreadCount() == 0
    assert not loader.request(12345, "/nonexistent.png")  # closed: nothing new starts


def test_loader_cancel_all_drops_queued_work(qtbot):
    from workers.thumbnails import ThumbnailLoader

    loader = ThumbnailLoader(size=32, max_threads=1)
    arrays = [np.full((16, 16, 3), i, np.uint8) for i in range(50)]
    loaded = []
    loader.loaded.connect(lambda key, image: loaded.append(key))
    for i, a in enumerate(arrays):
        loader.request(i, a)
    assert not loader.request(3, arrays[3])  # already pending
    loader.cancel_all()
    assert loader.pending_count == 0
    assert loader.pool.waitForDone(5000)
    qtbot.wait(50)
    assert loaded == []  # results of cancelled requests are ignored
    loader.request(7, arrays[7])
    qtbot.waitUntil(lambda: 7 in loaded, timeout=5000)
    assert loader.cached(7).size().width() == 32
    assert loader.shutdown()

def test_image_loading_choice_writes_the_project(qtbot, fruit_state, make_panel):
    panel = make_panel(fruit_state)
    combo = panel.loading_combo
    assert combo.isEnabled() and combo.itemText(0) == "Automatic (in memory)"
    combo.setCurrentIndex(combo.findData("stream"))
    assert fruit_state.project.data.image_loading == "stream"
    combo.setCurrentIndex(combo.findData("memory"))
    assert fruit_state.project.data.image_loading == "memory"


def test_streamed_training_from_the_gui_uses_worker_processes(qtbot, fruit_state, make_panel,
                                                              tmp_path, monkeypatch):
    from gui.pages.train_page import TrainPage
    from ml.training import loading

    panel = make_panel(fruit_state)
    panel.loading_combo.setCurrentIndex(panel.loading_combo.findData("stream"))
    monkeypatch.setattr(loading, "WORKER_PROCESSES", "1")
    made = []
    real = loading.LoaderBatches.__init__
    monkeypatch.setattr(loading.LoaderBatches, "__init__",
                        lambda self, *a, **k: (real(self, *a, **k), made.append(self))[0])
    fruit_state.update_training(epochs=2, batch_size=4)
    fruit_state.project.path = tmp_path / "fruit.tdproj"
    page = TrainPage(fruit_state)
    qtbot.addWidget(page)
    page.start_training()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=120_000)
    assert made and made[0].workers == 1
    assert fruit_state.project.runs[-1].status == "finished"
    assert "1 worker process(es) decode the next batches" in page.log.toPlainText()
