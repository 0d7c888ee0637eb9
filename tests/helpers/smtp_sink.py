# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real SMTP server (aiosmtpd) on 127.0.0.1 that stores every message in a
Maildir, for the boot report tests; plus the small process tools they need.

    smtp_sink.py start DIR          start the sink on a free port in the
                                    background; pid in DIR/sink.pid, Maildir
                                    DIR/Maildir; prints {"port": N, "pid": P}
    smtp_sink.py stop DIR           stop the sink started with DIR
    smtp_sink.py read MAILDIR       print the messages as JSON (subject, from,
                                    to, envelope, body), oldest first
    smtp_sink.py free-port          print a free TCP port on 127.0.0.1
    smtp_sink.py daemon PIDFILE LOG HOST:PORT -- ARGV...
                                    run ARGV detached (its output to LOG, its
                                    pid to PIDFILE) and wait until HOST:PORT
                                    accepts connections
    smtp_sink.py kill PIDFILE       TERM (then KILL) the pid in PIDFILE
    smtp_sink.py serve --maildir DIR --port N
                                    the sink itself, in the foreground

aiosmtpd's Mailbox handler adds X-Peer, X-MailFrom and X-RcptTo headers: the
envelope is checked from those.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import mailbox
import os
import signal
import socket
import subprocess
import sys
import threading
import time

READY_TIMEOUT = 30.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def daemon(pidfile, log, hostport, argv):
    host, dummy, port = hostport.rpartition(":")
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    with open(pidfile + ".tmp", "w") as f:
        f.write("%d\n" % proc.pid)
    os.replace(pidfile + ".tmp", pidfile)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s; see %s" % (argv[0], proc.returncode, log))
        if _accepts(host, int(port)):
            return proc.pid
        time.sleep(0.1)
    kill(pidfile)
    raise RuntimeError("%s did not accept connections on %s within %.0f s" % (argv[0], hostport, READY_TIMEOUT))


def kill(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip() or 0)
    except FileNotFoundError:
        return
    if pid > 1 and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for dummy in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    os.unlink(pidfile)


def serve(maildir, host, port):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    controller = Controller(Mailbox(maildir), hostname=host, port=port)
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


def read(maildir):
    out = []
    if not os.path.isdir(maildir):
        return out
    box = mailbox.Maildir(maildir, factory=None, create=False)
    for key in box.keys():
        with box.get_file(key) as f:
            raw = f.read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        out.append({
            "key": key,
            "subject": str(msg.get("Subject", "")),
            "from": str(msg.get("From", "")),
            "to": [a.addr_spec for h in msg.get_all("To", []) for a in h.addresses],
            "envelope_from": str(msg.get("X-MailFrom", msg.get("Return-Path", ""))).strip("<>"),
            "envelope_to": [r.strip() for h in msg.get_all("X-RcptTo", []) + msg.get_all("Envelope-to", [])
                            for r in str(h).split(",") if r.strip()],
            "body": body.get_content() if body is not None else "",
            "mtime": os.path.getmtime(os.path.join(maildir, box._lookup(key))),
        })
    out.sort(key=lambda m: m["mtime"])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start")
    p.add_argument("dir")
    p = sub.add_parser("stop")
    p.add_argument("dir")
    p = sub.add_parser("read")
    p.add_argument("maildir")
    sub.add_parser("free-port")
    p = sub.add_parser("daemon")
    p.add_argument("pidfile")
    p.add_argument("log")
    p.add_argument("hostport")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("kill")
    p.add_argument("pidfile")
    p = sub.add_parser("serve")
    p.add_argument("--maildir", required=True, help="must not exist yet")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "start":
            os.makedirs(args.dir, exist_ok=True)
            port = free_port()
            pid = daemon(os.path.join(args.dir, "sink.pid"), os.path.join(args.dir, "sink.log"),
                         "127.0.0.1:%d" % port,
                         [sys.executable, os.path.abspath(__file__), "serve", "--maildir",
                          os.path.join(args.dir, "Maildir"), "--port", str(port)])
            print(json.dumps({"port": port, "pid": pid, "maildir": os.path.join(args.dir, "Maildir")}))
        elif args.cmd == "stop":
            kill(os.path.join(args.dir, "sink.pid"))
        elif args.cmd == "read":
            print(json.dumps(read(args.maildir)))
        elif args.cmd == "free-port":
            print(free_port())
        elif args.cmd == "daemon":
            argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            print(json.dumps({"pid": daemon(args.pidfile, args.log, args.hostport, argv)}))
        elif args.cmd == "kill":
            kill(args.pidfile)
        else:
            serve(args.maildir, args.host, args.port)
    except (RuntimeError, OSError) as e:
        print("smtp_sink.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
