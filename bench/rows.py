#!/usr/bin/env python3
"""Writes CSV rows for COPY or a bulk request body to stdout, for bench/run-reads-bulk.

  rows.py ingest TENANT_ID COUNT
      COUNT rows as POST /api/notifications/bulk stores them for the items
      of bench/run-reads-bulk: columns id, tenant_id, channel, status,
      priority, to_address, subject, body. Every row is a PENDING email.

  rows.py mixed TENANT_ID COUNT
      COUNT rows with the columns above plus created_at and updated_at,
      spread evenly at random over the last 30 days, with a mix of
      channels and statuses (see CHANNELS and STATUSES).

  rows.py bulk-body COUNT
      The JSON body of one bulk request with COUNT email items.

  rows.py slow-body COUNT MS
      The same with items to slow-MS@... addresses, to which the fake
      Mailgun replies after MS milliseconds, for bench/run-delivery.

The ids are time-ordered version 7 UUIDs, as the module generates them.
"""

import json
import random
import sys
import time

# Each list contains (value, weight) pairs for random.choices.
CHANNELS = [("EMAIL", 60), ("SMS", 25), ("PUSH", 15)]
STATUSES = [("DELIVERED", 55), ("SENT", 20), ("FAILED", 8), ("PENDING", 5),
            ("RETRYING", 3), ("SCHEDULED", 3), ("CANCELLED", 3),
            ("SKIPPED", 2), ("PROCESSING", 1)]
PRIORITIES = [("NORMAL", 80), ("HIGH", 10), ("LOW", 8), ("CRITICAL", 2)]
ADDRESSES = {
    "EMAIL": '"{""email"":""bench@example.com""}"',
    "SMS": '"{""phone"":""+15555550100""}"',
    "PUSH": '"{""deviceToken"":""bench-device-token""}"',
}
DAYS = 30


def uuid7(ms):
    """Returns a version 7 UUID for the Unix time ms in milliseconds."""
    rand = random.getrandbits(74)
    value = ((ms << 80) | (0x7 << 76) | ((rand >> 62) << 64)
             | (0b10 << 62) | (rand & ((1 << 62) - 1)))
    digits = "%032x" % value
    return (f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-"
            f"{digits[16:20]}-{digits[20:]}")


def choices(pairs, count):
    values, weights = zip(*pairs)
    return random.choices(values, weights, k=count)


def ingest(tenant, count):
    now_ms = int(time.time() * 1000)
    address = ADDRESSES["EMAIL"]
    out = sys.stdout
    for i in range(count):
        out.write(f"{uuid7(now_ms + i // 100)},{tenant},EMAIL,PENDING,"
                  f"NORMAL,{address},s,b\n")


def mixed(tenant, count):
    now = time.time()
    span = DAYS * 86400
    out = sys.stdout
    batch = 10000
    for start in range(0, count, batch):
        n = min(batch, count - start)
        channels = choices(CHANNELS, n)
        statuses = choices(STATUSES, n)
        priorities = choices(PRIORITIES, n)
        lines = []
        for channel, status, priority in zip(channels, statuses, priorities):
            created = now - random.random() * span
            stamp = time.strftime("%Y-%m-%d %H:%M:%S",
                                  time.gmtime(created))
            stamp += ".%06d+00" % int((created % 1) * 1000000)
            subject = "s" if channel == "EMAIL" else ""
            lines.append(f"{uuid7(int(created * 1000))},{tenant},{channel},"
                         f"{status},{priority},{ADDRESSES[channel]},"
                         f"{subject},b,{stamp},{stamp}\n")
        out.write("".join(lines))


def bulk_body(count):
    item = {"channel": "EMAIL", "to": {"email": "bench@example.com"},
            "content": {"subject": "s", "body": "b"}}
    json.dump({"notifications": [item] * count}, sys.stdout,
              separators=(",", ":"))


def slow_body(count, ms):
    items = [{"channel": "EMAIL",
              "to": {"email": "slow-%d@bench-%d.example.com" % (ms, i)},
              "content": {"subject": "s", "body": "b"}}
             for i in range(count)]
    json.dump({"notifications": items}, sys.stdout, separators=(",", ":"))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode in ("ingest", "mixed") and len(sys.argv) == 4:
        (ingest if mode == "ingest" else mixed)(sys.argv[2], int(sys.argv[3]))
    elif mode == "bulk-body" and len(sys.argv) == 3:
        bulk_body(int(sys.argv[2]))
    elif mode == "slow-body" and len(sys.argv) == 4:
        slow_body(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
