"""The Data page's view of an image dataset: what the images are, how they are decoded for the
model, how training images are augmented, and which files were left out."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
from PySide6.QtCore import QEvent, Qt, Slot
from PySide6.QtWidgets import (
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ml.data.augment import AugmentSettings
from ml.data.dataset import Dataset, _convert_arrays, for_backbone, image_settings
from ml.data.images import load_image
from ml.data.naturalsort import natural_key
from ml.data.streaming import should_stream
from ml.errors import TrainDeskError

from ..state import ProjectState
from ..theme import mute
from ..widgets.augment_preview import AugmentationPreview
from ..widgets.table_models import RecordsModel
from ..widgets.thumbnails import ThumbnailGrid

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 1024
MODE_CHOICES = (("Auto", "auto"), ("RGB (colour)", "RGB"), ("Grayscale", "L"))
#: Training images shown in the augmentation preview.
PREVIEW_IMAGES = 3
#: Files tried for the preview before giving up (some may not decode).
PREVIEW_TRIES = 12
_MODE_NAMES = {"L": "grayscale", "LA": "grayscale + alpha", "1": "black & white",
               "P": "palette", "RGBA": "RGB + alpha", "I;16": "16-bit grayscale",
               "I": "32-bit grayscale", "F": "float grayscale"}
_SPLIT_SOURCES = {"split-folders": "the folders", "csv": "the CSV file"}


def describe_images(dataset: Dataset) -> str:
    """One line (rich text) about an image dataset: count, classes, sizes, modes, given splits."""
    frame = dataset.frame
    n = len(frame)
    facts = dataset.image_facts()  # counted once per dataset, column-wise
    parts = [f"<b>{n:,}</b> images", f"<b>{len(facts['class_counts']):,}</b> classes"]
    sizes = Counter(facts["size_counts"])
    if len(sizes) == 1:
        (w, h), = sizes
        parts.append(f"all {w} × {h} px")
    elif sizes:
        (w, h), count = sizes.most_common(1)[0]
        by_area = sorted(sizes, key=lambda wh: (wh[0] * wh[1], wh))
        (w0, h0), (w1, h1) = by_area[0], by_area[-1]
        parts.append(f"sizes: mostly {w} × {h} px ({count / n:.0%}), from {w0} × {h0} to "
                     f"{w1} × {h1}")
    modes = Counter(facts["mode_counts"])
    if len(modes) == 1:
        mode = next(iter(modes))
        parts.append(f"all {_MODE_NAMES.get(mode, mode)}")
    elif modes:
        parts.append(", ".join(f"{_MODE_NAMES.get(m, m)} {c / n:.0%}"
                               for m, c in modes.most_common(3)))
    if dataset.given_splits:
        counts = frame["split"].astype(str).value_counts()
        given = " · ".join(f"{k} {counts[k]:,}" for k in ("train", "val", "test") if k in counts)
        if dataset.arrays is not None:
            source = "the files"
        else:
            source = _SPLIT_SOURCES.get(getattr(dataset.images, "layout", ""), "the data")
        parts.append(f"{given} (given by {source})")
    return " · ".join(parts)


class _SizeSpin(QSpinBox):
    """0 ("Auto") or 4..1024 pixels: the arrows skip 1..3, which are no usable size."""

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt API
        value = self.value()
        if steps > 0 and value < MIN_IMAGE_SIZE:
            self.setValue(MIN_IMAGE_SIZE)
        elif steps < 0 and value + steps * self.singleStep() < MIN_IMAGE_SIZE:
            self.setValue(0)
        else:
            super().stepBy(steps)


class _SkippedModel(RecordsModel):
    """Skipped files and reasons; the full text as a tooltip where a cell is cut short."""

    def data(self, index, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.ToolTipRole and index.isValid():
            return str(self.rows[index.row()][index.column()])
        return super().data(index, role)


class _Reflow(QWidget):
    """Two widgets side by side when there is room, else one above the other (the Data page
    gives its tabs little width next to the source list and the split settings)."""

    def __init__(self, first: QWidget, second: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self._first, self._second = first, second
        self._layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(first, 0, Qt.AlignmentFlag.AlignTop)
        self._layout.addWidget(second, 1, Qt.AlignmentFlag.AlignTop)

    def side_by_side(self) -> bool:
        return self._layout.direction() == QBoxLayout.Direction.LeftToRight

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._reflow(event.size().width())
        super().resizeEvent(event)

    def event(self, event: QEvent) -> bool:
        # A child's size hint changed (e.g. the preview got its images): check the room again.
        if event.type() == QEvent.Type.LayoutRequest:
            self._reflow(self.width())
        return super().event(event)

    def _reflow(self, width: int) -> None:
        needed = (self._first.sizeHint().width() + self._second.sizeHint().width()
                  + self._layout.spacing())
        wide = width >= needed
        if wide != self.side_by_side():
            self._layout.setDirection(QBoxLayout.Direction.LeftToRight if wide
                                      else QBoxLayout.Direction.TopToBottom)


def _percent_spin(name: str, minimum: int = 0, off_text: str = "Off") -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(minimum, 100)
    spin.setSuffix(" %")
    spin.setSingleStep(5)
    if off_text:
        spin.setSpecialValueText(off_text)
    spin.setKeyboardTracking(False)  # one change when typing is done, not one per digit
    return spin


class ImagePanel(QWidget):
    """Image statistics, thumbnails, decoding size and colour, augmentation and skipped files.

    Parameters
    ----------
    state : ProjectState
        Read for the dataset and the data settings; settings are written only through
        :meth:`ProjectState.update_data`.
    parent : QWidget, optional
    """

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._updating = False
        self._dataset: Dataset | None = None
        self._preview_key: tuple | None = None
        self._skipped_shown = -1
        self._sized = False

        self.stats_label = QLabel("")
        self.stats_label.setObjectName("imageStats")
        self.stats_label.setWordWrap(True)
        self.stats_label.setTextFormat(Qt.TextFormat.RichText)

        self.grid = ThumbnailGrid()
        self.grid.setObjectName("thumbnailGrid")

        self.skipped_model = _SkippedModel(["File", "Reason"])
        self.skipped_view = QTableView()
        self.skipped_view.setObjectName("skippedTable")
        self.skipped_view.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.skipped_view.setModel(self.skipped_model)
        self.skipped_view.verticalHeader().hide()
        self.skipped_view.verticalHeader().setDefaultSectionSize(22)
        self.skipped_view.setWordWrap(False)
        self.skipped_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.skipped_view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.skipped_box = QGroupBox("Skipped files")
        self.skipped_box.setObjectName("skippedBox")
        QVBoxLayout(self.skipped_box).addWidget(self.skipped_view)
        self.skipped_box.hide()

        image_box = self._make_image_box()
        augment_box = self._make_augment_box()
        self.preview = AugmentationPreview()
        self.preview.setObjectName("augmentPreview")
        preview_box = QGroupBox("How training images may look")
        QVBoxLayout(preview_box).addWidget(self.preview)

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.grid, 1)
        tl.addWidget(self.skipped_box)

        settings_column = QWidget()
        sc = QVBoxLayout(settings_column)
        sc.setContentsMargins(0, 0, 0, 0)
        sc.addWidget(image_box)
        sc.addWidget(augment_box)
        sc.addStretch(1)
        bottom = _Reflow(settings_column, preview_box)
        # The settings scroll, rather than squeeze, when the window is short.
        scroll = QScrollArea()
        scroll.setObjectName("imageSettingsScroll")
        scroll.setWidget(bottom)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("imageSplitter")
        self.splitter.addWidget(top)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.stats_label)
        layout.addWidget(self.splitter, 1)

        state.dataset_changed.connect(self._on_dataset_changed)
        state.data_config_changed.connect(self._on_config_changed)
        # A pretrained backbone decides the size and colour the model sees.
        state.model_changed.connect(self._on_config_changed)
        self._on_dataset_changed()

    def _make_image_box(self) -> QGroupBox:
        self.size_spin = _SizeSpin()
        self.size_spin.setObjectName("imageSizeSpin")
        self.size_spin.setRange(0, MAX_IMAGE_SIZE)
        self.size_spin.setSingleStep(4)
        self.size_spin.setSuffix(" px")
        self.size_spin.setSpecialValueText("Auto")
        self.size_spin.setKeyboardTracking(False)
        # Room for "Auto (NN px)", which is set later (the spin box sized itself for "Auto").
        self.size_spin.setMinimumWidth(self.size_spin.fontMetrics().horizontalAdvance(
            "Auto (1024 px)") + 44)
        self.size_spin.setToolTip("Every image is resized to this many pixels a side. Smaller "
                                  "trains faster; larger keeps more detail. Auto: the most common "
                                  "side of the images, at most 64.")
        self.size_spin.valueChanged.connect(self._on_size_edited)
        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("imageModeCombo")
        for label, value in MODE_CHOICES:
            self.mode_combo.addItem(label, value)
        self.mode_combo.setToolTip("Grayscale has a third of the values of colour: faster, but "
                                   "the model cannot tell colours apart.")
        self.mode_combo.currentIndexChanged.connect(self._on_mode_edited)
        self.loading_combo = QComboBox()
        self.loading_combo.setObjectName("imageLoadingCombo")
        for label, value in (("Automatic", "auto"), ("Hold in memory (fastest)", "memory"),
                             ("Decode while training", "stream")):
            self.loading_combo.addItem(label, value)
        self.loading_combo.setToolTip(
            "Held in memory, every image is decoded once before training. Decoded while "
            "training, worker processes decode each batch as the previous one trains: for "
            "sets too big for the memory. Automatic does that for sets needing more than a "
            "quarter of it.")
        self.loading_combo.currentIndexChanged.connect(self._on_loading_edited)
        self.input_label = QLabel("")
        self.input_label.setObjectName("imageInputLabel")
        self.input_label.setWordWrap(True)
        mute(self.input_label)
        box = QGroupBox("Image settings")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Size (a side):", self.size_spin)
        form.addRow("Colour:", self.mode_combo)
        form.addRow("Loading:", self.loading_combo)
        form.addRow(self.input_label)
        return box

    def _make_augment_box(self) -> QGroupBox:
        self.hflip_check = QCheckBox("Horizontal flip")
        self.hflip_check.setObjectName("hflipCheck")
        self.hflip_check.setToolTip("Mirror left-right half the time. Fine for photos of "
                                    "objects; wrong for text and digits.")
        self.vflip_check = QCheckBox("Vertical flip")
        self.vflip_check.setObjectName("vflipCheck")
        self.vflip_check.setToolTip("Turn upside down half the time. Fine for microscope or "
                                    "satellite images; wrong for most photos.")
        self.rotation_spin = QSpinBox()
        self.rotation_spin.setObjectName("rotationSpin")
        self.rotation_spin.setRange(0, 180)
        self.rotation_spin.setSingleStep(5)
        self.rotation_spin.setPrefix("± ")
        self.rotation_spin.setSuffix("°")
        self.rotation_spin.setSpecialValueText("Off")
        self.rotation_spin.setKeyboardTracking(False)
        self.rotation_spin.setToolTip("Rotate by a random angle up to this, either way.")
        self.crop_spin = _percent_spin("cropSpin", minimum=10, off_text="")
        self.crop_spin.setToolTip("Cut out a random part with at least this share of the area and "
                                  "stretch it back to full size. 100 % = off.")
        self.brightness_spin = _percent_spin("brightnessSpin")
        self.contrast_spin = _percent_spin("contrastSpin")
        self.saturation_spin = _percent_spin("saturationSpin")
        for spin, what in ((self.brightness_spin, "brightness"),
                           (self.contrast_spin, "contrast"),
                           (self.saturation_spin, "colour saturation")):
            spin.setToolTip(f"Change the {what} by a random amount up to this, up or down.")
        self.hflip_check.toggled.connect(self._on_augment_edited)
        self.vflip_check.toggled.connect(self._on_augment_edited)
        for spin in (self.rotation_spin, self.crop_spin, self.brightness_spin,
                     self.contrast_spin, self.saturation_spin):
            spin.valueChanged.connect(self._on_augment_edited)
        flips = QHBoxLayout()
        flips.addWidget(self.hflip_check)
        flips.addWidget(self.vflip_check)
        flips.addStretch(1)
        box = QGroupBox("Augmentation (training images only)")
        box.setObjectName("augmentBox")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Flip:", flips)
        form.addRow("Rotation:", self.rotation_spin)
        form.addRow("Random crop, min. area:", self.crop_spin)
        form.addRow("Brightness:", self.brightness_spin)
        form.addRow("Contrast:", self.contrast_spin)
        form.addRow("Saturation:", self.saturation_spin)
        return box

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._sized and self.splitter.height() > 0:
            # The thumbnails get at least half the height; the settings scroll if need be.
            self._sized = True
            total = self.splitter.height()
            bottom = min(self.splitter.widget(1).sizeHint().height(), total // 2)
            self.splitter.setSizes([total - bottom, bottom])

    # -- showing --------------------------------------------------------------------------------
    @Slot()
    def _on_dataset_changed(self) -> None:
        dataset = self.state.dataset
        if dataset is None or dataset.kind != "image":
            dataset = None
        if dataset is not self._dataset:
            self._dataset = dataset
            self._preview_key = None
            self._skipped_shown = -1
            self.grid.set_dataset(dataset)
            self.stats_label.setText(describe_images(dataset) if dataset is not None else "")
            if dataset is None:
                self.preview.set_images(None)
                self._show_skipped()
        self._on_config_changed()

    @Slot()
    def _on_config_changed(self) -> None:
        dataset = self._dataset
        if dataset is None or dataset is not self.state.dataset:
            return
        data = self.state.project.data
        auto = copy.copy(data)
        auto.image_size, auto.image_mode = 0, "auto"
        auto_size, _, auto_mode = image_settings(dataset, auto)
        backbone = self._image_backbone()
        height, width, mode = image_settings(dataset, for_backbone(data, backbone))
        try:
            settings = AugmentSettings.from_dict(data.augment)
        except TrainDeskError:
            settings = AugmentSettings()
        self._updating = True
        try:
            self.size_spin.setSpecialValueText(f"Auto ({auto_size} px)")
            self.size_spin.setValue(int(data.image_size))
            self.mode_combo.setItemText(0, f"Auto ({'grayscale' if auto_mode == 'L' else 'RGB'})")
            self.mode_combo.setCurrentIndex(max(self.mode_combo.findData(data.image_mode), 0))
            self.loading_combo.setCurrentIndex(
                max(self.loading_combo.findData(data.image_loading), 0))
            streamed = should_stream(len(dataset.frame), (1 if mode == "L" else 3, height,
                                                          width), "auto")
            self.loading_combo.setItemText(
                0, f"Automatic ({'decode while training' if streamed else 'in memory'})")
            self.loading_combo.setEnabled(dataset.arrays is None)  # arrays are in memory
            self.hflip_check.setChecked(bool(settings.hflip))
            self.vflip_check.setChecked(bool(settings.vflip))
            self.rotation_spin.setValue(round(settings.rotation))
            self.crop_spin.setValue(round(settings.crop_scale * 100))
            self.brightness_spin.setValue(round(settings.brightness * 100))
            self.contrast_spin.setValue(round(settings.contrast * 100))
            self.saturation_spin.setValue(round(settings.saturation * 100))
        finally:
            self._updating = False
        gray = mode == "L"
        self.saturation_spin.setEnabled(not gray)
        self.saturation_spin.setToolTip("Grayscale images have no colour saturation." if gray else
                                        "Change the colour saturation by a random amount up to "
                                        "this, up or down.")
        channels = 1 if gray else 3
        self.input_label.setText(f"The model sees {channels} × {height} × {width} = "
                                 f"{channels * height * width:,} values per image.")
        for widget in (self.size_spin, self.mode_combo):
            widget.setEnabled(backbone is None)
        if backbone is not None:
            self.input_label.setText(f"{self.input_label.text()} The backbone "
                                     f"({backbone.title}) decides size and colour.")
        key = (dataset, height, width, mode)
        if key != self._preview_key:
            self._preview_key = key
            self.preview.set_images(self._preview_images(dataset, height, width, mode))
        self.preview.set_settings(settings)
        if len(dataset.skipped) != self._skipped_shown:
            self._show_skipped()

    def _image_backbone(self):
        """The pretrained image backbone the model starts from, or None."""
        key = self.state.project.model.backbone
        if not key:
            return None
        from ml.models.backbones import resolve

        try:
            info = resolve(key)
        except TrainDeskError:
            return None  # the Model page says why
        return info if info.kind == "image" else None

    def _preview_images(self, dataset: Dataset, height: int, width: int,
                        mode: str) -> np.ndarray | None:
        """A few training images (of different classes when there are), decoded as the model
        will get them."""
        frame = dataset.frame
        if "split" in frame.columns:
            train = frame[frame["split"].astype(str).isin(["train", ""])]
            frame = train if len(train) else frame
        # The first image of each class, classes in their usual order, then any others.
        firsts = frame["label"].astype(str).drop_duplicates()
        order = sorted(firsts.index, key=lambda i: natural_key(firsts[i]))[:PREVIEW_TRIES]
        chosen = set(order)
        order += [i for i in frame.index[:PREVIEW_TRIES * 2] if i not in chosen]
        order = order[:PREVIEW_TRIES]
        if dataset.arrays is not None:
            indices = frame.loc[order[:PREVIEW_IMAGES], "index"].to_numpy()
            nchw = _convert_arrays(dataset.arrays.images[indices], height, width, mode)
            return np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
        images = []
        for i in order:
            try:
                images.append(load_image(frame.at[i, "path"], (height, width), mode))
            except TrainDeskError:
                continue  # listed as skipped when the images are decoded for training
            if len(images) == PREVIEW_IMAGES:
                break
        return np.stack(images) if images else None

    def _show_skipped(self) -> None:
        skipped = list(self._dataset.skipped) if self._dataset is not None else []
        self._skipped_shown = len(skipped) if self._dataset is not None else -1
        self.skipped_model.set_rows([[s.path, s.reason] for s in skipped])
        self.skipped_box.setTitle(f"Skipped files ({len(skipped):,})")
        # As tall as its rows, up to five: the thumbnails keep the room.
        view = self.skipped_view
        rows = min(max(len(skipped), 1), 5) * view.verticalHeader().defaultSectionSize()
        view.setFixedHeight(view.horizontalHeader().sizeHint().height() + rows
                            + 2 * view.frameWidth() + 2)
        self.skipped_box.setVisible(bool(skipped))

    # -- edits ----------------------------------------------------------------------------------
    @Slot(int)
    def _on_size_edited(self, value: int) -> None:
        if self._updating or self._dataset is None:
            return
        if 0 < value < MIN_IMAGE_SIZE:
            self.size_spin.setValue(MIN_IMAGE_SIZE)  # emits again with a usable size
            return
        if value != self.state.project.data.image_size:
            self.state.update_data(image_size=value)

    @Slot(int)
    def _on_mode_edited(self, index: int) -> None:
        if self._updating or self._dataset is None or index < 0:
            return
        value = self.mode_combo.itemData(index)
        if value != self.state.project.data.image_mode:
            self.state.update_data(image_mode=value)

    def _on_loading_edited(self, index: int) -> None:
        if self._updating or self._dataset is None or index < 0:
            return
        value = self.loading_combo.itemData(index)
        if value != self.state.project.data.image_loading:
            self.state.update_data(image_loading=value)

    def augment_settings(self) -> AugmentSettings:
        """The augmentation the widgets show."""
        return AugmentSettings(hflip=self.hflip_check.isChecked(),
                               vflip=self.vflip_check.isChecked(),
                               rotation=float(self.rotation_spin.value()),
                               crop_scale=self.crop_spin.value() / 100,
                               brightness=self.brightness_spin.value() / 100,
                               contrast=self.contrast_spin.value() / 100,
                               saturation=self.saturation_spin.value() / 100)

    @Slot()
    def _on_augment_edited(self) -> None:
        if self._updating or self._dataset is None:
            return
        settings = self.augment_settings().to_dict()
        try:
            current = AugmentSettings.from_dict(self.state.project.data.augment).to_dict()
        except TrainDeskError:
            current = None
        if settings != current:
            self.state.update_data(augment=settings)

    def shutdown(self) -> None:
        """Stop loading thumbnails and wait for the loader's threads (the window closes)."""
        self.grid.shutdown()
