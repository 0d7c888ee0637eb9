# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup tasks: objects built by pipelines, object groups as a DAG, a copy
made complete atomically with a manifest, rolled back on any failure, then
rotation."""

from __future__ import annotations

import concurrent.futures
import datetime
import time
from dataclasses import dataclass

from . import redact, retention, schema
from .backends import aws, localfs, null
from .backends.base import (COMMON_PARAMS, COMPLETE, CORRUPT, LEGACY, Copy, check_object_path, future_warnings,
                            new_prefix, parse_alloc_size, wait_tick)
from .errors import BackendError, CancelledError, ConfigError, PalhmError, TaskFailed
from .execs import parse_item
from .pipeline import STDOUT_PIPE, Pipeline
from .runtime import VL_DEBUG, VL_INFO, VL_WARNING, Task, host_lock, lock_is_held

BACKENDS = {"null": null, "localfs": localfs, "aws-s3": aws}
DEFAULT_GROUP = "default"
MANIFEST_FORMAT = "palhm-manifest/1"


@dataclass
class BackupObject:
    path: str
    stages: list
    group: str
    alloc_size: int
    where: str


def _topo_layers(groups, where):
    """Build order of the groups: a list of layers; cycles are config errors."""
    state, order = {}, []

    def visit(gid, chain):
        if state.get(gid) == 2:
            return
        if state.get(gid) == 1:
            cycle = chain[chain.index(gid):] + [gid]
            raise ConfigError(where, "object group dependency cycle: %s" % " -> ".join(cycle))
        state[gid] = 1
        for dep in groups[gid]:
            visit(dep, chain + [gid])
        state[gid] = 2
        order.append(gid)

    for gid in groups:
        visit(gid, [])
    depth = {}
    for gid in order:
        depth[gid] = 1 + max([depth[d] for d in groups[gid]] or [-1])
    layers = [[] for _layer in range(max(depth.values()) + 1)] if depth else []
    for gid in groups:
        layers[depth[gid]].append(gid)
    return layers


# What a null backend ignores: every other backend's parameters, so that
# switching a task to null (the dry run the original's README recommends)
# needs no other edit.
NULL_IGNORES = tuple(COMMON_PARAMS) + ("dmode", "fmode", "block-size") + tuple(aws.PARAMS)


def _migrate_params(backend_name, raw, path, ctx):
    """backend-param as the original wrote it, made ready for the backend's
    parser: ``prefix`` ("reserved for future" in the original) is ignored with
    a warning; a null backend ignores the other backends' keys with one
    warning listing them. Unknown keys stay errors."""
    if not isinstance(raw, dict):
        return raw  # the backend's parser names the error
    if backend_name == "null":
        schema.obj(raw, path, optional=NULL_IGNORES + ("prefix",))
    warnings = getattr(ctx, "warnings", None)
    warnings = [] if warnings is None else warnings
    if "prefix" in raw:
        warnings.append("%s: ignored: the original PALHM reserved it for future use; copies are named by "
                        "their UTC start time" % schema.join(path, "prefix"))
        raw = {k: v for k, v in raw.items() if k != "prefix"}
    if backend_name == "null":
        ignored = [k for k in raw if not schema.is_comment_key(k)]
        if ignored:
            warnings.append("%s: ignored by the null backend (it stores nothing): %s"
                            % (path, ", ".join(ignored)))
        return {}
    return raw


def parse_task(raw, where, ctx):
    schema.obj(raw, where, required=("id", "type"),
               optional=("backend", "backend-param", "object-groups", "objects"))
    backend_name = raw.get("backend", "null")
    schema.choice(backend_name, schema.join(where, "backend"), BACKENDS)
    bp_path = schema.join(where, "backend-param")
    raw_bp = _migrate_params(backend_name, raw.get("backend-param", {}), bp_path, ctx)
    params = BACKENDS[backend_name].parse_params(raw_bp, bp_path)

    groups = {DEFAULT_GROUP: []}
    gpath = schema.join(where, "object-groups")
    raw_groups = schema.obj_list(raw.get("object-groups", []), gpath)
    declared = {}
    for i, g in enumerate(raw_groups):
        p = schema.join(gpath, i)
        schema.obj(g, p, required=("id",), optional=("depends",))
        gid = schema.string(g["id"], schema.join(p, "id"))
        if gid in declared:
            raise ConfigError(schema.join(p, "id"), "duplicate object group %s" % schema.show(gid))
        declared[gid] = p
        groups[gid] = schema.str_list(g.get("depends", []), schema.join(p, "depends"))
    for gid, deps in groups.items():
        for j, dep in enumerate(deps):
            p = schema.join(schema.join(declared[gid], "depends"), j)
            if dep == gid:
                raise ConfigError(p, "group %s depends on itself" % schema.show(gid))
            if dep not in groups:
                raise ConfigError(p, "no object group named %s" % schema.show(dep))
    layers = _topo_layers(groups, gpath)

    opath = schema.join(where, "objects")
    objects, seen = [], {}
    for i, o in enumerate(schema.obj_list(raw.get("objects", []), opath)):
        p = schema.join(opath, i)
        schema.obj(o, p, required=("path", "pipeline"), optional=("group", "alloc-size"))
        path = check_object_path(o["path"], schema.join(p, "path"))
        if path in seen:
            raise ConfigError(schema.join(p, "path"), "duplicate object path %s (also %s)"
                              % (schema.show(path), seen[path]))
        seen[path] = p
        ppath = schema.join(p, "pipeline")
        items = schema.obj_list(o["pipeline"], ppath)
        if not items:
            raise ConfigError(ppath, "a pipeline needs at least one command")
        stages = [parse_item(item, schema.join(ppath, j), ctx.execs) for j, item in enumerate(items)]
        group = o.get("group", DEFAULT_GROUP)
        schema.string(group, schema.join(p, "group"))
        if group not in groups:
            raise ConfigError(schema.join(p, "group"), "no object group named %s" % schema.show(group))
        alloc = None
        if "alloc-size" in o:
            alloc = parse_alloc_size(o["alloc-size"], schema.join(p, "alloc-size"))
        objects.append(BackupObject(path, stages, group, alloc, p))
    if not objects:
        # An empty copy would be committed and rotation would count it,
        # removing real copies to make room for nothing.
        raise ConfigError(opath, "a backup task needs at least one object (an empty copy would count in "
                          "rotation as a complete one)")
    return BackupTask(raw["id"], where, backend_name, params, groups, layers, objects)


class BackupTask(Task):
    type = "backup"

    def __init__(self, task_id, where, backend_name, params, groups, layers, objects):
        super().__init__(task_id, where)
        self.backend_name = backend_name
        self.params = params
        self.groups = groups
        self.layers = layers
        self.objects = objects

    def make_backend(self):
        return BACKENDS[self.backend_name].make(self.params, self.id)

    def describe(self):
        params = {k: v for k, v in self.params.items() if k != "retention"}
        if hasattr(BACKENDS[self.backend_name], "describe_params"):
            params = BACKENDS[self.backend_name].describe_params(self.params)
        params.update(self.params["retention"].describe())
        for k in ("dmode", "fmode"):
            if k in params:
                params[k] = "%o" % params[k]
        return {"id": self.id, "type": self.type, "backend": self.backend_name, "backend-param": params,
                "object-groups": [{"id": g, "depends": d} for g, d in self.groups.items()],
                "objects": [{"path": o.path, "group": o.group, "alloc-size": o.alloc_size,
                             "pipeline": [s.describe() for s in o.stages]} for o in self.objects]}

    def build_order(self):
        """Layers of object paths that may be built at the same time."""
        out = []
        for layer in self.layers:
            paths = [o.path for o in self.objects if o.group in layer]
            out.append({"groups": layer, "objects": paths})
        return out

    # -- check mode ------------------------------------------------------
    def plan(self, rt):
        backend = self.make_backend()
        plan = {"task": self.id, "type": self.type, "backend": self.backend_name,
                "location": backend.location(), "build_order": self.build_order(),
                "objects": [{"path": o.path, "group": o.group,
                             "pipeline": [redact.argv(s.argv) for s in o.stages]} for o in self.objects],
                "nb_workers": rt.config.workers(), "would_remove_leftovers": [], "would_rotate": []}
        busy = lock_is_held("task-" + self.id, "task %r" % self.id) or \
            lock_is_held("root-" + backend.lock_key(), "a backup into %s" % backend.location())
        if busy:
            # A real run now would stop at the lock and touch nothing.
            plan["would_fail"] = busy
        if backend.stores:
            copies = backend.list_copies()
            if not busy:
                plan["would_remove_leftovers"] = [c.prefix for c in copies if c.state == "incomplete"]
            prefix = new_prefix(set()) or "NEW"
            survivors = [c for c in copies if c.state in (COMPLETE, LEGACY)]
            survivors.append(Copy(prefix, COMPLETE, sum(o.alloc_size or 0 for o in self.objects),
                                  len(self.objects)))
            plan["would_rotate"] = [c.prefix for c in retention.expired(survivors, self.params["retention"], prefix)]
            plan["copies"] = [c.as_dict() for c in copies]
        return plan

    # -- running ---------------------------------------------------------
    def run(self, rt):
        started = time.time()
        backend = self.make_backend()
        backend.cancelled = rt.cancelled
        with host_lock("root-" + backend.lock_key(), "a backup into %s" % backend.location()):
            copies = backend.list_copies() if backend.stores else []
            leftovers = backend.cleanup_leftovers(copies) if backend.stores else []
            for note in getattr(backend, "cleanup_notes", ()):
                if not note.startswith("removing") or "host" in note:
                    rt.log(VL_WARNING, "task %s: %s" % (self.id, note))
            for p in leftovers:
                rt.log(VL_WARNING, "removed incomplete copy %s left by an earlier run" % p)
            for line in shared_root_warnings(backend, rt.hostname):
                rt.log(VL_WARNING, "task %s: %s" % (self.id, line))
            for line in future_warnings(copies):
                rt.log(VL_WARNING, "task %s: %s" % (self.id, line))
            for c in copies:
                if c.state == CORRUPT:
                    rt.log(VL_WARNING, "copy %s is corrupt (%s): kept, never counted, verified or restored"
                           % (c.prefix, c.extra.get("problem")))
            # Every name in ROOT is taken, this task's copy or not.
            existing = set(c.prefix for c in copies) | set(getattr(backend, "root_names", ()))
            prefix = new_prefix(existing)
            while prefix is None:
                wait_tick()
                prefix = new_prefix(existing)
            backend.begin(prefix)
            rt.log(VL_INFO, "task %s: making copy %s" % (self.id, backend.location(prefix)))
            try:
                results = self._build_all(rt, backend)
                rt.check_cancel()
                manifest = {
                    "format": MANIFEST_FORMAT, "task": self.id, "prefix": prefix, "hostname": rt.hostname,
                    "backend": self.backend_name, "started": _iso(started), "finished": _iso(time.time()),
                    "objects": results}
                backend.commit(manifest)
            except BaseException as e:
                try:
                    backend.rollback()
                except PalhmError as rb:
                    rt.log(VL_WARNING, "rollback of %s incomplete: %s" % (prefix, rb))
                    if isinstance(e, CancelledError):
                        # Not "rolled back": say what the warning above details.
                        raise CancelledError("%s; the rollback did not finish, the next run removes what is left"
                                             % str(e).replace("; the copy was rolled back", "")) from None
                if isinstance(e, KeyboardInterrupt):
                    raise CancelledError("cancelled by SIGINT; copy %s rolled back" % prefix) from None
                if isinstance(e, PalhmError):
                    raise
                raise TaskFailed("task %s: unexpected error, copy %s rolled back: %s: %s"
                                 % (self.id, prefix, type(e).__name__, e)) from e
            rotated = []
            changed_classes = []
            future = []
            if backend.stores:
                after = [c for c in backend.list_copies() if c.state in (COMPLETE, LEGACY)]
                future = [c.prefix for c in after if c.is_future()]
                for c in retention.expired(after, self.params["retention"], prefix):
                    backend.remove_copy(c)
                    rotated.append(c.prefix)
                    rt.log(VL_INFO, "rotation removed copy %s" % c.prefix)
                changed_classes = backend.after_rotation(prefix) or []
        return {"task": self.id, "type": self.type, "backend": self.backend_name, "prefix": prefix,
                "location": backend.location(prefix) if backend.stores else None,
                "objects": results, "rotated": rotated, "removed_leftovers": leftovers,
                "storage_class_changed": changed_classes, "future_copies": future,
                "bytes": sum(r["size"] for r in results), "elapsed": round(time.time() - started, 3),
                "changed": backend.stores or bool(results)}

    def _build_all(self, rt, backend):
        """Build every object, groups in DAG order, up to nb-workers at once.
        On the first failure (or a cancel) stop everything and raise it."""
        pending = {g: [o for o in self.objects if o.group == g] for g in self.groups}
        remaining = {g: len(v) for g, v in pending.items()}
        done_groups = set()
        results = {}
        active = {}  # future -> (obj, holder)
        failure = None
        workers = max(1, rt.config.workers())

        def ready_groups():
            return [g for g in self.groups if g not in done_groups and pending[g] is not None
                    and all(d in done_groups for d in self.groups[g])]

        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="palhm") as pool:
            while True:
                # Groups with nothing left to build are complete (empty ones too).
                progressed = True
                while progressed:
                    progressed = False
                    for g in list(self.groups):
                        if g not in done_groups and remaining[g] == 0 and \
                                all(d in done_groups for d in self.groups[g]):
                            done_groups.add(g)
                            progressed = True
                if failure is None and not rt.cancelled.is_set():
                    for g in ready_groups():
                        for obj in pending[g]:
                            holder = {}
                            fut = pool.submit(self._build_one, rt, backend, obj, holder)
                            active[fut] = (obj, holder)
                        pending[g] = None
                if not active:
                    break
                done = concurrent.futures.wait(list(active), timeout=0.2,
                                               return_when=concurrent.futures.FIRST_COMPLETED)[0]
                for fut in done:
                    obj, _holder = active.pop(fut)
                    try:
                        results[obj.path] = fut.result()
                        remaining[obj.group] -= 1
                    except BaseException as e:  # noqa: B902 - re-raised below
                        if failure is None:
                            failure = e
                if (failure is not None or rt.cancelled.is_set()) and active:
                    # Sinks first: a feeder waiting on a stalled store returns at once.
                    backend.cancel()
                    for obj, holder in active.values():
                        pipe = holder.get("pipeline")
                        if pipe is not None:
                            holder["stopping"] = True
                            pipe.terminate(grace=2.0)
        if rt.cancelled.is_set():
            raise CancelledError("task %s cancelled by %s; the copy was rolled back"
                                 % (self.id, rt.cancel_reason or "request"))
        if failure is not None:
            raise failure
        return [results[o.path] for o in self.objects]

    def _build_one(self, rt, backend, obj, holder):
        rt.check_cancel()
        label = "object %s" % obj.path
        t0 = time.monotonic()
        sink = backend.open_sink(obj.path, obj.alloc_size)
        # Every backend is fed by palhm from a pipe (the original's sink was
        # dd): what is stored is exactly what was hashed, a stage cannot seek
        # back or truncate it, and palhm's own write errors fail the object.
        pipe = Pipeline(obj.stages, label, STDOUT_PIPE, rt)
        holder["pipeline"] = pipe
        feed_error = None
        try:
            pipe.start()
            rt.log(VL_DEBUG, "%s: started %s" % (label, " | ".join(" ".join(redact.argv(s.argv)) for s in obj.stages)))
            try:
                pipe.pump(sink.feed)
            except BaseException as e:  # noqa: B902 - re-raised below, once the pipeline is stopped
                feed_error = e
                pipe.close_out()
                pipe.terminate(grace=2.0)
            stage_results = pipe.wait()
            if feed_error is not None:
                if isinstance(feed_error, (PalhmError, KeyboardInterrupt, SystemExit)):
                    raise feed_error
                raise BackendError("%s: storing failed: %s" % (label, feed_error)) from feed_error
            err = pipe.failure(stage_results)
            if err is not None:
                if holder.get("stopping") or rt.cancelled.is_set():
                    raise CancelledError("%s stopped" % label)
                if getattr(sink, "no_space", None) and sink.no_space():
                    raise BackendError("%s: no space left on device in %s (%s)"
                                       % (label, backend.location(), err))
                raise err
            info = sink.finish()
        except BaseException:
            sink.abort()
            pipe.terminate(grace=2.0)
            raise
        duration = round(time.monotonic() - t0, 3)
        rt.log(VL_INFO, "%s: %d bytes in %.2fs" % (label, info.size, duration))
        return {"path": obj.path, "group": obj.group, "size": info.size, "sha256": info.sha256,
                "duration": duration, "stages": [r.as_dict() for r in stage_results]}


def shared_root_warnings(backend, hostname):
    """A warning when ROOT holds manifests or in-progress marks of other
    hosts (list_copies() fills backend.root_hosts)."""
    others = sorted(h for h in getattr(backend, "root_hosts", ()) if h != hostname)
    if not others:
        return []
    return ["backup root %s is shared with other host(s): %s (their manifests or in-progress marks are in it); "
            "their copies of this task count in its rotation, and their leftovers are removed only after "
            "stale-age: give each host a root of its own (or this host was renamed)"
            % (backend.location(), ", ".join(others[:5]) + (", ..." if len(others) > 5 else ""))]


def _iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).replace(microsecond=0).isoformat()
