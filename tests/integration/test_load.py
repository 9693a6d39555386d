"""Sustained load through the gateway with wrk.

wrk drives keep-alive connections for a fixed few seconds (a bound on the
test's length, not a measurement). The checks are about correctness under
load: no socket errors, no non-2xx answer when the limits are not exceeded,
the concurrency limit holds at the model, and the gateway is still healthy
afterwards. Throughput numbers belong to infergate-bench, not here.
"""

import json
import re
import shutil
import subprocess

import harness as h

suite = h.Suite("load")

V1_BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]})


def run_wrk(env, url, connections, seconds, lua=None):
    # wrk is a test dependency (scripts/install-deps): missing, the case fails.
    h.check(shutil.which("wrk") is not None, "wrk is not installed (apt-get install wrk)")
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", "%ds" % seconds, "--timeout", "10s"]
    if lua:
        args += ["-s", env.write("script.lua", lua)]
    p = subprocess.run(args + [url], capture_output=True, timeout=seconds + 60)
    out = p.stdout.decode("utf-8", "replace")
    h.check_eq(p.returncode, 0, "wrk exit code (stderr %r)" % p.stderr[:300])
    m = re.search(r"(\d+) requests in", out)
    h.check(m is not None, "wrk output has no request count:\n%s" % out)
    h.check(int(m.group(1)) > 0, "wrk completed no request:\n%s" % out)
    h.check("Socket errors" not in out, "wrk saw socket errors:\n%s" % out)
    h.check("Non-2xx" not in out, "wrk saw non-2xx answers:\n%s" % out)
    return int(m.group(1)), out


@suite.case
def wrk_inference_under_concurrency_limit():
    with h.Env("wrk-infer") as env:
        model = env.model("--quiet", "--cost-base-us", "500", "--max-concurrency", "0")
        gw = env.gateway(model.url, {"routes": h.PASSTHROUGH_ONLY,
                                     "upstream": {"max_concurrency": 4},
                                     "log": {"level": "info", "access_log": False}})
        model.reset_stats()
        lua = ('wrk.method = "POST"\n'
               'wrk.body = \'%s\'\n'
               'wrk.headers["Content-Type"] = "application/json"\n' % V1_BODY)
        n, out = run_wrk(env, "http://127.0.0.1:%d/v1/models/iris:predict" % gw.port, 32, 3, lua)
        st = model.stats()
        h.check(st["max_inflight"] <= 4, "model saw %d calls at once with max_concurrency 4"
                % st["max_inflight"])
        h.check(st["calls"] >= n, "model saw %d calls for %d answered requests" % (st["calls"], n))
        h.check_eq(gw.admin("GET", "/healthz").status, 200, "/healthz after the load")
        h.check_eq(gw.admin("GET", "/readyz").status, 200, "/readyz after the load")
        r = gw.admin("GET", "/autoscale")
        h.check_eq(r.status, 200, "GET /autoscale after the load (body %r)" % r.body[:200])
        j = r.json()
        h.check_eq(j.get("queue_depth"), 0, "queue depth after the load")
        h.check_eq(j.get("inflight"), 0, "in-flight after the load")


@suite.case
def wrk_passthrough_echo():
    with h.Env("wrk-echo") as env:
        model = env.model("--quiet", "--max-concurrency", "0")
        gw = env.gateway(model.url, {"log": {"level": "info", "access_log": False}})
        lua = 'wrk.method = "POST"\nwrk.body = string.rep("x", 2048)\n'
        run_wrk(env, "http://127.0.0.1:%d/echo" % gw.port, 64, 3, lua)
        r = gw.data("POST", "/echo", body=b"still here")
        h.check_eq((r.status, r.body), (200, b"still here"), "echo after the load")


if __name__ == "__main__":
    suite.run()
