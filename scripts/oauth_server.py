#!/usr/bin/python3
"""OAuth2 token, device authorization and introspection server for
servicedesk's tests (Python standard library only).

Endpoints (form-encoded POSTs, JSON answers, as RFC 6749 / 7662 / 8628 say):

    POST /token        grant_type=client_credentials   (client_id, client_secret)
                       grant_type=refresh_token        (refresh_token; rotated:
                                                        the old one stops working)
                       grant_type=urn:ietf:params:oauth:grant-type:device_code
                                                       (device_code: authorization_pending,
                                                        slow_down, expired_token, access_denied)
                       grant_type=authorization_code   (code, redirect_uri, code_verifier: PKCE S256)
    GET  /authorize    response_type=code, client_id, redirect_uri, scope, state,
                       code_challenge (S256), login_hint: the person signs in as
                       login_hint at once and is sent back to redirect_uri?code=..&state=..
    POST /devicecode   client_id, scope -> device_code, user_code, verification_uri, interval
    POST /introspect   token -> {"active": true, "username": ..., "scope": ...} or {"active": false}

Control, for the tests:

    POST /control/approve   user_code, username   the person signs in
    POST /control/deny      user_code
    POST /control/revoke    username              every refresh and access token of
                                                  that user stops working
    POST /control/revoke_access  username         only the access tokens of that user
                                                  stop working (as when a server drops
                                                  its sessions): refresh tokens still do
    POST /control/lifetime  seconds               lifetime of tokens issued from now on
    GET  /control/state     counts: token requests by grant and result,
                            introspections (active / inactive), the tokens issued

Clients: --client ID:SECRET (repeatable), or --client-cert ID:CERT.pem for a
client that authenticates with a client assertion (RFC 7523, as Microsoft's
identity platform takes it: a JWT signed RS256 by the certificate's key, with
the certificate's SHA-1 thumbprint as x5t, aud = this token endpoint, iss =
sub = the client id, not expired; checked with the openssl command). Access tokens got by client
credentials are valid for the user given by --app-user (Microsoft 365
app-only access: the application may open that mailbox).

Usage:
    oauth_server.py --port-file FILE [--port 0] [--lifetime 3600]
                    --client ID:SECRET --app-user USER [--interval 1] [--pidfile FILE]

Writes the port it listens on to --port-file once it accepts connections.
Exits cleanly on SIGTERM or SIGINT.
"""

import argparse
import base64
import hashlib
import json
import ssl
import subprocess
import tempfile
import os
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

LOCK = threading.Lock()
STATE = {
    "lifetime": 3600,
    "interval": 1,
    "clients": {},
    # client id -> (x5t, public key PEM file)
    "certs": {},
    "app_user": None,
    # access token -> {"username", "expires", "scope"}
    "access": {},
    # refresh token -> {"username", "client_id", "scope"}
    "refresh": {},
    # device code -> {"user_code", "client_id", "scope", "expires", "username", "denied", "last_poll"}
    "devices": {},
    # authorization code -> {"client_id", "redirect_uri", "challenge", "scope", "username"}
    "codes": {},
    "counts": {},
}


def count(key):
    STATE["counts"][key] = STATE["counts"].get(key, 0) + 1


def issue_access(username, scope):
    token = "at-" + secrets.token_urlsafe(24)
    STATE["access"][token] = {
        "username": username,
        "expires": time.time() + STATE["lifetime"],
        "scope": scope,
    }
    return token


def issue_refresh(username, client_id, scope):
    token = "rt-" + secrets.token_urlsafe(24)
    STATE["refresh"][token] = {"username": username, "client_id": client_id, "scope": scope}
    return token


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("oauth_server: " + (fmt % args) + "\n")

    def answer(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def form(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def client_ok(self, f):
        cid = f.get("client_id", "")
        if f.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            ok = self.assertion_ok(cid, f.get("client_assertion", ""))
            count("client_assertion:" + ("ok" if ok else "refused"))
            return ok
        return cid in STATE["clients"] and STATE["clients"][cid] == f.get("client_secret")

    def assertion_ok(self, cid, jwt):
        if cid not in STATE["certs"]:
            return False
        x5t, pubkey = STATE["certs"][cid]
        try:
            head, body, sig = jwt.split(".")
            pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
            header, claims = json.loads(pad(head)), json.loads(pad(body))
        except ValueError:
            return False
        port = self.server.server_address[1]
        if (
            header.get("alg") != "RS256"
            or header.get("x5t") != x5t
            or claims.get("aud") != "http://127.0.0.1:%d/token" % port
            or claims.get("iss") != cid
            or claims.get("sub") != cid
            or not claims.get("exp", 0) > time.time()
        ):
            return False
        with tempfile.NamedTemporaryFile() as data, tempfile.NamedTemporaryFile() as signature:
            data.write((head + "." + body).encode("ascii"))
            data.flush()
            signature.write(pad(sig))
            signature.flush()
            verified = subprocess.run(
                ["openssl", "dgst", "-sha256", "-verify", pubkey, "-signature", signature.name, data.name],
                capture_output=True,
            )
        return verified.returncode == 0

    def do_GET(self):
        if self.path.startswith("/authorize?"):
            q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            with LOCK:
                if q.get("client_id") not in STATE["clients"] or q.get("code_challenge_method") != "S256":
                    self.answer(400, {"error": "invalid_request"})
                    return
                code = "ac-" + secrets.token_urlsafe(24)
                STATE["codes"][code] = {
                    "client_id": q["client_id"],
                    "redirect_uri": q.get("redirect_uri", ""),
                    "challenge": q.get("code_challenge", ""),
                    "scope": q.get("scope", ""),
                    "username": q.get("login_hint", ""),
                }
                count("authorize")
            target = q.get("redirect_uri", "") + "?" + urlencode({"code": code, "state": q.get("state", "")})
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/control/state":
            with LOCK:
                self.answer(
                    200,
                    {
                        "counts": STATE["counts"],
                        "access_tokens": list(STATE["access"].keys()),
                        "refresh_tokens": list(STATE["refresh"].keys()),
                        "lifetime": STATE["lifetime"],
                    },
                )
            return
        self.answer(404, {"error": "not_found"})

    def do_POST(self):
        f = self.form()
        with LOCK:
            route = {
                "/token": self.token,
                "/devicecode": self.devicecode,
                "/introspect": self.introspect,
                "/control/approve": self.approve,
                "/control/deny": self.deny,
                "/control/revoke": self.revoke,
                "/control/revoke_access": self.revoke_access,
                "/control/lifetime": self.lifetime,
            }.get(self.path)
            if route is None:
                self.answer(404, {"error": "not_found"})
            else:
                route(f)

    def tokens(self, username, client_id, scope, with_refresh):
        body = {
            "access_token": issue_access(username, scope),
            "token_type": "Bearer",
            "expires_in": STATE["lifetime"],
            "scope": scope,
        }
        if with_refresh:
            body["refresh_token"] = issue_refresh(username, client_id, scope)
        return body

    def token(self, f):
        grant = f.get("grant_type", "")
        if grant == "client_credentials":
            if not self.client_ok(f):
                count("client_credentials:invalid_client")
                self.answer(401, {"error": "invalid_client", "error_description": "unknown client or wrong secret"})
                return
            count("client_credentials:ok")
            self.answer(200, self.tokens(STATE["app_user"], f["client_id"], f.get("scope", ""), False))
        elif grant == "refresh_token":
            rt = STATE["refresh"].pop(f.get("refresh_token", ""), None)
            if rt is None:
                count("refresh_token:invalid_grant")
                self.answer(400, {"error": "invalid_grant", "error_description": "the refresh token is revoked or unknown"})
                return
            count("refresh_token:ok")
            # Rotation: the old refresh token is gone, a new one comes with the answer.
            self.answer(200, self.tokens(rt["username"], rt["client_id"], rt["scope"], True))
        elif grant == "authorization_code":
            c = STATE["codes"].pop(f.get("code", ""), None)
            verifier = f.get("code_verifier", "").encode("ascii")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).decode("ascii").rstrip("=")
            if (
                c is None
                or c["client_id"] != f.get("client_id")
                or c["redirect_uri"] != f.get("redirect_uri")
                or c["challenge"] != challenge
                or not self.client_ok(f)
            ):
                count("authorization_code:invalid_grant")
                self.answer(400, {"error": "invalid_grant"})
                return
            count("authorization_code:ok")
            self.answer(200, self.tokens(c["username"], c["client_id"], c["scope"], True))
        elif grant == "urn:ietf:params:oauth:grant-type:device_code":
            d = STATE["devices"].get(f.get("device_code", ""))
            if d is None:
                count("device_code:invalid_grant")
                self.answer(400, {"error": "invalid_grant"})
                return
            now = time.time()
            if now > d["expires"]:
                count("device_code:expired_token")
                self.answer(400, {"error": "expired_token"})
                return
            if d["denied"]:
                count("device_code:access_denied")
                self.answer(400, {"error": "access_denied"})
                return
            too_fast = d["last_poll"] is not None and now - d["last_poll"] < STATE["interval"] * 0.8
            d["last_poll"] = now
            if too_fast:
                count("device_code:slow_down")
                self.answer(400, {"error": "slow_down"})
                return
            if d["username"] is None:
                count("device_code:authorization_pending")
                self.answer(400, {"error": "authorization_pending"})
                return
            del STATE["devices"][f["device_code"]]
            count("device_code:ok")
            self.answer(200, self.tokens(d["username"], d["client_id"], d["scope"], True))
        else:
            self.answer(400, {"error": "unsupported_grant_type"})

    def devicecode(self, f):
        if f.get("client_id") not in STATE["clients"]:
            self.answer(400, {"error": "invalid_client"})
            return
        device_code = "dc-" + secrets.token_urlsafe(24)
        user_code = "%04d-%04d" % (secrets.randbelow(10000), secrets.randbelow(10000))
        STATE["devices"][device_code] = {
            "user_code": user_code,
            "client_id": f["client_id"],
            "scope": f.get("scope", ""),
            "expires": time.time() + 600,
            "username": None,
            "denied": False,
            "last_poll": None,
        }
        count("devicecode")
        port = self.server.server_address[1]
        self.answer(
            200,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": "http://127.0.0.1:%d/device" % port,
                "expires_in": 600,
                "interval": STATE["interval"],
            },
        )

    def introspect(self, f):
        t = STATE["access"].get(f.get("token", ""))
        if t is None or time.time() > t["expires"]:
            count("introspect:inactive")
            self.answer(200, {"active": False})
            return
        count("introspect:active")
        self.answer(200, {"active": True, "username": t["username"], "scope": t["scope"]})

    def find_device(self, user_code):
        for d in STATE["devices"].values():
            if d["user_code"] == user_code:
                return d
        return None

    def approve(self, f):
        d = self.find_device(f.get("user_code", ""))
        if d is None:
            self.answer(404, {"error": "no such user code"})
            return
        d["username"] = f["username"]
        self.answer(200, {"ok": True})

    def deny(self, f):
        d = self.find_device(f.get("user_code", ""))
        if d is None:
            self.answer(404, {"error": "no such user code"})
            return
        d["denied"] = True
        self.answer(200, {"ok": True})

    def revoke(self, f):
        user = f.get("username")
        for table in ("refresh", "access"):
            for token in [t for t, v in STATE[table].items() if v["username"] == user]:
                del STATE[table][token]
        count("revoke")
        self.answer(200, {"ok": True})

    def revoke_access(self, f):
        user = f.get("username")
        for token in [t for t, v in STATE["access"].items() if v["username"] == user]:
            del STATE["access"][token]
        self.answer(200, {"ok": True})

    def lifetime(self, f):
        STATE["lifetime"] = int(f["seconds"])
        self.answer(200, {"ok": True})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--lifetime", type=int, default=3600)
    parser.add_argument("--interval", type=int, default=1)
    parser.add_argument("--client", action="append", default=[])
    parser.add_argument("--client-cert", action="append", default=[])
    parser.add_argument("--app-user", required=True)
    parser.add_argument("--pidfile")
    args = parser.parse_args()
    for c in args.client:
        cid, _, secret = c.partition(":")
        STATE["clients"][cid] = secret
    for c in args.client_cert:
        cid, _, path = c.partition(":")
        with open(path) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode("ascii").rstrip("=")
        pubkey = path + ".pub.pem"
        with open(pubkey, "wb") as f:
            f.write(subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", path], check=True, capture_output=True).stdout)
        STATE["certs"][cid] = (x5t, pubkey)
    STATE["lifetime"] = args.lifetime
    STATE["interval"] = args.interval
    STATE["app_user"] = args.app_user

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.pidfile + ".tmp", args.pidfile)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
