"""Shared plumbing for the infergate test fakes (App Mesh and Kubernetes API).

The fakes are small single-process HTTP servers that enforce the real wire
contracts so a wrong request from infergate's bootstrap client fails the way it
would against the real service.  This module holds what both need and what is
not specific to either protocol:

- a threaded HTTP/1.1 server bound to 127.0.0.1 on a port the OS picks, whose
  port is published atomically in a "port file" once it listens;
- request body reading (Content-Length or chunked) with a size cap;
- an ordered, thread-safe request log and a "fail the next N matching calls"
  rule list for the control endpoints;
- helpers for the self-tests: spawn a fake as a child, wait (bounded) for its
  port file, and always kill it by pid.

It is not a web framework: routing and auth live in each fake.
"""

import http.server
import json
import os
import signal
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

MAX_BODY_BYTES = 8 * 1024 * 1024


class BodyError(Exception):
    """The request body could not be read (bad framing or too large)."""


class FakeServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTP server on 127.0.0.1, one thread per connection, port from the OS."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler_cls, app, tls_context=None):
        super().__init__(("127.0.0.1", 0), handler_cls)
        self.app = app
        self.tls_context = tls_context

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a
        # client that stalls or fails the handshake never blocks accept().
        if self.tls_context is not None:
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                if os.environ.get("FAKE_VERBOSE"):
                    sys.stderr.write("fake: TLS handshake with %s failed: %s\n" % (client_address, e))
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-request is normal in tests; anything else
        # is a bug in the fake and is printed.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    @property
    def port(self):
        return self.server_address[1]


class BaseHandler(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler with JSON helpers; subclasses implement handle_any()."""

    protocol_version = "HTTP/1.1"
    server_version = "infergate-fake/1"

    def log_message(self, fmt, *args):  # noqa: D401 - stdlib signature
        if os.environ.get("FAKE_VERBOSE"):
            sys.stderr.write("fake: " + (fmt % args) + "\n")

    def read_body(self):
        """Return the request body as bytes; raises BodyError on bad framing."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise BodyError("connection closed inside a chunked body")
                size_txt = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_txt, 16)
                except ValueError:
                    raise BodyError("invalid chunk size line %r" % line[:40])
                if size == 0:
                    # Trailer section ends with an empty line.
                    while True:
                        trailer = self.rfile.readline(1024)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise BodyError("body larger than %d bytes" % MAX_BODY_BYTES)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BodyError("invalid Content-Length %r" % length)
        if n < 0 or n > MAX_BODY_BYTES:
            raise BodyError("Content-Length %d out of range" % n)
        data = self.rfile.read(n)
        if len(data) != n:
            raise BodyError("body shorter than Content-Length")
        return data

    def send_bytes(self, status, body, content_type="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, headers=None, content_type="application/json"):
        body = json.dumps(obj, sort_keys=False).encode("utf-8")
        self.send_bytes(status, body, content_type, headers)

    def do_GET(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def handle_any(self):
        raise NotImplementedError

    def common_control(self, app, path, body, parse_rule):
        """Answers the control endpoints every fake has: GET /_fake/state,
        GET /_fake/requests, POST /_fake/reset and POST /_fake/fail, whose rule
        is parse_rule(body) (a ValueError from it is a 400 naming the problem).
        `app` has lock, state(), log, reset() and fails. Returns False, having
        answered nothing, when `path` is none of them."""
        if path == "/_fake/state" and self.command == "GET":
            with app.lock:
                self.send_json(200, app.state())
        elif path == "/_fake/requests" and self.command == "GET":
            self.send_json(200, app.log.snapshot())
        elif path == "/_fake/reset" and self.command == "POST":
            app.reset()
            self.send_json(200, {"reset": True})
        elif path == "/_fake/fail" and self.command == "POST":
            try:
                rule = parse_rule(body)
            except ValueError as e:
                self.send_json(400, {"error": str(e)})
                return True
            app.fails.add(rule)
            self.send_json(200, rule)
        else:
            return False
        return True


class RequestLog:
    """Thread-safe ordered list of dicts describing every API call."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def add(self, entry):
        with self._lock:
            self._items.append(entry)

    def snapshot(self):
        with self._lock:
            return list(self._items)

    def clear(self):
        with self._lock:
            self._items.clear()


def fail_rule_members(doc, members):
    """First check of a POST /_fake/fail rule: a JSON object with no member
    outside `members`. Raises ValueError naming the problem."""
    if not isinstance(doc, dict):
        raise ValueError("fail rule must be a JSON object")
    unknown = set(doc) - set(members)
    if unknown:
        raise ValueError("unknown fail rule member(s): %s" % ", ".join(sorted(unknown)))


def fail_rule_status_times(doc):
    """The rule's `status` (an HTTP error status, required) and `times` (a
    positive integer, default 1). Raises ValueError naming the bad one."""
    status = doc.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise ValueError("status must be an HTTP error status (400-599)")
    times = doc.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise ValueError("times must be a positive integer")
    return status, times


class FailRules:
    """Rules "fail the next N calls matching X"; each match consumes one use.

    `matcher(rule, call)` decides whether a rule applies to a call; the first
    rule that applies and still has uses left wins.
    """

    def __init__(self, matcher):
        self._lock = threading.Lock()
        self._rules = []
        self._matcher = matcher

    def add(self, rule):
        with self._lock:
            self._rules.append(rule)

    def clear(self):
        with self._lock:
            self._rules.clear()

    def take(self, call):
        with self._lock:
            for rule in self._rules:
                if rule["times"] > 0 and self._matcher(rule, call):
                    rule["times"] -= 1
                    if rule["times"] == 0:
                        self._rules.remove(rule)
                    return dict(rule)
        return None


def write_port_file(path, port):
    """Publish the port atomically: readers never see a half-written file."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".port-", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def serve_forever(server, port_file):
    """Write the port file, then serve until SIGTERM/SIGINT."""

    def stop(signum, frame):
        # shutdown() blocks until serve_forever returns, so run it elsewhere.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    write_port_file(port_file, server.port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


# ---------------------------------------------------------------------------
# Self-test helpers


class Child:
    """A fake running as a child process; always stopped by pid."""

    def __init__(self, argv, port_file, env=None):
        self.port_file = port_file
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        self.port = None

    def wait_ready(self, timeout_s=30.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("fake exited early with status %s" % self.proc.returncode)
            try:
                with open(self.port_file) as f:
                    txt = f.read()
                if txt.endswith("\n"):
                    self.port = int(txt)
                    return self.port
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise RuntimeError("fake did not write its port file %s in %.0fs" % (self.port_file, timeout_s))

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


def http_call(method, url, body=None, headers=None, context=None, timeout=30):
    """Plain urllib call that returns (status, headers, body bytes) for any status."""
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Checker:
    """Counts checks and failures; prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
            print("ok   - " + what)
        else:
            self.failed += 1
            print("FAIL - " + what)
        sys.stdout.flush()
        return cond

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 0 if self.failed == 0 and self.passed > 0 else 1
