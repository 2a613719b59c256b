"""What augmentation does to a few training images: each original beside random variants."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ml.data.augment import Augmenter, AugmentSettings
from workers.base import describe_exception
from workers.thumbnails import array_to_qimage

from ..theme import mute

#: Variants shown beside each original.
N_VARIANTS = 4
#: Shown images are at least this many pixels a side (tiny ones enlarged, pixels kept sharp)...
MIN_SIDE = 72
#: ...and at most this many.
MAX_SIDE = 96
NO_AUGMENTATION = "No augmentation: the model sees the images as they are."


def display_pixmap(image: np.ndarray, min_side: int = MIN_SIDE,
                   max_side: int = MAX_SIDE) -> QPixmap:
    """A pixmap of a ``uint8`` HWC image, enlarged by a whole factor with nearest-neighbour when
    small (each pixel stays a crisp square), shrunk smoothly when large."""
    qimage = array_to_qimage(image)
    w, h = qimage.width(), qimage.height()
    side = max(w, h, 1)
    if side < min_side:
        factor = min(math.ceil(min_side / side), max(1, max_side // side))
        qimage = qimage.scaled(w * factor, h * factor, Qt.AspectRatioMode.IgnoreAspectRatio,
                               Qt.TransformationMode.FastTransformation)
    elif side > max_side:
        qimage = qimage.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(qimage)


class AugmentationPreview(QWidget):
    """A few training images, each with :data:`N_VARIANTS` augmented variants beside it.

    Augmenting a handful of small images takes milliseconds, so it runs on the GUI thread, after
    a short pause in the user's edits (a spin box held down changes many times a second).

    Parameters
    ----------
    parent : QWidget, optional

    Signals
    -------
    updated()
        The shown images were recomputed.

    Attributes
    ----------
    variants : ndarray or None
        The variants shown, ``uint8`` ``(N, N_VARIANTS, H, W, C)``; None while augmentation is
        off or cannot be previewed.
    """

    updated = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._images: np.ndarray | None = None
        self._settings = AugmentSettings()
        self._seed = 0
        self._rng = np.random.default_rng()
        self.variants: np.ndarray | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.refresh_now)

        self.caption_label = QLabel("")
        self.caption_label.setObjectName("augmentCaption")
        self.caption_label.setWordWrap(True)
        mute(self.caption_label)
        self.shuffle_button = QPushButton("Shuffle")
        self.shuffle_button.setObjectName("shuffleAugmentButton")
        self.shuffle_button.setToolTip("Draw other random variants.")
        self.shuffle_button.clicked.connect(self.shuffle)
        self.message_label = QLabel("")
        self.message_label.setObjectName("augmentMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mute(self.message_label).setStyleSheet("padding: 8px;")

        self._grid = QGridLayout()
        self._grid.setHorizontalSpacing(8)
        self._grid.setVerticalSpacing(6)
        self._grid.setColumnStretch(N_VARIANTS + 1, 1)  # keeps the images together on the left
        self._headers = [QLabel("Original")] + [QLabel(f"Variant {k + 1}")
                                                for k in range(N_VARIANTS)]
        for column, label in enumerate(self._headers):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            mute(label)
            self._grid.addWidget(label, 0, column)
        self._grid.addWidget(self.message_label, 1, 1, 1, N_VARIANTS)
        self._cells: list[list[QLabel]] = []  # one list per image: original, variants...

        top = QHBoxLayout()
        top.addWidget(self.caption_label, 1)
        top.addWidget(self.shuffle_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(self._grid)
        layout.addStretch(1)
        self.refresh_now()

    # -- inputs ---------------------------------------------------------------------------------
    def set_images(self, images: np.ndarray | None) -> None:
        """Preview *images* (``uint8`` ``(N, H, W, C)``, C 1 or 3), or none."""
        self._images = None if images is None or len(images) == 0 else np.asarray(images)
        self._timer.start()

    def set_settings(self, settings: AugmentSettings) -> None:
        """Preview *settings* (recomputed after a 150 ms pause)."""
        self._settings = settings
        self._timer.start()

    @property
    def settings(self) -> AugmentSettings:
        return self._settings

    @Slot()
    def shuffle(self) -> None:
        """Draw new random variants of the same images."""
        self._seed = int(self._rng.integers(1, 2**31 - 1))
        self.refresh_now()

    # -- showing --------------------------------------------------------------------------------
    @Slot()
    def refresh_now(self) -> None:
        """Recompute the variants now (also what the debounce timer calls)."""
        self._timer.stop()
        images, settings = self._images, self._settings
        self.variants = None
        message = ""
        if images is None:
            message = "No training images to preview."
        elif not settings.enabled:
            message = NO_AUGMENTATION
        else:
            try:
                settings.validate()
                self.variants = np.asarray(
                    Augmenter(settings, seed=self._seed).preview(images, n_variants=N_VARIANTS))
            except Exception as exc:  # noqa: BLE001 - a preview must not take the page down
                message = f"Cannot preview the augmentation: {describe_exception(exc)}"
        self._show(images, message)
        self.updated.emit()

    def _show(self, images: np.ndarray | None, message: str) -> None:
        n = 0 if images is None else len(images)
        while len(self._cells) < n:
            row = len(self._cells) + 1
            cells = []
            for column in range(N_VARIANTS + 1):
                cell = QLabel()
                cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setFrameShape(QFrame.Shape.Box)
                cell.setStyleSheet("QLabel { border: 1px solid #d0d7de; background: #fafafa; }")
                cell.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
                self._grid.addWidget(cell, row, column)
                cells.append(cell)
            self._cells.append(cells)
        showing = self.variants is not None
        for r, cells in enumerate(self._cells):
            for column, cell in enumerate(cells):
                visible = r < n and (column == 0 or showing)
                cell.setVisible(visible)
                if not visible:
                    continue
                image = images[r] if column == 0 else self.variants[r, column - 1]
                pixmap = display_pixmap(image)
                cell.setPixmap(pixmap)
                cell.setFixedSize(pixmap.width() + 4, pixmap.height() + 4)
                # The model's own size (a backbone's 224 px), though shown smaller.
                side = f"{image.shape[1]} × {image.shape[0]} px"
                cell.setToolTip(f"The image as the model gets it ({side})" if column == 0 else
                                f"A random variant the model may see in training ({side})")
        for header in self._headers[1:]:
            header.setVisible(showing)
        self._headers[0].setVisible(n > 0)
        self.message_label.setText(message)
        self.message_label.setVisible(bool(message))
        if n:
            # The message takes the place of the variants, beside the originals.
            self._grid.addWidget(self.message_label, 1, 1, max(n, 1), N_VARIANTS)
        self.shuffle_button.setEnabled(showing)
        caption = self._settings.describe() if showing else ""
        self.caption_label.setText(caption[:1].upper() + caption[1:])
        self.caption_label.setVisible(bool(self.caption_label.text()))
