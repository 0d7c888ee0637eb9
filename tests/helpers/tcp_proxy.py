# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A TCP proxy on 127.0.0.1 in front of an HTTP server (moto), for the S3
fault stories of the functional tests. It passes bytes through unchanged
until told otherwise:

    proxy = TcpProxy("http://127.0.0.1:PORT").start()
    proxy.url                   # the endpoint palhm is given
    proxy.drop_reply_of(b"?uploads ", count=1)
        # the next request whose request line holds these bytes reaches the
        # server, which carries it out, but its reply is replaced by a TCP
        # reset: the client never learns that it succeeded
    proxy.stall()
        # the store stops: open connections are no longer read nor answered,
        # new ones are accepted and never read (small receive buffers, so a
        # client sending a body blocks in send within ~100 KiB)
    proxy.stop()

It parses nothing but request lines (requests on one connection are
sequential: botocore never pipelines). Not a mock: moto behind it is a real
S3 server; only the network in between misbehaves.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import urllib.parse

RCVBUF = 64 * 1024


class TcpProxy:
    def __init__(self, upstream):
        up = urllib.parse.urlsplit(upstream)
        self.upstream = (up.hostname, up.port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Set before listen(): accepted sockets inherit it, and a fixed
        # buffer turns off autotuning, so a stalled peer fills up quickly.
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.stalled = threading.Event()
        self.stopped = threading.Event()
        self.drops = []          # [pattern, remaining count]
        self.counts = {"connections": 0, "requests": 0, "dropped": 0, "stalled_connections": 0}
        self.requests = []       # request lines seen, in order
        self.socks = []
        self.thread = None

    # -- control ---------------------------------------------------------
    def start(self):
        self.thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self.thread.start()
        return self

    def drop_reply_of(self, pattern, count=1):
        with self.lock:
            self.drops.append([pattern, count])

    def stall(self):
        self.stalled.set()

    def stop(self):
        self.stopped.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.close()
            except OSError:
                pass

    # -- plumbing --------------------------------------------------------
    def _accept_loop(self):
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                client, _addr = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.counts["connections"] += 1
                self.socks.append(client)
            if self.stalled.is_set():
                with self.lock:
                    self.counts["stalled_connections"] += 1
                continue  # accepted, never read, never answered
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks.append(server)
            state = {"drop_next_reply": False}
            threading.Thread(target=self._pump_requests, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._pump_replies, args=(server, client, state), daemon=True).start()

    def _wait_while_stalled(self):
        while not self.stopped.is_set():
            time.sleep(0.1)

    def _recv(self, sock):
        try:
            sock.settimeout(0.2)
        except OSError:  # closed by the other pump
            return b""
        while not self.stopped.is_set():
            if self.stalled.is_set():
                self._wait_while_stalled()
                return b""
            try:
                return sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return b""
        return b""

    def _note_request_lines(self, data, state):
        for line in data.split(b"\r\n"):
            head = line.split(b" ", 1)[0]
            if head not in (b"GET", b"PUT", b"POST", b"DELETE", b"HEAD") or not line.endswith(b"HTTP/1.1"):
                continue
            with self.lock:
                self.counts["requests"] += 1
                self.requests.append(line.decode("latin-1"))
                for drop in self.drops:
                    if drop[1] > 0 and drop[0] in line:
                        drop[1] -= 1
                        state["drop_next_reply"] = True
                        break

    def _pump_requests(self, client, server, state):
        while True:
            data = self._recv(client)
            if not data:
                break
            self._note_request_lines(data, state)
            try:
                server.sendall(data)
            except OSError:
                break
        self._close(server)

    def _pump_replies(self, server, client, state):
        while True:
            data = self._recv(server)
            if not data:
                break
            if state["drop_next_reply"]:
                # The server did the work; the client sees a reset instead.
                with self.lock:
                    self.counts["dropped"] += 1
                self._reset(client)
                self._close(server)
                return
            try:
                client.sendall(data)
            except OSError:
                break
        self._close(client)

    @staticmethod
    def _reset(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        TcpProxy._close(sock)

    @staticmethod
    def _close(sock):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
