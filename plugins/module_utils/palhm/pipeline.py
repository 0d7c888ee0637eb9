# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a chain of Execs as ``a | b | c`` without a shell.

Every stage's stderr is read by one thread per pipeline that keeps a bounded
tail (for error messages) and forwards it when the verbosity allows. The last
stage's stdout goes to a file descriptor (straight into the backend), to a pipe
that palhm reads, or to a bounded tail like stderr (routine steps).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass

from . import redact
from .errors import StageError, StartError

TAIL_BYTES = 4096
_PR_SET_PDEATHSIG = 1
_F_SETPIPE_SZ = 1031
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _PRCTL = _LIBC.prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _PRCTL = None

STDOUT_PIPE = "pipe"      # palhm reads the last stage's output (Pipeline.out_fd)
STDOUT_CAPTURE = "capture"  # keep a tail, forward when verbose (routine steps)


def _child_setup(parent_pid):
    """Runs in each child between fork and exec: die with palhm (a `kill -9`
    of palhm must not leave stages writing into a half-made copy), and do not
    inherit signals palhm blocked with the sigmask builtin."""
    def setup():
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:
                os._exit(127)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    return setup


class _Tail:
    """The last TAIL_BYTES of a stream, plus an optional forward target.
    What is forwarded goes out in whole lines with the config's secrets
    hidden (redact.values): a stage that echoes its environment prints no
    password."""

    def __init__(self, forward=None):
        self.buf = deque()
        self.size = 0
        self.total = 0
        self.forward = forward
        self._line = b""

    def _send(self, data):
        try:
            self.forward.write(redact.values(data.decode("utf-8", errors="surrogateescape"))
                               .encode("utf-8", errors="surrogateescape"))
            self.forward.flush()
        except (OSError, ValueError):
            self.forward = None

    def close(self):
        """The stream ended: forward what is left of the last line."""
        if self.forward is not None and self._line:
            self._send(self._line)
        self._line = b""

    def add(self, data):
        self.total += len(data)
        if self.forward is not None:
            pending = self._line + data
            cut = pending.rfind(b"\n") + 1
            if cut == 0 and len(pending) > TAIL_BYTES:
                cut = len(pending)  # a very long line: forwarded in pieces
            self._line = pending[cut:]
            if cut:
                self._send(pending[:cut])
        self.buf.append(data)
        self.size += len(data)
        while self.size - len(self.buf[0]) >= TAIL_BYTES:
            self.size -= len(self.buf.popleft())

    def text(self, limit=TAIL_BYTES):
        data = b"".join(self.buf)[-limit:]
        return data.decode("utf-8", errors="replace")


@dataclass
class StageResult:
    argv: list
    returncode: int
    accepted: bool
    stderr_tail: str

    def as_dict(self):
        """What manifests and results keep of a stage (no secret)."""
        return {"argv": redact.argv(self.argv), "returncode": self.returncode}


def is_sigpipe(rc):
    return rc in (-signal.SIGPIPE, 128 + signal.SIGPIPE)


def _env(exe):
    if not exe.env:
        return None
    env = dict(os.environ)
    env.update(exe.env)
    return env


class Pipeline:
    """``stages[0] | stages[1] | ... > stdout`` where stdout is a file
    descriptor, STDOUT_PIPE or STDOUT_CAPTURE."""

    def __init__(self, stages, label, stdout, rt=None, stdin_pipe=False):
        if not stages:
            raise ValueError("empty pipeline")
        # stdin_pipe: the first stage reads a pipe palhm writes to (in_fd,
        # restores); otherwise it reads /dev/null.
        self.stdin_pipe = stdin_pipe
        self.in_fd = None
        self.stages = list(stages)
        self.label = label
        self.stdout = stdout
        self.rt = rt
        self.procs = []
        self.out_fd = None
        self.stdout_tail = None
        self.stderr_tails = []
        self._reader = None
        self._terminated = False
        self.started = None
        self.duration = None

    def _forward(self, level, stream):
        rt = self.rt
        if rt is None or stream is None or rt.vl < level:
            return None
        return stream

    def start(self):
        parent = os.getpid()
        readers = {}
        if self.stdin_pipe:
            prev_read, self.in_fd = os.pipe2(os.O_CLOEXEC)
            try:
                fcntl.fcntl(self.in_fd, _F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
        else:
            prev_read = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.started = time.monotonic()
        try:
            for i, exe in enumerate(self.stages):
                last = i == len(self.stages) - 1
                if not last or self.stdout in (STDOUT_PIPE, STDOUT_CAPTURE):
                    r, w = os.pipe2(os.O_CLOEXEC)
                    if last and self.stdout == STDOUT_PIPE:
                        try:
                            fcntl.fcntl(r, _F_SETPIPE_SZ, 1 << 20)
                        except OSError:
                            pass
                    out = w
                else:
                    r, out = None, self.stdout
                er, ew = os.pipe2(os.O_CLOEXEC)
                try:
                    # The engine also runs outside Ansible (the palhm command)
                    # and streams: no AnsibleModule.run_command here.
                    proc = subprocess.Popen(  # pylint: disable=ansible-bad-function
                        list(exe.argv), stdin=prev_read, stdout=out, stderr=ew, env=_env(exe),
                        close_fds=True, preexec_fn=_child_setup(parent))
                except OSError as e:
                    for fd in (er, ew) + ((r, out) if r is not None else ()):
                        os.close(fd)
                    self.close_in()
                    self.terminate()
                    raise StartError("%s, stage %d" % (self.label, i + 1), exe.argv, e) from None
                finally:
                    os.close(prev_read)
                    prev_read = None
                os.close(ew)
                self.procs.append(proc)
                tail = _Tail(self._forward(exe.vl_stderr, self.rt.stderr if self.rt else None))
                self.stderr_tails.append(tail)
                readers[er] = tail
                if r is not None:
                    os.close(out)
                    prev_read = r
            if prev_read is not None:
                if self.stdout == STDOUT_PIPE:
                    self.out_fd = prev_read
                else:  # STDOUT_CAPTURE
                    exe = self.stages[-1]
                    self.stdout_tail = _Tail(self._forward(exe.vl_stdout, self.rt.stdout if self.rt else None))
                    readers[prev_read] = self.stdout_tail
                prev_read = None
        finally:
            if prev_read is not None:
                os.close(prev_read)
        self._reader = threading.Thread(target=self._read_outputs, args=(readers,), daemon=True)
        self._reader.start()
        return self

    @staticmethod
    def _read_outputs(readers):
        sel = selectors.DefaultSelector()
        for fd in readers:
            sel.register(fd, selectors.EVENT_READ)
        try:
            while readers:
                for key, _events in sel.select():
                    try:
                        data = os.read(key.fd, 65536)
                    except OSError:
                        data = b""
                    if data:
                        readers[key.fd].add(data)
                    else:
                        readers[key.fd].close()
                        sel.unregister(key.fd)
                        os.close(key.fd)
                        del readers[key.fd]
        finally:
            sel.close()

    def terminate(self, grace=5.0):
        """SIGTERM every stage still running, SIGKILL after `grace` seconds."""
        self._terminated = True
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def wait(self):
        """Wait for every stage; returns [StageResult]."""
        for p in self.procs:
            p.wait()
        if self._reader is not None:
            self._reader.join()
        if self.out_fd is not None:
            os.close(self.out_fd)
            self.out_fd = None
        self.duration = time.monotonic() - self.started
        return [StageResult(list(exe.argv), p.returncode, exe.ec.accepts(p.returncode), t.text())
                for exe, p, t in zip(self.stages, self.procs, self.stderr_tails)]

    def close_in(self):
        """End the first stage's input (stdin_pipe)."""
        if self.in_fd is not None:
            os.close(self.in_fd)
            self.in_fd = None

    def close_out(self):
        if self.out_fd is not None:
            os.close(self.out_fd)
            self.out_fd = None

    def failure(self, results):
        """The StageError to raise for `results`, or None when all stages
        exited with accepted codes. A stage killed by SIGPIPE is blamed only
        when no other stage failed (it died because a later stage stopped
        reading, and that stage is the cause)."""
        failed = [(i, r) for i, r in enumerate(results) if not r.accepted]
        if not failed:
            return None
        real = [(i, r) for i, r in failed if not is_sigpipe(r.returncode)] or failed
        i, r = real[0]
        what = "%s, stage %d of %d" % (self.label, i + 1, len(results))
        err = StageError(what, r.argv, r.returncode, _last_lines(r.stderr_tail))
        err.stage_index = i
        err.others = [(j, o.returncode) for j, o in real[1:]]
        return err


def _last_lines(text, n=5):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-n:])
