# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ownership (issue 12, items 2 and 7): a backup root that holds more than
this task's copies. Each run builds a root (localfs; every fifth run also an
S3 root on moto) holding another task's copies (same root), another task's
nested root (ROOT/db), lost+found, notes, names close to the original's
PREFIX format, a legacy copy of the original, and one of this task's copies
with its manifest damaged (a random shape of a table), then runs the task
twice with nb-copy-limit 2. Must hold: every run exits 0 without a
traceback; nothing that is not this task's copy changes; the legacy copy is
rotated away; the damaged copy stays, is listed `corrupt` and refused by
verify in one line; `list` shows only this task's copies."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

from lib import Obj, Palhm, Result, s3_client

MANIFEST = ".palhm-manifest.json"
LEGACY = "2001-01-01T00:00:00+00:00"
ODD = ("lost+found", "notes", "2020-01-01", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00+02:00",
       "2020-13-01T00:00:00+00:00", "x2020-01-01T00:00:00+00:00")
SHA = "a" * 64
SHAPES = (
    [], None, "text", 5, {}, {"task": "backup"}, {"task": "backup", "objects": 5},
    {"task": "backup", "objects": [None]},
    {"task": "backup", "objects": [{"path": "data.bin", "sha256": SHA}]},
    {"task": "backup", "objects": [{"path": "data.bin", "size": "9", "sha256": SHA}]},
    {"task": "backup", "objects": [{"path": "data.bin", "size": 1.5, "sha256": SHA}]},
    {"task": "backup", "objects": [{"path": "data.bin", "size": 9, "sha256": "Z" * 64}]},
    {"task": "backup", "objects": [{"path": "../../../etc/passwd", "size": 9, "sha256": SHA}]},
    {"task": "backup", "objects": [{"path": "/etc/passwd", "size": 9, "sha256": SHA}]},
    {"task": "backup", "objects": [{"path": 7, "size": 9, "sha256": SHA}]},
    {"task": ["backup"], "objects": []},
    "{\"objects\": [", "", "[" * 50000,
)


def _tree(top):
    out = {}
    for d, dirs, files in os.walk(top):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), top)] = "dir"
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, top)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _body(shape):
    return shape if isinstance(shape, str) and (shape == "" or shape.startswith(("{", "["))) else json.dumps(shape)


def _task(p, tid, backend, param, obj):
    return {"id": tid, "type": "backup", "backend": backend, "backend-param": param,
            "objects": [obj.config(p.marker)]}


def _check_runs(p, probs, times=2):
    for i in range(times):
        r = p.run("run", "backup")
        if r.returncode != 0 or "Traceback" in r.stderr:
            probs.append("run %d of backup exited %d: %s" % (i, r.returncode, r.stderr.strip()[-300:]))


def _localfs_round(ctx, p, rnd, obj, res):
    probs = []
    root = p.workdir / ("root-%d" % rnd)
    p.write_config({"tasks": [
        _task(p, "backup", "localfs", {"root": str(root), "nb-copy-limit": 2}, obj),
        _task(p, "other", "localfs", {"root": str(root), "nb-copy-limit": 5}, obj),
        _task(p, "db", "localfs", {"root": str(root / "db")}, obj)]})
    for tid in ("other", "db", "backup"):
        r = p.run("-q", "run", tid)
        if r.returncode != 0:
            raise RuntimeError("setting up: run %s exited %d: %s" % (tid, r.returncode, r.stderr[-300:]))
    listed = p.list("backup")
    damaged = [c["prefix"] for c in listed if c["state"] == "complete"][0]
    if len(listed) != 1:
        probs.append("list backup of a root holding one copy of backup shows %s"
                     % [(c["prefix"], c["state"]) for c in listed])
    shape = ctx.rng.choice(SHAPES)
    (root / damaged / MANIFEST).write_text(_body(shape))
    for name in ODD:
        (root / name).mkdir()
        (root / name / "file.txt").write_text("not a copy: %s\n" % name)
    (root / LEGACY).mkdir()
    (root / LEGACY / "old.tar").write_text("made by the original palhm\n")
    keep = {k: v for k, v in _tree(root).items() if not k.startswith((LEGACY, damaged))}
    _check_runs(p, probs)
    after = _tree(root)
    changed = sorted(k for k, v in keep.items() if after.get(k) != v)
    if changed:
        probs.append("rotation or cleanup changed what is not this task's copy: %s" % changed[:4])
    if (root / LEGACY).exists():
        probs.append("the original's copy %s was not rotated away (nb-copy-limit 2)" % LEGACY)
    listed = {c["prefix"]: c["state"] for c in p.list("backup")}
    if listed.get(damaged) != "corrupt":
        probs.append("a manifest %s listed the copy as %s, not corrupt" % (_body(shape)[:40], listed.get(damaged)))
    if sorted(listed.values()) != ["complete", "complete", "corrupt"]:
        probs.append("list backup shows %s" % listed)
    r = p.verify("backup", damaged)
    if r.returncode != 5 or len(r.stderr.strip().splitlines()) != 1 or "is corrupt" not in r.stderr:
        probs.append("verify of the corrupt copy: exit %d, %r" % (r.returncode, r.stderr.strip()[-200:]))
    for prefix, state in listed.items():
        if state == "complete" and p.verify("backup", prefix).returncode != 0:
            probs.append("complete copy %s does not verify" % prefix)
    # A manifest that names no task readably is listed by every task of the root (as corrupt).
    theirs = [[c["prefix"] for c in p.list(tid) if c["state"] == "complete"] for tid in ("other", "db")]
    if [len(t) for t in theirs] != [1, 1] or set(theirs[0]) & set(listed):
        probs.append("the other tasks' copies changed: other %s, db %s" % tuple(theirs))
    res.note("shapes_tried")
    res.record(probs)


def _s3_round(ctx, p, rnd, obj, res):
    probs = []
    client = s3_client(ctx.moto_url())
    bucket = "owner-%d-%d" % (ctx.seed % 100000, rnd)
    client.create_bucket(Bucket=bucket)
    root = "backup/host"
    base = {"bucket": bucket, "endpoint-url": ctx.moto_url(), "region": "us-east-1"}
    p.write_config({"modules": ["aws"], "tasks": [
        _task(p, "backup", "aws-s3", dict(base, root=root, **{"nb-copy-limit": 2}), obj),
        _task(p, "other", "aws-s3", dict(base, root=root), obj),
        _task(p, "db", "aws-s3", dict(base, root=root + "/db"), obj)]})
    for tid in ("other", "db", "backup"):
        r = p.run("-q", "run", tid)
        if r.returncode != 0:
            raise RuntimeError("setting up: run %s exited %d: %s" % (tid, r.returncode, r.stderr[-300:]))
    listed = p.list("backup")
    damaged = [c["prefix"] for c in listed if c["state"] == "complete"][0]
    if len(listed) != 1:
        probs.append("list backup of a root holding one copy of backup shows %s"
                     % [(c["prefix"], c["state"]) for c in listed])
    shape = ctx.rng.choice(SHAPES)
    client.put_object(Bucket=bucket, Key="%s/%s/%s" % (root, damaged, MANIFEST), Body=_body(shape).encode())
    for name in ODD:
        client.put_object(Bucket=bucket, Key="%s/%s/file.txt" % (root, name), Body=name.encode())
    client.put_object(Bucket=bucket, Key="%s/%s/old.tar" % (root, LEGACY), Body=b"original")
    upload = client.create_multipart_upload(Bucket=bucket, Key="%s/db/unfinished" % root)["UploadId"]

    def keys():
        out = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root + "/"):
            for o in page.get("Contents", ()):
                out[o["Key"]] = o["ETag"]
        return out

    keep = {k: v for k, v in keys().items() if not k.startswith(("%s/%s/" % (root, LEGACY),
                                                                 "%s/%s/" % (root, damaged)))}
    _check_runs(p, probs)
    after = keys()
    changed = sorted(k for k, v in keep.items() if after.get(k) != v)
    if changed:
        probs.append("S3: rotation or cleanup changed what is not this task's copy: %s" % changed[:4])
    if any(k.startswith("%s/%s/" % (root, LEGACY)) for k in after):
        probs.append("S3: the original's copy was not rotated away")
    uploads = [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    if uploads != [upload]:
        probs.append("S3: unfinished uploads of another task were aborted (left: %s)" % uploads)
    listed = {c["prefix"]: c["state"] for c in p.list("backup")}
    if listed.get(damaged) != "corrupt" or sorted(listed.values()) != ["complete", "complete", "corrupt"]:
        probs.append("S3: list backup shows %s (damaged %s with %s)" % (listed, damaged, _body(shape)[:40]))
    r = p.verify("backup", damaged)
    if r.returncode != 5 or "is corrupt" not in r.stderr:
        probs.append("S3: verify of the corrupt copy: exit %d, %r" % (r.returncode, r.stderr.strip()[-200:]))
    res.note("s3_rounds")
    res.record(probs)


def ownership(ctx, runs):
    res = Result("ownership (strays, shared and nested roots, damaged manifests)")
    p = Palhm(ctx, ctx.tmp / "ownership")
    obj = Obj("data.bin", 20000, seed=7)
    for rnd in range(runs):
        _localfs_round(ctx, p, rnd, obj, res)
        if rnd % 5 == 0:
            _s3_round(ctx, p, rnd, obj, res)
        shutil.rmtree(p.workdir / ("root-%d" % rnd), ignore_errors=True)
    return res
