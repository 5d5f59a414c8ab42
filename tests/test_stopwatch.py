"""distill.stopwatch: an epoch's wall time leaves out the time its process was stopped (kill -STOP / -CONT)."""

import os
import signal

import pytest

from distill.stopwatch import Stopwatch


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_step_the_process_was_stopped_in_counts_as_a_typical_step():
    clock = FakeClock()
    watch = Stopwatch(clock)
    try:
        watch.start()
        for dt in (1.0, 1.2, 0.8):
            clock.t += dt
            watch.lap()
        clock.t += 3600.0          # stopped for an hour in the fourth step
        watch.resumed()
        watch.lap()
        clock.t += 1.0
        watch.lap()
        assert watch.paused == pytest.approx(3600.0 - 1.0)
        assert watch.seconds() == pytest.approx(1.0 + 1.2 + 0.8 + 1.0 + 1.0)
        watch.start()              # a new epoch starts with nothing paused and keeps the typical step
        clock.t += 500.0
        watch.resumed()
        watch.lap()
        assert watch.paused == pytest.approx(499.0) and watch.seconds() == pytest.approx(1.0)
    finally:
        watch.close()


def test_without_a_stop_it_is_the_plain_wall_time():
    clock = FakeClock()
    watch = Stopwatch(clock)
    watch.start()
    for _ in range(10):
        clock.t += 7.5
        watch.lap()
    watch.close()
    assert watch.paused == 0 and watch.seconds() == pytest.approx(75.0)


@pytest.mark.skipif(not hasattr(signal, "SIGCONT"), reason="no SIGCONT on this platform")
def test_a_real_sigcont_marks_the_step_and_the_previous_handler_comes_back():
    before = signal.getsignal(signal.SIGCONT)
    clock = FakeClock()
    watch = Stopwatch(clock)
    watch.start()
    clock.t += 2.0
    watch.lap()
    clock.t += 60.0
    os.kill(os.getpid(), signal.SIGCONT)   # what `kill -CONT` delivers on resuming; harmless to a running process
    watch.lap()
    watch.close()
    assert watch.paused == pytest.approx(58.0)
    assert signal.getsignal(signal.SIGCONT) == before
