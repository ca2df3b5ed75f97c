#!/usr/bin/env python3
"""A fake of Firebase Cloud Messaging's HTTP v1 API and Google's OAuth2 token
endpoint, over HTTPS on loopback, for the push_fcm tests.

It checks what the real services check: the RS256 JWT assertion (signature
against the service account's public key, iss, scope, aud, iat/exp), the
bearer token on messages:send, and the request's path and body. It prints one
JSON line per event on stdout: first {"event": "listening", "port": N}, then
{"event": "token", ...} per token request and {"event": "send", ...} per send.

Outcomes are scripted by the device token's prefix:
  unregistered*  404 NOT_FOUND with FcmError UNREGISTERED
  invalid*       400 INVALID_ARGUMENT, a BadRequest field violation on message.token
  malformed*     400 INVALID_ARGUMENT with FcmError INVALID_ARGUMENT, "The registration
                 token is not a valid FCM registration token" (Google's documented form)
  badarg*        400 INVALID_ARGUMENT about another field (the token is fine)
  notfound*      404 without an FcmError (as a wrong URL or project gets)
  quota*         429 QUOTA_EXCEEDED with Retry-After: 1 the first time, then ok;
                 a retry that comes before Retry-After is answered 429 again
                 and recorded with "early": true
  quotabare*     429 QUOTA_EXCEEDED without Retry-After during the first second after
                 the first send to the token, then ok; a retry within that second is
                 recorded with "early": true
  unavailable*   503 UNAVAILABLE the first time, then ok
  outage<N>*     503 UNAVAILABLE for the first N sends to the token (outage8-1:
                 eight), then ok: a provider outage
  thirdparty*    401 UNAUTHENTICATED with FcmError THIRD_PARTY_AUTH_ERROR (the project's
                 APNs or web push credentials are invalid; the access token is fine)
  revoke*        the first time: revokes every access token issued so far and
                 answers 401 UNAUTHENTICATED, then ok
  anything else  200 {"name": "projects/<p>/messages/<n>"}
"""
import argparse
import base64
import json
import re
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

lock = threading.Lock()
access_tokens = {}  # token -> expiry (time.time())
first_seen = {}  # device token -> time of the first send
sends_to = {}  # device token -> sends so far
message_counter = [0]


def emit(event):
    with lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def error_body(code, status, message, details=None):
    error = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def fcm_error(code):
    return [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]


def bad_request(field, description):
    return [{"@type": "type.googleapis.com/google.rpc.BadRequest",
             "fieldViolations": [{"field": field, "description": description}]}]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/token":
            return self.token(body)
        if self.path == "/v1/projects/%s/messages:send" % self.server.args.project:
            return self.send_message(body)
        emit({"event": "unknown_path", "path": self.path})
        self.reply(404, error_body(404, "NOT_FOUND", "unknown path"))

    def check_assertion(self, assertion):
        args = self.server.args
        parts = assertion.split(".")
        if len(parts) != 3:
            return "not a JWT"
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        if header.get("alg") != "RS256":
            return "alg is not RS256"
        try:
            self.server.public_key.verify(b64url_decode(parts[2]), (parts[0] + "." + parts[1]).encode(),
                                          padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "bad signature"
        now = time.time()
        if claims.get("iss") != args.client_email:
            return "wrong iss"
        if SCOPE not in str(claims.get("scope", "")).split(" "):
            return "scope lacks firebase.messaging"
        if claims.get("aud") != self.server.token_uri:
            return "wrong aud"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "iat/exp missing"
        if iat > now + 60 or exp <= now or exp - iat > 3600:
            return "bad lifetime"
        return None

    def token(self, body):
        form = urllib.parse.parse_qs(body.decode())
        problem = None
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            problem = "wrong grant_type"
        elif self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            problem = "wrong content type"
        else:
            problem = self.check_assertion(form.get("assertion", [""])[0])
        if problem:
            emit({"event": "token", "ok": False, "problem": problem})
            return self.reply(400, {"error": "invalid_grant", "error_description": problem})
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        with lock:
            unusable = self.server.unusable_tokens_left > 0
            if unusable:
                self.server.unusable_tokens_left -= 1
            else:
                access_tokens[token] = time.time() + self.server.args.token_ttl
        if unusable:
            # A 200 that a client cannot use: a live token, but no expires_in.
            emit({"event": "token", "ok": False, "problem": "no expires_in", "access_token": token})
            return self.reply(200, {"access_token": token, "token_type": "Bearer"})
        emit({"event": "token", "ok": True, "access_token": token})
        self.reply(200, {"access_token": token, "expires_in": self.server.args.token_ttl,
                         "token_type": "Bearer"})

    def check_message(self, message):
        if not isinstance(message.get("token"), str) or not message["token"]:
            return "message.token", "a token is required"
        notification = message.get("notification", {})
        for key in ("title", "body"):
            if not isinstance(notification.get(key), str):
                return "message.notification." + key, "not a string"
        for i, (key, value) in enumerate(message.get("data", {}).items()):
            if not isinstance(value, str):
                return "message.data[%d].value" % i, "Invalid value (TYPE_STRING)"
        android = message.get("android", {})
        if str(android.get("priority", "normal")).upper() not in ("NORMAL", "HIGH"):
            return "message.android.priority", "Invalid value"
        if "ttl" in android and not re.fullmatch(r"\d+(\.\d{1,9})?s", str(android["ttl"])):
            return "message.android.ttl", "Invalid duration"
        count = android.get("notification", {}).get("notification_count")
        if count is not None and not isinstance(count, int):
            return "message.android.notification.notification_count", "Invalid value"
        return None

    def send_message(self, body):
        auth = self.headers.get("Authorization", "")
        bearer = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        with lock:
            expiry = access_tokens.get(bearer)
        record = {"event": "send", "access_token": bearer}
        if expiry is None or expiry <= time.time():
            record.update(status=401, problem="bad or expired access token")
            emit(record)
            return self.reply(401, error_body(401, "UNAUTHENTICATED",
                                              "Request had invalid authentication credentials."))
        if len(body) > 4096:
            record.update(status=400, problem="message too big", size=len(body))
            emit(record)
            return self.reply(400, error_body(400, "INVALID_ARGUMENT", "Message too big",
                                              fcm_error("INVALID_ARGUMENT")))
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            record.update(status=400, problem="no message")
            emit(record)
            return self.reply(400, error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload"))
        record["message"] = message
        record["content_type"] = self.headers.get("Content-Type", "")
        token = message.get("token", "")
        record["token"] = token
        violation = self.check_message(message)
        if violation:
            field, description = violation
            record.update(status=400, problem=field)
            emit(record)
            return self.reply(400, error_body(400, "INVALID_ARGUMENT", description,
                                              bad_request(field, description)))
        now = time.time()
        with lock:
            first = first_seen.get(token)
            if first is None:
                first_seen[token] = now
        status, reply, headers = 200, None, {}
        if token.startswith("quota"):
            record["early"] = first is not None and now < first + 1.0
        with lock:
            sends_to[token] = sends_to.get(token, 0) + 1
            sends_so_far = sends_to[token]
        outage = re.match(r"outage(\d+)", token)
        if token.startswith("unregistered"):
            status, reply = 404, error_body(404, "NOT_FOUND", "Requested entity was not found.",
                                            fcm_error("UNREGISTERED"))
        elif token.startswith("invalid"):
            status, reply = 400, error_body(
                400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                bad_request("message.token", "The registration token is not a valid FCM registration token"))
        elif token.startswith("malformed"):
            status, reply = 400, error_body(
                400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                fcm_error("INVALID_ARGUMENT"))
        elif token.startswith("notfound"):
            status, reply = 404, error_body(404, "NOT_FOUND", "Requested entity was not found.")
        elif token.startswith("badarg"):
            status, reply = 400, error_body(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'",
                                            bad_request("message.android.ttl", "Invalid value"))
        elif token.startswith("quotabare") and (first is None or now < first + 1.0):
            status, reply = 429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded",
                                            fcm_error("QUOTA_EXCEEDED"))
        elif outage and sends_so_far <= int(outage.group(1)):
            status, reply = 503, error_body(503, "UNAVAILABLE", "The service is unavailable",
                                            fcm_error("UNAVAILABLE"))
        elif token.startswith("quota") and (first is None or now < first + 1.0):
            status, reply = 429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded",
                                            fcm_error("QUOTA_EXCEEDED"))
            headers["Retry-After"] = "1"
        elif token.startswith("unavailable") and first is None:
            status, reply = 503, error_body(503, "UNAVAILABLE", "The service is unavailable",
                                            fcm_error("UNAVAILABLE"))
        elif token.startswith("thirdparty"):
            status, reply = 401, error_body(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service",
                                            fcm_error("THIRD_PARTY_AUTH_ERROR"))
        elif token.startswith("revoke") and first is None:
            with lock:
                access_tokens.clear()
            status, reply = 401, error_body(401, "UNAUTHENTICATED",
                                            "Request had invalid authentication credentials.")
        if reply is None:
            with lock:
                message_counter[0] += 1
                name = "projects/%s/messages/%d" % (self.server.args.project, message_counter[0])
            reply = {"name": name}
        record["status"] = status
        emit(record)
        self.reply(status, reply, headers)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--public-key", required=True, help="the service account's public key (PEM)")
    parser.add_argument("--project", required=True)
    parser.add_argument("--client-email", required=True)
    parser.add_argument("--token-ttl", type=int, default=3600)
    parser.add_argument("--tokens-without-expiry", type=int, default=0,
                        help="answer this many token requests 200 with an access_token but no expires_in")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.args = args
    server.unusable_tokens_left = args.tokens_without_expiry
    with open(args.public_key, "rb") as f:
        server.public_key = serialization.load_pem_public_key(f.read())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    server.token_uri = "https://127.0.0.1:%d/token" % port
    emit({"event": "listening", "port": port})
    server.serve_forever()


if __name__ == "__main__":
    main()
