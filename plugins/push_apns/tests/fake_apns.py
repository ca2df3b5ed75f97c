#!/usr/bin/env python3
"""A fake of the APNs provider API: HTTP/2 over TLS (ALPN h2) on loopback, for
the push_apns tests. Needs python3-h2 and python3-cryptography.

It checks what APNs checks: the provider JWT (ES256 signature against the
key's public half, kid, iss, iat not older than an hour), the headers
(apns-topic, apns-push-type, apns-priority, apns-expiration,
apns-collapse-id of 64 bytes at most), the path /3/device/<token> and a JSON
payload with "aps" of 4096 bytes at most (413 PayloadTooLarge). It prints one JSON line per event on stdout: first
{"event": "listening", "port": N}, then {"event": "connection", "connection": C}
per TLS connection and {"event": "request", ...} per request, with the
connection it came on.

Outcomes are scripted by the device token's prefix:
  bad*     400 BadDeviceToken (bad0c0de: well-formed hex, as a token of the
           other environment; bad-1: malformed)
  gone*    410 Unregistered (with a timestamp)
  expire*  the first time: the JWT it came with is expired from now on,
           403 ExpiredProviderToken (and for every later use of that JWT)
  busy*    429 TooManyRequests the first time, then 200
  gather*  held until as many gather* streams are open on the connection as
           the number after "gather" says (gather4-x: four), then all 200;
           only a client that multiplexes gets an answer
  hang*    never answered
  anything else 200 with an apns-id
"""
import argparse
import asyncio
import base64
import json
import re
import ssl
import sys
import time
import uuid

import h2.config
import h2.connection
import h2.events
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Fake:
    def __init__(self, args):
        self.args = args
        with open(args.public_key, "rb") as f:
            self.public_key = serialization.load_pem_public_key(f.read())
        self.expired_jwts = set()
        self.seen_tokens = set()
        self.connections = 0

    def check_jwt(self, jwt):
        """None when the provider token is good, else the APNs reason."""
        parts = jwt.split(".")
        if len(parts) != 3:
            return "InvalidProviderToken"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            return "InvalidProviderToken"
        if header.get("alg") != "ES256" or header.get("kid") != self.args.key_id:
            return "InvalidProviderToken"
        if claims.get("iss") != self.args.team_id or not isinstance(claims.get("iat"), int):
            return "InvalidProviderToken"
        if len(signature) != 64:  # JWS wants raw r||s, not DER
            return "InvalidProviderToken"
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        try:
            self.public_key.verify(encode_dss_signature(r, s), (parts[0] + "." + parts[1]).encode(),
                                   ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "InvalidProviderToken"
        now = time.time()
        if claims["iat"] > now + 60:
            return "InvalidProviderToken"
        if claims["iat"] < now - 3600 or jwt in self.expired_jwts:
            return "ExpiredProviderToken"
        return None

    def check_request(self, headers, body):
        """(status, reason) for a request that breaks the rules, else None."""
        if headers.get(":method") != "POST":
            return 405, "MethodNotAllowed"
        if not re.fullmatch(r"/3/device/[^/]+", headers.get(":path", "")):
            return 404, "BadPath"
        auth = headers.get("authorization", "")
        if not auth.startswith("bearer "):
            return 403, "MissingProviderToken"
        problem = self.check_jwt(auth[len("bearer "):])
        if problem:
            return 403, problem
        if "apns-topic" not in headers:
            return 400, "MissingTopic"
        if headers["apns-topic"] != self.args.topic:
            return 400, "TopicDisallowed"
        if headers.get("apns-push-type") != "alert":
            return 400, "InvalidPushType"
        if headers.get("apns-priority", "10") not in ("10", "5", "1"):
            return 400, "BadPriority"
        if not re.fullmatch(r"\d+", headers.get("apns-expiration", "0")):
            return 400, "BadExpirationDate"
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId"
        if len(body) > 4096:
            return 413, "PayloadTooLarge"
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, "PayloadEmpty"
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return 400, "PayloadEmpty"
        return None

    async def serve(self, reader, writer):
        self.connections += 1
        connection_id = self.connections
        emit({"event": "connection", "connection": connection_id})
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams = {}
        gathering = []  # (stream id, wanted) held for gather*

        def respond(stream_id, status, reason=None, record=None):
            headers = [(":status", str(status)), ("apns-id", str(uuid.uuid4()))]
            if reason is None:
                conn.send_headers(stream_id, headers, end_stream=True)
            else:
                body = {"reason": reason}
                if status == 410:
                    body["timestamp"] = int(time.time() * 1000)
                data = json.dumps(body).encode()
                conn.send_headers(stream_id, headers + [("content-type", "application/json"),
                                                        ("content-length", str(len(data)))])
                conn.send_data(stream_id, data, end_stream=True)
            if record is not None:
                record["status"] = status
                record["reason"] = reason
                emit(record)

        def handle(stream_id):
            headers, body = streams.pop(stream_id)
            path = headers.get(":path", "")
            token = path.rsplit("/", 1)[-1]
            auth = headers.get("authorization", "")
            record = {"event": "request", "connection": connection_id, "stream": stream_id,
                      "token": token, "jwt": auth[len("bearer "):] if auth.startswith("bearer ") else "",
                      "headers": {k: v for k, v in headers.items() if not k.startswith(":")},
                      "path": path}
            try:
                record["payload"] = json.loads(body)
            except ValueError:
                record["payload"] = None
            broken = self.check_request(headers, body)
            if broken:
                return respond(stream_id, broken[0], broken[1], record)
            first = token not in self.seen_tokens
            self.seen_tokens.add(token)
            if token.startswith("bad"):
                return respond(stream_id, 400, "BadDeviceToken", record)
            if token.startswith("gone"):
                return respond(stream_id, 410, "Unregistered", record)
            if token.startswith("expire") and first:
                self.expired_jwts.add(record["jwt"])
                return respond(stream_id, 403, "ExpiredProviderToken", record)
            if token.startswith("busy") and first:
                return respond(stream_id, 429, "TooManyRequests", record)
            if token.startswith("hang"):
                record["status"] = None
                emit(record)
                return
            match = re.match(r"gather(\d+)", token)
            if match:
                gathering.append((stream_id, record))
                record["open_streams"] = len(gathering)
                if len(gathering) >= int(match.group(1)):
                    for sid, held in gathering:
                        held["gathered"] = len(gathering)
                        respond(sid, 200, None, held)
                    gathering.clear()
                return
            respond(stream_id, 200, None, record)

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = (dict(event.headers), b"")
                    elif isinstance(event, h2.events.DataReceived):
                        headers, body = streams[event.stream_id]
                        streams[event.stream_id] = (headers, body + event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        handle(event.stream_id)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        break
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            emit({"event": "closed", "connection": connection_id})
            writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--public-key", required=True, help="the .p8 key's public half (PEM)")
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--team-id", required=True)
    parser.add_argument("--topic", required=True)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["h2"])
    fake = Fake(args)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0, ssl=context)
    emit({"event": "listening", "port": server.sockets[0].getsockname()[1]})
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
