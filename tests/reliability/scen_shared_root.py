# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared root (issue 12, item 5): a backup root other hosts write into.
Each run plants in-progress marks of a random mix of runs (this host: pid
gone, pid alive, pid reused, before a reboot; another host: fresh, past
stale-age; no mark: fresh, old) in a localfs root (every third run also an
S3 root on moto, with an unfinished upload under the other host's live
copy), then runs the task. Must hold: exactly the dead runs' leftovers are
removed; the live ones (and their uploads) stay byte for byte; the root is
warned about as shared; the complete copies stay. Every fourth run, an
object deleted before the commit (as another host's cleanup would) must
fail the run, commit nothing and leave the older copies."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

from lib import Obj, Palhm, Result, s3_client

HOUR = 3600
NO_SUCH_PID = 4194305
OWNER = ".palhm-partial-owner.json"
MARKER = ".palhm-in-progress"


def _boot_id():
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
        return f.read().strip()


def _ticks(pid):
    with open("/proc/%d/stat" % pid, "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[19])


def _cases(rng, live_pid):
    here, boot = socket.gethostname(), _boot_id()
    mine = {"format": "palhm-owner/1", "task": "backup", "host": here, "boot_id": boot}
    other = {"format": "palhm-owner/1", "task": "backup", "host": "peer-%d" % rng.randrange(100), "boot_id": "b" * 8}
    kinds = [
        ("this host, pid gone", dict(mine, pid=NO_SUCH_PID), 0, True),
        ("this host, alive", dict(mine, pid=live_pid, start=_ticks(live_pid)), 0, False),
        ("this host, pid reused", dict(mine, pid=live_pid, start=_ticks(live_pid) + 7), 0, True),
        ("this host, before a reboot", dict(mine, pid=live_pid, boot_id="0" * 8), 0, True),
        ("other host, fresh", dict(other, pid=1), rng.uniform(0, 47) * HOUR, False),
        ("other host, stale", dict(other, pid=1), rng.uniform(49, 200) * HOUR, True),
        ("another task, stale", dict(other, task="other", pid=1), 300 * HOUR, False),
        ("no mark, fresh", None, rng.uniform(0, 47) * HOUR, False),
        ("no mark, old", None, rng.uniform(49, 200) * HOUR, True),
    ]
    picked = rng.sample(kinds, rng.randint(3, len(kinds)))
    out = {}
    for i, (what, doc, age, removed) in enumerate(picked):
        if doc is not None:
            doc = dict(doc, time=time.time() - age)
        out["2031-01-01T00:00:%02d+00:00" % i] = (what, doc, age, removed)
    return out


def _localfs(ctx, p, rnd, res, live):
    probs, lost = [], 0
    root = p.workdir / ("root-%d" % rnd)
    obj = Obj("data.bin", 30000, seed=rnd)
    p.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                               "backend-param": {"root": str(root)}, "objects": [obj.config(p.marker)]}]})
    if p.run("-q", "run", "backup").returncode != 0:
        raise RuntimeError("the first run failed")
    before = [c["prefix"] for c in p.list("backup") if c["complete"]]
    cases = _cases(ctx.rng, live.pid)
    for prefix, (_what, doc, age, _removed) in cases.items():
        d = root / (prefix + ".palhm-partial")
        d.mkdir()
        (d / "half.bin").write_bytes(b"half of %s" % prefix.encode())
        if doc is not None:
            (d / OWNER).write_text(json.dumps(doc))
        else:
            os.utime(str(d), (time.time() - age, time.time() - age))
    r = p.run("run", "backup")
    if r.returncode != 0:
        probs.append("run beside the marks exited %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
    for prefix, (what, doc, _age, removed) in cases.items():
        d = root / (prefix + ".palhm-partial")
        if d.exists() == removed:
            probs.append("%s: leftover %s" % (what, "kept" if removed else "removed (a live run's copy)"))
        elif not removed and (d / "half.bin").read_bytes() != b"half of %s" % prefix.encode():
            probs.append("%s: its data changed" % what)
    foreign = any(doc and doc["host"] != socket.gethostname() for _w, doc, _a, _r in cases.values())
    if foreign and "is shared with other host(s)" not in r.stderr:
        probs.append("a root holding another host's marks was not warned about as shared")
    after = [c["prefix"] for c in p.list("backup") if c["complete"]]
    lost += len(set(before) - set(after))
    if rnd % 4 == 0:
        # Object b deletes object a before the commit.
        rm_a = "printf b; rm -f %s/*.palhm-partial/data.bin" % root
        cfg = {"tasks": [{"id": "backup", "type": "backup", "backend": "localfs", "backend-param": {"root": str(root)},
                          "object-groups": [{"id": "first"}, {"id": "then", "depends": ["first"]}],
                          "objects": [dict(obj.config(p.marker), group="first"),
                                      {"path": "b", "group": "then",
                                       "pipeline": [{"type": "exec-inline", "argv": ["sh", "-c", rm_a]}]}]}]}
        p.write_config(cfg)
        r = p.run("run", "backup")
        now = [c["prefix"] for c in p.list("backup") if c["complete"]]
        if r.returncode != 1 or "object data.bin is missing" not in r.stderr:
            probs.append("a copy whose object vanished: exit %d, %r (want 1, object data.bin is missing)"
                         % (r.returncode, r.stderr.strip()[-200:]))
        if sorted(now) != sorted(after):
            probs.append("a copy whose object vanished changed the complete copies: %s -> %s" % (after, now))
        res.note("vanished_objects")
    res.record(probs, lost=lost)


def _s3(ctx, p, rnd, res, live):
    probs = []
    client = s3_client(ctx.moto_url())
    bucket = "shared-%d-%d" % (ctx.seed % 100000, rnd)
    client.create_bucket(Bucket=bucket)
    root = "backup/shared"
    obj = Obj("data.bin", 30000, seed=rnd)
    p.write_config({"modules": ["aws"], "tasks": [{"id": "backup", "type": "backup", "backend": "aws-s3",
                                                   "backend-param": {"bucket": bucket, "root": root,
                                                                     "endpoint-url": ctx.moto_url(),
                                                                     "region": "us-east-1"},
                                                   "objects": [obj.config(p.marker)]}]})
    cases = {k: v for k, v in _cases(ctx.rng, live.pid).items() if v[1] is not None}
    uploads = {}
    for prefix, (_what, doc, _age, removed) in cases.items():
        client.put_object(Bucket=bucket, Key="%s/%s/%s" % (root, prefix, MARKER), Body=json.dumps(doc).encode())
        client.put_object(Bucket=bucket, Key="%s/%s/half" % (root, prefix), Body=b"half")
        if not removed:
            key = "%s/%s/big" % (root, prefix)
            uploads[client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]] = prefix
    r = p.run("run", "backup")
    if r.returncode != 0:
        probs.append("S3 run beside the marks exited %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
    keys = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root + "/"):
        keys.update(o["Key"] for o in page.get("Contents", ()))
    for prefix, (what, _doc, _age, removed) in cases.items():
        there = "%s/%s/half" % (root, prefix) in keys
        if there == removed:
            probs.append("S3 %s: leftover %s" % (what, "kept" if removed else "removed (a live run's copy)"))
    left = set(u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    if left != set(uploads):
        probs.append("S3: the live runs' unfinished uploads were aborted: %s" % sorted(set(uploads) - left)[:3])
    res.note("s3_rounds")
    res.record(probs)


def shared_root(ctx, runs):
    res = Result("shared root (other hosts' marks, dead runs, vanished objects)")
    p = Palhm(ctx, ctx.tmp / "shared-root")
    live = subprocess.Popen(["sleep", "3600"])
    try:
        for rnd in range(runs):
            _localfs(ctx, p, rnd, res, live)
            if rnd % 3 == 0:
                _s3(ctx, p, rnd, res, live)
    finally:
        live.kill()
        live.wait()
    return res
