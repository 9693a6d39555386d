"""The request framing and smuggling matrix, against the recording echo model:
for every hostile way of framing a request, either the gateway refuses it
(4xx/5xx, connection closed, nothing reaches the model) or the model
receives exactly one request whose body is byte for byte what a strict
RFC 9112 reader would take, and never a second, smuggled one.

Each case sends one raw request (and, where it matters, a second request
hidden after it) on its own connection, then reads the echo model's record
of what it received.
"""

import harness as h

suite = h.Suite("framing")

ROUTES = [{"match": "/*", "protocol": "passthrough"}]
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"

# (name, raw request, expected): expected is the status of a refusal, or
# ("body", bytes) for a request the model must receive once with that body.
# Each is the gateway's one answer: where RFC 9112 allows a choice (obs-fold:
# refuse or replace with SP) the test pins the one the gateway makes.
CASES = [
    # Content-Length and Transfer-Encoding.
    ("cl_and_te", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("te_and_cl", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("two_different_cl", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     b"Content-Length: 6\r\n\r\nhello!", 400),
    ("cl_list", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
    ("cl_negative", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
    ("cl_plus", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello", 400),
    ("cl_hex", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello", 400),
    ("te_gzip_chunked", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n"
     b"\r\n5\r\nhello\r\n0\r\n\r\n", 501),
    ("te_chunked_twice", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te_obfuscated", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", 501),
    ("te_http10", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400),
    # Chunked bodies.
    ("chunked_ok", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", ("body", b"hello world")),
    ("chunk_extension", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5;name=value\r\nhello\r\n0\r\n\r\n", ("body", b"hello")),
    ("chunk_size_too_big", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk_size_garbage", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5x\r\nhello\r\n0\r\n\r\n", 400),
    # llhttp skips what follows a chunk's data up to its CRLF: the model gets
    # the chunk's five bytes, once, re-framed with Content-Length.
    ("chunk_no_crlf_after_data", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n5\r\nhelloXX0\r\n\r\n", ("body", b"hello")),
    ("chunk_size_bare_lf", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\nhello\r\n0\r\n\r\n" + SMUGGLED, 400),
    # Line endings and header syntax.
    ("bare_lf_in_headers", b"POST /echo HTTP/1.1\nHost: t\nContent-Length: 5\n\nhello", 400),
    ("bare_cr_in_header", b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400),
    # RFC 9112 5.2: a proxy rejects obs-fold or replaces it with SP.
    ("obs_fold", b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", ("body", b"")),
    ("space_before_colon", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello",
     400),
    ("nul_in_value", b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
    ("space_in_name", b"GET /echo HTTP/1.1\r\nHost: t\r\nX A: b\r\n\r\n", 400),
    # Request targets, methods and versions.
    ("absolute_form", b"GET http://evil.example/echo HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("connect", b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", 400),
    ("upgrade_h2c", b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
     b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", 400),
    ("h2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("http09", b"GET /echo\r\n\r\n", 505),
    ("no_host", b"GET /echo HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("fragment", b"GET /echo#f HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    # Expect.
    ("expect_100", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     b"Expect: 100-continue\r\n\r\nhello", ("body", b"hello")),
    # A clean request followed by a pipelined one is two requests, not one.
    ("pipelined_pair", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" +
     SMUGGLED, ("body", b"hello")),
]


def run_case(gw, echo, name, raw, expected):
    echo.reset()
    c = h.RawConn(gw.port)
    try:
        c.send(raw)
        r = c.read_response()
        # Whatever else the connection carries: at most the pipelined answer.
        extra = []
        if name == "pipelined_pair" or name == "expect_100":
            while r is not None and r.status == 100:
                r = c.read_response()
            if name == "pipelined_pair":
                extra.append(c.read_response())
    finally:
        c.close()
    h.check(r is not None, "%s: no response" % name)
    calls = echo.calls()
    if isinstance(expected, tuple):
        h.check_eq(expected[0], "body", "%s: expectation kind" % name)
        h.check_eq(r.status, 200, "%s: status (body %r)" % (name, r.body[:200]))
        mine = [k for k in calls if k["path"] == "/echo"]
        h.check_eq(len(mine), 1, "%s: requests the model received for /echo" % name)
        h.check_eq(mine[0]["body"], expected[1], "%s: body the model received" % name)
        if name == "obs_fold":
            got = [v for k, v in mine[0]["header_list"] if k.lower() == "x-a"]
            h.check_eq(got, ["a b"], "%s: the folded header as the model received it" % name)
        if name == "pipelined_pair":
            h.check(extra and extra[0] is not None and extra[0].status == 404,
                    "%s: the second request got %r" % (name, extra and extra[0]))
            h.check_eq(len([k for k in calls if k["path"] == "/smuggled"]), 1,
                       "%s: the second request reached the model once, as itself" % name)
        else:
            h.check_eq(len(calls), 1, "%s: requests the model received" % name)
        return
    h.check_eq(r.status, expected, "%s: status (body %r)" % (name, r.body[:200]))
    h.check_eq(calls, [], "%s: what the model received" % name)


@suite.case
def framing_matrix_refused_or_exact():
    with h.Env("framing") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": ROUTES})
        failures = []
        for name, raw, expected in CASES:
            try:
                run_case(gw, echo, name, raw, expected)
            except h.CaseFailure as e:
                failures.append(str(e))
        h.check(not failures, "\n  ".join(failures))


@suite.case
def slow_header_sender_gets_408():
    with h.Env("slowloris") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": ROUTES, "limits": {"header_timeout_ms": 300}})
        c = h.RawConn(gw.port)
        try:
            c.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n")
            r = c.read_response()  # never finishes its headers
            h.check(r is not None and r.status == 408, "slow headers: %r" % (r and r.status))
            h.check(c.wait_closed(), "connection left open after 408")
        finally:
            c.close()
        h.check_eq(echo.calls(), [], "what the model received")


@suite.case
def slow_body_sender_gets_408():
    with h.Env("slowbody") as env:
        echo = env.echo_model(delay_ms=0)
        gw = env.gateway(echo.url, {"routes": ROUTES, "limits": {"idle_timeout_ms": 300}})
        c = h.RawConn(gw.port)
        try:
            c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhel")
            r = c.read_response()  # never sends the rest
            h.check(r is not None and r.status == 408, "slow body: %r" % (r and r.status))
            h.check_eq(r.json().get("reason"), "body_timeout", "reason")
        finally:
            c.close()
        h.check_eq(echo.calls(), [], "what the model received")


if __name__ == "__main__":
    suite.run()
