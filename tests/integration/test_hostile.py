"""Regression tests for the defects a hostile review of the request path
found (issue "Reliability and security"): each case is named after the bug
it pins and failed on the code before its fix.

The model is either the real infergate-model, the recording echo model
(tests/integration/echo_model.py), which can drop a call after reading it or
send hop-by-hop headers, or a raw socket fake written here that sends a
response head and a broken chunk in one write.
"""

import json
import socket
import threading
import time

import harness as h

suite = h.Suite("hostile")

PASS_ROUTES = [{"match": "/*", "protocol": "passthrough"}]


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise h.CaseFailure("no VmRSS for pid %d" % pid)


def raw_status(port, data, timeout=h.IO_TIMEOUT):
    c = h.RawConn(port, timeout=timeout)
    try:
        c.send(data)
        return c.read_response()
    finally:
        c.close()


@suite.case
def pipelined_flood_that_never_reads_keeps_memory_bounded():
    # A client that pipelines requests and never reads the answers used to
    # make the gateway hold every answer (770-926 MiB of RSS for ~100 MiB
    # sent). Now the gateway stops reading once its write queue is past the
    # high-water mark, so the client's sends block instead.
    with h.Env("flood") as env:
        model = env.model("--quiet")
        gw = env.gateway(model.url, {"routes": PASS_ROUTES})
        before = vm_rss_kib(gw.pid)
        req = b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n"
        chunk = req * 4096  # ~172 KB
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(1.0)
        sent, limit = 0, 48 * 1024 * 1024
        deadline = time.monotonic() + 20
        try:
            while sent < limit and time.monotonic() < deadline:
                try:
                    sent += s.send(chunk)
                except socket.timeout:
                    break  # the gateway stopped reading: what we want
            time.sleep(0.5)
            grown = vm_rss_kib(gw.pid) - before
        finally:
            s.close()
        h.check(grown < 64 * 1024,
                "gateway RSS grew by %d KiB for %d bytes of pipelined requests never read"
                % (grown, sent))
        # It still serves everyone else.
        r = gw.data("GET", "/v2/health/live")
        h.check_eq(r.status, 200, "health after the flood")


@suite.case
def post_is_not_sent_twice_when_a_reused_connection_fails():
    # The model reads a POST on a kept-alive connection and dies without
    # answering. The gateway used to re-send it on a fresh connection (the
    # model did the work twice); RFC 9110 9.2.2 allows that only for
    # idempotent methods.
    with h.Env("noretry") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": PASS_ROUTES,
                                    "upstream": {"max_concurrency": 1, "max_connections": 1}})
        body = json.dumps({"instances": [[1, 2]]}).encode()
        r = gw.data("POST", "/v1/models/m:predict", body, {"Content-Type": "application/json"})
        h.check_eq(r.status, 200, "first call (it warms the pooled connection)")
        echo.reset()
        echo.configure(drop_after_read=1)
        r = gw.data("POST", "/v1/models/m:predict", body, {"Content-Type": "application/json"})
        h.check_error(r, 502, "upstream_unavailable", "POST whose connection died mid-call")
        calls = [c for c in echo.calls() if c["path"] == "/v1/models/m:predict"]
        h.check_eq(len(calls), 1, "times the model received the POST")


@suite.case
def get_is_still_retried_once_on_a_fresh_connection():
    with h.Env("retryget") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": PASS_ROUTES,
                                    "upstream": {"max_concurrency": 1, "max_connections": 1}})
        body = json.dumps({"instances": [[1]]}).encode()
        h.check_eq(gw.data("POST", "/v1/models/m:predict", body).status, 200, "warm-up")
        echo.reset()
        echo.configure(drop_after_read=1)
        r = gw.data("GET", "/v1/models/m:predict")
        # The retry reached the model (which answers 404 to a GET there).
        h.check_eq(r.status, 404, "GET retried after its connection died")
        calls = [c for c in echo.calls() if c["path"] == "/v1/models/m:predict"]
        h.check_eq(len(calls), 2, "times the model received the GET (dropped + retried)")


@suite.case
def headers_the_models_connection_header_names_are_not_forwarded():
    with h.Env("hophdr") as env:
        echo = env.echo_model(delay_ms=0, hop_headers=True)
        gw = env.gateway(echo.url, {"routes": PASS_ROUTES})
        r = gw.data("POST", "/v1/models/m:predict", json.dumps({"instances": [1]}).encode())
        h.check_eq(r.status, 200, "status")
        h.check("x-hop-only" not in r.headers,
                "the model's Connection-listed header reached the client: %r" % r.headers)


class BrokenChunkModel:
    """Answers readiness probes, and every other request with a response head
    and an invalid chunk size in one write, then closes."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _serve(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                n = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        n = int(v.strip())
                while len(buf) < n:
                    buf += s.recv(65536)
                buf = buf[n:]
                if b" /v2/health/" in head.split(b"\r\n")[0]:
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    continue
                s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n")
                return
        finally:
            s.close()

    def _run(self):
        self.ls.settimeout(0.2)
        while not self.stop:
            try:
                s, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def close(self):
        self.stop = True
        self.t.join(2)
        self.ls.close()


@suite.case
def head_and_invalid_chunk_in_one_read_gets_502_not_an_empty_reply():
    model = BrokenChunkModel()
    try:
        with h.Env("badchunk") as env:
            gw = env.gateway(model.url, {"routes": PASS_ROUTES})
            r = raw_status(gw.port, h.http_req("GET", "/anything"))
            h.check(r is not None, "the client got no response at all")
            h.check_error(r, 502, "bad_response", "head + invalid chunk size in one read")
    finally:
        model.close()


@suite.case
def transfer_codings_other_than_chunked_get_501():
    with h.Env("te501") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": PASS_ROUTES})
        # A coding other than chunked: 501; chunked twice is malformed: 400.
        for te, status, reason in (("gzip, chunked", 501, "not_implemented"),
                                   ("gzip", 501, "not_implemented"),
                                   ("chunked, chunked", 400, "bad_request"),
                                   ("identity", 501, "not_implemented")):
            r = raw_status(gw.port, b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: " +
                           te.encode() + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            h.check(r is not None, "TE %r: no response" % te)
            h.check_error(r, status, reason, "TE %r" % te)
        r = raw_status(gw.port, b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                                b"\r\n5\r\nhello\r\n0\r\n\r\n")
        h.check_eq(r.status, 404, "plain chunked still reaches the model")
        calls = [c for c in echo.calls() if c["path"] == "/x"]
        h.check_eq(len(calls), 1, "requests the model received")
        h.check_eq(calls[0]["body"], b"hello", "body the model received")


@suite.case
def transfer_encoding_on_http10_is_refused():
    with h.Env("te10") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": PASS_ROUTES})
        r = raw_status(gw.port, b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"5\r\nhello\r\n0\r\n\r\n")
        h.check_error(r, 400, "bad_request", "Transfer-Encoding on HTTP/1.0")
        h.check_eq(len(echo.calls()), 0, "requests the model received")


@suite.case
def http11_requests_need_exactly_one_host():
    with h.Env("host") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": PASS_ROUTES})
        r = raw_status(gw.port, b"GET /x HTTP/1.1\r\n\r\n")
        h.check_error(r, 400, "bad_request", "HTTP/1.1 without Host")
        r = raw_status(gw.port, b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        h.check_error(r, 400, "bad_request", "two Host headers")
        r = raw_status(gw.port, b"GET /x HTTP/1.0\r\n\r\n")
        h.check_eq(r.status, 404, "HTTP/1.0 without Host is fine")
        h.check_eq(len([c for c in echo.calls() if c["path"] == "/x"]), 1, "model calls")


@suite.case
def http2_request_line_and_fragments_are_refused():
    with h.Env("reqline") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": PASS_ROUTES})
        r = raw_status(gw.port, b"GET /x HTTP/2.0\r\nHost: t\r\n\r\n")
        h.check(r is not None, "HTTP/2.0 request line: no response")
        h.check_error(r, 505, "http_version_not_supported", "HTTP/2.0 request line")
        r = raw_status(gw.port, b"GET /x#frag HTTP/1.1\r\nHost: t\r\n\r\n")
        h.check_error(r, 400, "bad_request", "fragment in the target")
        h.check_eq(len(echo.calls()), 0, "requests the model received")


@suite.case
def an_unusable_request_id_is_replaced_for_the_model_too():
    # A client X-Request-Id over 200 bytes is not used: the client gets a new
    # id, and the model used to get the client's anyway.
    with h.Env("reqid") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": PASS_ROUTES})
        long_id = "L" * 300
        r = gw.data("POST", "/v1/models/m:predict", json.dumps({"instances": [1]}).encode(),
                    {"X-Request-Id": long_id})
        h.check_eq(r.status, 200, "status")
        given = r.headers.get("x-request-id", "")
        h.check(given and given != long_id, "client's id: %r" % given[:40])
        calls = echo.calls()
        h.check_eq(len(calls), 1, "model calls")
        ids = [v for k, v in calls[0]["header_list"] if k.lower() == "x-request-id"]
        h.check_eq(ids, [given], "X-Request-Id headers the model received")


if __name__ == "__main__":
    suite.run()
