"""`Env`, the per-case context: a temporary directory and the processes a
case starts in it, all stopped when the case ends, on failure too."""

import os
import shutil
import sys
import tempfile

from .checks import CaseFailure
from .proc import IO_TIMEOUT
from .servers import EchoModel, Gateway, Model, base_config, deep_merge


class Env:
    """On exit, stops every process (SIGTERM, SIGKILL after 5 s), checks each
    one's expected exit code (0 for a gateway) and scans stderr for sanitizer
    reports. On failure, prints the tail of each child's stderr."""

    keep = False  # --keep: leave the temporary directories

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="ig-itest-%s-" % name)
        self.procs = []

    def __enter__(self):
        return self

    def _add(self, p):
        # Registered before it reports its port: a child that never does is
        # stopped at the end of the case like any other.
        self.procs.append(p)
        return p.wait_started()

    def model(self, *flags, name=None):
        return self._add(Model(self.dir, flags, name=name or "model%d" % len(self.procs)))

    def echo_model(self, name=None, **cfg):
        """Starts tests/integration/echo_model.py; `cfg` goes to its /_config."""
        m = self._add(EchoModel(self.dir, name=name or "echo%d" % len(self.procs)))
        if cfg:
            m.configure(**cfg)
        return m

    def gateway(self, upstream_url, overrides=None, host="127.0.0.1", wait_ready=True,
                name=None, admin_host="127.0.0.1"):
        """Starts a gateway on port 0 (data on `host`, admin on `admin_host`)
        and waits for its start-up line, then for /healthz 200 and, with
        `wait_ready`, /readyz 200."""
        cfg = deep_merge(base_config(upstream_url), overrides or {})
        gw = self._add(Gateway(self.dir, cfg, host, admin_host,
                               name or "gateway%d" % len(self.procs)))
        gw.wait_admin("/healthz", 200, IO_TIMEOUT)
        if wait_ready:
            gw.wait_admin("/readyz", 200)
        return gw

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def __exit__(self, etype, exc, tb):
        problems = []
        for p in reversed(self.procs):
            code = p.stop()
            if p.killed:
                problems.append("%s (pid %d) ignored SIGTERM and was killed" % (p.name, p.pid))
            elif p.expected_exit is not None and code != p.expected_exit:
                problems.append("%s (pid %d) exited with %s, expected %s"
                                % (p.name, p.pid, code, p.expected_exit))
            rep = p.sanitizer_report()
            if rep:
                problems.append("%s (pid %d) sanitizer report:\n%s" % (p.name, p.pid, rep))
        if etype is not None or problems:
            for p in self.procs:
                sys.stdout.write("---- %s (pid %d, argv %s) stderr tail:\n%s\n"
                                 % (p.name, p.pid, " ".join(p.argv), p.tail()))
        if not Env.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        if etype is None and problems:
            raise CaseFailure("; ".join(problems))
        return False
