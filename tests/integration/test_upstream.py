"""The gateway's side of the model: faults, readiness, connection reuse and
the inference routes.

Upstream faults are injected with infergate-model's flags (--crash-after,
--hang-after, /slow) or by pointing the gateway at a port nobody listens on.
Route answers are compared with what the model says when asked directly, so
no prediction is hard-coded beyond the two iris rows whose class is textbook.
"""

import json
import time

import harness as h

suite = h.Suite("upstream")

V1_PATH = "/v1/models/iris:predict"
V2_PATH = "/v2/models/iris/infer"
JSON_HDR = {"Content-Type": "application/json"}
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
ROWS = [SETOSA, VIRGINICA, [5.9, 3.0, 4.2, 1.5], [4.9, 3.0, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5],
        [5.7, 2.8, 4.1, 1.3]]


def v1(rows):
    return json.dumps({"instances": rows}).encode()


def v2(rows, rid=None):
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP32",
                        "data": [x for r in rows for x in r]}]}
    if rid is not None:
        body["id"] = rid
    return json.dumps(body).encode()


@suite.case
def upstream_refused_502():
    with h.Env("refused") as env:
        gw = env.gateway("http://127.0.0.1:%d" % h.refused_port(), wait_ready=False)
        r = gw.data("POST", V1_PATH, body=v1([SETOSA]), headers=JSON_HDR)
        h.check_error(r, 502, "upstream_unavailable", "POST with the model not running")
        r = gw.data("GET", "/headers")
        h.check_error(r, 502, "upstream_unavailable", "passthrough GET with the model not running")


@suite.case
def upstream_timeout_slow_504():
    with h.Env("timeout-slow") as env:
        model = env.model("--quiet")
        gw = env.gateway(model.url, {"upstream": {"timeout_ms": 300}})
        r = gw.data("GET", "/slow?ms=5000")
        h.check_error(r, 504, "upstream_timeout", "GET /slow?ms=5000 with upstream.timeout_ms 300")
        # The gateway recovers: a fast request still works.
        r = gw.data("POST", "/echo", body=b"fast")
        h.check_eq((r.status, r.body), (200, b"fast"), "request after an upstream timeout")


@suite.case
def upstream_timeout_hang_504():
    with h.Env("timeout-hang") as env:
        model = env.model("--quiet", "--hang-after", "0")
        gw = env.gateway(model.url, {"upstream": {"timeout_ms": 300},
                                     "routes": h.PASSTHROUGH_ONLY})
        r = gw.data("POST", V1_PATH, body=v1([SETOSA]), headers=JSON_HDR)
        h.check_error(r, 504, "upstream_timeout", "inference call to a model that hangs")


@suite.case
def model_crash_mid_request_502():
    with h.Env("crash") as env:
        model = env.model("--quiet", "--crash-after", "2")
        model.expected_exit = 3
        gw = env.gateway(model.url, {"routes": h.PASSTHROUGH_ONLY})
        for i in range(2):
            r = gw.data("POST", V1_PATH, body=v1([SETOSA]), headers=JSON_HDR)
            h.check_eq(r.status, 200, "call %d before the crash" % i)
        r = gw.data("POST", V1_PATH, body=v1([SETOSA]), headers=JSON_HDR)
        h.check_error(r, 502, "upstream_unavailable", "call in flight when the model crashed")
        h.check_eq(model.wait(10), 3, "model exit code after --crash-after")
        # With the model gone the gateway keeps answering (502, not silence).
        r = gw.data("POST", V1_PATH, body=v1([SETOSA]), headers=JSON_HDR)
        h.check_error(r, 502, "upstream_unavailable", "call after the model died")


@suite.case
def upstream_readiness_follows_model():
    with h.Env("notready") as env:
        model = env.model("--quiet", "--not-ready-ms", "4000")
        gw = env.gateway(model.url, {"upstream": {"probe_interval_ms": 50}}, wait_ready=False)
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = gw.admin("GET", "/readyz").status
            if not seen or seen[-1] != s:
                seen.append(s)
            if s == 200:
                break
            time.sleep(0.02)
        h.check_eq(seen, [503, 200], "sequence of /readyz statuses while the model warms up")
        h.check_eq(gw.data("GET", "/v2/health/ready").status, 200,
                   "data port /v2/health/ready once the model is ready")


@suite.case
def upstream_connection_reuse():
    with h.Env("reuse") as env:
        model = env.model("--quiet")
        # Slow probes, so that the probe's own connections do not blur the count.
        gw = env.gateway(model.url, {"upstream": {"probe_interval_ms": 60000}})
        before = h.tcp_peer_ports(model.port)
        h.check(before is not None, "/proc/net/tcp is not readable: cannot count connections")
        for i in range(50):
            r = gw.data("POST", "/echo", body=b"r%d" % i)
            h.check_eq((r.status, r.body), (200, b"r%d" % i), "request %d" % i)
        opened = h.tcp_peer_ports(model.port) - before
        h.check(len(opened) <= 3, "50 sequential requests opened %d upstream connections"
                % len(opened))


@suite.case
def route_v1_predict():
    with h.Env("v1") as env:
        model = env.model("--quiet")
        gw = env.gateway(model.url)
        r = gw.data("POST", V1_PATH, body=v1([SETOSA, VIRGINICA]), headers=JSON_HDR)
        h.check_eq(r.status, 200, "V1 predict status (body %r)" % r.body[:200])
        h.check_eq(r.json().get("predictions"), [0, 2], "V1 predictions for setosa, virginica")
        h.check(r.header("x-request-id"), "no X-Request-Id on a V1 answer")
        st = r.header("server-timing") or ""
        h.check("queue;dur=" in st and "upstream;dur=" in st, "Server-Timing %r" % st)


@suite.case
def route_v2_infer():
    with h.Env("v2") as env:
        model = env.model("--quiet")
        gw = env.gateway(model.url)
        r = gw.data("POST", V2_PATH, body=v2([SETOSA, VIRGINICA], rid="req-7"), headers=JSON_HDR)
        h.check_eq(r.status, 200, "V2 infer status (body %r)" % r.body[:200])
        j = r.json()
        h.check_eq(j.get("id"), "req-7", "V2 id echoed")
        outs = {o["name"]: o for o in j.get("outputs", [])}
        h.check("label" in outs, "no label output: %r" % j)
        h.check_eq(outs["label"]["data"], [0, 2], "V2 labels for setosa, virginica")
        h.check_eq(outs["label"]["shape"], [2], "V2 label shape")
        h.check("probabilities" in outs, "no probabilities output: %r" % j)
        h.check_eq(outs["probabilities"]["shape"], [2, 3], "V2 probabilities shape")
        h.check_eq(len(outs["probabilities"]["data"]), 6, "V2 probabilities length")


@suite.case
def route_bad_json_400_on_batch_route():
    with h.Env("badjson") as env:
        model = env.model("--quiet")
        gw = env.gateway(model.url)
        r = gw.data("POST", V1_PATH, body=b"{not json", headers=JSON_HDR)
        h.check_error(r, 400, "bad_request", "invalid JSON on the V1 route")
        r = gw.data("POST", V2_PATH, body=b'{"inputs": [{"name": "x", "shape": [2, 4], '
                    b'"datatype": "FP32", "data": [1, 2, 3]}]}', headers=JSON_HDR)
        h.check(r.status == 400, "V2 shape/data mismatch: expected 400, got %d %r"
                % (r.status, r.body[:200]))


@suite.case
def routes_concurrent_answers_match_model():
    """Concurrent V1 and V2 requests with different rows each get their own
    answer (whether or not the gateway batches them)."""
    with h.Env("concurrent-routes") as env:
        model = env.model("--quiet", "--cost-base-us", "20000", "--max-concurrency", "0")
        gw = env.gateway(model.url, {"upstream": {"max_concurrency": 2}})
        reqs = []
        for i in range(24):
            rows = [ROWS[(i + k) % len(ROWS)] for k in range(1 + i % 3)]
            reqs.append((i % 2 == 0, rows, "id-%d" % i))
        # What the model says directly, request by request.
        want = []
        for is_v1, rows, rid in reqs:
            if is_v1:
                r = h.request(model.port, "POST", V1_PATH, body=v1(rows), headers=JSON_HDR)
                want.append(r.json()["predictions"])
            else:
                r = h.request(model.port, "POST", V2_PATH, body=v2(rows, rid), headers=JSON_HDR)
                want.append([o for o in r.json()["outputs"] if o["name"] == "label"][0]["data"])

        def call(is_v1, rows, rid):
            if is_v1:
                r = gw.data("POST", V1_PATH, body=v1(rows), headers=JSON_HDR, timeout=60)
                h.check_eq(r.status, 200, "V1 status %r" % r.body[:200])
                return r.json()["predictions"]
            r = gw.data("POST", V2_PATH, body=v2(rows, rid), headers=JSON_HDR, timeout=60)
            h.check_eq(r.status, 200, "V2 status %r" % r.body[:200])
            j = r.json()
            h.check_eq(j.get("id"), rid, "V2 id")
            return [o for o in j["outputs"] if o["name"] == "label"][0]["data"]

        got = h.parallel([(lambda a=a: call(*a)) for a in reqs])
        for i, (g, w) in enumerate(zip(got, want)):
            h.check_eq(g, w, "answer to request %d (%d rows)" % (i, len(reqs[i][1])))


if __name__ == "__main__":
    suite.run()
