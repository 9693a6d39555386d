"""The processes under test, each started on port 0 and reporting the port
it bound:

  Model      bench/model's infergate-model: `--listen 127.0.0.1:0 --port-file F`
             (it writes the bound port, decimal + newline, once listening)
  EchoModel  tests/integration/echo_model.py: `--port 0`, prints its port on
             its first stdout line
  Gateway    `infergate serve -c CONFIG` with `listen` and `admin_listen` on
             port 0: its start-up log line (JSON on stderr, msg "infergate
             serving") carries the bound `port` and `admin_port`

No port is picked by the harness, so there is nothing to race for and
nothing to retry. Each constructor only spawns the child; `wait_started()`
reads the port (Env registers the child in between, so a child that never
reports its port is still stopped when the case ends)."""

import base64
import json
import os
import signal
import socket
import sys
import time

from .checks import CaseFailure, check
from .httpc import header_dict, request
from .net import fmt_hostport
from .proc import IO_TIMEOUT, Proc, gateway_bin, model_bin
from .sync import wait_for

PASSTHROUGH_ONLY = [{"match": "/*", "protocol": "passthrough"}]


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def base_config(upstream_url):
    """A config for tests: fast probes, short drain so stopping is quick."""
    return {
        "upstream": {"url": upstream_url, "probe_interval_ms": 100},
        "drain": {"grace_ms": 0, "timeout_ms": 3000},
        "log": {"level": "info", "access_log": True},
    }


class Model(Proc):
    def __init__(self, workdir, flags, name="model"):
        self.port_file = os.path.join(workdir, name + ".port")
        flags = list(flags)
        listen = ["--listen", "127.0.0.1:0"] if "--listen" not in flags else []
        argv = [model_bin()] + listen + ["--port-file", self.port_file] + flags
        super().__init__(name, argv, workdir)
        self.port = self.url = None

    def wait_started(self):
        """Reads the bound port from the port file; sets .port and .url."""
        self.port = self._wait_port()
        self.url = "http://127.0.0.1:%d" % self.port
        return self

    def _wait_port(self):
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            exited = self.poll()
            try:
                with open(self.port_file) as f:
                    text = f.read()
                # Written to a temporary name and renamed: complete when present.
                check(text.endswith("\n") and text.strip().isdigit(),
                      "infergate-model port file %s holds %r" % (self.port_file, text))
                return int(text.strip())
            except FileNotFoundError:
                pass
            if exited is not None:
                raise CaseFailure("infergate-model exited with %s before listening; stderr:\n%s"
                                  % (exited, self.tail()))
            if time.monotonic() >= deadline:
                raise CaseFailure("infergate-model wrote no port file %s; stderr:\n%s"
                                  % (self.port_file, self.tail()))
            time.sleep(0.02)

    def get_json(self, path):
        r = request(self.port, "GET", path)
        check(r.status == 200, "model GET %s: status %d body %r" % (path, r.status, r.body[:200]))
        return r.json()

    def stats(self):
        return self.get_json("/stats")

    def reset_stats(self):
        r = request(self.port, "POST", "/stats/reset", body=b"")
        check(r.status in (200, 204), "model POST /stats/reset: status %d" % r.status)

    def wait_stat(self, key, pred, what, timeout=IO_TIMEOUT):
        """Polls the model's /stats until pred(stats[key]) holds."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            st = self.stats()
            check(key in st, "model /stats has no %r: %r" % (key, st))
            last = st[key]
            if pred(last):
                return last
            time.sleep(0.01)
        raise CaseFailure("model /stats %s never became %s (last %r)" % (key, what, last))


class EchoModel(Proc):
    """tests/integration/echo_model.py: a recording echo model (Python), started
    on port 0; it prints its bound port on stdout. See that file for its API."""

    SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "echo_model.py")

    def __init__(self, workdir, name="echo"):
        py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
        super().__init__(name, [py, self.SCRIPT, "--port", "0"], workdir)
        self.port = self.url = None

    def wait_started(self):
        """Reads the bound port from the first stdout line; sets .port and .url."""
        self.port = self.wait_line(lambda ln: int(ln) if ln.strip().isdigit() else None,
                                   "its port", stream="stdout")
        self.url = "http://127.0.0.1:%d" % self.port
        return self

    def _post(self, path, obj):
        r = request(self.port, "POST", path, body=json.dumps(obj).encode(),
                    headers={"Content-Type": "application/json"})
        check(r.status == 200, "echo model POST %s: status %d body %r"
              % (path, r.status, r.body[:200]))
        return r.json()

    def configure(self, **cfg):
        """POST /_config: delay_ms, force ("json" | "binary" | None), wrong_binary_size."""
        return self._post("/_config", cfg)

    def reset(self):
        self._post("/_reset", {})

    def release(self):
        """Lets every held GET /_block answer."""
        return self._post("/_release", {})

    def state(self):
        r = request(self.port, "GET", "/_state")
        check(r.status == 200, "echo model GET /_state: status %d" % r.status)
        return r.json()

    def calls(self):
        """Recorded calls, bodies decoded: [{"method","path","headers": {lower: value},
        "header_list": [[k, v]], "body": bytes}]."""
        r = request(self.port, "GET", "/_calls")
        check(r.status == 200, "echo model GET /_calls: status %d" % r.status)
        out = []
        for c in r.json():
            out.append({"method": c["method"], "path": c["path"],
                        "header_list": c["headers"],
                        "headers": header_dict(c["headers"]),
                        "body": base64.b64decode(c["body"])})
        return out

    def accepts(self):
        """True when a TCP connect to the model's port succeeds right now."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
            return True
        except OSError:
            return False

    def revive(self):
        """Brings the echo model back after crash_after_read took it down
        (SIGUSR1: it listens again on the same port); waits until it accepts."""
        self.send_signal(signal.SIGUSR1)
        check(wait_for(self.accepts), "echo model did not listen again after SIGUSR1")


def _serving_ports(line):
    """(port, admin_port) from the gateway's start-up line, else None."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict) or rec.get("msg") != "infergate serving":
        return None
    port, admin = rec.get("port"), rec.get("admin_port")
    check(isinstance(port, int) and port > 0 and isinstance(admin, int) and admin > 0,
          "the start-up line lacks the bound ports: %r" % line)
    return port, admin


class Gateway(Proc):
    """`infergate serve -c CONFIG` with `listen` and `admin_listen` on port 0;
    .port and .admin_port are the ports it reports on its start-up line."""

    def __init__(self, workdir, config, host, admin_host, name):
        level = config.get("log", {}).get("level", "info")
        check(level != "off",
              "log.level off hides the gateway's start-up line, the only report of its "
              "bound ports")
        self.host = host
        self.admin_host = admin_host
        self.config = dict(config, listen=fmt_hostport(host, 0),
                           admin_listen=fmt_hostport(admin_host, 0))
        self.config_path = os.path.join(workdir, name + ".json")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        super().__init__(name, [gateway_bin(), "serve", "-c", self.config_path], workdir)
        self.expected_exit = 0
        self.port = self.admin_port = None

    def wait_started(self):
        """Reads .port and .admin_port from the start-up line."""
        self.port, self.admin_port = self.wait_line(_serving_ports, "its start-up line")
        return self

    def admin(self, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
        return request(self.admin_port, method, path, body=body, headers=headers,
                       host=self.admin_host, timeout=timeout)

    def data(self, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
        return request(self.port, method, path, body=body, headers=headers, host=self.host,
                       timeout=timeout)

    def wait_admin(self, path, status, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.poll() is not None:
                raise CaseFailure("infergate exited with %s while waiting for %s == %d; stderr:\n%s"
                                  % (self.poll(), path, status, self.tail()))
            try:
                r = self.admin("GET", path, timeout=2)
                last = r.status
                if r.status == status:
                    return r
            except OSError as e:
                last = repr(e)
            time.sleep(0.02)
        raise CaseFailure("admin %s never answered %d (last: %s)" % (path, status, last))

    def queue_depth(self):
        """Queue depth from GET /autoscale (fails the case when it has none)."""
        r = self.admin("GET", "/autoscale", timeout=2)
        check(r.status == 200, "GET /autoscale: status %d body %r" % (r.status, r.body[:200]))
        d = r.json().get("queue_depth")
        check(isinstance(d, int), "GET /autoscale: no integer queue_depth in %r" % r.body[:300])
        return d

    def wait_queue_depth_at_most(self, n, timeout=IO_TIMEOUT):
        """Waits until the gateway reports at most n queued requests."""
        check(wait_for(lambda: self.queue_depth() <= n, timeout),
              "gateway queue depth never fell to %d" % n)

    def wait_queue_depth(self, n, timeout=IO_TIMEOUT):
        """Waits until the gateway reports at least n queued requests."""
        check(wait_for(lambda: self.queue_depth() >= n, timeout),
              "gateway queue depth never reached %d" % n)
