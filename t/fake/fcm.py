#!/usr/bin/env python3
"""Local Firebase Cloud Messaging (HTTP v1) and OAuth2 token endpoint.

Speaks the part of the FCM HTTP v1 API that NotifyHub uses:

    POST /token
        The OAuth2 JWT bearer grant, as a form body with grant_type
        urn:ietf:params:oauth:grant-type:jwt-bearer and assertion, a JWT
        signed with RS256 by the service account's key. The signature is
        checked with "openssl dgst -sha256 -verify" against the public key
        given with --public-key; iss, aud, scope, iat and exp are checked
        too. Replies {"access_token", "expires_in", "token_type"} with an
        opaque token that lives --token-ttl seconds.
    POST /v1/projects/<project>/messages:send
        Needs "Authorization: Bearer <token>" with a token issued here and
        not expired (else 401 UNAUTHENTICATED), and a message of the v1
        shape: exactly one of token, topic and condition, notification
        title and body strings, data values strings. Replies with
        {"name": "projects/<project>/messages/<id>"}.

The device token's prefix selects a failure mode:

    unregistered-...    404 with errorCode UNREGISTERED
    invalid-...         400 with errorCode INVALID_ARGUMENT
    unavailable-...     503 with errorCode UNAVAILABLE
    slow-<ms>-...       accepted after a delay of <ms> milliseconds

Test controls: GET /messages lists accepted messages (?token= filters),
DELETE /messages clears them; GET /stats counts token grants, rejected
grants and 401 replies; DELETE /tokens forgets every issued access token;
PUT /settings {"tokenTtl": seconds} changes the lifetime of new tokens.

Usage: fcm.py --port P --project-id ID --client-email E --public-key PEM
       [--token-ttl SECONDS] [--log FILE]
"""

import argparse
import base64
import binascii
import datetime
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024
MAX_SLOW_MS = 30000
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# Seconds of clock difference allowed between the worker and this server.
CLOCK_SKEW = 60

SEND_PATH = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
SLOW_TOKEN = re.compile(r"^slow-(\d+)-")


def utc_now_rfc3339():
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (now.microsecond // 1000)


def b64url_decode(text):
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def fcm_error(code, status, message, error_code=None):
    """Return an FCM v1 error body."""
    error = {"code": code, "message": message, "status": status}
    if error_code is not None:
        error["details"] = [{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": error_code,
        }]
    return {"error": error}


class State:
    """Issued tokens, accepted messages and counters, shared by threads."""

    def __init__(self, token_ttl):
        self.lock = threading.Lock()
        self.token_ttl = token_ttl
        self.tokens = {}
        self.messages = []
        self.counter = itertools.count(1)
        self.stats = {"grants": 0, "grantsRejected": 0,
                      "unauthenticated": 0, "sends": 0}

    def count(self, name):
        with self.lock:
            self.stats[name] += 1

    def issue_token(self):
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self.lock:
            ttl = self.token_ttl
            self.tokens[token] = time.monotonic() + ttl
            self.stats["grants"] += 1
        return token, ttl

    def token_is_valid(self, token):
        with self.lock:
            expires = self.tokens.get(token)
        return expires is not None and time.monotonic() < expires

    def forget_tokens(self):
        with self.lock:
            count = len(self.tokens)
            self.tokens = {}
        return count

    def add_message(self, item):
        with self.lock:
            item["id"] = "%d" % (1000000 + next(self.counter))
            self.messages.append(item)
            return item["id"]

    def list_messages(self, token=None):
        with self.lock:
            items = list(self.messages)
        if token is None:
            return items
        return [m for m in items if m["message"].get("token") == token]

    def clear_messages(self):
        with self.lock:
            count = len(self.messages)
            self.messages = []
        return count


def verify_rs256(public_key_file, signing_input, signature):
    """Check an RS256 signature with the openssl command line tool."""
    with tempfile.NamedTemporaryFile(prefix="fcm-sig-") as sig:
        sig.write(signature)
        sig.flush()
        result = subprocess.run(
            ["openssl", "dgst", "-sha256", "-verify", public_key_file,
             "-signature", sig.name],
            input=signing_input, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, check=False)
    return result.returncode == 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The status line and headers, and then the body, are written
    # separately. With Nagle's algorithm the body would wait for the
    # client's delayed ACK of the headers (about 40 ms on Linux) on every
    # reused connection, as a real provider's reply does not.
    disable_nagle_algorithm = True
    server_version = "fcm-sandbox/1.0"

    # Set on the class by main().
    state = None
    project_id = ""
    client_email = ""
    public_key_file = ""
    token_url = ""
    log_file = None
    log_lock = threading.Lock()

    def log_message(self, format, *args):
        pass

    def log_request_line(self, status, note=""):
        elapsed_ms = (time.monotonic() - self.started) * 1000
        line = '%s method=%s path="%s" status=%d duration_ms=%d%s\n' % (
            utc_now_rfc3339(), self.command, self.path.split("?", 1)[0],
            status, elapsed_ms, note)
        with self.log_lock:
            self.log_file.write(line)
            self.log_file.flush()

    def reply(self, status, body, note=""):
        data = (json.dumps(body) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.log_request_line(status, note)

    def read_body(self):
        length = self.headers.get("Content-Length")
        try:
            size = int(length or "0")
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY:
            self.close_connection = True
            self.reply(400, fcm_error(400, "INVALID_ARGUMENT",
                                      "invalid Content-Length"))
            return None
        return self.rfile.read(size)

    def do_GET(self):
        self.started = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            self.reply(200, {"status": "ok"})
        elif url.path == "/messages":
            token = urllib.parse.parse_qs(url.query).get("token", [None])[0]
            self.reply(200, {"items": self.state.list_messages(token)})
        elif url.path == "/stats":
            with self.state.lock:
                stats = dict(self.state.stats)
            self.reply(200, stats)
        else:
            self.reply(404, fcm_error(404, "NOT_FOUND", "not found"))

    def do_DELETE(self):
        self.started = time.monotonic()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/messages":
            self.reply(200, {"deleted": self.state.clear_messages()})
        elif path == "/tokens":
            self.reply(200, {"deleted": self.state.forget_tokens()})
        else:
            self.reply(404, fcm_error(404, "NOT_FOUND", "not found"))

    def do_PUT(self):
        self.started = time.monotonic()
        body = self.read_body()
        if body is None:
            return
        if urllib.parse.urlsplit(self.path).path != "/settings":
            self.reply(404, fcm_error(404, "NOT_FOUND", "not found"))
            return
        try:
            settings = json.loads(body)
            ttl = int(settings["tokenTtl"])
        except (ValueError, KeyError, TypeError):
            self.reply(400, {"error": "expected {\"tokenTtl\": seconds}"})
            return
        if ttl < 1:
            self.reply(400, {"error": "tokenTtl must be at least 1"})
            return
        with self.state.lock:
            self.state.token_ttl = ttl
        self.reply(200, {"tokenTtl": ttl})

    def do_POST(self):
        self.started = time.monotonic()
        body = self.read_body()
        if body is None:
            return
        path = urllib.parse.urlsplit(self.path).path
        if path == "/token":
            self.grant(body)
            return
        match = SEND_PATH.match(path)
        if match is None:
            self.reply(404, fcm_error(404, "NOT_FOUND", "not found"))
            return
        self.send_message(urllib.parse.unquote(match.group(1)), body)

    # The token endpoint

    def reject_grant(self, description):
        self.state.count("grantsRejected")
        self.reply(400, {"error": "invalid_grant",
                         "error_description": description},
                   note=' reason="%s"' % description)

    def grant(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        if form.get("grant_type") != GRANT_TYPE:
            self.state.count("grantsRejected")
            self.reply(400, {"error": "unsupported_grant_type",
                             "error_description": "Invalid grant_type"})
            return
        problem = self.check_assertion(form.get("assertion", ""))
        if problem is not None:
            self.reject_grant(problem)
            return
        token, ttl = self.state.issue_token()
        self.reply(200, {"access_token": token, "expires_in": ttl,
                         "token_type": "Bearer"},
                   note=" expires_in=%d" % ttl)

    def check_assertion(self, assertion):
        """Return why the JWT is invalid, or None."""
        parts = assertion.split(".")
        if len(parts) != 3:
            return "assertion is not a JWT"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return "assertion is not base64url JSON"
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return "assertion header or claims are not objects"
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            return "header must be {\"alg\": \"RS256\", \"typ\": \"JWT\"}"

        signing_input = (parts[0] + "." + parts[1]).encode("ascii")
        if not verify_rs256(self.public_key_file, signing_input, signature):
            return "Invalid JWT Signature."

        if claims.get("iss") != self.client_email:
            return "iss is not the service account's client_email"
        if claims.get("aud") != self.token_url:
            return "aud is not the token endpoint"
        if claims.get("scope") != SCOPE:
            return "scope is not " + SCOPE

        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "iat and exp must be integers"
        if iat > now + CLOCK_SKEW:
            return "iat is in the future"
        if exp < now - CLOCK_SKEW:
            return "exp is in the past"
        if exp - iat > 3600:
            return "exp is more than an hour after iat"
        return None

    # The send endpoint

    def send_message(self, project, body):
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or \
                not self.state.token_is_valid(token.strip()):
            self.state.count("unauthenticated")
            self.reply(401, fcm_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication "
                "credentials. Expected OAuth 2 access token, login cookie "
                "or other valid authentication credential."))
            return

        if project != self.project_id:
            self.reply(403, fcm_error(403, "PERMISSION_DENIED",
                                      "Permission denied on project %s"
                                      % project, "SENDER_ID_MISMATCH"))
            return
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        problem = self.check_message(request)
        if problem is not None:
            self.reply(400, fcm_error(400, "INVALID_ARGUMENT", problem,
                                      "INVALID_ARGUMENT"))
            return

        message = request["message"]
        device = message.get("token") or ""
        if self.apply_failure_mode(device):
            return
        self.state.count("sends")
        message_id = self.state.add_message({
            "project": project,
            "message": message,
            "receivedAt": utc_now_rfc3339(),
        })
        name = "projects/%s/messages/%s" % (project, message_id)
        self.reply(200, {"name": name}, note=' name="%s"' % name)

    @staticmethod
    def check_message(request):
        """Return why the send request is invalid, or None."""
        if not isinstance(request, dict) or \
                not isinstance(request.get("message"), dict):
            return "Invalid JSON payload: expected a message object"
        message = request["message"]
        targets = [k for k in ("token", "topic", "condition") if k in message]
        if len(targets) != 1:
            return "exactly one of message.token, message.topic and " \
                "message.condition is required"
        if not isinstance(message[targets[0]], str) or \
                not message[targets[0]]:
            return "message.%s must be a non-empty string" % targets[0]
        notification = message.get("notification")
        if notification is not None:
            if not isinstance(notification, dict):
                return "message.notification must be an object"
            for key, value in notification.items():
                if key not in ("title", "body", "image"):
                    return "Invalid JSON payload received. Unknown name " \
                        "\"%s\" at 'message.notification'" % key
                if not isinstance(value, str):
                    return "Invalid value at 'message.notification.%s' " \
                        "(TYPE_STRING)" % key
        data = message.get("data")
        if data is not None:
            if not isinstance(data, dict):
                return "message.data must be an object"
            for key, value in data.items():
                if not isinstance(value, str):
                    return "Invalid value at 'message.data[%s].value' " \
                        "(TYPE_STRING)" % key
        return None

    def apply_failure_mode(self, device):
        """Reply for a failure-mode token; True when a reply was sent."""
        if device.startswith("unregistered-"):
            self.reply(404, fcm_error(404, "NOT_FOUND",
                                      "Requested entity was not found.",
                                      "UNREGISTERED"),
                       note=" failure_mode=unregistered")
            return True
        if device.startswith("invalid-"):
            self.reply(400, fcm_error(400, "INVALID_ARGUMENT",
                                      "The registration token is not a "
                                      "valid FCM registration token",
                                      "INVALID_ARGUMENT"),
                       note=" failure_mode=invalid")
            return True
        if device.startswith("unavailable-"):
            self.reply(503, fcm_error(503, "UNAVAILABLE",
                                      "The service is currently unavailable.",
                                      "UNAVAILABLE"),
                       note=" failure_mode=unavailable")
            return True
        match = SLOW_TOKEN.match(device)
        if match:
            time.sleep(min(int(match.group(1)), MAX_SLOW_MS) / 1000.0)
        return False


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    parser = argparse.ArgumentParser(description="Local FCM sandbox.")
    parser.add_argument("--port", type=int, required=True,
                        help="TCP port to listen on, on 127.0.0.1")
    parser.add_argument("--project-id", required=True,
                        help="Firebase project id that sends are for")
    parser.add_argument("--client-email", required=True,
                        help="service account expected as the JWT issuer")
    parser.add_argument("--public-key", required=True,
                        help="PEM file of the service account's public key")
    parser.add_argument("--token-ttl", type=int, default=3600,
                        help="lifetime of issued access tokens, in seconds "
                        "(default 3600)")
    parser.add_argument("--log", help="file to append request lines to "
                        "(default: standard error)")
    args = parser.parse_args()

    if args.token_ttl < 1:
        parser.error("--token-ttl must be at least 1")
    if not os.path.isfile(args.public_key):
        parser.error("--public-key %s is not a file" % args.public_key)

    log_file = open(args.log, "a", encoding="utf-8") if args.log \
        else sys.stderr

    Handler.state = State(args.token_ttl)
    Handler.project_id = args.project_id
    Handler.client_email = args.client_email
    Handler.public_key_file = args.public_key
    Handler.token_url = "http://127.0.0.1:%d/token" % args.port
    Handler.log_file = log_file

    server = Server(("127.0.0.1", args.port), Handler)
    log_file.write('%s msg="listening" address=127.0.0.1:%d project_id=%s\n'
                   % (utc_now_rfc3339(), args.port, args.project_id))
    log_file.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
