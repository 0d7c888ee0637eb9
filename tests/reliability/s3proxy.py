# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fault-injecting HTTP proxy for S3 on 127.0.0.1.

Sits between palhm and an S3 server (moto, Ceph RGW). Every request is
read whole, then one fault may be drawn at the configured rates:

  500          answer 500 InternalError without forwarding
  503          answer 503 ServiceUnavailable without forwarding
  slowdown     answer 503 SlowDown without forwarding
  reset        reset the connection (RST) without forwarding
  stall        wait STALL seconds, then forward
  lost-reply   forward (the server acts on it), then reset: the client
               never learns that its request succeeded
  denied       answer 403 AccessDenied (not retryable: the run must roll back)
  denied-part  the same, drawn only for UploadPart requests (a part of a
               multipart upload refused: the object must not complete without it)

    python3 s3proxy.py UPSTREAM_URL [--rate 500=0.03,reset=0.02,...] [--port P]

Importable: FaultProxy(upstream, rates, seed).start() -> .url, .counts, .stop().
"""

from __future__ import annotations

import argparse
import http.client
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("500", "503", "slowdown", "reset", "stall", "lost-reply", "denied", "denied-part")
_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "denied": (403, "AccessDenied", "Access Denied"),
    "denied-part": (403, "AccessDenied", "Access Denied"),
}
HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect"}


class FaultPlan:
    def __init__(self, rates, seed=None, stall=(0.3, 2.0)):
        for k in rates:
            if k not in FAULTS:
                raise ValueError("unknown fault %r (known: %s)" % (k, ", ".join(FAULTS)))
        self.rates = dict(rates)
        self.rng = random.Random(seed)
        self.stall = stall
        self.lock = threading.Lock()
        self.enabled = True
        self.counts = {"requests": 0}

    def draw(self, method="GET", path="/"):
        with self.lock:
            self.counts["requests"] += 1
            if not self.enabled:
                return None, 0
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            if method == "PUT" and "partNumber" in query and "uploadId" in query:
                self.counts["upload_part"] = self.counts.get("upload_part", 0) + 1
                if self.rng.random() < self.rates.get("denied-part", 0.0):
                    self.counts["denied-part"] = self.counts.get("denied-part", 0) + 1
                    return "denied-part", 0
            x = self.rng.random()
            for name in FAULTS:
                if name == "denied-part":
                    continue
                x -= self.rates.get(name, 0.0)
                if x < 0:
                    self.counts[name] = self.counts.get(name, 0) + 1
                    return name, self.rng.uniform(*self.stall)
            return None, 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "palhm-fault-proxy"

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reset(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _send(self, status, headers, data):
        self.send_response(status)
        length = str(len(data))
        for k, v in headers:
            if k.lower() == "content-length" and self.command == "HEAD":
                # A HEAD reply has no body: its Content-Length is the object's
                # size, which palhm's commit check reads (0 made it refuse).
                length = v
            elif k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def _any(self):
        body = self._body()
        fault, stall = self.server.plan.draw(self.command, self.path)
        if fault == "reset":
            return self._reset()
        if fault in _ERRORS:
            status, code, msg = _ERRORS[fault]
            xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                   '<RequestId>fault-proxy</RequestId></Error>' % (code, msg)).encode()
            return self._send(status, [("Content-Type", "application/xml")], xml)
        if fault == "stall":
            time.sleep(stall)
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, rheaders = resp.status, resp.getheaders()
        finally:
            conn.close()
        if fault == "lost-reply":
            return self._reset()
        self._send(status, rheaders, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


class FaultProxy:
    def __init__(self, upstream, rates, seed=None, port=0, stall=(0.3, 2.0)):
        self.plan = FaultPlan(rates, seed, stall)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.server.daemon_threads = True
        self.server.plan = self.plan
        self.server.upstream = urllib.parse.urlsplit(upstream)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = None

    @property
    def counts(self):
        return dict(self.plan.counts)

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("upstream")
    ap.add_argument("--rate", default="500=0.02,503=0.02,slowdown=0.02,reset=0.02,stall=0.02,lost-reply=0.01")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int)
    args = ap.parse_args(argv)
    rates = {k: float(v) for k, v in (kv.split("=") for kv in args.rate.split(",") if kv)}
    proxy = FaultProxy(args.upstream, rates, args.seed, args.port)
    print(proxy.url, flush=True)
    try:
        proxy.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
