"""Child processes: where the binaries are, the environment children get, and
`Proc`, a child whose stdout/stderr go to files, stopped by pid (SIGTERM, then
SIGKILL) when its case ends and again from atexit.

A child started on port 0 reports its bound port on a start-up line;
`Proc.wait_line` reads it from the child's output file.
"""

import atexit
import os
import signal
import subprocess
import threading
import time

from .checks import CaseFailure

# Bound for any single client operation or start-up; a hung server fails the
# case instead of hanging the suite.
IO_TIMEOUT = 20.0

_BINARIES = {"gateway": None, "model": None}


def set_binaries(gateway=None, model=None):
    """Paths of infergate and infergate-model (made absolute, so children can
    be started from any working directory)."""
    _BINARIES["gateway"] = os.path.abspath(gateway) if gateway else None
    _BINARIES["model"] = os.path.abspath(model) if model else None


def gateway_bin():
    b = _BINARIES["gateway"]
    if not b or not os.access(b, os.X_OK):
        raise CaseFailure("infergate binary not found (--gateway / IG_GATEWAY): %r" % (b,))
    return b


def model_bin():
    b = _BINARIES["model"]
    if not b or not os.access(b, os.X_OK):
        raise CaseFailure("infergate-model binary not found (--model / IG_MODEL): %r" % (b,))
    return b


def child_env(extra=None):
    """The environment for children: ours minus INFERGATE_* (the gateway
    treats unknown INFERGATE_* names as config errors, and a stray
    INFERGATE_CONFIG would change what is under test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERGATE_")}
    if extra:
        env.update(extra)
    return env


_LIVE = {}  # pid -> Proc, for the atexit safety net
_LIVE_LOCK = threading.Lock()


def _kill_all_children():
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for p in procs:
        try:
            p.stop(timeout=2)
        except Exception:
            pass


atexit.register(_kill_all_children)


def _on_sigterm(signum, frame):
    # meson sends SIGTERM on timeout: unwind so finally blocks and atexit run.
    raise SystemExit("killed by signal %d" % signum)


def unwind_on_sigterm():
    signal.signal(signal.SIGTERM, _on_sigterm)


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: AddressSanitizer")


class Proc:
    """A child process whose stdout/stderr go to files in `workdir`."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.argv = argv
        self.stdout_path = os.path.join(workdir, name + ".stdout")
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.killed = False
        self.expected_exit = None  # set by a case that expects a specific code
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                  stderr=self._err, env=child_env(env))
        self.pid = self.p.pid
        with _LIVE_LOCK:
            _LIVE[self.pid] = self

    def poll(self):
        return self.p.poll()

    def running(self):
        return self.p.poll() is None

    def send_signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Waits for exit; returns the code, or None if still running."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """SIGTERM (or `sig`), then SIGKILL after `timeout` s. Returns the exit
        code (negative signal number if killed by a signal)."""
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(timeout=10)
                self.killed = True
        with _LIVE_LOCK:
            _LIVE.pop(self.pid, None)
        for f in (self._out, self._err):
            if not f.closed:
                f.close()
        return self.p.returncode

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_text(self):
        return self._read(self.stderr_path)

    def stdout_text(self):
        return self._read(self.stdout_path)

    def tail(self, n=25):
        lines = self.stderr_text().splitlines()
        return "\n".join(lines[-n:])

    def wait_line(self, parse, what, stream="stderr", timeout=IO_TIMEOUT):
        """Waits for the first complete line of the child's `stream` for which
        parse(line) is not None and returns that value. Fails the case when
        the child exits first or nothing matches within `timeout`."""
        path = self.stderr_path if stream == "stderr" else self.stdout_path
        deadline = time.monotonic() + timeout
        while True:
            exited = self.poll()  # before reading: a line written before exit is seen
            for line in self._read(path).splitlines(keepends=True):
                if line.endswith("\n"):
                    v = parse(line.rstrip("\n"))
                    if v is not None:
                        return v
            if exited is not None:
                raise CaseFailure("%s exited with %s before printing %s; stderr:\n%s"
                                  % (self.name, exited, what, self.tail()))
            if time.monotonic() >= deadline:
                raise CaseFailure("%s printed no %s within %d s; stderr:\n%s"
                                  % (self.name, what, timeout, self.tail()))
            time.sleep(0.02)

    def sanitizer_report(self):
        text = self.stderr_text()
        for m in SANITIZER_MARKERS:
            i = text.find(m)
            if i >= 0:
                return text[max(0, i - 200):i + 1500]
        return None
