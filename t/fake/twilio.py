#!/usr/bin/env python3
"""Local Twilio Messages API for tests.

Speaks the part of the Twilio REST API that NotifyHub uses:

    POST /2010-04-01/Accounts/<AccountSid>/Messages.json
        HTTP Basic auth with the account SID as the user and the auth token
        as the password (else 401 with code 20003), the same account SID
        in the path (else 404 with code 20404), and a form-urlencoded body:
        To in E.164, exactly one of From and MessagingServiceSid, Body of
        1 to 1600 characters, and an optional StatusCallback URL. Replies
        201 with a Message resource whose sid is "SM" and 32 hex digits and
        whose status is "queued" ("accepted" with a MessagingServiceSid).

Errors have Twilio's JSON shape {"code", "message", "more_info",
"status"}. Twilio itself accepts a request with both MessagingServiceSid
and From. This fake rejects it with a 400 without a code, so that a
worker that sends both is caught.

The last four digits of To select a failure mode, so tests need no shared
state:

    ...0001    400, code 21211 (invalid To number)
    ...0408    400, code 21408 (region not enabled)
    ...0429    429, code 20429 (too many requests)
    ...0500    500, code 20500 (internal server error)
    ...0610    400, code 21610 (unsubscribed recipient)
    ...0614    400, code 21614 (not a mobile number)

Test controls: GET /messages lists accepted messages, oldest first (?to=
filters by the To number, whose "+" may be sent as it is or as %2B),
DELETE /messages clears them; GET /settings
and PUT /settings {"delayMs": N} delay every later reply to a send by N
milliseconds (0 to 30000; 0 turns the delay off).

Usage: twilio.py --port P --account-sid AC... [--log FILE]
The auth token is read from the environment variable NH_TWILIO_AUTH_TOKEN,
so that it does not show in the process list.
"""

import argparse
import base64
import binascii
import datetime
import email.utils
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024
MAX_DELAY_MS = 30000
# Twilio's limit on Body, in characters.
MAX_SMS_CHARS = 1600

MESSAGES_PATH = re.compile(
    r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")

FAILURES = {
    "0001": (400, 21211, "The 'To' number %s is not a valid phone number."),
    "0408": (400, 21408, "Permission to send an SMS has not been enabled "
             "for the region indicated by the 'To' number: %s."),
    "0429": (429, 20429, "Too Many Requests"),
    "0500": (500, 20500, "An internal server error has occurred"),
    "0610": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "0614": (400, 21614, "'To' number %s is not a valid mobile number"),
}

# The GSM 03.38 default alphabet and the characters of its extension
# table, which take two septets each.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = set("\f^{}\\[~]|€")


def utc_now_rfc3339():
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (now.microsecond // 1000)


def utc_now_rfc2822():
    """Return the time as Twilio's date fields show it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return email.utils.format_datetime(now).replace("-0000", "+0000")


def count_segments(body):
    """Return the number of SMS parts that body needs.

    GSM-7 text has 160 septets in one part, or 153 per part when it is
    split. Other text has 70 UTF-16 units in one part, or 67 per part.
    NOTE: a real carrier moves an extension character or a surrogate pair
    that would straddle two parts to the next part, and this count does
    not, so it can be one part short.
    """
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)


def twilio_error(status, code, message):
    """Return a Twilio error body."""
    more_info = None
    if code is not None:
        more_info = "https://www.twilio.com/docs/errors/%d" % code
    return {"code": code, "message": message, "more_info": more_info,
            "status": status}


class State:
    """Accepted messages and settings, shared by all request threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.delay_ms = 0

    def add_message(self, item):
        with self.lock:
            self.messages.append(item)

    def list_messages(self, to=None):
        with self.lock:
            items = list(self.messages)
        if to is None:
            return items
        return [item for item in items if item["to"] == to]

    def clear_messages(self):
        with self.lock:
            count = len(self.messages)
            self.messages = []
        return count


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The status line and headers, and then the body, are written
    # separately. With Nagle's algorithm the body would wait for the
    # client's delayed ACK of the headers (about 40 ms on Linux) on every
    # reused connection, as a real provider's reply does not.
    disable_nagle_algorithm = True
    server_version = "twilio-sandbox/1.0"

    # Set on the class by main().
    state = None
    account_sid = ""
    auth_token = ""
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

    def reply(self, status, body, headers=None, note=""):
        data = (json.dumps(body) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.log_request_line(status, note)

    def reply_error(self, status, code, message, headers=None):
        self.reply(status, twilio_error(status, code, message),
                   headers=headers,
                   note=" code=%s" % ("null" if code is None else code))

    def reply_not_found(self):
        self.reply_error(404, 20404, "The requested resource %s was not "
                         "found" % self.path.split("?", 1)[0])

    def read_body(self):
        """Return the request body, or None after replying with an error."""
        length = self.headers.get("Content-Length")
        try:
            size = int(length or "0")
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY:
            self.close_connection = True
            self.reply_error(400, None, "invalid Content-Length")
            return None
        return self.rfile.read(size)

    def authenticated_account(self):
        """Return the account SID of valid Basic credentials, or None."""
        scheme, _, encoded = self.headers.get("Authorization", "") \
            .partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        user, sep, password = decoded.partition(b":")
        if not sep or user != self.account_sid.encode("ascii"):
            return None
        if not hmac.compare_digest(password,
                                   self.auth_token.encode("utf-8")):
            return None
        return self.account_sid

    def do_GET(self):
        self.started = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            self.reply(200, {"status": "ok"})
        elif url.path == "/messages":
            # A number has no spaces, so a "+" is kept as a "+" and not
            # decoded to a space as in a form.
            query = urllib.parse.parse_qs(url.query.replace("+", "%2B"))
            to = query.get("to", [None])[0]
            self.reply(200, {"items": self.state.list_messages(to)})
        elif url.path == "/settings":
            with self.state.lock:
                delay_ms = self.state.delay_ms
            self.reply(200, {"delayMs": delay_ms})
        else:
            self.reply_not_found()

    def do_DELETE(self):
        self.started = time.monotonic()
        if urllib.parse.urlsplit(self.path).path == "/messages":
            self.reply(200, {"deleted": self.state.clear_messages()})
        else:
            self.reply_not_found()

    def do_PUT(self):
        self.started = time.monotonic()
        body = self.read_body()
        if body is None:
            return
        if urllib.parse.urlsplit(self.path).path != "/settings":
            self.reply_not_found()
            return
        try:
            settings = json.loads(body)
            delay_ms = settings["delayMs"]
        except (ValueError, KeyError, TypeError):
            self.reply(400, {"error": "expected {\"delayMs\": milliseconds}"})
            return
        if not isinstance(delay_ms, int) or isinstance(delay_ms, bool) \
                or not 0 <= delay_ms <= MAX_DELAY_MS:
            self.reply(400, {"error": "delayMs must be an integer from 0 "
                             "to %d" % MAX_DELAY_MS})
            return
        with self.state.lock:
            self.state.delay_ms = delay_ms
        self.reply(200, {"delayMs": delay_ms})

    def do_POST(self):
        self.started = time.monotonic()
        body = self.read_body()
        if body is None:
            return
        match = MESSAGES_PATH.match(urllib.parse.urlsplit(self.path).path)
        if match is None:
            self.reply_not_found()
            return

        # Credentials are checked before the path, so a wrong token gets
        # 401 whatever the account in the path.
        account = self.authenticated_account()
        if account is None:
            self.reply_error(401, 20003, "Authenticate",
                             headers={"WWW-Authenticate":
                                      'Basic realm="Twilio API"'})
            return
        if urllib.parse.unquote(match.group(1)) != account:
            self.reply_not_found()
            return

        media_type = self.headers.get("Content-Type", "") \
            .split(";", 1)[0].strip().lower()
        fields = {}
        if media_type == "application/x-www-form-urlencoded":
            # The first value of a repeated field counts.
            pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True)
            for name, value in pairs:
                fields.setdefault(name, value)

        self.send_message(account, fields)

    def check_fields(self, fields):
        """Return (status, code, message) for invalid fields, else None."""
        to = fields.get("To", "")
        sender = fields.get("From", "")
        service = fields.get("MessagingServiceSid", "")
        body = fields.get("Body", "")
        callback = fields.get("StatusCallback")

        if not to:
            return (400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            return (400, 21211, "The 'To' number %s is not a valid phone "
                    "number." % to)
        if sender and service:
            return (400, None, "The fake Twilio accepts exactly one of "
                    "'From' and 'MessagingServiceSid'.")
        if not sender and not service:
            return (400, 21603, "A 'From' phone number is required.")
        if sender and not (E164.match(sender) or SHORT_CODE.match(sender)
                           or SENDER_ID.match(sender)):
            return (400, 21212, "The 'From' number %s is not a valid phone "
                    "number, shortcode, or alphanumeric sender ID." % sender)
        if service and not SERVICE_SID.match(service):
            return (404, 20404, "The requested resource "
                    "/Services/%s was not found" % service)
        if not body:
            return (400, 21602, "Message body is required.")
        if len(body) > MAX_SMS_CHARS:
            return (400, 21617, "The concatenated message body exceeds the "
                    "%d character limit." % MAX_SMS_CHARS)
        if callback is not None:
            url = urllib.parse.urlsplit(callback)
            if url.scheme not in ("http", "https") or not url.hostname:
                return (400, 21609, "The StatusCallback URL %s is not a "
                        "valid URL." % callback)
        return None

    def send_message(self, account, fields):
        problem = self.check_fields(fields)
        if problem is None:
            problem = self.failure_mode(fields["To"])
        if problem is not None:
            status, code, message = problem
            self.reply_error(status, code, message)
            return

        with self.state.lock:
            delay_ms = self.state.delay_ms
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)

        sid = "SM" + secrets.token_hex(16)
        now = utc_now_rfc2822()
        sender = fields.get("From") or None
        service = fields.get("MessagingServiceSid") or None
        uri = "/2010-04-01/Accounts/%s/Messages/%s.json" % (account, sid)
        resource = {
            "sid": sid,
            "account_sid": account,
            "messaging_service_sid": service,
            "to": fields["To"],
            "from": sender,
            "body": fields["Body"],
            "status": "queued" if sender else "accepted",
            "num_segments": str(count_segments(fields["Body"])),
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": uri,
            "subresource_uris": {"media": uri[:-5] + "/Media.json"},
        }
        self.state.add_message({
            "sid": sid,
            "accountSid": account,
            "to": fields["To"],
            "from": sender,
            "messagingServiceSid": service,
            "body": fields["Body"],
            "statusCallback": fields.get("StatusCallback"),
            "fields": sorted(fields),
            "numSegments": count_segments(fields["Body"]),
            "receivedAt": utc_now_rfc3339(),
        })
        self.reply(201, resource, note=' sid="%s"' % sid)

    def failure_mode(self, to):
        """Return the failure that the last digits of to select, or None."""
        failure = FAILURES.get(to[-4:])
        if failure is None:
            return None
        status, code, message = failure
        if "%s" in message:
            message = message % to
        return (status, code, message)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops connections when a worker opens many
    # at once, and the client then waits a second for its SYN retry.
    request_queue_size = 1024


def main():
    parser = argparse.ArgumentParser(description="Local Twilio sandbox.")
    parser.add_argument("--port", type=int, required=True,
                        help="TCP port to listen on, on 127.0.0.1")
    parser.add_argument("--account-sid", required=True,
                        help="account SID expected as the Basic auth user "
                        "and in the path")
    parser.add_argument("--log", help="file to append request lines to "
                        "(default: standard error)")
    args = parser.parse_args()

    if not ACCOUNT_SID.match(args.account_sid):
        parser.error("--account-sid must be \"AC\" and 32 hex digits")
    auth_token = os.environ.get("NH_TWILIO_AUTH_TOKEN", "")
    if not auth_token:
        parser.error("NH_TWILIO_AUTH_TOKEN is not set or empty")

    if args.log:
        log_file = open(args.log, "a", encoding="utf-8")
    else:
        log_file = sys.stderr

    Handler.state = State()
    Handler.account_sid = args.account_sid
    Handler.auth_token = auth_token
    Handler.log_file = log_file

    server = Server(("127.0.0.1", args.port), Handler)
    log_file.write("%s msg=\"listening\" address=127.0.0.1:%d "
                   "account_sid=%s\n" % (utc_now_rfc3339(), args.port,
                                         args.account_sid))
    log_file.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
