"""Integration test harness for infergate: spawns the real binaries and talks to them.

Each test_*.py file is a standalone script built on this module. It spawns
`infergate serve -c CONFIG.json` and `infergate-model --listen 127.0.0.1:0
--port-file F` as child processes on loopback ports chosen free at run time,
drives them with real clients (http.client, raw sockets, the curl CLI, an
asyncio load client) and checks what goes over the wire: status, headers and
body. Every child is killed by pid when its case ends, on failure too, and
again from atexit; its stderr is kept in a file whose tail is printed when a
case fails.

Stdlib only: it runs under /usr/bin/python3 on a bare Debian. Binary paths come
from --gateway/--model arguments (meson passes them) or from the IG_GATEWAY and
IG_MODEL environment variables.

Nothing here asserts on durations. Timeouts exist only to bound a test that
would otherwise hang; synchronisation uses observable state (the model's
/stats, the gateway's /autoscale, the order in which bytes arrive).
"""

import argparse
import asyncio
import atexit
import base64
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# Bound for any single client operation; a hung server fails the case instead
# of hanging the suite.
IO_TIMEOUT = 20.0


class Skip(Exception):
    """Raised by a case that cannot run here (e.g. no IPv6 loopback)."""


class CaseFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise CaseFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise CaseFailure("%s: expected %r, got %r" % (what, want, got))


# ---------------------------------------------------------------------------
# binaries


_BINARIES = {"gateway": None, "model": None}


def _parse_binary_args(argv):
    p = argparse.ArgumentParser(add_help=True)
    p.add_argument("--gateway", default=os.environ.get("IG_GATEWAY"))
    p.add_argument("--model", default=os.environ.get("IG_MODEL"))
    p.add_argument("-k", dest="only", action="append", default=[],
                   help="run only cases whose name contains this (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the temp dirs")
    args = p.parse_args(argv)
    # Absolute, so children can be started from any working directory.
    _BINARIES["gateway"] = os.path.abspath(args.gateway) if args.gateway else None
    _BINARIES["model"] = os.path.abspath(args.model) if args.model else None
    return args


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


# ---------------------------------------------------------------------------
# child processes

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
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                  stderr=self._err, env=child_env(env))
        self.pid = self.p.pid
        self.expected_exit = None  # set by a case that expects a specific code
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

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout_text(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, n=25):
        lines = self.stderr_text().splitlines()
        return "\n".join(lines[-n:])

    def sanitizer_report(self):
        text = self.stderr_text()
        for m in SANITIZER_MARKERS:
            i = text.find(m)
            if i >= 0:
                return text[max(0, i - 200):i + 1500]
        return None


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (bind to 0, read, close)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_port_pair(host_a="127.0.0.1", host_b="127.0.0.1"):
    """Two distinct free ports: both sockets stay bound until both are known,
    so the kernel cannot hand out the same one twice."""
    socks = []
    try:
        for host in (host_a, host_b):
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
        return socks[0].getsockname()[1], socks[1].getsockname()[1]
    finally:
        for s in socks:
            s.close()


def tcp_peer_ports(port):
    """Client ports of every TCP connection to 127.0.0.1:`port` the kernel
    still knows about (established, closing or TIME_WAIT), from
    /proc/net/tcp. Counts connections opened to a server without its help.
    Returns None when /proc/net/tcp cannot be read."""
    peers = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                local, remote, state = parts[1], parts[2], parts[3]
                if state == "0A":  # LISTEN
                    continue
                lport = int(local.split(":")[1], 16)
                rport = int(remote.split(":")[1], 16)
                if lport == port:
                    peers.add(rport)
                elif rport == port:
                    peers.add(lport)
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    return peers


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def fmt_hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


# ---------------------------------------------------------------------------
# the model and the gateway


class Model(Proc):
    def __init__(self, workdir, flags, name="model"):
        self.port_file = os.path.join(workdir, name + ".port")
        argv = [model_bin(), "--listen", "127.0.0.1:0", "--port-file", self.port_file] + list(flags)
        super().__init__(name, argv, workdir)
        self.port = self._wait_port()
        self.url = "http://127.0.0.1:%d" % self.port

    def _wait_port(self):
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            if self.poll() is not None:
                raise CaseFailure("infergate-model exited with %s before listening; stderr:\n%s"
                                  % (self.poll(), self.tail()))
            try:
                with open(self.port_file) as f:
                    text = f.read()
                if text.endswith("\n") and text.strip().isdigit():
                    return int(text.strip())
            except OSError:
                pass
            time.sleep(0.02)
        raise CaseFailure("infergate-model wrote no port file %s; stderr:\n%s"
                          % (self.port_file, self.tail()))

    def get_json(self, path):
        r = request(self.port, "GET", path)
        check(r.status == 200, "model GET %s: status %d body %r" % (path, r.status, r.body[:200]))
        return r.json()

    def stats(self):
        return self.get_json("/stats")

    def reset_stats(self):
        r = request(self.port, "POST", "/stats/reset", body=b"")
        check(r.status in (200, 204), "model POST /stats/reset: status %d" % r.status)

    def wait_stat(self, key, pred, what, timeout=IO_TIMEOUT):
        """Polls the model's /stats until pred(stats[key]) holds."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.stats().get(key)
            if last is not None and pred(last):
                return last
            time.sleep(0.01)
        raise CaseFailure("model /stats %s never became %s (last %r)" % (key, what, last))


class EchoModel(Proc):
    """tests/integration/echo_model.py: a recording echo model (Python), started
    on port 0; it prints its bound port on stdout. See that file for its API."""

    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_model.py")

    def __init__(self, workdir, name="echo"):
        py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
        super().__init__(name, [py, self.SCRIPT, "--port", "0"], workdir)
        self.port = self._wait_port()
        self.url = "http://127.0.0.1:%d" % self.port

    def _wait_port(self):
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            if self.poll() is not None:
                raise CaseFailure("echo model exited with %s before listening; stderr:\n%s"
                                  % (self.poll(), self.tail()))
            text = self.stdout_text()
            if text.endswith("\n") and text.strip().isdigit():
                return int(text.strip())
            time.sleep(0.02)
        raise CaseFailure("echo model printed no port; stderr:\n%s" % self.tail())

    def _post(self, path, obj):
        r = request(self.port, "POST", path, body=json.dumps(obj).encode(),
                    headers={"Content-Type": "application/json"})
        check(r.status == 200, "echo model POST %s: status %d body %r"
              % (path, r.status, r.body[:200]))
        return r.json()

    def configure(self, **cfg):
        """POST /_config: delay_ms, force ("json" | "binary" | None), wrong_binary_size."""
        return self._post("/_config", cfg)

    def reset(self):
        self._post("/_reset", {})

    def release(self):
        """Lets every held GET /_block answer."""
        return self._post("/_release", {})

    def state(self):
        r = request(self.port, "GET", "/_state")
        check(r.status == 200, "echo model GET /_state: status %d" % r.status)
        return r.json()

    def calls(self):
        """Recorded calls, bodies decoded: [{"method","path","headers": {lower: value},
        "header_list": [[k, v]], "body": bytes}]."""
        r = request(self.port, "GET", "/_calls")
        check(r.status == 200, "echo model GET /_calls: status %d" % r.status)
        out = []
        for c in r.json():
            out.append({"method": c["method"], "path": c["path"],
                        "header_list": c["headers"],
                        "headers": _hdict(c["headers"]),
                        "body": base64.b64decode(c["body"])})
        return out


    def accepts(self):
        """True when a TCP connect to the model's port succeeds right now."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
            return True
        except OSError:
            return False

    def revive(self):
        """Brings the echo model back after crash_after_read took it down
        (SIGUSR1: it listens again on the same port); waits until it accepts."""
        self.send_signal(signal.SIGUSR1)
        check(wait_for(self.accepts), "echo model did not listen again after SIGUSR1")


def tcp_inode_peers():
    """{socket inode: (local port, remote port, state hex)} of every TCP
    socket in /proc/net/tcp and tcp6."""
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            try:
                out[int(f[9])] = (int(f[1].rsplit(":", 1)[1], 16),
                                  int(f[2].rsplit(":", 1)[1], 16), f[3])
            except (IndexError, ValueError):
                pass
    return out


def fd_census(pid, peer_port=None):
    """The open file descriptors of process `pid`: (total, to_peer), where
    to_peer counts its TCP sockets whose remote port is `peer_port` (e.g. the
    gateway's pooled connections to the model)."""
    fds = os.listdir("/proc/%d/fd" % pid)
    to_peer = 0
    if peer_port is not None:
        peers = tcp_inode_peers()
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                info = peers.get(int(link[8:-1]))
                if info and info[1] == peer_port:
                    to_peer += 1
    return len(fds), to_peer


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


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


PASSTHROUGH_ONLY = [{"match": "/*", "protocol": "passthrough"}]


def base_config(upstream_url):
    """A config for tests: fast probes, short drain so stopping is quick."""
    return {
        "upstream": {"url": upstream_url, "probe_interval_ms": 100},
        "drain": {"grace_ms": 0, "timeout_ms": 3000},
        "log": {"level": "info", "access_log": True},
    }


class Gateway(Proc):
    """`infergate serve -c CONFIG` with its data port (.port) and admin port."""

    def __init__(self, workdir, config, host, name):
        self.host = host
        self.config = config
        self.config_path = os.path.join(workdir, name + ".json")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        super().__init__(name, [gateway_bin(), "serve", "-c", self.config_path], workdir)
        self.port = int(config["listen"].rsplit(":", 1)[1])
        self.admin_port = int(config["admin_listen"].rsplit(":", 1)[1])
        self.expected_exit = 0

    def admin(self, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
        return request(self.admin_port, method, path, body=body, headers=headers,
                       host=self.admin_host(), timeout=timeout)

    def admin_host(self):
        h = self.config["admin_listen"].rsplit(":", 1)[0]
        return h.strip("[]")

    def data(self, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
        return request(self.port, method, path, body=body, headers=headers, host=self.host,
                       timeout=timeout)

    def wait_admin(self, path, status, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.poll() is not None:
                raise CaseFailure("infergate exited with %s while waiting for %s == %d; stderr:\n%s"
                                  % (self.poll(), path, status, self.tail()))
            try:
                r = self.admin("GET", path, timeout=2)
                last = r.status
                if r.status == status:
                    return r
            except OSError as e:
                last = repr(e)
            time.sleep(0.02)
        raise CaseFailure("admin %s never answered %d (last: %s)" % (path, status, last))

    def queue_depth(self):
        """Queue depth from GET /autoscale, or None if that endpoint is absent."""
        try:
            r = self.admin("GET", "/autoscale", timeout=2)
        except OSError:
            return None
        if r.status != 200:
            return None
        try:
            return r.json().get("queue_depth")
        except ValueError:
            return None

    def wait_queue_depth_at_most(self, n, timeout=IO_TIMEOUT):
        """Waits until the gateway reports at most n queued requests."""
        check(wait_for(lambda: (self.queue_depth() or 0) <= n, timeout),
              "gateway queue depth never fell to %d" % n)

    def wait_queue_depth(self, n, timeout=IO_TIMEOUT):
        """Waits until the gateway reports at least n queued requests. When
        /autoscale is not available, waits a fixed 0.5 s instead: this only
        orders the test's requests, it asserts nothing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.queue_depth()
            if d is None:
                time.sleep(0.5)
                return
            if d >= n:
                return
            time.sleep(0.01)
        raise CaseFailure("gateway queue depth never reached %d" % n)


class Env:
    """Per-case context: a temp dir and the processes started in it. On exit,
    stops every process (SIGTERM, SIGKILL after 5 s), checks the gateway's exit
    code and scans stderr for sanitizer reports. On failure, prints tails."""

    keep = False

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="ig-itest-%s-" % name)
        self.procs = []

    def __enter__(self):
        return self

    def model(self, *flags, name=None):
        m = Model(self.dir, flags, name=name or "model%d" % len(self.procs))
        self.procs.append(m)
        return m

    def echo_model(self, name=None, **cfg):
        """Starts tests/integration/echo_model.py; `cfg` goes to its /_config."""
        m = EchoModel(self.dir, name=name or "echo%d" % len(self.procs))
        self.procs.append(m)
        if cfg:
            m.configure(**cfg)
        return m

    def gateway(self, upstream_url, overrides=None, host="127.0.0.1", wait_ready=True,
                name=None, admin_host="127.0.0.1"):
        """Starts a gateway; picks free ports and retries the whole start up to
        3 times when the gateway reports an address already in use."""
        name = name or "gateway%d" % len(self.procs)
        last_err = None
        for attempt in range(3):
            cfg = deep_merge(base_config(upstream_url), overrides or {})
            data_port, admin_port = free_port_pair(host, admin_host)
            cfg["listen"] = fmt_hostport(host, data_port)
            cfg["admin_listen"] = fmt_hostport(admin_host, admin_port)
            gw = Gateway(self.dir, cfg, host, "%s-try%d" % (name, attempt))
            deadline = time.monotonic() + IO_TIMEOUT
            while time.monotonic() < deadline:
                code = gw.poll()
                if code is not None:
                    break
                try:
                    r = gw.admin("GET", "/healthz", timeout=2)
                    if r.status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.02)
            code = gw.poll()
            if code is None:
                self.procs.append(gw)
                if wait_ready:
                    gw.wait_admin("/readyz", 200)
                return gw
            err = gw.stderr_text()
            gw.stop()
            last_err = "infergate serve exited with %d; stderr:\n%s" % (code, err[-3000:])
            # Retry only a bind failure (someone took a port we picked).
            low = err.lower()
            if not any(m in low for m in ("in use", "eaddrinuse", "cannot listen")):
                break
        raise CaseFailure(last_err or "infergate serve did not start")

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def __exit__(self, etype, exc, tb):
        problems = []
        for p in reversed(self.procs):
            code = p.stop()
            if getattr(p, "killed", False):
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


# ---------------------------------------------------------------------------
# clients


class Resp:
    def __init__(self, status, headers, body, raw_headers=None):
        self.status = status
        self.headers = headers  # lowercased name -> value (repeats joined by ", ")
        self.body = body
        self.raw_headers = raw_headers or []

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<HTTP %d %r %r>" % (self.status, self.headers, self.body[:300])


def _hdict(pairs):
    d = {}
    for k, v in pairs:
        k = k.lower()
        d[k] = d[k] + ", " + v if k in d else v
    return d


def request(port, method, path, body=None, headers=None, host="127.0.0.1", timeout=IO_TIMEOUT):
    """One request on a fresh connection with http.client."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        try:
            data = r.read()
        except http.client.IncompleteRead as e:
            raise CaseFailure("%s %s: response %d truncated: %d body bytes, then the connection "
                              "closed before the end of the body (headers %r)"
                              % (method, path, r.status, len(e.partial), r.getheaders()))
        pairs = r.getheaders()
        return Resp(r.status, _hdict(pairs), data, pairs)
    finally:
        c.close()


def check_error(r, status, reason, what):
    """Checks an infergate error response: status and JSON {"error","reason"}."""
    check(r.status == status, "%s: expected status %d (%s), got %d body %r"
          % (what, status, reason, r.status, r.body[:300]))
    try:
        j = r.json()
    except ValueError:
        raise CaseFailure("%s: error body is not JSON: %r" % (what, r.body[:300]))
    check(isinstance(j, dict), "%s: error body is not an object: %r" % (what, j))
    check(isinstance(j.get("error"), str) and j["error"] != "",
          "%s: error body lacks a non-empty \"error\": %r" % (what, j))
    if reason is not None:
        check_eq(j.get("reason"), reason, "%s: reason" % what)


class RawConn:
    """A plain socket with a response parser, for pipelining, malformed input,
    slow senders and watching the connection close."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect((host, port))
        self.buf = b""
        self.eof = False
        self.recv_log = []  # sizes of each recv, in order

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def _fill(self):
        """One recv into the buffer; False at EOF or reset."""
        if self.eof:
            return False
        try:
            chunk = self.s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.recv_log.append(chunk)
        self.buf += chunk
        return True

    def _take_until(self, sep):
        while sep not in self.buf:
            if not self._fill():
                raise CaseFailure("connection closed before %r (have %r)" % (sep, self.buf[:200]))
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def _take(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise CaseFailure("connection closed with %d of %d body bytes" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head_request=False):
        """Reads one response; returns None on a clean EOF before any byte."""
        while not self.buf:
            if not self._fill():
                return None
        head = self._take_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        check(len(parts) >= 2 and parts[0].startswith("HTTP/1."), "bad status line %r" % lines[0])
        status = int(parts[1])
        pairs = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            pairs.append((k.strip(), v.strip()))
        h = _hdict(pairs)
        if head_request or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in h.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size_line = self._take_until(b"\r\n").split(b";")[0].strip()
                n = int(size_line, 16)
                if n == 0:
                    # trailers until an empty line
                    while self._take_until(b"\r\n") != b"":
                        pass
                    break
                body += self._take(n)
                self._take_until(b"\r\n")
        elif "content-length" in h:
            body = self._take(int(h["content-length"]))
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return Resp(status, h, body, pairs)

    def wait_closed(self, timeout=IO_TIMEOUT):
        """True if the peer closes (EOF or reset) within timeout; data read
        meanwhile lands in self.buf."""
        self.s.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except socket.timeout:
            return False

    def readable_now(self):
        r, _, _ = select.select([self.s], [], [], 0)
        return bool(r)


def http_req(method, path, body=b"", headers=None, host="t"):
    """Serialises a request (Content-Length framing) for a raw socket."""
    h = {"Host": host}
    if body or method in ("POST", "PUT"):
        h["Content-Length"] = str(len(body))
    if headers:
        h.update(headers)
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in h.items())
    return head.encode("latin-1") + b"\r\n" + body


def curl(args, timeout=60):
    """Runs the curl CLI; returns CompletedProcess (stdout/stderr bytes)."""
    if not shutil.which("curl"):
        raise Skip("curl is not installed")
    return subprocess.run(["curl", "-sS", "--max-time", "30"] + args, capture_output=True,
                          timeout=timeout)


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


# ---------------------------------------------------------------------------
# load client (drain test)


class LoadClient:
    """Keep-alive load over N connections on an asyncio loop in its own thread,
    counting every request:
      sent          requests written to a connection
      by_status     responses received, by "status" or "status reason"
      refused       connection attempts refused (nothing was sent)
      unaccepted    a brand-new connection reset before its first response:
                    the kernel accepted it into the listen backlog but the
                    gateway closed its listener before accepting it
      lost          requests written on an accepted connection that got no
                    response (EOF, reset, or timeout): must be 0
    A worker reconnects after `Connection: close` and stops when refused."""

    def __init__(self, host, port, request_bytes, connections, max_requests):
        self.host = host
        self.port = port
        self.req = request_bytes
        self.connections = connections
        self.max_requests = max_requests
        self.sent = 0
        self.responses = 0
        self.by_status = {}
        self.refused = 0
        self.unaccepted = 0
        self.lost = 0
        self.lost_details = []  # (monotonic time, description)
        self.connect_errors = []
        self.late_draining = []  # monotonic times of 503 draining responses
        self.stop = False
        self.thread = threading.Thread(target=self._main, daemon=True)

    def start(self):
        self.thread.start()

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _main(self):
        asyncio.run(self._run())

    async def _run(self):
        await asyncio.gather(*(self._worker(i) for i in range(self.connections)))

    async def _read_response(self, reader):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        h = {}
        for ln in lines[1:]:
            if ln:
                k, _, v = ln.partition(":")
                h[k.strip().lower()] = v.strip()
        if "chunked" in h.get("transfer-encoding", "").lower():
            body = b""
            while True:
                n = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if n == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                body += await reader.readexactly(n)
                await reader.readexactly(2)
        elif "content-length" in h:
            body = await reader.readexactly(int(h["content-length"]))
        else:
            body = await reader.read()
        return status, h, body

    async def _worker(self, i):
        while not self.stop and self.sent < self.max_requests:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), IO_TIMEOUT)
            except ConnectionRefusedError:
                self.refused += 1
                return
            except (OSError, asyncio.TimeoutError) as e:
                self.connect_errors.append(repr(e))
                return
            fresh = True
            try:
                while not self.stop and self.sent < self.max_requests:
                    writer.write(self.req)
                    self.sent += 1
                    try:
                        await writer.drain()
                        status, h, body = await asyncio.wait_for(self._read_response(reader),
                                                                 IO_TIMEOUT * 2)
                    except ConnectionResetError as e:
                        if fresh:
                            self.unaccepted += 1
                        else:
                            self.lost += 1
                            self.lost_details.append((time.monotonic(), "worker %d: %r" % (i, e)))
                        break
                    except (asyncio.IncompleteReadError, OSError, asyncio.TimeoutError,
                            ValueError, IndexError) as e:
                        self.lost += 1
                        self.lost_details.append(
                            (time.monotonic(), "worker %d (fresh=%s): %r" % (i, fresh, e)))
                        break
                    fresh = False
                    self.responses += 1
                    key = str(status)
                    if status != 200:
                        try:
                            key += " " + str(json.loads(body).get("reason"))
                        except ValueError:
                            key += " non-json"
                    if key == "503 draining":
                        self.late_draining.append(time.monotonic())
                    self.by_status[key] = self.by_status.get(key, 0) + 1
                    if "close" in h.get("connection", "").lower():
                        break
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass


# ---------------------------------------------------------------------------
# the runner


class Suite:
    """Collects cases; `run()` prints "ok <case>" / "FAIL <case>: why" /
    "skip <case>: why" and exits 1 if any case failed (77, meson's skip code,
    if every case skipped)."""

    def __init__(self, name):
        self.name = name
        self.cases = []

    def case(self, fn):
        self.cases.append(fn)
        return fn

    def run(self, argv=None):
        args = _parse_binary_args(sys.argv[1:] if argv is None else argv)
        Env.keep = args.keep
        signal.signal(signal.SIGTERM, _on_sigterm)
        failed, skipped, passed = [], [], []
        for fn in self.cases:
            name = fn.__name__
            if args.only and not any(o in name for o in args.only):
                continue
            sys.stdout.write("-- %s\n" % name)
            sys.stdout.flush()
            try:
                fn()
            except Skip as e:
                skipped.append(name)
                print("skip %s: %s" % (name, e))
            except CaseFailure as e:
                failed.append(name)
                print("FAIL %s: %s" % (name, e))
            except Exception as e:
                failed.append(name)
                print("FAIL %s: unexpected %s: %s" % (name, type(e).__name__, e))
                traceback.print_exc(file=sys.stdout)
            else:
                passed.append(name)
                print("ok %s" % name)
            sys.stdout.flush()
        print("%s: %d passed, %d failed, %d skipped" % (self.name, len(passed), len(failed),
                                                        len(skipped)))
        if failed:
            print("failed: " + ", ".join(failed))
            sys.exit(1)
        if skipped and not passed:
            sys.exit(77)
        sys.exit(0)
