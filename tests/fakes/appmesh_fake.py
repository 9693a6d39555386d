#!/usr/bin/python3
"""A fake AWS App Mesh control plane (REST API 2019-01-25) for infergate's tests.

infergate's bootstrap provisions App Mesh meshes, virtual nodes, routers, routes
and services over the REST API with SigV4.  This fake lets the tests exercise
that client end to end without AWS, and it is strict on purpose: everything it
knows about the API comes from botocore's service model (the same file the AWS
SDKs are generated from), so a request that real App Mesh would reject is
rejected here too:

- every request's SigV4 signature is recomputed with botocore's SigV4Auth
  (service "appmesh", the configured region and keys) and compared;
- URL labels, query parameters and the JSON body are validated against the
  operation's input shape (required members, types, enums, lengths, unions,
  no unknown members);
- resources have real state: names conflict, missing parents are 404, deleting
  something still in use is 409 ResourceInUseException, updates bump version;
- responses are built to the output shapes and checked against them before
  they are sent, so botocore (and infergate) parse exactly what AWS returns.

Control endpoints for tests (no auth): GET /_fake/state, GET /_fake/requests,
POST /_fake/reset, POST /_fake/fail.  See docs/testing-fakes.md.

It is not a data plane and does not model mesh sharing across accounts beyond
checking the meshOwner parameter against the configured account.
"""

import argparse
import base64
import json
import os
import re
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fakecommon  # noqa: E402
from aws_rest import ApiError, RestJsonApi, SigV4Verifier, bad_request  # noqa: E402

import botocore.loaders  # noqa: E402

SERVICE = "appmesh"
API_VERSION = "2019-01-25"
MAX_TAGS = 50

# Resource kinds: the parent kind, the member naming the resource, and the
# kinds nested under it.  The model's operation names are derived from these
# (CreateVirtualNode, ListVirtualNodes, ...).
KINDS = {
    "Mesh": {"parent": None, "name": "meshName", "arn": "mesh"},
    "VirtualNode": {"parent": "Mesh", "name": "virtualNodeName", "arn": "virtualNode"},
    "VirtualRouter": {"parent": "Mesh", "name": "virtualRouterName", "arn": "virtualRouter"},
    "Route": {"parent": "VirtualRouter", "name": "routeName", "arn": "route"},
    "VirtualService": {"parent": "Mesh", "name": "virtualServiceName", "arn": "virtualService"},
    "VirtualGateway": {"parent": "Mesh", "name": "virtualGatewayName", "arn": "virtualGateway"},
    "GatewayRoute": {"parent": "VirtualGateway", "name": "gatewayRouteName", "arn": "gatewayRoute"},
}


def plural(kind):
    return kind + ("es" if kind == "Mesh" else "s")


def lower_first(s):
    return s[0].lower() + s[1:]


def key_members(kind):
    """Name members identifying a resource of `kind`, outermost first."""
    out = []
    k = kind
    while k is not None:
        out.insert(0, KINDS[k]["name"])
        k = KINDS[k]["parent"]
    return out


# ---------------------------------------------------------------------------
# State


class Resource:
    def __init__(self, kind, keys, spec, tags, client_token, arn, now):
        self.kind = kind
        self.keys = keys  # {"meshName": ..., "virtualNodeName": ...}
        self.spec = spec
        self.tags = tags
        self.client_token = client_token
        self.arn = arn
        self.uid = str(uuid.uuid4())
        self.version = 1
        self.created = now
        self.updated = now


class AppMesh:
    """The API: auth, validation, state and the control endpoints."""

    def __init__(self, region, access_key, secret_key, account, session_token):
        loader = botocore.loaders.Loader()
        self.model = loader.load_service_model(SERVICE, "service-2", API_VERSION)
        self.api = RestJsonApi(self.model)
        self.shapes = self.model["shapes"]
        self.verifier = SigV4Verifier(SERVICE, region, access_key, secret_key, session_token)
        self.region = region
        self.account = account
        self.lock = threading.RLock()
        self.resources = {}  # (kind, tuple(key values)) -> Resource, insertion-ordered
        self.log = fakecommon.RequestLog()
        self.fails = fakecommon.FailRules(lambda rule, op: rule["op"] in ("*", op))

    # -- helpers over state ---------------------------------------------------

    def arn(self, kind, keys):
        path = []
        for km in key_members(kind):
            for k, d in KINDS.items():
                if d["name"] == km:
                    path.append("%s/%s" % (d["arn"], keys[km]))
        return "arn:aws:appmesh:%s:%s:%s" % (self.region, self.account, "/".join(path))

    def get(self, kind, keys):
        return self.resources.get((kind, tuple(keys[k] for k in key_members(kind))))

    def require(self, kind, keys):
        r = self.get(kind, keys)
        if r is None:
            desc = ", ".join("%s '%s'" % (k, keys[k]) for k in key_members(kind))
            raise ApiError(404, "NotFoundException", "%s not found (%s)" % (kind, desc))
        return r

    def children_of(self, kind, keys):
        out = []
        for r in self.resources.values():
            parent = KINDS[r.kind]["parent"]
            if parent == kind and all(r.keys[k] == keys[k] for k in key_members(kind)):
                out.append(r)
        return out

    def in_mesh(self, kind, mesh):
        return [r for r in self.resources.values() if r.kind == kind and r.keys["meshName"] == mesh]

    def check_references(self, kind, keys, spec):
        """Resources a spec points at must exist in the same mesh (404 otherwise)."""
        mesh = keys["meshName"]
        if kind == "Route":
            for node in route_targets(spec):
                self.require("VirtualNode", {"meshName": mesh, "virtualNodeName": node})
        elif kind == "VirtualService":
            prov = (spec or {}).get("provider") or {}
            if "virtualNode" in prov:
                self.require("VirtualNode", {"meshName": mesh,
                                             "virtualNodeName": prov["virtualNode"]["virtualNodeName"]})
            if "virtualRouter" in prov:
                self.require("VirtualRouter", {"meshName": mesh,
                                               "virtualRouterName": prov["virtualRouter"]["virtualRouterName"]})
        elif kind == "GatewayRoute":
            for svc in gateway_route_targets(spec):
                self.require("VirtualService", {"meshName": mesh, "virtualServiceName": svc})

    def users_of(self, kind, keys):
        """Descriptions of resources whose spec references (kind, keys)."""
        mesh = keys["meshName"]
        users = []
        if kind == "VirtualNode":
            name = keys["virtualNodeName"]
            for r in self.in_mesh("Route", mesh):
                if name in route_targets(r.spec):
                    users.append("route %s/%s" % (r.keys["virtualRouterName"], r.keys["routeName"]))
            for r in self.in_mesh("VirtualService", mesh):
                prov = (r.spec or {}).get("provider") or {}
                if prov.get("virtualNode", {}).get("virtualNodeName") == name:
                    users.append("virtual service %s" % r.keys["virtualServiceName"])
        elif kind == "VirtualRouter":
            name = keys["virtualRouterName"]
            for r in self.in_mesh("VirtualService", mesh):
                prov = (r.spec or {}).get("provider") or {}
                if prov.get("virtualRouter", {}).get("virtualRouterName") == name:
                    users.append("virtual service %s" % r.keys["virtualServiceName"])
        elif kind == "VirtualService":
            name = keys["virtualServiceName"]
            for r in self.in_mesh("GatewayRoute", mesh):
                if name in gateway_route_targets(r.spec):
                    users.append("gateway route %s/%s" % (r.keys["virtualGatewayName"], r.keys["gatewayRouteName"]))
        return users

    def data(self, r, status="ACTIVE"):
        d = dict(r.keys)
        d["metadata"] = self.metadata(r)
        d["spec"] = r.spec
        d["status"] = {"status": status}
        return d

    def metadata(self, r):
        return {
            "arn": r.arn,
            "createdAt": r.created,
            "lastUpdatedAt": r.updated,
            "meshOwner": self.account,
            "resourceOwner": self.account,
            "uid": r.uid,
            "version": r.version,
        }

    def ref(self, r):
        shape = self.shapes[r.kind + "Ref"]
        md = self.metadata(r)
        out = {}
        for name in shape["members"]:
            if name in r.keys:
                out[name] = r.keys[name]
            elif name in md:
                out[name] = md[name]
        return out

    def by_arn(self, arn):
        for r in self.resources.values():
            if r.arn == arn:
                return r
        raise ApiError(404, "NotFoundException", "no resource with arn %s" % arn)

    # -- operations -----------------------------------------------------------

    def execute(self, op_name, p):
        if p.get("meshOwner") is not None and p["meshOwner"] != self.account:
            raise ApiError(403, "ForbiddenException",
                           "mesh owner %s has not shared a mesh with account %s" % (p["meshOwner"], self.account))
        for verb in ("Create", "Describe", "Update", "Delete"):
            if op_name.startswith(verb) and op_name[len(verb):] in KINDS:
                return getattr(self, "op_" + verb.lower())(op_name[len(verb):], p)
        for kind in KINDS:
            if op_name == "List" + plural(kind):
                return self.op_list(kind, p)
        if op_name == "ListTagsForResource":
            return self.op_list_tags(p)
        if op_name == "TagResource":
            r = self.by_arn(p["resourceArn"])
            merged = {t["key"]: t["value"] for t in r.tags}
            for t in p["tags"]:
                merged[t["key"]] = t["value"]
            if len(merged) > MAX_TAGS:
                raise ApiError(400, "TooManyTagsException",
                               "resource %s would have %d tags, the limit is %d" % (r.arn, len(merged), MAX_TAGS))
            r.tags = [{"key": k, "value": v} for k, v in merged.items()]
            return {}
        if op_name == "UntagResource":
            r = self.by_arn(p["resourceArn"])
            r.tags = [t for t in r.tags if t["key"] not in p["tagKeys"]]
            return {}
        raise ApiError(501, "NotImplementedException", "operation %s is not modelled by the fake" % op_name)

    def keys_from(self, kind, p):
        return {k: p[k] for k in key_members(kind)}

    def op_create(self, kind, p):
        keys = self.keys_from(kind, p)
        parent = KINDS[kind]["parent"]
        if parent is not None:
            self.require(parent, keys)
        existing = self.get(kind, keys)
        if existing is not None:
            token = p.get("clientToken")
            if token is not None and token == existing.client_token:
                return self.data(existing)
            raise ApiError(409, "ConflictException",
                           "%s '%s' already exists in %s" % (kind, keys[KINDS[kind]["name"]],
                                                              "this account" if parent is None else
                                                              "mesh '%s'" % keys["meshName"]))
        spec = self.default_spec(kind, p.get("spec"))
        self.check_references(kind, keys, spec)
        tags = dedupe_tags(p.get("tags") or [])
        r = Resource(kind, keys, spec, tags, p.get("clientToken"), self.arn(kind, keys), time.time())
        self.resources[(kind, tuple(keys[k] for k in key_members(kind)))] = r
        return self.data(r)

    def default_spec(self, kind, spec):
        spec = json.loads(json.dumps(spec if spec is not None else {}))
        if kind == "Mesh" and "egressFilter" not in spec:
            # App Mesh fills in the default egress filter on meshes.
            spec["egressFilter"] = {"type": "DROP_ALL"}
        return spec

    def op_describe(self, kind, p):
        return self.data(self.require(kind, self.keys_from(kind, p)))

    def op_update(self, kind, p):
        keys = self.keys_from(kind, p)
        r = self.require(kind, keys)
        spec = self.default_spec(kind, p.get("spec"))
        self.check_references(kind, keys, spec)
        r.spec = spec
        r.version += 1
        r.updated = time.time()
        return self.data(r)

    def op_delete(self, kind, p):
        keys = self.keys_from(kind, p)
        r = self.require(kind, keys)
        kids = self.children_of(kind, keys)
        if kids:
            counts = {}
            for c in kids:
                counts[c.kind] = counts.get(c.kind, 0) + 1
            raise ApiError(409, "ResourceInUseException",
                           "%s '%s' still has %s; delete them first" % (
                               kind, keys[KINDS[kind]["name"]],
                               ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items()))))
        users = self.users_of(kind, keys)
        if users:
            raise ApiError(409, "ResourceInUseException",
                           "%s '%s' is referenced by %s" % (kind, keys[KINDS[kind]["name"]], ", ".join(users)))
        del self.resources[(kind, tuple(keys[k] for k in key_members(kind)))]
        r.updated = time.time()
        return self.data(r, status="DELETED")

    def page(self, items, p):
        start = 0
        if p.get("nextToken") is not None:
            try:
                start = int(base64.urlsafe_b64decode(p["nextToken"].encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise bad_request("nextToken '%s' is not a token this API returned" % p["nextToken"])
            if start < 0 or start > len(items):
                raise bad_request("nextToken '%s' is out of range" % p["nextToken"])
        limit = p.get("limit") or 100
        chunk = items[start:start + limit]
        token = None
        if start + limit < len(items):
            token = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        return chunk, token

    def op_list(self, kind, p):
        parent = KINDS[kind]["parent"]
        if parent is not None:
            pkeys = self.keys_from(parent, p)
            self.require(parent, pkeys)
            items = self.children_of(parent, pkeys)
            items = [r for r in items if r.kind == kind]
        else:
            items = [r for r in self.resources.values() if r.kind == kind]
        chunk, token = self.page(items, p)
        out = {lower_first(plural(kind)): [self.ref(r) for r in chunk]}
        if token is not None:
            out["nextToken"] = token
        return out

    def op_list_tags(self, p):
        r = self.by_arn(p["resourceArn"])
        chunk, token = self.page(r.tags, p)
        out = {"tags": chunk}
        if token is not None:
            out["nextToken"] = token
        return out

    # -- control ------------------------------------------------------------

    def state(self):
        def node(r):
            return {"spec": r.spec, "tags": r.tags, "version": r.version, "arn": r.arn, "uid": r.uid,
                    "children": {}}

        out = {"meshes": {}}
        nodes = {}
        for (kind, keyt), r in self.resources.items():
            nodes[(kind, keyt)] = node(r)
        for (kind, keyt), n in nodes.items():
            parent = KINDS[kind]["parent"]
            name = keyt[-1]
            if parent is None:
                out["meshes"][name] = n
            else:
                coll = lower_first(plural(kind))
                nodes[(parent, keyt[:-1])]["children"].setdefault(coll, {})[name] = n
        return out

    def reset(self):
        with self.lock:
            self.resources.clear()
        self.log.clear()
        self.fails.clear()


def route_targets(spec):
    names = []
    for rt in ("httpRoute", "http2Route", "grpcRoute", "tcpRoute"):
        for wt in (((spec or {}).get(rt) or {}).get("action") or {}).get("weightedTargets") or []:
            names.append(wt.get("virtualNode"))
    return names


def gateway_route_targets(spec):
    names = []
    for rt in ("httpRoute", "http2Route", "grpcRoute"):
        target = ((((spec or {}).get(rt) or {}).get("action") or {}).get("target") or {})
        vs = target.get("virtualService") or {}
        if vs.get("virtualServiceName"):
            names.append(vs["virtualServiceName"])
    return names


def dedupe_tags(tags):
    merged = {}
    for t in tags:
        merged[t["key"]] = t["value"]
    return [{"key": k, "value": v} for k, v in merged.items()]


# ---------------------------------------------------------------------------
# HTTP


class Handler(fakecommon.BaseHandler):
    def handle_any(self):
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        raw_path, query = url.path, url.query
        try:
            body = self.read_body()
        except fakecommon.BodyError as e:
            self.send_error_json(ApiError(400, "BadRequestException", str(e)))
            self.close_connection = True
            return
        if raw_path.startswith("/_fake/"):
            self.control(app, raw_path, body)
            return
        entry = {"op": app.api.op_name_for(self.command, raw_path), "method": self.command, "path": raw_path,
                 "query": query, "status": None}
        try:
            app.verifier.verify(self.command, raw_path, query, self.headers, body)
            route, labels = app.api.match(self.command, raw_path)
            entry["op"] = route.name
            params = app.api.parse_input(route, labels, query, self.headers, body)
            entry["params"] = params
            rule = app.fails.take(route.name)
            if rule is not None:
                raise ApiError(int(rule["status"]), rule["type"], rule["message"])
            with app.lock:
                result = app.execute(route.name, params)
                out = app.api.output_body(route, result)
            status = route.op["http"].get("responseCode", 200)
            entry["status"] = status
            app.log.add(entry)
            self.send_json(status, out, headers={"x-amzn-RequestId": str(uuid.uuid4())})
        except ApiError as e:
            entry["status"] = e.status
            entry["error"] = e.type
            app.log.add(entry)
            self.send_error_json(e)
        except Exception as e:  # a bug in the fake: answer 500 and say where
            traceback.print_exc()
            err = ApiError(500, "InternalServerErrorException", "fake internal error: %r" % e)
            entry["status"] = 500
            entry["error"] = err.type
            app.log.add(entry)
            self.send_error_json(err)

    def send_error_json(self, e):
        self.send_json(
            e.status,
            {"__type": e.type, "message": e.message},
            headers={"x-amzn-ErrorType": e.type, "x-amzn-RequestId": str(uuid.uuid4())},
        )

    def control(self, app, path, body):
        if not self.common_control(app, path, body,
                                   lambda b: parse_fail_rule(b, app.model["operations"])):
            self.send_json(404, {"error": "no control endpoint %s %s" % (self.command, path)})


DEFAULT_ERROR_TYPES = {
    400: "BadRequestException",
    403: "ForbiddenException",
    404: "NotFoundException",
    409: "ConflictException",
    429: "TooManyRequestsException",
    500: "InternalServerErrorException",
    503: "ServiceUnavailableException",
}


def parse_fail_rule(body, operations):
    try:
        doc = json.loads(body or b"{}")
    except ValueError as e:
        raise ValueError("fail rule is not JSON: %s" % e)
    fakecommon.fail_rule_members(doc, ("op", "status", "type", "message", "times"))
    op = doc.get("op", "*")
    if op != "*" and op not in operations:
        raise ValueError("op '%s' is not an App Mesh operation" % op)
    status, times = fakecommon.fail_rule_status_times(doc)
    type_ = doc.get("type") or DEFAULT_ERROR_TYPES.get(status, "InternalServerErrorException")
    message = doc.get("message") or "injected failure (%s)" % type_
    return {"op": op, "status": status, "type": type_, "message": message, "times": times}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake AWS App Mesh API (2019-01-25) for tests")
    ap.add_argument("--port-file", required=True, help="file to write the listening port to")
    ap.add_argument("--region", default="us-west-2")
    ap.add_argument("--access-key", default="AKIDFAKE")
    ap.add_argument("--secret-key", default="SECRETFAKE")
    ap.add_argument("--account", default="111122223333")
    ap.add_argument("--session-token", default=None,
                    help="if set, requests must carry this X-Amz-Security-Token")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"\d{12}", args.account):
        ap.error("--account must be 12 digits, got %r" % args.account)
    app = AppMesh(args.region, args.access_key, args.secret_key, args.account, args.session_token)
    server = fakecommon.FakeServer(Handler, app)
    fakecommon.serve_forever(server, args.port_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
