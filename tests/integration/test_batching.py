"""Batching through the real gateway and model: KServe V1 and Open Inference
Protocol V2 requests sent concurrently are merged into bigger calls (the
model's /stats shows the batch sizes it received), every client gets exactly
the answer the model gives that request alone, malformed requests get their
own 400 without disturbing batch-mates, a 4xx from the model is isolated to
the offending request, a prediction-count mismatch fails the batch with 502,
and max_size bounds every call.
"""

import json
import random

import harness as h

suite = h.Suite("batching")

V1 = "/v1/models/iris:predict"
V2 = "/v2/models/iris/infer"

# Iris rows: sepal length, sepal width, petal length, petal width.
ROWS = [
    [5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [5.5, 2.3, 4.0, 1.3],
    [6.3, 3.3, 6.0, 2.5], [7.1, 3.0, 5.9, 2.1], [5.0, 3.6, 1.4, 0.2], [5.9, 3.0, 5.1, 1.8],
    [6.0, 2.2, 4.0, 1.0], [6.7, 3.1, 4.4, 1.4], [4.6, 3.1, 1.5, 0.2], [7.7, 2.6, 6.9, 2.3],
]


def routes(max_size=32, max_delay_us=20000, preferred=None):
    batch = {"max_size": max_size, "max_delay_us": max_delay_us}
    if preferred:
        batch["preferred_sizes"] = preferred
    return [
        {"match": "/v1/models/{model}:predict", "protocol": "kserve-v1", "batch": batch},
        {"match": "/v2/models/{model}/infer", "protocol": "oip-v2", "batch": dict(batch)},
        {"match": "/*", "protocol": "passthrough"},
    ]


def start(env, model_flags=(), max_concurrency=1, cost_us=30000, **route_kw):
    # A slow model with one instance: requests pile up behind the first call,
    # so the gateway has something to batch.
    model = env.model("--quiet", "--cost-base-us", str(cost_us), "--max-concurrency", "1",
                      *model_flags)
    gw = env.gateway(model.url, {"upstream": {"max_concurrency": max_concurrency},
                                 "routes": routes(**route_kw)})
    return model, gw


def v1_body(rows):
    return json.dumps({"instances": rows}).encode()


def v2_body(rows, rid=None):
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP32",
                        "data": [x for r in rows for x in r]}]}
    if rid is not None:
        body["id"] = rid
    return json.dumps(body).encode()


def post(port, path, body, headers=None):
    hd = {"Content-Type": "application/json"}
    hd.update(headers or {})
    return h.request(port, "POST", path, body=body, headers=hd)


def batch_sizes(model):
    """{rows: calls} the model received, minus calls of one row."""
    return {int(k): v for k, v in model.stats()["batch_sizes"].items()}


@suite.case
def v1_concurrent_requests_batched_and_answers_exact():
    with h.Env("batch-v1") as env:
        model, gw = start(env)
        rnd = random.Random(7)
        reqs = [[rnd.choice(ROWS) for _ in range(rnd.randint(1, 3))] for _ in range(48)]
        # The answer each request would get from the model alone.
        want = [post(model.port, V1, v1_body(r)).json()["predictions"] for r in reqs]
        model.reset_stats()
        got = h.parallel([lambda r=r: post(gw.port, V1, v1_body(r)) for r in reqs])
        for i, (r, w) in enumerate(zip(got, want)):
            h.check_eq(r.status, 200, "request %d status (body %r)" % (i, r.body[:200]))
            h.check_eq(r.json()["predictions"], w, "request %d predictions" % i)
            st = r.header("server-timing") or ""
            h.check("batch;desc=" in st, "request %d: no batch size in Server-Timing %r" % (i, st))
        stats = model.stats()
        sizes = batch_sizes(model)
        h.check_eq(stats["rows"], sum(len(r) for r in reqs), "rows the model received")
        h.check(stats["calls"] < len(reqs),
                "48 concurrent requests reached the model as %d calls: nothing was batched (%r)"
                % (stats["calls"], sizes))
        h.check(max(sizes) > 3, "no call carried more than one request's rows: %r" % sizes)
        h.check(stats["max_inflight"] <= 1, "max_concurrency 1 exceeded: %r" % stats)


@suite.case
def v2_concurrent_requests_batched_ids_and_tensors_exact():
    with h.Env("batch-v2") as env:
        model, gw = start(env)
        rnd = random.Random(11)
        reqs = [([rnd.choice(ROWS) for _ in range(rnd.randint(1, 3))], "req-%d" % i)
                for i in range(40)]
        want = [post(model.port, V2, v2_body(rows, rid)).json() for rows, rid in reqs]
        model.reset_stats()
        got = h.parallel([lambda a=a: post(gw.port, V2, v2_body(*a)) for a in reqs])
        for i, (r, w) in enumerate(zip(got, want)):
            h.check_eq(r.status, 200, "request %d status (body %r)" % (i, r.body[:200]))
            j = r.json()
            h.check_eq(j.get("id"), reqs[i][1], "request %d id" % i)
            h.check_eq(j.get("model_name"), "iris", "request %d model_name" % i)
            outs = {o["name"]: o for o in j["outputs"]}
            wouts = {o["name"]: o for o in w["outputs"]}
            h.check_eq(sorted(outs), sorted(wouts), "request %d output names" % i)
            for name in wouts:
                h.check_eq(outs[name]["shape"], wouts[name]["shape"], "request %d %s shape" % (i, name))
                h.check_eq(outs[name]["datatype"], wouts[name]["datatype"],
                           "request %d %s datatype" % (i, name))
                h.check_eq(outs[name]["data"], wouts[name]["data"], "request %d %s data" % (i, name))
        stats = model.stats()
        h.check(stats["calls"] < len(reqs), "nothing was batched: %d calls for %d requests"
                % (stats["calls"], len(reqs)))


@suite.case
def malformed_request_gets_400_alone():
    with h.Env("batch-bad") as env:
        model, gw = start(env)
        bodies = [v1_body([ROWS[i % len(ROWS)]]) for i in range(20)]
        bodies[5] = b'{"instances": [[5.1, 3.5, 1.4, 0.2]'          # invalid JSON
        bodies[9] = b'{"instances": []}'                             # no rows
        bodies[13] = b'{"predictions": [1]}'                         # no instances
        got = h.parallel([lambda b=b: post(gw.port, V1, b) for b in bodies])
        for i, r in enumerate(got):
            if i in (5, 9, 13):
                h.check_error(r, 400, "bad_request", "malformed request %d" % i)
            else:
                h.check_eq(r.status, 200, "good request %d beside malformed ones" % i)
                want = post(model.port, V1, bodies[i]).json()["predictions"]
                h.check_eq(r.json()["predictions"], want, "good request %d answer" % i)


@suite.case
def model_4xx_isolated_to_the_poisoned_request():
    with h.Env("batch-poison") as env:
        model, gw = start(env)
        bodies = [v1_body([ROWS[i % len(ROWS)]]) for i in range(16)]
        # Valid JSON the gateway cannot judge; the model rejects it (3 features).
        bodies[7] = v1_body([[5.1, 3.5, 1.4]])
        got = h.parallel([lambda b=b: post(gw.port, V1, b) for b in bodies])
        for i, r in enumerate(got):
            if i == 7:
                h.check_eq(r.status, 400, "the poisoned request (body %r)" % r.body[:200])
            else:
                h.check_eq(r.status, 200, "batch-mate %d of a poisoned request (body %r)"
                           % (i, r.body[:200]))
                want = post(model.port, V1, bodies[i]).json()["predictions"]
                h.check_eq(r.json()["predictions"], want, "batch-mate %d answer" % i)


@suite.case
def prediction_count_mismatch_fails_the_batch_with_502():
    with h.Env("batch-mismatch") as env:
        model, gw = start(env, model_flags=("--short-batch-answers",))
        got = h.parallel([lambda: post(gw.port, V1, v1_body([ROWS[0], ROWS[2]]))
                          for _ in range(12)])
        # Every request has 2 rows, so every call the model answers short.
        for i, r in enumerate(got):
            h.check_error(r, 502, "bad_response", "request %d of a short-answered batch" % i)
            h.check("prediction" in r.json()["error"],
                    "502 message should say the count is wrong: %r" % r.json()["error"])


@suite.case
def max_size_bounds_every_call():
    with h.Env("batch-max") as env:
        model, gw = start(env, max_size=4)
        got = h.parallel([lambda: post(gw.port, V1, v1_body([ROWS[1]])) for _ in range(30)])
        for i, r in enumerate(got):
            h.check_eq(r.status, 200, "request %d" % i)
        sizes = batch_sizes(model)
        h.check(max(sizes) <= 4, "a call exceeded batch.max_size 4: %r" % sizes)
        h.check(4 in sizes, "30 queued one-row requests never filled a batch of 4: %r" % sizes)


@suite.case
def request_bigger_than_max_size_goes_alone():
    with h.Env("batch-big") as env:
        model, gw = start(env, max_size=4)
        big = [ROWS[i % len(ROWS)] for i in range(9)]
        r = post(gw.port, V1, v1_body(big))
        h.check_eq(r.status, 200, "a 9-row request with max_size 4")
        h.check_eq(r.json()["predictions"], post(model.port, V1, v1_body(big)).json()["predictions"],
                   "its answer")


@suite.case
def different_parameters_never_share_a_call():
    with h.Env("batch-keys") as env:
        model, gw = start(env)
        a = json.dumps({"instances": [ROWS[0]], "parameters": {"threshold": 0.5}}).encode()
        b = json.dumps({"instances": [ROWS[4]], "parameters": {"threshold": 0.9}}).encode()
        got = h.parallel([lambda x=x: post(gw.port, V1, x) for x in [a, b] * 10])
        for i, r in enumerate(got):
            h.check_eq(r.status, 200, "request %d" % i)
        # Two keys, ten requests each: no call can hold more than ten rows,
        # and each answer is the one of its own rows.
        sizes = batch_sizes(model)
        h.check(max(sizes) <= 10, "requests with different parameters shared a call: %r" % sizes)
        for i, r in enumerate(got):
            want = [0] if i % 2 == 0 else [2]
            h.check_eq(r.json()["predictions"], want, "request %d answer" % i)


@suite.case
def client_leaving_while_queued_never_reaches_the_model():
    with h.Env("batch-leave") as env:
        model, gw = start(env)
        # A slow passthrough call holds the gateway's only slot, so the batch
        # requests behind it wait in the queue together.
        blocker = h.Background(lambda: gw.data("GET", "/slow?ms=1500"))
        h.check(h.wait_for(lambda: gw.queue_depth() is not None and
                           h.request(gw.admin_port, "GET", "/autoscale").json()["inflight"] >= 1),
                "the slow request never reached the gateway")
        leaver = h.RawConn(gw.port)
        body = v1_body([ROWS[3]])
        leaver.send(b"POST " + V1.encode() + b" HTTP/1.1\r\nHost: t\r\n"
                    b"Content-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body)
        gw.wait_queue_depth(1)
        stayers = [h.Background(lambda: post(gw.port, V1, v1_body([ROWS[5]]))) for _ in range(5)]
        gw.wait_queue_depth(6)
        leaver.close()
        gw.wait_queue_depth_at_most(5)
        h.check_eq(blocker.result().status, 200, "the slow request")
        for i, st in enumerate(stayers):
            r = st.result()
            h.check_eq(r.status, 200, "batch-mate %d of a client that left" % i)
            h.check_eq(r.json()["predictions"], [2], "batch-mate %d answer" % i)
        stats = model.stats()
        h.check_eq(stats["rows"], 5, "rows the model received (the leaver's must not be among them)")


@suite.case
def client_leaving_during_the_batch_call_does_not_hurt_batch_mates():
    with h.Env("batch-inflight-leave") as env:
        model, gw = start(env, cost_us=600000)
        blocker = h.Background(lambda: gw.data("GET", "/slow?ms=800"))
        h.check(h.wait_for(lambda: h.request(gw.admin_port, "GET", "/autoscale").json()
                           ["inflight"] >= 1), "the slow request never reached the gateway")
        leaver = h.RawConn(gw.port)
        body = v1_body([ROWS[3]])
        leaver.send(b"POST " + V1.encode() + b" HTTP/1.1\r\nHost: t\r\n"
                    b"Content-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body)
        gw.wait_queue_depth(1)
        stayers = [h.Background(lambda: post(gw.port, V1, v1_body([ROWS[5]]))) for _ in range(4)]
        gw.wait_queue_depth(5)
        h.check_eq(blocker.result().status, 200, "the slow request")
        # The batch of five is now with the model (600 ms): one client leaves.
        model.wait_stat("inflight", lambda v: v >= 1, ">= 1")
        leaver.close()
        for i, st in enumerate(stayers):
            r = st.result()
            h.check_eq(r.status, 200, "batch-mate %d of a client that left mid-call" % i)
            h.check_eq(r.json()["predictions"], [2], "batch-mate %d answer" % i)
        h.check_eq(model.stats()["rows"], 5, "the batch that was sent held all five rows")
        h.check_eq(gw.data("GET", "/v2/health/live").status, 200, "gateway alive afterwards")


@suite.case
def non_post_on_a_batching_route_goes_to_the_model_as_it_came():
    with h.Env("batch-get") as env:
        model, gw = start(env)
        direct = h.request(model.port, "GET", V1)
        via = gw.data("GET", V1)
        # Not parsed as an inference body (no gateway 400): the model's own answer.
        h.check_eq(via.status, direct.status, "GET on the V1 predict path")
        h.check(via.status != 400 or direct.status == 400,
                "the gateway rejected a GET it should have forwarded: %r" % via)
        h.check_eq(via.body, direct.body, "the model's answer, unchanged")


@suite.case
def abandoned_batch_keeps_its_slot():
    # Both members of a batch leave after it was sent: the model still works
    # on it, so the next request must not reach the model until it is done.
    with h.Env("batch-orphan") as env:
        model = env.model("--quiet", "--cost-base-us", "1500000", "--max-concurrency", "0")
        gw = env.gateway(model.url, {"upstream": {"max_concurrency": 1},
                                     "routes": routes(max_size=2, max_delay_us=5000000)})
        model.reset_stats()
        conns = []
        for row in ROWS[:2]:
            c = h.RawConn(gw.port)
            c.send(h.http_req("POST", V1, body=v1_body([row]),
                              headers={"Content-Type": "application/json"}))
            conns.append(c)
        model.wait_stat("inflight", lambda v: v == 1, "1 (the batch of 2)")
        for c in conns:
            c.close()
        h.check(h.wait_for(lambda: gw.admin("GET", "/autoscale").json().get("inflight") == 0),
                "the gateway did not notice the clients leaving")
        # Two rows: a full batch, which goes as soon as a slot is free.
        r = post(gw.port, V1, v1_body(ROWS[2:4]), {"X-Infergate-Timeout-Ms": "60000"})
        h.check_eq(r.status, 200, "the request after the abandoned batch")
        st = model.stats()
        h.check_eq(batch_sizes(model), {2: 2}, "calls the model received by rows")
        h.check_eq(st["max_inflight"], 1, "model max_inflight with max_concurrency 1")


if __name__ == "__main__":
    suite.run()
