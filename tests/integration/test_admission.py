"""Admission control end to end: the bounded queue, the concurrency limit
towards the model, per-request deadlines and clients that vanish while queued.

Routes are passthrough-only here so that one client request is exactly one
model call; the model's synthetic cost (--cost-base-us) makes calls slow
enough to pile up, and its /stats (calls, inflight, max_inflight) shows what
reached it. Ordering between requests is established by polling observable
state (model inflight, gateway queue depth), never by timing.
"""

import json

import harness as h

suite = h.Suite("admission")

V1_PATH = "/v1/models/iris:predict"
V1_BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
JSON_HDR = {"Content-Type": "application/json"}


def predict(gw, headers=None):
    hdrs = dict(JSON_HDR)
    hdrs.update(headers or {})
    return gw.data("POST", V1_PATH, body=V1_BODY, headers=hdrs, timeout=60)


def passthrough(extra=None):
    cfg = {"routes": h.PASSTHROUGH_ONLY}
    return h.deep_merge(cfg, extra or {})


@suite.case
def queue_full_503():
    with h.Env("queuefull") as env:
        model = env.model("--quiet", "--cost-base-us", "1000000", "--max-concurrency", "0")
        gw = env.gateway(model.url, passthrough({"upstream": {"max_concurrency": 1},
                                                 "limits": {"max_queue": 1}}))
        model.reset_stats()
        first = h.Background(lambda: predict(gw))
        model.wait_stat("inflight", lambda v: v == 1, "1")
        second = h.Background(lambda: predict(gw))
        gw.wait_queue_depth(1)
        third = predict(gw)
        h.check_error(third, 503, "queue_full", "third concurrent request")
        h.check(third.header("retry-after"), "no Retry-After on queue_full: %r" % third.headers)
        h.check_eq(first.result().status, 200, "first request (in flight)")
        h.check_eq(second.result().status, 200, "second request (queued)")
        h.check_eq(model.stats()["calls"], 2, "model calls (the rejected one must not be sent)")


@suite.case
def deadline_while_queued_504():
    with h.Env("deadline") as env:
        model = env.model("--quiet", "--cost-base-us", "1500000", "--max-concurrency", "0")
        gw = env.gateway(model.url, passthrough({"upstream": {"max_concurrency": 1}}))
        model.reset_stats()
        slow = h.Background(lambda: predict(gw))
        model.wait_stat("inflight", lambda v: v == 1, "1")
        r = predict(gw, {"X-Infergate-Timeout-Ms": "200"})
        h.check_error(r, 504, "deadline", "request with a 200 ms deadline queued behind a 1.5 s call")
        h.check_eq(slow.result().status, 200, "the slow request")
        h.check_eq(model.stats()["calls"], 1, "model calls (the expired one must not be sent)")


@suite.case
def deadline_unmeetable_503():
    with h.Env("unmeetable") as env:
        model = env.model("--quiet", "--cost-base-us", "300000", "--max-concurrency", "0")
        gw = env.gateway(model.url, passthrough({"upstream": {"max_concurrency": 1}}))
        # Let the gateway observe a few ~300 ms calls.
        for i in range(4):
            h.check_eq(predict(gw).status, 200, "warm-up call %d" % i)
        a = h.Background(lambda: predict(gw))
        model.wait_stat("inflight", lambda v: v == 1, "1")
        b = h.Background(lambda: predict(gw))
        gw.wait_queue_depth(1)
        r = predict(gw, {"X-Infergate-Timeout-Ms": "50"})
        h.check_error(r, 503, "deadline_unmeetable",
                      "50 ms deadline behind a ~300 ms call and a queued one")
        h.check(r.header("retry-after"), "no Retry-After on deadline_unmeetable: %r" % r.headers)
        h.check_eq(a.result().status, 200, "in-flight request")
        h.check_eq(b.result().status, 200, "queued request")


def concurrency_run(env, limit, n):
    model = env.model("--quiet", "--cost-base-us", "50000", "--max-concurrency", "0")
    gw = env.gateway(model.url, passthrough({"upstream": {"max_concurrency": limit}}))
    model.reset_stats()
    results = h.parallel([lambda: predict(gw) for _ in range(n)])
    bad = [r for r in results if r.status != 200]
    h.check(not bad, "%d of %d concurrent requests failed, first: %r" % (len(bad), n, bad[:1]))
    st = model.stats()
    h.check_eq(st["calls"], n, "model calls")
    return st


@suite.case
def concurrency_limit_3():
    with h.Env("conc3") as env:
        st = concurrency_run(env, 3, 60)
        h.check(st["max_inflight"] <= 3, "model saw %d calls at once with max_concurrency 3"
                % st["max_inflight"])
        h.check_eq(st["max_inflight"], 3, "model max_inflight (the limit was used)")


@suite.case
def concurrency_limit_1():
    with h.Env("conc1") as env:
        st = concurrency_run(env, 1, 20)
        h.check_eq(st["max_inflight"], 1, "model max_inflight with max_concurrency 1")


@suite.case
def client_vanishes_while_queued():
    with h.Env("vanish") as env:
        model = env.model("--quiet", "--cost-base-us", "1000000", "--max-concurrency", "0")
        gw = env.gateway(model.url, passthrough({"upstream": {"max_concurrency": 1}}))
        model.reset_stats()
        first = h.Background(lambda: predict(gw))
        model.wait_stat("inflight", lambda v: v == 1, "1")
        c = h.RawConn(gw.port)
        c.send(h.http_req("POST", V1_PATH, body=V1_BODY, headers=JSON_HDR))
        gw.wait_queue_depth(1)
        c.close()
        h.check_eq(first.result().status, 200, "the request holding the slot")
        # A later request goes through the same FIFO: once it is answered, a
        # vanished request still queued ahead of it would have been sent.
        h.check_eq(predict(gw).status, 200, "the request after the vanished one")
        st = model.stats()
        h.check_eq(st["calls"], 2, "model calls (first + last; the vanished one must not be sent)")


@suite.case
def client_leaves_while_its_call_runs():
    # The model cannot take back work it has started, so the slot of a call
    # whose client left stays taken until the model answers; otherwise the
    # next queued request would reach the model while it still works on the
    # abandoned one, and the model would see max_concurrency + 1 calls.
    with h.Env("orphan") as env:
        model = env.model("--quiet", "--cost-base-us", "600000", "--max-concurrency", "0")
        gw = env.gateway(model.url, passthrough({"upstream": {"max_concurrency": 1}}))
        model.reset_stats()
        c = h.RawConn(gw.port)
        c.send(h.http_req("POST", V1_PATH, body=V1_BODY, headers=JSON_HDR))
        model.wait_stat("inflight", lambda v: v == 1, "1")
        queued = h.Background(lambda: predict(gw))
        gw.wait_queue_depth(1)
        c.close()
        h.check_eq(queued.result().status, 200, "the request queued behind the abandoned call")
        st = model.stats()
        h.check_eq(st["calls"], 2, "model calls")
        h.check_eq(st["max_inflight"], 1,
                   "model max_inflight with max_concurrency 1 (the abandoned call still ran)")
        # The slot came back: the gateway is idle and serves the next one.
        h.check_eq(predict(gw).status, 200, "a request after both")
        j = gw.admin("GET", "/autoscale").json()
        h.check_eq((j.get("queue_depth"), j.get("inflight")), (0, 0), "queue depth, in flight")


if __name__ == "__main__":
    suite.run()
