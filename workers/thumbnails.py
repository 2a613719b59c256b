"""Thumbnails decoded in the background, newest requests first.

A grid of images asks for the thumbnails of the rows it paints; the user scrolls faster than
files decode, so the requests form a stack (the rows on screen now are decoded before the rows
scrolled past) of bounded depth (rows scrolled far past are forgotten and asked for again if
they come back into view). A pool of its own, two threads at most, keeps the import and training
threads responsive. Only ``QImage`` is made off the GUI thread: ``QPixmap`` belongs to the GUI
thread.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import OrderedDict
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPen

from ml.errors import TrainDeskError

from .base import describe_exception
from .jobs import job_registry

log = logging.getLogger(__name__)

#: Requests waiting beyond this many drop the oldest (rows long scrolled past).
MAX_PENDING = 600


def array_to_qimage(array: np.ndarray) -> QImage:
    """Copy a ``uint8`` ``(h, w)``, ``(h, w, 1)``, ``(h, w, 3)`` or ``(h, w, 4)`` array into a
    QImage that owns its pixels (safe on any thread).

    Raises
    ------
    ValueError
        For any other shape or dtype.
    """
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, not {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        fmt, channels = QImage.Format.Format_Grayscale8, 1
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        channels = a.shape[2]
        fmt = QImage.Format.Format_RGB888 if channels == 3 else QImage.Format.Format_RGBA8888
    else:
        raise ValueError(f"expected an (h, w[, 1|3|4]) image, not shape {a.shape}")
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    # .copy(): the QImage must not point into the numpy buffer once the array is freed.
    return QImage(a.tobytes(), w, h, w * channels, fmt).copy()


def fit_image(image: QImage, size: int) -> QImage:
    """Scale *image* to *size* pixels on its longer side: down smoothly; up by a whole factor
    with nearest-neighbour when it is at most half that, so a 28 x 28 digit stays sharp."""
    w, h = image.width(), image.height()
    side = max(w, h, 1)
    factor = size // side
    if factor >= 2:
        return image.scaled(w * factor, h * factor, Qt.AspectRatioMode.IgnoreAspectRatio,
                            Qt.TransformationMode.FastTransformation)
    if side != size:
        return image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                            Qt.TransformationMode.SmoothTransformation)
    return image


def placeholder_image(size: int, broken: bool = False) -> QImage:
    """A light gray square (waiting), or a darker one with a cross (cannot be shown)."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor(208, 208, 208) if broken else QColor(236, 236, 236))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor(150, 150, 150), 1))
    painter.drawRect(0, 0, size - 1, size - 1)
    if broken:
        painter.setPen(QPen(QColor(140, 60, 60), 2))
        m = size // 3
        painter.drawLine(m, m, size - m, size - m)
        painter.drawLine(size - m, m, m, size - m)
    painter.end()
    return image


def make_thumbnail(source: Any, size: int) -> QImage:
    """Decode *source* (a file path, or a ``uint8`` HWC array) into a thumbnail QImage.

    Raises
    ------
    DataError
        When the file cannot be shown.
    """
    if isinstance(source, np.ndarray):
        pixels = source
    else:
        from ml.data.images import thumbnail

        pixels = thumbnail(str(source), size)
    return fit_image(array_to_qimage(pixels), size)


class _Queue:
    """The request stack shared by the GUI thread and the pool threads (all under one lock)."""

    def __init__(self, size: int, max_threads: int):
        self.lock = threading.Lock()
        self.stack: list[tuple[int, int, Any]] = []  # (generation, key, source), newest last
        self.generation = 0
        self.active = 0
        self.size = size
        self.max_threads = max_threads


class _Relay(QObject):
    """Lives on the GUI thread; a pool thread emitting ``done`` queues the call to it."""

    done = Signal(int, int, QImage, str)  # generation, key, image (null on failure), reason


class _DrainJob(QRunnable):
    """Decode requests from the top of the stack until it is empty."""

    def __init__(self, queue: _Queue, relay: _Relay):
        super().__init__()
        self.setAutoDelete(True)
        self._queue = queue
        self._relay = relay

    def run(self) -> None:
        queue = self._queue
        while True:
            with queue.lock:
                if not queue.stack:
                    queue.active -= 1
                    return
                generation, key, source = queue.stack.pop()
                stale = generation != queue.generation
            if stale:  # cancelled after it was queued
                continue
            try:
                image, reason = make_thumbnail(source, queue.size), ""
            except BaseException as exc:  # noqa: BLE001 - every failure becomes a placeholder
                if not isinstance(exc, TrainDeskError):
                    log.error("thumbnail failed:\n%s", traceback.format_exc())
                image, reason = QImage(), describe_exception(exc)
            with queue.lock:
                if generation != queue.generation:
                    continue
            self._relay.done.emit(generation, key, image, reason)


class ThumbnailLoader(QObject):
    """Load thumbnails on a pool of (at most *max_threads*) threads of its own, with a cache.

    Parameters
    ----------
    size : int
        Thumbnails are at most this many pixels a side (small images are enlarged by a whole
        factor with nearest-neighbour).
    cache_size : int
        Thumbnails kept (least recently used ones are dropped).
    max_threads : int
    parent : QObject, optional

    Signals
    -------
    loaded(int key, QImage image)
        A requested thumbnail is ready (GUI thread).
    failed(int key, str reason)
        A requested image cannot be shown; :meth:`cached` now returns a gray placeholder.
    """

    loaded = Signal(int, QImage)
    failed = Signal(int, str)

    def __init__(self, size: int = 96, cache_size: int = 2000, max_threads: int = 2,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self.cache_size = cache_size
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.pool.setExpiryTimeout(5_000)
        self._queue = _Queue(size, max_threads)
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_done)
        self._cache: OrderedDict[int, QImage] = OrderedDict()
        self._reasons: dict[int, str] = {}
        self._pending: set[int] = set()
        self._broken: QImage | None = None
        self._closed = False
        #: Jobs queued since construction (for tests and diagnostics).
        self.requests_queued = 0
        job_registry().add_pool(self)  # closing the window cancels and joins it

    # -- asking ---------------------------------------------------------------------------------
    def request(self, key: int, source: Any) -> bool:
        """Queue the thumbnail of *source* (a path or a ``uint8`` HWC array) under *key*.

        Returns False when it is cached or already pending (nothing was queued).
        """
        if self._closed or key in self._cache or key in self._pending:
            return False
        queue = self._queue
        start = False
        with queue.lock:
            queue.stack.append((queue.generation, key, source))
            dropped = queue.stack[:-MAX_PENDING] if len(queue.stack) > MAX_PENDING else []
            if dropped:
                del queue.stack[:len(dropped)]
            if queue.active < queue.max_threads:
                queue.active += 1
                start = True
        for _, old_key, _ in dropped:
            self._pending.discard(old_key)  # asked for again when painted again
        self._pending.add(key)
        self.requests_queued += 1
        if start:
            self.pool.start(_DrainJob(queue, self._relay))
        return True

    def cached(self, key: int) -> QImage | None:
        """The thumbnail (or failure placeholder) under *key*, or None."""
        image = self._cache.get(key)
        if image is not None:
            self._cache.move_to_end(key)
        return image

    def failure(self, key: int) -> str:
        """Why the image under *key* cannot be shown ("" when it can, or is not known yet)."""
        return self._reasons.get(key, "")

    def is_pending(self, key: int) -> bool:
        return key in self._pending

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # -- stopping -------------------------------------------------------------------------------
    def cancel_all(self) -> None:
        """Forget every queued request; jobs already decoding are ignored when they finish."""
        with self._queue.lock:
            self._queue.generation += 1
            self._queue.stack.clear()
        self._pending.clear()

    def clear(self) -> None:
        """Cancel everything and empty the cache (the keys now mean other images)."""
        self.cancel_all()
        self._cache.clear()
        self._reasons.clear()

    def is_busy(self) -> bool:
        """Whether a pool thread is decoding or about to."""
        with self._queue.lock:
            return self._queue.active > 0

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for the pool's threads to finish (the window closes)."""
        self._closed = True
        self.cancel_all()
        return self.pool.waitForDone(timeout_ms)

    # -- results --------------------------------------------------------------------------------
    @Slot(int, int, QImage, str)
    def _on_done(self, generation: int, key: int, image: QImage, reason: str) -> None:
        if generation != self._queue.generation or self._closed:
            return
        self._pending.discard(key)
        if reason:
            if self._broken is None:
                self._broken = placeholder_image(self.size, broken=True)
            image = self._broken
            self._reasons[key] = reason
        self._cache[key] = image
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            old, _ = self._cache.popitem(last=False)
            self._reasons.pop(old, None)
        if reason:
            self.failed.emit(key, reason)
        else:
            self.loaded.emit(key, image)

