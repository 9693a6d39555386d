#!/usr/bin/python3
"""Integration smoke test of infergate-bench: runs the real binary against the real model,
gateway, nginx and HAProxy on loopback and checks the shape of its output and that the
request counts add up.

Usage: /usr/bin/python3 bench/bench/test_bench.py --bench B --gateway G --model M [-k NAME]

Nothing here asserts on throughput or latency values: a slow machine makes the run slower,
never red. What is checked is bookkeeping: every request sent ends as exactly one response or
one error, the model counted as many calls as the bench saw answers, ratios are computed from
the reported rates, peers that are not installed are skipped with a note, bad flags exit 2
naming the flag, and every process the bench started is gone when it exits (also after
SIGINT). Child processes of this script are killed by pid even on failure. Prints one line per
case and ends with "N passed, N failed".
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

ARGS = None
RUN_TIMEOUT = 120  # bounds a hung bench; never an expectation about speed
STARTED_RE = re.compile(r"started (\S+(?: -V)?) \(pid (\d+)\)")


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---------------------------------------------------------------------------
# processes


class Model:
    """An infergate-model of our own, for `load` cases (killed by pid)."""

    def __init__(self, *flags):
        self.dir = tempfile.mkdtemp(prefix="ig-bench-test-")
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "model.log"), "wb")
        self.proc = subprocess.Popen(
            [ARGS.model, "--listen", "127.0.0.1:0", "--port-file", port_file, "--quiet", *flags],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        self.port = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    self.port = int(f.read())
                break
            time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise Failure("infergate-model did not start")

    def stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            c.request("GET", "/stats")
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def bench(*args, timeout=RUN_TIMEOUT):
    """Runs infergate-bench to completion; returns (exit code, stdout, stderr)."""
    p = subprocess.Popen([ARGS.bench, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=bench_env())
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise Failure("infergate-bench %s did not finish within %d s; stderr:\n%s"
                      % (" ".join(args), timeout, err.decode(errors="replace")[-2000:]))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def bench_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("INFERGATE_")}


def bench_json(*args):
    rc, out, err = bench(*args)
    check(rc == 0, "infergate-bench %s exited %d; stderr:\n%s" % (" ".join(args), rc, err[-3000:]))
    try:
        return json.loads(out), err
    except ValueError:
        raise Failure("stdout is not JSON:\n%s" % out[:2000])


def pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # Still there: a zombie waiting for its reaper counts as gone.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def check_children_gone(stderr):
    for bad in ("exited abnormally", "was killed"):
        check(bad not in stderr, "a child did not stop cleanly:\n%s" % stderr[-3000:])
    pids = [(name, int(pid)) for name, pid in STARTED_RE.findall(stderr)]
    check(pids, "stderr names no started process:\n%s" % stderr[-2000:])
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [(n, p) for n, p in alive if not pid_gone(p)]
        if alive:
            time.sleep(0.05)
    for name, pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    check(not alive, "still running after infergate-bench exited: %s" % alive)
    return pids


def check_load_shape(r, what):
    for key in ("method", "mode", "connections", "requests", "responses", "status", "errors",
                "errors_total", "duration_s", "rps", "latency_ms", "interrupted"):
        check(key in r, "%s: key %r missing in %s" % (what, key, sorted(r)))
    for key in ("connect", "reset", "timeout", "protocol", "backlog", "canceled"):
        check(isinstance(r["errors"].get(key), int), "%s: errors.%s missing" % (what, key))
    check(r["errors_total"] == sum(r["errors"].values()),
          "%s: errors_total %d != sum of errors %s" % (what, r["errors_total"], r["errors"]))
    check(r["responses"] == sum(r["status"].values()),
          "%s: responses %d != sum by status %s" % (what, r["responses"], r["status"]))
    check(r["requests"] == r["responses"] + r["errors_total"],
          "%s: requests %d != responses %d + errors %d"
          % (what, r["requests"], r["responses"], r["errors_total"]))
    lat = r["latency_ms"]
    for key in ("p50", "p90", "p99", "p99_9", "max", "mean"):
        check(isinstance(lat.get(key), (int, float)), "%s: latency_ms.%s missing" % (what, key))
    if r["responses"] == 0:
        # Nothing answered: no latency to report and no rate.
        check(all(lat[k] == 0 for k in lat) and r["rps"] == 0,
              "%s: latency or rate without a response: %s rps %r" % (what, lat, r["rps"]))
        return
    check(0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"],
          "%s: latency quantiles out of order: %s" % (what, lat))
    check(r["duration_s"] > 0 and r["rps"] > 0, "%s: no duration or rate: %s" % (what, r))
    check(abs(r["rps"] - r["responses"] / r["duration_s"]) <= 1e-6 * r["rps"] + 1e-9,
          "%s: rps %r is not responses / duration_s" % (what, r["rps"]))


PREDICT = "/v1/models/iris:predict"
BODY = '{"instances":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}'


# ---------------------------------------------------------------------------
# cases


def case_help_and_usage_errors():
    for cmd in ([], ["load"], ["compare"], ["sweep"], ["codec"], ["overhead"]):
        rc, out, err = bench(*cmd, "--help")
        check(rc == 0, "%s --help exited %d" % (cmd, rc))
        check("usage: infergate-bench" in out, "%s --help: no usage line:\n%s" % (cmd, out))
    bad = [
        (["load", "--url", "http://127.0.0.1:1/", "--connections", "abc"], "--connections"),
        (["load", "--url", "http://127.0.0.1:1/", "--connections", "0"], "--connections"),
        (["load", "--duration", "1"], "--url"),
        (["load", "--url", "https://127.0.0.1:1/"], "--url"),
        (["load", "--url", "http://127.0.0.1:1/", "--duration", "-1"], "--duration"),
        (["load", "--url", "http://127.0.0.1:1/", "--rate", "fast"], "--rate"),
        (["load", "--url", "http://127.0.0.1:1/", "--header", "NoColon"], "--header"),
        (["load", "--url", "http://127.0.0.1:1/", "--header", "Host: x"], "--header"),
        (["load", "--url", "http://127.0.0.1:1/", "--body-file", "/nonexistent/b.json"],
         "--body-file"),
        (["load", "--url", "http://127.0.0.1:1/", "--duration", "1", "--requests", "5"],
         "--requests"),
        (["load", "--url", "http://127.0.0.1:1/", "--bogus"], "--bogus"),
        (["load", "--url"], "--url"),
        (["compare", "--peers", "direct,envoy"], "--peers"),
        (["compare", "--rounds", "0"], "--rounds"),
        (["compare", "--wrk", "/nonexistent/wrk"], "--wrk"),
        (["sweep", "--concurrency-values", "1,2"], "--p99-target-ms"),
        (["sweep", "--p99-target-ms", "5", "--concurrency-values", "1,,2"],
         "--concurrency-values"),
        (["sweep", "--p99-target-ms", "5", "--batch-max-size-values", "0"],
         "--batch-max-size-values"),
        (["sweep", "--p99-target-ms", "5", "--batch-max-delay-us-values", "soon"],
         "--batch-max-delay-us-values"),
        # /echo goes to the passthrough route, which never batches.
        (["sweep", "--p99-target-ms", "5", "--path", "/echo", "--batch-max-size-values", "4"],
         "--batch-max-size-values"),
        (["codec", "--sizes", "1x"], "--sizes"),
        (["codec", "--sizes", "1"], "--sizes"),
        (["codec", "--cases", "v1-json,v3"], "--cases"),
        (["codec", "--batch", "0"], "--batch"),
        (["codec", "--seconds", "0"], "--seconds"),
        (["codec", "--rounds", "0"], "--rounds"),
        (["codec", "--bogus"], "--bogus"),
        (["overhead", "--rows", "0"], "--rows"),
        (["overhead", "--batch-max-size", "0"], "--batch-max-size"),
        (["overhead", "--batch-max-delay-us", "soon"], "--batch-max-delay-us"),
        (["overhead", "--upstream-concurrency", "0"], "--upstream-concurrency"),
        (["overhead", "--body", "{}"], "--body"),
        (["overhead", "--path=/echo"], "--path"),
        (["frobnicate"], "frobnicate"),
    ]
    for argv, flag in bad:
        rc, out, err = bench(*argv)
        check(rc == 2, "%s: expected exit 2, got %d (stderr %r)" % (argv, rc, err))
        check(flag in err, "%s: message does not name %s: %r" % (argv, flag, err))


def case_load_closed_loop_counts_match_the_model():
    with Model("--max-concurrency", "0") as m:
        r, _ = bench_json("load", "--url", "http://127.0.0.1:%d%s" % (m.port, PREDICT),
                          "--body", BODY, "--connections", "8", "--duration", "1", "--json")
        check_load_shape(r, "load")
        check(r["method"] == "POST" and r["mode"] == "closed", "method/mode: %s" % r)
        check(r["requests"] > 0 and r["errors_total"] == 0, "errors: %s" % r["errors"])
        check(r["status"] == {"200": r["responses"]}, "statuses: %s" % r["status"])
        s = m.stats()
        check(s["calls"] == r["responses"],
              "model counted %d calls, bench %d responses" % (s["calls"], r["responses"]))
        check(s["rows"] == 2 * r["responses"], "rows %d for %d calls" % (s["rows"], s["calls"]))


def case_load_requests_exact_and_text_summary():
    with Model() as m:
        url = "http://127.0.0.1:%d%s" % (m.port, PREDICT)
        r, _ = bench_json("load", "--url", url, "--body", BODY, "--requests", "500",
                          "--connections", "4", "--header", "X-Bench: yes", "--json")
        check_load_shape(r, "load --requests")
        check(r["requests"] == 500 and r["responses"] == 500, "counts: %s" % r)
        check(m.stats()["calls"] == 500, "model calls: %s" % m.stats())
        rc, out, err = bench("load", "--url", url, "--body", BODY, "--requests", "50",
                             "--connections", "2")
        check(rc == 0, "text run exited %d: %s" % (rc, err))
        for label in ("target", "mode", "requests", "status", "errors", "duration",
                      "throughput", "latency"):
            check(re.search(r"^%s\s" % label, out, re.M), "no %r line in:\n%s" % (label, out))
        check("50 sent, 50 responses, 0 errors" in out, "counts line:\n%s" % out)


def case_load_open_loop_counts():
    with Model() as m:
        r, _ = bench_json("load", "--url", "http://127.0.0.1:%d/v2/health/ready" % m.port,
                          "--rate", "400", "--duration", "1", "--connections", "4", "--json")
        check_load_shape(r, "load --rate")
        check(r["mode"] == "open" and r["rate"] == 400, "mode: %s" % r)
        check(r["requests"] > 0 and r["errors_total"] == 0, "counts: %s" % r)
        # The schedule releases at most rate x duration (+ the first) requests.
        check(r["requests"] <= 401, "open loop sent %d > 401 in 1 s at 400/s" % r["requests"])


def case_load_refused_counts_connect_errors():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rc, out, err = bench("load", "--url", "http://127.0.0.1:%d/" % port, "--requests", "20",
                         "--connections", "2", "--json")
    check(rc == 1, "expected exit 1 when nothing answers, got %d" % rc)
    r = json.loads(out)
    check_load_shape(r, "refused")
    check(r["responses"] == 0 and r["errors"]["connect"] == r["requests"] == 20,
          "refused run: %s" % r)
    check("no response" in err, "stderr does not say why: %r" % err)


def case_compare_counts_ratios_and_cleanup():
    c, err = bench_json("compare", "--duration", "1", "--warmup", "0.2", "--rounds", "2",
                        "--connections", "8", "--idle-connections", "20",
                        "--gateway", ARGS.gateway, "--model", ARGS.model, "--json")
    check_children_gone(err)
    for key in ("machine", "config", "peers", "skipped"):
        check(key in c, "compare: key %r missing" % key)
    check(c["machine"]["nproc"] >= 1 and c["machine"]["cpu"], "machine: %s" % c["machine"])
    names = [p["name"] for p in c["peers"]] + [s["name"] for s in c["skipped"]]
    check(sorted(names) == ["direct", "haproxy", "infergate", "nginx"], "peers: %s" % names)
    for s in c["skipped"]:
        check("not installed" in s["note"], "skip note: %s" % s)
    by = {p["name"]: p for p in c["peers"]}
    check("direct" in by and "infergate" in by, "direct and infergate always run: %s" % by)
    direct = by["direct"]["rps"]
    for name, p in by.items():
        check(len(p["runs"]) == 2, "%s: %d runs for 2 rounds" % (name, len(p["runs"])))
        for i, r in enumerate(p["runs"]):
            check_load_shape(r, "%s round %d" % (name, i + 1))
            check(r["errors_total"] == 0 and r["status"] == {"200": r["responses"]},
                  "%s round %d: %s %s" % (name, i + 1, r["status"], r["errors"]))
            check(r["responses"] > 0, "%s round %d: no responses" % (name, i + 1))
            check("rss_kb" in r and r["rss_kb"]["before"] > 0 and r["rss_kb"]["end"] > 0,
                  "%s round %d: no RSS sample: %s" % (name, i + 1, r.get("rss_kb")))
        mean = sum(r["rps"] for r in p["runs"]) / len(p["runs"])
        check(abs(p["rps"] - mean) <= 1e-6 * mean, "%s: rps is not the mean of its runs" % name)
        check(abs(p["ratio_direct"] - p["rps"] / direct) <= 1e-9 * p["ratio_direct"] + 1e-12,
              "%s: ratio_direct %r != %r" % (name, p["ratio_direct"], p["rps"] / direct))
        if "nginx" in by:
            want = p["rps"] / by["nginx"]["rps"]
            check(abs(p["ratio_nginx"] - want) <= 1e-9 * want, "%s: ratio_nginx" % name)
        else:
            check(p["ratio_nginx"] is None, "%s: ratio_nginx without nginx" % name)
        idle = p["idle"]
        check_load_shape(idle, "%s idle" % name)
        check(idle["mode"] == "idle" and idle["requests"] == 20 and idle["responses"] == 20,
              "%s idle: %s" % (name, idle))
        check(idle["rss_kb"]["connections_open"] == 20, "%s idle: %s" % (name, idle["rss_kb"]))
    check(by["direct"]["ratio_direct"] == 1, "direct vs direct: %s" % by["direct"]["ratio_direct"])


def case_compare_skips_missing_peer_and_prints_tables():
    rc, out, err = bench("compare", "--peers", "direct,nginx,haproxy", "--nginx",
                         "/nonexistent/nginx", "--haproxy", "/nonexistent/haproxy",
                         "--duration", "0.5", "--warmup", "0", "--rounds", "1",
                         "--connections", "2", "--path", "/v2/health/ready",
                         "--model", ARGS.model)
    check(rc == 0, "exited %d: %s" % (rc, err[-2000:]))
    check_children_gone(err)
    check(re.search(r"^direct\s+\d+", out, re.M), "no direct row:\n%s" % out)
    check("note: nginx skipped: /nonexistent/nginx is not installed" in out, "note:\n%s" % out)
    check("note: haproxy skipped" in out, "note:\n%s" % out)
    check(not re.search(r"^(nginx|haproxy)\s+\d", out, re.M), "skipped peer has a row:\n%s" % out)


def case_compare_wrk_sends_the_same_request():
    wrk = "/usr/bin/wrk"
    # wrk is a test dependency (scripts/install-deps): missing, the case fails.
    check(os.access(wrk, os.X_OK), "%s is not installed (apt-get install wrk)" % wrk)
    c, err = bench_json("compare", "--peers", "direct", "--duration", "0.5", "--warmup", "0",
                        "--rounds", "1", "--connections", "4", "--wrk", wrk, "--wrk-threads", "2",
                        "--header", "X-Bench: [[yes]]", "--model", ARGS.model, "--json")
    check_children_gone(err)
    runs = c["peers"][0]["wrk"]
    check(len(runs) == 1, "wrk runs: %s" % runs)
    w = runs[0]
    # A POST with the KServe body that the model answers 200: a broken generated script would
    # make wrk send bodiless GETs, which the model answers 405.
    check(w["requests"] > 0 and w["non_2xx"] == 0 and w["socket_errors"] == 0,
          "wrk did not get only 200s: %s" % w)
    check(0 < w["p50_ms"] <= w["p99_ms"], "wrk percentiles: %s" % w)


def case_compare_sigint_stops_everything():
    p = subprocess.Popen([ARGS.bench, "compare", "--peers", "direct,infergate", "--duration",
                          "60", "--rounds", "1", "--connections", "2", "--gateway", ARGS.gateway,
                          "--model", ARGS.model], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bench_env())
    err = b""
    try:
        os.set_blocking(p.stderr.fileno(), False)
        deadline = time.monotonic() + 60
        while b"round 1: direct" not in err and time.monotonic() < deadline and p.poll() is None:
            chunk = p.stderr.read()
            if chunk:
                err += chunk
            time.sleep(0.05)
        check(b"round 1: direct" in err, "load never started: %r" % err)
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=60)
        os.set_blocking(p.stderr.fileno(), True)
        err += p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = err.decode(errors="replace")
    check(rc == 130, "expected exit 130 after SIGINT, got %d; stderr:\n%s" % (rc, text[-2000:]))
    check("interrupted" in text, "stderr does not say it was interrupted:\n%s" % text[-2000:])
    names = [n for n, _ in check_children_gone(text)]
    check("infergate-model" in names and "infergate" in names, "started: %s" % names)


def check_sweep_point_model(p, what, rows_per_request=1):
    """The model's counters for one point add up with the bench's own counts."""
    r, m = p["load"], p["model"]
    check(isinstance(m, dict), "%s: no model counters: %r" % (what, m))
    check(r["errors_total"] == 0 and r["status"] == {"200": r["responses"]},
          "%s: not every request got a 200: %s %s" % (what, r["status"], r["errors"]))
    sizes = {int(k): v for k, v in m["batch_sizes"].items()}
    check(all(v > 0 for v in sizes.values()), "%s: empty batch size counts: %s" % (what, sizes))
    check(m["calls"] == sum(sizes.values()),
          "%s: calls %d != sum of batch_sizes %s" % (what, m["calls"], sizes))
    check(m["rows"] == sum(k * v for k, v in sizes.items()),
          "%s: rows %d != rows in batch_sizes %s" % (what, m["rows"], sizes))
    # The warm-up is not counted: every measured 200 is rows_per_request rows the
    # model computed during the measured load, and nothing else is.
    check(m["rows"] == rows_per_request * r["responses"],
          "%s: the model saw %d rows, the bench %d answers of %d rows"
          % (what, m["rows"], r["responses"], rows_per_request))
    check(m["errors"] == 0, "%s: model errors %d" % (what, m["errors"]))
    # cJSON prints 15 significant digits.
    mean = m["rows"] / m["calls"] if m["calls"] else None
    check(mean is not None and abs(m["mean_batch_rows"] - mean) <= 1e-12 * mean,
          "%s: mean_batch_rows %r != rows / calls" % (what, m["mean_batch_rows"]))
    check(m["max_batch_rows"] == max(sizes), "%s: max_batch_rows %r, sizes %s"
          % (what, m["max_batch_rows"], sizes))
    return sizes


def check_best(s):
    met = [p for p in s["points"] if p["meets_target"]]
    if met:
        best = max(met, key=lambda p: p["goodput_rps"])
        check(s["best"] == best["settings"], "best %s, expected %s" % (s["best"], best["settings"]))
    else:
        check(s["best"] is None, "best without any point meeting the target")


def case_sweep_points_limit_and_best():
    common = ["--concurrency-values", "1,2", "--batch-max-size-values", "1",
              "--duration", "0.5", "--warmup", "0",
              "--connections", "4", "--model-args", "--cost-base-us 1000 --max-concurrency 2",
              "--gateway", ARGS.gateway, "--model", ARGS.model, "--json"]
    s, err = bench_json("sweep", "--p99-target-ms", "60000", *common)
    check_children_gone(err)
    # 2 instances x 1e6 / (1000 us per one-row call): from the cost model, not a measurement.
    check(s["limit_rps"] == 2000, "limit_rps: %r" % s["limit_rps"])
    check(s["route"] == {"match": "/v1/models/{model}:predict", "protocol": "kserve-v1"},
          "route: %r" % s["route"])
    pts = s["points"]
    check([p["settings"] for p in pts] == [
        {"upstream.max_concurrency": c, "batch.max_size": 1, "batch.max_delay_us": 2000}
        for c in (1, 2)], "points: %s" % [p["settings"] for p in pts])
    for p in pts:
        what = "sweep point %s" % p["settings"]
        check_load_shape(p["load"], what)
        r = p["load"]
        good = r["status"].get("200", 0) / r["duration_s"]
        check(abs(p["goodput_rps"] - good) <= 1e-6 * good, "goodput: %s" % p)
        sizes = check_sweep_point_model(p, what)
        check(sizes == {1: r["responses"]}, "%s: max_size 1 but batches %s" % (what, sizes))
        check(p["limit_rps_at_max_size"] == 2000 and p["limit_rps_at_mean_batch"] == 2000,
              "%s: ceilings %r %r" % (what, p["limit_rps_at_max_size"],
                                      p["limit_rps_at_mean_batch"]))
    check_best(s)
    # Every call holds an instance for 1 ms, so no p99 can be under 0.5 ms.
    s2, err = bench_json("sweep", "--p99-target-ms", "0.5", *common)
    check_children_gone(err)
    check(s2["best"] is None and not any(p["meets_target"] for p in s2["points"]),
          "a 0.5 ms target was met by a 1 ms model: %s" % s2)


def case_sweep_batching_axes_counts_and_batches():
    # One instance, 2 ms + 100 us per row per call; 8 connections keep the queue full.
    s, err = bench_json(
        "sweep", "--p99-target-ms", "60000", "--concurrency-values", "1",
        "--batch-max-size-values", "1,8", "--batch-max-delay-us-values", "0,500",
        "--duration", "0.5", "--warmup", "0.2", "--connections", "8",
        "--model-args", "--cost-base-us 2000 --cost-per-row-us 100 --max-concurrency 1",
        "--gateway", ARGS.gateway, "--model", ARGS.model, "--json")
    check_children_gone(err)
    check(s["cost_model"] == {"base_us": 2000, "per_row_us": 100, "instances": 1, "delay_ms": 0},
          "cost_model: %r" % s["cost_model"])
    check(s["rows_per_request"] == 1, "rows_per_request: %r" % s["rows_per_request"])
    pts = s["points"]
    # The last axis turns fastest.
    check([(p["settings"]["batch.max_size"], p["settings"]["batch.max_delay_us"]) for p in pts]
          == [(1, 0), (1, 500), (8, 0), (8, 500)], "points: %s" % [p["settings"] for p in pts])

    def ceiling(n):  # K * n * 1e6 / (B + R * n), requests of one row
        return 1 * n * 1e6 / (2000 + 100 * n)

    def close(a, b):  # cJSON prints 15 significant digits
        return a is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b))

    for p in pts:
        what = "sweep point %s" % p["settings"]
        check_load_shape(p["load"], what)
        sizes = check_sweep_point_model(p, what)
        m, size = p["model"], p["settings"]["batch.max_size"]
        check(max(sizes) <= size, "%s: a call of %d rows" % (what, max(sizes)))
        if size == 1:
            check(list(sizes) == [1], "%s: batches %s without batching" % (what, sizes))
        else:
            check(max(sizes) > 1, "%s: max_size %d but the model saw only %s"
                  % (what, size, sizes))
        check(p["rows_per_call_at_max_size"] == size, "%s: %r" % (what, p))
        check(close(p["limit_rps_at_max_size"], ceiling(size)),
              "%s: limit_rps_at_max_size %r" % (what, p["limit_rps_at_max_size"]))
        check(close(p["limit_rps_at_mean_batch"], ceiling(m["mean_batch_rows"])),
              "%s: limit_rps_at_mean_batch %r" % (what, p["limit_rps_at_mean_batch"]))
        check(close(p["of_limit_at_max_size"], p["goodput_rps"] / ceiling(size)),
              "%s: of_limit_at_max_size %r" % (what, p["of_limit_at_max_size"]))
        check(close(p["of_limit_at_mean_batch"],
                    p["goodput_rps"] / ceiling(m["mean_batch_rows"])),
              "%s: of_limit_at_mean_batch %r" % (what, p["of_limit_at_mean_batch"]))
    check(close(s["limit_rps"], ceiling(1)), "limit_rps: %r" % s["limit_rps"])
    check_best(s)


def case_sweep_body_without_path_goes_to_the_default_model():
    # A --body alone (here 3 rows a request) is sent to the default path.
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3],
                                     [7.7, 3.0, 6.1, 2.3]]})
    s, err = bench_json(
        "sweep", "--p99-target-ms", "60000", "--concurrency-values", "1",
        "--batch-max-size-values", "6", "--batch-max-delay-us-values", "500",
        "--duration", "0.5", "--warmup", "0.2", "--connections", "4", "--body", body,
        "--model-args", "--cost-base-us 2000 --max-concurrency 1",
        "--gateway", ARGS.gateway, "--model", ARGS.model, "--json")
    check_children_gone(err)
    check(s["rows_per_request"] == 3, "rows_per_request: %r" % s["rows_per_request"])
    p = s["points"][0]
    check_load_shape(p["load"], "sweep with --body")
    sizes = check_sweep_point_model(p, "sweep with --body", rows_per_request=3)
    check(set(sizes) <= {3, 6}, "calls of %s rows from 3-row requests, max_size 6" % sizes)


def case_sweep_open_loop():
    # --rate sends on a fixed schedule: at most rate x duration requests per point,
    # however fast the gateway answers (closed loop would send ~10x more here).
    s, err = bench_json(
        "sweep", "--p99-target-ms", "60000", "--concurrency-values", "2",
        "--batch-max-size-values", "8", "--batch-max-delay-us-values", "1000",
        "--duration", "1", "--warmup", "0.2", "--connections", "8", "--rate", "300",
        "--model-args", "--cost-base-us 2000 --max-concurrency 1",
        "--gateway", ARGS.gateway, "--model", ARGS.model, "--json")
    check_children_gone(err)
    p = s["points"][0]
    check_load_shape(p["load"], "open-loop sweep")
    check(p["load"]["mode"] == "open" and p["load"]["rate"] == 300,
          "mode %r, rate %r" % (p["load"]["mode"], p["load"].get("rate")))
    check(0 < p["load"]["requests"] <= 301,
          "%d requests in 1 s at 300/s" % p["load"]["requests"])
    check_sweep_point_model(p, "open-loop sweep")


CODEC_CASES = ("v1-json", "v2-json", "v2-binary")
CODEC_COLUMNS = ("case", "size", "rows", "bytes/req", "new MB/s", "old MB/s", "new/old",
                 "new m+s", "old m+s", "m+s ratio", "memcpy MB/s", "new/memcpy", "new us/req",
                 "old us/req")


def positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def case_codec_json_figures_and_ratios():
    c, err = bench_json("codec", "--seconds", "0.05", "--rounds", "1", "--sizes", "1k,2k",
                        "--json")
    for key in ("machine", "config", "results"):
        check(key in c, "codec: key %r missing in %s" % (key, sorted(c)))
    check(c["config"]["batch"] == 8 and c["config"]["rounds"] == 1, "config: %s" % c["config"])
    got = [(r["case"], r["size"]) for r in c["results"]]
    want = [(k, s) for k in CODEC_CASES for s in ("1k", "2k")]
    check(got == want, "results %s, expected %s" % (got, want))
    for r in c["results"]:
        what = "%s %s" % (r["case"], r["size"])
        check(positive(r["rows"]) and positive(r["request_bytes"]), "%s: %s" % (what, r))
        check(abs(r["batch_bytes"] - 8 * r["request_bytes"]) < 1e-6 * r["batch_bytes"],
              "%s: batch_bytes %r is not 8 requests of %r" % (what, r["batch_bytes"],
                                                            r["request_bytes"]))
        # "about" the size asked for: well within a factor of two.
        check(r["target_bytes"] / 2 < r["request_bytes"] < r["target_bytes"] * 2,
              "%s: %r bytes per request for %r" % (what, r["request_bytes"], r["target_bytes"]))
        ran = ["new", "memcpy"] + ([] if r["case"] == "v2-binary" else ["old"])
        for name in ran:
            f = r[name]
            check(isinstance(f, dict), "%s: no %s figures (notes %s)" % (what, name, r["notes"]))
            check(positive(f["mb_s"]) and positive(f["us_per_request"]),
                  "%s %s: %s" % (what, name, f))
            check(len(f["rounds_mb_s"]) == 1 and f["rounds_mb_s"][0] == f["mb_s"],
                  "%s %s: one round, its median is itself: %s" % (what, name, f))
        if r["case"] == "v2-binary":
            # The pre-span codec sends binary tensor requests alone.
            check(r["old"] is None and "alone" in r["notes"].get("old", ""),
                  "%s: old should be n/a with a note: %s %s" % (what, r["old"], r["notes"]))
            check(r["new_vs_old"] is None, "%s: new_vs_old %r" % (what, r["new_vs_old"]))
        else:
            want = r["new"]["mb_s"] / r["old"]["mb_s"]
            check(abs(r["new_vs_old"] - want) <= 1e-9 * want, "%s: new_vs_old" % what)
        want = r["new"]["mb_s"] / r["memcpy"]["mb_s"]
        check(abs(r["new_vs_memcpy"] - want) <= 1e-9 * want, "%s: new_vs_memcpy" % what)
    for k in CODEC_CASES:
        check(re.search(r"codec %s 1k \(\d+ rows" % k, err), "no progress line for %s:\n%s"
              % (k, err))


def case_codec_text_table():
    rc, out, err = bench("codec", "--seconds", "0.02", "--rounds", "1", "--sizes", "1k",
                         "--batch", "3")
    check(rc == 0, "codec exited %d; stderr:\n%s" % (rc, err[-3000:]))
    check(out.startswith("machine: "), "no machine line:\n%s" % out)
    lines = out.splitlines()
    head = [i for i, l in enumerate(lines) if l.split()[:1] == ["case"]]
    check(len(head) == 1, "no column header:\n%s" % out)
    for col in CODEC_COLUMNS:
        check(col in lines[head[0]], "column %r missing:\n%s" % (col, lines[head[0]]))
    rows = {l.split()[0]: l.split() for l in lines[head[0] + 1:] if l.split()[:1] and
            l.split()[0] in CODEC_CASES}
    check(sorted(rows) == sorted(CODEC_CASES), "case rows: %s\n%s" % (sorted(rows), out))
    for k, cells in rows.items():
        check(len(cells) == len(CODEC_COLUMNS), "%s: %d cells: %s" % (k, len(cells), cells))
        nums = dict(zip(CODEC_COLUMNS, cells))
        for col in ("rows", "bytes/req", "new MB/s", "new m+s", "memcpy MB/s", "new/memcpy",
                    "new us/req"):
            check(float(nums[col]) > 0, "%s: %s is %r" % (k, col, nums[col]))
        if k == "v2-binary":
            check(nums["old MB/s"] == "n/a" and nums["new/old"] == "n/a" and
                  nums["old m+s"] == "n/a", "%s: %s" % (k, cells))
        else:
            check(float(nums["old MB/s"]) > 0 and float(nums["new/old"]) > 0 and
                  float(nums["old m+s"]) > 0 and float(nums["m+s ratio"]) > 0,
                  "%s: %s" % (k, cells))
    check("n/a: the old codec sends v2-binary requests alone" in out, "no n/a note:\n%s" % out)
    check("round trip: parse 3 requests" in out, "batch size not in the header:\n%s" % out)


def case_overhead_cpu_per_request_and_batches():
    o, err = bench_json("overhead", "--duration", "1", "--warmup", "0.2", "--rows", "8",
                        "--connections", "8", "--gateway", ARGS.gateway, "--model", ARGS.model,
                        "--json")
    check_children_gone(err)
    for key in ("machine", "config", "bodies"):
        check(key in o, "overhead: key %r missing in %s" % (key, sorted(o)))
    check(o["config"]["batch_max_size_requests"] == 8 and o["config"]["connections"] == 8 and
          o["config"]["batch_max_delay_us"] == 500 and o["config"]["upstream_concurrency"] == 4,
          "config: %s" % o["config"])
    check([(b["case"], b["rows"]) for b in o["bodies"]] == [("v1-json", 8), ("v2-json", 8)],
          "bodies: %s" % [(b["case"], b["rows"]) for b in o["bodies"]])
    for b in o["bodies"]:
        what = b["case"]
        check(b["batch_max_size"] == 64, "%s: batch.max_size %r for 8 x 8 rows"
              % (what, b["batch_max_size"]))
        check(positive(b["bytes"]), "%s: bytes %r" % (what, b["bytes"]))
        for side in ("batching", "passthrough"):
            s = b[side]
            check_load_shape(s["load"], "%s %s" % (what, side))
            check(s["load"]["status"] == {"200": s["requests"]} and
                  s["load"]["errors_total"] == 0, "%s %s: %s" % (what, side, s["load"]))
            check(s["requests"] == s["load"]["responses"] and s["rps"] == s["load"]["rps"],
                  "%s %s: requests/rps not those of its load" % (what, side))
            for key in ("rps", "requests", "cpu_s", "cpu_us_per_request", "calls"):
                check(positive(s[key]), "%s %s: %s is %r" % (what, side, key, s[key]))
            want = s["cpu_s"] * 1e6 / s["requests"]
            check(abs(s["cpu_us_per_request"] - want) <= 1e-6 * want,
                  "%s %s: cpu_us_per_request %r != cpu_s / requests" % (what, side,
                                                                       s["cpu_us_per_request"]))
        bt, ps = b["batching"], b["passthrough"]
        check(bt["route"] == ("/v1/models/{model}:predict" if what == "v1-json"
                              else "/v2/models/{model}/infer") and ps["route"] == "/*",
              "%s: routes %r %r" % (what, bt["route"], ps["route"]))
        # Every call carries whole requests, and at most max_size rows.
        check(8 <= bt["mean_batch_rows"] <= 64, "%s: mean batch %r rows" % (what,
                                                                         bt["mean_batch_rows"]))
        check(abs(bt["mean_batch_requests"] - bt["mean_batch_rows"] / 8) < 1e-9,
              "%s: mean_batch_requests" % what)
        check(ps["mean_batch_rows"] is None, "%s: passthrough batch %r" % (what,
                                                                         ps["mean_batch_rows"]))
        # A passthrough call is one request; a batch call at least one.
        check(ps["calls"] == ps["requests"], "%s: passthrough %d calls for %d requests"
              % (what, ps["calls"], ps["requests"]))
        check(bt["calls"] <= bt["requests"], "%s: batching %d calls for %d requests"
              % (what, bt["calls"], bt["requests"]))
        want = bt["cpu_us_per_request"] / ps["cpu_us_per_request"]
        check(abs(b["cpu_ratio"] - want) <= 1e-9 * want, "%s: cpu_ratio" % what)


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("-k", action="append", default=[])
    ARGS = ap.parse_args()
    ARGS.bench = os.path.abspath(ARGS.bench)
    ARGS.gateway = os.path.abspath(ARGS.gateway)
    ARGS.model = os.path.abspath(ARGS.model)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit("killed by SIGTERM"))
    passed = failed = 0
    for case in CASES:
        name = case.__name__[5:]
        if ARGS.k and not any(k in name for k in ARGS.k):
            continue
        t0 = time.monotonic()
        try:
            case()
            passed += 1
            print("ok   %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s\n%s" % (name, traceback.format_exc()), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
