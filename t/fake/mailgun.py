#!/usr/bin/env python3
"""Local Mailgun sandbox for tests.

Speaks the part of the Mailgun HTTP API that NotifyHub uses: POST
/v3/<domain>/messages with HTTP Basic auth (user "api", password the API
key), form-urlencoded or multipart/form-data bodies, and Mailgun's status
codes and JSON error bodies. Accepted messages are kept in memory and can
be read back with GET /messages and cleared with DELETE /messages.

The recipient's local part selects a failure mode, so tests need no shared
state:

    fail-400@...    400, "'to' parameter is not a valid address..."
    fail-500@...    500
    fail-429@...    429 with Retry-After: 1
    fail-once-500@...
                    500 for the first request to that whole address, then
                    accepted
    slow-<ms>@...   accepted after a delay of <ms> milliseconds (max 30000)
    slow-once-<ms>@...
                    the first request to that whole address is delayed as
                    for slow-<ms>, later ones are not

The "once" modes remember the addresses they saw until the fake stops, so a
test gives each of them a domain of its own.

A test can also make the whole provider fail for a while:

    POST /control {"failStatus": 503, "domains": ["d1"]}
                    every send to those domains (to every domain when
                    "domains" is missing or null) gets failStatus until the
                    next POST /control
    POST /control {"failStatus": null}
                    sends are handled normally again
    GET /control    the current setting
    GET /stats      per sending domain, the sends received since the fake
                    started: {"domains": {"d1": {"requests": n,
                    "accepted": n, "failed": n}}}

Usage: mailgun.py --port P --api-key K --domain D [--domain D2] [--log FILE]
"""

import argparse
import base64
import binascii
import datetime
import email.parser
import email.policy
import hmac
import itertools
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Request bodies above this size get 413.
MAX_BODY = 25 * 1024 * 1024
MAX_SLOW_MS = 30000

MESSAGES_PATH = re.compile(r"^/v3/([^/]+)/messages/?$")
SLOW_LOCAL_PART = re.compile(r"^slow-(once-)?(\d+)$")
ADDRESS_IN_BRACKETS = re.compile(r"<([^<>]*)>")


def utc_now_rfc3339():
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (now.microsecond // 1000)


def split_addresses(values):
    """Return the bare addresses of a list of 'to' values.

    Each value may hold several comma-separated recipients, each either a
    bare address or "Name <address>".
    """
    addresses = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            match = ADDRESS_IN_BRACKETS.search(part)
            addresses.append((match.group(1) if match else part).strip())
    return addresses


def parse_urlencoded(body):
    text = body.decode("utf-8", errors="replace")
    return urllib.parse.parse_qsl(text, keep_blank_values=True)


def parse_multipart(content_type, body):
    """Return the (name, value) pairs of a multipart/form-data body.

    File parts (attachments) are returned as their file name, because the
    sandbox does not keep attachment content.
    """
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(head + body)
    if not message.is_multipart():
        return []

    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            continue
        filename = part.get_filename()
        if filename is not None:
            fields.append((name, filename))
            continue
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        fields.append((name, payload.decode(charset, errors="replace")))
    return fields


class Store:
    """Accepted messages, oldest first, shared by all request threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self.counter = itertools.count(1)
        # Addresses of the "once" failure modes that had a request.
        self.seen = set()
        # The POST /control setting: a status, and the domains it applies
        # to (None for all), or no status.
        self.fail_status = None
        self.fail_domains = None
        # Sends received per domain: requests, accepted, failed.
        self.counts = {}

    def new_id(self, domain):
        stamp = datetime.datetime.now(datetime.timezone.utc)
        return "<%s.%d.%s@%s>" % (stamp.strftime("%Y%m%d%H%M%S"),
                                  next(self.counter),
                                  secrets.token_hex(8).upper(), domain)

    def first_request(self, address):
        """Return True the first time an address is passed, else False."""
        with self.lock:
            if address in self.seen:
                return False
            self.seen.add(address)
            return True

    def add(self, item):
        with self.lock:
            self.items.append(item)

    def list(self, to=None):
        with self.lock:
            items = list(self.items)
        if to is None:
            return items
        recipient = to.strip().lower()
        return [item for item in items
                if recipient in (a.lower() for a in item["recipients"])]

    def clear(self):
        with self.lock:
            count = len(self.items)
            self.items = []
        return count

    def set_control(self, status, domains):
        with self.lock:
            self.fail_status = status
            self.fail_domains = None if domains is None else set(domains)

    def control(self):
        with self.lock:
            domains = self.fail_domains
            return {"failStatus": self.fail_status,
                    "domains": None if domains is None else sorted(domains)}

    def forced_status(self, domain):
        """Return the POST /control status for a send to domain, or None."""
        with self.lock:
            if self.fail_status is None:
                return None
            if self.fail_domains is not None and \
                    domain not in self.fail_domains:
                return None
            return self.fail_status

    def count(self, domain, outcome):
        """Count one send to domain; outcome is "accepted" or "failed"."""
        with self.lock:
            counts = self.counts.setdefault(
                domain, {"requests": 0, "accepted": 0, "failed": 0})
            counts["requests"] += 1
            counts[outcome] += 1

    def stats(self):
        with self.lock:
            return {domain: dict(counts)
                    for domain, counts in self.counts.items()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The status line and headers, and then the body, are written
    # separately. With Nagle's algorithm the body would wait for the
    # client's delayed ACK of the headers (about 40 ms on Linux) on every
    # reused connection, as a real provider's reply does not.
    disable_nagle_algorithm = True
    server_version = "mailgun-sandbox/1.0"

    # Set on the class by main().
    api_key = ""
    domains = ()
    store = None
    log_file = None
    log_lock = threading.Lock()

    def log_message(self, format, *args):
        # Request lines are written by log_request_line() instead.
        pass

    def log_request_line(self, status, note=""):
        elapsed_ms = (time.monotonic() - self.started) * 1000
        line = '%s method=%s path="%s" status=%d duration_ms=%d%s\n' % (
            utc_now_rfc3339(), self.command, self.path.split("?", 1)[0],
            status, elapsed_ms, note)
        with self.log_lock:
            self.log_file.write(line)
            self.log_file.flush()

    def reply(self, status, body, content_type="application/json",
              headers=None, note=""):
        if isinstance(body, (dict, list)):
            data = (json.dumps(body) + "\n").encode("utf-8")
        else:
            data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.log_request_line(status, note)

    def reply_message(self, status, message, headers=None, note=""):
        self.reply(status, {"message": message}, headers=headers, note=note)

    def reply_not_found(self):
        self.reply(404, "404 page not found\n", "text/plain; charset=utf-8")

    def read_body(self):
        """Return the request body, or None after replying with an error."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked_body()

        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            self.reply_message(400, "invalid Content-Length")
            return None
        if size < 0:
            self.reply_message(400, "invalid Content-Length")
            return None
        if size > MAX_BODY:
            self.close_connection = True
            self.reply_message(413, "request entity too large")
            return None
        return self.rfile.read(size)

    def read_chunked_body(self):
        chunks = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self.reply_message(400, "invalid chunked encoding")
                return None
            if size == 0:
                # Skip the trailer section up to the empty line.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                self.reply_message(413, "request entity too large")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def is_authorized(self):
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep or user != b"api":
            return False
        return hmac.compare_digest(password, self.api_key.encode("utf-8"))

    def do_GET(self):
        self.started = time.monotonic()
        url = urllib.parse.urlsplit(self.path)

        if url.path == "/healthz":
            self.reply(200, {"status": "ok"})
            return

        if url.path == "/control":
            self.reply(200, self.store.control())
            return

        if url.path == "/stats":
            self.reply(200, {"domains": self.store.stats()})
            return

        if url.path == "/messages":
            query = urllib.parse.parse_qs(url.query)
            to = query.get("to", [None])[0]
            items = self.store.list(to)
            public = [{k: v for k, v in item.items() if k != "recipients"}
                      for item in items]
            self.reply(200, {"items": public})
            return

        self.reply_not_found()

    def do_DELETE(self):
        self.started = time.monotonic()
        if urllib.parse.urlsplit(self.path).path == "/messages":
            count = self.store.clear()
            self.reply(200, {"deleted": count})
            return
        self.reply_not_found()

    def do_POST(self):
        self.started = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/control":
            self.set_control()
            return

        match = MESSAGES_PATH.match(url.path)
        if match is None:
            self.read_body()
            self.reply_not_found()
            return

        body = self.read_body()
        if body is None:
            return

        # Credentials are checked before the domain, so a wrong key gets
        # 401 whatever the domain.
        if not self.is_authorized():
            self.reply(401, "Forbidden", "text/plain; charset=utf-8",
                       headers={"WWW-Authenticate": 'Basic realm="MG API"'})
            return

        domain = urllib.parse.unquote(match.group(1))
        if domain not in self.domains:
            self.reply_message(404, "Domain not found: %s" % domain)
            return

        status = self.store.forced_status(domain)
        if status is not None:
            self.store.count(domain, "failed")
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = "Error"
            self.reply_message(status, reason, note=" failure_mode=control")
            return

        content_type = self.headers.get("Content-Type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type == "application/x-www-form-urlencoded":
            fields = parse_urlencoded(body)
        elif media_type == "multipart/form-data":
            fields = parse_multipart(content_type, body)
        else:
            # Other media types yield no fields, so the first required
            # field is reported missing.
            fields = []

        self.accept_message(domain, fields)

    def accept_message(self, domain, fields):
        values = {}
        variables = {}
        options = {}
        for name, value in fields:
            if name.startswith("v:"):
                variables[name[2:]] = value
            elif name.startswith("o:") or name.startswith("h:"):
                if name in options:
                    previous = options[name]
                    if not isinstance(previous, list):
                        previous = [previous]
                    options[name] = previous + [value]
                else:
                    options[name] = value
            else:
                values.setdefault(name, []).append(value)

        for required in ("from", "to", "subject"):
            if not any(v.strip() for v in values.get(required, [])):
                self.reply_message(400, "'%s' parameter is missing" % required)
                return
        if not values.get("text") and not values.get("html") \
                and not values.get("template"):
            self.reply_message(400, "Need at least one of 'text', 'html' or "
                               "'template' parameters specified")
            return

        recipients = split_addresses(values["to"])
        if self.apply_failure_mode(recipients):
            self.store.count(domain, "failed")
            return

        message_id = self.store.new_id(domain)
        self.store.add({
            "id": message_id,
            "domain": domain,
            "from": values["from"][0],
            "to": ", ".join(values["to"]),
            "subject": values["subject"][0],
            "text": values["text"][0] if "text" in values else None,
            "html": values["html"][0] if "html" in values else None,
            "variables": variables,
            "options": options,
            "receivedAt": utc_now_rfc3339(),
            "recipients": recipients,
        })

        self.store.count(domain, "accepted")
        note = ' message_id="%s" recipients=%d' % (message_id, len(recipients))
        self.reply(200, {"id": message_id, "message": "Queued. Thank you."},
                   note=note)

    def set_control(self):
        body = self.read_body()
        if body is None:
            return
        try:
            request = json.loads(body.decode("utf-8") or "{}")
        except ValueError:
            self.reply_message(400, "the body must be a JSON object")
            return
        if not isinstance(request, dict):
            self.reply_message(400, "the body must be a JSON object")
            return
        status = request.get("failStatus")
        domains = request.get("domains")
        if status is not None and (not isinstance(status, int) or
                                   not 400 <= status <= 599):
            self.reply_message(400, "failStatus must be null or an HTTP "
                               "error status from 400 to 599")
            return
        if domains is not None and (
                not isinstance(domains, list) or
                not all(isinstance(d, str) for d in domains)):
            self.reply_message(400, "domains must be null or a list of "
                               "domain names")
            return
        self.store.set_control(status, domains)
        self.reply(200, self.store.control())

    def apply_failure_mode(self, recipients):
        """Reply for a failure-mode recipient; True when a reply was sent.

        A slow-<ms> recipient only delays the normal reply, so it returns
        False after sleeping.
        """
        for address in recipients:
            local = address.rsplit("@", 1)[0].lower()
            if local == "fail-400":
                self.reply_message(400, "'to' parameter is not a valid "
                                   "address. please check documentation",
                                   note=" failure_mode=fail-400")
                return True
            if local == "fail-500":
                self.reply_message(500, "Internal Server Error",
                                   note=" failure_mode=fail-500")
                return True
            if local == "fail-429":
                self.reply_message(429, "Too many requests",
                                   headers={"Retry-After": "1"},
                                   note=" failure_mode=fail-429")
                return True
            if local == "fail-once-500" and \
                    self.store.first_request(address.lower()):
                self.reply_message(500, "Internal Server Error",
                                   note=" failure_mode=fail-once-500")
                return True

        for address in recipients:
            local = address.rsplit("@", 1)[0].lower()
            match = SLOW_LOCAL_PART.match(local)
            if match and match.group(1) and \
                    not self.store.first_request(address.lower()):
                return False
            if match:
                delay_ms = min(int(match.group(2)), MAX_SLOW_MS)
                time.sleep(delay_ms / 1000.0)
                return False
        return False


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops connections when a worker opens many
    # at once, and the client then waits a second for its SYN retry.
    request_queue_size = 1024


def main():
    parser = argparse.ArgumentParser(description="Local Mailgun sandbox.")
    parser.add_argument("--port", type=int, required=True,
                        help="TCP port to listen on, on 127.0.0.1")
    parser.add_argument("--api-key", required=True,
                        help="API key expected as the Basic auth password")
    parser.add_argument("--domain", action="append", required=True,
                        help="sending domain to accept (repeatable)")
    parser.add_argument("--log", help="file to append request lines to "
                        "(default: standard error)")
    args = parser.parse_args()

    if args.log:
        log_file = open(args.log, "a", encoding="utf-8")
    else:
        log_file = sys.stderr

    Handler.api_key = args.api_key
    Handler.domains = tuple(args.domain)
    Handler.store = Store()
    Handler.log_file = log_file

    server = Server(("127.0.0.1", args.port), Handler)
    log_file.write("%s msg=\"listening\" address=127.0.0.1:%d domains=%s\n" % (
        utc_now_rfc3339(), args.port, ",".join(args.domain)))
    log_file.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
