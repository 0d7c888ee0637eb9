# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flaky S3: palhm talks to moto through s3proxy.FaultProxy, which answers
500 / 503 / SlowDown, resets connections, stalls, drops the reply of a
request the server did carry out, and now and then denies a request (403,
not retryable). Every run must either succeed with a copy that verifies, or
fail and leave nothing that looks complete (leftovers must carry the
in-progress marker and go away with the next run). Audits and `palhm
verify` go straight to moto, not through the proxy."""

from __future__ import annotations

from lib import Obj, Palhm, Result, wait_gone
from s3proxy import FaultProxy
from targets import S3Target

RATES = {"500": 0.03, "503": 0.02, "slowdown": 0.03, "reset": 0.03, "stall": 0.02, "lost-reply": 0.02,
         "denied": 0.005}
DENIED_PART = 0.15  # of UploadPart requests
LIMIT = 3


def _doc(p, backend, param, objs):
    return {"modules": ["aws"], "tasks": [{"id": "backup", "type": "backup", "backend": backend,
                                           "backend-param": param,
                                           "objects": [o.config(p.marker) for o in objs]}]}


def flaky(ctx, n):
    res = Result("flaky S3 (%d%% requests faulty, %d%% parts denied)"
                 % (round(100 * sum(RATES.values())), round(100 * DENIED_PART)))
    objs = [Obj("data/big.bin", 13 << 20, chunk=1 << 20, seed=101), Obj("small.txt", 20000, seed=102)]
    moto = ctx.moto_url()
    p = Palhm(ctx, ctx.tmp / "flaky")
    target = S3Target(moto, "rel-" + p.workdir.name, "backup/flaky", objs)
    target.create_bucket()
    proxy = FaultProxy(moto, dict(RATES, **{"denied-part": DENIED_PART}), seed=ctx.seed).start()
    try:
        flaky_cfg = p.write_config(_doc(p, *target.backend(LIMIT, endpoint=proxy.url), objs), "flaky.conf")
        direct_cfg = p.write_config(_doc(p, *target.backend(LIMIT), objs), "direct.conf")
        prev = target.audit()[0]
        verified = set()
        for i in range(n + 1):
            final = i == n
            if final:
                # A last run with the faults off: whatever earlier runs left is cleaned up.
                proxy.plan.enabled = False
            probs = []
            r = p.run("-q", "run", "backup", config=flaky_cfg, timeout=900)
            complete, fake, leftovers, uploads = target.audit()
            for prefix, why in fake.items():
                probs.append("%s presented as complete: %s" % (prefix, why))
            new = complete - prev
            if r.returncode == 0:
                res.note("succeeded (through retries)" if not final else "final clean run")
                if len(new) != 1:
                    probs.append("exit 0 but new complete copies are %s" % sorted(new))
                if leftovers or uploads:
                    probs.append("a successful run left incomplete copies %s / unfinished uploads %s"
                                 % (leftovers, uploads))
            elif r.returncode == 1 and not final:
                if new:
                    # Committed, then rotation or cleanup failed: the copy itself is whole.
                    res.note("failed after the commit (copy complete)")
                else:
                    res.note("failed, rolled back")
                if leftovers or uploads:
                    res.note("rollback cut short by faults (left marked incomplete, cleaned next run)")
                else:
                    res.note("rolled back completely")
                if "palhm: " not in r.stderr:
                    probs.append("failed without an error line: %r" % r.stderr[-300:])
            else:
                probs.append("exit %d: %s" % (r.returncode, r.stderr.strip()[-400:]))
            required = set(sorted(prev)[-(LIMIT - 1):]) if new else set(prev)
            lost = len(required - complete)
            if lost:
                probs.append("complete copies lost: %s" % sorted(required - complete))
            listed = p.list("backup", config=direct_cfg)
            shown = set(c["prefix"] for c in listed if c["state"] != "incomplete")
            extra_fake = len(shown - complete)
            if extra_fake:
                probs.append("palhm list shows %s as complete" % sorted(shown - complete))
            for prefix in sorted(complete - verified):
                v = p.verify("backup", prefix, config=direct_cfg)
                if v.returncode != 0:
                    probs.append("verify %s failed: %s" % (prefix, v.stderr.strip()[-300:]))
                else:
                    verified.add(prefix)
            left = wait_gone(p.marker, 1.0)
            if left:
                probs.append("stage processes left: %s" % left)
            res.record(probs, lost=lost, fake=len(fake) + extra_fake)
            prev = complete
    finally:
        counts = proxy.counts
        proxy.stop()
    for k, v in counts.items():
        res.notes["proxy_" + k] = v
    return res
