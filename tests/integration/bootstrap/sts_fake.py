#!/usr/bin/python3
"""A tiny STS stand-in for AssumeRoleWithWebIdentity (the one call bootstrap makes).

Checks what the real STS checks for this call: a form-encoded POST with
Action=AssumeRoleWithWebIdentity, Version=2011-06-15, RoleArn, RoleSessionName
and WebIdentityToken; the token must equal --token and the role --role-arn,
else 403 with STS's XML error (AccessDenied / InvalidIdentityToken). Unsigned,
as the real call is. Each request is logged as one JSON line to --log (without
the token itself). Writes its port to --port-file once listening.
"""

import argparse
import http.server
import json
import os
import socketserver
import urllib.parse

OK = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>{ak}</AccessKeyId>
      <SecretAccessKey>{sk}</SecretAccessKey>
      <SessionToken>{st}</SessionToken>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser><Arn>{role}/session</Arn><AssumedRoleId>AROAFAKE:s</AssumedRoleId></AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>
"""

ERR = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{msg}</Message></Error>
</ErrorResponse>
"""


def main():
    ap = argparse.ArgumentParser()
    for a in ("--port-file", "--log", "--role-arn", "--token", "--access-key", "--secret-key",
              "--session-token"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, text):
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(n).decode(), keep_blank_values=True)
            f = {k: v[0] for k, v in form.items()}
            entry = {"Action": f.get("Action"), "Version": f.get("Version"),
                     "RoleArn": f.get("RoleArn"), "RoleSessionName": f.get("RoleSessionName"),
                     "token_ok": f.get("WebIdentityToken") == args.token,
                     "content_type": self.headers.get("Content-Type"),
                     "signed": "Authorization" in self.headers}
            with open(args.log, "a") as lf:
                lf.write(json.dumps(entry) + "\n")
            if (self.headers.get("Content-Type") != "application/x-www-form-urlencoded"
                    or f.get("Action") != "AssumeRoleWithWebIdentity"
                    or f.get("Version") != "2011-06-15" or not f.get("RoleSessionName")):
                return self.reply(400, ERR.format(code="InvalidAction", msg="bad request"))
            if not entry["token_ok"]:
                return self.reply(400, ERR.format(code="InvalidIdentityToken",
                                                  msg="token is not valid"))
            if f.get("RoleArn") != args.role_arn:
                return self.reply(403, ERR.format(
                    code="AccessDenied", msg="Not authorized to perform sts:AssumeRoleWithWebIdentity"))
            return self.reply(200, OK.format(ak=args.access_key, sk=args.secret_key,
                                             st=args.session_token, role=args.role_arn))

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = S(("127.0.0.1", 0), H)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
