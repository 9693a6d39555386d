"""HTTP clients: `request` (one request on a fresh http.client connection),
`RawConn` (a plain socket with a response parser, for pipelining, malformed
input, slow senders and watching a connection close), `http_req` (serialises
a request for a raw socket) and `curl` (the curl CLI). Every operation has a
timeout (IO_TIMEOUT by default)."""

import http.client
import json
import select
import shutil
import socket
import subprocess

from .checks import CaseFailure, check
from .proc import IO_TIMEOUT


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


def header_dict(pairs):
    """[(name, value)] -> {lowercased name: value}, repeats joined by ", "."""
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
        return Resp(r.status, header_dict(pairs), data, pairs)
    finally:
        c.close()


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
        h = header_dict(pairs)
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
    # curl is a test dependency (scripts/install-deps): missing, the case fails.
    check(shutil.which("curl") is not None, "curl is not installed (apt-get install curl)")
    return subprocess.run(["curl", "-sS", "--max-time", "30"] + args, capture_output=True,
                          timeout=timeout)
