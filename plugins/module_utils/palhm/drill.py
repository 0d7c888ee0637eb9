# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drills: does the newest complete copy of a backup task restore?

A ``restore-drill`` task::

    {"id": "drill-backup", "type": "restore-drill", "backup-task": "backup",
     "objects": [{"path": "etc.tar.zst",
                  "pipeline": [{"type": "exec-inline", "argv": ["zstd", "-d"]},
                               {"type": "exec-inline", "argv": ["tar", "-t"]}]}],
     "scratch-dir": "/var/tmp", "max-age": "26h"}

Invariants:
- The copy drilled is the newest copy in state ``complete`` whose PREFIX is
  not in the future (the copy ``palhm status`` calls the newest): a crash's
  leftover, a legacy or a future-dated copy is never drilled.
- Every object of the copy's manifest is read from the backend and checked
  against its size and SHA-256 as it streams (restore.stream_object); an
  object named in ``objects`` is also fed through its ``pipeline``, which
  proves it restores (``zstd -t``, ``zstd -d | tar -t``, ``... | psql``).
  A pipeline never sees the clean end of an object that fails verification:
  it is killed first (restore.py).
- Each pipeline stage gets ``PALHM_DRILL_DIR``: a private directory made for
  this drill under ``scratch-dir`` (default: the system's temporary
  directory) and removed afterwards, whatever the outcome.
- With ``max-age``, a newest complete copy older than it fails the drill
  before anything is read (and, like any task's ``max-age``, a last success
  of the drill older than it makes ``palhm status`` call the drill stale).
- Nothing is written to the backend: a drill is read-only for the copies.
  Its outcome goes to the run history, metrics and pings like any task's
  (runtime.Runtime.run_task).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time

from . import redact, schema
from .backends.base import COMPLETE, check_object_path, prefix_time
from .errors import ConfigError, TaskFailed, UsageError, VerifyError
from .execs import parse_item
from .runtime import VL_INFO, Task

TYPE = "restore-drill"
# A copy whose PREFIX is further than this in the future is not trusted
# (status.CLOCK_SLACK, kept equal).
CLOCK_SLACK = 300
SCRATCH_ENV = "PALHM_DRILL_DIR"


@dataclasses.dataclass
class DrillObject:
    path: str
    stages: list  # [Exec], empty: verified only


def parse_task(raw, where, ctx):
    schema.obj(raw, where, required=("id", "type", "backup-task"), optional=("objects", "scratch-dir"))
    bpath = schema.join(where, "backup-task")
    backup_id = schema.string(raw["backup-task"], bpath)
    if backup_id not in ctx.task_ids:
        raise ConfigError(bpath, "no task named %s" % schema.show(backup_id))
    opath = schema.join(where, "objects")
    objects, seen = [], {}
    for i, o in enumerate(schema.obj_list(raw.get("objects", []), opath)):
        p = schema.join(opath, i)
        schema.obj(o, p, required=("path",), optional=("pipeline",))
        path = check_object_path(o["path"], schema.join(p, "path"))
        if path in seen:
            raise ConfigError(schema.join(p, "path"), "duplicate object path %s (also %s)"
                              % (schema.show(path), seen[path]))
        seen[path] = p
        ppath = schema.join(p, "pipeline")
        items = schema.obj_list(o.get("pipeline", []), ppath)
        stages = [parse_item(item, schema.join(ppath, j), ctx.execs) for j, item in enumerate(items)]
        objects.append(DrillObject(path, stages))
    scratch = None
    if "scratch-dir" in raw:
        scratch = schema.string(raw["scratch-dir"], schema.join(where, "scratch-dir"))
        if not os.path.isabs(scratch):
            raise ConfigError(schema.join(where, "scratch-dir"), "must be an absolute path, got %s"
                              % schema.show(scratch))
    return RestoreDrillTask(raw["id"], where, backup_id, objects, scratch)


def check_target(task, tasks):
    """After every task is parsed: `backup-task` names a backup task."""
    target = tasks[task.backup_task]
    if target.type != "backup":
        raise ConfigError(schema.join(task.where, "backup-task"), "task %s is a %s task, not a backup task"
                          % (schema.show(task.backup_task), target.type))


def newest_complete(copies, now=None):
    """The newest complete copy whose PREFIX is not in the future, or None."""
    now = time.time() if now is None else now
    good = []
    for c in copies:
        if c.state != COMPLETE:
            continue
        t = prefix_time(c.prefix)
        if t is not None and t.timestamp() > now + CLOCK_SLACK:
            continue
        good.append(c)
    return good[-1] if good else None


class RestoreDrillTask(Task):
    type = TYPE

    def __init__(self, task_id, where, backup_task, objects, scratch_dir):
        super().__init__(task_id, where)
        self.backup_task = backup_task
        self.objects = objects  # [DrillObject], in config order
        self.scratch_dir = scratch_dir

    def describe(self):
        out = {"id": self.id, "type": self.type, "backup-task": self.backup_task,
               "objects": [{"path": o.path, "pipeline": [s.describe() for s in o.stages]}
                           for o in self.objects]}
        if self.scratch_dir is not None:
            out["scratch-dir"] = self.scratch_dir
        return out

    def _pick(self, rt):
        target = rt.config.task(self.backup_task)
        backend = target.make_backend()
        if not backend.stores:
            raise UsageError("task %s drills task %s, which uses the null backend: nothing is stored"
                             % (self.id, self.backup_task))
        copy = newest_complete(backend.list_copies())
        if copy is None:
            raise TaskFailed("restore drill %s: task %s has no complete copy in %s"
                             % (self.id, self.backup_task, backend.location()))
        return backend, copy

    def plan(self, rt):
        backend, copy = self._pick(rt)
        return {"task": self.id, "type": self.type, "backup_task": self.backup_task, "prefix": copy.prefix,
                "location": backend.location(copy.prefix),
                "objects": [o.get("path") for o in copy.manifest.get("objects", [])],
                "pipelines": dict((o.path, [redact.argv(s.argv) for s in o.stages]) for o in self.objects)}

    def run(self, rt):
        from .restore import feed_pipeline, stream_object
        started = time.time()
        backend, copy = self._pick(rt)
        t = prefix_time(copy.prefix)
        age = None if t is None else max(0.0, started - t.timestamp())
        if self.max_age is not None and age is not None and age > self.max_age:
            from .status import human_age
            raise TaskFailed("restore drill %s: the newest complete copy %s of task %s is %s old, more than "
                             "max-age %s" % (self.id, copy.prefix, self.backup_task, human_age(age),
                                             human_age(self.max_age)))
        manifest_objects = copy.manifest.get("objects", [])
        stored = set(o.get("path") for o in manifest_objects)
        for o in self.objects:
            path = o.path
            if path not in stored:
                raise VerifyError("restore drill %s: object %s is not in copy %s of task %s (objects: %s)"
                                  % (self.id, path, copy.prefix, self.backup_task,
                                     ", ".join(sorted(stored)) or "none"))
        pipelines = dict((o.path, o.stages) for o in self.objects)
        try:
            scratch = tempfile.mkdtemp(prefix="palhm-drill-", dir=self.scratch_dir)
        except OSError as e:
            raise TaskFailed("restore drill %s: cannot make a scratch directory in %s: %s"
                             % (self.id, self.scratch_dir or tempfile.gettempdir(), e.strerror or e)) from None
        done, total = [], 0
        try:
            for obj in manifest_objects:
                rt.check_cancel()
                stages = pipelines.get(obj["path"])
                t0 = time.monotonic()
                entry = {"path": obj["path"], "size": obj["size"], "sha256": obj["sha256"], "verified": True}
                if stages:
                    stages = [dataclasses.replace(s, env=dict(s.env, **{SCRATCH_ENV: scratch})) for s in stages]
                    res = feed_pipeline(rt, backend, copy, obj, stages)
                    entry["pipeline"] = [redact.argv(s.argv) for s in stages]
                    entry["stages"] = res["stages"]
                    if res.get("stdout_tail"):
                        entry["stdout_tail"] = redact.text(res["stdout_tail"])
                else:
                    stream_object(backend, copy, obj, None, rt)
                entry["duration"] = round(time.monotonic() - t0, 3)
                total += obj["size"]
                done.append(entry)
                rt.log(VL_INFO, "restore drill %s: %s of copy %s verified%s" % (
                    self.id, obj["path"], copy.prefix,
                    " and restored through " + " | ".join(" ".join(a) for a in entry["pipeline"])
                    if stages else ""))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return {"task": self.id, "type": self.type, "backup_task": self.backup_task, "prefix": copy.prefix,
                "location": backend.location(copy.prefix), "copy_age": None if age is None else round(age, 3),
                "objects": done, "bytes": total, "elapsed": round(time.time() - started, 3), "changed": False}
