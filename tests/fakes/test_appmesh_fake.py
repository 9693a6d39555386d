#!/usr/bin/python3
"""Self-test of the App Mesh fake: drives it with botocore (the reference client)
and with raw signed requests, and checks that it both serves the service model's
shapes and rejects what real App Mesh rejects (bad signatures, invalid bodies,
conflicts, resources in use).  Optionally also runs the Debian `aws` CLI against it.

Run: /usr/bin/python3 tests/fakes/test_appmesh_fake.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fakecommon  # noqa: E402

import botocore.session  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

REGION = "us-west-2"
AK = "AKIDFAKE"
SK = "SECRETFAKE"

t = fakecommon.Checker()


def client(endpoint, secret=SK, key=AK, token=None):
    return botocore.session.get_session().create_client(
        "appmesh", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
        aws_secret_access_key=secret, aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def err(fn, **kw):
    """Call a botocore operation; return (error code, HTTP status, message) or (None, 200, None)."""
    try:
        fn(**kw)
        return None, 200, None
    except ClientError as e:
        return (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"],
                e.response["Error"].get("Message", ""))


def signed(endpoint, method, path, body, secret=SK):
    """Send a request signed by botocore's SigV4Auth, with an arbitrary body."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = AWSRequest(method=method, url=endpoint + path, data=data,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(AK, secret), "appmesh", REGION).add_auth(req)
    st, hdrs, out = fakecommon.http_call(method, endpoint + path, body=data, headers=dict(req.headers))
    return st, hdrs, json.loads(out or b"{}"), req


def main():
    tmp = tempfile.mkdtemp(prefix="appmesh-fake-test-")
    port_file = os.path.join(tmp, "port")
    child = fakecommon.Child(
        [sys.executable, os.path.join(HERE, "appmesh_fake.py"), "--port-file", port_file,
         "--region", REGION, "--access-key", AK, "--secret-key", SK], port_file)
    try:
        port = child.wait_ready()
        run(port, tmp)
    finally:
        child.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.finish()


def run(port, tmp):
    ep = "http://127.0.0.1:%d" % port
    c = client(ep)

    # --- create the stack infergate's bootstrap creates -------------------------
    mesh = c.create_mesh(meshName="ml", tags=[{"key": "app", "value": "infergate"}])["mesh"]
    t.check(mesh["meshName"] == "ml" and mesh["metadata"]["version"] == 1, "CreateMesh returns MeshData at version 1")
    t.check(mesh["metadata"]["arn"] == "arn:aws:appmesh:us-west-2:111122223333:mesh/ml", "mesh ARN uses region and account")
    t.check(mesh["status"]["status"] == "ACTIVE", "mesh status ACTIVE")
    vn_spec = {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
               "serviceDiscovery": {"dns": {"hostname": "ml-service.default.svc.cluster.local"}}}
    vn = c.create_virtual_node(meshName="ml", virtualNodeName="ml-vn", spec=vn_spec,
                               tags=[{"key": "tier", "value": "model"}])["virtualNode"]
    t.check(vn["spec"] == vn_spec and vn["virtualNodeName"] == "ml-vn", "CreateVirtualNode echoes the spec")
    c.create_virtual_node(meshName="ml", virtualNodeName="ml-vn-2", spec=vn_spec)
    vr = c.create_virtual_router(meshName="ml", virtualRouterName="ml-vr", spec={
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]})["virtualRouter"]
    t.check(vr["virtualRouterName"] == "ml-vr", "CreateVirtualRouter")
    route_spec = {"httpRoute": {"match": {"prefix": "/"}, "action": {
        "weightedTargets": [{"virtualNode": "ml-vn", "weight": 100}]}}}
    rt = c.create_route(meshName="ml", virtualRouterName="ml-vr", routeName="ml-route", spec=route_spec)["route"]
    t.check(rt["routeName"] == "ml-route" and rt["virtualRouterName"] == "ml-vr", "CreateRoute")
    vs = c.create_virtual_service(meshName="ml", virtualServiceName="ml.default.svc.cluster.local", spec={
        "provider": {"virtualRouter": {"virtualRouterName": "ml-vr"}}})["virtualService"]
    t.check(vs["spec"]["provider"]["virtualRouter"]["virtualRouterName"] == "ml-vr", "CreateVirtualService")

    # --- describe / list / update ------------------------------------------------
    d = c.describe_virtual_node(meshName="ml", virtualNodeName="ml-vn")["virtualNode"]
    t.check(d["metadata"]["uid"] == vn["metadata"]["uid"], "DescribeVirtualNode returns the same resource")
    names = [m["meshName"] for m in c.list_meshes()["meshes"]]
    t.check(names == ["ml"], "ListMeshes lists the mesh")
    page1 = c.list_virtual_nodes(meshName="ml", limit=1)
    page2 = c.list_virtual_nodes(meshName="ml", limit=1, nextToken=page1["nextToken"])
    t.check([v["virtualNodeName"] for v in page1["virtualNodes"] + page2["virtualNodes"]] == ["ml-vn", "ml-vn-2"]
            and "nextToken" not in page2, "ListVirtualNodes paginates with limit/nextToken")
    t.check([r["routeName"] for r in c.list_routes(meshName="ml", virtualRouterName="ml-vr")["routes"]] == ["ml-route"],
            "ListRoutes")
    t.check(len(c.list_virtual_services(meshName="ml")["virtualServices"]) == 1, "ListVirtualServices")
    vn_spec2 = dict(vn_spec, backends=[{"virtualService": {"virtualServiceName": "other.local"}}])
    up = c.update_virtual_node(meshName="ml", virtualNodeName="ml-vn", spec=vn_spec2)["virtualNode"]
    t.check(up["metadata"]["version"] == 2 and up["spec"] == vn_spec2, "UpdateVirtualNode bumps version, stores spec")
    tags = c.list_tags_for_resource(resourceArn=vn["metadata"]["arn"])["tags"]
    t.check(tags == [{"key": "tier", "value": "model"}], "tags given at create are listed")
    c.tag_resource(resourceArn=vn["metadata"]["arn"], tags=[{"key": "owner", "value": "ml"}])
    c.untag_resource(resourceArn=vn["metadata"]["arn"], tagKeys=["tier"])
    tags = c.list_tags_for_resource(resourceArn=vn["metadata"]["arn"])["tags"]
    t.check(tags == [{"key": "owner", "value": "ml"}], "TagResource / UntagResource change the tags")

    # --- real errors ---------------------------------------------------------------
    code, st, _ = err(c.create_mesh, meshName="ml")
    t.check((code, st) == ("ConflictException", 409), "duplicate CreateMesh -> 409 ConflictException")
    again = c.create_virtual_node(meshName="ml", virtualNodeName="idem", spec=vn_spec, clientToken="tok-1")
    same = c.create_virtual_node(meshName="ml", virtualNodeName="idem", spec=vn_spec, clientToken="tok-1")
    t.check(again["virtualNode"]["metadata"]["uid"] == same["virtualNode"]["metadata"]["uid"],
            "create with the same clientToken is idempotent")
    code, st, _ = err(c.create_virtual_node, meshName="ml", virtualNodeName="idem", spec=vn_spec, clientToken="tok-2")
    t.check(code == "ConflictException", "create with another clientToken conflicts")
    c.delete_virtual_node(meshName="ml", virtualNodeName="idem")
    code, st, _ = err(c.describe_mesh, meshName="nope")
    t.check((code, st) == ("NotFoundException", 404), "describe missing mesh -> 404 NotFoundException")
    code, st, _ = err(c.create_virtual_node, meshName="nope", virtualNodeName="x", spec=vn_spec)
    t.check(code == "NotFoundException", "create in a missing mesh -> NotFoundException")
    code, st, msg = err(c.delete_mesh, meshName="ml")
    t.check((code, st) == ("ResourceInUseException", 409), "delete mesh with children -> 409 ResourceInUseException")
    code, st, msg = err(c.delete_virtual_node, meshName="ml", virtualNodeName="ml-vn")
    t.check(code == "ResourceInUseException" and "ml-route" in msg, "delete node used by a route -> ResourceInUse")
    code, st, msg = err(c.delete_virtual_router, meshName="ml", virtualRouterName="ml-vr")
    t.check(code == "ResourceInUseException", "delete router with routes -> ResourceInUse")
    code, st, msg = err(c.create_route, meshName="ml", virtualRouterName="ml-vr", routeName="r2", spec={
        "httpRoute": {"match": {"prefix": "/x"}, "action": {"weightedTargets": [{"virtualNode": "ghost", "weight": 1}]}}})
    t.check(code == "NotFoundException" and "ghost" in msg, "route to a missing virtual node -> NotFoundException")

    # --- authentication --------------------------------------------------------------
    code, st, msg = err(client(ep, secret="WRONG").list_meshes)
    t.check((code, st) == ("InvalidSignatureException", 403), "wrong secret -> 403 InvalidSignatureException")
    t.check("Canonical String" in (msg or ""), "signature error explains the canonical request")
    code, st, _ = err(client(ep, key="AKIDOTHER").list_meshes)
    t.check((code, st) == ("UnrecognizedClientException", 403), "unknown access key -> 403 UnrecognizedClientException")
    code, st, _ = err(client(ep, token="session-token-xyz").list_meshes)
    t.check(code is None, "a session token (X-Amz-Security-Token) is accepted")
    st, hdrs, body = fakecommon.http_call("GET", ep + "/v20190125/meshes")
    t.check(st == 403 and body and json.loads(body)["__type"] == "MissingAuthenticationTokenException"
            and hdrs.get("x-amzn-ErrorType") == "MissingAuthenticationTokenException",
            "no Authorization -> 403 MissingAuthenticationTokenException (body and header)")
    req = AWSRequest(method="PUT", url=ep + "/v20190125/meshes", data=b'{"meshName":"a"}')
    SigV4Auth(Credentials(AK, SK), "appmesh", REGION).add_auth(req)
    st, _, body = fakecommon.http_call("PUT", ep + "/v20190125/meshes", body=b'{"meshName":"b"}',
                                       headers=dict(req.headers))
    t.check(st == 403 and json.loads(body)["__type"] == "InvalidSignatureException",
            "body changed after signing -> InvalidSignatureException")
    req = AWSRequest(method="GET", url=ep + "/v20190125/meshes")
    SigV4Auth(Credentials(AK, SK), "appmesh", "eu-west-1").add_auth(req)
    st, _, body = fakecommon.http_call("GET", ep + "/v20190125/meshes", headers=dict(req.headers))
    t.check(st == 403 and "region" in json.loads(body)["message"], "signature scoped to another region -> 403")

    # --- input validation (raw signed requests) -----------------------------------------
    st, _, b, _ = signed(ep, "PUT", "/v20190125/meshes/ml/virtualNodes", {"virtualNodeName": "n1"})
    t.check(st == 400 and b["__type"] == "BadRequestException" and "'spec'" in b["message"],
            "missing required member -> 400 BadRequestException naming 'spec'")
    st, _, b, _ = signed(ep, "PUT", "/v20190125/meshes/ml/virtualNodes",
                         {"virtualNodeName": "n1", "spec": vn_spec, "bogus": 1})
    t.check(st == 400 and "'bogus'" in b["message"], "unknown member -> 400 naming 'bogus'")
    bad = {"listeners": [{"portMapping": {"port": 8080, "protocol": "https"}}]}
    st, _, b, _ = signed(ep, "PUT", "/v20190125/meshes/ml/virtualNodes", {"virtualNodeName": "n1", "spec": bad})
    t.check(st == 400 and "spec.listeners[0].portMapping.protocol" in b["message"], "bad enum -> 400 with member path")
    bad = {"listeners": [{"portMapping": {"port": 70000, "protocol": "http"}}]}
    st, _, b, _ = signed(ep, "PUT", "/v20190125/meshes/ml/virtualNodes", {"virtualNodeName": "n1", "spec": bad})
    t.check(st == 400 and "port" in b["message"], "out-of-range port -> 400")
    st, _, b, _ = signed(ep, "PUT", "/v20190125/meshes/ml/virtualNodes", {"virtualNodeName": "n1", "spec": {
        "listeners": "x"}})
    t.check(st == 400 and "spec.listeners" in b["message"], "wrong type -> 400")
    st, _, b, _ = signed(ep, "PUT", "/v20190125/meshes/ml/virtualServices", {
        "virtualServiceName": "s", "spec": {"provider": {
            "virtualNode": {"virtualNodeName": "ml-vn"}, "virtualRouter": {"virtualRouterName": "ml-vr"}}}})
    t.check(st == 400 and "union" in b["message"], "two members of a union -> 400")
    st, _, b, _ = signed(ep, "PUT", "/v20190125/meshes", b"{not json")
    t.check(st == 400 and b["__type"] == "BadRequestException", "malformed JSON body -> 400")

    # --- fail injection ----------------------------------------------------------------
    st, _, _ = fakecommon.http_call("POST", ep + "/_fake/fail", body={
        "op": "ListMeshes", "status": 429, "type": "TooManyRequestsException", "message": "slow down", "times": 1})
    t.check(st == 200, "POST /_fake/fail accepted")
    code, st, msg = err(c.list_meshes)
    t.check((code, st, msg) == ("TooManyRequestsException", 429, "slow down"), "injected 429 is returned once")
    code, st, _ = err(c.list_meshes)
    t.check(code is None, "after the injected failure the call succeeds again")
    fakecommon.http_call("POST", ep + "/_fake/fail", body={"op": "*", "status": 503, "times": 2})
    codes = [err(c.describe_mesh, meshName="ml")[0] for _ in range(3)]
    t.check(codes == ["ServiceUnavailableException", "ServiceUnavailableException", None],
            "wildcard injection applies to N calls of any op")
    st, _, b = fakecommon.http_call("POST", ep + "/_fake/fail", body={"op": "CreateThing", "status": 500})
    t.check(st == 400, "fail rule for an unknown op is refused")

    # --- request log and state ---------------------------------------------------------
    st, _, b = fakecommon.http_call("GET", ep + "/_fake/requests")
    log = json.loads(b)
    ops = [e["op"] for e in log]
    t.check(ops[:5] == ["CreateMesh", "CreateVirtualNode", "CreateVirtualNode", "CreateVirtualRouter", "CreateRoute"],
            "request log lists operations in order")
    t.check(log[0]["method"] == "PUT" and log[0]["path"] == "/v20190125/meshes" and log[0]["status"] == 200,
            "request log records method, path and status")
    st, _, b = fakecommon.http_call("GET", ep + "/_fake/state")
    state = json.loads(b)
    m = state["meshes"]["ml"]
    t.check(m["tags"] == [{"key": "app", "value": "infergate"}] and m["version"] == 1, "state holds mesh tags/version")
    t.check(set(m["children"]["virtualNodes"]) == {"ml-vn", "ml-vn-2"}
            and m["children"]["virtualNodes"]["ml-vn"]["version"] == 2
            and "ml-route" in m["children"]["virtualRouters"]["ml-vr"]["children"]["routes"],
            "state nests children with their versions")

    # --- aws CLI (Debian awscli), when installed -----------------------------------------------
    aws = "/usr/bin/aws"
    if os.path.exists(aws):
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "AWS_ACCESS_KEY_ID": AK,
               "AWS_SECRET_ACCESS_KEY": SK, "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_PAGER": ""}
        p = subprocess.run([aws, "appmesh", "list-meshes", "--endpoint-url", ep, "--output", "json"],
                           env=env, capture_output=True, text=True, timeout=120)
        ok = p.returncode == 0 and [x["meshName"] for x in json.loads(p.stdout)["meshes"]] == ["ml"]
        t.check(ok, "aws appmesh list-meshes against the fake" + ("" if ok else ": " + p.stderr[-500:]))
        env["AWS_SECRET_ACCESS_KEY"] = "WRONG"
        p = subprocess.run([aws, "appmesh", "list-meshes", "--endpoint-url", ep],
                           env=env, capture_output=True, text=True, timeout=120)
        t.check(p.returncode != 0 and "InvalidSignatureException" in p.stderr, "aws CLI with a wrong secret fails")
    else:
        print("skip - /usr/bin/aws (Debian awscli) not installed: aws CLI check not run")

    # --- orderly teardown, then reset ------------------------------------------------------
    c.delete_virtual_service(meshName="ml", virtualServiceName="ml.default.svc.cluster.local")
    c.delete_route(meshName="ml", virtualRouterName="ml-vr", routeName="ml-route")
    c.delete_virtual_router(meshName="ml", virtualRouterName="ml-vr")
    c.delete_virtual_node(meshName="ml", virtualNodeName="ml-vn")
    c.delete_virtual_node(meshName="ml", virtualNodeName="ml-vn-2")
    gone = c.delete_mesh(meshName="ml")["mesh"]
    t.check(gone["status"]["status"] == "DELETED", "delete in dependency order succeeds; mesh DELETED")
    t.check(c.list_meshes()["meshes"] == [], "no meshes left")
    fakecommon.http_call("POST", ep + "/_fake/reset")
    st, _, b = fakecommon.http_call("GET", ep + "/_fake/requests")
    t.check(json.loads(b) == [], "reset empties the request log")


if __name__ == "__main__":
    sys.exit(main())
