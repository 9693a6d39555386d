#!/usr/bin/python3
"""No secret reaches a log line, an error message or a printed config.

Every case plants secrets with known values where infergate meets them, then
collects everything infergate says, on success and on failure, and checks
that none of the secrets is in it:

- serve: the password in `upstream.url`'s user info, and a client's
  `Authorization: Bearer <token>` sent through a passthrough route and both
  batching routes, answered 200, 400, 404 and (model down) 502, with
  log.level debug and the access log on. Collected: the gateway's stdout and
  stderr, GET /admin/config, every response body to the client.
- check-config and serve with the URL in the file, in INFERGATE_UPSTREAM_URL
  and in --upstream, valid and invalid: stdout and stderr.
- bootstrap render|plan|apply against the App Mesh and Kubernetes fakes
  (tests/fakes/, started with the helpers of
  tests/integration/bootstrap/test_bootstrap_e2e.py): a kubeconfig bearer
  token, a client key (PEM, as client-key-data and as a file), an exec
  credential plugin's env var, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN;
  then failing runs (403 and 500 from a fake, a wrong token, wrong AWS keys,
  a failing plugin, a broken key). Collected: stdout and stderr of each run.

A secret counts as leaked when its value appears anywhere in the collected
text; the PEM key is checked by its base64 body lines and by its
client-key-data encoding. All checks are unconditional: a tool the case needs
(openssl, python3-yaml, python3-botocore) missing is a failure, not a skip.

usage: test_secrets.py --gateway PATH --model PATH [-k NAME] [--keep]
"""

import base64
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "bootstrap"))

import harness as h  # noqa: E402

SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))

suite = h.Suite("secrets")

UPSTREAM_USER = "svc-user"
UPSTREAM_PW = "upw-5e1f7a9c-Zq"
# A password with a '/' in it (invalid unencoded, but people write it): both
# halves are secrets.
SLASH_PW = "sl4shpw-9f3e/77c1d7ab"
BEARER = "bearer-3b8d2e61-client-tok"
KUBE_TOKEN = "kube-tok-91c4e7d2-secret"
KUBE_WRONG_TOKEN = "kube-wrong-tok-0a6f55e3"
PLUGIN_ENV = "plugin-env-7d21c9ab-secret"
PLUGIN_TOKEN = "plugin-tok-44f0a8e1"
AWS_ACCESS = "AKIDSECRETSTEST"
AWS_SECRET = "aws-secret-2f9e61b7c0d8-key"
AWS_SESSION = "aws-session-8c3b1e52a7f4-tok"
AWS_WRONG_SECRET = "aws-wrong-secret-6e0d9a31"
BROKEN_KEY = "broken-key-material-5a7c3e19"

JSON_HDR = {"Content-Type": "application/json"}
AUTH_HDR = {"Authorization": "Bearer " + BEARER}
V1_PATH = "/v1/models/iris:predict"
V2_PATH = "/v2/models/iris/infer"
SETOSA = [5.1, 3.5, 1.4, 0.2]


def v1(rows):
    return json.dumps({"instances": rows}).encode()


def v2(rows):
    return json.dumps({"inputs": [{"name": "input-0", "shape": [len(rows), 4],
                                   "datatype": "FP32",
                                   "data": [x for r in rows for x in r]}]}).encode()


class Seen:
    """Everything a case collected that a user or a log collector could see."""

    def __init__(self, secrets):
        self.secrets = list(secrets)
        self.texts = []  # (where, text)

    def add(self, where, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.texts.append((where, text or ""))

    def add_resp(self, where, r):
        self.add(where + " body", r.body)
        self.add(where + " headers", "\n".join("%s: %s" % kv for kv in r.raw_headers))

    def add_proc(self, where, p):
        """A subprocess.CompletedProcess (text or bytes)."""
        self.add(where + " stdout", p.stdout)
        self.add(where + " stderr", p.stderr)

    def check(self, min_texts=1):
        h.check(len(self.texts) >= min_texts,
                "collected %d outputs, expected at least %d" % (len(self.texts), min_texts))
        leaks = []
        for where, text in self.texts:
            for s in self.secrets:
                i = text.find(s)
                if i >= 0:
                    leaks.append("%r in %s: ...%s..." % (s, where, text[max(0, i - 120):i + 60]))
        h.check(not leaks, "secrets leaked:\n  " + "\n  ".join(leaks))


def upstream_url(port):
    return "http://%s:%s@127.0.0.1:%d" % (UPSTREAM_USER, UPSTREAM_PW, port)


def routes(batch_delay_us=1000):
    return [
        {"match": V1_PATH.replace("iris", "{model}"), "protocol": "kserve-v1",
         "batch": {"max_size": 8, "max_delay_us": batch_delay_us}},
        {"match": "/v2/models/{model}/infer", "protocol": "oip-v2",
         "batch": {"max_size": 8, "max_delay_us": batch_delay_us}},
        {"match": "/echo", "protocol": "passthrough"},
        {"match": "/m/*", "protocol": "passthrough"},
    ]


DEBUG = {"log": {"level": "debug", "access_log": True}}


def run_gw(args, env_extra=None, timeout=30):
    env = h.child_env(env_extra)
    return subprocess.run([h.gateway_bin()] + args, capture_output=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


def gateway_outputs(seen, gw):
    """Stops the gateway (so its last lines are written) and adds its output."""
    gw.stop()
    seen.add(gw.name + " stderr", gw.stderr_text())
    seen.add(gw.name + " stdout", gw.stdout_text())


def write_config(env, name, doc):
    return env.write(name, json.dumps(doc))


# ---------------------------------------------------------------------------
# serve


@suite.case
def upstream_password_not_logged():
    seen = Seen([UPSTREAM_PW, BEARER])
    with h.Env("secrets-serve") as env:
        model = env.model("--quiet")
        gw = env.gateway(upstream_url(model.port), dict(DEBUG, routes=routes()))
        # The start-up line is there and names the upstream, without the password.
        h.check("infergate serving" in gw.stderr_text(), "no start-up line")
        h.check("127.0.0.1:%d" % model.port in gw.stderr_text(),
                "the start-up line no longer names the upstream host")
        r = gw.admin("GET", "/admin/config")
        h.check_eq(r.status, 200, "GET /admin/config")
        seen.add_resp("GET /admin/config", r)
        h.check_eq(r.json()["upstream"]["url"], "http://<redacted>@127.0.0.1:%d" % model.port,
                   "/admin/config upstream.url")
        # The gateway really uses the URL: requests reach the model.
        r = gw.data("POST", "/echo", body=b"hello", headers=AUTH_HDR)
        h.check_eq((r.status, r.body), (200, b"hello"), "passthrough through a userinfo URL")
        seen.add_resp("POST /echo", r)
        gateway_outputs(seen, gw)
    seen.check(min_texts=5)


@suite.case
def bearer_token_not_logged_or_echoed():
    seen = Seen([UPSTREAM_PW, BEARER])
    with h.Env("secrets-bearer") as env:
        model = env.model("--quiet")
        gw = env.gateway(upstream_url(model.port), dict(DEBUG, routes=routes()))
        hdr = dict(JSON_HDR, **AUTH_HDR)
        cases = [
            ("passthrough 200", "POST", "/echo", b"payload", AUTH_HDR, 200),
            ("V1 batch 200", "POST", V1_PATH, v1([SETOSA]), hdr, 200),
            ("V2 batch 200", "POST", V2_PATH, v2([SETOSA]), hdr, 200),
            ("V1 batch invalid JSON 400", "POST", V1_PATH, b"{\"instances\": [", hdr, 400),
            ("V2 batch bad shape 400", "POST", V2_PATH, b"{\"inputs\": 7}", hdr, 400),
            ("no route 404", "GET", "/nowhere", None, AUTH_HDR, 404),
            ("model 404 through passthrough", "GET", "/m/nothing", None, AUTH_HDR, 404),
        ]
        for what, method, path, body, headers, status in cases:
            r = gw.data(method, path, body=body, headers=headers)
            h.check_eq(r.status, status, "%s: status (body %r)" % (what, r.body[:200]))
            seen.add_resp(what, r)
        # Malformed HTTP carrying the header: 400 from the server itself.
        c = h.RawConn(gw.port)
        try:
            c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + BEARER.encode()
                   + b"\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc")
            r = c.read_response()
        finally:
            c.close()
        h.check(r is not None and r.status == 400, "smuggling attempt: %r" % (r,))
        seen.add_resp("Content-Length with Transfer-Encoding", r)
        # Headers too large: 431, with the token in the oversized block.
        c = h.RawConn(gw.port)
        try:
            c.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + BEARER.encode()
                   + b"\r\nX-Pad: " + b"p" * 20000 + b"\r\n\r\n")
            r = c.read_response()
        finally:
            c.close()
        h.check(r is not None and r.status == 431, "oversized headers: %r" % (r,))
        seen.add_resp("headers too large", r)
        gateway_outputs(seen, gw)
        # The access log did run at this level: the check above saw real lines.
        access = [ln for ln in gw.stderr_text().splitlines() if '"msg":"access"' in ln]
        h.check(len(access) >= len(cases), "expected an access line per request, got %d"
                % len(access))
    seen.check(min_texts=2 * 9 + 2)


@suite.case
def model_down_502_no_secret():
    seen = Seen([UPSTREAM_PW, BEARER])
    with h.Env("secrets-502") as env:
        dead = h.refused_port()
        gw = env.gateway(upstream_url(dead), dict(DEBUG, routes=routes()), wait_ready=False)
        hdr = dict(JSON_HDR, **AUTH_HDR)
        for what, method, path, body, headers in [
                ("passthrough 502", "POST", "/echo", b"x", AUTH_HDR),
                ("V1 batch 502", "POST", V1_PATH, v1([SETOSA]), hdr),
                ("V2 batch 502", "POST", V2_PATH, v2([SETOSA]), hdr)]:
            r = gw.data(method, path, body=body, headers=headers)
            h.check_error(r, 502, "upstream_unavailable", what)
            seen.add_resp(what, r)
        r = gw.admin("GET", "/readyz")
        h.check_eq(r.status, 503, "/readyz with the model down")
        seen.add_resp("/readyz", r)
        gateway_outputs(seen, gw)
    seen.check(min_texts=10)


@suite.case
def check_config_and_url_errors_redacted():
    seen = Seen([UPSTREAM_PW] + SLASH_PW.split("/"))
    with h.Env("secrets-config") as env:
        good = {"upstream": {"url": upstream_url(8081) + "/base"}}
        path = write_config(env, "good.json", good)
        p = run_gw(["check-config", "-c", path])
        h.check_eq(p.returncode, 0, "check-config of a good file (stderr %r)" % p.stderr[-300:])
        h.check_eq(json.loads(p.stdout)["upstream"]["url"],
                   "http://<redacted>@127.0.0.1:8081/base", "check-config upstream.url")
        seen.add_proc("check-config good", p)
        # The same URL from the environment and from a flag.
        p = run_gw(["check-config", "-c", path], {"INFERGATE_UPSTREAM_URL": upstream_url(8082)})
        h.check_eq(p.returncode, 0, "check-config with INFERGATE_UPSTREAM_URL")
        seen.add_proc("check-config env", p)
        # Invalid URLs with a password, each in the file, the env and a flag:
        # bad port, port 0, a query, https, a bad host, a missing scheme, a
        # '/' in the password.
        bad = ["http://%s:%s@127.0.0.1:99999" % (UPSTREAM_USER, UPSTREAM_PW),
               "http://%s:%s@127.0.0.1:0" % (UPSTREAM_USER, UPSTREAM_PW),
               "http://%s:%s@127.0.0.1:8081?q=1" % (UPSTREAM_USER, UPSTREAM_PW),
               "https://%s:%s@127.0.0.1:8081" % (UPSTREAM_USER, UPSTREAM_PW),
               "http://%s:%s@bad_host!:8081" % (UPSTREAM_USER, UPSTREAM_PW),
               "%s:%s@127.0.0.1:8081" % (UPSTREAM_USER, UPSTREAM_PW),
               "http://%s:%s@127.0.0.1:8081" % (UPSTREAM_USER, SLASH_PW)]
        for i, url in enumerate(bad):
            bpath = write_config(env, "bad%d.json" % i, {"upstream": {"url": url}})
            for cmd in ("check-config", "serve"):
                p = run_gw([cmd, "-c", bpath])
                h.check_eq(p.returncode, 2, "%s with upstream.url %d (stderr %r)"
                           % (cmd, i, p.stderr[-200:]))
                h.check(b"upstream.url" in p.stderr, "%s: the message names the key: %r"
                        % (cmd, p.stderr[-300:]))
                seen.add_proc("%s bad url %d" % (cmd, i), p)
            p = run_gw(["check-config", "-c", path], {"INFERGATE_UPSTREAM_URL": url})
            h.check_eq(p.returncode, 2, "INFERGATE_UPSTREAM_URL bad url %d" % i)
            seen.add_proc("env bad url %d" % i, p)
            p = run_gw(["serve", "-c", path, "--upstream", url])
            h.check_eq(p.returncode, 2, "--upstream bad url %d" % i)
            seen.add_proc("--upstream bad url %d" % i, p)
            p = run_gw(["check-config", "-c", path, "--set", "upstream.url=" + url])
            h.check_eq(p.returncode, 2, "--set bad url %d" % i)
            seen.add_proc("--set bad url %d" % i, p)
    seen.check(min_texts=4 + 2 * 5 * len(bad))


@suite.case
def serve_flag_url_not_logged():
    # The URL from --upstream and from INFERGATE_UPSTREAM_URL: the start-up
    # line is the same redacted one.
    seen = Seen([UPSTREAM_PW])
    with h.Env("secrets-flag") as env:
        model = env.model("--quiet")
        for how in ("flag", "env"):
            cfg = dict(h.base_config("http://127.0.0.1:1"), **DEBUG)
            cfg["listen"] = "127.0.0.1:0"
            cfg["admin_listen"] = "127.0.0.1:0"
            path = write_config(env, "flag-%s.json" % how, cfg)
            argv = [h.gateway_bin(), "serve", "-c", path]
            extra = None
            if how == "flag":
                argv += ["--upstream", upstream_url(model.port)]
            else:
                extra = {"INFERGATE_UPSTREAM_URL": upstream_url(model.port)}
            gw = h.Proc("gw-" + how, argv, env.dir, env=extra)
            env.procs.append(gw)
            gw.expected_exit = 0
            h.check(h.wait_for(lambda: "infergate serving" in gw.stderr_text()),
                    "%s: no start-up line; stderr:\n%s" % (how, gw.tail()))
            h.check("127.0.0.1:%d" % model.port in gw.stderr_text(),
                    "%s: the start-up line does not name the upstream" % how)
            gateway_outputs(seen, gw)
    seen.check(min_texts=4)


# ---------------------------------------------------------------------------
# bootstrap


def bootstrap_module():
    import test_bootstrap_e2e as bse  # needs python3-yaml, like the e2e tests
    return bse


class Boot:
    """The bootstrap e2e Env with fakes that want our secrets: the App Mesh
    fake checks SigV4 with AWS_SECRET and AWS_SESSION, the Kubernetes fake
    wants KUBE_TOKEN. Every run's output is kept in env.outputs."""

    def __init__(self, name):
        self.bse = bootstrap_module()
        self.env = self.bse.Env(h.gateway_bin(), SOURCE_ROOT)
        self.name = name

    def __enter__(self):
        e = self.env
        try:
            e.am_port = e.spawn_fake("appmesh_fake.py", "am",
                                     ["--access-key", AWS_ACCESS, "--secret-key", AWS_SECRET,
                                      "--session-token", AWS_SESSION])
            e.kube_port = e.spawn_fake("kube_fake.py", "kube",
                                       ["--token", KUBE_TOKEN, "--rollout-delay-ms", "50"])
            e.kubeconfig = e.write_kubeconfig("http://127.0.0.1:%d" % e.kube_port,
                                              {"token": KUBE_TOKEN})
            e.config = os.path.join(SOURCE_ROOT, "examples", "appmesh.json")
        except BaseException:
            self._close_printing()
            raise
        return self

    def aws_env(self, **over):
        base = {"AWS_ACCESS_KEY_ID": AWS_ACCESS, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                "AWS_SESSION_TOKEN": AWS_SESSION, "AWS_MAX_ATTEMPTS": "2"}
        base.update(over)
        return self.env.env(**base)

    def run(self, *args, env=None, config=None, want=0):
        p = self.env.run(*args, env=env or self.aws_env(), config=config)
        h.check(p.returncode == want, "bootstrap %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s"
                % (" ".join(args), p.returncode, want, p.stdout[-2000:], p.stderr[-2000:]))
        return p

    def check(self, secrets, min_runs):
        seen = Seen(secrets)
        for argv, out, err in self.env.outputs:
            seen.add(" ".join(argv[1:3]) + " stdout", out)
            seen.add(" ".join(argv[1:3]) + " stderr", err)
        seen.check(min_texts=2 * min_runs)

    def _close_printing(self, failed=False):
        if failed:
            for name in sorted(os.listdir(self.env.tmp)):
                if name.endswith(".log"):
                    with open(os.path.join(self.env.tmp, name), "rb") as f:
                        tail = f.read()[-1500:].decode("utf-8", "replace")
                    sys.stdout.write("---- %s:\n%s\n" % (name, tail))
        self.env.close()

    def __exit__(self, etype, exc, tb):
        self._close_printing(failed=etype is not None)
        return False


ALL_BOOT = [KUBE_TOKEN, KUBE_WRONG_TOKEN, PLUGIN_ENV, PLUGIN_TOKEN, AWS_SECRET, AWS_SESSION,
            AWS_WRONG_SECRET, BROKEN_KEY, UPSTREAM_PW]


@suite.case
def bootstrap_token_and_aws_keys_not_printed():
    with Boot("boot-ok") as b:
        b.run("render")
        b.run("render", "-o", "json")
        b.run("plan")
        b.run("apply", "--wait")
        b.run("plan", "-o", "json")
        b.run("apply", "-o", "json")
        b.check(ALL_BOOT, min_runs=6)


@suite.case
def bootstrap_failures_not_printed():
    with Boot("boot-fail") as b:
        e = b.env
        # 403 from App Mesh on the first write.
        e.ctl(e.am_port, "POST", "/_fake/fail", {
            "op": "CreateMesh", "status": 403, "type": "AccessDeniedException",
            "message": "User is not authorized to perform appmesh:CreateMesh", "times": 1})
        p = b.run("apply", want=1)
        h.check("AccessDeniedException" in p.stderr, p.stderr)
        # 500 from App Mesh until the retries run out.
        e.ctl(e.am_port, "POST", "/_fake/fail", {
            "op": "*", "status": 500, "type": "InternalServerErrorException",
            "message": "injected", "times": 10})
        b.run("plan", want=1)
        e.reset()
        # 403 and 500 from Kubernetes.
        e.ctl(e.kube_port, "POST", "/_fake/fail", {
            "method": "PATCH", "path_contains": "deployments", "status": 403, "times": 1})
        p = b.run("apply", want=1)
        h.check("Forbidden" in p.stderr, p.stderr)
        e.ctl(e.kube_port, "POST", "/_fake/fail", {
            "method": "*", "status": 500, "times": 20})
        b.run("apply", want=1)
        e.reset()
        # A wrong Kubernetes token: 401.
        kc = e.write_kubeconfig("http://127.0.0.1:%d" % e.kube_port, {"token": KUBE_WRONG_TOKEN},
                                name="wrong-token")
        p = b.run("plan", env=b.aws_env(KUBECONFIG=kc), want=1)
        h.check("Unauthorized" in p.stderr, p.stderr)
        # A tokenFile holding the wrong token.
        tf = os.path.join(e.tmp, "wrong-token-file")
        with open(tf, "w") as f:
            f.write(KUBE_WRONG_TOKEN + "\n")
        kc = e.write_kubeconfig("http://127.0.0.1:%d" % e.kube_port, {"tokenFile": tf},
                                name="wrong-token-file-kc")
        b.run("apply", env=b.aws_env(KUBECONFIG=kc), want=1)
        # Wrong AWS secret key and wrong session token: the fake's SigV4 check refuses.
        p = b.run("plan", env=b.aws_env(AWS_SECRET_ACCESS_KEY=AWS_WRONG_SECRET), want=1)
        h.check("InvalidSignatureException" in p.stderr or "Unrecognized" in p.stderr
                or "Signature" in p.stderr, p.stderr)
        b.run("apply", env=b.aws_env(AWS_SESSION_TOKEN=AWS_WRONG_SECRET), want=1)
        # The Kubernetes API down (a kubeconfig with the token pointing nowhere).
        kc = e.write_kubeconfig("http://127.0.0.1:%d" % h.refused_port(), {"token": KUBE_TOKEN},
                                name="dead")
        b.run("plan", env=b.aws_env(KUBECONFIG=kc), want=1)
        # A kubeconfig whose token sits in a server URL's user info, and a
        # bootstrap config whose upstream.url carries a password.
        kc = e.write_kubeconfig("http://u:%s@127.0.0.1:%d" % (KUBE_TOKEN, h.refused_port()),
                                {"token": KUBE_TOKEN}, name="userinfo")
        b.run("plan", env=b.aws_env(KUBECONFIG=kc), want=1)
        cfg = json.load(open(e.config))
        cfg["upstream"]["url"] = upstream_url(8081)
        path = os.path.join(e.tmp, "upstream-pw.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        b.run("render", config=path, want=2)
        cfg["upstream"]["url"] = "http://%s:%s@127.0.0.1" % (UPSTREAM_USER, UPSTREAM_PW)
        with open(path, "w") as f:
            json.dump(cfg, f)
        b.run("render", config=path, want=2)
        # KEDA's Prometheus address with credentials in it: refused, since
        # render would print them in the ScaledObject.
        cfg = json.load(open(e.config))
        cfg["bootstrap"]["autoscaling"]["engine"] = "keda"
        cfg["bootstrap"]["autoscaling"]["prometheus_url"] = (
            "http://%s:%s@prometheus.monitoring.svc:9090" % (UPSTREAM_USER, UPSTREAM_PW))
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = b.run("render", config=path, want=2)
        h.check("bootstrap.autoscaling.prometheus_url" in p.stderr, p.stderr)
        b.check(ALL_BOOT, min_runs=13)


def openssl(*args):
    h.check(shutil.which("openssl") is not None, "openssl is needed to make test certificates")
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def pem_body_lines(path):
    """The base64 lines of a PEM file (what a leak of the key would show)."""
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("-----")]


@suite.case
def bootstrap_client_key_not_printed():
    with Boot("boot-mtls") as b:
        e = b.env
        t = e.tmp
        srv_key, srv_crt = os.path.join(t, "srv.key"), os.path.join(t, "srv.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", srv_key,
                "-out", srv_crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1")
        ca_key, ca_crt = os.path.join(t, "ca.key"), os.path.join(t, "ca.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
                "-out", ca_crt, "-days", "2", "-subj", "/CN=secrets-client-ca")
        cl_key, cl_csr, cl_crt = (os.path.join(t, n) for n in ("cl.key", "cl.csr", "cl.pem"))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", cl_key, "-out", cl_csr,
                "-subj", "/O=system:masters/CN=infergate-secrets")
        openssl("x509", "-req", "-in", cl_csr, "-CA", ca_crt, "-CAkey", ca_key,
                "-CAcreateserial", "-out", cl_crt, "-days", "2")
        other_key = os.path.join(t, "other.key")
        openssl("genrsa", "-out", other_key, "2048")
        port = e.spawn_fake("kube_fake.py", "kube-mtls",
                            ["--token", KUBE_TOKEN, "--tls-cert", srv_crt, "--tls-key", srv_key,
                             "--client-ca", ca_crt])
        url = "https://127.0.0.1:%d" % port
        b64 = lambda p: base64.b64encode(open(p, "rb").read()).decode()  # noqa: E731
        cluster = {"certificate-authority-data": b64(srv_crt)}
        key_secrets = pem_body_lines(cl_key) + pem_body_lines(other_key)
        key_secrets += [b64(cl_key)[40:100], b64(other_key)[40:100]]
        h.check(len(key_secrets) > 20, "the key has %d base64 lines" % len(key_secrets))
        mesh_off = mesh_none_config(e)
        noaws = b.aws_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                          AWS_SESSION_TOKEN=None, AWS_ENDPOINT_URL_APPMESH=None)
        runs = 0
        # client-key-data and client-key files: plan and apply work.
        kc = e.write_kubeconfig(url, {"client-certificate-data": b64(cl_crt),
                                      "client-key-data": b64(cl_key)}, cluster, name="mtls-data")
        b.run("plan", env=dict(noaws, KUBECONFIG=kc), config=mesh_off)
        b.run("apply", env=dict(noaws, KUBECONFIG=kc), config=mesh_off)
        kc = e.write_kubeconfig(url, {"client-certificate": cl_crt, "client-key": cl_key},
                                cluster, name="mtls-files")
        b.run("plan", "-o", "json", env=dict(noaws, KUBECONFIG=kc), config=mesh_off)
        runs += 3
        # A key that does not match the certificate, as data and as a file.
        kc = e.write_kubeconfig(url, {"client-certificate-data": b64(cl_crt),
                                      "client-key-data": b64(other_key)}, cluster,
                                name="mtls-mismatch")
        b.run("plan", env=dict(noaws, KUBECONFIG=kc), config=mesh_off, want=1)
        kc = e.write_kubeconfig(url, {"client-certificate": cl_crt, "client-key": other_key},
                                cluster, name="mtls-mismatch-files")
        b.run("apply", env=dict(noaws, KUBECONFIG=kc), config=mesh_off, want=1)
        # Key material that is no PEM at all, and client-key-data that is not base64.
        broken = os.path.join(t, "broken.key")
        with open(broken, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % BROKEN_KEY)
        kc = e.write_kubeconfig(url, {"client-certificate": cl_crt, "client-key": broken},
                                cluster, name="mtls-broken")
        b.run("plan", env=dict(noaws, KUBECONFIG=kc), config=mesh_off, want=1)
        kc = e.write_kubeconfig(url, {"client-certificate-data": b64(cl_crt),
                                      "client-key-data": "!!" + BROKEN_KEY + "!!"}, cluster,
                                name="mtls-not-base64")
        p = b.env.run("plan", env=dict(noaws, KUBECONFIG=kc), config=mesh_off)
        h.check(p.returncode in (1, 2), "client-key-data not base64: exit %d" % p.returncode)
        runs += 4
        b.check(ALL_BOOT + key_secrets, min_runs=runs)


def mesh_none_config(e):
    cfg = json.load(open(e.config))
    cfg["bootstrap"]["mesh"] = {"provider": "none"}
    path = os.path.join(e.tmp, "mesh-none.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def write_plugin(e, name, body):
    path = os.path.join(e.tmp, name)
    with open(path, "w") as f:
        f.write("#!/usr/bin/python3\nimport json, os, sys\n" + body)
    os.chmod(path, 0o755)
    return path


@suite.case
def bootstrap_exec_plugin_env_not_printed():
    with Boot("boot-exec") as b:
        e = b.env
        ok_body = ("assert os.environ['PLUGIN_SECRET'] == %r\n"
                   "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',"
                   " 'kind': 'ExecCredential', 'status': {'token': %r}}))\n"
                   % (PLUGIN_ENV, KUBE_TOKEN))
        plugins = {
            "ok": (write_plugin(e, "plugin-ok", ok_body), 0),
            # Exits non-zero (its own stderr stays quiet: what a plugin prints
            # is the plugin's business).
            "fails": (write_plugin(e, "plugin-fails", "sys.exit(3)\n"), 1),
            # Prints something that is not an ExecCredential but holds secrets.
            "garbage": (write_plugin(e, "plugin-garbage",
                                     "print('not json ' + os.environ['PLUGIN_SECRET'] + ' %s')\n"
                                     % PLUGIN_TOKEN), 1),
            # A well-formed credential with a token the API refuses.
            "wrong": (write_plugin(e, "plugin-wrong",
                                   "print(json.dumps({'kind': 'ExecCredential', 'apiVersion':"
                                   " 'client.authentication.k8s.io/v1beta1', 'status':"
                                   " {'token': %r}}))\n" % PLUGIN_TOKEN), 1),
        }
        runs = 0
        for name, (plugin, want) in plugins.items():
            kc = e.write_kubeconfig(
                "http://127.0.0.1:%d" % e.kube_port,
                {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                          "command": plugin, "args": ["--secret-arg-free"],
                          "env": [{"name": "PLUGIN_SECRET", "value": PLUGIN_ENV}]}},
                name="exec-" + name)
            b.run("plan", env=b.aws_env(KUBECONFIG=kc), want=want)
            runs += 1
            if want == 0:
                b.run("apply", env=b.aws_env(KUBECONFIG=kc))
                runs += 1
        b.check(ALL_BOOT, min_runs=runs)


if __name__ == "__main__":
    suite.run()
