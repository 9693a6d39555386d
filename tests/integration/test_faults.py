"""Fault injection (issue "Reliability and security", deliverable 2): the
real gateway in front of a model that misbehaves on command.

The model is tests/integration/echo_model.py, told what to do through
POST /_config (see its docstring): crash after reading a call (it stops
listening and drops every connection until SIGUSR1 brings it back on the
same port), hang, answer one byte at a time, answer garbage, send 100/103
interim responses first, promise more body than it sends, reset half-way
through the body, stall half-way through the body, or answer a batch with
the wrong number of rows.

Every fault case drives the gateway with one "round": K concurrent
requests on each batching route (kserve-v1 and oip-v2, batch.max_size K and
a 5 s max_delay_us, so the K requests merge into one call the moment the
Kth arrives) and a POST and a GET on a passthrough route, each on its own
connection with "Connection: close", read to EOF. For every request the
round asserts:

  - exactly one well-formed final response (status line, header syntax,
    framing complete, nothing after it, X-Request-Id, JSON error bodies with
    the documented reason), preceded only by well-formed 1xx interim
    responses; or, where the case says so, a head followed by a truncated
    body and the connection closed (a streamed passthrough answer whose
    model failed after the head had gone out);
  - the model received it at most once (POST), at most twice (GET: the
    gateway may retry an idempotent request once on a fresh connection),
    and exactly once when it was answered 200; the members of one batch
    arrived together in one call;
  - infergate_requests_total (admin /metrics), summed over codes, grew on
    each route by the number of requests sent there;
  - infergate_inflight_requests, infergate_queue_depth and
    infergate_upstream_inflight return to 0;
  - the gateway holds no more descriptors than before the round, apart
    from its pooled connections to the model (at most
    upstream.max_connections).

Then the fault is cleared and a clean round must get 200 everywhere with
every client's own rows. Readiness (/readyz) is checked where the docs
promise something: it follows the last probe of upstream.ready_path.

Cases named bug_* pin a gateway defect and fail until it is fixed.

Nothing asserts on durations; deadlines and timeouts only bound liveness,
except that a request with a 300 ms X-Infergate-Timeout-Ms is answered
before batch-mates whose deadline is the route's 2000 ms (an order, not a
threshold).
"""

import json
import re
import socket
import threading

import harness as h

suite = h.Suite("faults")

V1 = "/v1/models/m:predict"
V2 = "/v2/models/m/infer"
R_V1 = "/v1/models/{model}:predict"
R_V2 = "/v2/models/{model}/infer"
R_PT = "/*"
K = 3                 # requests per batch (batch.max_size)
MAX_CONNECTIONS = 8   # upstream.max_connections: the slack for pooled sockets
LIVENESS_QT = 15000   # a route deadline that only bounds a hung test


def routes(qt=LIVENESS_QT):
    b = {"max_size": K, "max_delay_us": 5000000}
    return [{"match": R_V1, "protocol": "kserve-v1", "batch": dict(b), "queue_timeout_ms": qt},
            {"match": R_V2, "protocol": "oip-v2", "batch": dict(b), "queue_timeout_ms": qt},
            {"match": R_PT, "protocol": "passthrough", "queue_timeout_ms": qt}]


def start(env, qt=LIVENESS_QT, concurrency=4):
    echo = env.echo_model(delay_ms=0)
    gw = env.gateway(echo.url, {
        "upstream": {"max_concurrency": concurrency, "max_connections": MAX_CONNECTIONS,
                     "connect_timeout_ms": 300, "timeout_ms": 20000},
        "routes": routes(qt)})
    return echo, gw


# ---------------------------------------------------------------------------
# requests that can be recognised at the model

_MARK = [910000000]
_MARK_LOCK = threading.Lock()


def next_marker():
    with _MARK_LOCK:
        _MARK[0] += 1
        return _MARK[0]


class Req:
    """One client request carrying a unique marker (a 9-digit number) that
    the model's recorded calls are searched for."""

    def __init__(self, kind, row=0, method="POST", headers=None):
        self.kind = kind
        self.method = method
        self.marker = m = next_marker()
        self.headers = {"Connection": "close"}
        self.headers.update(headers or {})
        if kind == "v1":
            self.route, self.path = R_V1, V1
            self.body = json.dumps({"instances": [[m, row]]}).encode()
            self.headers["Content-Type"] = "application/json"
        elif kind == "v2":
            self.route, self.path = R_V2, V2
            self.id = "req-%d" % m
            self.body = json.dumps({"id": self.id, "inputs": [
                {"name": "x", "datatype": "INT64", "shape": [1, 2], "data": [[m, row]]}]}).encode()
            self.headers["Content-Type"] = "application/json"
        elif method == "GET":
            self.route, self.path, self.body = R_PT, "/echo/get?m=%d" % m, b""
        else:
            self.route, self.path = R_PT, "/echo/post"
            self.body = b"payload %d row %d " % (m, row) + b"x" * 200
            self.headers["Content-Type"] = "application/octet-stream"
        self.row = row
        self._re = re.compile(rb"(?<![0-9])%d(?![0-9])" % m)

    def raw(self):
        return h.http_req(self.method, self.path, self.body, self.headers)

    def __repr__(self):
        return "%s %s #%d" % (self.method, self.path, self.marker)

    def seen_in(self, call):
        return bool(self._re.search(call["body"]) or self._re.search(call["path"].encode()))

    def answer_problem(self, o):
        """None if the 200 answer `o` is this request's own, else why not."""
        try:
            if self.kind == "v1":
                got = json.loads(o.body)["predictions"]
                return None if got == [[self.marker, self.row]] else "predictions %r" % (got,)
            if self.kind == "v2":
                j = json.loads(o.body)
                outs = j["outputs"]
                ok = (j.get("id") == self.id and len(outs) == 1 and outs[0]["name"] == "x" and
                      outs[0]["shape"] == [1, 2] and
                      flatten(outs[0]["data"]) == [self.marker, self.row])
                return None if ok else "answer %r" % (j,)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            return "unreadable answer %r (%s)" % (o.body[:200], e)
        want = self.body if self.method != "GET" else self.path.encode()
        return None if o.body == want else "body %r" % (o.body[:120],)


def flatten(v):
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(flatten(x))
        return out
    return [v]


# ---------------------------------------------------------------------------
# one exchange on its own connection, parsed strictly

STATUS_RE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [^\r\n]*\Z")
TOKEN_RE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


class Outcome:
    def __init__(self):
        self.interim = []     # statuses of 1xx responses before the final one
        self.status = None    # None: no response at all
        self.headers = {}     # lower name -> [values]
        self.body = b""
        self.complete = False
        self.extra = b""      # bytes after the final response
        self.problem = None   # why the bytes are not a well-formed response
        self.reset = False
        self.raw = b""
        self.seq = None       # completion order among the round's requests

    def header(self, name):
        v = self.headers.get(name)
        return v[0] if v else None

    def reason(self):
        try:
            return json.loads(self.body).get("reason")
        except (ValueError, AttributeError):
            return None

    def label(self):
        if self.problem:
            return "malformed (%s)" % self.problem
        if self.status is None:
            return "no response"
        s = str(self.status)
        if not self.complete:
            return s + " truncated"
        if self.status >= 400:
            s += " " + str(self.reason())
        if self.interim:
            s = "+".join(map(str, self.interim)) + "+" + s
        return s

    def __repr__(self):
        return "<%s raw=%r>" % (self.label(), self.raw[:300])


def parse_exchange(buf, reset):
    o = Outcome()
    o.raw, o.reset = buf, reset
    rest = buf
    while True:
        if not rest:
            return o
        i = rest.find(b"\r\n\r\n")
        if i < 0:
            o.problem = "unterminated head"
            return o
        head, rest = rest[:i], rest[i + 4:]
        lines = head.split(b"\r\n")
        m = STATUS_RE.match(lines[0])
        if not m:
            o.problem = "bad status line %r" % lines[0][:80]
            return o
        hdrs = {}
        for ln in lines[1:]:
            name, sep, value = ln.partition(b":")
            if not sep or not TOKEN_RE.match(name):
                o.problem = "bad header line %r" % ln[:80]
                return o
            hdrs.setdefault(name.decode().lower(), []).append(value.strip().decode("latin-1"))
        status = int(m.group(1))
        if status < 200:
            o.interim.append(status)
            continue
        break
    o.status, o.headers = status, hdrs
    cl = hdrs.get("content-length", [])
    te = ",".join(hdrs.get("transfer-encoding", [])).lower()
    if cl and te:
        o.problem = "both Content-Length and Transfer-Encoding"
    elif len(cl) > 1:
        o.problem = "%d Content-Length headers" % len(cl)
    elif te:
        if te.strip() != "chunked":
            o.problem = "Transfer-Encoding %r" % te
            return o
        body = b""
        while True:
            j = rest.find(b"\r\n")
            if j < 0:
                break
            try:
                n = int(rest[:j].split(b";")[0], 16)
            except ValueError:
                o.problem = "bad chunk size %r" % rest[:j][:40]
                return o
            if n == 0:
                k = rest.find(b"\r\n\r\n", j)  # the last chunk, no trailers expected
                if rest[j:j + 4] == b"\r\n\r\n":
                    o.complete, o.extra = True, rest[j + 4:]
                elif k >= 0:
                    o.complete, o.extra = True, rest[k + 4:]
                break
            if len(rest) < j + 2 + n + 2:
                body += rest[j + 2:j + 2 + n]
                break
            body += rest[j + 2:j + 2 + n]
            rest = rest[j + 2 + n + 2:]
        o.body = body
    elif cl:
        n = int(cl[0])
        o.body, o.extra = rest[:n], rest[n:]
        o.complete = len(rest) >= n
    elif status in (204, 304):
        o.complete, o.extra = True, rest
    else:
        o.body, o.complete = rest, True  # close-delimited
    return o


_SEQ = [0]


def exchange(port, data):
    """Sends `data` on a new connection and reads until EOF (the requests
    carry Connection: close). Returns an Outcome."""
    s = socket.create_connection(("127.0.0.1", port), timeout=h.IO_TIMEOUT)
    buf, reset = b"", False
    try:
        s.sendall(data)
        while True:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                reset = True
                break
            except socket.timeout:
                raise h.CaseFailure("no EOF within %d s after %r (got %r)"
                                    % (h.IO_TIMEOUT, data[:60], buf[:300]))
            if not d:
                break
            buf += d
    finally:
        s.close()
    o = parse_exchange(buf, reset)
    with _MARK_LOCK:
        _SEQ[0] += 1
        o.seq = _SEQ[0]
    return o


# expectations: "ok" (200, the request's own answer), ("err", status,
# {reasons}) or "truncated" (a 200 head, fewer body bytes than it announced,
# then the connection closed)
OK = "ok"
TRUNCATED = "truncated"


def err(status, *reasons):
    return ("err", status, frozenset(reasons))


UPSTREAM_502 = err(502, "bad_response", "upstream_unavailable")


def judge(req, o, allowed):
    """None when outcome `o` of `req` is one of `allowed`, else why not."""
    if o.problem:
        return "not a well-formed response: %s" % o.problem
    if o.status is None:
        return "no response at all"
    for s in o.interim:
        if not 100 <= s < 200 or s == 101:
            return "interim status %d" % s
    if not o.complete:
        if TRUNCATED in allowed and o.status == 200 and o.header("content-length") and \
                not o.extra and (o.body == b"" or req.body.startswith(o.body) or
                                 (req.method == "GET" and req.path.encode().startswith(o.body))):
            return None
        return "truncated %d response (%d body bytes; %r)" % (o.status, len(o.body), o.raw[:200])
    if o.extra:
        return "bytes after the response: %r" % o.extra[:100]
    if not o.header("x-request-id"):
        return "no X-Request-Id"
    if o.status == 200 and OK in allowed:
        return req.answer_problem(o)
    for a in allowed:
        if isinstance(a, tuple) and a[1] == o.status:
            try:
                j = json.loads(o.body)
            except ValueError:
                return "%d with a body that is not JSON: %r" % (o.status, o.body[:200])
            if not isinstance(j, dict) or not isinstance(j.get("error"), str) or not j["error"]:
                return "%d without a non-empty \"error\": %r" % (o.status, j)
            if j.get("reason") not in a[2]:
                return "%d reason %r, expected one of %s" % (o.status, j.get("reason"),
                                                              sorted(a[2]))
            return None
    return "got %s, expected %s" % (o.label(), allowed)


# ---------------------------------------------------------------------------
# gateway observations


def parse_labels(text):
    return dict((k, v.encode().decode("unicode_escape"))
                for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text))


def metrics(gw):
    """[(name, {labels}, value)] from GET /metrics."""
    r = gw.admin("GET", "/metrics")
    h.check_eq(r.status, 200, "GET /metrics status")
    out = []
    for ln in r.body.decode().splitlines():
        if not ln or ln.startswith("#"):
            continue
        head, _, val = ln.rpartition(" ")
        name, brace, labels = head.partition("{")
        out.append((name, parse_labels(labels) if brace else {}, float(val)))
    return out


def requests_by_route(ms):
    out = {}
    for name, lb, v in ms:
        if name == "infergate_requests_total":
            out[lb.get("route")] = out.get(lb.get("route"), 0) + v
    return out


def upstream_errors(ms):
    return {lb.get("reason"): v for name, lb, v in ms if name == "infergate_upstream_errors_total"}


GAUGES = ("infergate_inflight_requests", "infergate_queue_depth", "infergate_upstream_inflight")


def gauges(ms):
    """{(name, route): value} of the gauges; each must be exported (a gauge
    missing from /metrics would otherwise read as "back to 0")."""
    out = {(name, lb.get("route")): v for name, lb, v in ms if name in GAUGES}
    missing = [g for g in GAUGES if not any(k[0] == g for k in out)]
    h.check(not missing, "GET /metrics lacks the gauges %s" % missing)
    return out


def wait_gauges_zero(gw, what):
    last = {}

    def zero():
        last.clear()
        last.update({k: v for k, v in gauges(metrics(gw)).items() if v != 0})
        return not last
    h.check(h.wait_for(zero), "%s: gauges did not return to 0: %r" % (what, last))


def wait_counts(gw, before, sent, what):
    """infergate_requests_total grew on each route by what was sent there."""
    last = {}

    def grown():
        now = requests_by_route(metrics(gw))
        last.clear()
        last.update({r: now.get(r, 0) - before.get(r, 0) for r in set(now) | set(sent)})
        return all(last.get(r, 0) == n for r, n in sent.items()) and \
            all(v == 0 for r, v in last.items() if r not in sent)
    h.check(h.wait_for(grown, timeout=5),
            "%s: infergate_requests_total grew by %r per route, but %r requests were sent"
            % (what, {r: v for r, v in last.items() if v}, sent))


class FdBaseline:
    """The gateway's descriptors apart from its sockets to the model."""

    def __init__(self, gw, echo):
        self.gw, self.echo = gw, echo
        total, to_model = h.fd_census(gw.pid, echo.port)
        self.other = total - to_model

    def check(self, what):
        last = [None]

        def back():
            total, to_model = h.fd_census(self.gw.pid, self.echo.port)
            last[0] = (total, to_model)
            return total - to_model <= self.other and to_model <= MAX_CONNECTIONS
        h.check(h.wait_for(back),
                "%s: the gateway's descriptors grew: %d others before, now %d in all of which "
                "%d to the model (at most %d allowed)"
                % (what, self.other, last[0][0], last[0][1], MAX_CONNECTIONS))


def readyz(gw):
    return gw.admin("GET", "/readyz", timeout=5).status


# ---------------------------------------------------------------------------
# a round


def requests_for_round(v1=K, v2=K):
    reqs = [Req("v1", i) for i in range(v1)] + [Req("v2", i) for i in range(v2)]
    return reqs + [Req("pt", 0, "POST"), Req("pt", 0, "GET")]


def send_all(gw, reqs):
    return h.parallel([lambda r=r: exchange(gw.port, r.raw()) for r in reqs], timeout=60)


def verify_round(gw, echo, reqs, outcomes, expect, before, what, calls=None,
                 must_reach=True):
    """Everything the module docstring lists, for one round. `expect(req)`
    gives the allowed outcomes; `calls` are the model's recorded calls
    (read now unless given); `must_reach`: every POST reached the model;
    `before`: infergate_requests_total per route before the round, or None
    when the caller checked the counts itself."""
    seen = {}
    for r, o in zip(reqs, outcomes):
        key = "%s %s" % (r.kind, r.method)
        seen.setdefault(key, []).append(o.label())
    print("   %s: %s" % (what, "; ".join("%s: %s" % (k, ", ".join(v)) for k, v in seen.items())))
    bad = []
    for r, o in zip(reqs, outcomes):
        why = judge(r, o, expect(r))
        if why:
            bad.append("%r: %s" % (r, why))
    h.check(not bad, "%s: %d of %d requests answered wrongly:\n  %s\nall: %s"
            % (what, len(bad), len(reqs), "\n  ".join(bad),
               [(r.kind, o.label()) for r, o in zip(reqs, outcomes)]))
    if calls is None:
        calls = echo.calls()
    for r, o in zip(reqs, outcomes):
        n = sum(1 for c in calls if r.seen_in(c))
        limit = 2 if r.method == "GET" else 1
        h.check(n <= limit, "%s: the model received %r %d times" % (what, r, n))
        if o.status == 200 and o.complete or (must_reach and r.method == "POST"):
            h.check(n >= 1, "%s: %r (%s) never reached the model" % (what, r, o.label()))
    for kind in ("v1", "v2"):
        members = [r for r in reqs if r.kind == kind]
        holders = set(i for i, c in enumerate(calls) for r in members if r.seen_in(c))
        h.check(len(holders) <= 1,
                "%s: the %d %s requests reached the model in %d calls, not one batch"
                % (what, len(members), kind, len(holders)))
        if holders:
            c = calls[holders.pop()]
            h.check(all(r.seen_in(c) for r in members),
                    "%s: the %s batch call lacks some members: %r" % (what, kind, c["body"][:300]))
    if before is not None:
        wait_counts(gw, before, sent_per_route(reqs), what)
    wait_gauges_zero(gw, what)
    return calls


def sent_per_route(reqs):
    sent = {}
    for r in reqs:
        sent[r.route] = sent.get(r.route, 0) + 1
    return sent


def _ok_round(gw, echo, what):
    echo.reset()
    before = requests_by_route(metrics(gw))
    reqs = requests_for_round()
    outs = send_all(gw, reqs)
    verify_round(gw, echo, reqs, outs, lambda r: [OK], before, what)


def warm_up(gw, echo):
    """A clean round before the descriptor baseline is taken: it opens the
    gateway's pooled connections to the model."""
    _ok_round(gw, echo, "warm-up")


def clean_round(gw, echo, fds, what):
    """No fault: every request gets its own 200, and the gateway's
    descriptors are back to the baseline `fds`."""
    _ok_round(gw, echo, what)
    fds.check(what)


def fault_case(name, fault, expect, must_reach=True, clear=None):
    """A warm-up round, the round under `fault` (echo /_config keys),
    `clear` (default: the keys set back to false), a clean round."""
    with h.Env(name) as env:
        echo, gw = start(env)
        warm_up(gw, echo)
        fds = FdBaseline(gw, echo)
        echo.reset()
        before = requests_by_route(metrics(gw))
        echo.configure(**fault)
        reqs = requests_for_round()
        outs = send_all(gw, reqs)
        if clear:
            clear(echo)
        else:
            echo.configure(**{k: False for k in fault if k != "byte_delay_ms"})
        verify_round(gw, echo, reqs, outs, expect, before, "under %s" % name,
                     must_reach=must_reach)
        fds.check("after %s" % name)
        h.check_eq(readyz(gw), 200, "/readyz after %s" % name)
        clean_round(gw, echo, fds, "after %s cleared" % name)
        return reqs, outs


# ---------------------------------------------------------------------------
# cases: a misbehaving model


@suite.case
def model_crash_mid_batch_gets_502_readiness_follows_and_serving_resumes():
    """The model reads one call and goes down (listener closed, every
    connection dropped): every request of the round, batch members and
    passthrough alike, gets one 502 upstream_unavailable; while it is down
    /readyz turns 503 and new requests get 502 without reaching it; back
    up, /readyz turns 200 and a clean round gets 200 everywhere."""
    with h.Env("crash") as env:
        echo, gw = start(env)
        warm_up(gw, echo)
        fds = FdBaseline(gw, echo)
        echo.reset()
        before = requests_by_route(metrics(gw))
        echo.configure(crash_after_read=1)
        reqs = requests_for_round()
        outs = send_all(gw, reqs)
        wait_counts(gw, before, sent_per_route(reqs), "mid-batch crash")
        h.check(not echo.accepts(), "the model is still accepting connections after its crash")
        before2 = requests_by_route(metrics(gw))
        reqs2 = requests_for_round()
        outs2 = send_all(gw, reqs2)
        wait_counts(gw, before2, sent_per_route(reqs2), "model down")
        gw.wait_admin("/readyz", 503)
        h.check_eq(gw.data("GET", "/v2/health/ready", timeout=5).status, 503,
                   "data-port /v2/health/ready while the model is down")
        echo.revive()
        expect = lambda r: [err(502, "upstream_unavailable")]
        calls = echo.calls()
        verify_round(gw, echo, reqs, outs, expect, None, "mid-batch crash", calls=calls,
                     must_reach=False)
        h.check(len(calls) >= 1, "the model recorded no call before crashing")
        verify_round(gw, echo, reqs2, outs2, expect, None, "model down", calls=calls,
                     must_reach=False)
        h.check(not any(r.seen_in(c) for r in reqs2 for c in calls),
                "a request sent while the model was down reached it")
        gw.wait_admin("/readyz", 200)
        fds.check("after the crash")
        clean_round(gw, echo, fds, "after the model came back")


@suite.case
def hung_model_times_out_with_route_and_header_deadlines():
    """The model never answers. Each route has queue_timeout_ms 2000; on each
    route one request also sends X-Infergate-Timeout-Ms: 300 (the last
    member of each batch). Every request gets 504 upstream_timeout; the
    300 ms ones are answered before any of the others (each member of a
    batch gets its own deadline); /readyz stays 200 (the probe is
    answered); once the hang is cleared a clean round gets 200."""
    with h.Env("hang") as env:
        echo, gw = start(env, qt=2000)
        warm_up(gw, echo)
        fds = FdBaseline(gw, echo)
        echo.reset()
        before = requests_by_route(metrics(gw))
        echo.configure(hang=True)
        short = {"X-Infergate-Timeout-Ms": "300"}
        long_reqs = [Req("v1", i) for i in range(K - 1)] + [Req("v2", i) for i in range(K - 1)]
        long_reqs.append(Req("pt", 0, "POST"))
        short_reqs = [Req("v1", K - 1, headers=short), Req("v2", K - 1, headers=short),
                      Req("pt", 1, "POST", headers=short)]
        bg = [h.Background(lambda r=r: exchange(gw.port, r.raw())) for r in long_reqs]
        # The K-1 members of each batch wait for their last member.
        gw.wait_queue_depth(2 * (K - 1))
        h.check(h.wait_for(lambda: len(echo.calls()) >= 1),
                "the long passthrough request never reached the model")
        bg += [h.Background(lambda r=r: exchange(gw.port, r.raw())) for r in short_reqs]
        h.check(h.wait_for(lambda: len(echo.calls()) >= 4),
                "the batch calls never reached the model")
        h.check_eq(readyz(gw), 200, "/readyz while inference calls hang (the probe is answered)")
        outs = [b.result(timeout=40) for b in bg]
        echo.configure(hang=False)
        reqs = long_reqs + short_reqs
        verify_round(gw, echo, reqs, outs, lambda r: [err(504, "upstream_timeout")], before,
                     "hung model")
        last_short = max(o.seq for o in outs[len(long_reqs):])
        first_long = min(o.seq for o in outs[:len(long_reqs)])
        h.check(last_short < first_long,
                "a request with a 300 ms deadline was answered after one with the route's "
                "2000 ms deadline (completion order: long %r, short %r)"
                % ([o.seq for o in outs[:len(long_reqs)]], [o.seq for o in outs[len(long_reqs):]]))
        fds.check("after the hang")
        clean_round(gw, echo, fds, "after the hang cleared")


@suite.case
def hung_readiness_probe_turns_readyz_503_until_it_answers():
    """The model's readiness endpoint hangs: the probe times out
    (connect_timeout_ms + 1 s) and /readyz and the data port's
    /v2/health/ready turn 503; when it answers again both turn 200."""
    with h.Env("hangready") as env:
        echo, gw = start(env)
        fds = FdBaseline(gw, echo)
        echo.configure(hang_health=True)
        gw.wait_admin("/readyz", 503)
        h.check_eq(gw.data("GET", "/v2/health/ready", timeout=5).status, 503,
                   "data-port /v2/health/ready while the probe hangs")
        echo.configure(hang_health=False)
        gw.wait_admin("/readyz", 200)
        h.check_eq(gw.data("GET", "/v2/health/ready", timeout=5).status, 200,
                   "data-port /v2/health/ready after the probe answered")
        fds.check("after the hung probe")
        clean_round(gw, echo, fds, "after the probe answered")


@suite.case
def byte_by_byte_answers_arrive_whole():
    """Every answer (head and body) comes one byte per write: every client
    gets its own 200 answer, whole."""
    fault_case("bytewise", {"byte_by_byte": True, "byte_delay_ms": 1}, lambda r: [OK])


@suite.case
def interim_100_and_103_before_the_answer_are_not_the_answer():
    """"100 Continue" and "103 Early Hints" precede each answer: every client
    gets its own 200 (any 1xx it is shown must come before it and be
    well-formed)."""
    fault_case("interim", {"informational": True}, lambda r: [OK])


@suite.case
def garbage_instead_of_a_status_line_gets_502_bad_response():
    fault_case("garbage", {"malformed": True}, lambda r: [err(502, "bad_response")])


@suite.case
def content_length_beyond_the_body_then_close_gets_502_or_a_visible_truncation():
    """The model announces 16 bytes more than it sends, then closes. Batch
    members get 502 (the answer never completes); a passthrough client gets
    502, or, when the head was already on its way, a body shorter than its
    Content-Length and the connection closed: never a complete-looking
    response."""
    fault_case("shortbody", {"wrong_content_length": True},
               lambda r: [UPSTREAM_502] + ([TRUNCATED] if r.kind == "pt" else []))


@suite.case
def reset_half_way_through_the_body_gets_502_or_a_visible_truncation():
    fault_case("rstbody", {"reset_mid_body": True},
               lambda r: [UPSTREAM_502] + ([TRUNCATED] if r.kind == "pt" else []))


@suite.case
def wrong_row_count_fails_the_batch_with_502_bad_response():
    """V1: one prediction fewer than instances; V2: shape[0] one less. Every
    batch member gets 502 bad_response; passthrough is unaffected."""
    fault_case("wrongrows", {"wrong_rows": True},
               lambda r: [OK] if r.kind == "pt" else [err(502, "bad_response")])


@suite.case
def bug_upstream_errors_total_counts_batch_members_not_calls():
    """docs/metrics.md and the metric's HELP text: infergate_upstream_errors_total
    counts "Failed calls to the model". A round under `malformed` makes
    every call fail: one V1 batch call (K members), one V2 batch call (K
    members), two passthrough calls, so the counter must grow by 4. The
    gateway counts once per client request instead (ig_gateway_reject for
    every batch member), 2K + 2."""
    with h.Env("errcount") as env:
        echo, gw = start(env)
        warm_up(gw, echo)
        echo.reset()
        before = upstream_errors(metrics(gw))
        echo.configure(malformed=True)
        reqs = requests_for_round()
        outs = send_all(gw, reqs)
        echo.configure(malformed=False)
        for r, o in zip(reqs, outs):
            h.check(judge(r, o, [err(502, "bad_response")]) is None, "%r: %r" % (r, o))
        calls = echo.calls()
        h.check_eq(len(calls), 4, "calls the model received (two batches, two passthrough)")
        after = upstream_errors(metrics(gw))
        grown = after.get("bad_response", 0) - before.get("bad_response", 0)
        h.check(grown == len(calls),
                "infergate_upstream_errors_total{reason=\"bad_response\"} grew by %d for %d "
                "failed calls to the model (%d client requests): it counts batch members, "
                "not calls" % (grown, len(calls), len(reqs)))


# ---------------------------------------------------------------------------
# cases: clients that leave


def leave(conns):
    for c in conns:
        c.close()


@suite.case
def clients_that_leave_while_queued_never_reach_the_model():
    """One concurrency slot, held by a passthrough call the model keeps
    (hold). A full V1 batch and a passthrough request queue behind it; their
    clients close. The queue empties, the holder still gets its 200, the
    model never sees the queued requests, gauges return to 0, the counters
    count every request once, no descriptor leaks, and a clean round gets
    200."""
    with h.Env("leavequeued") as env:
        echo, gw = start(env, concurrency=1)
        warm_up(gw, echo)
        fds = FdBaseline(gw, echo)
        echo.reset()
        before = requests_by_route(metrics(gw))
        echo.configure(hold=1)
        holder = Req("pt", 0, "POST")
        hb = h.Background(lambda: exchange(gw.port, holder.raw()))
        h.check(h.wait_for(lambda: echo.state()["blocked"] == 1), "the holder never reached the model")
        queued = [Req("v1", i) for i in range(K)] + [Req("pt", 1, "POST")]
        conns = []
        for r in queued:
            c = h.RawConn(gw.port)
            c.send(r.raw())
            conns.append(c)
        gw.wait_queue_depth(len(queued))
        leave(conns)
        gw.wait_queue_depth_at_most(0)
        h.check(h.wait_for(lambda: h.request(gw.admin_port, "GET", "/autoscale").json()
                           ["inflight"] == 1),
                "inflight never fell to 1 (the holder) after the queued clients left")
        echo.release()
        o = hb.result()
        h.check(judge(holder, o, [OK]) is None, "holder: %r" % (o,))
        calls = echo.calls()
        h.check(not any(r.seen_in(c) for r in queued for c in calls),
                "a request whose client left while queued reached the model: %r"
                % [c["path"] for c in calls])
        h.check_eq(sum(1 for c in calls if holder.seen_in(c)), 1, "calls carrying the holder")
        wait_counts(gw, before, {R_PT: 2, R_V1: K}, "after the queued clients left")
        wait_gauges_zero(gw, "after the queued clients left")
        fds.check("after the queued clients left")
        clean_round(gw, echo, fds, "after the queued clients left")


@suite.case
def clients_that_leave_while_their_batch_is_at_the_model():
    """A V1 and a V2 batch are held at the model; the first member of each
    closes. On release the other members get their own rows, each batch was
    one call, gauges return to 0, counters count every request once."""
    with h.Env("leavebatch") as env:
        echo, gw = start(env)
        warm_up(gw, echo)
        fds = FdBaseline(gw, echo)
        echo.reset()
        before = requests_by_route(metrics(gw))
        echo.configure(hold=2)
        reqs = [Req("v1", i) for i in range(K)] + [Req("v2", i) for i in range(K)]
        conns = []
        for r in reqs:
            c = h.RawConn(gw.port)
            c.send(r.raw())
            conns.append(c)
        h.check(h.wait_for(lambda: echo.state()["blocked"] == 2),
                "the two batch calls never reached the model")
        leavers = [conns[0], conns[K]]
        leave(leavers)
        h.check(h.wait_for(lambda: h.request(gw.admin_port, "GET", "/autoscale").json()
                           ["inflight"] == 2 * K - 2),
                "inflight never fell by the two members that left")
        echo.release()
        stay = [(r, c) for r, c in zip(reqs, conns) if c not in leavers]
        for r, c in stay:
            c.s.settimeout(h.IO_TIMEOUT)
            buf = b""
            while True:
                d = c.s.recv(65536)
                if not d:
                    break
                buf += d
            o = parse_exchange(buf, False)
            why = judge(r, o, [OK])
            h.check(why is None, "%r (a batch-mate stayed): %s" % (r, why))
            c.close()
        calls = echo.calls()
        h.check_eq(len(calls), 2, "calls the model received")
        for r in reqs:
            h.check_eq(sum(1 for c in calls if r.seen_in(c)), 1, "calls carrying %r" % r)
        wait_counts(gw, before, {R_V1: K, R_V2: K}, "after members left their batches")
        wait_gauges_zero(gw, "after members left their batches")
        fds.check("after members left their batches")
        clean_round(gw, echo, fds, "after members left their batches")


@suite.case
def client_that_leaves_while_the_answer_streams():
    """A passthrough answer stops half-way (the model stalls after half the
    body); the client reads the head and what came, then closes. After the
    model finishes, the gateway serves on: gauges return to 0, the request
    reached the model once and was counted once, no descriptor leaks, and a
    clean round gets 200."""
    with h.Env("leavestream") as env:
        echo, gw = start(env)
        warm_up(gw, echo)
        fds = FdBaseline(gw, echo)
        echo.reset()
        before = requests_by_route(metrics(gw))
        echo.configure(stall_mid_body=1)
        r = Req("pt", 0, "POST")
        r.body = b"payload %d " % r.marker + b"y" * 200000
        c = h.RawConn(gw.port)
        c.send(r.raw())
        while b"\r\n\r\n" not in c.buf or len(c.buf.split(b"\r\n\r\n", 1)[1]) < 1000:
            h.check(c._fill(), "the connection closed before the answer started streaming")
        head = c.buf.split(b"\r\n\r\n", 1)[0]
        h.check(head.startswith(b"HTTP/1.1 200 "), "streamed head %r" % head[:100])
        h.check(h.wait_for(lambda: echo.state()["blocked"] == 1),
                "the model never stalled mid-body")
        c.close()
        h.check(h.wait_for(lambda: h.request(gw.admin_port, "GET", "/autoscale").json()
                           ["inflight"] == 0),
                "inflight never fell to 0 after the streaming client left")
        echo.release()
        calls = echo.calls()
        h.check_eq(sum(1 for x in calls if r.seen_in(x)), 1, "calls carrying the request")
        wait_counts(gw, before, {R_PT: 1}, "after the streaming client left")
        wait_gauges_zero(gw, "after the streaming client left")
        fds.check("after the streaming client left")
        clean_round(gw, echo, fds, "after the streaming client left")


if __name__ == "__main__":
    suite.run()
