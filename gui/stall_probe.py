"""Measure how responsive the GUI thread is: a timer that records the gaps between its beats."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer


class StallProbe(QObject):
    """Beats every *interval_ms* on the thread it lives on and records each gap between beats
    (ms). A gap much longer than the interval is the event loop stalling: what a user feels as a
    frozen window. Used by the benches and the soak tests.
    """

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None):
        super().__init__(parent)
        self.gaps_ms: list[float] = []
        self._clock = QElapsedTimer()
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._beat)

    def start(self) -> None:
        self._clock.start()
        self._last = 0.0
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _beat(self) -> None:
        now = self._clock.nsecsElapsed() / 1e6
        self.gaps_ms.append(now - self._last)
        self._last = now

    @property
    def worst_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def percentile_ms(self, q: float) -> float:
        """The *q*-th percentile of the gaps (0-100)."""
        if not self.gaps_ms:
            return 0.0
        ordered = sorted(self.gaps_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]
