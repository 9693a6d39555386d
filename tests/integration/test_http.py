"""HTTP/1.1 behaviour of the gateway's data port, end to end.

Malformed and smuggling-shaped requests (400 + close), header and body limits
(431, 413), X-Request-Id, Server-Timing, hop-by-hop stripping and
X-Forwarded-For, keep-alive and pipelining, chunked bodies both ways,
close-delimited upstream responses, IPv6, connection limits and the idle and
header timeouts. Each case starts its own infergate-model and infergate.
"""

import json
import re
import time

import harness as h

suite = h.Suite("http")


def start(env, overrides=None, **kw):
    model = env.model("--quiet")
    gw = env.gateway(model.url, overrides, **kw)
    return model, gw


def expect_400_and_close(gw, raw, what):
    c = h.RawConn(gw.port)
    try:
        c.send(raw)
        r = c.read_response()
        h.check(r is not None, "%s: connection closed without a response" % what)
        h.check_eq(r.status, 400, "%s: status" % what)
        h.check(c.wait_closed(), "%s: connection not closed after 400" % what)
    finally:
        c.close()


@suite.case
def malformed_request_line():
    with h.Env("badline") as env:
        _, gw = start(env)
        expect_400_and_close(gw, b"this is not http\r\n\r\n", "garbage request line")
        expect_400_and_close(gw, b"GET /echo HTTP/1.1 trailing\r\nHost: t\r\n\r\n",
                             "request line with extra token")


@suite.case
def malformed_header():
    with h.Env("badheader") as env:
        _, gw = start(env)
        bad = [
            (b"Bad Header: x", "space in header name"),
            (b"NoColon", "header without colon"),
            # RFC 9112 5.1: whitespace between a field name and the colon
            # must be rejected with 400 (a known request smuggling vector).
            (b"X-Foo : x", "whitespace before the colon"),
            (b"X-Foo: a\x01b", "control character in a value"),
        ]
        failures = []
        for line, what in bad:
            try:
                expect_400_and_close(
                    gw, b"GET /headers HTTP/1.1\r\nHost: t\r\n" + line + b"\r\n\r\n", what)
            except h.CaseFailure as e:
                failures.append(str(e))
        h.check(not failures, "; ".join(failures))


@suite.case
def smuggling_content_length_and_transfer_encoding():
    with h.Env("cl-te") as env:
        _, gw = start(env)
        expect_400_and_close(
            gw, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /headers HTTP/1.1\r\nHost: t\r\n\r\n",
            "Content-Length with Transfer-Encoding")


@suite.case
def smuggling_two_content_lengths():
    with h.Env("cl-cl") as env:
        _, gw = start(env)
        expect_400_and_close(
            gw, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n"
            b"\r\nhello!", "two different Content-Length")


@suite.case
def headers_too_large_431():
    with h.Env("431") as env:
        _, gw = start(env, {"limits": {"max_header_bytes": 1024}})
        c = h.RawConn(gw.port)
        try:
            c.send(h.http_req("GET", "/headers", headers={"X-Big": "a" * 4096}))
            r = c.read_response()
            h.check(r is not None, "no response to a 4 KB header")
            h.check_eq(r.status, 431, "status for a 4 KB header with max_header_bytes 1024")
            h.check(c.wait_closed(), "connection not closed after 431")
        finally:
            c.close()
        # A request under the limit still works on a new connection.
        r = gw.data("GET", "/headers", headers={"X-Small": "b" * 100})
        h.check_eq(r.status, 200, "status for a small header")


def rejected(gw):
    """{(route, reason): count} of infergate_rejected_total from GET /metrics."""
    r = gw.admin("GET", "/metrics")
    h.check_eq(r.status, 200, "GET /metrics status")
    out = {}
    for m in re.finditer(r'^infergate_rejected_total\{route="([^"]*)",reason="([^"]*)"\} (\S+)$',
                         r.body.decode(), re.M):
        out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


@suite.case
def server_and_admin_rejections_counted():
    # The server's own answers (431, 413) and the admin port's (404, 405) go
    # through the one rejection table, so each shows in
    # infergate_rejected_total with the reason its body names.
    with h.Env("rejcount") as env:
        _, gw = start(env, {"limits": {"max_header_bytes": 1024, "max_body_bytes": 1000}})
        before = rejected(gw)
        h.check_eq(before.get(("none", "headers_too_large"), 0), 0, "431s before any")
        for raw, status, reason in (
                (h.http_req("GET", "/headers", headers={"X-Big": "a" * 4096}), 431,
                 "headers_too_large"),
                (h.http_req("POST", "/echo", body=b"x" * 2000), 413, "body_too_large")):
            c = h.RawConn(gw.port)
            try:
                c.send(raw)
                r = c.read_response()
                h.check(r is not None, "no response (%s)" % reason)
                h.check_error(r, status, reason, reason)
            finally:
                c.close()
        r = gw.admin("GET", "/no-such-endpoint")
        h.check_error(r, 404, "not_found", "unknown admin path")
        r = gw.admin("DELETE", "/metrics")
        h.check_error(r, 405, "method_not_allowed", "DELETE /metrics")
        after = rejected(gw)
        for reason in ("headers_too_large", "body_too_large", "not_found", "method_not_allowed"):
            h.check_eq(after.get(("none", reason), 0), 1,
                       "infergate_rejected_total{route=\"none\",reason=\"%s\"}" % reason)


@suite.case
def body_too_large_413_content_length():
    with h.Env("413cl") as env:
        _, gw = start(env, {"limits": {"max_body_bytes": 1000}})
        c = h.RawConn(gw.port)
        try:
            c.send(h.http_req("POST", "/echo", body=b"x" * 2000))
            r = c.read_response()
            h.check(r is not None, "no response to a 2000-byte body")
            h.check_error(r, 413, "body_too_large", "2000-byte body with max_body_bytes 1000")
        finally:
            c.close()
        r = gw.data("POST", "/echo", body=b"y" * 900)
        h.check_eq(r.status, 200, "status for a 900-byte body")
        h.check_eq(r.body, b"y" * 900, "echoed 900-byte body")


@suite.case
def body_too_large_413_chunked():
    with h.Env("413chunked") as env:
        _, gw = start(env, {"limits": {"max_body_bytes": 1000}})
        path = env.write("big.bin", b"z" * 2000)
        p = h.curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Transfer-Encoding: chunked",
                    "--data-binary", "@" + path, "http://127.0.0.1:%d/echo" % gw.port])
        h.check_eq(p.stdout.decode().strip(), "413",
                   "status for a 2000-byte chunked body (curl stderr %r)" % p.stderr[:200])


@suite.case
def request_id_echoed_and_created():
    with h.Env("reqid") as env:
        _, gw = start(env)
        r = gw.data("POST", "/echo", body=b"a", headers={"X-Request-Id": "itest-abc-123"})
        h.check_eq(r.status, 200, "status")
        h.check_eq(r.header("x-request-id"), "itest-abc-123", "echoed X-Request-Id")
        ids = []
        for i in range(5):
            r = gw.data("POST", "/echo", body=b"a")
            h.check_eq(r.status, 200, "status")
            rid = r.header("x-request-id")
            h.check(rid, "no X-Request-Id created for request %d: %r" % (i, r.headers))
            ids.append(rid)
        h.check_eq(len(set(ids)), 5, "distinct created X-Request-Ids %r" % ids)
        # Error responses carry one too.
        r = gw.data("GET", "/nonexistent-path-404")
        h.check(r.header("x-request-id"), "no X-Request-Id on a %d response" % r.status)


@suite.case
def log_lines_stay_json_with_any_header_bytes():
    # A header may carry obs-text (bytes 0x80-0xff, RFC 9110 5.5), and the
    # X-Request-Id is logged: every log line must still be valid UTF-8 JSON.
    with h.Env("logjson") as env:
        _, gw = start(env)
        c = h.RawConn(gw.port)
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: id-\xff\xc3-\xe2\x82\xac\r\n"
               b"Content-Length: 1\r\n\r\na")
        r = c.read_response()
        h.check_eq(r.status, 200, "status")
        c.close()
        h.check(h.wait_for(lambda: b"id-" in open(gw.stderr_path, "rb").read()),
                "no access log line for the request")
        raw = open(gw.stderr_path, "rb").read()
        seen = False
        for line in raw.splitlines():
            try:
                obj = json.loads(line.decode("utf-8"))  # strict: invalid UTF-8 raises
            except (UnicodeDecodeError, ValueError) as e:
                raise h.CaseFailure("log line is not UTF-8 JSON (%s): %r" % (e, line))
            if obj.get("msg") == "access" and obj.get("request_id", "").startswith("id-"):
                h.check_eq(obj["request_id"], "id-\ufffd\ufffd-\u20ac", "logged request_id")
                seen = True
        h.check(seen, "the access log line was not found")


@suite.case
def server_timing_on_proxied_response():
    with h.Env("timing") as env:
        _, gw = start(env)
        r = gw.data("POST", "/echo", body=b"timing")
        h.check_eq(r.status, 200, "status")
        st = r.header("server-timing")
        h.check(st is not None, "no Server-Timing header: %r" % r.headers)
        h.check("queue;dur=" in st and "upstream;dur=" in st,
                "Server-Timing lacks queue;dur= / upstream;dur=: %r" % st)


@suite.case
def hop_by_hop_not_forwarded_and_xff_appended():
    with h.Env("hop") as env:
        _, gw = start(env)
        hdrs = {
            "Connection": "x-foo",
            "X-Foo": "must-not-pass",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade": "websocket",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-Forwarded-For": "1.2.3.4",
            "X-Keep-Me": "yes",
        }
        c = h.RawConn(gw.port)
        try:
            c.send(h.http_req("GET", "/headers", headers=hdrs))
            r = c.read_response()
        finally:
            c.close()
        h.check(r is not None and r.status == 200, "GET /headers through the gateway: %r" % r)
        seen = r.json()
        for name in ("x-foo", "keep-alive", "te", "upgrade", "proxy-authorization"):
            h.check(name not in seen, "hop-by-hop header %s reached the model: %r" % (name, seen))
        h.check("x-foo" not in seen.get("connection", "").lower(),
                "Connection: x-foo reached the model: %r" % seen.get("connection"))
        h.check_eq(seen.get("x-keep-me"), "yes", "end-to-end header X-Keep-Me at the model")
        h.check_eq(seen.get("x-forwarded-for"), "1.2.3.4, 127.0.0.1",
                   "X-Forwarded-For at the model")
        # Without a client X-Forwarded-For the gateway creates one.
        seen = gw.data("GET", "/headers").json()
        h.check_eq(seen.get("x-forwarded-for"), "127.0.0.1", "created X-Forwarded-For")


@suite.case
def keep_alive_100_requests():
    with h.Env("keepalive") as env:
        _, gw = start(env)
        c = h.RawConn(gw.port)
        try:
            for i in range(100):
                body = ("ka-%d" % i).encode()
                c.send(h.http_req("POST", "/echo", body=body))
                r = c.read_response()
                h.check(r is not None, "connection closed before response %d" % i)
                h.check_eq(r.status, 200, "status of request %d" % i)
                h.check_eq(r.body, body, "body of request %d" % i)
                h.check("close" not in (r.header("connection") or "").lower(),
                        "gateway asked to close the connection after request %d" % i)
        finally:
            c.close()


@suite.case
def pipelining_10_in_one_send():
    with h.Env("pipeline") as env:
        _, gw = start(env)
        c = h.RawConn(gw.port)
        try:
            bodies = [("pipelined body number %d" % i).encode() * (i + 1) for i in range(10)]
            c.send(b"".join(h.http_req("POST", "/echo", body=b) for b in bodies))
            for i, b in enumerate(bodies):
                r = c.read_response()
                h.check(r is not None, "connection closed before pipelined response %d" % i)
                h.check_eq(r.status, 200, "status of pipelined response %d" % i)
                h.check_eq(r.body, b, "body of pipelined response %d (order)" % i)
        finally:
            c.close()


@suite.case
def chunked_request_body_reaches_model():
    with h.Env("chunked-req") as env:
        _, gw = start(env)
        data = bytes((i * 7 + 3) % 251 for i in range(150000))
        path = env.write("body.bin", data)
        out = env.write("out.bin", b"")
        p = h.curl(["-o", out, "-w", "%{http_code}", "-H", "Transfer-Encoding: chunked",
                    "-H", "Content-Type: application/octet-stream",
                    "--data-binary", "@" + path, "http://127.0.0.1:%d/echo" % gw.port])
        h.check_eq(p.returncode, 0, "curl exit code (stderr %r)" % p.stderr[:300])
        h.check_eq(p.stdout.decode().strip(), "200", "status")
        with open(out, "rb") as f:
            got = f.read()
        h.check(got == data, "echoed chunked body differs: %d bytes sent, %d received"
                % (len(data), len(got)))


@suite.case
def chunked_response_streamed():
    with h.Env("stream") as env:
        _, gw = start(env)
        chunks, size = 6, 64
        c = h.RawConn(gw.port)
        try:
            c.send(h.http_req("GET", "/stream?chunks=%d&size=%d&interval_ms=200" % (chunks, size)))
            # Read until the first body byte has arrived.
            while b"\r\n\r\n" not in c.buf or len(c.buf) <= c.buf.index(b"\r\n\r\n") + 4:
                h.check(c._fill(), "connection closed before the first body byte")
            # Marker: when the first body bytes arrive, the model is still
            # producing the rest (one chunk per 200 ms), so what we hold must
            # be less than the whole body. A gateway that buffered the whole
            # response would deliver every byte together.
            head_len = c.buf.index(b"\r\n\r\n") + 4
            first_body = len(c.buf) - head_len
            h.check(first_body < chunks * size,
                    "%d body bytes arrived with the first read: not streamed" % first_body)
            h.check(b"\r\n0\r\n\r\n" not in c.buf,
                    "the terminating chunk arrived together with the first bytes: not streamed")
            r = c.read_response()
            h.check(r is not None, "no response")
            h.check_eq(r.status, 200, "status")
            h.check_eq(len(r.body), chunks * size, "streamed body length")
            h.check(set(r.body) <= set(range(97, 123)), "streamed body content %r" % r.body[:80])
            h.check(len(c.recv_log) >= 3,
                    "the %d chunks arrived in %d reads: not streamed" % (chunks, len(c.recv_log)))
        finally:
            c.close()


@suite.case
def close_delimited_upstream_response():
    with h.Env("closedelim") as env:
        _, gw = start(env)
        r = gw.data("GET", "/close-delimited?size=100000")
        h.check_eq(r.status, 200, "status")
        h.check_eq(len(r.body), 100000, "close-delimited body length through the gateway")
        h.check(set(r.body) <= set(range(97, 123)), "body bytes outside a..z")
        # And the gateway still works afterwards (its upstream connection was
        # consumed by the close).
        r = gw.data("POST", "/echo", body=b"after")
        h.check_eq((r.status, r.body), (200, b"after"), "request after close-delimited")


@suite.case
def ipv6_listener():
    if not h.ipv6_loopback_available():
        raise h.Skip("no IPv6 loopback (::1) on this machine")
    with h.Env("ipv6") as env:
        _, gw = start(env, host="::1")
        r = gw.data("POST", "/echo", body=b"over v6")
        h.check_eq((r.status, r.body), (200, b"over v6"), "echo over [::1]")
        seen = gw.data("GET", "/headers").json()
        h.check_eq(seen.get("x-forwarded-for"), "::1", "X-Forwarded-For for a v6 client")


@suite.case
def max_connections_sixth_closed():
    with h.Env("maxconn") as env:
        _, gw = start(env, {"limits": {"max_connections": 5}})
        conns = []
        try:
            for i in range(5):
                c = h.RawConn(gw.port)
                conns.append(c)
                c.send(h.http_req("POST", "/echo", body=b"c%d" % i))
                r = c.read_response()
                h.check(r is not None and r.status == 200, "connection %d: %r" % (i, r))
            sixth = h.RawConn(gw.port)
            conns.append(sixth)
            try:
                sixth.send(h.http_req("POST", "/echo", body=b"sixth"))
            except OSError:
                pass  # already closed by the gateway: what we want
            h.check(sixth.wait_closed(), "the 6th concurrent connection was not closed")
            h.check(b"sixth" not in sixth.buf and not sixth.buf.startswith(b"HTTP/1.1 200"),
                    "the 6th connection was served: %r" % sixth.buf[:200])
            # The first five still work.
            for i, c in enumerate(conns[:5]):
                c.send(h.http_req("POST", "/echo", body=b"again%d" % i))
                r = c.read_response()
                h.check(r is not None and r.status == 200, "connection %d after the 6th: %r"
                        % (i, r))
            # Closing one frees a slot for a new connection.
            conns[0].close()
            ok = False
            for _ in range(100):
                c = h.RawConn(gw.port)
                conns.append(c)
                try:
                    c.send(h.http_req("POST", "/echo", body=b"new"))
                    r = c.read_response()
                except (OSError, h.CaseFailure):
                    r = None
                if r is not None and r.status == 200:
                    ok = True
                    break
                c.close()
                time.sleep(0.05)
            h.check(ok, "no new connection served after one of the five closed")
        finally:
            for c in conns:
                c.close()


@suite.case
def idle_keep_alive_closed():
    with h.Env("idle") as env:
        _, gw = start(env, {"limits": {"idle_timeout_ms": 300}})
        c = h.RawConn(gw.port)
        try:
            c.send(h.http_req("POST", "/echo", body=b"once"))
            r = c.read_response()
            h.check(r is not None and r.status == 200, "first request: %r" % r)
            h.check(c.wait_closed(timeout=15),
                    "idle keep-alive connection not closed (idle_timeout_ms 300, waited 15 s)")
            h.check_eq(c.buf, b"", "bytes sent on an idle connection before closing")
        finally:
            c.close()


@suite.case
def header_timeout_408_or_close():
    with h.Env("hdrtimeout") as env:
        _, gw = start(env, {"limits": {"header_timeout_ms": 300}})
        c = h.RawConn(gw.port)
        try:
            c.send(b"GET /echo HT")
            h.check(c.wait_closed(timeout=15),
                    "half a request line: connection not closed (header_timeout_ms 300, waited 15 s)")
            h.check(c.buf == b"" or c.buf.startswith(b"HTTP/1.1 408"),
                    "expected 408 or a bare close, got %r" % c.buf[:200])
        finally:
            c.close()


@suite.case
def data_port_health_answered_by_gateway():
    with h.Env("health") as env:
        _, gw = start(env)
        h.check_eq(gw.data("GET", "/v2/health/live").status, 200, "/v2/health/live")
        h.check_eq(gw.data("GET", "/v2/health/ready").status, 200, "/v2/health/ready")
    with h.Env("health-down") as env:
        # Upstream not running: a forwarded probe would give 502; the gateway
        # answers itself: live 200, ready 503.
        gw = env.gateway("http://127.0.0.1:%d" % h.refused_port(), wait_ready=False)
        h.check_eq(gw.data("GET", "/v2/health/live").status, 200,
                   "/v2/health/live with the model down")
        h.check_eq(gw.data("GET", "/v2/health/ready").status, 503,
                   "/v2/health/ready with the model down")
        h.check_eq(gw.admin("GET", "/readyz").status, 503, "admin /readyz with the model down")
        h.check_eq(gw.admin("GET", "/healthz").status, 200, "admin /healthz with the model down")


@suite.case
def head_keeps_upstream_content_length():
    # Regression: a HEAD answer through the gateway said Content-Length: 0
    # instead of the length of the body the model would have sent.
    with h.Env("head") as env:
        model, gw = start(env)
        direct = h.request(model.port, "HEAD", "/v2/models/iris")
        via = gw.data("HEAD", "/v2/models/iris")
        h.check_eq(via.status, 200, "status")
        want = direct.header("content-length")
        h.check(want is not None and int(want) > 0, "model gave no length: %r" % direct.headers)
        h.check_eq(via.header("content-length"), want, "Content-Length of HEAD via the gateway")
        h.check_eq(via.body, b"", "HEAD body")


if __name__ == "__main__":
    suite.run()
