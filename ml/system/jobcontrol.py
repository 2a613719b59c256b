"""The one convention every long ``ml`` call follows to be stopped and to say how far it is.

- **Stopping**: a long call takes ``should_stop``, any callable returning True once the user has
  asked to stop (a :class:`CancelToken` is one; so is ``threading.Event().is_set``). It checks it
  between steps - never mid-write, so nothing is left half-written - with :func:`check_stop`,
  which raises :class:`ml.errors.Cancelled`.
- **Progress**: a long call takes ``progress``, called as ``progress(fraction, message)`` with
  *fraction* in 0..1 measuring real work done (bytes read, rows parsed, images decoded, steps
  taken). :func:`throttled` keeps a fast loop from calling it more often than a view can show.

Nothing here knows about threads or Qt: the GUI's workers pass their own flag and signal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..errors import Cancelled

#: ``progress(fraction, message)``: fraction of the work done (0..1) and what is happening.
Progress = Callable[[float, str], None]
#: ``should_stop()``: True once the caller asked the work to stop.
ShouldStop = Callable[[], bool]


class CancelToken:
    """A cancel flag shared by the thread that asks to stop and the one doing the work.

    Calling the token returns whether it was cancelled, so it can be passed wherever a
    ``should_stop`` callable is taken.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check (safe from any thread)."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        return self._event.is_set()

    def check(self, message: str = "Cancelled.") -> None:
        """Raise :class:`~ml.errors.Cancelled` with *message* when cancelled."""
        check_stop(self, message)


def check_stop(should_stop: ShouldStop | None, message: str = "Cancelled.") -> None:
    """Raise :class:`~ml.errors.Cancelled` with *message* when *should_stop* says so."""
    if should_stop is not None and should_stop():
        raise Cancelled(message)


def throttled(progress: Progress | None, interval: float = 0.05) -> Progress:
    """*progress*, called at most every *interval* seconds (always for the first call and for
    ``fraction >= 1``); a no-op when *progress* is None."""
    if progress is None:
        return lambda fraction, message: None
    last = [-float("inf")]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= interval or fraction >= 1.0:
            last[0] = now
            progress(min(max(float(fraction), 0.0), 1.0), message)

    return report


def part(progress: Progress | None, start: float, end: float) -> Progress:
    """*progress* for one stage of a longer job: the stage's 0..1 maps to *start*..*end*."""
    if progress is None:
        return lambda fraction, message: None
    return lambda fraction, message: progress(start + (end - start) * fraction, message)
