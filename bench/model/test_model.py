#!/usr/bin/python3
"""Integration tests of infergate-model: spawn the binary on a free port and check the wire.

Usage: /usr/bin/python3 bench/model/test_model.py path/to/infergate-model [test-name ...]

Each test starts its own server with --listen 127.0.0.1:0 --port-file, talks to it over
loopback only, and kills it by pid when done, even on failure. Nothing here asserts an upper
bound on time: waits are bounded polls, so a slow machine makes the run slower, not red.
Prints one line per test and ends with "N passed, N failed".
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

EXE = None
SETOSA = [5.1, 3.5, 1.4, 0.2]
VERSICOLOR = [7.0, 3.2, 4.7, 1.4]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
START_TIMEOUT = 20.0
SANITIZER_MARK = "Sanitizer"


class Model:
    """One infergate-model process on an ephemeral loopback port."""

    def __init__(self, *flags):
        self.dir = tempfile.mkdtemp(prefix="ig-model-test-")
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [EXE, "--listen", "127.0.0.1:0", "--port-file", self.port_file, *flags],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + START_TIMEOUT
        self.port = None
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    self.port = int(f.read())
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            err = self.stderr()
            self.stop()
            raise AssertionError(f"infergate-model did not start: {err}")

    def stderr(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                headers = {"Content-Type": "application/json", **(headers or {})}
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            c.close()

    def json(self, method, path, body=None, expect=200, headers=None, timeout=30):
        status, hdrs, data = self.request(method, path, body, headers, timeout)
        assert status == expect, f"{method} {path}: status {status}, want {expect}: {data!r}"
        return json.loads(data)

    def stats(self):
        return self.json("GET", "/stats")

    def wait_exit(self, timeout=20):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"infergate-model pid {self.proc.pid} did not exit")

    def stop(self):
        """Stops the server with SIGTERM (a clean shutdown, so a sanitized build checks
        for leaks), SIGKILL if it does not exit; returns the sanitizer reports found."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        reports = [line for line in self.stderr().splitlines()
                   if SANITIZER_MARK in line or "runtime error:" in line]
        shutil.rmtree(self.dir, ignore_errors=True)
        return reports

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        code_before = self.proc.poll()
        reports = self.stop()
        if exc_type is None:
            assert not reports, "sanitizer reports:\n" + "\n".join(reports)
            if code_before is None:
                assert self.proc.returncode == 0, \
                    f"exit status {self.proc.returncode} after SIGTERM"


def v1(rows):
    return {"instances": rows}


def v2(rows, dtype="FP32", nested=False, **extra):
    data = rows if nested else [v for r in rows for v in r]
    return {"inputs": [{"name": "input", "shape": [len(rows), 4], "datatype": dtype,
                        "data": data}], **extra}


def wait_until(pred, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def raw_exchange(port, request_bytes, timeout=20):
    """Sends raw bytes and reads until the server closes the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request_bytes)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def pattern(n, offset=0):
    return bytes(ord("a") + (offset + i) % 26 for i in range(n))


# ---- tests -----------------------------------------------------------------------------------


def test_cli_help_version_and_bad_flags():
    r = subprocess.run([EXE, "--help"], capture_output=True, timeout=20)
    assert r.returncode == 0 and b"--max-concurrency" in r.stdout, r
    r = subprocess.run([EXE, "--version"], capture_output=True, timeout=20)
    assert r.returncode == 0 and r.stdout.startswith(b"infergate-model "), r
    for args, needle in ((["--delay-ms", "abc"], b"--delay-ms: 'abc'"),
                         (["--bogus"], b"--bogus: unknown flag"),
                         (["--fail-every", "0"], b"--fail-every: 0 is too small"),
                         (["--log-level", "loud"], b"--log-level: 'loud'"),
                         (["--listen", "not-an-address", "--quiet"], b"--listen not-an-address")):
        r = subprocess.run([EXE, *args], capture_output=True, timeout=20)
        assert r.returncode == 2, (args, r)
        assert needle in r.stderr, (args, r.stderr)


def test_v1_predict_known_rows():
    with Model("--quiet") as m:
        out = m.json("POST", "/v1/models/iris:predict",
                     v1([SETOSA, VERSICOLOR, VIRGINICA, SETOSA]))
        assert out == {"predictions": [0, 1, 2, 0]}, out
        # Extra top-level keys are allowed and ignored.
        out = m.json("POST", "/v1/models/iris:predict",
                     {"instances": [VIRGINICA], "parameters": {"x": 1}})
        assert out == {"predictions": [2]}, out
        assert m.json("GET", "/v1/models/iris") == {"name": "iris", "ready": True}


def test_v1_bad_inputs_are_400_with_the_reason():
    with Model("--quiet") as m:
        cases = [
            ({"instances": [SETOSA, SETOSA, SETOSA, [1, 2, 3]]},
             "instances[3]: expected an array of 4 numbers"),
            ({"instances": [{"sepal_length": 5.1}]}, "instances[0]: expected an array of 4 numbers"),
            ({"instances": "x"}, "instances: expected an array"),
            ({"rows": []}, "instances: missing"),
        ]
        for body, msg in cases:
            out = m.json("POST", "/v1/models/iris:predict", body, expect=400)
            assert out["error"] == msg, (body, out)
        status, _, data = m.request("POST", "/v1/models/iris:predict", "{not json")
        assert status == 400 and json.loads(data)["error"] == "body: invalid JSON", data
        out = m.json("POST", "/v1/models/rose:predict", v1([SETOSA]), expect=404)
        assert "model 'rose' not found" in out["error"], out
        out = m.json("GET", "/v1/models/iris:predict", expect=405)
        assert "use POST" in out["error"], out
        assert m.stats()["errors"] == 5


def test_v2_infer_flat_nested_and_outputs():
    with Model("--quiet") as m:
        out = m.json("POST", "/v2/models/iris/infer", v2([SETOSA, VIRGINICA], id="req-7"))
        assert out["id"] == "req-7" and out["model_name"] == "iris", out
        assert "model_version" not in out
        label, probs = out["outputs"]
        assert label == {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]}, label
        assert probs["name"] == "probabilities" and probs["datatype"] == "FP32", probs
        assert probs["shape"] == [2, 3] and len(probs["data"]) == 6, probs
        for i in range(2):
            row = probs["data"][3 * i:3 * i + 3]
            assert abs(sum(row) - 1.0) < 1e-5, row
            assert row.index(max(row)) == label["data"][i], (row, label)

        out = m.json("POST", "/v2/models/iris/versions/1/infer",
                     v2([VERSICOLOR, SETOSA], dtype="FP64", nested=True,
                        outputs=[{"name": "label"}]))
        assert out["model_version"] == "1" and "id" not in out, out
        assert out["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [2],
                                   "data": [1, 0]}], out

        out = m.json("POST", "/v2/models/iris/infer",
                     v2([[6, 3, 5, 2]], dtype="INT32", outputs=[{"name": "probabilities"}]))
        assert [o["name"] for o in out["outputs"]] == ["probabilities"], out


def test_v2_bad_inputs_are_400_with_the_reason():
    with Model("--quiet") as m:
        bad_len = v2([SETOSA, SETOSA])
        bad_len["inputs"][0]["data"].pop()
        bytes_type = v2([SETOSA], dtype="BYTES")
        bad_shape = v2([SETOSA])
        bad_shape["inputs"][0]["shape"] = [1, 3]
        cases = [
            (bad_len, "inputs[0].data: 7 values for shape [2, 4] (expected 8)"),
            (bytes_type, "inputs[0].datatype: BYTES is not supported"),
            (bad_shape, "inputs[0].shape: expected [N, 4], got [1,3]"),
            ({"id": "x"}, "inputs: missing"),
            (v2([SETOSA], outputs=[{"name": "logits"}]), "outputs[0].name: unknown output"),
        ]
        for body, msg in cases:
            out = m.json("POST", "/v2/models/iris/infer", body, expect=400)
            assert out["error"].startswith(msg), (msg, out)
        out = m.json("POST", "/v2/models/nope/infer", v2([SETOSA]), expect=404)
        assert "model 'nope' not found" in out["error"], out
        out = m.json("POST", "/v2/models/iris/versions/2/infer", v2([SETOSA]), expect=404)
        assert "no version '2'" in out["error"], out
        out = m.json("POST", "/v2/models/iris/infer", v2([SETOSA]), expect=400,
                     headers={"Inference-Header-Content-Length": "10"})
        assert "binary tensor data" in out["error"], out


def test_v2_metadata_and_health():
    with Model("--quiet", "--name", "flowers") as m:
        meta = m.json("GET", "/v2")
        assert meta["name"] == "infergate-model" and isinstance(meta["extensions"], list), meta
        assert meta["version"], meta
        model = m.json("GET", "/v2/models/flowers")
        assert model["name"] == "flowers" and model["versions"] == ["1"], model
        assert model["inputs"][0]["shape"] == [-1, 4], model
        assert [o["name"] for o in model["outputs"]] == ["label", "probabilities"], model
        assert m.json("GET", "/v2/models/flowers/versions/1")["name"] == "flowers"
        assert m.json("GET", "/v2/models/flowers/ready") == {"ready": True}
        assert m.json("GET", "/v2/health/live") == {}
        assert m.json("GET", "/v2/health/ready") == {"ready": True}
        status, hdrs, data = m.request("HEAD", "/v2/health/ready")
        assert status == 200 and data == b"" and hdrs["content-length"] == "14", (status, hdrs)
        status, hdrs, _ = m.request("DELETE", "/v2/health/ready")
        assert status == 405 and hdrs["allow"] == "GET, HEAD", (status, hdrs)
        m.json("GET", "/v2/models/iris", expect=404)
        out = m.json("GET", "/nothing/here", expect=404)
        assert out["error"] == "no route for GET /nothing/here", out


def test_not_ready_ms():
    with Model("--quiet", "--not-ready-ms", "3000") as m:
        start = time.monotonic()
        status, _, body = m.request("GET", "/v2/health/ready")
        if time.monotonic() - start < 2.5:  # still inside the window on any machine we can tell
            assert status == 503 and json.loads(body) == {"ready": False}, (status, body)
            assert m.request("GET", "/v1/models/iris")[0] == 503
            assert m.request("GET", "/v2/models/iris/ready")[0] == 503
        assert m.request("GET", "/v2/health/live")[0] == 200
        wait_until(lambda: m.request("GET", "/v2/health/ready")[0] == 200, "readiness")
        assert m.json("GET", "/v1/models/iris") == {"name": "iris", "ready": True}


def test_stats_batch_sizes_and_reset():
    with Model("--quiet") as m:
        for _ in range(3):
            m.json("POST", "/v1/models/iris:predict", v1([SETOSA]))
        m.json("POST", "/v2/models/iris/infer", v2([SETOSA] * 4))
        m.json("POST", "/v1/models/iris:predict", v1([[1, 2, 3]]), expect=400)
        s = m.stats()
        assert s["calls"] == 5 and s["rows"] == 7 and s["errors"] == 1, s
        assert s["batch_sizes"] == {"1": 3, "4": 1}, s
        assert s["inflight"] == 0 and s["max_inflight"] == 1, s
        s = m.json("POST", "/stats/reset")
        assert s["calls"] == 0 and s["rows"] == 0 and s["batch_sizes"] == {}, s
        assert m.stats()["max_inflight"] == 0


def test_max_concurrency_queues_and_counts_inflight():
    # 2 instances, 6 simultaneous calls that each hold an instance for 2 s:
    # while they are in flight, 2 run and 4 wait, and inflight counts all 6.
    with Model("--quiet", "--max-concurrency", "2", "--cost-base-us", "2000000") as m:
        results = [None] * 6
        errors = []

        def call(i):
            try:
                results[i] = m.json("POST", "/v1/models/iris:predict", v1([SETOSA] * (i + 1)))
            except Exception as e:  # reported below, from the main thread
                errors.append(repr(e))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        try:
            s = wait_until(lambda: (lambda s: s if s["inflight"] == 6 else None)(m.stats()),
                           "6 calls in flight")
            assert s["queued"] == 4, s
        finally:
            for t in threads:
                t.join(60)
        assert not errors, errors
        for i, r in enumerate(results):
            assert r == {"predictions": [0] * (i + 1)}, (i, r)
        s = m.stats()
        assert s["max_inflight"] == 6 and s["inflight"] == 0 and s["queued"] == 0, s
        assert s["calls"] == 6 and s["rows"] == 21, s


def test_queue_is_fifo():
    # One instance; calls of 1, 2, 3 and 4 rows sent one after the other, each only once
    # the previous one was received, so their arrival order is known. The log
    # lines (one per answer, in answer order) must list them in that order.
    with Model("--max-concurrency", "1", "--cost-base-us", "500000") as m:
        threads = []
        for n in range(1, 5):
            t = threading.Thread(target=m.json, args=("POST", "/v1/models/iris:predict",
                                                      v1([SETOSA] * n)))
            t.start()
            threads.append(t)
            wait_until(lambda: m.stats()["calls"] == n, f"call {n} received")
        for t in threads:
            t.join(60)
        calls = [json.loads(line) for line in m.stderr().splitlines() if '"msg":"call"' in line]
        assert [c["batch_size"] for c in calls] == [1, 2, 3, 4], calls


def test_unlimited_concurrency_and_per_row_cost():
    with Model("--quiet", "--max-concurrency", "0", "--cost-per-row-us", "400000") as m:
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            m.json("POST", "/v1/models/iris:predict", v1([VIRGINICA] * 5)))) for _ in range(4)]
        for t in threads:
            t.start()
        s = wait_until(lambda: (lambda s: s if s["inflight"] == 4 else None)(m.stats()),
                       "4 calls in flight")
        assert s["queued"] == 0, s
        for t in threads:
            t.join(60)
        assert results == [{"predictions": [2] * 5}] * 4, results


def test_call_log_lines():
    with Model("--delay-ms", "5") as m:
        m.json("POST", "/v1/models/iris:predict", v1([SETOSA, SETOSA]))
        m.json("POST", "/v2/models/iris/infer", v2([SETOSA]))
        wait_until(lambda: m.stderr().count('"msg":"call"') >= 2, "two call log lines")
        calls = [json.loads(line) for line in m.stderr().splitlines()
                 if '"msg":"call"' in line]
        assert [c["protocol"] for c in calls] == ["v1", "v2"], calls
        assert [c["batch_size"] for c in calls] == [2, 1], calls
        for c in calls:
            assert c["model"] == "iris" and c["status"] == 200 and c["inflight"] == 1, c
            assert c["duration_us"] >= 5000, c  # --delay-ms is a floor by construction


def test_fail_every():
    with Model("--quiet", "--fail-every", "3") as m:
        statuses = []
        for _ in range(6):
            status, _, body = m.request("POST", "/v1/models/iris:predict", v1([SETOSA]))
            statuses.append(status)
            if status == 500:
                assert json.loads(body)["error"] == "injected failure (fail-every 3)", body
        assert statuses == [200, 200, 500, 200, 200, 500], statuses
        assert m.stats()["errors"] == 2


def test_hang_after():
    with Model("--quiet", "--hang-after", "2") as m:
        for _ in range(2):
            m.json("POST", "/v2/models/iris/infer", v2([SETOSA]))
        c = m.conn(timeout=0.5)
        try:
            c.request("POST", "/v2/models/iris/infer", body=json.dumps(v2([SETOSA])))
            try:
                c.getresponse()
                raise AssertionError("a call after --hang-after was answered")
            except socket.timeout:
                pass
            s = m.stats()
            assert s["inflight"] == 1 and s["calls"] == 3, s
        finally:
            c.close()
        # The abandoned call no longer counts once its client is gone.
        wait_until(lambda: m.stats()["inflight"] == 0, "inflight back to 0")
        # Non-inference endpoints still answer.
        assert m.json("GET", "/v2/health/live") == {}


def test_crash_after():
    with Model("--quiet", "--crash-after", "2") as m:
        for _ in range(2):
            m.json("POST", "/v1/models/iris:predict", v1([SETOSA]))
        try:
            status, _, body = m.request("POST", "/v1/models/iris:predict", v1([SETOSA]))
            raise AssertionError(f"call after --crash-after was answered: {status} {body!r}")
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
            pass
        assert m.wait_exit() == 3
        assert "--crash-after 2" in m.stderr()


def test_stream_chunks():
    with Model("--quiet") as m:
        raw = raw_exchange(m.port, b"GET /stream?chunks=5&size=7&interval_ms=10 HTTP/1.1\r\n"
                                   b"Host: x\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding: chunked" in head.lower(), head
        sizes, payload = [], b""
        while True:
            line, _, body = body.partition(b"\r\n")
            n = int(line, 16)
            if n == 0:
                break
            sizes.append(n)
            payload += body[:n]
            assert body[n:n + 2] == b"\r\n", body
            body = body[n + 2:]
        assert sizes == [7] * 5, sizes
        assert payload == pattern(35), payload
        # A big fast stream exercises the write back-pressure path.
        status, hdrs, data = m.request("GET", "/stream?chunks=64&size=65536")
        assert status == 200 and data == pattern(64 * 65536), (status, len(data))
        out = m.json("GET", "/stream?chunks=x", expect=400)
        assert out["error"].startswith("query parameter chunks:"), out


def test_close_delimited():
    with Model("--quiet") as m:
        raw = raw_exchange(m.port, b"GET /close-delimited?size=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        lower = head.lower()
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"content-length" not in lower and b"transfer-encoding" not in lower, head
        assert b"connection: close" in lower, head
        assert body == pattern(100000), len(body)


def test_echo_headers_slow():
    with Model("--quiet") as m:
        status, hdrs, data = m.request("POST", "/echo", b"\x00hello\xff",
                                       {"Content-Type": "application/x-thing"})
        assert status == 200 and data == b"\x00hello\xff", (status, data)
        assert hdrs["content-type"] == "application/x-thing", hdrs
        out = m.json("GET", "/headers", headers={"X-Trace": "abc", "X-Infergate-Timeout-Ms": "5"})
        assert out["x-trace"] == "abc" and out["x-infergate-timeout-ms"] == "5", out
        assert out["host"].startswith("127.0.0.1"), out
        status, _, data = m.request("GET", "/slow?ms=50")
        assert status == 200 and data == b"ok", (status, data)
        m.json("GET", "/slow?ms=abc", expect=400)


def test_pipelined_calls_answer_in_order():
    with Model("--quiet", "--cost-base-us", "20000") as m:
        reqs = b""
        for rows in ([SETOSA], [VIRGINICA, VIRGINICA], [VERSICOLOR]):
            body = json.dumps(v1(rows)).encode()
            reqs += (b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body)) + body
        reqs += b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        raw = raw_exchange(m.port, reqs)
        bodies = [part.split(b"\r\n\r\n", 1)[1] for part in raw.split(b"HTTP/1.1 ")[1:]]
        assert [json.loads(b) for b in bodies[:3]] == [
            {"predictions": [0]}, {"predictions": [2, 2]}, {"predictions": [1]}], bodies
        assert json.loads(bodies[3])["calls"] == 3, bodies[3]


def test_sigterm_exits_cleanly_with_calls_in_flight():
    with Model("--quiet", "--cost-base-us", "30000000") as m:
        c = m.conn(timeout=20)
        try:
            c.request("POST", "/v1/models/iris:predict", body=json.dumps(v1([SETOSA])))
            wait_until(lambda: m.stats()["inflight"] == 1, "the call in flight")
            os.kill(m.proc.pid, signal.SIGTERM)
            assert m.wait_exit() == 0, m.stderr()
        finally:
            c.close()


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)]


def main():
    global EXE
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    EXE = os.path.abspath(sys.argv[1])
    wanted = set(sys.argv[2:])
    passed = failed = 0
    for t in TESTS:
        if wanted and t.__name__ not in wanted:
            continue
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__}", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
