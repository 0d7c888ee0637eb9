# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring of task runs: health pings and a Prometheus textfile.

Pings (per task, healthchecks.io style)::

    "pings": {"start": URL, "success": URL, "failure": URL, "timeout": 5}

Each URL gets a POST with a short plain-text body; the failure ping's body is
the error's class and the first line of its message (for a failed stage: the
stage, its program name and exit code, never its arguments or stderr), with
anything that looks like a credential scrubbed. A ping runs in a thread joined with a deadline, so
a monitor that refuses, hangs or resolves slowly costs at most `timeout`
seconds and a warning; it never changes the task's result.

Metrics (top level)::

    "metrics": {"path": "/var/lib/prometheus/node-exporter/palhm.prom"}

After every run of every task the file is rewritten atomically (temporary
file in the same directory, then rename) with the series of every task seen
so far: the previous file is read back, so other tasks' series and a task's
last success survive a failed run. Gauges, labels ``task`` and ``type``:

- palhm_task_last_run_timestamp_seconds: when the last run ended
- palhm_task_last_success_timestamp_seconds: when the last successful run
  ended (0: never)
- palhm_task_last_failure_timestamp_seconds: when the last failed run ended
  (0: never)
- palhm_task_duration_seconds: how long the last run took
- palhm_task_exit_status: 0, or the exit code of the palhm command for the
  last run's error (see errors.py)
- palhm_task_success: 1 when the last run succeeded, else 0
- backup tasks only: palhm_task_bytes and palhm_task_objects (stored by the
  last run; 0 when it failed: its copy was rolled back), palhm_task_copies
  (complete copies on the backend after the run), palhm_task_future_copies
  (complete or legacy copies whose PREFIX is more than 5 minutes ahead of the
  clock: alert on > 0, such a copy sorts newest and holds a rotation slot)
- restore-drill tasks: palhm_task_bytes and palhm_task_objects (read and
  verified by the last drill; 0 when it failed)
- backup tasks that store, after each of their runs (the copies ``palhm
  status`` counts: complete, PREFIX not in the future):
  palhm_task_newest_copy_timestamp_seconds (0: no complete copy),
  palhm_task_newest_copy_bytes, palhm_task_previous_copy_bytes (0: fewer
  than two copies)
- every task of the config, at every write: palhm_task_max_age_seconds (only
  while max-age is set); a task without any series yet gets
  palhm_task_last_run_timestamp_seconds 0 and the last success/failure
  timestamps 0 ("never run"), and no palhm_task_success

The alert rules and dashboard shipped in extras/ are built on these names
(tests/functional/test_alerts.py checks both against this list).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from . import __version__, fsutil, redact, schema
from .redact import redact_url
from .errors import ConfigError, exit_code_of

DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 300.0
REASON_MAX = 200
METRICS_LOCK_WAIT = 5.0

# name -> help; the order is the order in the file.
METRICS = (
    ("palhm_task_last_run_timestamp_seconds", "Unix time the last run of the task ended."),
    ("palhm_task_last_success_timestamp_seconds", "Unix time the last successful run ended (0: never)."),
    ("palhm_task_last_failure_timestamp_seconds", "Unix time the last failed run ended (0: never)."),
    ("palhm_task_duration_seconds", "Duration of the last run in seconds."),
    ("palhm_task_exit_status", "Exit status of the last run (0: success, else the palhm exit code)."),
    ("palhm_task_success", "1 when the last run succeeded, else 0."),
    ("palhm_task_bytes", "Bytes stored (restore drill: verified) by the last run (0 when it failed)."),
    ("palhm_task_objects", "Objects stored (restore drill: verified) by the last run (0 when it failed)."),
    ("palhm_task_copies", "Complete copies on the backend after the last run."),
    ("palhm_task_future_copies", "Copies whose PREFIX is dated in the future (the clock was ahead)."),
    ("palhm_task_max_age_seconds", "The task's max-age in seconds (only when set)."),
    ("palhm_task_newest_copy_timestamp_seconds",
     "Unix time (PREFIX) of the newest complete copy not dated in the future (0: none)."),
    ("palhm_task_newest_copy_bytes", "Size of the newest complete copy (0: none)."),
    ("palhm_task_previous_copy_bytes", "Size of the complete copy before the newest (0: none)."),
)
_METRIC_NAMES = set(name for name, _help in METRICS)


# -- pings -------------------------------------------------------------------
@dataclass
class Pings:
    start: str = None
    success: str = None
    failure: str = None
    timeout: float = DEFAULT_TIMEOUT

    def describe(self):
        out = {"timeout": self.timeout}
        for key in ("start", "success", "failure"):
            if getattr(self, key):
                out[key] = redact_url(getattr(self, key))
        return out


def _url(value, path):
    schema.string(value, path)
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(path, "expected an http:// or https:// URL, got %s" % schema.show(redact_url(value)))
    if any(c.isspace() for c in value):
        raise ConfigError(path, "a URL must not contain white space")
    return value


def parse_pings(raw, path):
    schema.obj(raw, path, optional=("start", "success", "failure", "timeout"))
    pings = Pings()
    for key in ("start", "success", "failure"):
        if key in raw:
            setattr(pings, key, _url(raw[key], schema.join(path, key)))
    if "timeout" in raw:
        t = schema.number(raw["timeout"], schema.join(path, "timeout"))
        if not 0 < t <= MAX_TIMEOUT:
            raise ConfigError(schema.join(path, "timeout"), "must be > 0 and <= %d seconds, got %s"
                              % (MAX_TIMEOUT, t))
        pings.timeout = float(t)
    return pings


def scrub(text):
    """Remove what looks like a credential from `text` (see redact.text)."""
    return redact.text(text)


def error_line(error):
    """The one-line, secret-free text of a task's error (failure pings, run
    history): its class and the first line of its message; for a failed
    stage, the stage, its program name and exit code, never its arguments or
    stderr (where a password may sit); anything that looks like a credential
    scrubbed; at most REASON_MAX characters."""
    argv = getattr(error, "argv", None)
    if getattr(error, "what", None) and argv:
        from .errors import _fmt_rc
        first = "%s: %s exited with code %s" % (error.what, os.path.basename(str(argv[0])),
                                                _fmt_rc(getattr(error, "returncode", None)))
    else:
        lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
        first = lines[0] if lines else ""
    text = scrub("%s: %s" % (type(error).__name__, first) if first else type(error).__name__)
    if len(text) > REASON_MAX:
        text = text[:REASON_MAX - 3] + "..."
    return text


def failure_reason(task, error):
    """The short, secret-free text a failure ping carries."""
    return "palhm task %s failed (exit status %d): %s\n" % (task.id, exit_code_of(error), error_line(error))


def _post(url, body, timeout):
    req = urllib.request.Request(url, data=body.encode("utf-8", errors="replace"), method="POST",
                                 headers={"Content-Type": "text/plain; charset=utf-8",
                                          "User-Agent": "palhm/%s" % __version__})
    # An opener honours http_proxy/https_proxy like urlopen does.
    with urllib.request.build_opener().open(req, timeout=timeout) as resp:  # nosec - URL from the admin's config
        resp.read(1024)
        return resp.status


def ping(rt, task, kind, url, body, timeout):
    """Send one ping; a failure (or a monitor slower than `timeout`) is a
    warning. Returns True when the monitor answered with a 2xx/3xx status."""
    outcome = {}

    def worker():
        try:
            outcome["status"] = _post(url, body, timeout)
        except urllib.error.HTTPError as e:
            outcome["error"] = "HTTP %s" % e.code
        except Exception as e:  # noqa: B902 - any failure is only a warning
            reason = getattr(e, "reason", None) or e
            if isinstance(reason, (socket.timeout, TimeoutError)):
                outcome["timeout"] = True
            else:
                outcome["error"] = "%s: %s" % (type(reason).__name__, scrub(str(reason)))

    th = threading.Thread(target=worker, name="palhm-ping-%s" % kind, daemon=True)
    th.start()
    # urllib's timeout bounds each socket operation; name resolution and a
    # trickling server are not, so the thread is given a deadline as well.
    th.join(timeout + 0.5)
    where = redact_url(url)
    if th.is_alive() or outcome.get("timeout"):
        _warn(rt, "task %s: %s ping to %s got no answer within %gs; ignored" % (task.id, kind, where, timeout))
        return False
    if "error" in outcome:
        _warn(rt, "task %s: %s ping to %s failed: %s; ignored" % (task.id, kind, where, outcome["error"]))
        return False
    return True


def _warn(rt, msg):
    try:
        from .runtime import VL_WARNING
        rt.log(VL_WARNING, msg)
    except Exception:  # pragma: no cover - logging must not fail a task
        pass


def _log_debug(rt, msg):
    try:
        from .runtime import VL_DEBUG
        rt.log(VL_DEBUG, msg)
    except Exception:  # pragma: no cover
        pass


def task_started(rt, task):
    """Called before a task runs (start ping). Never raises."""
    try:
        pings = getattr(task, "pings", None)
        if pings is not None and pings.start:
            if ping(rt, task, "start", pings.start, "palhm task %s started on %s\n" % (task.id, rt.hostname),
                    pings.timeout):
                _log_debug(rt, "task %s: start ping sent" % task.id)
    except Exception as e:  # pragma: no cover - belt and braces
        _warn(rt, "task %s: start ping: %s" % (task.id, type(e).__name__))


def task_finished(rt, task, result, error, started):
    """Called after a task ran, with its result or error (metrics, success or
    failure ping). Never raises: a dead monitor must not fail a backup."""
    ended = time.time()
    try:
        metrics = getattr(rt.config, "metrics", None)
        if metrics and metrics.get("path"):
            write_metrics(rt, metrics["path"], task, result, error, started, ended)
    except Exception as e:  # noqa: B902 - never fail the task
        _warn(rt, "task %s: cannot update the metrics file: %s: %s" % (task.id, type(e).__name__, e))
    try:
        pings = getattr(task, "pings", None)
        if pings is None:
            return
        if error is None and pings.success:
            body = "palhm task %s succeeded on %s in %.1fs" % (task.id, rt.hostname, ended - started)
            if isinstance(result, dict) and "bytes" in result:
                body += ", %s bytes" % result["bytes"]
            ping(rt, task, "success", pings.success, body + "\n", pings.timeout)
        elif error is not None and pings.failure:
            ping(rt, task, "failure", pings.failure, failure_reason(task, error), pings.timeout)
    except Exception as e:  # pragma: no cover - belt and braces
        _warn(rt, "task %s: ping: %s" % (task.id, type(e).__name__))


# -- metrics -------------------------------------------------------------------
def _escape(value):
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\s+(\S+)(?:\s+\d+)?\s*$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def read_metrics(path):
    """{(task, type): {metric: value}} from a file this module wrote; lines it
    does not understand are dropped."""
    series = {}
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return series
    for line in lines:
        m = _SAMPLE.match(line)
        if not m or m.group(1) not in _METRIC_NAMES:
            continue
        labels = dict((k, _unescape(v)) for k, v in _LABEL.findall(m.group(2)))
        if "task" not in labels or "type" not in labels:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        series.setdefault((labels["task"], labels["type"]), {})[m.group(1)] = value
    return series


def _fmt(value):
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render_metrics(series):
    out = []
    for name, help_text in METRICS:
        rows = [(key, values[name]) for key, values in sorted(series.items()) if name in values]
        if not rows:
            continue
        out.append("# HELP %s %s" % (name, help_text))
        out.append("# TYPE %s gauge" % name)
        for (task_id, task_type), value in rows:
            out.append('%s{task="%s",type="%s"} %s' % (name, _escape(task_id), _escape(task_type), _fmt(value)))
    return "\n".join(out) + "\n"


def _copy_values(rt, task, ended):
    """The copy series of a backup task after a run: {metric: value}, empty
    when its copies cannot be listed (the previous values stay)."""
    from .status import copy_summary
    make = getattr(task, "make_backend", None)
    if make is None:
        return {}
    try:
        if not make().stores:
            return {"palhm_task_copies": 0}
    except Exception as e:  # noqa: B902 - metrics are best effort
        _warn(rt, "task %s: metrics: cannot count the copies: %s" % (task.id, e))
        return {}
    summary = copy_summary(task, ended)
    if summary is None:
        return {}
    if summary["error"]:
        _warn(rt, "task %s: metrics: cannot count the copies: %s" % (task.id, summary["error"]))
        return {}
    newest = summary["newest"]
    sizes = summary["sizes"]
    return {"palhm_task_copies": summary["copies"],
            "palhm_task_newest_copy_timestamp_seconds":
                0 if newest is None or newest["age"] is None else round(ended - newest["age"]),
            "palhm_task_newest_copy_bytes": sizes[-1]["size"] if sizes else 0,
            "palhm_task_previous_copy_bytes": sizes[-2]["size"] if len(sizes) > 1 else 0}


def config_values(series, cfg):
    """Series every task of `cfg` carries whether or not it ran: its max-age,
    and "never run" (zero timestamps) for a task without any series yet."""
    for task in getattr(cfg, "tasks", {}).values():
        values = series.setdefault((task.id, task.type), {})
        if not values:
            for name in ("palhm_task_last_run_timestamp_seconds", "palhm_task_last_success_timestamp_seconds",
                         "palhm_task_last_failure_timestamp_seconds"):
                values[name] = 0
        if getattr(task, "max_age", None) is not None:
            values["palhm_task_max_age_seconds"] = task.max_age
        else:
            values.pop("palhm_task_max_age_seconds", None)
    return series


def _future_after(rt, task, result):
    """Complete or legacy copies of a backup task dated in the future, or None."""
    if isinstance(result, dict) and isinstance(result.get("future_copies"), list):
        return len(result["future_copies"])
    try:
        backend = task.make_backend()
        if not backend.stores:
            return 0
        return sum(1 for c in backend.list_copies() if c.state in ("complete", "legacy") and c.is_future())
    except Exception as e:  # noqa: B902 - metrics are best effort
        _warn(rt, "task %s: metrics: cannot list the copies: %s" % (task.id, e))
        return None


def run_values(rt, task, result, error, started, ended, previous):
    """The series of one task after one run, given its previous series."""
    values = dict(previous)
    ok = error is None
    code = 0 if ok else exit_code_of(error)
    values["palhm_task_last_run_timestamp_seconds"] = round(ended, 3)
    values["palhm_task_duration_seconds"] = round(max(0.0, ended - started), 3)
    values["palhm_task_exit_status"] = code
    values["palhm_task_success"] = 1 if ok else 0
    values.setdefault("palhm_task_last_success_timestamp_seconds", 0)
    values.setdefault("palhm_task_last_failure_timestamp_seconds", 0)
    if ok:
        values["palhm_task_last_success_timestamp_seconds"] = round(ended, 3)
    else:
        values["palhm_task_last_failure_timestamp_seconds"] = round(ended, 3)
    if task.type in ("backup", "restore-drill"):
        objs = result.get("objects") if ok and isinstance(result, dict) else None
        values["palhm_task_bytes"] = result.get("bytes", 0) if ok and isinstance(result, dict) else 0
        values["palhm_task_objects"] = len(objs) if isinstance(objs, list) else 0
    if task.type == "backup":
        values.update(_copy_values(rt, task, ended))
        future = _future_after(rt, task, result)
        if future is not None:
            values["palhm_task_future_copies"] = future
    return values


def _metrics_lock(path):
    """flock on PATH.lock, waited for at most METRICS_LOCK_WAIT seconds: two
    palhm processes finishing at once must not lose each other's series.
    O_NOFOLLOW: a symlink planted in the metrics directory is not followed."""
    lock = path + ".lock"
    return fsutil.WaitedLock(lambda: os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644),
                             METRICS_LOCK_WAIT, step=0.05)


def write_metrics(rt, path, task, result, error, started, ended):
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, 0o755, exist_ok=True)
    with _metrics_lock(path):
        series = read_metrics(path)
        key = (task.id, task.type)
        series[key] = run_values(rt, task, result, error, started, ended, series.get(key, {}))
        config_values(series, getattr(rt, "config", None))
        text = render_metrics(series)
        # Not *.prom: node_exporter's textfile collector must never read it.
        tmp = "%s.%d.tmp" % (path, os.getpid())
        try:
            os.unlink(tmp)  # a leftover of a dead run with this pid
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o644)
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    _log_debug(rt, "task %s: metrics written to %s" % (task.id, path))
