"""Adversarial review of the request path: lifetimes across callbacks,
exactly one response per request, concurrency slots and gauges that return
to zero, drain and deadlines in awkward states.

Several cases freeze the model with SIGSTOP so that the gateway's upstream
pool has its only connection taken by a readiness probe the model never
answers: a call dispatched then waits in the pool for a connection. Whether
the probe is stuck is observed, not guessed: the model's socket holds unread
bytes (/proc/net/tcp rx_queue). The model is always continued (SIGCONT) in a
finally block so it can be stopped.

Cases named *_bug_* document a defect found in review; they fail until the
gateway is fixed (see the review report for the sequence and a fix).
"""

import json
import signal
import socket
import time

import harness as h

suite = h.Suite("review")

V1 = "/v1/models/iris:predict"
# Same length as V1, so a stale slice of V1's bytes reads this target.
V1_OTHER = "/v1/models/evil:predict"

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5], [5.9, 3.0, 5.1, 1.8]]


def v1_body(rows):
    return json.dumps({"instances": rows}).encode()


def v1_req(rows, headers=None, path=V1):
    hd = {"Content-Type": "application/json"}
    hd.update(headers or {})
    return h.http_req("POST", path, v1_body(rows), hd)


def batch_routes(max_size=2, max_delay_us=1000000, passthrough=True):
    r = [{"match": "/v1/models/{model}:predict", "protocol": "kserve-v1",
          "batch": {"max_size": max_size, "max_delay_us": max_delay_us}}]
    if passthrough:
        r.append({"match": "/*", "protocol": "passthrough"})
    return r


def autoscale(gw):
    r = gw.admin("GET", "/autoscale")
    h.check_eq(r.status, 200, "GET /autoscale status")
    return r.json()


def metrics(gw):
    """{sample name with labels: value} from GET /metrics."""
    r = gw.admin("GET", "/metrics")
    h.check_eq(r.status, 200, "GET /metrics status")
    out = {}
    for ln in r.body.decode().splitlines():
        if not ln or ln.startswith("#"):
            continue
        name, _, val = ln.rpartition(" ")
        out[name] = float(val)
    return out


def check_gauges_zero(gw, what):
    """Every queue_depth, inflight and upstream_inflight gauge returns to 0
    once nothing is in the gateway. Polled: the last response may still be
    on its way out when the client has read it."""
    def zero():
        m = metrics(gw)
        for g in ("infergate_queue_depth", "infergate_inflight_requests",
                  "infergate_upstream_inflight"):
            h.check(any(k == g or k.startswith(g + "{") for k in m),
                    "GET /metrics lacks the gauge %s" % g)
        bad = {k: v for k, v in m.items()
               if (k.startswith("infergate_queue_depth") or k.startswith("infergate_inflight_requests")
                   or k.startswith("infergate_upstream_inflight")) and v != 0}
        return not bad, bad
    last = None
    deadline = time.monotonic() + h.IO_TIMEOUT
    while time.monotonic() < deadline:
        ok, last = zero()
        if ok:
            return
        time.sleep(0.02)
    raise h.CaseFailure("%s: gauges did not return to 0: %r" % (what, last))


def model_socket_has_unread(port):
    """True if an established socket on the model's port holds bytes the
    model has not read (what a stopped model's pending request looks like)."""
    for f in h.tcp_rows():
        lport = int(f[1].rsplit(":", 1)[1], 16)
        rx = int(f[4].split(":")[1], 16)
        if lport == port and f[3] == "01" and rx > 0:
            return True
    return False


class Frozen:
    """The model stopped with SIGSTOP until the block ends (SIGCONT, also on
    failure), and the gateway's readiness probe stuck on it, holding the
    pool's only connection."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.model.send_signal(signal.SIGSTOP)
        h.check(h.wait_for(lambda: model_socket_has_unread(self.model.port)),
                "the gateway's probe never reached the stopped model")
        return self

    def thaw(self):
        self.model.send_signal(signal.SIGCONT)

    def __exit__(self, *exc):
        self.thaw()
        return False


def frozen_pool_gateway(env, routes):
    """A model, and a gateway with one concurrency slot and one upstream
    connection whose probe, once the model is frozen, waits 60 s."""
    model = env.model("--quiet")
    gw = env.gateway(model.url, {
        "upstream": {"max_concurrency": 1, "max_connections": 1, "connect_timeout_ms": 59000,
                     "probe_interval_ms": 50},
        "routes": routes})
    return model, gw


def direct_predictions(model, rows):
    r = h.request(model.port, "POST", V1, body=v1_body(rows),
                  headers={"Content-Type": "application/json"})
    h.check_eq(r.status, 200, "model's own answer status")
    return r.json()["predictions"]


# ---------------------------------------------------------------------------
# defects found in review


@suite.case
def bug_batch_call_target_read_from_first_member_after_it_left():
    """A batch call borrows its target (and Authorization) from its first
    member's request. When that member leaves before the call is written
    (here: its deadline passes while the call waits for an upstream
    connection, and its connection moves on to the next pipelined request),
    the call is written with the bytes of that other request: the batch for
    model `iris` is sent to `evil`, and the remaining member gets the model's
    404 for a model it never named."""
    with h.Env("review-target") as env:
        model, gw = frozen_pool_gateway(env, batch_routes(max_size=2))
        want = direct_predictions(model, [ROWS[1]])
        with Frozen(model) as fz:
            a = h.RawConn(gw.port)
            # First member: short deadline, then a pipelined request on the
            # same connection that the gateway answers at once (bad JSON).
            a.send(v1_req([ROWS[0]], {"X-Infergate-Timeout-Ms": "300"}) +
                   h.http_req("POST", V1_OTHER, b"{", {"Content-Type": "application/json"}))
            gw.wait_queue_depth(1)
            b = h.RawConn(gw.port)
            b.send(v1_req([ROWS[1]], {"X-Infergate-Timeout-Ms": "30000"}))
            # The group is full: the call takes the slot and waits for the
            # pool's connection. a's deadline passes meanwhile.
            r1 = a.read_response()
            h.check(r1 is not None and r1.status == 504, "first member: 504, got %r" % (r1,))
            r2 = a.read_response()
            h.check(r2 is not None and r2.status == 400, "pipelined bad request: 400, got %r" % (r2,))
            fz.thaw()
            rb = b.read_response()
        h.check(rb is not None, "second member got no response")
        h.check_eq(rb.status, 200, "second member's status (body %r)" % rb.body[:200])
        h.check_eq(rb.json().get("predictions"), want, "second member's predictions")
        check_gauges_zero(gw, "after the batch")
        a.close()
        b.close()


@suite.case
def bug_batch_call_target_used_after_first_member_connection_freed():
    """As above, but the first member's client disconnects: its connection
    (and the request buffer the call's target points into) is freed before
    the call is written. Under ASan this is a heap-use-after-free in
    upstream.c start_on_conn; without it the model gets whatever the freed
    memory holds."""
    with h.Env("review-uaf") as env:
        model, gw = frozen_pool_gateway(env, batch_routes(max_size=2))
        want = direct_predictions(model, [ROWS[1]])
        with Frozen(model) as fz:
            a = h.RawConn(gw.port)
            a.send(v1_req([ROWS[0]]))
            gw.wait_queue_depth(1)
            b = h.RawConn(gw.port)
            b.send(v1_req([ROWS[1]]))
            gw.wait_queue_depth_at_most(0)  # the batch call holds the slot
            a.close()
            h.check(h.wait_for(lambda: autoscale(gw)["inflight"] <= 1),
                    "the gateway never noticed the first member's client leaving")
            # Give the closed connection's memory to other allocations.
            for _ in range(20):
                c = h.RawConn(gw.port)
                c.send(h.http_req("GET", "/v2/health/live"))
                c.read_response()
                c.close()
            fz.thaw()
            rb = b.read_response()
        h.check(rb is not None, "second member got no response (gateway crashed?)")
        h.check_eq(rb.status, 200, "second member's status (body %r)" % rb.body[:200])
        h.check_eq(rb.json().get("predictions"), want, "second member's predictions")
        check_gauges_zero(gw, "after the batch")
        b.close()


@suite.case
def bug_inflight_gauge_decremented_by_parse_errors():
    """A request the parser rejects (400, 413, 431, 408) never reaches
    on_request, so infergate_inflight_requests is never incremented for it,
    but on_complete decrements it: every such error hides one request that
    is really in flight."""
    with h.Env("review-inflight") as env:
        model = env.model("--quiet", "--hang-after", "0")
        gw = env.gateway(model.url, {"routes": h.PASSTHROUGH_ONLY})
        hung = h.RawConn(gw.port)
        hung.send(v1_req([ROWS[0]]))
        model.wait_stat("inflight", lambda v: v >= 1, "1")
        h.check_eq(autoscale(gw)["inflight"], 1, "inflight with one request at the model")
        bad = h.RawConn(gw.port)
        bad.send(b"NOT AN HTTP REQUEST\r\n\r\n")
        r = bad.read_response()
        h.check(r is not None and r.status == 400, "malformed request: 400, got %r" % (r,))
        bad.close()
        h.check_eq(autoscale(gw)["inflight"], 1,
                   "/autoscale inflight after a 400 parse error (one request still at the model)")
        h.check_eq(metrics(gw).get("infergate_inflight_requests"), 1,
                   "infergate_inflight_requests after a 400 parse error")
        hung.close()
        check_gauges_zero(gw, "after the hung client left")


@suite.case
def bug_passthrough_deadline_ignored_while_waiting_for_upstream_connection():
    """dispatch() stops a request's deadline timer and relies on the upstream
    call's timeout, but that timer starts only once the call has a
    connection. A request waiting for one (pool full) outlives its
    X-Infergate-Timeout-Ms for as long as the wait lasts; a batch member in
    the same spot gets its 504 on time."""
    with h.Env("review-pooldl") as env:
        model, gw = frozen_pool_gateway(env, h.PASSTHROUGH_ONLY)
        with Frozen(model):
            c = h.RawConn(gw.port, timeout=10)
            c.send(v1_req([ROWS[0]], {"X-Infergate-Timeout-Ms": "300"}))
            try:
                r = c.read_response()
            except socket.timeout:
                r = None
            h.check(r is not None,
                    "no response within 10 s to a request with a 300 ms deadline while it "
                    "waited for an upstream connection")
            h.check_eq(r.status, 504, "status")
        c.close()
        check_gauges_zero(gw, "after the deadline")


# ---------------------------------------------------------------------------
# behaviour that holds (kept: users rely on it)


@suite.case
def pipelined_queued_request_client_closes_never_reaches_model():
    """The first of two pipelined requests waits in the queue; the client
    closes. Neither reaches the model, gauges return to 0, and the request
    holding the slot is unaffected."""
    with h.Env("review-pipeclose") as env:
        model = env.model("--quiet", "--hang-after", "0")
        gw = env.gateway(model.url, {"upstream": {"max_concurrency": 1},
                                     "routes": h.PASSTHROUGH_ONLY})
        holder = h.RawConn(gw.port)
        holder.send(v1_req([ROWS[0]]))
        model.wait_stat("inflight", lambda v: v >= 1, "1")
        model.reset_stats()
        c = h.RawConn(gw.port)
        c.send(v1_req([ROWS[1]]) + v1_req([ROWS[2]]))
        gw.wait_queue_depth(1)
        c.close()
        gw.wait_queue_depth_at_most(0)
        h.check_eq(autoscale(gw)["inflight"], 1, "inflight: only the holder remains")
        holder.close()
        check_gauges_zero(gw, "after both clients left")
        h.check_eq(model.stats()["calls"], 0, "calls the model completed after the reset")


@suite.case
def pipelined_batch_requests_on_one_connection_answered_in_order():
    """Requests pipelined on one connection join batches with other
    clients' requests; each gets its own rows' answer, in order."""
    with h.Env("review-pipebatch") as env:
        model = env.model("--quiet", "--cost-base-us", "20000")
        gw = env.gateway(model.url, {"upstream": {"max_concurrency": 1},
                                     "routes": batch_routes(max_size=4, max_delay_us=5000)})
        sets = [[ROWS[i % 4], ROWS[(i + 1) % 4]][: 1 + i % 2] for i in range(6)]
        want = [direct_predictions(model, s) for s in sets]
        model.reset_stats()

        def pipelined():
            c = h.RawConn(gw.port)
            c.send(b"".join(v1_req(s) for s in sets))
            got = [c.read_response() for _ in sets]
            c.close()
            return got

        def single(s):
            return lambda: h.request(gw.port, "POST", V1, body=v1_body(s),
                                     headers={"Content-Type": "application/json"})
        res = h.parallel([pipelined] + [single(s) for s in sets])
        for i, r in enumerate(res[0]):
            h.check(r is not None and r.status == 200, "pipelined #%d: %r" % (i, r))
            h.check_eq(r.json()["predictions"], want[i], "pipelined #%d predictions" % i)
        for i, r in enumerate(res[1:]):
            h.check_eq(r.status, 200, "single #%d status" % i)
            h.check_eq(r.json()["predictions"], want[i], "single #%d predictions" % i)
        h.check(any(int(k) > 1 for k in model.stats()["batch_sizes"]),
                "no call carried more than one row: nothing was batched")
        check_gauges_zero(gw, "after the pipelined batch")


@suite.case
def client_leaves_while_its_batch_is_at_the_model():
    """A member's client disconnects while its batch is at the model: the
    others get their answers, the call is made once, gauges return to 0."""
    with h.Env("review-leave") as env:
        model = env.model("--quiet", "--hang-after", "0")
        gw = env.gateway(model.url, {"upstream": {"max_concurrency": 1},
                                     "routes": batch_routes(max_size=3)})
        conns = []
        for i in range(3):
            c = h.RawConn(gw.port)
            c.send(v1_req([ROWS[i]]))
            conns.append(c)
            if i < 2:
                gw.wait_queue_depth(i + 1)
        model.wait_stat("inflight", lambda v: v >= 1, "1")
        conns[0].close()
        h.check(h.wait_for(lambda: autoscale(gw)["inflight"] == 2),
                "inflight never fell to 2 after one member left")
        h.check_eq(metrics(gw).get("infergate_upstream_inflight"), 1,
                   "the batch call still holds its slot")
        conns[1].close()
        conns[2].close()
        # Nobody waits for the answer: the call is abandoned and its slot freed.
        check_gauges_zero(gw, "after every member left")


@suite.case
def model_crash_mid_batch_fails_every_member_once():
    """The model exits while working on a batch: every member gets exactly
    one 502 upstream_unavailable and the slot is freed."""
    with h.Env("review-crash") as env:
        model = env.model("--quiet", "--crash-after", "0", "--cost-base-us", "100000")
        model.expected_exit = None
        gw = env.gateway(model.url, {"upstream": {"max_concurrency": 1},
                                     "routes": batch_routes(max_size=3)})
        conns = [h.RawConn(gw.port) for _ in range(3)]
        for i, c in enumerate(conns):
            c.send(v1_req([ROWS[i]]))
        for i, c in enumerate(conns):
            r = c.read_response()
            h.check(r is not None, "member %d got no response" % i)
            h.check_error(r, 502, "upstream_unavailable", "member %d" % i)
            h.check(not c.readable_now() or c.read_response() is None,
                    "member %d got a second response" % i)
            c.close()
        check_gauges_zero(gw, "after the crash")
        gw.expected_exit = None  # the model is gone: the drain may not be clean


@suite.case
def drain_while_batch_group_waits_for_max_delay():
    """A drain that starts while requests wait in a batch group for
    max_delay_us: they are sent when it passes, answered, and the gateway
    exits 0."""
    with h.Env("review-draindelay") as env:
        model = env.model("--quiet")
        gw = env.gateway(model.url, {"routes": batch_routes(max_size=8, max_delay_us=1500000),
                                     "drain": {"grace_ms": 0, "timeout_ms": 20000}})
        want = [direct_predictions(model, [r]) for r in ROWS[:2]]
        conns = []
        for i in range(2):
            c = h.RawConn(gw.port)
            c.send(v1_req([ROWS[i]]))
            conns.append(c)
        gw.wait_queue_depth(2)
        r = gw.admin("POST", "/admin/drain", body=b"")
        h.check_eq(r.status, 202, "POST /admin/drain status (%r)" % (r,))
        for i, c in enumerate(conns):
            resp = c.read_response()
            h.check(resp is not None and resp.status == 200, "member %d: %r" % (i, resp))
            h.check_eq(resp.json()["predictions"], want[i], "member %d predictions" % i)
            c.close()
        h.check_eq(gw.wait(h.IO_TIMEOUT), 0, "gateway exit code after a complete drain")
        h.check_eq(model.stats()["batch_sizes"].get("2"), 1, "one call of 2 rows")


@suite.case
def deadlines_around_slot_release_one_response_each():
    """Requests whose deadlines fall around the moment slots free (the
    model's cost is close to the deadlines) each get exactly one response,
    200 or 504, and the gauges return to 0."""
    with h.Env("review-dlstorm") as env:
        model = env.model("--quiet", "--cost-base-us", "40000", "--max-concurrency", "2")
        gw = env.gateway(model.url, {"upstream": {"max_concurrency": 2},
                                     "routes": batch_routes(max_size=3, max_delay_us=0)})

        def client(i):
            def run():
                c = h.RawConn(gw.port)
                n = 4
                hdrs = [{"X-Infergate-Timeout-Ms": str(20 + 15 * ((i + k) % 8))} for k in range(n)]
                c.send(b"".join(v1_req([ROWS[(i + k) % 4]], hdrs[k],
                                       path=V1 if (i + k) % 3 else "/v1/models/iris:predict?x=1")
                                for k in range(n)))
                got = [c.read_response() for _ in range(n)]
                extra = c.readable_now()
                c.close()
                return got, extra
            return run
        res = h.parallel([client(i) for i in range(12)])
        for i, (got, extra) in enumerate(res):
            h.check(not extra, "client %d: bytes after its last response" % i)
            for k, r in enumerate(got):
                h.check(r is not None, "client %d request %d: no response" % (i, k))
                allowed = {200: (None,), 503: ("deadline_unmeetable", "queue_full"),
                           504: ("deadline", "upstream_timeout")}
                h.check(r.status in allowed, "client %d request %d: %r" % (i, k, r))
                reason = None if r.status == 200 else r.json().get("reason")
                h.check(reason in allowed[r.status], "client %d request %d: %d with reason %r"
                        % (i, k, r.status, reason))
        check_gauges_zero(gw, "after the deadline storm")


if __name__ == "__main__":
    suite.run()
