# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run history: what each run of each task did, kept on the host.

Every run of a task goes through Runtime.run_task (the CLI, the modules, cron
and systemd timers, a routine's task pointer), which calls record() once the
run ended. A run refused because another run of the task holds its lock is not
a run and is not recorded (the run holding the lock records its own outcome);
check mode records nothing.

One file per task, ``STATE_DIR/history/TASK.json`` (STATE_DIR: see
runtime.state_dir(); a task id that is not a plain file name is hashed like
lock names are)::

    {"format": "palhm-history/1", "task": ID,
     "runs": [RUN, ...],          # oldest first, the last MAX_RUNS runs
     "last_success": RUN | null,  # kept even when it left "runs"
     "unfinished": {"start", "pid", "parent"} | null}

"unfinished" is written when a run starts and cleared by its record: one
left behind by a run that is no longer running (its lock is free) is a run
that died without recording its end (SIGKILL, OOM killer, power loss).
`palhm status` calls that task failing, and the next run of the task turns it
into a RUN (see died_run(): result "failure", exit_code null, end = start).

RUN (stable keys, documented in docs/config.md)::

    task, type, start, end (ISO 8601 UTC to the second), duration (seconds),
    result ("success", "failure", "cancelled"), exit_code (0, or the palhm
    command's exit code for the error), bytes, objects, prefix (backup
    tasks: what the run stored; restore drills: what the drill read and the
    copy it drilled; null otherwise or when it failed), error
    (one line, see monitor.error_line: never a stage's arguments or stderr,
    credentials scrubbed; null on success), parent (the routine whose task
    pointer ran it, else null), pid.

Invariants:
- The file is replaced atomically (temporary file in the same directory,
  fsync, rename, fsync of the directory) while holding an flock on
  ``history/.lock``: concurrent runs of different tasks (and processes) never
  lose each other's records, and a reader never sees a torn file.
- A file that does not parse (torn by hand, foreign) reads as no history; the
  next record replaces it.
- The state directory and history/ are made 0700 and refused (a warning,
  nothing written) when another user could write in them; the lock file is
  never opened through a symlink (fsutil).
- record() never raises: a history that cannot be written is a warning, never
  the task's failure (the backup was made).
"""

from __future__ import annotations

import datetime
import json
import os

from . import fsutil
from .errors import CancelledError, exit_code_of

FORMAT = "palhm-history/1"
MAX_RUNS = 50
LOCK_WAIT = 10.0
RESULTS = ("success", "failure", "cancelled")


def history_dir():
    """STATE_DIR/history."""
    from .runtime import state_dir
    return os.path.join(state_dir(), "history")


def path_of(task_id, directory=None):
    from .runtime import safe_name
    return os.path.join(directory or history_dir(), safe_name(task_id) + ".json")


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).replace(microsecond=0).isoformat()


def parse_iso(text):
    """Unix time of an ISO 8601 string this module wrote, or None."""
    try:
        dt = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def make_run(rt, task, result, error, started, ended):
    """The RUN record of one run (see the module docstring)."""
    from .monitor import error_line
    if error is None:
        outcome = "success"
    elif isinstance(error, (CancelledError, KeyboardInterrupt)):
        outcome = "cancelled"
    else:
        outcome = "failure"
    run = {"task": task.id, "type": task.type, "start": iso(started), "end": iso(ended),
           "duration": round(max(0.0, ended - started), 3), "result": outcome,
           "exit_code": 0 if error is None else exit_code_of(error),
           "bytes": None, "objects": None, "prefix": None,
           "error": None if error is None else error_line(error),
           "parent": None, "pid": os.getpid()}
    running = getattr(rt, "_running", None) or []
    if len(running) > 1:
        run["parent"] = running[-2]
    if task.type == "restore-drill" and error is None and isinstance(result, dict):
        # What the drill read and from which copy.
        run["bytes"] = result.get("bytes")
        run["objects"] = len(result.get("objects") or [])
        run["prefix"] = result.get("prefix")
    if task.type == "backup" and error is None and isinstance(result, dict):
        if isinstance(result.get("bytes"), int):
            run["bytes"] = result["bytes"]
        if isinstance(result.get("objects"), list):
            run["objects"] = len(result["objects"])
        if result.get("location") is not None:
            # null backend: nothing was stored under a prefix.
            run["prefix"] = result.get("prefix")
    return run


DIED = "the run ended without recording its outcome (killed, crashed or the host lost power)"


def died_run(task_id, task_type, unfinished):
    """The RUN of a run that left `unfinished` behind and is gone."""
    return {"task": task_id, "type": task_type, "start": unfinished["start"], "end": unfinished["start"],
            "duration": None, "result": "failure", "exit_code": None, "bytes": None, "objects": None,
            "prefix": None, "error": DIED, "parent": unfinished.get("parent"), "pid": unfinished.get("pid")}


def _valid_run(run):
    return isinstance(run, dict) and run.get("result") in RESULTS and parse_iso(run.get("end")) is not None


def read(task_id, directory=None):
    """{"runs": [...], "last_success": RUN or None, "unfinished": dict or
    None} of a task (empty when it has none, or its file does not parse)."""
    out = {"runs": [], "last_success": None, "unfinished": None}
    try:
        with open(path_of(task_id, directory), "r", encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return out
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("task") != task_id:
        return out
    runs = doc.get("runs")
    if isinstance(runs, list):
        out["runs"] = [r for r in runs if _valid_run(r)][-MAX_RUNS:]
    last = doc.get("last_success")
    if _valid_run(last) and last.get("result") == "success":
        out["last_success"] = last
    unfinished = doc.get("unfinished")
    if isinstance(unfinished, dict) and parse_iso(unfinished.get("start")) is not None:
        out["unfinished"] = unfinished
    for r in reversed(out["runs"]):
        if r["result"] == "success":
            if out["last_success"] is None or r["end"] >= out["last_success"]["end"]:
                out["last_success"] = r
            break
    return out


def _lock(directory):
    """flock on history/.lock, waited for at most LOCK_WAIT seconds."""
    path = os.path.join(directory, ".lock")
    return fsutil.WaitedLock(lambda: fsutil.open_private_file(path, "history lock file", os.O_RDWR | os.O_CREAT),
                             LOCK_WAIT)


def _ensure_dir(directory):
    """The state directory and its history/ made 0700 when missing, and
    refused when another user could write in them (fsutil)."""
    fsutil.private_dir(os.path.dirname(directory), "state directory")
    fsutil.private_dir(directory, "history directory")


def _update(task_id, change, directory=None):
    """Read-modify-write of a task's history file under the lock."""
    from .bootreport import write_atomically
    directory = directory or history_dir()
    _ensure_dir(directory)
    with _lock(directory):
        current = read(task_id, directory)
        change(current)
        doc = {"format": FORMAT, "task": task_id, "runs": current["runs"][-MAX_RUNS:],
               "last_success": current["last_success"], "unfinished": current["unfinished"]}
        write_atomically(path_of(task_id, directory), (json.dumps(doc, indent=1) + "\n").encode(), mode=0o600)


def append(run, directory=None):
    """Add RUN to its task's history (atomically, bounded to MAX_RUNS); it
    ends the run marked unfinished."""
    def change(current):
        current["runs"].append(run)
        if run["result"] == "success":
            current["last_success"] = run
        current["unfinished"] = None
    _update(run["task"], change, directory)


def mark_started(task_id, task_type, started, parent=None, directory=None):
    """Mark a run of `task_id` as started (see "unfinished"). The caller
    holds the task's lock: an earlier unfinished run is dead."""
    def change(current):
        if current["unfinished"] is not None:
            current["runs"].append(died_run(task_id, task_type, current["unfinished"]))
        current["unfinished"] = {"start": iso(started), "pid": os.getpid(), "parent": parent}
    _update(task_id, change, directory)


def _warn(rt, task, e):
    warned = rt.__dict__.setdefault("_history_warned", set())
    if task.id in warned:
        return  # once per run, not at its start and again at its end
    warned.add(task.id)
    try:
        from .runtime import VL_WARNING
        rt.log(VL_WARNING, "task %s: cannot record the run in %s: %s: %s"
               % (task.id, history_dir(), type(e).__name__, getattr(e, "strerror", None) or e))
    except Exception:  # pragma: no cover - logging must not fail a task
        pass


def started(rt, task, started_at):
    """Mark the run of `task` that starts now; never raises (a warning)."""
    running = getattr(rt, "_running", None) or []
    try:
        mark_started(task.id, task.type, started_at, running[-2] if len(running) > 1 else None)
    except Exception as e:  # noqa: B902 - history must never fail the task
        _warn(rt, task, e)


def record(rt, task, result, error, started_at, ended):
    """Record one run of `task`; never raises (a warning instead)."""
    try:
        append(make_run(rt, task, result, error, started_at, ended))
    except Exception as e:  # noqa: B902 - history must never fail the task
        _warn(rt, task, e)
