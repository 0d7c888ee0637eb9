# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kills and cancels: a backup killed with SIGKILL, or cancelled with
SIGTERM/SIGINT, at a random moment of its life (making objects, committing,
rotating), then audited straight from the storage, then a new run and
`palhm list` / `palhm verify`."""

from __future__ import annotations

import signal
import time

from lib import Obj, Palhm, Result, wait_for, wait_gone
from targets import LocalfsTarget, S3Target

KILL_GRACE = 0.3
LIMIT = 3  # nb-copy-limit: rotation runs after every successful backup


def _doc(p, target, objs):
    backend, param = target.backend(LIMIT)
    return {"modules": ["aws"] if backend == "aws-s3" else [], "nb-workers": 2,
            "tasks": [{"id": "backup", "type": "backup", "backend": backend, "backend-param": param,
                       "object-groups": [{"id": "late", "depends": ["default"]}],
                       "objects": [o.config(p.marker, **({"group": "late"} if i == len(objs) - 1 else {}))
                                   for i, o in enumerate(objs)]}]}


def _required(prev, now):
    """Complete copies that must still be there: all earlier ones, or, when a
    new copy was completed (rotation may have run), the newest LIMIT-1."""
    if now - prev:
        return set(sorted(prev)[-(LIMIT - 1):]) if LIMIT > 1 else set()
    return set(prev)


class Story:
    def __init__(self, ctx, name, kind):
        self.p = Palhm(ctx, ctx.tmp / name)
        self.target, self.objs = _target(ctx, kind, self.p.workdir)
        self.p.write_config(_doc(self.p, self.target, self.objs))
        self.verified = set()

    def audit(self, probs, when):
        complete, fake, leftovers, uploads = self.target.audit()
        for prefix, why in fake.items():
            probs.append("%s: %s presented as complete: %s" % (when, prefix, why))
        return complete, len(fake), leftovers, uploads

    def list_and_verify(self, probs, complete):
        """`palhm list` must show exactly the complete copies as complete, and
        `palhm verify` must pass on each (once per copy)."""
        fake = 0
        listed = self.p.list("backup")
        shown = set(c["prefix"] for c in listed if c["state"] != "incomplete")
        for prefix in sorted(shown - complete):
            probs.append("palhm list shows %s as %s, but it is not a whole copy"
                         % (prefix, [c["state"] for c in listed if c["prefix"] == prefix][0]))
            fake += 1
        for prefix in sorted(complete - shown):
            probs.append("palhm list does not show complete copy %s as complete" % prefix)
        for prefix in sorted(complete - self.verified):
            r = self.p.verify("backup", prefix)
            if r.returncode != 0:
                probs.append("palhm verify %s: exit %d: %s" % (prefix, r.returncode, r.stderr.strip()[-300:]))
            else:
                self.verified.add(prefix)
        return fake

    def recover(self, probs, prev):
        """The next run must succeed, clean every leftover, lose nothing."""
        r = self.p.run("-q", "run", "backup")
        if r.returncode != 0:
            probs.append("the next run failed (%d): %s" % (r.returncode, r.stderr.strip()[-400:]))
        complete, fake, leftovers, uploads = self.audit(probs, "after the next run")
        if r.returncode == 0 and not (complete - prev):
            probs.append("the next run reported success but made no complete copy")
        if leftovers:
            probs.append("incomplete copies left after the next run: %s" % leftovers)
        if uploads:
            probs.append("unfinished multipart uploads after the next run: %s" % uploads)
        lost = len(_required(prev, complete) - complete)
        if lost:
            probs.append("complete copies lost by the next run: %s" % sorted(_required(prev, complete) - complete))
        fake += self.list_and_verify(probs, complete)
        left = wait_gone(self.p.marker, 2.0)
        if left:
            probs.append("stage processes left running after the next run: %s" % left)
        return complete, lost, fake

    def baseline(self):
        """One clean run, timed: from start to exit, and from the first stage
        to exit. Random moments are drawn within these windows."""
        t0 = time.monotonic()
        proc = self.p.start("-q", "run", "backup")
        wait_for(self.p.children, 60, interval=0.005)
        t1 = time.monotonic()
        _out, err = proc.communicate()
        t2 = time.monotonic()
        if proc.returncode != 0:
            raise RuntimeError("baseline run failed (%d): %s" % (proc.returncode, err))
        complete, fake, _leftovers, _extra = self.target.audit()
        if fake or not complete:
            raise RuntimeError("baseline run made no clean copy: %s" % fake)
        return complete, t2 - t0, t2 - t1

    def moment(self, ctx, proc, whole, working):
        """Sleep until a random moment of the run: a quarter of them anywhere
        from the start (startup, cleanup of leftovers, objects, commit,
        rotation), the rest once the first stage runs (objects, commit, rotation)."""
        if ctx.rng.random() < 0.25:
            time.sleep(ctx.rng.uniform(0.02, whole * 1.1))
            return "from start"
        wait_for(lambda: self.p.children() or proc.poll() is not None, 60, interval=0.005)
        time.sleep(ctx.rng.uniform(0, working * 1.1))
        return "after first stage"


def _objs_localfs():
    return [Obj("data/big.bin", 2 << 20, chunk=64 << 10, delay=0.025, seed=11),
            Obj("small.txt", 10000, seed=12),
            Obj("late/after.bin", 256 << 10, chunk=32 << 10, delay=0.02, seed=13)]


def _objs_s3():
    return [Obj("data/big.bin", 11 << 20, chunk=1 << 20, delay=0.03, seed=21),
            Obj("small.txt", 20000, seed=22),
            Obj("late/after.bin", 300 << 10, chunk=50 << 10, delay=0.15, seed=23)]


def _target(ctx, kind, workdir):
    if kind == "localfs":
        objs = _objs_localfs()
        return LocalfsTarget(workdir / "root", objs), objs
    objs = _objs_s3()
    t = S3Target(ctx.moto_url(), "rel-" + workdir.name.replace("_", "-").lower(), "backup/host", objs)
    t.create_bucket()
    return t, objs


def kills(ctx, kind, n):
    res = Result("kills (%s, SIGKILL)" % kind)
    st = Story(ctx, "kills-%s" % kind, kind)
    prev, whole, working = st.baseline()
    res.notes["run_seconds"] = round(whole, 2)
    for _unused in range(n):
        probs = []
        proc = st.p.start("-q", "run", "backup")
        st.moment(ctx, proc, whole, working)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        res.note("finished before the kill" if proc.returncode == 0 else "killed mid-run")
        # PR_SET_PDEATHSIG kills the stages with palhm: they are gone at once,
        # not when they would have finished on their own.
        left = wait_gone(st.p.marker, KILL_GRACE)
        if left:
            probs.append("stage processes still running %.1f s after palhm was killed: %s" % (KILL_GRACE, left))
        now, fake, leftovers, uploads = st.audit(probs, "right after the kill")
        lost = len(_required(prev, now) - now)
        if lost:
            probs.append("complete copies gone after the kill: %s" % sorted(_required(prev, now) - now))
        if leftovers:
            res.note("incomplete copies left by the kill (expected; cleaned next run)")
        if uploads:
            res.note("unfinished uploads left by the kill (expected; aborted next run)")
        after, lost2, fake2 = st.recover(probs, now)
        res.record(probs, lost=lost + lost2, fake=fake + fake2)
        prev = after
    return res


def cancels(ctx, kind, n):
    res = Result("cancels (%s, SIGTERM/SIGINT)" % kind)
    st = Story(ctx, "cancels-%s" % kind, kind)
    prev, whole, working = st.baseline()
    res.notes["run_seconds"] = round(whole, 2)
    for i in range(n):
        probs = []
        sig = (signal.SIGTERM, signal.SIGINT)[i % 2]
        proc = st.p.start("-q", "run", "backup")
        # Signals are cancellations once palhm runs the task (before that,
        # Python's default actions apply): wait for the first stage.
        if not wait_for(lambda: st.p.children() or proc.poll() is not None, 60, interval=0.005):
            probs.append("no stage started within 60 s")
        time.sleep(ctx.rng.uniform(0, working * 1.05))
        proc.send_signal(sig)
        t_sig = time.monotonic()
        try:
            _out, err = proc.communicate(timeout=60)
        except Exception:  # noqa: BLE001 - a hang is a failure, not a crash of the campaign
            proc.kill()
            _out, err = proc.communicate()
            probs.append("palhm did not exit within 60 s of %s" % sig.name)
        exit_after = time.monotonic() - t_sig
        res.notes["max_exit_seconds_after_signal"] = max(res.notes.get("max_exit_seconds_after_signal", 0),
                                                         round(exit_after, 2))
        left = wait_gone(st.p.marker, 0.5)
        if left:
            probs.append("stage processes still running after palhm exited: %s" % left)
        now, fake, leftovers, uploads = st.audit(probs, "after %s" % sig.name)
        if proc.returncode == 4:
            res.note("exit 4 (cancelled)")
            if "cancel" not in err.lower():
                probs.append("exit 4 without a 'cancelled' message: %r" % err[-300:])
            if now - prev:
                probs.append("cancelled run left a complete copy %s" % sorted(now - prev))
            if leftovers:
                probs.append("cancelled run was not rolled back: %s" % leftovers)
            if uploads:
                probs.append("cancelled run left unfinished uploads: %s" % uploads)
        elif proc.returncode == 0:
            # The signal came after the copy was committed: it must be whole.
            res.note("exit 0 (signal after the commit)")
            if not (now - prev):
                probs.append("exit 0 but no new complete copy")
        elif proc.returncode in (-signal.SIGTERM, -signal.SIGINT) and (now - prev) and not err.strip():
            # The task had finished and palhm had put the default handlers back
            # (cli.main leaves cancel_on_signals before exiting): killed while exiting.
            probs.append("killed by %s (exit %d) after the copy was committed: the signal came after the "
                         "task finished, and palhm no longer handled it" % (sig.name, proc.returncode))
        else:
            probs.append("exit %s after %s (want 4, or 0 when already committed): %s"
                         % (proc.returncode, sig.name, err.strip()[-300:]))
        lost = len(_required(prev, now) - now)
        if lost:
            probs.append("complete copies gone after the cancel: %s" % sorted(_required(prev, now) - now))
        fake += st.list_and_verify(probs, now)
        prev = now
        res.record(probs, lost=lost, fake=fake)
    # The campaign ends with a clean run: nothing left behind by the cancels.
    probs = []
    prev, lost, fake = st.recover(probs, prev)
    if probs or lost or fake:
        res.record(probs, lost=lost, fake=fake)
    return res
