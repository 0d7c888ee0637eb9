# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrency: 20 simultaneous `palhm run` of one task: exactly one runs
and makes one complete copy, the 19 others exit 3 with the lock message
before it finishes. Two different tasks (own roots) started together both
succeed, overlapping in time. Two different tasks sharing one root: the
root lock lets one run and stops the other (exit 3). Every invocation is a
run of the table."""

from __future__ import annotations

import threading
import time

from lib import Obj, Palhm, Result, wait_gone
from targets import LocalfsTarget

N = 20


def _task(p, tid, root, objs):
    return {"id": tid, "type": "backup", "backend": "localfs", "backend-param": {"root": str(root)},
            "objects": [o.config(p.marker) for o in objs]}


def _start_all(p, tasks):
    procs = []
    for t in tasks:
        procs.append((t, time.monotonic(), p.start("-q", "run", t)))
    out = [None] * len(procs)

    def reap(i, t, t0, proc):
        _out, err = proc.communicate(timeout=600)
        out[i] = (t, t0, time.monotonic(), proc.returncode, err)

    threads = [threading.Thread(target=reap, args=(i,) + x) for i, x in enumerate(procs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return out


def concurrency(ctx, rounds):
    res = Result("concurrency (%d runs of one task, 2+2 side by side)" % N)
    p = Palhm(ctx, ctx.tmp / "concurrency")
    # The holder writes for ~6 s: every loser must have started and given up by then.
    slow = [Obj("slow.bin", 1 << 20, chunk=64 << 10, delay=0.4, seed=91)]
    quick = [Obj("q.bin", 256 << 10, chunk=32 << 10, delay=0.1, seed=92)]
    roots = {t: p.workdir / ("root-" + t) for t in ("one", "a", "b", "shared")}
    p.write_config({"tasks": [_task(p, "one", roots["one"], slow), _task(p, "a", roots["a"], quick),
                              _task(p, "b", roots["b"], quick), _task(p, "c", roots["shared"], slow),
                              _task(p, "d", roots["shared"], slow)]})
    targets = {"one": LocalfsTarget(roots["one"], slow), "a": LocalfsTarget(roots["a"], quick),
               "b": LocalfsTarget(roots["b"], quick), "shared": LocalfsTarget(roots["shared"], slow)}
    loser_max = 0.0
    for _unused in range(rounds):
        before = {k: t.audit()[0] for k, t in targets.items()}
        # 1. Twenty runs of one task.
        out = _start_all(p, ["one"] * N)
        winners = [o for o in out if o[3] == 0]
        win_end = max((o[2] for o in winners), default=None)
        for t, t0, t1, rc, err in out:
            probs = []
            if rc == 3:
                if "already running" not in err:
                    probs.append("exit 3 without the lock message: %r" % err[-200:])
                if win_end is not None and t1 > win_end:
                    probs.append("a second run waited for the first instead of failing fast")
                loser_max = max(loser_max, t1 - t0)
            elif rc != 0:
                probs.append("exit %d (want 0 for one run, 3 for the others): %s" % (rc, err[-300:]))
            res.record(probs)
        if len(winners) != 1:
            res.record(["%d of %d simultaneous runs ran (want exactly 1)" % (len(winners), N)])
        complete, fake, leftovers, _extra = targets["one"].audit()
        new = complete - before["one"]
        if len(new) != 1 or fake or leftovers:
            res.record(["after %d simultaneous runs: new complete copies %s, broken %s, leftovers %s"
                        % (N, sorted(new), fake, leftovers)], fake=len(fake))
        # 2. Two different tasks side by side, own roots: both run, overlapping.
        out = _start_all(p, ["a", "b"])
        (_task_a, a0, a1, arc, aerr), (_task_b, b0, b1, brc, berr) = out
        for tid, rc, err in (("a", arc, aerr), ("b", brc, berr)):
            probs = [] if rc == 0 else ["task %s beside another task: exit %d: %s" % (tid, rc, err[-300:])]
            complete, fake, leftovers, _extra = targets[tid].audit()
            if len(complete - before[tid]) != 1 or fake or leftovers:
                probs.append("task %s: new complete copies %s, broken %s" % (tid, sorted(complete - before[tid]),
                                                                             fake))
            res.record(probs, fake=len(fake))
        if not (a1 > b0 and b1 > a0):
            res.note("a and b did not overlap in time (load)")
        # 3. Two different tasks into one root: the root lock lets one run.
        out = _start_all(p, ["c", "d"])
        rcs = sorted(o[3] for o in out)
        for t, t0, t1, rc, err in out:
            probs = []
            if rc == 3 and "a backup into" not in err:
                probs.append("exit 3 without the root lock message: %r" % err[-200:])
            res.record(probs)
        if rcs != [0, 3]:
            res.record(["two tasks sharing a root: exits %s (want one 0 and one 3)" % rcs])
        left = wait_gone(p.marker, 1.0)
        if left:
            res.record(["stage processes left: %s" % left])
    res.notes["slowest_lock_refusal_s"] = round(loser_max, 2)
    return res
