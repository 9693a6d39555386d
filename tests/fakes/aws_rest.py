"""AWS rest-json plumbing for fakes, driven by a botocore service model.

A fake AWS service has to (1) find the operation a request addresses from the
model's method + requestUri templates, (2) check the caller's SigV4 signature
the way AWS does, (3) validate URI labels, query parameters and the JSON body
against the operation's input shape, and (4) make sure what it answers matches
the output shape.  None of that is specific to one service; it lives here so
appmesh_fake.py only holds App Mesh's resources and rules.
"""

import calendar
import datetime
import email.utils
import hashlib
import hmac
import json
import re
import time
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW_S = 15 * 60


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


class RestJsonApi:
    """Operations of one botocore service model: routing, input parsing, output checks."""

    def __init__(self, model):
        self.model = model
        self.shapes = model["shapes"]
        self.validator = ShapeValidator(self.shapes)
        self.routes = [Route(n, op) for n, op in model["operations"].items()]

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


class SigV4Verifier:
    """Recomputes request signatures with botocore's SigV4Auth for one key pair."""

    def __init__(self, service, region, access_key, secret_key, session_token=None):
        self.service = service
        self.region = region
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token

    def verify(self, method, raw_path, query, headers, body):
        """Raise ApiError unless the request carries a valid SigV4 signature."""
        auth = headers.get("Authorization")
        if not auth:
            if "X-Amz-Signature" in urllib.parse.parse_qs(query):
                raise ApiError(403, "IncompleteSignatureException",
                               "presigned query-string requests are not supported by this fake")
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
        if scope_service != self.service:
            raise ApiError(403, "InvalidSignatureException",
                           "Credential should be scoped to correct service: '%s', not '%s'" % (self.service, scope_service))
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
            Credentials(self.access_key, self.secret_key, token), self.service, self.region, names, headers
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
