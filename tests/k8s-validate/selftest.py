#!/usr/bin/python3
"""Self-test of tests/k8s-validate/validate.mjs: valid objects pass, invalid ones
fail with exit 1 and name the field, unknown kinds give exit 2.

Needs node and `npm ci --prefix tests/k8s-validate` (scripts/install-deps runs it).
Run: /usr/bin/python3 tests/k8s-validate/selftest.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))

import fakecommon  # noqa: E402

t = fakecommon.Checker()


def deployment(name="ml-service", containers=None):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ml"}},
                 "template": {"metadata": {"labels": {"app": "ml"}},
                              "spec": {"containers": containers if containers is not None else [
                                  {"name": "model", "image": "model:1", "ports": [{"containerPort": 8081}]},
                                  {"name": "infergate", "image": "infergate:0.1", "args": ["serve"]}]}}},
    }


HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "ml"},
       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ml"},
                "minReplicas": 1, "maxReplicas": 10,
                "metrics": [{"type": "Pods", "pods": {"metric": {"name": "infergate_load_factor"},
                                                      "target": {"type": "AverageValue", "averageValue": "700m"}}}]}}
SCALED = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "ml"},
          "spec": {"scaleTargetRef": {"name": "ml"}, "triggers": [
              {"type": "metrics-api", "metadata": {"url": "http://ml:9090/autoscale", "valueLocation": "load_factor",
                                                   "targetValue": "0.7"}}]}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ml-config"},
             "data": {"infergate.json": "{}"}}
SERVICEACCOUNT = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
    "name": "ml", "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/ml"}},
    "automountServiceAccountToken": False}
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "ml"},
       "spec": {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
                "selector": {"matchLabels": {"app": "ml"}}}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ml"},
           "spec": {"selector": {"app": "ml"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def run(node, stdin_text, args=()):
    p = subprocess.run([node, os.path.join(HERE, "validate.mjs")] + list(args), input=stdin_text,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def main():
    node = shutil.which("node")
    if node is None:
        t.check(False, "node is installed (needed by validate.mjs)")
        return t.finish()
    if not os.path.isdir(os.path.join(HERE, "node_modules", "kubernetes-models")):
        t.check(False, "node_modules present: run `npm ci --prefix tests/k8s-validate` (scripts/install-deps does)")
        return t.finish()

    rc, out, err = run(node, json.dumps([deployment()]))
    t.check(rc == 0 and out == "ok Deployment/ml-service\n", "valid Deployment passes (rc=%d, %r %r)" % (rc, out, err))

    rc, out, err = run(node, json.dumps([deployment("x", containers="x")]))
    t.check(rc == 1 and out.startswith("FAIL Deployment/x:") and "containers" in out,
            "Deployment with containers: \"x\" fails naming containers (rc=%d, %r)" % (rc, out))

    # The OpenAPI schema requires a container's name (an image is only required by
    # the API server's own validation, which tests/fakes/kube_fake.py enforces).
    rc, out, err = run(node, json.dumps([deployment("no-name", containers=[{"image": "model:1"}])]))
    t.check(rc == 1 and "FAIL Deployment/no-name" in out and "name" in out,
            "container without a name fails (rc=%d, %r)" % (rc, out))

    rc, out, err = run(node, json.dumps([CONFIGMAP, SERVICE, HPA, SCALED]))
    t.check(rc == 0 and out.splitlines() == ["ok ConfigMap/ml-config", "ok Service/ml",
                                             "ok HorizontalPodAutoscaler/ml", "ok ScaledObject/ml"],
            "ConfigMap, Service, autoscaling/v2 HPA and KEDA ScaledObject pass (rc=%d, %r %r)" % (rc, out, err))

    rc, out, err = run(node, json.dumps([SERVICEACCOUNT, PDB]))
    t.check(rc == 0 and out.splitlines() == ["ok ServiceAccount/ml", "ok PodDisruptionBudget/ml"],
            "ServiceAccount and policy/v1 PodDisruptionBudget pass (rc=%d, %r %r)" % (rc, out, err))
    bad_sa = dict(SERVICEACCOUNT, automountServiceAccountToken="no")
    bad_pdb = json.loads(json.dumps(PDB))
    bad_pdb["spec"]["unhealthyPodEvictionPolicy"] = "Sometimes"
    rc, out, err = run(node, json.dumps([bad_sa, bad_pdb]))
    t.check(rc == 1 and "FAIL ServiceAccount/ml" in out and "automountServiceAccountToken" in out
            and "FAIL PodDisruptionBudget/ml" in out and "unhealthyPodEvictionPolicy" in out,
            "invalid ServiceAccount and PodDisruptionBudget fail naming the field (rc=%d, %r)" % (rc, out))
    rc, out, err = run(node, json.dumps([dict(PDB, apiVersion="policy/v1beta1")]))
    t.check(rc == 2 and "UNKNOWN PodDisruptionBudget/ml" in out,
            "PodDisruptionBudget in the removed policy/v1beta1 -> exit 2 (rc=%d, %r)" % (rc, out))

    bad_hpa = json.loads(json.dumps(HPA))
    bad_hpa["spec"]["maxReplicas"] = "ten"
    bad_so = json.loads(json.dumps(SCALED))
    bad_so["spec"]["triggers"] = 5
    rc, out, err = run(node, json.dumps([bad_hpa, bad_so]))
    t.check(rc == 1 and "FAIL HorizontalPodAutoscaler/ml" in out and "maxReplicas" in out
            and "FAIL ScaledObject/ml" in out, "invalid HPA and ScaledObject fail (rc=%d, %r)" % (rc, out))

    yaml_stream = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n---\n"
                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: 1}\n")
    rc, out, err = run(node, yaml_stream)
    t.check(rc == 1 and out.splitlines()[0] == "ok ConfigMap/a" and out.splitlines()[1].startswith("FAIL ConfigMap/b"),
            "YAML multi-document stream: one ok, one FAIL (rc=%d, %r)" % (rc, out))

    rc, out, err = run(node, json.dumps([CONFIGMAP, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}]))
    t.check(rc == 2 and "UNKNOWN Secret/s" in out, "unknown kind -> exit 2 (rc=%d, %r)" % (rc, out))

    rc, out, err = run(node, json.dumps([dict(HPA, apiVersion="autoscaling/v1")]))
    t.check(rc == 2, "HPA in autoscaling/v1 is not accepted as v2 -> exit 2 (rc=%d)" % rc)

    rc, out, err = run(node, "{not json")
    t.check(rc == 2 and "not valid JSON" in err, "malformed input -> exit 2 with a message (rc=%d, %r)" % (rc, err))

    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": [deployment()]}, f)
        f.flush()
        rc, out, err = run(node, "", [f.name])
    t.check(rc == 0 and out == "ok Deployment/ml-service\n", "file argument and List expansion (rc=%d, %r)" % (rc, out))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
