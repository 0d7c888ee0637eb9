# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stalled S3 (issue 12 item 10): palhm talks to moto through
tests/helpers/tcp_proxy.py, which the scenario stalls at a random moment of
the upload: from then on it accepts connections and neither reads nor
answers (a full Ceph OSD, a dead link), so part threads block in socket
send. Runs alternate between a SIGTERM sent under the stall and no signal
at all. With the scenario's short deadlines (docs/config.md) the run must
end within the documented bounds (exit 4 after a SIGTERM, 1 without), with
one clear message naming the store and no traceback, leave no stage
process, never a copy that looks complete, and the next run against the
working store must remove whatever the stalled one could not."""

from __future__ import annotations

import time

from lib import REPO, Obj, Palhm, Result, wait_for, wait_gone
from targets import S3Target

SHORT = {"connect-timeout": 1, "read-timeout": 2, "max-attempts": 2, "abort-timeout": 2}
# A request's budget: max-attempts x (connect-timeout + read-timeout) + backoff (< 1 s for 2 tries).
REQUEST_BUDGET = 2 * (1 + 2) + 1
ROLLBACK = 2 + 1      # abort-timeout, plus the floor the prefix sweep always gets
STAGE_GRACE = 2       # stages get 2 s to end after SIGTERM
SLACK = 5.0           # process start, a loaded machine
CANCEL_BOUND = ROLLBACK + STAGE_GRACE + SLACK
FAIL_BOUND = REQUEST_BUDGET + ROLLBACK + STAGE_GRACE + SLACK
LIMIT = 3


def _doc(p, target, objs, endpoint=None):
    backend, param = target.backend(LIMIT, endpoint=endpoint)
    param.update(SHORT)
    return {"modules": ["aws"], "tasks": [{"id": "backup", "type": "backup", "backend": backend,
                                           "backend-param": param,
                                           "objects": [o.config(p.marker) for o in objs]}]}


def _proxy(moto):
    import sys  # pylint: disable=import-outside-toplevel
    helpers = str(REPO / "tests" / "helpers")
    if helpers not in sys.path:
        sys.path.insert(0, helpers)
    from tcp_proxy import TcpProxy  # pylint: disable=import-outside-toplevel
    return TcpProxy(moto).start()


def _uploads(target):
    return target.client.list_multipart_uploads(Bucket=target.bucket, Prefix=target.root + "/").get("Uploads")


def stalled(ctx, n):
    res = Result("stalled S3 (SIGTERM under a stall, or none)")
    # ~40 MiB at ~10 MiB/s in 5 MiB parts: the stall lands mid-upload.
    objs = [Obj("data/stream.bin", 40 << 20, chunk=256 << 10, delay=0.025, seed=201),
            Obj("small.txt", 3000, seed=202)]
    moto = ctx.moto_url()
    p = Palhm(ctx, ctx.tmp / "stalled")
    target = S3Target(moto, "rel-" + p.workdir.name, "backup/stalled", objs)
    target.create_bucket()
    direct_cfg = p.write_config(_doc(p, target, objs), "direct.conf")
    r = p.run("-q", "run", "backup", config=direct_cfg)
    if r.returncode != 0:
        res.record(["the baseline run failed: %s" % r.stderr.strip()[-300:]])
        return res
    prev = target.audit()[0]
    location = "s3://%s/%s" % (target.bucket, target.root)
    for i in range(n):
        probs = []
        signal_it = i % 2 == 0
        proxy = _proxy(moto)
        try:
            cfg = p.write_config(_doc(p, target, objs, endpoint=proxy.url), "stalled.conf")
            proc = p.start("run", "backup", config=cfg)
            # Stall once the multipart upload has begun, a random moment later.
            begun = wait_for(lambda: _uploads(target) or proc.poll() is not None, 60, interval=0.05)
            if not begun or proc.poll() is not None:
                probs.append("no multipart upload began (exit %s)" % proc.poll())
            time.sleep(ctx.rng.uniform(0.0, 1.5))
            proxy.stall()
            if signal_it:
                time.sleep(ctx.rng.uniform(0.3, 1.5))  # parts in flight block in send
                proc.terminate()
            t0 = time.monotonic()
            bound = CANCEL_BOUND if signal_it else FAIL_BOUND
            try:
                _out, err = proc.communicate(timeout=bound + 60)
            except Exception:  # noqa: BLE001 - a hang is a finding, not a crash of the campaign
                proc.kill()
                _out, err = proc.communicate()
                err += "\n(killed: still running %.0f s after %s)" % (bound + 60, "SIGTERM" if signal_it else "the stall")
            took = time.monotonic() - t0
        finally:
            proxy.stop()
        key = "max_exit_seconds_after_%s" % ("sigterm" if signal_it else "stall")
        res.notes[key] = max(res.notes.get(key, 0), round(took, 1))
        want = 4 if signal_it else 1
        when = "SIGTERM" if signal_it else "the stall"
        if proc.returncode != want:
            probs.append("exit %s (want %d) after %s: %s" % (proc.returncode, want, when, err.strip()[-300:]))
        elif took > bound:
            probs.append("ended %.1f s after %s (bound %.0f s)" % (took, when, bound))
        else:
            res.note("cancelled within the bound" if signal_it else "failed within the bound")
        if "Traceback" in err:
            probs.append("a traceback: %s" % err.strip()[-300:])
        if location not in err:
            probs.append("the message does not name the store %s: %r" % (location, err.strip()[-300:]))
        left = wait_gone(p.marker, 2.0)
        if left:
            probs.append("stage processes left: %s" % left)
        complete, fake, leftovers, uploads = target.audit()
        for prefix, why in fake.items():
            probs.append("%s presented as complete: %s" % (prefix, why))
        if complete - prev:
            probs.append("a stalled run made a complete copy %s" % sorted(complete - prev))
        if leftovers or uploads:
            res.note("left for the next run (stalled rollback)")
        # The next run against the working store removes what the stalled one could not.
        r = p.run("-q", "run", "backup", config=direct_cfg)
        now, fake2, leftovers2, uploads2 = target.audit()
        if r.returncode != 0:
            probs.append("the next run failed: %s" % r.stderr.strip()[-300:])
        if leftovers2 or uploads2:
            probs.append("the next run left incomplete copies %s / unfinished uploads %s" % (leftovers2, uploads2))
        required = set(sorted(prev)[-(LIMIT - 1):]) if now - prev else set(prev)
        lost = len(required - now)
        if lost:
            probs.append("complete copies lost: %s" % sorted(required - now))
        res.record(probs, lost=lost, fake=len(fake) + len(fake2))
        prev = now
    return res
