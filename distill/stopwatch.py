"""Wall time of a training epoch without the time its process was stopped.

A long background run is paused for a benchmark or a probe with `kill -STOP <pid>` and resumed with `kill -CONT`
(README, "Training"). Wall clocks keep running while a process is stopped, so an epoch that spanned a pause would
record the pause as training time, and the scaling study (`distill scaling`) would read it as cost. On POSIX a
SIGCONT handler marks the step during which the process was stopped; that step counts as the median of the
recent steps, and the rest is `paused` time. Elsewhere (no SIGCONT) it is a plain wall clock.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable

RECENT_STEPS = 64


class Stopwatch:
    """Per-epoch wall seconds minus stopped time; one per training run (the typical step carries across epochs).

    `start()` at the start of an epoch, `lap()` after every step, `seconds()` / `paused` when it ends; `close()`
    restores the previous SIGCONT handler. `clock` (seconds, monotonic) is injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.paused = 0.0
        self._conts = 0
        self._seen = 0
        self._steps: deque[float] = deque(maxlen=RECENT_STEPS)
        self._previous = None
        self._t0 = self._last = clock()
        if hasattr(signal, "SIGCONT") and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGCONT, self._on_cont)

    def _on_cont(self, signum, frame) -> None:
        self._conts += 1
        if callable(self._previous) and self._previous not in (signal.SIG_DFL, signal.SIG_IGN):
            self._previous(signum, frame)

    def resumed(self) -> None:
        """Mark the current step as one the process was stopped in (what the SIGCONT handler does)."""
        self._conts += 1

    def start(self) -> None:
        self._t0 = self._last = self.clock()
        self.paused = 0.0
        self._seen = self._conts

    def lap(self) -> None:
        now = self.clock()
        dt, self._last = now - self._last, now
        if self._conts != self._seen:
            self._seen = self._conts
            typical = statistics.median(self._steps) if self._steps else 0.0
            self.paused += max(0.0, dt - typical)
        else:
            self._steps.append(dt)

    def seconds(self) -> float:
        """Wall seconds since `start()`, less the stopped time found so far."""
        return self.clock() - self._t0 - self.paused

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGCONT, self._previous)
            self._previous = None
