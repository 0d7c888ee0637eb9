# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input: hypothesis fuzzing of whole configs and of palhm_backup's
module arguments, in fuzz_worker.py (its own process, so the engine under
test, possibly a planted copy, is the one imported)."""

from __future__ import annotations

import json
import os
import subprocess

from lib import PY, HERE, Result


def _run(ctx, kind, cases, title):
    res = Result(title)
    work = ctx.tmp / ("fuzz-" + kind)
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PALHM_"))}
    env["PYTHONPATH"] = str(ctx.engine_dir)
    env["PALHM_RUN_DIR"] = str(work / "run")
    env["PALHM_STATE_DIR"] = str(work / "state")
    p = subprocess.run([PY, str(HERE / "fuzz_worker.py"), kind, str(cases), str(ctx.seed), str(work)], env=env,
                       cwd=str(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=3600, check=False)
    if p.returncode != 0:
        raise RuntimeError("fuzz worker failed (%d): %s" % (p.returncode, p.stderr[-3000:]))
    out = json.loads(p.stdout.strip().splitlines()[-1])
    res.runs = out["cases"]
    res.failures = out["failed_cases"]
    res.notes.update({"accepted": out["accepted"], "rejected": out["rejected"]})
    for k, v in out["failure_kinds"].items():
        res.notes["fail[%s]" % k[:40]] = v
    for f in out["failures"]:
        res.problems.append("%s | mutations %s | input %s%s" % (
            f["problem"], f["mutations"], f["input"][:300],
            (" | " + f["traceback"].strip().splitlines()[-1]) if f.get("traceback") else ""))
    return res


def bad_input(ctx, cases):
    return _run(ctx, "config", cases, "bad input (hypothesis, configs)")


def module_args(ctx, cases):
    return _run(ctx, "module-args", cases, "bad input (hypothesis, module args)")
