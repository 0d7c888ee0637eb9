# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Full disk: the localfs root sits on a dedicated 8 MiB tmpfs (mounted by
the test, unmounted in `finally`). Each run is sized from the free space so
that the disk fills in the first object, in a second object built beside
it, or right at the end (data fits, the manifest may not). A run that does
not fit must fail with palhm's own "no space left on device" line, leave no
partial copy, give the space back, and leave the older copies byte for byte
intact; a run that fits must be complete and verify. A small backup must
then succeed again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from lib import Obj, Palhm, Result, sha_file, wait_gone

SIZE = "8m"
NO_SPACE = re.compile(r"^palhm: .*no space left on device", re.M)


def _snapshot(root):
    snap = {}
    for name in sorted(os.listdir(root)):
        full = os.path.join(root, name)
        if name.endswith((".palhm-partial", ".palhm-deleting")) or not os.path.isdir(full):
            continue
        files = {}
        for d, _dirs, fs in os.walk(full):
            for f in fs:
                fp = os.path.join(d, f)
                files[os.path.relpath(fp, full)] = sha_file(fp)
        snap[name] = files
    return snap


def _doc(p, root, objs, groups=()):
    return {"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                       "backend-param": {"root": str(root), "nb-copy-limit": 3},
                       "object-groups": [{"id": g, "depends": d} for g, d in groups],
                       "objects": [o.config(p.marker, **({"group": g} if g else {})) for o, g in objs]}]}


def fulldisk(ctx, n):
    res = Result("full disk (localfs on %s tmpfs)" % SIZE)
    p = Palhm(ctx, ctx.tmp / "fulldisk")
    mnt = p.workdir / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=755" % SIZE, "palhm-reliability", str(mnt)],
                   check=True)
    try:
        root = mnt / "root"
        small = [(Obj("small/a.bin", 300 << 10, seed=31), None), (Obj("b.txt", 5000, seed=32), None)]
        small_cfg = p.write_config(_doc(p, root, small), "small.conf")
        for _unused in range(2):
            r = p.run("-q", "run", "backup", config=small_cfg)
            if r.returncode != 0:
                raise RuntimeError("small backup failed: %s" % r.stderr)
        snap = _snapshot(root)
        for i in range(n):
            probs = []
            st = os.statvfs(root)
            free = st.f_bavail * st.f_frsize
            kind = i % 3
            rng = ctx.rng
            if kind == 0:  # fills in the middle of the only object
                objs = [(Obj("big.bin", free + rng.randint(64 << 10, 2 << 20), chunk=256 << 10, seed=40 + i), None)]
                groups = ()
            elif kind == 1:  # two objects side by side, the disk fills in one of them
                a = rng.randint(free // 4, free // 2)
                objs = [(Obj("one.bin", a, chunk=128 << 10, seed=50 + i), None),
                        (Obj("two/two.bin", free - a + rng.randint(4096, 1 << 20), chunk=128 << 10, seed=60 + i),
                         None)]
                groups = ()
            else:  # right at the edge: data may fit and the manifest not, or all fits
                objs = [(Obj("first.bin", free // 2, chunk=256 << 10, seed=70 + i), None),
                        (Obj("edge.bin", free - free // 2 - rng.randint(0, 24 << 10), chunk=256 << 10,
                             seed=80 + i), "late")]
                groups = (("late", ["default"]),)
            cfg = p.write_config(_doc(p, root, objs, groups), "big.conf")
            r = p.run("-q", "run", "backup", config=cfg)
            left = wait_gone(p.marker, 0.5)
            if left:
                probs.append("stages left running: %s" % left)
            entries = os.listdir(root)
            partial = [e for e in entries if e.endswith((".palhm-partial", ".palhm-deleting"))]
            if r.returncode == 1:
                res.note("failed: no space")
                if not NO_SPACE.search(r.stderr):
                    probs.append("no 'no space left on device' line from palhm in stderr: %r" % r.stderr[-400:])
                if partial:
                    probs.append("not rolled back: %s" % partial)
                st2 = os.statvfs(root)
                if st2.f_bavail * st2.f_frsize < free - (64 << 10):
                    probs.append("space not given back: %d bytes free before, %d after"
                                 % (free, st2.f_bavail * st2.f_frsize))
            elif r.returncode == 0:
                res.note("fitted: complete copy")
                new = sorted(set(e for e in entries if not e.endswith(".palhm-partial")) - set(snap))
                if len(new) != 1:
                    probs.append("exit 0 but new copies are %s" % new)
                else:
                    v = p.verify("backup", new[0], config=cfg)
                    if v.returncode != 0:
                        probs.append("the copy that fitted does not verify: %s" % v.stderr[-300:])
                    shutil.rmtree(root / new[0])  # make room again (test housekeeping)
            else:
                probs.append("exit %d (want 1 or 0): %s" % (r.returncode, r.stderr[-400:]))
            now = _snapshot(root)
            lost = 0
            # A run that fitted rotated (nb-copy-limit 3): the newest two older copies stay.
            keep = sorted(snap)[-2:] if r.returncode == 0 else sorted(snap)
            snap = {k: snap[k] for k in keep}
            for prefix, files in snap.items():
                if now.get(prefix) != files:
                    lost += 1
                    probs.append("older copy %s changed or disappeared" % prefix)
            for prefix in snap:
                v = p.verify("backup", prefix, config=small_cfg)
                if v.returncode != 0:
                    probs.append("older copy %s does not verify: %s" % (prefix, v.stderr[-300:]))
            # The disk is usable again.
            r2 = p.run("-q", "run", "backup", config=small_cfg)
            if r2.returncode != 0:
                probs.append("a small backup after the full-disk run failed: %s" % r2.stderr[-300:])
            res.record(probs, lost=lost)
            snap = _snapshot(root)
    finally:
        r = subprocess.run(["umount", str(mnt)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
    return res
