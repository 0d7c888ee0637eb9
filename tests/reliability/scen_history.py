# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run history and status under load (issue 16): rounds of six tasks run
side by side (two of them failing) plus refused second runs of a running
task, while `palhm status --json` is read again and again; then a backup
killed with SIGKILL at a random moment and the run after it; then more runs
than the history keeps. Must hold: every history file parses and holds
exactly the runs made (a refused run is none), at most 50; status never
shows a torn or lost history (a task that ran is never `never-run`), names
failing tasks failing and the others ok; a killed run is `failing` until the
next run, which records it; a complete copy dated in the future never counts.
Every round, kill and check is a run of the table."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time

from lib import Obj, Palhm, Result, wait_gone, wait_for

TASKS = ["ok%d" % i for i in range(4)] + ["bad0", "bad1"]
MAX_RUNS = 50


def _routine(p, tid, fail):
    code = "import sys, time; time.sleep(0.2); sys.exit(%d)" % (3 if fail else 0)
    return {"id": tid, "type": "routine", "routine": [
        {"type": "exec-inline", "argv": [p.env.get("PALHM_PY", "python3"), "-c", code]}]}


def _history(p, tid):
    path = p.workdir / "state" / "history" / ("%s.json" % tid)
    return json.loads(path.read_text())


def _status(p, *args):
    res = p.run("status", "--json", *args)
    if res.returncode not in (0, 7):
        raise RuntimeError("palhm status exited %d: %s" % (res.returncode, res.stderr.strip()[-300:]))
    return res.returncode, {t["task"]: t for t in json.loads(res.stdout)["tasks"]}


def history(ctx, rounds):
    import sys
    res = Result("history and status (6 tasks side by side, kill, bound)")
    p = Palhm(ctx, ctx.tmp / "history")
    p.env["PALHM_PY"] = sys.executable
    slow = [Obj("slow.bin", 2 << 20, chunk=64 << 10, delay=0.05, seed=31)]
    backup = {"id": "backup", "type": "backup", "backend": "localfs",
              "backend-param": {"root": str(p.workdir / "root")}, "objects": [o.config(p.marker) for o in slow]}
    hold = {"id": "hold", "type": "routine", "routine": [
        {"type": "exec-inline", "argv": [sys.executable, "-c", "import time; time.sleep(5)"]}]}
    p.write_config({"tasks": [_routine(p, t, t.startswith("bad")) for t in TASKS] + [backup, hold],
                    "metrics": {"path": str(p.workdir / "metrics" / "palhm.prom")}})
    made = dict((t, 0) for t in TASKS)

    # 1. Rounds of tasks side by side, refused runs, status read all along.
    for rnd in range(rounds):
        seen_runs = set(t for t in TASKS if made[t])
        torn = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    _code, st = _status(p)
                except (RuntimeError, ValueError) as e:
                    torn.append("status unreadable: %s" % e)
                    continue
                for t in seen_runs:
                    if st[t]["verdict"] == "never-run":
                        torn.append("task %s that ran shows never-run (torn or lost history)" % t)
                time.sleep(0.05)

        poller = threading.Thread(target=poll)
        poller.start()
        holder = p.start("-q", "run", "hold")

        def holding():
            try:
                return (_history(p, "hold").get("unfinished") or {}).get("pid") == holder.pid
            except (OSError, ValueError):
                return False

        if not wait_for(holding, 20):
            res.record(["the holding run of hold never marked its start"])
        refused = [p.start("-q", "run", "hold") for _unused in range(2)]
        procs = [(t, p.start("-q", "run", t)) for t in TASKS]
        probs = []
        for t, proc in procs:
            proc.communicate(timeout=120)
            made[t] += 1
            want = 1 if t.startswith("bad") else 0
            if proc.returncode != want:
                probs.append("task %s exited %d (want %d)" % (t, proc.returncode, want))
        for proc in refused:
            proc.communicate(timeout=120)
            if proc.returncode != 3:
                probs.append("a second run of a running task exited %d (want 3)" % proc.returncode)
        holder.communicate(timeout=120)
        stop.set()
        poller.join()
        probs.extend(sorted(set(torn))[:3])
        for t in TASKS:
            try:
                runs = _history(p, t)["runs"]
            except (OSError, ValueError) as e:
                probs.append("history of %s unreadable: %s" % (t, e))
                continue
            if len(runs) != min(made[t], MAX_RUNS):
                probs.append("history of %s holds %d runs, %d were made" % (t, len(runs), made[t]))
        if len(_history(p, "hold")["runs"]) != rnd + 1:
            probs.append("refused runs of hold were recorded (%d runs after %d rounds)"
                         % (len(_history(p, "hold")["runs"]), rnd + 1))
        _code, st = _status(p)
        for t in TASKS:
            want = "failing" if t.startswith("bad") else "ok"
            if st[t]["verdict"] != want:
                probs.append("task %s is %s (want %s): %s" % (t, st[t]["verdict"], want, st[t]["reason"]))
        res.record(probs)

    # 2. A backup killed at a random moment, then the run after it.
    for _unused in range(max(1, rounds)):
        probs = []
        proc = p.start("-q", "run", "backup")
        time.sleep(ctx.rng.uniform(0.3, 1.8))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        wait_gone(p.marker, 5.0)
        _code, st = _status(p, "backup")
        hfile = p.workdir / "state" / "history" / "backup.json"
        doc = json.loads(hfile.read_text()) if hfile.exists() else {"runs": [], "unfinished": None}
        runs = doc["runs"]
        finished = bool(runs) and runs[-1]["pid"] == proc.pid and runs[-1]["result"] == "success"
        started = (doc.get("unfinished") or {}).get("pid") == proc.pid
        if finished:
            res.note("kill came after the run recorded its end")
        elif not started:
            res.note("kill came before the run started")
        if started and st["backup"]["verdict"] != "failing":
            probs.append("after a SIGKILL the backup is %s (want failing): %s"
                         % (st["backup"]["verdict"], st["backup"]["reason"]))
        again = p.run("-q", "run", "backup")
        if again.returncode != 0:
            probs.append("the run after the kill exited %d: %s" % (again.returncode, again.stderr[-300:]))
        runs = _history(p, "backup")["runs"]
        if started and not any(r["pid"] == proc.pid and r["result"] == "failure" for r in runs):
            probs.append("the killed run (pid %d) is not in the history after the next run" % proc.pid)
        _code, st = _status(p, "backup")
        if st["backup"]["verdict"] != "ok":
            probs.append("after a good run the backup is %s: %s" % (st["backup"]["verdict"], st["backup"]["reason"]))
        res.record(probs)

    # 3. A complete copy dated in the future does not count.
    probs = []
    root = p.workdir / "root"
    copies = [c for c in p.list("backup") if c["complete"]]
    future = "2099-01-01T00:00:00+00:00"
    shutil.copytree(root / copies[-1]["prefix"], root / future)
    for c in copies:
        shutil.rmtree(root / c["prefix"])
    manifest = root / future / ".palhm-manifest.json"
    doc = json.loads(manifest.read_text())
    doc["prefix"] = future
    manifest.write_text(json.dumps(doc))
    _code, st = _status(p, "backup")
    if st["backup"]["verdict"] != "no-copy":
        probs.append("with only a copy dated 2099 the backup is %s (want no-copy)" % st["backup"]["verdict"])
    res.record(probs)

    # 4. More runs than the history keeps.
    probs = []
    for _unused in range(MAX_RUNS + 5 - made["bad0"]):
        p.run("-q", "run", "bad0")
        made["bad0"] += 1
    doc = _history(p, "bad0")
    if len(doc["runs"]) != MAX_RUNS:
        probs.append("after %d runs the history holds %d (want %d)" % (made["bad0"], len(doc["runs"]), MAX_RUNS))
    res.record(probs)
    left = wait_gone(p.marker, 1.0)
    if left:
        res.record(["stage processes left: %s" % left])
    return res
