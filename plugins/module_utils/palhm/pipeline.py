# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a chain of Execs as ``a | b | c`` without a shell.

Every stage's stderr is read by one thread per pipeline that keeps a bounded
tail (for error messages) and forwards it when the verbosity allows. The last
stage's stdout goes to a file descriptor (restores), to a pipe that palhm
reads (every backup backend: palhm hashes and stores what it reads, so a
stage can neither seek back nor truncate what was stored), or to a bounded
tail like stderr (routine steps).

Each pipeline runs in a process group of its own. Cancel and failure signal
the whole group, grandchildren included (SIGTERM, SIGKILL after a short
grace), and never wait on pipes that a process outside the stages holds
open. A guard process outlives palhm: when palhm dies, even by SIGKILL, it
kills every group still registered, so no orphan keeps running.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from . import redact
from .errors import StageError, StartError

TAIL_BYTES = 4096
CHUNK = 1 << 20  # read size of the last stage's output (the pipe holds 1 MiB)
_PR_SET_PDEATHSIG = 1
_F_SETPIPE_SZ = 1031
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _PRCTL = _LIBC.prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _PRCTL = None

STDOUT_PIPE = "pipe"      # palhm reads the last stage's output (Pipeline.out_fd)
STDOUT_CAPTURE = "capture"  # keep a tail, forward when verbose (routine steps)


def _child_setup(parent_pid, pgid):
    """Runs in each child between fork and exec: join the pipeline's process
    group (`pgid` 0: the first stage starts it), die with palhm (a `kill -9`
    of palhm must not leave stages running), and do not inherit signals palhm
    blocked with the sigmask builtin."""
    def setup():
        try:
            os.setpgid(0, pgid)
        except OSError:
            # The group's leader is gone already (reaped): a group of our own;
            # Pipeline.start() records it.
            os.setpgid(0, 0)
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:
                os._exit(127)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    return setup


# The guard: reads "+PGID" / "-PGID" lines; when palhm's end of the pipe
# closes (palhm exited or was killed), SIGKILLs every group still listed.
# It ignores the terminal's signals: it must outlive palhm, and it exits by
# itself at once when palhm does.
_GUARD_CODE = """
import os, signal
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, signal.SIG_IGN)
groups, pending = set(), b""
while True:
    try:
        data = os.read(0, 4096)
    except InterruptedError:
        continue
    except OSError:
        break
    if not data:
        break
    pending += data
    lines = pending.split(b"\\n")
    pending = lines.pop()
    for line in lines:
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
"""


class _Guard:
    """The one guard process of this palhm process (started on first use)."""

    lock = threading.Lock()
    fd = None
    proc = None
    pid = None  # palhm's pid when started (a forked child needs its own)

    @classmethod
    def _send(cls, line):
        with cls.lock:
            if cls.fd is None or cls.pid != os.getpid():
                cls.fd = None
                if line.startswith("-"):
                    return
                cls._start()
            if cls.fd is None:
                return
            try:
                os.write(cls.fd, line.encode() + b"\n")
            except OSError:
                os.close(cls.fd)
                cls.fd = None

    @classmethod
    def _start(cls):
        try:
            r, w = os.pipe2(os.O_CLOEXEC)
        except OSError:
            return
        try:
            cls.proc = subprocess.Popen(  # pylint: disable=ansible-bad-function
                [sys.executable, "-S", "-E", "-c", _GUARD_CODE], stdin=r, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, close_fds=True)
        except (OSError, ValueError, subprocess.SubprocessError):
            os.close(w)
            return
        finally:
            os.close(r)
        cls.fd, cls.pid = w, os.getpid()

    @classmethod
    def register(cls, pgid):
        cls._send("+%d" % pgid)

    @classmethod
    def unregister(cls, pgid):
        cls._send("-%d" % pgid)


def _group_alive(pgid):
    """Whether process group `pgid` has a member that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    want = str(pgid).encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == want and fields[0] != b"Z":
            return True
    return False


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


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
    descriptor, STDOUT_PIPE or STDOUT_CAPTURE, in a process group of its own."""

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
        self._stop = threading.Event()  # terminate(): stop reading pipes others may hold open
        self._term_lock = threading.Lock()
        self.pgid = None
        self.groups = []     # process groups of the stages (one, unless a leader was gone early)
        self.culprit = None  # index of the stage whose failure stopped the pipeline
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
                        close_fds=True, preexec_fn=_child_setup(parent, self.pgid or 0))
                except (OSError, subprocess.SubprocessError) as e:
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
                self._note_group(proc)
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
        self._reader = threading.Thread(target=self._read_outputs, args=(readers, self._stop), daemon=True)
        self._reader.start()
        return self

    def _note_group(self, proc):
        """Record the process group `proc` is in (its own when it started it)."""
        if self.pgid is None:
            self.pgid = proc.pid
        try:
            pgid = os.getpgid(proc.pid)
        except OSError:
            pgid = self.pgid if self.groups else proc.pid
        if pgid not in self.groups and pgid != os.getpgrp():
            self.groups.append(pgid)
            _Guard.register(pgid)

    @staticmethod
    def _read_outputs(readers, stop):
        sel = selectors.DefaultSelector()
        for fd in readers:
            sel.register(fd, selectors.EVENT_READ)
        stopped_at = None
        try:
            while readers:
                events = sel.select(0.1)
                if stop.is_set():
                    # terminate() ran: what is still open is held by a process
                    # outside the stages' group; take what comes at once, then go.
                    stopped_at = stopped_at or time.monotonic()
                    if not events or time.monotonic() - stopped_at > 1.0:
                        break
                for key, _events in events:
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
            for fd, tail in readers.items():
                tail.close()
                os.close(fd)
            sel.close()

    # -- the last stage's output (STDOUT_PIPE) ----------------------------
    def pump(self, feed, chunk=CHUNK):
        """Read the last stage's output until its end and hand every chunk to
        `feed` (a memoryview, valid during the call only). Stops early when a
        stage fails (the whole pipeline is stopped at once) or terminate() is
        called. Exceptions from `feed` propagate; the caller terminates."""
        buf = bytearray(chunk)
        view = memoryview(buf)
        fd = self.out_fd
        os.set_blocking(fd, False)  # poll between reads: a stop or a failed stage is seen at once
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        since_check = 0
        while not self._stop.is_set():
            try:
                n = os.readv(fd, [buf])
            except BlockingIOError:
                self.stop_on_failure()
                since_check = 0
                poller.poll(100)
                continue
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if n == 0:
                return
            feed(view[:n])
            since_check += 1
            if since_check >= 64:
                since_check = 0
                self.stop_on_failure()

    def stop_on_failure(self):
        """If a stage exited with a code its `ec` does not accept (a SIGPIPE
        death excepted: a later stage stopped reading and will say why), stop
        the whole pipeline now. Returns True when it did."""
        if self._terminated:
            return True
        for i, (exe, p) in enumerate(zip(self.stages, self.procs)):
            rc = p.poll()
            if rc is not None and not exe.ec.accepts(rc) and not is_sigpipe(rc):
                self.culprit = i
                self.terminate(grace=2.0)
                return True
        return False

    # -- stopping ---------------------------------------------------------
    def terminate(self, grace=5.0):
        """SIGTERM the whole pipeline (every process of its group, children of
        stages too), SIGKILL what is left after `grace` seconds. Pipes are no
        longer waited on once the group is gone."""
        with self._term_lock:
            self._terminated = True
            for g in self.groups:
                _killpg(g, signal.SIGTERM)
            for p in self.procs:
                if p.poll() is None:
                    try:
                        p.send_signal(signal.SIGTERM)
                    except OSError:
                        pass
            deadline = time.monotonic() + grace
            pause = 0.005
            while time.monotonic() < deadline:
                if all(p.poll() is not None for p in self.procs) and \
                        not any(_group_alive(g) for g in self.groups):
                    break
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            for g in self.groups:
                _killpg(g, signal.SIGKILL)
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            self._stop.set()

    def _release_groups(self):
        for g in self.groups:
            _Guard.unregister(g)
        self.groups = []

    def wait(self):
        """Wait for every stage; returns [StageResult]. A stage that fails
        while others still run stops them all at once."""
        for p in self.procs:
            while True:
                try:
                    p.wait(0.05)
                    break
                except subprocess.TimeoutExpired:
                    self.stop_on_failure()
        if self._reader is not None:
            self._reader.join()
        # The stages are done (what they left running is theirs, as after a
        # shell pipeline): the guard need not watch the group any more.
        self._release_groups()
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
        exited with accepted codes. The stage whose failure stopped the
        pipeline is blamed (the others were killed by palhm); a stage killed
        by SIGPIPE is blamed only when no other stage failed (it died because
        a later stage stopped reading, and that stage is the cause)."""
        failed = [(i, r) for i, r in enumerate(results) if not r.accepted]
        if not failed:
            return None
        real = [(i, r) for i, r in failed if not is_sigpipe(r.returncode)] or failed
        if self.culprit is not None:
            real = [(i, r) for i, r in real if i == self.culprit] + \
                [(i, r) for i, r in real if i != self.culprit]
        i, r = real[0]
        what = "%s, stage %d of %d" % (self.label, i + 1, len(results))
        err = StageError(what, r.argv, r.returncode, _last_lines(r.stderr_tail))
        err.stage_index = i
        err.others = [(j, o.returncode) for j, o in real[1:]]
        return err


def _last_lines(text, n=5):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-n:])
