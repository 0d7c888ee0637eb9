# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only views of stored copies: list, verify, restore."""

from __future__ import annotations

import hashlib

from . import schema
from .backends.base import COMPLETE, CORRUPT
from .errors import TaskFailed, UsageError, VerifyError

CHUNK = 1 << 20


def backup_task(cfg, task_id):
    task = cfg.task(task_id)
    if task.type != "backup":
        raise UsageError("task %s is a %s task, not a backup task" % (schema.show(task_id), task.type))
    return task


def copies_of(cfg, task_id):
    task = backup_task(cfg, task_id)
    backend = task.make_backend()
    return task, backend, (backend.list_copies() if backend.stores else [])


def list_copies(cfg, task_id):
    """Copies of a backup task, oldest first, as dicts."""
    copies = copies_of(cfg, task_id)[2]
    return [c.as_dict() for c in copies]


def listing(cfg, task_id, hostname=None):
    """(copies of list_copies, warnings about them: copies dated in the
    future, a root shared with other hosts)."""
    from .backup import shared_root_warnings  # pylint: disable=import-outside-toplevel
    import socket  # pylint: disable=import-outside-toplevel
    backend, copies = copies_of(cfg, task_id)[1:]
    dicts = [c.as_dict() for c in copies]
    return dicts, list_warnings(dicts) + shared_root_warnings(backend, hostname or socket.gethostname())


def list_warnings(copies):
    """Warnings about listed copies (dicts of list_copies): copies dated in
    the future."""
    return ["copy %s is dated in the future (the clock was ahead when it was made?): it sorts as the newest "
            "copy and rotation keeps it until then" % c["prefix"]
            for c in copies if c.get("future") and c["state"] in (COMPLETE, "legacy")]


def pick_complete(cfg, task_id, prefix=None):
    task, backend, copies = copies_of(cfg, task_id)
    if not backend.stores:
        raise UsageError("task %s uses the null backend: nothing is stored" % schema.show(task_id))
    if prefix is None:
        complete = [c for c in copies if c.state == COMPLETE]
        if not complete:
            raise TaskFailed("task %s has no complete copy in %s" % (schema.show(task_id), backend.location()))
        return backend, complete[-1]
    for c in copies:
        if c.prefix == prefix:
            if c.state == CORRUPT:
                raise VerifyError("copy %s of task %s is corrupt: %s; it cannot be verified or restored"
                                  % (prefix, task_id, c.extra.get("problem") or "its manifest is damaged"))
            if c.state != COMPLETE:
                raise VerifyError("copy %s of task %s is %s (no manifest); it cannot be verified or restored"
                                  % (prefix, task_id, c.state))
            return backend, c
    raise UsageError("task %s has no copy %s" % (schema.show(task_id), schema.show(prefix)))


def _stream(backend, copy, obj):
    h = hashlib.sha256()
    size = 0
    with backend.open_object(copy.prefix, obj["path"]) as f:
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            h.update(data)
            size += len(data)
    if size != obj["size"] or h.hexdigest() != obj["sha256"]:
        raise VerifyError("object %s of copy %s does not match its manifest (size %d, expected %d; sha256 %s, "
                          "expected %s)" % (obj["path"], copy.prefix, size, obj["size"], h.hexdigest(),
                                            obj["sha256"]))
    return size


def verify(cfg, task_id, prefix=None):
    backend, copy = pick_complete(cfg, task_id, prefix)
    total, done = 0, []
    for obj in copy.manifest.get("objects", []):
        try:
            total += _stream(backend, copy, obj)
        except OSError as e:
            raise VerifyError("object %s of copy %s cannot be read: %s" % (obj["path"], copy.prefix, e)) from None
        done.append(obj["path"])
    return {"prefix": copy.prefix, "objects": done, "bytes": total}
