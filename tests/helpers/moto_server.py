# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start and stop moto's standalone S3/SNS server on 127.0.0.1 for tests.

    python3 tests/helpers/moto_server.py start [--dir DIR]
        start on a free port, wait until it answers, print the endpoint URL
        (pid, URL and log in DIR, default /tmp/palhm-moto)
    python3 tests/helpers/moto_server.py stop [--dir DIR]
        stop the server started with that DIR (by its pid)
    python3 tests/helpers/moto_server.py url [--dir DIR]
        print the endpoint of the running server

Importable: ``with MotoServer() as srv: srv.url``. Fails loudly (exit 1) when
the server does not answer within 30 s. moto_server comes from the PyPI
package ``moto[server]`` (tests/requirements-test.txt).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

DEFAULT_DIR = os.path.join(tempfile.gettempdir(), "palhm-moto")
READY_TIMEOUT = 30.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moto_command():
    exe = shutil.which("moto_server")
    if exe is None:
        # Next to the running interpreter (a venv's bin/) even if not on PATH.
        cand = os.path.join(os.path.dirname(sys.executable), "moto_server")
        if os.access(cand, os.X_OK):
            exe = cand
    if exe is None:
        raise RuntimeError("moto_server not found: pip install 'moto[server]'")
    return [exe]


def _answers(url):
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=1) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except OSError:
        return False


class MotoServer:
    """A moto_server process on 127.0.0.1:PORT, stopped on exit."""

    def __init__(self, workdir=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="palhm-moto-")
        self.proc = None
        self.port = None
        self.url = None

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        log = open(os.path.join(self.workdir, "moto.log"), "ab")
        env = dict(os.environ)
        env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        self.proc = subprocess.Popen(_moto_command() + ["-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited with %s; see %s/moto.log"
                                   % (self.proc.returncode, self.workdir))
            if _answers(self.url):
                with open(os.path.join(self.workdir, "moto.pid"), "w") as f:
                    f.write("%d\n" % self.proc.pid)
                with open(os.path.join(self.workdir, "moto.url"), "w") as f:
                    f.write(self.url + "\n")
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not answer on %s within %.0f s" % (self.url, READY_TIMEOUT))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        for name in ("moto.pid", "moto.url"):
            try:
                os.unlink(os.path.join(self.workdir, name))
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _cmd_start(workdir):
    pidfile = os.path.join(workdir, "moto.pid")
    if os.path.exists(pidfile):
        with open(pidfile) as f:
            pid = int(f.read().strip() or 0)
        url_file = os.path.join(workdir, "moto.url")
        if pid and _alive(pid) and os.path.exists(url_file):
            with open(url_file) as f:
                url = f.read().strip()
            if _answers(url):
                print(url)
                return 0
    srv = MotoServer(workdir)
    srv.start()
    # Detach: the process outlives this command; `stop` ends it by its pid.
    srv.proc = None
    print(srv.url)
    return 0


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _cmd_stop(workdir):
    pidfile = os.path.join(workdir, "moto.pid")
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for dummy in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    for name in ("moto.pid", "moto.url"):
        try:
            os.unlink(os.path.join(workdir, name))
        except FileNotFoundError:
            pass
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("action", choices=("start", "stop", "url"))
    ap.add_argument("--dir", default=DEFAULT_DIR, help="state dir (pid, url, log); default %(default)s")
    args = ap.parse_args(argv)
    try:
        if args.action == "start":
            return _cmd_start(args.dir)
        if args.action == "stop":
            return _cmd_stop(args.dir)
        with open(os.path.join(args.dir, "moto.url")) as f:
            print(f.read().strip())
        return 0
    except (RuntimeError, OSError) as e:
        print("moto_server.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
