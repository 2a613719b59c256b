"""A last-resort guard against a test that hangs where no Python code runs.

pytest-timeout's signal method only fires when the main thread next runs Python bytecode, so a
test blocked inside C (a ``QThread.wait()``, a lock taken by native code) would hang the whole
suite until CI kills it, and CI then shows only the tail of the log. This watchdog thread prints
every thread's innermost frames, then one line naming the test, and ends the process, so the tail
of a CI log says what hung.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback

#: Seconds a single test may run before the process is ended (pytest-timeout acts at 300 s, and
#: pytest's faulthandler, which needs no GIL, dumps and exits at 420 s).
LIMIT_S = float(os.environ.get("TRAINDESK_TEST_WATCHDOG_S", "360"))


class Watchdog:
    def __init__(self, limit_s: float = LIMIT_S):
        self.limit_s = limit_s
        self.nodeid: str | None = None
        self.started = 0.0
        self._thread = threading.Thread(target=self._watch, name="test-watchdog", daemon=True)
        self._fd = 2

    def configure(self) -> None:
        """Keep a copy of the real stderr: while a test runs, pytest captures descriptor 2."""
        self._fd = os.dup(sys.__stderr__.fileno())

    def enter(self, nodeid: str) -> None:
        if not self._thread.is_alive():
            self._thread.start()
        self.started = time.monotonic()
        self.nodeid = nodeid

    def leave(self) -> None:
        self.nodeid = None

    def _watch(self) -> None:
        while True:
            time.sleep(2.0)
            nodeid = self.nodeid
            if nodeid is not None and time.monotonic() - self.started > self.limit_s:
                self._report(nodeid)
                os._exit(70)

    def _report(self, nodeid: str) -> None:
        names = {t.ident: t.name for t in threading.enumerate()}
        lines = ["", "=" * 30 + " test watchdog " + "=" * 30]
        innermost = []
        for ident, frame in sys._current_frames().items():
            if ident == threading.get_ident():
                continue
            stack = traceback.extract_stack(frame)
            name = names.get(ident, f"thread {ident}")
            lines.append(f"--- {name} (innermost last) ---")
            lines.extend(f"  {f.filename}:{f.lineno} {f.name}" for f in stack[-12:])
            if stack:
                last = stack[-1]
                innermost.append(f"{name} at {os.path.basename(last.filename)}:{last.lineno} "
                                 f"{last.name}")
        lines.append(f"HUNG: {nodeid} ran over {self.limit_s:.0f} s; " + "; ".join(innermost))
        os.write(self._fd, ("\n".join(lines) + "\n").encode("utf-8", "replace"))
