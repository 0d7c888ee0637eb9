#!/usr/bin/env python
"""Runs ON a fleet host (ansible.builtin.script): checks that backup task TASK
has at least N complete copies and, for a localfs ROOT, that the newest one's
manifest names this host. With --cron, also checks that cron started
`palhm run TASK`; with --verify, that `palhm verify TASK` passes."""

import argparse
import json
import os
import socket
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="backup")
    ap.add_argument("--root", default="/var/backups/palhm", help="localfs root; empty: not localfs")
    ap.add_argument("--min-count", type=int, default=1)
    ap.add_argument("--cron", action="store_true")
    ap.add_argument("--verify", action="store_true")
    args = ap.parse_args()
    host = socket.gethostname()
    proc = subprocess.run(["/usr/local/bin/palhm", "list", args.task, "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if proc.returncode != 0:
        print("FAIL %s: palhm list exited %d: %s" % (host, proc.returncode, proc.stderr.strip()))
        return 1
    copies = json.loads(proc.stdout)
    complete = [c for c in copies if c.get("state") == "complete"]
    if len(complete) < args.min_count:
        print("FAIL %s: %d complete copies (want >= %d): %s" % (host, len(complete), args.min_count, copies))
        return 1
    newest = complete[-1]
    manifest = {"hostname": "(not read)"}
    if args.root:
        path = os.path.join(args.root, newest["prefix"], ".palhm-manifest.json")
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("hostname") != host:
            print("FAIL %s: manifest %s names host %r" % (host, path, manifest.get("hostname")))
            return 1
    if args.verify:
        proc = subprocess.run(["/usr/local/bin/palhm", "verify", args.task],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if proc.returncode != 0:
            print("FAIL %s: palhm verify %s exited %d: %s" % (host, args.task, proc.returncode, proc.stdout.strip()))
            return 1
    if args.cron:
        log = subprocess.run(["journalctl", "-q", "--no-pager", "-u", "cron"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
        if ("palhm -q run %s" % args.task) not in log:
            print("FAIL %s: cron never ran palhm run %s" % (host, args.task))
            return 1
    print("OK %s: %d complete copies, newest %s, manifest hostname %s"
          % (host, len(complete), newest["prefix"], manifest["hostname"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
