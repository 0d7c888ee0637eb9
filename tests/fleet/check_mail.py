#!/usr/bin/env python
"""Controller side: wait for boot reports in the SMTP sink's Maildir.

    check_mail.py MAILDIR SEEN_FILE HOST=STATE [HOST=STATE ...] [--timeout S]

Messages whose keys are in SEEN_FILE are old. Waits until every HOST has a new
report, then expects exactly one new report per HOST whose body names the
host and whose previous-shutdown is STATE (clean, unclean). All keys seen are
added to SEEN_FILE. Prints one line per host; exit 1 on any mismatch.
"""

import argparse
import mailbox
import re
import sys
import time


def field(body, key):
    m = re.search(r"^%s:\s*['\"]?([^'\"\n]*)['\"]?\s*$" % re.escape(key), body, re.M)
    return m.group(1).strip() if m else None


def body_of(msg):
    if msg.is_multipart():
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                return part.get_payload(decode=True).decode("utf-8", "replace")
        return ""
    payload = msg.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if payload else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("maildir")
    ap.add_argument("seen")
    ap.add_argument("expect", nargs="*")
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--settle", type=float, default=3)
    args = ap.parse_args()
    expect = dict(e.split("=", 1) for e in args.expect)
    try:
        with open(args.seen, encoding="utf-8") as f:
            seen = set(f.read().split())
    except FileNotFoundError:
        seen = set()

    def new_reports():
        box = mailbox.Maildir(args.maildir, create=False)
        out = {}
        for key in box.keys():
            if key in seen:
                continue
            msg = box[key]
            body = body_of(msg)
            host = field(body, "hostname") or "?"
            out.setdefault(host, []).append((key, msg.get("Subject", ""), field(body, "previous-shutdown"), body))
        return out

    deadline = time.time() + args.timeout
    reports = new_reports()
    while time.time() < deadline and not all(h in reports for h in expect):
        time.sleep(1)
        reports = new_reports()
    time.sleep(args.settle)
    reports = new_reports()
    rc = 0
    for host, state in sorted(expect.items()):
        got = reports.get(host, [])
        states = [r[2] for r in got]
        ok = len(got) == 1 and states[0] == state and host in got[0][1]
        print("%s %s: %d new report(s), previous-shutdown %s (want 1, %s)%s"
              % ("OK" if ok else "FAIL", host, len(got), states, state,
                 "" if ok or not got else "\n" + got[-1][3]))
        rc |= 0 if ok else 1
    with open(args.seen, "a", encoding="utf-8") as f:
        for lst in reports.values():
            for r in lst:
                f.write(r[0] + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
