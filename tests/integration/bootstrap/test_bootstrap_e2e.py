#!/usr/bin/python3
"""End-to-end tests of `infergate bootstrap` against the App Mesh and Kubernetes fakes.

The fakes (tests/fakes/) enforce the real contracts: SigV4 signatures are
recomputed with botocore, request bodies are validated against botocore's App
Mesh service model, and the Kubernetes fake implements server-side apply with
managed fields, dry-run and schema checks. Each test starts from empty fakes
(POST /_fake/reset), runs the real binary, and checks the fakes' state and
request logs. A tiny STS fake (sts_fake.py beside this file) stands in for
AssumeRoleWithWebIdentity.

usage: test_bootstrap_e2e.py --infergate PATH --source-root DIR [-k NAME]
Every child process is killed by pid at the end, even on failure.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import yaml

ACCESS_KEY = "AKIDFAKE"
SECRET_KEY = "SECRETFAKE"
KUBE_TOKEN = "kube-token-e2e-7f3a"
RUN_TIMEOUT = 120

MESH_CREATES = ["CreateMesh", "CreateVirtualNode", "CreateVirtualRouter", "CreateRoute",
                "CreateVirtualService"]
KUBE_ORDER = ["/api/v1/namespaces/default/serviceaccounts/ml-service",
              "/api/v1/namespaces/default/configmaps/ml-service-config",
              "/apis/apps/v1/namespaces/default/deployments/ml-service",
              "/apis/policy/v1/namespaces/default/poddisruptionbudgets/ml-service",
              "/api/v1/namespaces/default/services/ml-service",
              "/api/v1/namespaces/default/services/ml-service-pods",
              "/api/v1/namespaces/monitoring/configmaps/ml-service-adapter-rules",
              "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/ml-service"]
KUBE_KINDS = ["ServiceAccount", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "Service",
              "ConfigMap", "HorizontalPodAutoscaler"]
TOTAL = len(MESH_CREATES) + len(KUBE_ORDER)


class Env:
    """The fakes, a kubeconfig and the paths every test uses."""

    def __init__(self, infergate, root):
        self.infergate = infergate
        self.root = root
        self.tmp = tempfile.mkdtemp(prefix="ig-bootstrap-e2e-")
        self.procs = []
        self.outputs = []  # every stdout/stderr, checked for leaked secrets

    def start(self):
        self.am_port = self.spawn_fake("appmesh_fake.py", "am", [])
        self.kube_port = self.spawn_fake("kube_fake.py", "kube",
                                         ["--token", KUBE_TOKEN, "--rollout-delay-ms", "100"])
        self.kubeconfig = self.write_kubeconfig("http://127.0.0.1:%d" % self.kube_port,
                                                {"token": KUBE_TOKEN})
        self.config = os.path.join(self.root, "examples", "appmesh.json")

    def spawn(self, argv, name):
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def spawn_fake(self, script, name, extra):
        port_file = os.path.join(self.tmp, name + ".port")
        p = self.spawn(["/usr/bin/python3", os.path.join(self.root, "tests", "fakes", script),
                        "--port-file", port_file] + extra, name)
        return self.wait_port(p, port_file, name)

    def wait_port(self, p, port_file, name):
        for _ in range(300):  # bounded: at most ~30 s
            if p.poll() is not None:
                raise RuntimeError("%s exited early: see %s.log" % (name, name))
            try:
                with open(port_file) as f:
                    txt = f.read()
                if txt.endswith("\n"):
                    return int(txt)
            except FileNotFoundError:
                pass
            time.sleep(0.1)
        raise RuntimeError("%s never wrote its port" % name)

    def write_kubeconfig(self, server, user, cluster_extra=None, name="kubeconfig"):
        cluster = {"server": server}
        cluster.update(cluster_extra or {})
        kc = {"apiVersion": "v1", "kind": "Config", "current-context": "e2e",
              "clusters": [{"name": "fake", "cluster": cluster}],
              "contexts": [{"name": "e2e", "context": {"cluster": "fake", "user": "u"}}],
              "users": [{"name": "u", "user": user}]}
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            yaml.safe_dump(kc, f)
        return path

    def env(self, **over):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp,
             "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
             "AWS_REGION": "us-west-2",
             "AWS_ENDPOINT_URL_APPMESH": "http://127.0.0.1:%d" % self.am_port,
             "AWS_MAX_ATTEMPTS": "4",
             "KUBECONFIG": self.kubeconfig}
        for k, v in over.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def run(self, *args, env=None, config=None):
        argv = [self.infergate, "bootstrap"] + list(args) + ["-c", config or self.config]
        p = subprocess.run(argv, env=env or self.env(), capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        self.outputs.append((argv, p.stdout, p.stderr))
        return p

    # fake control endpoints
    def ctl(self, port, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def reset(self):
        self.ctl(self.am_port, "POST", "/_fake/reset")
        self.ctl(self.kube_port, "POST", "/_fake/reset")

    def am_requests(self):
        return self.ctl(self.am_port, "GET", "/_fake/requests")

    def kube_requests(self):
        return self.ctl(self.kube_port, "GET", "/_fake/requests")

    def am_state(self):
        return self.ctl(self.am_port, "GET", "/_fake/state")

    def kube_objects(self):
        st = self.ctl(self.kube_port, "GET", "/_fake/state")
        return {k: v for k, v in st.items() if v.get("kind") != "Namespace"}

    def appmesh_client(self):
        import botocore.session
        s = botocore.session.get_session()
        return s.create_client("appmesh", region_name="us-west-2",
                               endpoint_url="http://127.0.0.1:%d" % self.am_port,
                               aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def ok(p, what):
    check(p.returncode == 0, "%s: exit %d\nstdout:\n%s\nstderr:\n%s"
          % (what, p.returncode, p.stdout[-3000:], p.stderr[-3000:]))


def is_write_kube(r):
    return r["method"] in ("POST", "PUT", "DELETE") or (
        r["method"] == "PATCH" and "dryRun=All" not in (r.get("query") or ""))


def is_write_am(r):
    return r["method"] in ("PUT", "POST", "DELETE")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- tests

def test_render_is_offline_deterministic_and_valid(env):
    env.reset()
    a = env.run("render", "-o", "json")
    ok(a, "render json")
    b = env.run("render", "-o", "json")
    check(a.stdout == b.stdout, "render is not deterministic")
    check(env.am_requests() == [] and env.kube_requests() == [], "render touched the network")
    doc = json.loads(a.stdout)
    kinds = [(r["backend"], r["kind"]) for r in doc["resources"]]
    check(kinds == [("appmesh", "Mesh"), ("appmesh", "VirtualNode"), ("appmesh", "VirtualRouter"),
                    ("appmesh", "Route"), ("appmesh", "VirtualService")]
          + [("kubernetes", k) for k in KUBE_KINDS], "order: %s" % kinds)
    out = doc["outputs"]
    check(out == {"mesh": "ml-mesh", "virtual_node": "ml-service",
                  "virtual_router": "ml-service-router",
                  "virtual_service": "ml-service.default.svc.cluster.local",
                  "ml_service_endpoint": "http://ml-service.default.svc.cluster.local:8080",
                  "deployment": "default/ml-service",
                  "autoscaler": "default/HorizontalPodAutoscaler/ml-service"}, "outputs %s" % out)
    # The YAML rendering is the same objects.
    y = env.run("render")
    ok(y, "render yaml")
    docs = [d for d in yaml.safe_load_all(y.stdout) if d is not None]
    check(docs[:-1] == [r["body"] for r in doc["resources"]], "YAML and JSON renders differ")
    # Shapes an expert checks.
    res = {r["kind"] + "/" + r["name"]: r["body"] for r in doc["resources"]}
    dep = res["Deployment/ml-service"]
    pod = dep["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["containers"]]
    check(names == ["model", "infergate", "envoy"], "containers %s" % names)
    check([c["name"] for c in pod["initContainers"]] == ["proxyinit"], "initContainers")
    model = pod["containers"][0]
    check("/admin/drain?wait=1" in " ".join(model["lifecycle"]["preStop"]["exec"]["command"]),
          "model preStop does not drain")
    check(pod["terminationGracePeriodSeconds"] > 28, "grace period not above the drain")
    gw = pod["containers"][1]
    check(gw["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}, "readiness")
    check(gw["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}, "liveness")
    check("replicas" not in dep["spec"], "the Deployment must leave replicas to the HPA")
    env_names = {e["name"]: e["value"] for e in pod["containers"][2]["env"]}
    check(env_names["APPMESH_RESOURCE_ARN"] == "mesh/ml-mesh/virtualNode/ml-service", "envoy ARN")
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    check(ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9090",
          "scrape annotations")
    hpa = res["HorizontalPodAutoscaler/ml-service"]
    check(hpa["apiVersion"] == "autoscaling/v2", "HPA apiVersion")
    metrics = [(m["type"], (m.get("pods") or m.get("resource"))["metric"]["name"]
                if m["type"] == "Pods" else m["resource"]["name"]) for m in hpa["spec"]["metrics"]]
    check(metrics == [("Pods", "infergate_load_factor"), ("Pods", "infergate_queue_depth"),
                      ("Resource", "cpu")], "HPA metrics %s" % metrics)
    check(hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "700m", "load target")
    check("behavior" in hpa["spec"], "HPA behavior")
    cfg = json.loads(res["ConfigMap/ml-service-config"]["data"]["config.json"])
    check("bootstrap" not in cfg and cfg["listen"] == "0.0.0.0:8080", "ConfigMap config")
    vn = res["VirtualNode/ml-service"]["spec"]
    check(vn["serviceDiscovery"]["dns"] == {"hostname": "ml-service-pods.default.svc.cluster.local",
                                            "responseType": "ENDPOINTS"}, "DNS discovery %s" % vn)
    check(vn["listeners"][0]["healthCheck"]["path"] == "/v2/health/ready", "health check")
    vs = res["VirtualService/ml-service.default.svc.cluster.local"]["spec"]
    check(vs["provider"]["virtualRouter"]["virtualRouterName"] == "ml-service-router", "provider")
    check_review_fixes(res)
    # Every Kubernetes object passes the Kubernetes schemas.
    validate(env, [r["body"] for r in doc["resources"] if r["backend"] == "kubernetes"])


def check_review_fixes(res):
    """What the expert review of the rendered stack fixed (docs/bootstrap.md)."""
    sa = res["ServiceAccount/ml-service"]
    check(sa["apiVersion"] == "v1" and sa["metadata"]["namespace"] == "default"
          and sa["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "infergate"
          and sa["metadata"]["annotations"] == {
              "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/ml-service-appmesh-envoy"},
          "ServiceAccount with the IRSA role: %s" % sa)
    pod = res["Deployment/ml-service"]["spec"]["template"]["spec"]
    check(pod["serviceAccountName"] == "ml-service" and pod["automountServiceAccountToken"] is False,
          "pod service account")
    check([t["topologyKey"] for t in pod["topologySpreadConstraints"]]
          == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
          and all(t["whenUnsatisfiable"] == "ScheduleAnyway" for t in pod["topologySpreadConstraints"]),
          "topology spread")
    check(pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", "seccomp")
    for c in pod["containers"]:
        if c["name"] in ("model", "envoy"):
            cmd = c["lifecycle"]["preStop"]["exec"]["command"][2]
            check("/admin/drain?wait=1" in cmd and "|| sleep" not in cmd,
                  "%s preStop waits for the drain, never sleeps it out after a failed call: %s"
                  % (c["name"], cmd))
    envoy = pod["containers"][2]
    check(envoy["securityContext"]["allowPrivilegeEscalation"] is False, "envoy securityContext")
    pdb = res["PodDisruptionBudget/ml-service"]
    check(pdb["apiVersion"] == "policy/v1" and pdb["spec"]["maxUnavailable"] == 1
          and pdb["spec"]["selector"] == res["Deployment/ml-service"]["spec"]["selector"],
          "PDB %s" % pdb)
    headless = res["Service/ml-service-pods"]["spec"]
    check(headless["clusterIP"] == "None"
          and headless["selector"] == res["Service/ml-service"]["spec"]["selector"], "headless Service")
    route = res["Route/ml-service-route"]["spec"]["httpRoute"]
    check(route["retryPolicy"] == {"tcpRetryEvents": ["connection-error"], "maxRetries": 2,
                                   "perRetryTimeout": route["timeout"]["perRequest"]},
          "route retries connection errors only: %s" % route.get("retryPolicy"))
    check(route["timeout"]["idle"]["value"] >= route["timeout"]["perRequest"]["value"],
          "stream idle timeout shorter than a request")


def validate(env, objs):
    vdir = os.path.join(env.root, "tests", "k8s-validate")
    check(shutil.which("node") is not None, "node is missing (scripts/install-deps)")
    check(os.path.isdir(os.path.join(vdir, "node_modules")),
          "tests/k8s-validate/node_modules missing: run npm ci --prefix tests/k8s-validate")
    path = os.path.join(env.tmp, "objs.json")
    with open(path, "w") as f:
        json.dump(objs, f)
    p = subprocess.run(["node", os.path.join(vdir, "validate.mjs"), path], capture_output=True,
                       text=True, timeout=RUN_TIMEOUT)
    check(p.returncode == 0, "schema validation failed:\n%s%s" % (p.stdout, p.stderr))


def test_keda_without_mesh(env):
    env.reset()
    cfg = json.load(open(env.config))
    cfg["bootstrap"]["autoscaling"]["engine"] = "keda"
    cfg["bootstrap"]["mesh"] = {"provider": "none"}
    path = os.path.join(env.tmp, "keda.json")
    json.dump(cfg, open(path, "w"))
    r = env.run("render", "-o", "json", config=path)
    ok(r, "render keda")
    doc = json.loads(r.stdout)
    kinds = [r["kind"] for r in doc["resources"]]
    check(kinds == ["ServiceAccount", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service",
                    "ScaledObject"], "kinds %s" % kinds)
    pod = doc["resources"][2]["body"]["spec"]["template"]["spec"]
    check([c["name"] for c in pod["containers"]] == ["model", "infergate"], "no proxy wanted")
    check(doc["outputs"]["mesh"] is None, "no mesh output")
    validate(env, [r["body"] for r in doc["resources"]])
    # Kubernetes only: no AWS credentials needed at all.
    e = env.env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_ENDPOINT_URL_APPMESH=None)
    ok(env.run("apply", "--wait", env=e, config=path), "apply keda")
    objs = env.kube_objects()
    check(any(k.startswith("keda.sh/v1alpha1/ScaledObject/default/ml-service") for k in objs),
          "ScaledObject missing: %s" % list(objs))
    check(env.am_requests() == [], "provider none called App Mesh")
    ok(env.run("destroy", env=e, config=path), "destroy keda")
    check(env.kube_objects() == {}, "destroy left %s" % list(env.kube_objects()))


def test_existing_service_account(env):
    # create_service_account: false uses a ServiceAccount the platform team
    # made (with its own IRSA annotation): never written, never deleted.
    env.reset()
    cfg = json.load(open(env.config))
    cfg["bootstrap"]["mesh"] = {"provider": "none"}
    cfg["bootstrap"]["kubernetes"]["service_account"] = "model-runner"
    cfg["bootstrap"]["kubernetes"]["create_service_account"] = False
    path = os.path.join(env.tmp, "own-sa.json")
    json.dump(cfg, open(path, "w"))
    sa = {"apiVersion": "v1", "kind": "ServiceAccount",
          "metadata": {"name": "model-runner", "namespace": "default",
                       "annotations": {"eks.amazonaws.com/role-arn":
                                       "arn:aws:iam::111122223333:role/theirs"}}}
    req = urllib.request.Request(
        "http://127.0.0.1:%d/api/v1/namespaces/default/serviceaccounts/model-runner"
        "?fieldManager=platform-team" % env.kube_port, data=json.dumps(sa).encode(),
        method="PATCH", headers={"Content-Type": "application/apply-patch+yaml",
                                 "Authorization": "Bearer " + KUBE_TOKEN})
    urllib.request.urlopen(req, timeout=10).read()
    before = env.kube_objects()["v1/ServiceAccount/default/model-runner"]
    r = env.run("render", "-o", "json", config=path)
    ok(r, "render")
    doc = json.loads(r.stdout)
    check("ServiceAccount" not in [x["kind"] for x in doc["resources"]],
          "a ServiceAccount was rendered with create_service_account false")
    e = env.env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_ENDPOINT_URL_APPMESH=None)
    n_k = len(env.kube_requests())
    ok(env.run("apply", "--wait", env=e, config=path), "apply with an existing ServiceAccount")
    writes = [x["path"] for x in env.kube_requests()[n_k:] if is_write_kube(x)]
    check(not [w for w in writes if "/serviceaccounts" in w], "wrote the ServiceAccount: %s" % writes)
    objs = env.kube_objects()
    dep = objs["apps/v1/Deployment/default/ml-service"]
    check(dep["spec"]["template"]["spec"].get("serviceAccountName") == "model-runner",
          "pods run as %r" % dep["spec"]["template"]["spec"].get("serviceAccountName"))
    check(objs["v1/ServiceAccount/default/model-runner"] == before, "the ServiceAccount changed")
    ok(env.run("destroy", env=e, config=path), "destroy")
    left = list(env.kube_objects())
    check(left == ["v1/ServiceAccount/default/model-runner"], "Kubernetes left %s" % left)


def test_apply_creates_in_order_then_is_idempotent(env):
    env.reset()
    p = env.run("apply", "--wait", "-o", "json")
    ok(p, "first apply")
    doc = json.loads(p.stdout)
    check(doc["summary"] == {"created": TOTAL, "updated": 0, "unchanged": 0}, doc["summary"])
    check(doc["outputs"]["ml_service_endpoint"] ==
          "http://ml-service.default.svc.cluster.local:8080", "outputs")
    creates = [r["op"] for r in env.am_requests() if r["op"].startswith("Create")]
    check(creates == MESH_CREATES, "App Mesh create order %s" % creates)
    writes = [r["path"] for r in env.kube_requests() if is_write_kube(r)]
    check(writes == KUBE_ORDER, "Kubernetes write order %s" % writes)
    for r in env.kube_requests():
        if r["method"] == "PATCH":
            check(r["content_type"] == "application/apply-patch+yaml" and
                  "fieldManager=infergate" in r["query"], "not a server-side apply: %s" % r)
    st = env.am_state()["meshes"]["ml-mesh"]
    check(st["tags"] == [{"key": "managed-by", "value": "infergate"}], "mesh tags %s" % st["tags"])
    n_am, n_k = len(env.am_requests()), len(env.kube_requests())
    p = env.run("apply", "-o", "json")
    ok(p, "second apply")
    check(json.loads(p.stdout)["summary"] == {"created": 0, "updated": 0, "unchanged": TOTAL},
          p.stdout[-500:])
    am_new = env.am_requests()[n_am:]
    k_new = env.kube_requests()[n_k:]
    check(am_new and not [r for r in am_new if is_write_am(r)],
          "second apply wrote to App Mesh: %s" % [r for r in am_new if is_write_am(r)])
    check(k_new and not [r for r in k_new if is_write_kube(r)],
          "second apply wrote to Kubernetes: %s" % [r for r in k_new if is_write_kube(r)])


def test_plan_shows_exactly_a_manual_change(env):
    env.reset()
    ok(env.run("apply"), "apply")
    env.ctl(env.kube_port, "POST", "/_fake/edit", {
        "path": "/apis/apps/v1/namespaces/default/deployments/ml-service",
        "merge": {"spec": {"template": {"metadata": {"annotations": {
            "prometheus.io/port": "9999"}}}}}})
    am = env.appmesh_client()
    spec = am.describe_route(meshName="ml-mesh", virtualRouterName="ml-service-router",
                             routeName="ml-service-route")["route"]["spec"]
    spec["httpRoute"]["match"]["prefix"] = "/v2"
    am.update_route(meshName="ml-mesh", virtualRouterName="ml-service-router",
                    routeName="ml-service-route", spec=spec)
    n_am, n_k = len(env.am_requests()), len(env.kube_requests())
    p = env.run("plan", "-o", "json")
    ok(p, "plan")
    doc = json.loads(p.stdout)
    changed = {(r["kind"], r["name"]): r["diff"] for r in doc["resources"]
               if r["action"] != "unchanged"}
    check(changed == {
        ("Route", "ml-service-route"): ['spec.httpRoute.match.prefix: "/v2" -> "/"'],
        ("Deployment", "ml-service"):
            ['spec.template.metadata.annotations.prometheus.io/port: "9999" -> "9090"'],
    }, "plan changes: %r" % (changed,))
    check(doc["summary"] == {"to create": 0, "to update": 2, "unchanged": TOTAL - 2}, doc["summary"])
    check(not [r for r in env.am_requests()[n_am:] if is_write_am(r)], "plan wrote to App Mesh")
    check(not [r for r in env.kube_requests()[n_k:] if is_write_kube(r)], "plan wrote to k8s")
    text = env.run("plan")
    ok(text, "plan text")
    check("update" in text.stdout and 'prometheus.io/port: "9999" -> "9090"' in text.stdout,
          text.stdout)
    # apply puts it back, and then nothing differs.
    ok(env.run("apply"), "apply after change")
    p = env.run("plan", "-o", "json")
    check(json.loads(p.stdout)["summary"]["to update"] == 0, "still differs after apply")


def test_destroy_leaves_fakes_empty_and_spares_unmanaged(env):
    env.reset()
    ok(env.run("apply"), "apply")
    # An object someone else owns under a name we would use: never deleted.
    env.ctl(env.kube_port, "POST", "/_fake/reset")
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ml-service-config", "namespace": "default"},
            "data": {"k": "v"}}
    req = urllib.request.Request(
        "http://127.0.0.1:%d/api/v1/namespaces/default/configmaps/ml-service-config"
        "?fieldManager=someone" % env.kube_port, data=json.dumps(body).encode(), method="PATCH",
        headers={"Content-Type": "application/apply-patch+yaml",
                 "Authorization": "Bearer " + KUBE_TOKEN})
    urllib.request.urlopen(req, timeout=10).read()
    p = env.run("destroy", "-o", "json")
    ok(p, "destroy")
    doc = json.loads(p.stdout)
    order = [(r["kind"], r["result"]) for r in doc["resources"]]
    check(order[-5:] == [("VirtualService", "deleted"), ("Route", "deleted"),
                         ("VirtualRouter", "deleted"), ("VirtualNode", "deleted"),
                         ("Mesh", "deleted")], "App Mesh destroy order %s" % order)
    check(("ConfigMap", "skipped") in order, "unmanaged ConfigMap not skipped: %s" % order)
    check(env.am_state() == {"meshes": {}}, "App Mesh not empty: %s" % env.am_state())
    left = list(env.kube_objects())
    check(left == ["v1/ConfigMap/default/ml-service-config"], "Kubernetes left %s" % left)
    p = env.run("destroy")
    ok(p, "second destroy")
    check("0 deleted" in p.stdout, p.stdout)


def test_403_at_each_step_stops_and_rerun_continues(env):
    steps = [("am", op, kind) for op, kind in zip(MESH_CREATES, [
        "Mesh", "VirtualNode", "VirtualRouter", "Route", "VirtualService"])]
    steps += [("kube", path, kind) for path, kind in zip(KUBE_ORDER, KUBE_KINDS)]
    for i, (where, what, kind) in enumerate(steps):
        env.reset()
        if where == "am":
            env.ctl(env.am_port, "POST", "/_fake/fail", {
                "op": what, "status": 403, "type": "AccessDeniedException",
                "message": "User is not authorized to perform appmesh:%s" % what, "times": 1})
        else:
            env.ctl(env.kube_port, "POST", "/_fake/fail", {
                "method": "PATCH", "path_contains": what.rsplit("/", 2)[-2] + "/" +
                what.rsplit("/", 1)[-1], "status": 403, "times": 1})
        p = env.run("apply")
        check(p.returncode == 1, "step %d (%s): want exit 1, got %d" % (i, what, p.returncode))
        want = ("AccessDeniedException" if where == "am" else "Forbidden")
        check(want in p.stderr and ("failed at %s " % kind) in p.stderr,
              "step %d: %s" % (i, p.stderr))
        check(("already done: %d created" % i) in p.stderr and "Re-run" in p.stderr,
              "step %d: %s" % (i, p.stderr))
        check(len(env.kube_objects()) == max(0, i - 5), "step %d: Kubernetes objects %s"
              % (i, list(env.kube_objects())))
        p = env.run("apply", "-o", "json")
        ok(p, "re-run after step %d" % i)
        check(json.loads(p.stdout)["summary"] == {"created": TOTAL - i, "updated": 0,
                                                  "unchanged": i}, p.stdout[-400:])


def test_destroy_failure_then_rerun(env):
    env.reset()
    ok(env.run("apply"), "apply")
    env.ctl(env.am_port, "POST", "/_fake/fail", {
        "op": "DeleteVirtualRouter", "status": 403, "type": "AccessDeniedException",
        "message": "not allowed to delete routers", "times": 1})
    p = env.run("destroy")
    check(p.returncode == 1 and "AccessDeniedException" in p.stderr
          and "not allowed to delete routers" in p.stderr, p.stderr)
    check("already done: %d deleted" % (len(KUBE_ORDER) + 2) in p.stderr, p.stderr)
    p = env.run("destroy", "-o", "json")
    ok(p, "destroy re-run")
    check(json.loads(p.stdout)["summary"] == {"deleted": 3, "absent": TOTAL - 3, "skipped": 0},
          p.stdout[-300:])
    check(env.am_state() == {"meshes": {}} and env.kube_objects() == {}, "not empty")


def test_throttling_then_success(env):
    env.reset()
    env.ctl(env.am_port, "POST", "/_fake/fail", {
        "op": "*", "status": 429, "type": "TooManyRequestsException", "message": "slow down",
        "times": 2})
    env.ctl(env.kube_port, "POST", "/_fake/fail", {
        "method": "PATCH", "path_contains": "deployments", "status": 500, "times": 2})
    p = env.run("apply")
    ok(p, "apply through throttling")
    statuses = [r["status"] for r in env.am_requests()]
    check(statuses[:3] == [429, 429, 404], "App Mesh retries: %s" % statuses[:5])
    dep = [r["status"] for r in env.kube_requests()
           if r["method"] == "PATCH" and "deployments" in r["path"]]
    check(dep == [500, 500, 201], "Kubernetes retries: %s" % dep)


def test_conflicts_are_reported(env):
    env.reset()
    env.ctl(env.am_port, "POST", "/_fake/fail", {
        "op": "CreateRoute", "status": 409, "type": "ConflictException",
        "message": "a route with that name is being created", "times": 1})
    p = env.run("apply")
    check(p.returncode == 1 and "ConflictException" in p.stderr, p.stderr)
    check("3 created" in p.stderr, p.stderr)
    env.ctl(env.kube_port, "POST", "/_fake/fail", {
        "method": "PATCH", "path_contains": "services", "status": 409, "times": 1})
    p = env.run("apply")
    check(p.returncode == 1 and "Conflict" in p.stderr and "Service" in p.stderr, p.stderr)
    ok(env.run("apply"), "third apply completes")
    check(len(env.kube_objects()) == len(KUBE_ORDER), "objects %s" % list(env.kube_objects()))


def test_network_down(env):
    env.reset()
    dead = free_port()
    e = env.env(AWS_ENDPOINT_URL_APPMESH="http://127.0.0.1:%d" % dead, AWS_MAX_ATTEMPTS="2")
    p = env.run("apply", env=e)
    check(p.returncode == 1, "exit %d" % p.returncode)
    check("App Mesh unreachable after 2 attempts" in p.stderr and str(dead) in p.stderr, p.stderr)
    kc = env.write_kubeconfig("http://127.0.0.1:%d" % dead, {"token": KUBE_TOKEN}, name="dead")
    p = env.run("apply", env=env.env(KUBECONFIG=kc, AWS_MAX_ATTEMPTS="2"))
    check(p.returncode == 1 and "Kubernetes API unreachable" in p.stderr, p.stderr)
    check("5 unchanged" in p.stderr or "5 created" in p.stderr, p.stderr)


def test_credentials(env):
    env.reset()
    # Wrong keys: the fake's SigV4 check refuses them, and the type is shown.
    p = env.run("plan", env=env.env(AWS_SECRET_ACCESS_KEY="not-the-secret"))
    check(p.returncode == 1 and "InvalidSignatureException" in p.stderr, p.stderr)
    # Shared credentials file with a profile.
    cred = os.path.join(env.tmp, "credentials")
    with open(cred, "w") as f:
        f.write("[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = nope\n\n"
                "[ml]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                % (ACCESS_KEY, SECRET_KEY))
    e = env.env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="ml")
    ok(env.run("plan", env=e), "plan with profile")
    e["AWS_PROFILE"] = "missing"
    p = env.run("plan", env=e)
    check(p.returncode == 1 and "no profile [missing]" in p.stderr, p.stderr)
    # Web identity through the STS fake.
    sts_port_file = os.path.join(env.tmp, "sts.port")
    sts_log = os.path.join(env.tmp, "sts.requests")
    sp = env.spawn(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "sts_fake.py"),
                    "--port-file", sts_port_file, "--log", sts_log,
                    "--role-arn", "arn:aws:iam::111122223333:role/ml",
                    "--token", "web-id-token-e2e", "--access-key", ACCESS_KEY,
                    "--secret-key", SECRET_KEY, "--session-token", "sess-e2e"], "sts")
    sts_port = env.wait_port(sp, sts_port_file, "sts")
    tok = os.path.join(env.tmp, "web-token")
    with open(tok, "w") as f:
        f.write("web-id-token-e2e\n")
    e = env.env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                AWS_WEB_IDENTITY_TOKEN_FILE=tok, AWS_ROLE_ARN="arn:aws:iam::111122223333:role/ml",
                AWS_ENDPOINT_URL_STS="http://127.0.0.1:%d" % sts_port)
    ok(env.run("plan", env=e), "plan with web identity")
    calls = [json.loads(l) for l in open(sts_log)]
    check(len(calls) == 1 and calls[0]["Action"] == "AssumeRoleWithWebIdentity", calls)
    check(calls[0]["RoleArn"] == "arn:aws:iam::111122223333:role/ml" and calls[0]["token_ok"],
          calls)
    e["AWS_ROLE_ARN"] = "arn:aws:iam::111122223333:role/other"
    p = env.run("plan", env=e)
    check(p.returncode == 1 and "AccessDenied" in p.stderr, p.stderr)


def test_kubeconfig_variants(env):
    env.reset()
    # exec credential plugin
    plugin = os.path.join(env.tmp, "get-token")
    with open(plugin, "w") as f:
        f.write("#!/usr/bin/python3\nimport json, os\n"
                "assert os.environ['EXTRA'] == 'yes'\n"
                "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',"
                " 'kind': 'ExecCredential', 'status': {'token': %r}}))\n" % KUBE_TOKEN)
    os.chmod(plugin, 0o755)
    kc = env.write_kubeconfig("http://127.0.0.1:%d" % env.kube_port,
                              {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                        "command": plugin, "args": [],
                                        "env": [{"name": "EXTRA", "value": "yes"}]}},
                              name="exec")
    ok(env.run("plan", env=env.env(KUBECONFIG=kc)), "plan with exec plugin")
    # tokenFile
    tf = os.path.join(env.tmp, "tok")
    with open(tf, "w") as f:
        f.write(KUBE_TOKEN + "\n")
    kc = env.write_kubeconfig("http://127.0.0.1:%d" % env.kube_port, {"tokenFile": tf},
                              name="tokfile")
    ok(env.run("plan", env=env.env(KUBECONFIG=kc)), "plan with tokenFile")
    # wrong token: the API's 401 is reported
    kc = env.write_kubeconfig("http://127.0.0.1:%d" % env.kube_port, {"token": "bad"},
                              name="bad")
    p = env.run("plan", env=env.env(KUBECONFIG=kc))
    check(p.returncode == 1 and "Unauthorized" in p.stderr, p.stderr)
    # TLS: verification on by default, CA data accepted, insecure only when asked.
    if not shutil.which("openssl"):
        raise AssertionError("openssl is needed to make a test certificate")
    key, crt = os.path.join(env.tmp, "k.pem"), os.path.join(env.tmp, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True,
                   timeout=60)
    tls_port = env.spawn_fake("kube_fake.py", "kube-tls", ["--token", KUBE_TOKEN,
                                                           "--tls-cert", crt, "--tls-key", key])
    url = "https://127.0.0.1:%d" % tls_port
    kc = env.write_kubeconfig(url, {"token": KUBE_TOKEN}, name="tls-noca")
    p = env.run("plan", env=env.env(KUBECONFIG=kc, AWS_MAX_ATTEMPTS="1"))
    check(p.returncode == 1 and "Kubernetes" in p.stderr, "TLS without CA must fail: " + p.stderr)
    ca = base64.b64encode(open(crt, "rb").read()).decode()
    kc = env.write_kubeconfig(url, {"token": KUBE_TOKEN},
                              {"certificate-authority-data": ca}, name="tls-ca")
    ok(env.run("plan", env=env.env(KUBECONFIG=kc)), "plan over TLS with CA data")
    kc = env.write_kubeconfig(url, {"token": KUBE_TOKEN}, {"insecure-skip-tls-verify": True},
                              name="tls-insecure")
    ok(env.run("plan", env=env.env(KUBECONFIG=kc)), "plan over TLS, insecure")
    client_certificates(env, crt, key, ca)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def client_certificates(env, srv_crt, srv_key, srv_ca):
    # x509 client certificates, as kubeadm and kind write them: a cluster CA
    # signs the client's certificate; no bearer token is sent.
    t = env.tmp
    ca_key, ca_crt = os.path.join(t, "cca.key"), os.path.join(t, "cca.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
            "-days", "2", "-subj", "/CN=e2e-client-ca")
    cl_key, cl_csr, cl_crt = (os.path.join(t, n) for n in ("cl.key", "cl.csr", "cl.pem"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", cl_key, "-out", cl_csr,
            "-subj", "/O=system:masters/CN=infergate-e2e")
    openssl("x509", "-req", "-in", cl_csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cl_crt, "-days", "2")
    # A certificate the server's CA never signed.
    rogue_key, rogue_crt = os.path.join(t, "rogue.key"), os.path.join(t, "rogue.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", rogue_key,
            "-out", rogue_crt, "-days", "2", "-subj", "/CN=rogue")
    port = env.spawn_fake("kube_fake.py", "kube-mtls",
                          ["--token", KUBE_TOKEN, "--tls-cert", srv_crt, "--tls-key", srv_key,
                           "--client-ca", ca_crt])
    url = "https://127.0.0.1:%d" % port
    cluster = {"certificate-authority-data": srv_ca}
    b64 = lambda path: base64.b64encode(open(path, "rb").read()).decode()
    kc = env.write_kubeconfig(url, {"client-certificate-data": b64(cl_crt),
                                    "client-key-data": b64(cl_key)}, cluster, name="mtls-data")
    ok(env.run("plan", env=env.env(KUBECONFIG=kc)), "plan with client-certificate-data")
    kc = env.write_kubeconfig(url, {"client-certificate": cl_crt, "client-key": cl_key}, cluster,
                              name="mtls-files")
    ok(env.run("plan", env=env.env(KUBECONFIG=kc)), "plan with client-certificate files")
    # The fake really asks for the certificate: no certificate and no token is 401.
    kc = env.write_kubeconfig(url, {}, cluster, name="mtls-none")
    p = env.run("plan", env=env.env(KUBECONFIG=kc))
    check(p.returncode == 1 and "Unauthorized" in p.stderr,
          "no client certificate, no token must be 401: " + p.stderr)
    kc = env.write_kubeconfig(url, {"client-certificate": rogue_crt, "client-key": rogue_key},
                              cluster, name="mtls-rogue")
    p = env.run("plan", env=env.env(KUBECONFIG=kc))
    check(p.returncode == 1 and "Kubernetes" in p.stderr,
          "a client certificate from another CA must fail: " + p.stderr)


def test_config_and_template_errors(env):
    cfg = json.load(open(env.config))
    cfg["bootstrap"]["mesh"]["regoin"] = "x"
    path = os.path.join(env.tmp, "typo.json")
    json.dump(cfg, open(path, "w"))
    p = env.run("render", config=path)
    check(p.returncode == 2 and "bootstrap.mesh.regoin: unknown key" in p.stderr, p.stderr)
    tdir = os.path.join(env.tmp, "tpl")
    shutil.copytree(os.path.join(env.root, "k8s"), os.path.join(tdir, "k8s"))
    shutil.copytree(os.path.join(env.root, "mesh-config"), os.path.join(tdir, "mesh-config"))
    svc = os.path.join(tdir, "k8s", "service.yaml")
    lines = open(svc).read().split("\n")
    lines.insert(3, "# owner: ${OWNER_TEAM}")
    open(svc, "w").write("\n".join(lines))
    p = env.run("render", "--templates", tdir)
    check(p.returncode == 2 and "k8s/service.yaml:4: unknown variable ${OWNER_TEAM}" in p.stderr,
          p.stderr)
    ok(env.run("render", "--templates", os.path.join(env.root)), "render from the source tree")
    p = env.run("render", env=env.env(AWS_REGION=None), config=region_less(env))
    check(p.returncode == 2 and "bootstrap.mesh.region" in p.stderr, p.stderr)


def region_less(env):
    cfg = json.load(open(env.config))
    del cfg["bootstrap"]["mesh"]["region"]
    path = os.path.join(env.tmp, "noregion.json")
    json.dump(cfg, open(path, "w"))
    return path


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--infergate", required=True)
    ap.add_argument("--source-root", required=True)
    ap.add_argument("-k", default="")
    a = ap.parse_args()
    env = Env(os.path.abspath(a.infergate), os.path.abspath(a.source_root))
    passed = failed = 0
    try:
        env.start()
        for t in TESTS:
            if a.k and a.k not in t.__name__:
                continue
            try:
                t(env)
                passed += 1
                print("ok   %s" % t.__name__, flush=True)
            except Exception:
                failed += 1
                print("FAIL %s\n%s" % (t.__name__, traceback.format_exc()), flush=True)
        # Secrets are never printed.
        for argv, out, err in env.outputs:
            for secret in (SECRET_KEY, KUBE_TOKEN, "web-id-token-e2e", "sess-e2e"):
                if secret in out or secret in err:
                    failed += 1
                    print("FAIL secret %r printed by %s" % (secret, " ".join(argv)))
    finally:
        env.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
