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
import calendar
import datetime
import email.utils
import hashlib
import hmac
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

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.compat import HTTPHeaders  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
import botocore.loaders  # noqa: E402

SERVICE = "appmesh"
API_VERSION = "2019-01-25"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW_S = 15 * 60
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


class ApiError(Exception):
    """An error answered in the rest-json error shape."""

    def __init__(self, status, type_, message):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


def bad_request(msg):
    return ApiError(400, "BadRequestException", msg)


# ---------------------------------------------------------------------------
# Shape validation against the service model


class ShapeValidator:
    """Checks JSON values against botocore shapes; collects every violation."""

    def __init__(self, shapes):
        self.shapes = shapes

    def check(self, shape_name, value, path, errors):
        shape = self.shapes[shape_name]
        t = shape["type"]
        where = path or shape_name
        if t == "structure":
            if not isinstance(value, dict):
                errors.append("%s: expected an object (%s), got %s" % (where, shape_name, jtype(value)))
                return
            members = shape.get("members", {})
            for k, v in value.items():
                if k not in members:
                    errors.append("%s: unknown member '%s' (not in %s)" % (where, k, shape_name))
                elif v is not None:
                    self.check(members[k]["shape"], v, join(path, k), errors)
            for req in shape.get("required", []):
                if value.get(req) is None:
                    errors.append("%s: missing required member '%s'" % (where, req))
            if shape.get("union"):
                set_members = [k for k, v in value.items() if v is not None and k in members]
                if len(set_members) != 1:
                    errors.append(
                        "%s: exactly one member of union %s must be set (one of %s), got %s"
                        % (where, shape_name, ", ".join(sorted(members)), set_members or "none")
                    )
        elif t == "list":
            if not isinstance(value, list):
                errors.append("%s: expected a list (%s), got %s" % (where, shape_name, jtype(value)))
                return
            self._len(shape, len(value), where, "items", errors)
            for i, item in enumerate(value):
                if item is None:
                    errors.append("%s[%d]: null list member" % (where, i))
                else:
                    self.check(shape["member"]["shape"], item, "%s[%d]" % (path or shape_name, i), errors)
        elif t == "map":
            if not isinstance(value, dict):
                errors.append("%s: expected a map (%s), got %s" % (where, shape_name, jtype(value)))
                return
            self._len(shape, len(value), where, "entries", errors)
            for k, v in value.items():
                self.check(shape["key"]["shape"], k, join(path, k), errors)
                self.check(shape["value"]["shape"], v, join(path, k), errors)
        elif t == "string":
            if not isinstance(value, str):
                errors.append("%s: expected a string (%s), got %s" % (where, shape_name, jtype(value)))
                return
            self._len(shape, len(value), where, "characters", errors)
            if "enum" in shape and value not in shape["enum"]:
                errors.append(
                    "%s: value '%s' is not one of [%s]" % (where, value, ", ".join(shape["enum"]))
                )
            if "pattern" in shape and not re.fullmatch(shape["pattern"], value):
                errors.append("%s: value '%s' does not match pattern %s" % (where, value, shape["pattern"]))
        elif t in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append("%s: expected an integer (%s), got %s" % (where, shape_name, jtype(value)))
                return
            if "min" in shape and value < shape["min"]:
                errors.append("%s: value %d is less than minimum %d" % (where, value, shape["min"]))
            if "max" in shape and value > shape["max"]:
                errors.append("%s: value %d is greater than maximum %d" % (where, value, shape["max"]))
        elif t in ("double", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors.append("%s: expected a number (%s), got %s" % (where, shape_name, jtype(value)))
        elif t == "boolean":
            if not isinstance(value, bool):
                errors.append("%s: expected a boolean (%s), got %s" % (where, shape_name, jtype(value)))
        elif t == "timestamp":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                errors.append("%s: expected a timestamp (%s), got %s" % (where, shape_name, jtype(value)))
        elif t == "blob":
            if not isinstance(value, str):
                errors.append("%s: expected base64 text (%s), got %s" % (where, shape_name, jtype(value)))
        else:
            errors.append("%s: shape type %s is not supported by the fake" % (where, t))

    @staticmethod
    def _len(shape, n, where, unit, errors):
        if "min" in shape and n < shape["min"]:
            errors.append("%s: has %d %s, minimum is %d" % (where, n, unit, shape["min"]))
        if "max" in shape and n > shape["max"]:
            errors.append("%s: has %d %s, maximum is %d" % (where, n, unit, shape["max"]))


def join(path, key):
    return key if not path else path + "." + key


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


# ---------------------------------------------------------------------------
# Routing: the model's requestUri templates compiled to regexes


class Route:
    def __init__(self, op_name, op):
        self.name = op_name
        self.op = op
        self.method = op["http"]["method"]
        uri = op["http"]["requestUri"].split("?", 1)[0]
        pattern = ""
        self.labels = []
        for part in re.split(r"(\{[^}]+\})", uri):
            if part.startswith("{"):
                label = part[1:-1]
                greedy = label.endswith("+")
                label = label.rstrip("+")
                self.labels.append(label)
                pattern += "(?P<%s>%s)" % (label, ".+" if greedy else "[^/]+")
            else:
                pattern += re.escape(part)
        self.regex = re.compile("^" + pattern + "$")


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
        self.shapes = self.model["shapes"]
        self.validator = ShapeValidator(self.shapes)
        self.routes = [Route(n, op) for n, op in self.model["operations"].items()]
        self.region = region
        self.access_key = access_key
        self.secret_key = secret_key
        self.account = account
        self.session_token = session_token
        self.lock = threading.RLock()
        self.resources = {}  # (kind, tuple(key values)) -> Resource, insertion-ordered
        self.log = fakecommon.RequestLog()
        self.fails = fakecommon.FailRules(lambda rule, op: rule["op"] in ("*", op))

    # -- auth ---------------------------------------------------------------

    def verify_sigv4(self, method, raw_path, query, headers, body):
        auth = headers.get("Authorization")
        if not auth:
            if "X-Amz-Signature" in urllib.parse.parse_qs(query):
                raise ApiError(403, "IncompleteSignatureException",
                               "presigned query-string requests are not supported by App Mesh")
            raise ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        m = re.fullmatch(
            r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*",
            auth,
        )
        if not m:
            raise ApiError(
                403, "IncompleteSignatureException",
                "Authorization header requires AWS4-HMAC-SHA256 with 'Credential', 'SignedHeaders' "
                "and 'Signature' (64 lowercase hex digits); got: %s" % auth[:200],
            )
        credential, signed_headers, given_sig = m.groups()
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise ApiError(403, "IncompleteSignatureException",
                           "Credential must be AKID/yyyymmdd/region/service/aws4_request, got %s" % credential)
        akid, scope_date, scope_region, scope_service, _ = parts
        if akid != self.access_key:
            raise ApiError(403, "UnrecognizedClientException",
                           "The security token included in the request is invalid. (unknown access key %s)" % akid)
        token = headers.get("X-Amz-Security-Token")
        if self.session_token is not None and token != self.session_token:
            raise ApiError(403, "UnrecognizedClientException",
                           "The security token included in the request is invalid. (X-Amz-Security-Token %s)"
                           % ("missing" if token is None else "does not match"))
        if scope_service != SERVICE:
            raise ApiError(403, "InvalidSignatureException",
                           "Credential should be scoped to correct service: '%s', not '%s'" % (SERVICE, scope_service))
        if scope_region != self.region:
            raise ApiError(403, "InvalidSignatureException",
                           "Credential should be scoped to a valid region, not '%s' (this endpoint is %s)"
                           % (scope_region, self.region))
        names = [n for n in signed_headers.split(";")]
        if names != sorted(names) or any(n != n.lower() or not n for n in names):
            raise ApiError(403, "InvalidSignatureException",
                           "SignedHeaders must be lowercase and sorted: %s" % signed_headers)
        if "host" not in names:
            raise ApiError(403, "InvalidSignatureException", "'Host' must be a signed header")
        amz_date = headers.get("X-Amz-Date")
        if amz_date is not None:
            if "x-amz-date" not in names:
                raise ApiError(403, "InvalidSignatureException", "'X-Amz-Date' must be a signed header")
            try:
                ts = datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP)
            except ValueError:
                raise ApiError(403, "IncompleteSignatureException",
                               "X-Amz-Date '%s' is not in the form yyyymmddThhmmssZ" % amz_date)
        elif headers.get("Date") is not None:
            if "date" not in names:
                raise ApiError(403, "InvalidSignatureException", "'Date' must be a signed header")
            parsed = email.utils.parsedate_tz(headers.get("Date"))
            if parsed is None:
                raise ApiError(403, "IncompleteSignatureException", "Date header is not an RFC 1123 date")
            ts = datetime.datetime.utcfromtimestamp(email.utils.mktime_tz(parsed))
            amz_date = ts.strftime(SIGV4_TIMESTAMP)
        else:
            raise ApiError(403, "IncompleteSignatureException",
                           "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header")
        if scope_date != amz_date[:8]:
            raise ApiError(403, "InvalidSignatureException",
                           "Credential date %s does not match the request date %s" % (scope_date, amz_date))
        skew = abs(calendar.timegm(ts.timetuple()) - time.time())
        if skew > MAX_CLOCK_SKEW_S:
            raise ApiError(403, "InvalidSignatureException",
                           "Signature expired: request time %s is more than 15 minutes from the server time" % amz_date)
        content_sha = headers.get("X-Amz-Content-SHA256")
        if content_sha is not None and content_sha != "UNSIGNED-PAYLOAD":
            if content_sha != hashlib.sha256(body).hexdigest():
                raise ApiError(400, "XAmzContentSHA256Mismatch",
                               "The provided 'x-amz-content-sha256' header does not match what was computed.")

        # Recompute with botocore over exactly the headers the client signed,
        # with its timestamp; the canonical URI is the path as received (SigV4
        # for non-S3 services encodes it once more), the query is decoded and
        # re-encoded the canonical way.
        signer = _SignedHeadersSigV4(
            Credentials(self.access_key, self.secret_key, token), SERVICE, self.region, names, headers
        )
        host = headers.get("Host", "")
        params = urllib.parse.parse_qsl(query, keep_blank_values=True)
        req_headers = {}
        if content_sha is not None:
            req_headers["X-Amz-Content-SHA256"] = content_sha
        req = AWSRequest(method=method, url="http://%s%s" % (host, raw_path), data=body,
                         headers=req_headers, params=params)
        req.context["timestamp"] = amz_date
        canonical = signer.canonical_request(req)
        sts = signer.string_to_sign(req, canonical)
        expected = signer.signature(sts, req)
        if not hmac.compare_digest(expected, given_sig):
            raise ApiError(
                403, "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                "for details.\n\nThe Canonical String for this request should have been\n'%s'\n\n"
                "The String-to-Sign should have been\n'%s'\n" % (canonical, sts),
            )

    # -- request parsing ----------------------------------------------------

    def match(self, method, path):
        allowed = False
        for r in self.routes:
            m = r.regex.match(path)
            if m:
                if r.method == method:
                    return r, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                allowed = True
        if allowed:
            raise ApiError(405, "MethodNotAllowedException", "%s is not allowed on %s" % (method, path))
        raise ApiError(404, "UnknownOperationException", "no App Mesh operation at %s %s" % (method, path))

    def op_name_for(self, method, path):
        """The operation a request addresses, or None; for the request log only."""
        for r in self.routes:
            if r.method == method and r.regex.match(path):
                return r.name
        return None

    def parse_input(self, route, labels, query, headers, body):
        shape_name = route.op["input"]["shape"]
        shape = self.shapes[shape_name]
        members = shape.get("members", {})
        params = {}
        errors = []
        qs = urllib.parse.parse_qs(query, keep_blank_values=True)
        body_members = {}
        for name, mem in members.items():
            loc = mem.get("location")
            wire = mem.get("locationName", name)
            if loc is None:
                body_members[name] = mem
                continue
            if loc == "uri":
                raw = labels.get(wire)
            elif loc == "querystring":
                raw = qs.get(wire, [None])[0]
            elif loc == "header":
                raw = headers.get(wire)
            else:
                raw = None
            if raw is None:
                continue
            mshape = self.shapes[mem["shape"]]
            if mshape["type"] in ("integer", "long"):
                try:
                    raw = int(raw, 10)
                except ValueError:
                    errors.append("%s (%s '%s'): '%s' is not an integer" % (name, loc, wire, raw))
                    continue
            params[name] = raw
            self.validator.check(mem["shape"], raw, name, errors)
        if body:
            if not body_members:
                errors.append("%s takes no request body, got %d bytes" % (route.name, len(body)))
            else:
                try:
                    doc = json.loads(body)
                except (ValueError, UnicodeDecodeError) as e:
                    raise bad_request("request body is not valid JSON: %s" % e)
                if not isinstance(doc, dict):
                    raise bad_request("request body must be a JSON object, got %s" % jtype(doc))
                for k, v in doc.items():
                    if k not in body_members:
                        errors.append("unknown member '%s' in %s" % (k, shape_name))
                    elif v is not None:
                        self.validator.check(body_members[k]["shape"], v, k, errors)
                        params[k] = v
        for req in shape.get("required", []):
            if params.get(req) is None:
                errors.append("missing required member '%s' in %s" % (req, shape_name))
        if errors:
            raise bad_request("%d validation error%s: %s" % (len(errors), "" if len(errors) == 1 else "s",
                                                            "; ".join(errors)))
        return params

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

    def output_body(self, route, result):
        """Wrap the result per the output shape and check it against the model."""
        shape_name = route.op["output"]["shape"]
        shape = self.shapes[shape_name]
        # With a payload member the body is that member's shape alone (e.g. a
        # MeshData for CreateMesh); otherwise it is the output structure itself.
        payload = shape.get("payload")
        check_shape = shape["members"][payload]["shape"] if payload is not None else shape_name
        errors = []
        self.validator.check(check_shape, result, "", errors)
        if errors:
            raise ApiError(500, "InternalServerErrorException",
                           "fake built an invalid %s: %s" % (shape_name, "; ".join(errors)))
        return result

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


class _SignedHeadersSigV4(SigV4Auth):
    """SigV4Auth that canonicalizes exactly the headers the client listed as signed."""

    def __init__(self, credentials, service, region, names, received):
        super().__init__(credentials, service, region)
        self._names = names
        self._received = received

    def headers_to_sign(self, request):
        hm = HTTPHeaders()
        for name in self._names:
            for value in self._received.get_all(name) or [""]:
                hm[name] = value
        return hm


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
        entry = {"op": app.op_name_for(self.command, raw_path), "method": self.command, "path": raw_path,
                 "query": query, "status": None}
        try:
            app.verify_sigv4(self.command, raw_path, query, self.headers, body)
            route, labels = app.match(self.command, raw_path)
            entry["op"] = route.name
            params = app.parse_input(route, labels, query, self.headers, body)
            entry["params"] = params
            rule = app.fails.take(route.name)
            if rule is not None:
                raise ApiError(int(rule["status"]), rule["type"], rule["message"])
            with app.lock:
                result = app.execute(route.name, params)
                out = app.output_body(route, result)
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
        if path == "/_fake/state" and self.command == "GET":
            with app.lock:
                self.send_json(200, app.state())
        elif path == "/_fake/requests" and self.command == "GET":
            self.send_json(200, app.log.snapshot())
        elif path == "/_fake/reset" and self.command == "POST":
            app.reset()
            self.send_json(200, {"reset": True})
        elif path == "/_fake/fail" and self.command == "POST":
            try:
                rule = parse_fail_rule(body, app.model["operations"])
            except ValueError as e:
                self.send_json(400, {"error": str(e)})
                return
            app.fails.add(rule)
            self.send_json(200, rule)
        else:
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
    if not isinstance(doc, dict):
        raise ValueError("fail rule must be a JSON object")
    unknown = set(doc) - {"op", "status", "type", "message", "times"}
    if unknown:
        raise ValueError("unknown fail rule member(s): %s" % ", ".join(sorted(unknown)))
    op = doc.get("op", "*")
    if op != "*" and op not in operations:
        raise ValueError("op '%s' is not an App Mesh operation" % op)
    status = doc.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise ValueError("status must be an HTTP error status (400-599)")
    times = doc.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise ValueError("times must be a positive integer")
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
