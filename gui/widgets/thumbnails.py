"""A virtualised grid of image thumbnails with a class filter.

The model asks for a thumbnail only when the view asks for a row's icon, which a list view with
uniform item sizes does only for the rows it paints: 100,000 images cost 100,000 small array
entries, not 100,000 decoding jobs.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QVBoxLayout,
    QWidget,
)

from ml.data.naturalsort import natural_key
from workers.thumbnails import ThumbnailLoader, placeholder_image

from ..theme import mute

_Index = QModelIndex | QPersistentModelIndex
#: Icons converted from thumbnails and kept for repainting (the loader keeps more QImages).
_ICON_CACHE = 600


class ThumbnailGridModel(QAbstractListModel):
    """The rows of an image dataset (optionally of one class) as thumbnails with labels.

    Parameters
    ----------
    loader : ThumbnailLoader
        Decodes the thumbnails; its keys are positions in the dataset's frame.
    parent : QObject, optional
    """

    def __init__(self, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.dataset = None
        self.class_name: str | None = None
        self._rows = np.zeros(0, dtype=np.int64)  # frame positions shown, ascending
        self._labels = np.zeros(0, dtype=object)
        self._paths: np.ndarray | None = None
        self._indices: np.ndarray | None = None
        self._info: tuple[np.ndarray, ...] = ()
        self._icons: OrderedDict[int, QIcon] = OrderedDict()
        self._waiting = QIcon(QPixmap.fromImage(placeholder_image(loader.size)))
        loader.loaded.connect(self._on_loaded)
        loader.failed.connect(self._on_failed)

    # -- contents -------------------------------------------------------------------------------
    def set_dataset(self, dataset) -> None:
        """Show the images of *dataset* (``kind == "image"``), or nothing for None."""
        self.beginResetModel()
        self.dataset = dataset
        self.class_name = None
        self._icons.clear()
        if dataset is None:
            self._labels = np.zeros(0, dtype=object)
            self._paths = self._indices = None
            self._info = ()
        else:
            frame = dataset.frame
            self._labels = frame["label"].astype(str).to_numpy()
            in_memory = dataset.arrays is not None and "index" in frame.columns
            self._paths = None if in_memory else frame["path"].astype(str).to_numpy()
            self._indices = frame["index"].to_numpy() if in_memory else None
            self._info = tuple(frame[c].to_numpy() if c in frame.columns
                               else np.full(len(frame), "", dtype=object)
                               for c in ("width", "height", "mode", "split"))
        self._rows = np.arange(len(self._labels), dtype=np.int64)
        self.endResetModel()

    def set_class(self, class_name: str | None) -> None:
        """Show only the images labelled *class_name* (None: all)."""
        self.beginResetModel()
        self.class_name = class_name
        if class_name is None:
            self._rows = np.arange(len(self._labels), dtype=np.int64)
        else:
            self._rows = np.flatnonzero(self._labels == class_name).astype(np.int64)
        self.endResetModel()

    def class_counts(self) -> dict[str, int]:
        """Images per class, classes in natural order (2 < 10 < "cat")."""
        if self.dataset is not None:
            return dict(self.dataset.image_facts()["class_counts"])
        names, counts = np.unique(self._labels, return_counts=True)
        pairs = sorted(zip(names.tolist(), counts.tolist()), key=lambda p: natural_key(p[0]))
        return {str(k): int(v) for k, v in pairs}

    @property
    def total(self) -> int:
        """Images in the dataset, whatever the filter."""
        return len(self._labels)

    def key(self, row: int) -> int:
        """The frame position (the loader's key) of *row*."""
        return int(self._rows[row])

    def source(self, key: int) -> Any:
        """What the loader decodes for frame position *key*: a path or a HWC array."""
        if self._paths is not None:
            return self._paths[key]
        return self.dataset.arrays.images[int(self._indices[key])]

    def has_thumbnail(self, row: int) -> bool:
        """Whether *row* shows its image (not the waiting placeholder nor the broken one)."""
        key = self.key(row)
        return self.loader.cached(key) is not None and not self.loader.failure(key)

    def row_of(self, key: int) -> int:
        """The row showing frame position *key*, or -1."""
        row = int(np.searchsorted(self._rows, key))
        return row if row < len(self._rows) and self._rows[row] == key else -1

    # -- Qt model API ---------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        key = int(self._rows[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            return self._labels[key]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(key)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(key)
        return None

    def _icon(self, key: int) -> QIcon:
        icon = self._icons.get(key)
        if icon is not None:
            self._icons.move_to_end(key)
            return icon
        image = self.loader.cached(key)
        if image is None:
            # Asked for only here, i.e. for the rows the view paints.
            self.loader.request(key, self.source(key))
            return self._waiting
        icon = QIcon(QPixmap.fromImage(image))  # QPixmap: GUI thread only, hence here
        self._icons[key] = icon
        if len(self._icons) > _ICON_CACHE:
            self._icons.popitem(last=False)
        return icon

    def _tooltip(self, key: int) -> str:
        width, height, mode, split = (column[key] for column in self._info)
        if self._paths is not None:
            name = Path(self._paths[key]).name
        else:
            name = f"image {int(self._indices[key]) + 1:,}"
        parts = [f"<b>{html.escape(name)}</b>",
                 f"Class: {html.escape(str(self._labels[key]))}",
                 f"Size: {width} × {height} px, mode {html.escape(str(mode))}",
                 f"Split: {html.escape(str(split))} (given)" if split else
                 "Split: chosen at random"]
        reason = self.loader.failure(key)
        if reason:
            parts.append(f"<span style='color:#8a1c12'>{html.escape(reason)}</span>")
        return "<br>".join(parts)

    # -- thumbnails arriving --------------------------------------------------------------------
    @Slot(int, QImage)
    def _on_loaded(self, key: int, image: QImage) -> None:
        self._changed(key)

    @Slot(int, str)
    def _on_failed(self, key: int, reason: str) -> None:
        self._changed(key)

    def _changed(self, key: int) -> None:
        self._icons.pop(key, None)
        row = self.row_of(key)
        if row >= 0:
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole,
                                                 Qt.ItemDataRole.ToolTipRole])


class ThumbnailGrid(QWidget):
    """A class filter, a grid of thumbnails and a count.

    Parameters
    ----------
    thumbnail_size : int
        Thumbnails are at most this many pixels a side.
    parent : QWidget, optional
    """

    def __init__(self, thumbnail_size: int = 96, parent: QWidget | None = None):
        super().__init__(parent)
        self.loader = ThumbnailLoader(thumbnail_size, parent=self)
        self.model = ThumbnailGridModel(self.loader, self)

        self.class_combo = QComboBox()
        self.class_combo.setObjectName("thumbnailClassCombo")
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.class_combo.currentIndexChanged.connect(self._on_class_chosen)
        self.count_label = QLabel("")
        self.count_label.setObjectName("thumbnailCount")
        mute(self.count_label)

        self.view = QListView()
        self.view.setObjectName("thumbnailView")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setFlow(QListView.Flow.LeftToRight)
        self.view.setWrapping(True)
        # Uniform sizes + batched layout: the view never asks every row for its size.
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)  # small batches: laying out icons never stalls the GUI
        self.view.setIconSize(QSize(thumbnail_size, thumbnail_size))
        text_height = self.view.fontMetrics().height()
        self.view.setGridSize(QSize(thumbnail_size + 14, thumbnail_size + text_height + 12))
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setModel(self.model)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.class_combo)
        top.addStretch(1)
        top.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)

    def set_dataset(self, dataset) -> None:
        """Show *dataset*'s images (all classes), or nothing for None."""
        self.loader.clear()
        self.model.set_dataset(dataset)
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        if dataset is not None:
            self.class_combo.addItem(f"All classes ({self.model.total:,})", None)
            for name, count in self.model.class_counts().items():
                self.class_combo.addItem(f"{name} ({count:,})", name)
        self.class_combo.blockSignals(False)
        self.view.scrollToTop()
        self._update_count()

    def set_class(self, class_name: str | None) -> None:
        """Show only *class_name* (None: all classes), as if chosen in the combo box."""
        index = self.class_combo.findData(class_name) if class_name is not None else 0
        if index >= 0:
            self.class_combo.setCurrentIndex(index)

    @Slot(int)
    def _on_class_chosen(self, index: int) -> None:
        if index < 0:
            return
        # Queued requests are for rows of the old filter that are no longer on screen.
        self.loader.cancel_all()
        self.model.set_class(self.class_combo.itemData(index))
        self.view.scrollToTop()
        self._update_count()

    def _update_count(self) -> None:
        shown, total = self.model.rowCount(), self.model.total
        if total == 0:
            self.count_label.setText("")
        elif shown == total:
            self.count_label.setText(f"{total:,} images")
        else:
            self.count_label.setText(f"{shown:,} of {total:,} images")

    def shutdown(self) -> None:
        """Stop loading and wait for the loader's threads."""
        self.loader.shutdown()
