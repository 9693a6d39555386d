"""Waiting and concurrency without timing assumptions: `wait_for` polls an
observable condition, `parallel` runs client calls on threads and keeps their
results in order, `Background` runs one call while the case goes on."""

import threading
import time

from .checks import check
from .proc import IO_TIMEOUT


def wait_for(pred, timeout=IO_TIMEOUT, interval=0.01):
    """Polls pred() until it is true; returns whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False


def parallel(fns, timeout=120):
    """Runs callables on threads; returns their results (or raises the first
    exception). Each thread gets a slot so results keep their order."""
    results = [None] * len(fns)
    errors = [None] * len(fns)

    def run(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # reported below
            errors[i] = e

    ts = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + timeout
    for t in ts:
        t.join(max(0.0, deadline - time.monotonic()))
        check(not t.is_alive(), "a client thread did not finish within %d s" % timeout)
    for e in errors:
        if e is not None:
            raise e
    return results


class Background:
    """Runs one callable on a thread; .result() joins and returns or raises."""

    def __init__(self, fn):
        self._res = None
        self._err = None
        self.t = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.t.start()

    def _run(self, fn):
        try:
            self._res = fn()
        except BaseException as e:
            self._err = e

    def done(self):
        return not self.t.is_alive()

    def result(self, timeout=IO_TIMEOUT * 2):
        self.t.join(timeout)
        check(not self.t.is_alive(), "background request did not finish within %d s" % timeout)
        if self._err is not None:
            raise self._err
        return self._res
