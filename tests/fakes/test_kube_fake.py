#!/usr/bin/python3
"""Self-test of the Kubernetes API fake, with plain urllib as the client.

Checks that the fake behaves like an API server where infergate's bootstrap
depends on it (auth, server-side apply semantics, conflicts, dry-run,
validation, rollout status, delete, fail injection) and that HTTPS works with a
CA generated here by the openssl CLI.

Run: /usr/bin/python3 tests/fakes/test_kube_fake.py
"""

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fakecommon  # noqa: E402

TOKEN = "test-token-123"
APPLY = "application/apply-patch+yaml"
t = fakecommon.Checker()


class Api:
    def __init__(self, base, token=TOKEN, context=None):
        self.base = base
        self.token = token
        self.context = context

    def call(self, method, path, body=None, ctype=None, token=None):
        headers = {}
        tok = self.token if token is None else token
        if tok:
            headers["Authorization"] = "Bearer " + tok
        if ctype:
            headers["Content-Type"] = ctype
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        st, _h, out = fakecommon.http_call(method, self.base + path, body=body, headers=headers,
                                           context=self.context)
        try:
            return st, json.loads(out) if out else None
        except ValueError:
            return st, out

    def apply(self, path, obj, manager="infergate", extra=""):
        q = "?fieldManager=%s%s" % (manager, extra) if manager else ("?" + extra.lstrip("&") if extra else "")
        return self.call("PATCH", path + q, json.dumps(obj) if not isinstance(obj, str) else obj, APPLY)


CM = "/api/v1/namespaces/default/configmaps/ml-config"
DEP = "/apis/apps/v1/namespaces/default/deployments/ml"
SVC = "/api/v1/namespaces/default/services/ml"
HPA = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/ml"
SA = "/api/v1/namespaces/default/serviceaccounts/ml"
PDB = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/ml"


def configmap(data, name="ml-config"):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": data}


def deployment(replicas=2, image="infergate:0.1", tmpl_labels=None):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ml", "namespace": "default", "labels": {"app": "ml"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "ml"}},
                 "template": {"metadata": {"labels": tmpl_labels or {"app": "ml"}},
                              "spec": {"containers": [{"name": "model", "image": "model:1"},
                                                      {"name": "infergate", "image": image,
                                                       "ports": [{"containerPort": 8080}]}]}}},
    }


def main():
    tmp = tempfile.mkdtemp(prefix="kube-fake-test-")
    children = []
    try:
        pf = os.path.join(tmp, "port")
        child = fakecommon.Child([sys.executable, os.path.join(HERE, "kube_fake.py"), "--port-file", pf,
                                  "--token", TOKEN, "--rollout-delay-ms", "300"], pf)
        children.append(child)
        port = child.wait_ready()
        run_http(Api("http://127.0.0.1:%d" % port))
        run_https(tmp, children)
    finally:
        for c in children:
            c.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.finish()


def run_http(api):
    # --- auth and discovery -------------------------------------------------------
    st, b = api.call("GET", "/api/v1/namespaces/default", token="")
    t.check(st == 401 and b["kind"] == "Status" and b["reason"] == "Unauthorized" and b["code"] == 401,
            "no token -> 401 Status Unauthorized")
    st, b = api.call("GET", "/api/v1/namespaces/default", token="wrong")
    t.check(st == 401, "wrong token -> 401")
    st, b = api.call("GET", "/api/v1/namespaces/default")
    t.check(st == 200 and b["metadata"]["name"] == "default", "namespace default exists")
    st, b = api.call("GET", "/api/v1/namespaces/monitoring")
    t.check(st == 200, "namespace monitoring exists")
    st, b = api.call("GET", "/apis")
    t.check(st == 200 and {"apps", "autoscaling", "keda.sh"} <= {g["name"] for g in b["groups"]},
            "/apis lists apps, autoscaling, keda.sh")
    st, b = api.call("GET", "/apis/autoscaling/v2")
    t.check(st == 200 and "horizontalpodautoscalers" in [r["name"] for r in b["resources"]],
            "/apis/autoscaling/v2 lists horizontalpodautoscalers")
    st, b = api.call("GET", "/api/v1")
    t.check(st == 200 and {"configmaps", "services"} <= {r["name"] for r in b["resources"]}, "/api/v1 resources")
    st, b = api.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "ml-team"}}, "application/json")
    t.check(st == 201, "POST /api/v1/namespaces creates a namespace")
    st, b = api.call("GET", "/api/v1/namespaces/ml-team")
    t.check(st == 200, "created namespace is served")
    st, b = api.apply("/api/v1/namespaces/nowhere/configmaps/x", configmap({"a": "b"}, "x") | {
        "metadata": {"name": "x"}})
    t.check(st == 404 and b["reason"] == "NotFound", "apply into a missing namespace -> 404")

    # --- server-side apply basics ----------------------------------------------------
    st, b = api.call("GET", CM)
    t.check(st == 404 and b["reason"] == "NotFound" and b["kind"] == "Status", "GET missing -> 404 Status NotFound")
    st, b = api.apply(CM, configmap({"k": "v1"}))
    t.check(st == 201 and b["data"] == {"k": "v1"} and b["metadata"].get("uid"), "SSA creates -> 201")
    rv1 = b["metadata"]["resourceVersion"]
    t.check(b["metadata"]["managedFields"][0]["manager"] == "infergate"
            and b["metadata"]["managedFields"][0]["operation"] == "Apply", "managedFields records the manager")
    st, b = api.apply(CM, configmap({"k": "v1"}))
    t.check(st == 200 and b["metadata"]["resourceVersion"] == rv1, "identical apply -> 200, same resourceVersion")
    yaml_body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ml-config\ndata:\n  k: v1\n"
    st, b = api.apply(CM, yaml_body)
    t.check(st == 200 and b["metadata"]["resourceVersion"] == rv1, "identical YAML apply keeps resourceVersion")
    st, b = api.apply(CM, configmap({"k": "v1", "extra": "x"}))
    t.check(st == 200 and b["metadata"]["resourceVersion"] != rv1 and b["data"]["extra"] == "x",
            "changed apply bumps resourceVersion")
    st, b = api.apply(CM, configmap({"k": "v1"}))
    t.check(st == 200 and "extra" not in b["data"], "a field the manager stops applying is removed")
    st, b = api.apply(CM, configmap({"k": "v1"}), manager=None)
    t.check(st == 400 and "fieldManager" in b["message"], "apply without fieldManager -> 400")
    st, b = api.call("PATCH", CM + "?fieldManager=infergate", json.dumps(configmap({"k": "v1"})), "text/plain")
    t.check(st == 415 and b["reason"] == "UnsupportedMediaType", "PATCH with a wrong content type -> 415")
    st, b = api.apply(CM, configmap({"k": "v1"}, name="other"))
    t.check(st == 400 and b["reason"] == "BadRequest" and "name" in b["message"], "name mismatch -> 400")
    wrong_ns = configmap({"k": "v1"})
    wrong_ns["metadata"]["namespace"] = "monitoring"
    st, b = api.apply(CM, wrong_ns)
    t.check(st == 400 and "namespace" in b["message"], "namespace mismatch -> 400")
    wrong_kind = configmap({"k": "v1"})
    wrong_kind["kind"] = "Secret"
    st, b = api.apply(CM, wrong_kind)
    t.check(st == 400 and "kind" in b["message"], "kind mismatch -> 400")
    wrong_av = deployment()
    wrong_av["apiVersion"] = "apps/v1beta1"
    st, b = api.apply(DEP, wrong_av)
    t.check(st == 400 and "API version" in b["message"], "apiVersion mismatch -> 400")

    # --- conflicts between managers ---------------------------------------------------
    st, b = api.apply(CM, configmap({"k": "v1"}), manager="other-tool")
    t.check(st == 200, "another manager applying the same value shares the field (no conflict)")
    st, b = api.apply(CM, configmap({"k": "v2"}), manager="other-tool")
    t.check(st == 409 and b["reason"] == "Conflict" and b["details"]["causes"][0]["field"] == ".data.k"
            and "infergate" in b["message"], "different value owned by another manager -> 409 naming .data.k")
    st, b = api.apply(CM, configmap({"k": "v2"}), manager="other-tool", extra="&force=true")
    t.check(st == 200 and b["data"]["k"] == "v2", "force=true takes the field -> 200")
    owners = {m["manager"]: m for m in b["metadata"]["managedFields"]}
    t.check("f:k" in owners["other-tool"]["fieldsV1"]["f:data"] and "infergate" not in owners,
            "forced field moves to the new manager")

    # --- dry run ------------------------------------------------------------------------
    st, b = api.apply("/api/v1/namespaces/default/configmaps/dry", configmap({"a": "b"}, "dry"),
                      extra="&dryRun=All")
    t.check(st == 201 and b["data"] == {"a": "b"}, "dryRun=All create returns the object")
    st, b = api.call("GET", "/api/v1/namespaces/default/configmaps/dry")
    t.check(st == 404, "dryRun=All stored nothing")
    st, before = api.call("GET", CM)
    st, b = api.apply(CM, configmap({"k": "v3"}), manager="other-tool", extra="&dryRun=All")
    st2, after = api.call("GET", CM)
    t.check(st == 200 and b["data"]["k"] == "v3" and after == before, "dryRun=All update leaves the object as is")
    st, b = api.apply(CM, configmap({"k": "v3"}), extra="&dryRun=Some")
    t.check(st == 400, "invalid dryRun value -> 400")

    # --- validation -----------------------------------------------------------------------
    st, b = api.apply(DEP, deployment(tmpl_labels={"app": "other"}))
    t.check(st == 422 and b["reason"] == "Invalid"
            and any(c["field"] == "spec.template.metadata.labels" for c in b["details"]["causes"]),
            "Deployment with a selector not matching template labels -> 422 Invalid")
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"] = "x"
    st, b = api.apply(DEP, bad)
    t.check(st == 422 and any(c["field"] == "spec.template.spec.containers" for c in b["details"]["causes"]),
            "containers: \"x\" -> 422")
    bad = deployment()
    del bad["spec"]["template"]["spec"]["containers"][0]["image"]
    st, b = api.apply(DEP, bad)
    t.check(st == 422 and any(c["field"].endswith("containers[0].image") for c in b["details"]["causes"]),
            "container without image -> 422")
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "ml", "namespace": "default"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ml"},
                    "minReplicas": 5, "maxReplicas": 2,
                    "metrics": [{"type": "Pods", "pods": {"metric": {"name": "infergate_load_factor"},
                                                          "target": {"type": "AverageValue",
                                                                     "averageValue": "700m"}}}]}}
    st, b = api.apply(HPA, hpa)
    t.check(st == 422 and any(c["field"] == "spec.maxReplicas" for c in b["details"]["causes"]),
            "HPA minReplicas > maxReplicas -> 422")
    hpa["spec"]["minReplicas"] = 1
    hpa["spec"]["metrics"].append({"type": "Resource", "pods": {}})
    st, b = api.apply(HPA, hpa)
    t.check(st == 422 and any(c["field"].startswith("spec.metrics[1]") for c in b["details"]["causes"]),
            "HPA metric whose member does not match its type -> 422")
    hpa["spec"]["metrics"].pop()
    st, b = api.apply(HPA, hpa)
    t.check(st == 201, "valid autoscaling/v2 HPA with a Pods metric -> 201")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ml", "namespace": "default"},
           "spec": {"selector": {"app": "ml"}, "ports": [{"name": "http"}]}}
    st, b = api.apply(SVC, svc)
    t.check(st == 422 and any(c["field"] == "spec.ports[0].port" for c in b["details"]["causes"]),
            "Service port without a number -> 422")
    svc["spec"]["ports"][0]["port"] = 80
    st, b = api.apply(SVC, svc)
    t.check(st == 201 and b["spec"]["clusterIP"].startswith("10.96.") and b["spec"]["ports"][0]["targetPort"] == 80
            and b["spec"]["ports"][0]["protocol"] == "TCP", "Service gets defaults (clusterIP, protocol, targetPort)")
    rv = b["metadata"]["resourceVersion"]
    st, b = api.apply(SVC, svc)
    t.check(st == 200 and b["metadata"]["resourceVersion"] == rv, "re-applying a defaulted Service changes nothing")

    # --- service accounts and disruption budgets ----------------------------------------------
    st, b = api.call("GET", "/api/v1")
    t.check(st == 200 and "serviceaccounts" in [r["name"] for r in b["resources"]],
            "/api/v1 lists serviceaccounts")
    st, b = api.call("GET", "/apis/policy/v1")
    t.check(st == 200 and [r["name"] for r in b["resources"]][:1] == ["poddisruptionbudgets"],
            "/apis/policy/v1 lists poddisruptionbudgets")
    st, b = api.call("GET", "/apis")
    t.check(st == 200 and "policy" in {g["name"] for g in b["groups"]}, "/apis lists policy")
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        "name": "ml", "namespace": "default",
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/ml"}},
        "automountServiceAccountToken": "no"}
    st, b = api.apply(SA, sa)
    t.check(st == 422 and any(c["field"] == "automountServiceAccountToken" for c in b["details"]["causes"]),
            "ServiceAccount with a non-boolean automountServiceAccountToken -> 422")
    sa["automountServiceAccountToken"] = False
    st, b = api.apply(SA, sa)
    t.check(st == 201 and b["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("role/ml"),
            "ServiceAccount applied with its IRSA annotation")
    rv = b["metadata"]["resourceVersion"]
    del sa["metadata"]["annotations"]
    st, b = api.apply(SA, sa)
    t.check(st == 200 and "annotations" not in b["metadata"] and b["metadata"]["resourceVersion"] != rv,
            "an annotation no longer applied is removed from the ServiceAccount")
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": "ml", "namespace": "default"},
           "spec": {"maxUnavailable": 1, "minAvailable": "50%", "selector": {"matchLabels": {"app": "ml"}}}}
    st, b = api.apply(PDB, pdb)
    t.check(st == 422 and any(c["field"] == "spec" and "both" in c["message"] for c in b["details"]["causes"]),
            "PDB with minAvailable and maxUnavailable -> 422")
    del pdb["spec"]["minAvailable"]
    pdb["spec"]["maxUnavailable"] = "150%"
    pdb["spec"]["unhealthyPodEvictionPolicy"] = "Never"
    st, b = api.apply(PDB, pdb)
    fields = sorted(c["field"] for c in b.get("details", {}).get("causes", []))
    t.check(st == 422 and fields == ["spec.maxUnavailable", "spec.unhealthyPodEvictionPolicy"],
            "PDB with maxUnavailable 150%% and an unknown eviction policy -> 422 naming both (%s)" % fields)
    pdb["spec"]["maxUnavailable"] = 1
    pdb["spec"]["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    st, b = api.apply(PDB, pdb)
    t.check(st == 201 and b["metadata"]["generation"] == 1, "valid policy/v1 PDB -> 201 at generation 1")
    st, b = api.apply(PDB, pdb, extra="&dryRun=All")
    t.check(st == 200 and b["metadata"]["generation"] == 1, "dry-run re-apply of the PDB changes nothing")
    st, b = api.call("GET", "/apis/policy/v1beta1/namespaces/default/poddisruptionbudgets/ml")
    t.check(st == 404, "the removed policy/v1beta1 is not served")
    for path in (SA, PDB):
        st, b = api.call("DELETE", path + "?propagationPolicy=Foreground")
        t.check(st == 200 and api.call("GET", path)[0] == 404, "DELETE %s removes it" % path.rsplit("/", 2)[-2])

    # --- deployment rollout ------------------------------------------------------------------
    st, b = api.apply(DEP, deployment())
    t.check(st == 201 and b["metadata"]["generation"] == 1, "Deployment created at generation 1")
    t.check(b["spec"]["strategy"]["type"] == "RollingUpdate"
            and b["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent",
            "Deployment gets server defaults")
    t.check(b.get("status", {}).get("availableReplicas") is None, "not available right after create")
    dep = wait_available(api, 1)
    t.check(dep is not None and dep["status"]["availableReplicas"] == 2 and dep["status"]["readyReplicas"] == 2,
            "Deployment becomes Available after the rollout delay")
    st, b = api.apply(DEP, deployment(image="infergate:0.2"))
    t.check(st == 200 and b["metadata"]["generation"] == 2, "spec change bumps generation")
    dep = wait_available(api, 2)
    t.check(dep is not None and dep["status"]["observedGeneration"] == 2, "rollout of generation 2 completes")
    rv = dep["metadata"]["resourceVersion"]
    st, _, b = fakecommon.http_call("POST", api.base + "/_fake/edit",
                                    body={"path": DEP, "merge": {"spec": {"replicas": 5}}})
    edited = json.loads(b)
    t.check(st == 200 and edited["spec"]["replicas"] == 5 and edited["metadata"]["resourceVersion"] != rv,
            "/_fake/edit changes the object and bumps resourceVersion")
    st, b = api.apply(DEP, deployment(image="infergate:0.2"))
    t.check(st == 409 and "kubectl-edit" in b["message"] and b["details"]["causes"][0]["field"] == ".spec.replicas",
            "apply after a manual edit conflicts with kubectl-edit on .spec.replicas")
    st, b = api.apply(DEP, deployment(image="infergate:0.2"), extra="&force=true")
    t.check(st == 200 and b["spec"]["replicas"] == 2, "force apply restores the desired replicas")
    one = deployment(image="infergate:0.2")
    one["spec"]["template"]["spec"]["containers"].pop(0)
    st, b = api.apply(DEP, one)
    t.check(st == 200 and [c["name"] for c in b["spec"]["template"]["spec"]["containers"]] == ["infergate"],
            "a container no longer applied is removed with its defaulted fields")
    st, b = api.call("PATCH", DEP, {"spec": {"replicas": 3}}, "application/merge-patch+json")
    t.check(st == 200 and b["spec"]["replicas"] == 3, "merge patch works")
    st, b = api.call("PATCH", DEP, [{"op": "replace", "path": "/spec/replicas", "value": 4}],
                     "application/json-patch+json")
    t.check(st == 200 and b["spec"]["replicas"] == 4, "JSON patch works")
    st, b = api.call("GET", "/apis/apps/v1/namespaces/default/deployments")
    t.check(st == 200 and b["kind"] == "DeploymentList" and [i["metadata"]["name"] for i in b["items"]] == ["ml"],
            "list returns a DeploymentList")

    # --- fail injection -----------------------------------------------------------------------
    fakecommon.http_call("POST", api.base + "/_fake/fail",
                         body={"method": "PATCH", "path_contains": "deployments", "status": 409, "times": 1})
    st, b = api.apply(DEP, one)
    t.check(st == 409 and b["kind"] == "Status" and b["reason"] == "Conflict", "injected 409 returns a Status")
    st, b = api.apply(DEP, one)
    t.check(st == 409 and "Python-urllib" in b["message"],
            "the patches above made the client's User-Agent own .spec.replicas (real conflict)")
    st, b = api.apply(DEP, one, extra="&force=true")
    t.check(st == 200, "after the injected failure the call succeeds (%s %s)" % (st, b))
    fakecommon.http_call("POST", api.base + "/_fake/fail",
                         body={"method": "*", "path_contains": "configmaps", "status": 429, "times": 2})
    codes = [api.call("GET", CM)[0] for _ in range(3)]
    t.check(codes == [429, 429, 200], "injected 429 twice, then success")
    st, _, b = fakecommon.http_call("POST", api.base + "/_fake/fail", body={"method": "BREW", "status": 500})
    t.check(st == 400, "invalid fail rule refused")

    # --- delete ---------------------------------------------------------------------------------
    st, b = api.call("DELETE", DEP + "?propagationPolicy=Sideways")
    t.check(st == 400, "invalid propagationPolicy -> 400")
    st, b = api.call("DELETE", DEP + "?propagationPolicy=Foreground")
    t.check(st == 200 and b["kind"] == "Status" and b["status"] == "Success", "DELETE -> 200 Status Success")
    st, b = api.call("GET", DEP)
    t.check(st == 404, "deleted object is gone")
    st, b = api.call("DELETE", DEP)
    t.check(st == 404 and b["reason"] == "NotFound", "DELETE of a missing object -> 404")

    # --- request log, state, reset -----------------------------------------------------------------
    st, _, b = fakecommon.http_call("GET", api.base + "/_fake/requests")
    log = json.loads(b)
    applies = [e for e in log if e["method"] == "PATCH" and e["content_type"] == APPLY]
    t.check(applies and all({"method", "path", "query", "content_type", "status"} <= set(e) for e in log),
            "request log records method, path, query, content_type, status")
    t.check(log[0]["status"] == 401, "request log is in order (first call was the 401)")
    st, _, b = fakecommon.http_call("GET", api.base + "/_fake/state")
    state = json.loads(b)
    t.check("v1/ConfigMap/default/ml-config" in state and "autoscaling/v2/HorizontalPodAutoscaler/default/ml" in state
            and "apps/v1/Deployment/default/ml" not in state, "state is keyed by apiVersion/kind/ns/name")
    fakecommon.http_call("POST", api.base + "/_fake/reset")
    st, b = api.call("GET", CM)
    t.check(st == 404, "reset empties the store")
    st, b = api.call("GET", "/api/v1/namespaces/default")
    t.check(st == 200, "reset keeps the initial namespaces")


def wait_available(api, generation, timeout_s=20.0):
    """Poll (bounded) until the Deployment reports the generation rolled out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st, b = api.call("GET", DEP)
        s = (b or {}).get("status") or {}
        conds = {c["type"]: c["status"] for c in s.get("conditions", [])}
        if st == 200 and s.get("observedGeneration") == generation and conds.get("Available") == "True":
            return b
        time.sleep(0.05)
    return None


def run_https(tmp, children):
    openssl = shutil.which("openssl")
    if openssl is None:
        t.check(False, "openssl CLI is needed for the HTTPS test (apt-get install openssl)")
        return
    ca_key, ca_crt = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.crt")
    srv_key, srv_csr, srv_crt = (os.path.join(tmp, n) for n in ("srv.key", "srv.csr", "srv.crt"))
    ext = os.path.join(tmp, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    cmds = [
        [openssl, "req", "-x509"] + ec + ["-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/CN=fake-kube-ca"],
        [openssl, "req"] + ec + ["-keyout", srv_key, "-out", srv_csr, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", srv_csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
         "-out", srv_crt, "-days", "2", "-extfile", ext],
    ]
    for cmd in cmds:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            t.check(False, "openssl %s failed: %s" % (cmd[1], p.stderr[-300:]))
            return
    pf = os.path.join(tmp, "tls-port")
    child = fakecommon.Child([sys.executable, os.path.join(HERE, "kube_fake.py"), "--port-file", pf,
                              "--token", TOKEN, "--tls-cert", srv_crt, "--tls-key", srv_key], pf)
    children.append(child)
    port = child.wait_ready()
    with_ca = ssl.create_default_context(cafile=ca_crt)
    st, b = Api("https://127.0.0.1:%d" % port, context=with_ca).call("GET", "/api/v1/namespaces/default")
    t.check(st == 200 and b["metadata"]["name"] == "default", "HTTPS with the CA verifies and serves")
    st, b = Api("https://127.0.0.1:%d" % port, context=with_ca, token="nope").call("GET", "/api")
    t.check(st == 401, "HTTPS still requires the token")
    no_ca = ssl.create_default_context()
    try:
        Api("https://127.0.0.1:%d" % port, context=no_ca).call("GET", "/api")
        failed = False
    except (urllib.error.URLError, ssl.SSLError) as e:
        failed = "CERTIFICATE_VERIFY_FAILED" in str(e)
    t.check(failed, "HTTPS without the CA fails certificate verification")


if __name__ == "__main__":
    sys.exit(main())
