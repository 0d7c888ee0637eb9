# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is every task's data safe right now? The verdict of each task, from its
run history (history.py), its ``max-age`` and, for backup tasks, the copies
on its backend. Read-only: nothing is written, run or locked.

Verdicts, the first that applies:

- ``never-run``: no run of the task is recorded on this host;
- ``failing``: the last run failed (or was cancelled);
- ``no-copy``: a backup task whose backend holds no complete copy (or cannot
  be listed): nothing could be restored;
- ``stale``: ``max-age`` is set and the last success, or a backup's newest
  complete copy, is older than it;
- ``ok``.

Only a copy in state ``complete`` whose PREFIX is not in the future counts
(incomplete, legacy, corrupt or future-dated copies prove nothing).

The document (``palhm status --json``, module palhm_status; stable keys,
documented in docs/config.md)::

    {"format": "palhm-status/1", "hostname", "time" (ISO 8601 UTC),
     "ok": bool (every task ok), "verdict": the worst verdict,
     "counts": {VERDICT: n for every verdict},
     "tasks": [TASK, ...]}   # in config order

    TASK: {"task", "type", "verdict", "ok", "reason" (in words),
           "problems": [every verdict but ok that applies, worst first],
           "max_age": seconds | null, "running": bool (its lock is held now),
           "runs": runs recorded,
           "last_run": RUN + {"age"} | null, "last_success": RUN + {"age"} | null,
           "copies": complete copies | null (not a backup that stores),
           "newest_copy": {"prefix", "age", "size", "objects", "location"} | null,
           "copy_sizes": [{"prefix", "size"}, ...] | null (the complete
               copies counted, oldest first, the last COPY_SIZES_MAX),
           "future_copies": complete copies dated in the future | null,
           "copy_error": why the copies could not be listed | null,
           "drill": the last run of a restore drill of this backup task,
               {"task", "result", "end", "age", "prefix", "error"} | null,
           "backup_task": the backup task a restore drill drills | null}

RUN is a history record; "age" is seconds since it ended (a copy's: since
its PREFIX time).
"""

from __future__ import annotations

import socket
import time

from . import history
from .backends.base import COMPLETE, prefix_time

FORMAT = "palhm-status/1"
OK, STALE, NO_COPY, FAILING, NEVER_RUN = "ok", "stale", "no-copy", "failing", "never-run"
# Worst last: the order a report sorts by and the worst verdict is taken from.
SEVERITY = {OK: 0, STALE: 1, NEVER_RUN: 2, NO_COPY: 3, FAILING: 4}
VERDICTS = tuple(sorted(SEVERITY, key=SEVERITY.get))
# A copy whose PREFIX is further than this in the future is not trusted.
CLOCK_SLACK = 300
COPY_SIZES_MAX = 60
DRILL = "restore-drill"


def human_age(seconds):
    """3d 4h, 2h 5m, 5m 3s, 45s."""
    if seconds is None:
        return "-"
    s = int(max(0, round(seconds)))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return "%dd %dh" % (days, hours)
    if hours:
        return "%dh %dm" % (hours, minutes)
    if minutes:
        return "%dm %ds" % (minutes, s)
    return "%ds" % s


def _with_age(run, now):
    if run is None:
        return None
    out = dict(run)
    end = history.parse_iso(run.get("end"))
    out["age"] = None if end is None else round(now - end, 3)
    return out


def copy_summary(task, now):
    """What a backup task that stores holds: {"copies": complete count,
    "newest": newest complete copy dict, "sizes": [{"prefix", "size"}],
    "future": complete copies dated in the future, "error": why they could
    not be listed}; None for any other task. Shared with the metrics."""
    make = getattr(task, "make_backend", None)
    if task.type != "backup" or make is None:
        return None
    try:
        backend = make()
        if not backend.stores:
            return None
        copies = backend.list_copies()
    except Exception as e:  # noqa: B902 - an unreachable backend is a verdict, not a crash
        from .monitor import error_line
        return {"copies": 0, "newest": None, "sizes": [], "future": 0, "error": error_line(e)}
    good, future = [], 0
    for c in copies:
        if c.state != COMPLETE:
            continue
        t = prefix_time(c.prefix)
        if t is not None and t.timestamp() > now + CLOCK_SLACK:
            future += 1
            continue
        good.append((c, t))
    out = {"copies": len(good), "newest": None, "future": future, "error": None,
           "sizes": [{"prefix": c.prefix, "size": c.size} for c, _t in good[-COPY_SIZES_MAX:]]}
    if good:
        c, t = good[-1]
        out["newest"] = {"prefix": c.prefix, "age": None if t is None else round(now - t.timestamp(), 3),
                         "size": c.size, "objects": c.objects, "location": c.location}
    return out


def _copies(task, now):
    """(complete count, newest complete copy dict, error, summary) of a
    backup task that stores; Nones for any other task."""
    summary = copy_summary(task, now)
    if summary is None:
        return None, None, None, None
    return summary["copies"], summary["newest"], summary["error"], summary


def _last_drill(drills, now):
    """The last run recorded of any of the restore drill tasks `drills`."""
    last = None
    for drill_task in drills:
        runs = history.read(drill_task.id)["runs"]
        if runs and (last is None or runs[-1]["end"] > last["end"]):
            last = runs[-1]
    if last is None:
        return None
    end = history.parse_iso(last.get("end"))
    return {"task": last["task"], "result": last["result"], "end": last["end"],
            "age": None if end is None else round(now - end, 3), "prefix": last.get("prefix"),
            "error": last.get("error")}


def _running(task):
    try:
        from .runtime import lock_is_held
        return lock_is_held("task-" + task.id, "task %r" % task.id) is not None
    except Exception:  # noqa: B902 - an unusable lock dir says nothing about the task
        return False


def task_status(task, now=None, drills=()):
    """The TASK entry of one task (see the module docstring); `drills`: the
    restore drill tasks of this backup task."""
    now = time.time() if now is None else now
    hist = history.read(task.id)
    runs = list(hist["runs"])
    running = _running(task)
    if hist["unfinished"] is not None and not running:
        # Its run is gone without a record: it died.
        runs.append(history.died_run(task.id, task.type, hist["unfinished"]))
    last_run = _with_age(runs[-1] if runs else None, now)
    last_success = _with_age(hist["last_success"], now)
    ncopies, newest, copy_error, summary = _copies(task, now)
    max_age = task.max_age
    problems, reasons = [], []
    if last_run is None:
        problems.append(NEVER_RUN)
        reasons.append("no run of the task is recorded on this host")
    elif last_run["result"] != "success":
        problems.append(FAILING)
        reasons.append("the last run %s %s ago (exit code %s): %s"
                       % ("was cancelled" if last_run["result"] == "cancelled" else "failed",
                          human_age(last_run["age"]), "none" if last_run["exit_code"] is None else last_run["exit_code"],
                          last_run.get("error") or "no reason"))
    if ncopies is not None and newest is None:
        problems.append(NO_COPY)
        if copy_error:
            reasons.append("its copies cannot be listed: %s" % copy_error)
        else:
            reasons.append("the backend holds no complete copy")
    if max_age is not None:
        if last_run is not None and last_success is None:
            problems.append(STALE)
            reasons.append("no run ever succeeded (max-age %s)" % human_age(max_age))
        elif last_success is not None and last_success["age"] is not None and last_success["age"] > max_age:
            problems.append(STALE)
            reasons.append("the last success was %s ago, more than max-age %s"
                           % (human_age(last_success["age"]), human_age(max_age)))
        if newest is not None and newest["age"] is not None and newest["age"] > max_age:
            if STALE not in problems:
                problems.append(STALE)
            reasons.append("the newest complete copy %s is %s old, more than max-age %s"
                           % (newest["prefix"], human_age(newest["age"]), human_age(max_age)))
    problems.sort(key=SEVERITY.get, reverse=True)
    if NEVER_RUN in problems:
        verdict = NEVER_RUN
    else:
        verdict = problems[0] if problems else OK
    if verdict == OK:
        reason = "the last run succeeded %s ago" % human_age(last_run["age"])
        if newest is not None:
            reason += "; newest complete copy %s, %s old" % (newest["prefix"], human_age(newest["age"]))
        if max_age is not None:
            reason += " (max-age %s)" % human_age(max_age)
    else:
        reason = "; ".join(reasons)
    return {"task": task.id, "type": task.type, "verdict": verdict, "ok": verdict == OK, "reason": reason,
            "problems": problems, "max_age": max_age, "running": running, "runs": len(runs),
            "last_run": last_run, "last_success": last_success, "copies": ncopies, "newest_copy": newest,
            "copy_sizes": None if summary is None else summary["sizes"],
            "future_copies": None if summary is None else summary["future"],
            "copy_error": copy_error,
            "drill": _last_drill(drills, now) if task.type == "backup" else None,
            "backup_task": getattr(task, "backup_task", None) if task.type == DRILL else None}


def status(cfg, task_id=None, now=None):
    """The status document of every task of `cfg`, or of `task_id` only."""
    now = time.time() if now is None else now
    tasks = [cfg.task(task_id)] if task_id is not None else list(cfg.tasks.values())
    drills = {}
    for t in cfg.tasks.values():
        if t.type == DRILL:
            drills.setdefault(t.backup_task, []).append(t)
    entries = [task_status(t, now, drills.get(t.id, ())) for t in tasks]
    counts = dict((v, 0) for v in VERDICTS)
    for e in entries:
        counts[e["verdict"]] += 1
    worst = max((e["verdict"] for e in entries), key=SEVERITY.get, default=OK)
    return {"format": FORMAT, "hostname": socket.gethostname(), "time": history.iso(now),
            "ok": all(e["ok"] for e in entries), "verdict": worst, "counts": counts, "tasks": entries}
