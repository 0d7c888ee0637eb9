# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who is making an in-progress copy, and whether that run is dead: the one
rule both backends use before removing a leftover.

The in-progress mark (aws-s3: ``ROOT/PREFIX/.palhm-in-progress``; localfs:
``ROOT/PREFIX.palhm-partial/.palhm-partial-owner.json``) is a small JSON
document written before the first object::

    {"format": "palhm-owner/1", "task", "host", "machine_id", "boot_id",
     "pid", "start" (the process's start, clock ticks after boot: field 22 of
     /proc/PID/stat), "time" (Unix time it was written), "deleting"}

A leftover is removed by cleanup only when its mark names this task (another
task's leftovers are that task's to clean) and its run is dead:

- made on this host (same host name and, when both marks know it, the same
  machine id): the boot id differs (the host rebooted since), or no process
  has that pid, or the process with that pid started at another time (the
  pid was reused);
- made on another host, whose processes cannot be seen from here: only once
  the mark is older than ``stale-age`` (backend-param, default 48h; a
  backup that runs longer on a root shared by hosts needs a larger one);
- a mark that names no host, or cannot be read (palhm before 1.1 wrote
  ``{}`` or no mark on localfs): like another host's, by the time the mark
  (or the partial directory) was last written.

Marks or manifests of other hosts in a root tell that the root is shared by
hosts: ``foreign_hosts`` names them, and runs warn.
"""

from __future__ import annotations

import json
import os
import socket
import time

from .. import schema

FORMAT = "palhm-owner/1"
DEFAULT_STALE_AGE = 48 * 3600
MAX_MARK_SIZE = 64 << 10

_IDENTITY = {}


def _read_first_line(path):
    try:
        with open(path, "r", encoding="ascii", errors="replace") as f:
            return f.readline(200).strip() or None
    except OSError:
        return None


def process_start(pid):
    """The start time of process `pid` (clock ticks after boot), or None
    when no such process is visible."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        return int(data.rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def identity():
    """This process: host, machine id, boot id, pid, start (cached per pid)."""
    pid = os.getpid()
    if _IDENTITY.get("pid") != pid:
        _IDENTITY.clear()
        _IDENTITY.update({
            "host": socket.gethostname(),
            "machine_id": _read_first_line("/etc/machine-id") or _read_first_line("/var/lib/dbus/machine-id"),
            "boot_id": _read_first_line("/proc/sys/kernel/random/boot_id"),
            "pid": pid, "start": process_start(pid)})
    return dict(_IDENTITY)


def new_mark(task_id, deleting=False):
    mark = {"format": FORMAT, "task": task_id, "time": round(time.time(), 3), "deleting": bool(deleting)}
    mark.update(identity())
    return mark


def encode(mark):
    return (json.dumps(mark, sort_keys=True) + "\n").encode("utf-8")


def parse(data):
    """A mark's bytes -> dict, or None when it is not a readable mark."""
    if data is None or len(data) > MAX_MARK_SIZE:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _str(mark, key):
    value = (mark or {}).get(key)
    return value if isinstance(value, str) and value else None


def _int(mark, key):
    value = (mark or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mark_task(mark):
    """The task a mark names, or None."""
    return _str(mark, "task")


def mark_host(mark):
    return _str(mark, "host")


def is_this_host(mark):
    """True when the mark was written on this host; None when it names no host."""
    host = mark_host(mark)
    if host is None:
        return None
    me = identity()
    if host != me["host"]:
        return False
    theirs = _str(mark, "machine_id")
    return theirs is None or me["machine_id"] is None or theirs == me["machine_id"]


def mark_time(mark, fallback=None):
    """When the run began (the mark's ``time``), else `fallback` (when the
    mark or its directory was last written)."""
    value = (mark or {}).get("time")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return fallback


def judge(mark, fallback_time, stale_age, now=None):
    """(dead, why) of the run that wrote `mark` (None: no readable mark).
    `fallback_time`: Unix time the mark (or the partial directory) was last
    written, for marks without a time."""
    now = time.time() if now is None else now
    here = is_this_host(mark) if mark is not None else None
    if here:
        me = identity()
        boot = _str(mark, "boot_id")
        pid = _int(mark, "pid")
        if boot is not None and me["boot_id"] is not None and boot != me["boot_id"]:
            return True, "made before this host rebooted"
        if pid is None:
            pass  # judged by age below
        elif pid == me["pid"]:
            return False, "made by this process"
        else:
            start = process_start(pid)
            if start is None:
                return True, "its process (pid %d) is gone" % pid
            theirs = _int(mark, "start")
            if theirs is not None and theirs != start:
                return True, "its process (pid %d) is gone (the pid now runs another program)" % pid
            return False, "its process (pid %d) is still running on this host" % pid
    began = mark_time(mark, fallback_time)
    who = "host %s" % mark_host(mark) if here is False else "an unknown host (no readable in-progress mark)"
    if began is None:
        return False, "made by %s at an unknown time" % who
    age = now - began
    if age > stale_age:
        return True, "made by %s %s ago, more than stale-age %s" % (who, _age(age), _age(stale_age))
    return False, "made by %s %s ago, less than stale-age %s" % (who, _age(max(0, age)), _age(stale_age))


def _age(seconds):
    seconds = int(seconds)
    if seconds >= 86400 and seconds % 3600 == 0:
        return "%dh" % (seconds // 3600)
    if seconds >= 3600:
        return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def parse_stale_age(raw, path):
    """backend-param ``stale-age``: a duration (default 48h), at least 1 hour."""
    from .base import parse_duration  # pylint: disable=import-outside-toplevel
    if "stale-age" not in raw:
        return DEFAULT_STALE_AGE
    where = schema.join(path, "stale-age")
    seconds = parse_duration(raw["stale-age"], where)
    if seconds < 3600:
        from ..errors import ConfigError  # pylint: disable=import-outside-toplevel
        raise ConfigError(where, "must be at least 1h (a live run on another host must never look dead), got %s"
                          % schema.show(raw["stale-age"]))
    return seconds


def leftover_verdict(copy, stale_age, now=None):
    """(dead, why) of an incomplete Copy of either backend (extra: "mark",
    "mtime", "deleting"). A copy being deleted (rotation already chose it,
    or a ``deleting`` mark) is dead whoever deletes it: finishing a removal
    loses nothing."""
    mark = copy.extra.get("mark")
    if copy.extra.get("deleting") or (mark or {}).get("deleting") is True:
        return True, "it was being removed"
    return judge(mark, copy.extra.get("mtime"), stale_age, now)


def foreign_hosts(copies):
    """Host names other than this one that made copies, or hold in-progress
    marks, among `copies` (Copy.extra "host", "mark_host")."""
    me = identity()["host"]
    found = set()
    for c in copies:
        for key in ("host", "mark_host"):
            host = c.extra.get(key)
            if isinstance(host, str) and host and host != me:
                found.add(host)
    return sorted(found)
