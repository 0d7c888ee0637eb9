#!/usr/bin/env python
"""SMTP sink for the fleet test: every message received is stored in a Maildir.

Runs inside the fleet's services network namespace; the hosts send their
boot reports to it. Read the messages with ``mailbox.Maildir(PATH)``.
"""

import argparse
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=25)
    parser.add_argument("--maildir", required=True, help="must not exist yet")
    args = parser.parse_args()

    controller = Controller(Mailbox(args.maildir), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp sink on {args.host}:{args.port} -> {args.maildir}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
