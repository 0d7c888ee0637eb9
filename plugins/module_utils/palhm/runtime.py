# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every task type shares: the Task base class, the parse context, the
runtime handed to a running task, and the per-host lock."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import tempfile
import threading
import time
from contextlib import contextmanager

from . import fsutil, redact
from .errors import CancelledError, DirectoryError, LockHeldError

# Verbosity levels (``vl`` and the ``vl-stderr``/``vl-stdout`` of Execs).
VL_CRITICAL, VL_ERROR, VL_WARNING, VL_INFO, VL_DEBUG = 0, 1, 2, 3, 4


class ParseContext:
    """What a task parser may look up: the Execs, every task id, the modules."""

    def __init__(self, execs, task_ids, modules, warnings=None):
        self.execs = execs
        self.task_ids = task_ids
        self.modules = modules
        # Config warnings (accepted but ignored keys); shown by the CLI on
        # stderr and by the modules with module.warn.
        self.warnings = [] if warnings is None else warnings


class Task:
    """Base class of the task types. Subclasses set `type` and implement
    describe(), plan() and run()."""

    type = ""

    def __init__(self, task_id, where):
        self.id = task_id
        self.where = where
        self.pings = None  # monitor.Pings, set by tasks.parse_all
        self.max_age = None  # seconds (the max-age key), set by tasks.parse_all

    def describe(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def plan(self, rt):  # pragma: no cover - abstract
        """What run() would do, computed without running anything."""
        raise NotImplementedError

    def run(self, rt):  # pragma: no cover - abstract
        raise NotImplementedError

    def depends_on(self):
        """Ids of tasks this one runs (routine task pointers)."""
        return []


def run_dir(create=True):
    """Where locks live: $PALHM_RUN_DIR, /run/palhm as root, else a per-user
    directory under $XDG_RUNTIME_DIR or, without it (cron), under TMPDIR.
    It is made 0700 and refused when another user could write in it (see
    fsutil). With `create` false (check mode) a missing one is not made;
    -> None then."""
    path = os.environ.get("PALHM_RUN_DIR")
    follow = True
    if not path:
        if os.geteuid() == 0 and os.path.isdir("/run"):
            path = "/run/palhm"
        else:
            base = os.environ.get("XDG_RUNTIME_DIR")
            if not base:
                # A shared, world-writable directory: the name is guessable,
                # so what is there must be ours and no symlink.
                base = tempfile.gettempdir()
                follow = False
            path = os.path.join(base, "palhm-%d" % os.geteuid())
    if not fsutil.private_dir(path, "lock directory", create=create, follow=follow):
        return None
    return path


def state_dir():
    """Persistent state (boot records): $PALHM_STATE_DIR or /var/lib/palhm."""
    return os.environ.get("PALHM_STATE_DIR") or "/var/lib/palhm"


def safe_name(name):
    """`name` as a file name: itself when it is short and plain, else a
    readable part and a hash (ids may hold "/", ".." or anything)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    if len(safe) > 100 or safe != name:
        safe = safe[:60] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return safe


def _lock_name(name):
    return safe_name(name) + ".lock"


def _lock_path(name):
    return os.path.join(run_dir(), _lock_name(name))


def _held_message(fd, what, path):
    holder = ""
    try:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        pass
    return ("%s is already running%s (lock %s); not starting a second run"
            % (what, " as pid " + holder if holder else "", path))


def lock_is_held(name, what):
    """The LockHeldError message when lock `name` is held now, else None
    (check mode: what a real run would meet, without waiting or keeping it,
    and without creating the lock directory or file)."""
    directory = run_dir(create=False)
    if directory is None:
        return None
    path = os.path.join(directory, _lock_name(name))
    try:
        fd = fsutil.open_private_file(path, "lock file", os.O_RDONLY)
    except DirectoryError:
        if not os.path.lexists(path):
            return None
        raise
    try:
        return None if fsutil.try_flock(fd) else _held_message(fd, what, path)
    finally:
        os.close(fd)


@contextmanager
def host_lock(name, what):
    """Hold an exclusive per-host lock `name`; fail at once if it is held."""
    path = _lock_path(name)
    fd = fsutil.open_private_file(path, "lock file", os.O_RDWR | os.O_CREAT)
    try:
        if not fsutil.try_flock(fd):
            raise LockHeldError(_held_message(fd, what, path))
        os.ftruncate(fd, 0)
        os.pwrite(fd, ("%d\n" % os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)


class Runtime:
    """The context of one palhm invocation: config, verbosity, where stage
    output goes, cancellation, and the messages logged so far."""

    def __init__(self, config, vl=None, stdout=None, stderr=None, check_mode=False):
        self.config = config
        self.vl = config.vl if vl is None else vl
        # Binary streams that stage output is forwarded to (the CLI), or None
        # (modules): output is then only kept as bounded tails.
        self.stdout = stdout
        self.stderr = stderr
        self.check_mode = check_mode
        self.cancelled = threading.Event()
        self.cancel_reason = None
        self.messages = []
        self._running = []  # task ids, innermost last, for task pointers
        self.hostname = socket.gethostname()

    def log(self, level, msg):
        msg = redact.text(msg)
        self.messages.append((level, msg))
        if self.stderr is not None and level <= self.vl:
            try:
                self.stderr.write(("palhm: %s\n" % msg).encode())
                self.stderr.flush()
            except (OSError, ValueError):
                pass

    def cancel(self, reason):
        self.cancel_reason = reason
        self.cancelled.set()

    def check_cancel(self):
        if self.cancelled.is_set():
            raise CancelledError("cancelled by %s" % (self.cancel_reason or "request"))

    def run_task(self, task_id):
        """Run a task by id (also used by routine task pointers)."""
        from . import history, monitor
        task = self.config.task(task_id)
        self.check_cancel()
        self._running.append(task_id)
        try:
            with host_lock("task-" + task_id, "task %r" % task_id):
                started = time.time()
                history.started(self, task, started)
                monitor.task_started(self, task)
                try:
                    result = task.run(self)
                except BaseException as e:
                    history.record(self, task, None, e, started, time.time())
                    monitor.task_finished(self, task, None, e, started)
                    raise
                history.record(self, task, result, None, started, time.time())
                monitor.task_finished(self, task, result, None, started)
                return result
        finally:
            self._running.pop()

    def plan_task(self, task_id):
        return self.config.task(task_id).plan(self)


@contextmanager
def cancel_on_signals(rt, signums=(signal.SIGTERM, signal.SIGINT, signal.SIGHUP), restore=True):
    """Turn SIGTERM/SIGINT/SIGHUP into a cancellation of `rt` (main thread only).
    Signals blocked with the sigmask builtin stay blocked. The CLI passes
    restore=False: a signal between a committed copy and the process's exit
    must not kill it (and report a failure) after the work is done, so the
    signals are ignored on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, frame):
        rt.cancel(signal.Signals(signum).name)

    for s in signums:
        previous[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            # restore=False (the CLI, about to exit): ignore the signals from
            # here on. Python's finalisation puts SIG_DFL back for handlers
            # it installed, so a signal in that window killed a process
            # whose copy was already committed (exit -2, no message); an
            # ignored signal is left alone.
            signal.signal(s, h if restore else signal.SIG_IGN)
