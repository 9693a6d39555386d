#!/usr/bin/python3
"""A fake Kubernetes API server for infergate's bootstrap tests.

infergate's bootstrap applies a ServiceAccount, a ConfigMap, a Deployment with
the sidecar, a PodDisruptionBudget, Services and an HPA (or a KEDA ScaledObject)
with server-side apply, diffs with dry-run, waits for the rollout and deletes on
destroy.  This fake serves that
subset of the API the way a real API server does, and refuses what a real one
refuses:

- bearer-token auth (401 Status otherwise), HTTP or HTTPS; with --client-ca,
  a client certificate signed by that CA authenticates too (x509 client certs,
  as the real API server does), and one signed by another CA fails the TLS
  handshake;
- discovery (/api, /apis, /api/v1, /apis/{group}/{version}, /version);
- GET/list/POST/PUT/PATCH/DELETE on namespaced configmaps, services,
  serviceaccounts, deployments, poddisruptionbudgets (policy/v1),
  horizontalpodautoscalers (autoscaling/v2) and scaledobjects
  (keda.sh/v1alpha1), plus namespaces;
- server-side apply (application/apply-patch+yaml) with fieldManager, managed
  fields per manager, 409 conflicts unless force=true, dryRun=All, and a
  resourceVersion that moves only when the object really changes;
- JSON merge, strategic merge (associative lists by key) and JSON patch;
- defaults and validation (kube_schema.py) with 422 Invalid causes;
- Deployments become Available --rollout-delay-ms after each change.

Control endpoints for tests (no auth): GET /_fake/state, GET /_fake/requests,
POST /_fake/reset, POST /_fake/fail, POST /_fake/edit.  See docs/testing-fakes.md.

Not modelled: watches, admission webhooks, RBAC, pods/ReplicaSets, finalizers.
"""

import argparse
import copy
import datetime
import ipaddress
import json
import os
import ssl
import sys
import threading
import traceback
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fakecommon  # noqa: E402
import kube_schema  # noqa: E402
import kube_ssa  # noqa: E402
from kube_ssa import MISSING  # noqa: E402

import yaml  # noqa: E402


class Res:
    def __init__(self, group, version, plural, kind, namespaced, short=(), generation=False, status_sub=False):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.short = list(short)
        self.generation = generation  # metadata.generation is maintained
        self.status_sub = status_sub  # status is only written by the "controller"

    @property
    def api_version(self):
        return self.version if not self.group else "%s/%s" % (self.group, self.version)

    @property
    def qualified(self):
        return self.plural if not self.group else "%s.%s" % (self.plural, self.group)


RESOURCES = [
    Res("", "v1", "namespaces", "Namespace", False, ["ns"]),
    Res("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    Res("", "v1", "services", "Service", True, ["svc"]),
    Res("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    Res("apps", "v1", "deployments", "Deployment", True, ["deploy"], generation=True, status_sub=True),
    Res("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ["hpa"],
        generation=True, status_sub=True),
    Res("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], generation=True,
        status_sub=True),
    Res("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", True, ["so"], generation=True, status_sub=True),
]
BY_GV = {}
for _r in RESOURCES:
    BY_GV.setdefault(_r.api_version, {})[_r.plural] = _r
INITIAL_NAMESPACES = ["default", "kube-system", "monitoring"]

APPLY_CT = "application/apply-patch+yaml"
MERGE_CT = "application/merge-patch+json"
STRATEGIC_CT = "application/strategic-merge-patch+json"
JSONPATCH_CT = "application/json-patch+json"

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

# Metadata the server owns; never part of a manager's field set.
SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                   "deletionTimestamp", "selfLink", "name", "namespace")


class KubeError(Exception):
    def __init__(self, code, message, reason=None, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            s["details"] = self.details
        return s


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_found(res, name):
    return KubeError(404, '%s "%s" not found' % (res.qualified, name),
                     details={"name": name, "group": res.group, "kind": res.plural})


class Stored:
    """One object plus its field ownership: {(manager, operation): {"paths", "apiVersion", "time"}}."""

    def __init__(self, obj, managers):
        self.obj = obj
        self.managers = managers


class Kube:
    def __init__(self, token, rollout_delay_ms):
        self.token = token
        self.rollout_delay = rollout_delay_ms / 1000.0
        self.lock = threading.RLock()
        self.objects = {}
        self.rv = 0
        self.next_ip = 10
        self.log = fakecommon.RequestLog()
        self.fails = fakecommon.FailRules(self._fail_matches)
        self.timers = []
        self.port = None
        self._init_namespaces()

    def _init_namespaces(self):
        ns = BY_GV["v1"]["namespaces"]
        for name in INITIAL_NAMESPACES:
            self.objects[(ns.api_version, ns.kind, "", name)] = Stored(self._new_meta(ns, {
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}), {})

    @staticmethod
    def _fail_matches(rule, call):
        method, path = call
        return rule["method"] in ("*", method) and rule["path_contains"] in path

    def bump(self):
        self.rv += 1
        return str(self.rv)

    def allocate_ip(self):
        self.next_ip += 1
        return str(ipaddress.IPv4Address("10.96.0.0") + self.next_ip)

    def _new_meta(self, res, obj):
        md = obj.setdefault("metadata", {})
        md["uid"] = str(uuid.uuid4())
        md["resourceVersion"] = self.bump()
        md["creationTimestamp"] = now_rfc3339()
        if res.generation:
            md["generation"] = 1
        return obj

    def reset(self):
        with self.lock:
            for t in self.timers:
                t.cancel()
            self.timers.clear()
            self.objects.clear()
            self._init_namespaces()
        self.log.clear()
        self.fails.clear()

    # -- routing --------------------------------------------------------------

    def parse_path(self, path):
        """Return (kind of endpoint, details) for an API path."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            if len(parts) == 1:
                return ("core-versions", None)
            gv, rest = parts[1], parts[2:]
            if gv != "v1":
                raise KubeError(404, "the server could not find the requested resource")
        elif parts[:1] == ["apis"]:
            if len(parts) == 1:
                return ("groups", None)
            if len(parts) == 2:
                group = parts[1]
                for r in RESOURCES:
                    if r.group == group:
                        return ("group", group)
                raise KubeError(404, "the server could not find the requested resource")
            gv, rest = "%s/%s" % (parts[1], parts[2]), parts[3:]
            if gv not in BY_GV:
                raise KubeError(404, "the server could not find the requested resource")
        elif parts == ["version"]:
            return ("version", None)
        else:
            raise KubeError(404, "the server could not find the requested resource")
        if not rest:
            return ("resources", gv)
        table = BY_GV[gv]
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and gv == "v1" and rest[2] not in table:
            raise KubeError(404, "the server could not find the requested resource")
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        if rest[0] not in table:
            raise KubeError(404, "the server could not find the requested resource")
        res = table[rest[0]]
        if (ns is not None and not res.namespaced) or (ns is None and res.namespaced and len(rest) > 1):
            raise KubeError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub is not None and sub != "status"):
            raise KubeError(404, "the server could not find the requested resource")
        return ("object", (res, ns, name, sub))

    def discovery(self, what, arg):
        if what == "core-versions":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:%s" % self.port}]}
        if what == "version":
            return {"major": "1", "minor": "28", "gitVersion": "v1.28.0-infergate-fake",
                    "platform": "linux/amd64"}
        if what in ("groups", "group"):
            groups = []
            for r in RESOURCES:
                if r.group and r.group not in [g["name"] for g in groups]:
                    gv = {"groupVersion": r.api_version, "version": r.version}
                    groups.append({"name": r.group, "versions": [gv], "preferredVersion": gv})
            if what == "group":
                g = [x for x in groups if x["name"] == arg][0]
                return dict(g, kind="APIGroup", apiVersion="v1")
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        resources = []
        for r in BY_GV[arg].values():
            verbs = ["create", "delete", "get", "list", "patch", "update"]
            resources.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": verbs, "shortNames": r.short})
            if r.status_sub:
                resources.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                                  "kind": r.kind, "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": arg, "resources": resources}

    # -- helpers ----------------------------------------------------------------

    def key(self, res, ns, name):
        return (res.api_version, res.kind, ns or "", name)

    def require_namespace(self, ns):
        if ns is not None and (("v1", "Namespace", "", ns) not in self.objects):
            raise KubeError(404, 'namespaces "%s" not found' % ns,
                            details={"name": ns, "kind": "namespaces"})

    def render(self, st):
        obj = copy.deepcopy(st.obj)
        mf = []
        for (manager, op), info in st.managers.items():
            if not info["paths"]:
                continue
            mf.append({"manager": manager, "operation": op, "apiVersion": info["apiVersion"],
                       "time": info["time"], "fieldsType": "FieldsV1",
                       "fieldsV1": kube_ssa.fields_v1(info["paths"])})
        if mf:
            obj["metadata"]["managedFields"] = mf
        return obj

    @staticmethod
    def owned_view(obj, res):
        """The part of an object that field managers own (no server metadata, no status)."""
        view = copy.deepcopy(obj)
        md = view.get("metadata")
        if isinstance(md, dict):
            for k in SERVER_METADATA:
                md.pop(k, None)
            if not md:
                view.pop("metadata")
        view.pop("apiVersion", None)
        view.pop("kind", None)
        if res.status_sub or res.kind == "Namespace":
            view.pop("status", None)
        return view

    def check_identity(self, res, ns, name, body, url_name_required=True):
        if not isinstance(body, dict):
            raise KubeError(400, "the body of the request must be a %s object, got %s"
                            % (res.kind, type(body).__name__))
        if body.get("apiVersion") != res.api_version:
            raise KubeError(400, "the API version in the data (%s) does not match the expected API version (%s)"
                            % (body.get("apiVersion"), res.api_version))
        if body.get("kind") != res.kind:
            raise KubeError(400, "the kind in the data (%s) does not match the expected kind (%s)"
                            % (body.get("kind"), res.kind))
        md = body.get("metadata")
        if md is None:
            md = body["metadata"] = {}
        if not isinstance(md, dict):
            raise KubeError(400, "metadata must be an object")
        if url_name_required and md.get("name") != name:
            raise KubeError(400, "the name of the object (%s) does not match the name on the URL (%s)"
                            % (md.get("name"), name))
        if res.namespaced:
            if md.get("namespace") not in (None, ns):
                raise KubeError(400, "the namespace of the provided object (%s) does not match the namespace "
                                     "sent on the request (%s)" % (md.get("namespace"), ns))
        elif md.get("namespace"):
            raise KubeError(400, "%s is not namespaced; metadata.namespace must be empty" % res.kind)

    def finalize(self, res, ns, name, new_obj, old, managers, dry_run):
        """Default, validate, assign metadata and store; returns (rendered, changed)."""
        md = new_obj.setdefault("metadata", {})
        md["name"] = name
        if res.namespaced:
            md["namespace"] = ns
        new_obj["apiVersion"] = res.api_version
        new_obj["kind"] = res.kind
        kube_schema.apply_defaults(res.kind, new_obj, self.allocate_ip)
        causes = kube_schema.validate(res.kind, new_obj, old.obj if old else None)
        if causes:
            raise KubeError(422, '%s%s "%s" is invalid: %s' % (
                res.kind, "." + res.group if res.group else "", name,
                ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes)),
                details={"name": name, "group": res.group, "kind": res.kind, "causes": causes})
        md.pop("managedFields", None)
        if old is None:
            changed = True
            if not dry_run:
                self._new_meta(res, new_obj)
            else:
                md["uid"] = str(uuid.uuid4())
                md["creationTimestamp"] = now_rfc3339()
                if res.generation:
                    md["generation"] = 1
        else:
            for k in ("uid", "resourceVersion", "creationTimestamp", "generation"):
                if k in old.obj["metadata"]:
                    md[k] = old.obj["metadata"][k]
            if res.status_sub and "status" in old.obj:
                new_obj["status"] = copy.deepcopy(old.obj["status"])
            elif res.status_sub:
                new_obj.pop("status", None)
            changed = new_obj != old.obj or _ownership(managers) != _ownership(old.managers)
            spec_changed = self.owned_view(new_obj, res).get("spec") != self.owned_view(old.obj, res).get("spec")
            if changed and not dry_run:
                md["resourceVersion"] = self.bump()
                if res.generation and spec_changed:
                    md["generation"] = old.obj["metadata"].get("generation", 1) + 1
        st = Stored(new_obj, managers)
        if not dry_run:
            self.objects[self.key(res, ns, name)] = st
            if res.kind == "Deployment" and (old is None or md.get("generation") != old.obj["metadata"].get(
                    "generation")):
                self.schedule_rollout(ns, name, md["generation"])
        return self.render(st), changed

    # -- server-side apply ----------------------------------------------------------

    def apply(self, res, ns, name, body, manager, force, dry_run):
        self.check_identity(res, ns, name, body)
        md = body["metadata"]
        if md.get("managedFields") is not None:
            raise KubeError(400, "metadata.managedFields must be nil")
        key = self.key(res, ns, name)
        old = self.objects.get(key)
        if old is not None:
            if md.get("resourceVersion") not in (None, old.obj["metadata"]["resourceVersion"]):
                raise KubeError(409, 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                                     'please apply your changes to the latest version and try again'
                                % (res.qualified, name),
                                details={"name": name, "group": res.group, "kind": res.plural})
            if md.get("uid") not in (None, old.obj["metadata"]["uid"]):
                raise KubeError(409, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                                % (md.get("uid"), old.obj["metadata"]["uid"]))
        try:
            fields = kube_ssa.flatten(self.owned_view(body, res))
        except kube_ssa.FieldError as e:
            raise KubeError(422, '%s "%s" is invalid: %s: %s' % (res.kind, name, e.field, e.message),
                            details={"name": name, "kind": res.kind, "causes": [
                                {"reason": "FieldValueDuplicate", "message": e.message, "field": e.field}]})
        live = old.obj if old else {}
        managers = copy.deepcopy(old.managers) if old else {}
        me = (manager, "Apply")
        conflicts = []
        for path, value in fields.items():
            if value is kube_ssa.ITEM:
                continue
            cur = kube_ssa.get_path(live, path)
            for other, info in managers.items():
                if other == me or path not in info["paths"]:
                    continue
                if cur is not MISSING and cur != value:
                    conflicts.append((other, path))
        if conflicts and not force:
            causes = [{"reason": "FieldManagerConflict",
                       "message": 'conflict with "%s" using %s' % (o[0], managers[o]["apiVersion"]),
                       "field": kube_ssa.dotted_path(p)} for o, p in conflicts]
            raise KubeError(409, "Apply failed with %d conflict%s: %s" % (
                len(conflicts), "" if len(conflicts) == 1 else "s",
                "; ".join("%s: %s" % (c["message"], c["field"]) for c in causes)),
                details={"name": name, "group": res.group, "kind": res.plural, "causes": causes})
        for other, path in conflicts:
            managers[other]["paths"].discard(path)
        new_obj = copy.deepcopy(live) if live else {"metadata": {}}
        previous = managers.get(me, {}).get("paths", set())
        others = set()
        for other, info in managers.items():
            if other != me:
                others |= info["paths"]
        for path in sorted(previous - set(fields) - others, key=len, reverse=True):
            kube_ssa.remove_path(new_obj, path)
        for path, value in fields.items():
            kube_ssa.set_path(new_obj, path, value)
        new_managers = {k: v for k, v in managers.items() if v["paths"]}
        stamp = now_rfc3339()
        if me in managers and managers[me]["paths"] == set(fields):
            stamp = managers[me]["time"]
        new_managers[me] = {"paths": set(fields), "apiVersion": res.api_version, "time": stamp}
        rendered, _ = self.finalize(res, ns, name, new_obj, old, new_managers, dry_run)
        return (201 if old is None else 200), rendered

    # -- update-style writes (POST, PUT, merge/strategic/JSON patch, edit) --------------

    def update(self, res, ns, name, new_obj, manager, dry_run, create=False):
        key = self.key(res, ns, name)
        old = self.objects.get(key)
        try:
            new_fields = kube_ssa.flatten(self.owned_view(new_obj, res))
            old_fields = kube_ssa.flatten(self.owned_view(old.obj, res)) if old else {}
        except kube_ssa.FieldError as e:
            raise KubeError(422, '%s "%s" is invalid: %s: %s' % (res.kind, name, e.field, e.message))
        managers = copy.deepcopy(old.managers) if old else {}
        me = (manager, "Update")
        changed = {p for p, v in new_fields.items() if old_fields.get(p, MISSING) != v}
        removed = set(old_fields) - set(new_fields)
        for other, info in managers.items():
            if other != me:
                info["paths"] -= changed | removed
        mine = managers.get(me, {"paths": set(), "apiVersion": res.api_version, "time": now_rfc3339()})
        mine["paths"] = (mine["paths"] - removed) | changed
        if changed or removed:
            mine["time"] = now_rfc3339()
        managers[me] = mine
        managers = {k: v for k, v in managers.items() if v["paths"]}
        rendered, _ = self.finalize(res, ns, name, new_obj, old, managers, dry_run)
        return (201 if create else 200), rendered

    # -- rollout simulation -------------------------------------------------------

    def schedule_rollout(self, ns, name, generation):
        t = threading.Timer(self.rollout_delay, self.finish_rollout, args=(ns, name, generation))
        t.daemon = True
        self.timers = [x for x in self.timers if x.is_alive()] + [t]
        t.start()

    def finish_rollout(self, ns, name, generation):
        with self.lock:
            st = self.objects.get(("apps/v1", "Deployment", ns, name))
            if st is None or st.obj["metadata"].get("generation") != generation:
                return
            replicas = st.obj.get("spec", {}).get("replicas", 1)
            ts = now_rfc3339()
            status = {"observedGeneration": generation}
            if replicas:
                status.update({"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
                               "availableReplicas": replicas})
            status["conditions"] = [
                {"type": "Available", "status": "True", "lastUpdateTime": ts, "lastTransitionTime": ts,
                 "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": "True", "lastUpdateTime": ts, "lastTransitionTime": ts,
                 "reason": "NewReplicaSetAvailable",
                 "message": 'ReplicaSet "%s-%s" has successfully progressed.' % (name, generation)},
            ]
            st.obj["status"] = status
            st.obj["metadata"]["resourceVersion"] = self.bump()

    # -- control -----------------------------------------------------------------

    def state(self):
        out = {}
        for (gv, kind, ns, name), st in self.objects.items():
            out["%s/%s/%s/%s" % (gv, kind, ns, name)] = self.render(st)
        return out


def _ownership(managers):
    return {k: frozenset(v["paths"]) for k, v in managers.items()}


# ---------------------------------------------------------------------------
# HTTP


class Handler(fakecommon.BaseHandler):
    def handle_any(self):
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, url.query
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        try:
            body = self.read_body()
        except fakecommon.BodyError as e:
            self.send_json(400, KubeError(400, str(e)).status())
            self.close_connection = True
            return
        if path.startswith("/_fake/"):
            self.control(app, path, body)
            return
        entry = {"method": self.command, "path": path, "query": query, "content_type": ctype or None,
                 "status": None}
        headers = {}
        try:
            self.authenticate(app)
            rule = app.fails.take((self.command, path))
            if rule is not None:
                if rule["status"] == 429:
                    headers["Retry-After"] = "1"
                raise KubeError(rule["status"], rule["message"], rule.get("reason"))
            status, out = self.dispatch(app, path, q, ctype, body)
        except KubeError as e:
            status, out = e.code, e.status()
        except Exception as e:  # a bug in the fake: answer 500 and say where
            traceback.print_exc()
            status, out = 500, KubeError(500, "fake internal error: %r" % e).status()
        entry["status"] = status
        app.log.add(entry)
        self.send_json(status, out, headers=headers)

    def authenticate(self, app):
        peer = getattr(self.connection, "getpeercert", None)
        if peer is not None and peer():
            # Verified against --client-ca during the handshake (CERT_OPTIONAL
            # refuses a certificate it cannot verify): the subject's CN is the
            # user, as with the API server's x509 authenticator.
            return
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or auth[len("Bearer "):].strip() != app.token:
            raise KubeError(401, "Unauthorized")

    def dispatch(self, app, path, q, ctype, body):
        what, arg = app.parse_path(path)
        if what != "object":
            if self.command != "GET":
                raise KubeError(405, "the server does not allow this method on the requested resource")
            return 200, app.discovery(what, arg)
        res, ns, name, sub = arg
        dry = q.get("dryRun", [None])[0]
        if dry not in (None, "All"):
            raise KubeError(400, 'Invalid dry run value: "%s" (only "All" is supported)' % dry)
        dry_run = dry == "All"
        manager = q.get("fieldManager", [None])[0] or None
        if manager is not None and len(manager) > 128:
            raise KubeError(422, "fieldManager: Too long: may not be longer than 128 characters")
        if manager is None and self.command != "PATCH":
            ua = self.headers.get("User-Agent") or "unknown"
            manager = ua.split("/", 1)[0] or "unknown"
        with app.lock:
            if sub == "status" and self.command != "GET":
                raise KubeError(405, "the fake does not write the status subresource; it is set by its "
                                     "controller simulation")
            if ns is not None and not (self.command == "GET" and name is None):
                app.require_namespace(ns)
            if self.command == "GET":
                return 200, self.get(app, res, ns, name, q)
            if self.command == "POST":
                if name is not None:
                    raise KubeError(405, "POST is only allowed on a collection")
                return self.create(app, res, ns, body, ctype, manager, dry_run)
            if name is None:
                raise KubeError(405, "%s is not allowed on a collection" % self.command)
            if self.command == "PUT":
                return self.replace(app, res, ns, name, body, ctype, manager, dry_run)
            if self.command == "PATCH":
                return self.patch(app, res, ns, name, body, ctype, q, manager, dry_run)
            if self.command == "DELETE":
                return self.delete(app, res, ns, name, q, body, dry_run)
        raise KubeError(405, "method %s is not supported" % self.command)

    def get(self, app, res, ns, name, q):
        if name is not None:
            st = app.objects.get(app.key(res, ns, name))
            if st is None:
                raise not_found(res, name)
            return app.render(st)
        selector = parse_label_selector(q.get("labelSelector", [""])[0])
        items = []
        for (gv, kind, ons, oname), st in app.objects.items():
            if gv == res.api_version and kind == res.kind and (ns is None or ons == ns):
                labels = st.obj["metadata"].get("labels") or {}
                if all(labels.get(k) == v for k, v in selector.items()):
                    items.append(app.render(st))
        return {"kind": res.kind + "List", "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(app.rv)}, "items": items}

    def decode_json(self, body):
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise KubeError(400, "the request body is not valid JSON: %s" % e)

    def create(self, app, res, ns, body, ctype, manager, dry_run):
        if ctype not in ("application/json", "application/yaml"):
            raise KubeError(415, 'the body of the request was in an unknown format - accepted media types '
                                 'include: application/json, application/yaml')
        obj = self.decode_json(body) if ctype == "application/json" else load_yaml(body)
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
            raise KubeError(422, "%s is invalid: metadata.name: Required value: name or generateName is required"
                            % res.kind, details={"kind": res.kind, "causes": [
                                {"reason": "FieldValueRequired", "message": "Required value",
                                 "field": "metadata.name"}]})
        name = obj["metadata"]["name"]
        app.check_identity(res, ns, name, obj)
        if app.key(res, ns, name) in app.objects:
            raise KubeError(409, '%s "%s" already exists' % (res.qualified, name), reason="AlreadyExists",
                            details={"name": name, "group": res.group, "kind": res.plural})
        obj["metadata"].pop("managedFields", None)
        return app.update(res, ns, name, obj, manager, dry_run, create=True)

    def replace(self, app, res, ns, name, body, ctype, manager, dry_run):
        if ctype not in ("application/json", "application/yaml"):
            raise KubeError(415, "the body of the request was in an unknown format - accepted media types "
                                 "include: application/json, application/yaml")
        obj = self.decode_json(body) if ctype == "application/json" else load_yaml(body)
        app.check_identity(res, ns, name, obj)
        old = app.objects.get(app.key(res, ns, name))
        if old is None:
            raise not_found(res, name)
        rv = obj["metadata"].get("resourceVersion")
        if rv is not None and rv != old.obj["metadata"]["resourceVersion"]:
            raise KubeError(409, 'Operation cannot be fulfilled on %s "%s": the object has been modified; please '
                                 'apply your changes to the latest version and try again' % (res.qualified, name),
                            details={"name": name, "group": res.group, "kind": res.plural})
        obj["metadata"].pop("managedFields", None)
        return app.update(res, ns, name, obj, manager, dry_run)

    def patch(self, app, res, ns, name, body, ctype, q, manager, dry_run):
        force = q.get("force", ["false"])[0]
        if force not in ("true", "false", ""):
            raise KubeError(400, 'force must be "true" or "false", got "%s"' % force)
        if ctype == APPLY_CT:
            if not manager:
                raise KubeError(400, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                     'is required for apply patch')
            obj = load_yaml(body)
            return app.apply(res, ns, name, obj, manager, force == "true", dry_run)
        if force == "true":
            raise KubeError(422, "force may only be set for apply patches")
        if ctype not in (MERGE_CT, STRATEGIC_CT, JSONPATCH_CT):
            raise KubeError(415, 'the body of the request was in an unknown format - accepted media types '
                                 'include: application/json-patch+json, application/merge-patch+json, '
                                 'application/apply-patch+yaml, application/strategic-merge-patch+json')
        old = app.objects.get(app.key(res, ns, name))
        if old is None:
            raise not_found(res, name)
        doc = self.decode_json(body)
        if manager is None:
            ua = self.headers.get("User-Agent") or "unknown"
            manager = ua.split("/", 1)[0] or "unknown"
        current = copy.deepcopy(old.obj)
        try:
            if ctype == MERGE_CT:
                if not isinstance(doc, dict):
                    raise kube_ssa.PatchError("a merge patch must be a JSON object")
                new_obj = kube_ssa.merge_patch(current, doc)
            elif ctype == STRATEGIC_CT:
                if not isinstance(doc, dict):
                    raise kube_ssa.PatchError("a strategic merge patch must be a JSON object")
                new_obj = kube_ssa.strategic_merge_patch(current, doc)
            else:
                new_obj = kube_ssa.json_patch(current, doc)
        except kube_ssa.PatchError as e:
            raise KubeError(422 if ctype == JSONPATCH_CT else 400, str(e))
        app.check_identity(res, ns, name, new_obj)
        rv = new_obj["metadata"].get("resourceVersion")
        if rv != old.obj["metadata"]["resourceVersion"]:
            raise KubeError(409, 'Operation cannot be fulfilled on %s "%s": the object has been modified'
                            % (res.qualified, name))
        return app.update(res, ns, name, new_obj, manager, dry_run)

    def delete(self, app, res, ns, name, q, body, dry_run):
        policy = q.get("propagationPolicy", [None])[0]
        if body:
            opts = self.decode_json(body)
            if isinstance(opts, dict):
                policy = opts.get("propagationPolicy", policy)
                if "dryRun" in opts:
                    dry_run = opts["dryRun"] == ["All"]
        if policy not in (None, "Foreground", "Background", "Orphan"):
            raise KubeError(400, 'propagationPolicy: Unsupported value: "%s": supported values: '
                                 '"Foreground", "Background", "Orphan"' % policy)
        key = app.key(res, ns, name)
        st = app.objects.get(key)
        if st is None:
            raise not_found(res, name)
        if not dry_run:
            del app.objects[key]
            app.bump()
            if res.kind == "Namespace":
                for k in [k for k in app.objects if k[2] == name]:
                    del app.objects[k]
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": res.group, "kind": res.plural,
                                 "uid": st.obj["metadata"]["uid"]}}

    # -- control endpoints --------------------------------------------------------

    def control(self, app, path, body):
        try:
            if self.common_control(app, path, body, parse_fail_rule):
                return
            if path == "/_fake/edit" and self.command == "POST":
                self.send_json(200, self.edit(app, body))
            else:
                self.send_json(404, {"error": "no control endpoint %s %s" % (self.command, path)})
        except (ValueError, KubeError) as e:
            self.send_json(400, {"error": e.message if isinstance(e, KubeError) else str(e)})

    def edit(self, app, body):
        doc = json.loads(body or b"{}")
        if not isinstance(doc, dict) or not isinstance(doc.get("path"), str) or not isinstance(doc.get("merge"),
                                                                                                dict):
            raise ValueError('edit needs {"path": "/apis/.../name", "merge": {...}}')
        what, arg = app.parse_path(doc["path"])
        if what != "object" or arg[2] is None:
            raise ValueError("edit path %s does not name an object" % doc["path"])
        res, ns, name, _ = arg
        with app.lock:
            old = app.objects.get(app.key(res, ns, name))
            if old is None:
                raise ValueError("edit: %s does not exist" % doc["path"])
            new_obj = kube_ssa.merge_patch(copy.deepcopy(old.obj), doc["merge"])
            manager = doc.get("manager", "kubectl-edit")
            status, out = app.update(res, ns, name, new_obj, manager, False)
        return out


def parse_label_selector(sel):
    out = {}
    for part in [p for p in sel.split(",") if p.strip()]:
        if "!=" in part or "=" not in part:
            raise KubeError(400, "the fake supports only equality label selectors (k=v), got %r" % part)
        k, v = part.split("==" if "==" in part else "=", 1)
        out[k.strip()] = v.strip()
    return out


def load_yaml(body):
    try:
        return yaml.safe_load(body.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise KubeError(400, "error decoding YAML: %s" % e)


def parse_fail_rule(body):
    doc = json.loads(body or b"{}")
    fakecommon.fail_rule_members(doc, ("method", "path_contains", "status", "times", "message", "reason"))
    method = doc.get("method", "*")
    if method not in ("*", "GET", "POST", "PUT", "PATCH", "DELETE"):
        raise ValueError("method must be GET, POST, PUT, PATCH, DELETE or *")
    status, times = fakecommon.fail_rule_status_times(doc)
    reason = doc.get("reason") or REASONS.get(status, "InternalError")
    message = doc.get("message") or "injected failure: %s" % reason
    return {"method": method, "path_contains": doc.get("path_contains", ""), "status": status, "times": times,
            "reason": reason, "message": message}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake Kubernetes API server for tests")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--token", required=True, help="the bearer token clients must send")
    ap.add_argument("--tls-cert", help="PEM certificate (chain); serve HTTPS when given")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    ap.add_argument("--client-ca", help="PEM CA whose client certificates authenticate "
                    "(needs --tls-cert)")
    ap.add_argument("--rollout-delay-ms", type=int, default=200)
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        ap.error("--client-ca needs --tls-cert")
    if args.rollout_delay_ms < 0:
        ap.error("--rollout-delay-ms must be >= 0")
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as e:
            ap.error("cannot load --tls-cert/--tls-key: %s" % e)
        if args.client_ca:
            try:
                ctx.load_verify_locations(args.client_ca)
            except (OSError, ssl.SSLError) as e:
                ap.error("cannot load --client-ca: %s" % e)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    app = Kube(args.token, args.rollout_delay_ms)
    server = fakecommon.FakeServer(Handler, app, tls_context=ctx)
    app.port = server.port
    fakecommon.serve_forever(server, args.port_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
