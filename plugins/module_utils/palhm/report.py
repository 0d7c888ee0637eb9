# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report: the status documents of many hosts (status.py, as
palhm_status returns them) in one JSON document, one self-contained HTML page
and one plain-text summary for mail.

Invariants:
- Every host given appears: a host Ansible could not reach is a row with
  verdict ``unreachable``, a host whose status could not be read (no config,
  a module error) a row with verdict ``error``; none is skipped.
- Worst first: hosts by their worst verdict, then name; tasks of a host by
  verdict, then config order. Severity, worst last: ok, shrunk, stale,
  never-run, no-copy, failing, error, unreachable.
- Thresholds only make things worse, never better: ``max_age`` applies to
  tasks without a max-age of their own (stale); ``shrink_ratio`` flags a
  newest copy smaller than that fraction of the one before (shrunk).
- The HTML page needs nothing but itself: inline CSS and SVG, no script, no
  link, no image, no font; every text from the hosts is escaped.

The document (``palhm-report.json``)::

    {"format": "palhm-report/1", "title", "time" (ISO 8601 UTC),
     "thresholds": {"max_age": seconds | null, "shrink_ratio": float},
     "ok": bool, "verdict": worst, "counts": {VERDICT: rows},
     "hosts": [{"host", "verdict", "ok", "reason" | null, "time" (its status time) | null,
                "tasks": [ROW, ...]}, ...]}

    ROW: {"task", "type", "verdict", "problems", "reason", "max_age",
          "last_run": {"result", "age", "error", "end"} | null, "last_success_age",
          "copies", "newest_copy": {"prefix", "age", "size", "objects"} | null,
          "copy_sizes": [size, ...] (oldest first) | null,
          "drill": {"task", "result", "age", "prefix", "error"} | null, "backup_task"}
"""

from __future__ import annotations

import datetime
import html

from .status import human_age

FORMAT = "palhm-report/1"
OK, SHRUNK, STALE, NEVER_RUN, NO_COPY, FAILING, ERROR, UNREACHABLE = (
    "ok", "shrunk", "stale", "never-run", "no-copy", "failing", "error", "unreachable")
SEVERITY = {OK: 0, SHRUNK: 1, STALE: 2, NEVER_RUN: 3, NO_COPY: 4, FAILING: 5, ERROR: 6, UNREACHABLE: 7}
VERDICTS = tuple(sorted(SEVERITY, key=SEVERITY.get))
DEFAULT_SHRINK_RATIO = 0.5
COLOURS = {OK: "#1a7f37", SHRUNK: "#b35900", STALE: "#b35900", NEVER_RUN: "#57606a", NO_COPY: "#cf222e",
           FAILING: "#cf222e", ERROR: "#8250df", UNREACHABLE: "#82071e"}


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).replace(microsecond=0).isoformat()


def human_size(n):
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return "%.1f PiB" % n


def _worst(verdicts):
    return max(verdicts, key=SEVERITY.get, default=OK)


def _host_failure(result):
    """(verdict, reason) of a registered palhm_status result that is not a
    status document, else None."""
    if not isinstance(result, dict) or not result:
        return ERROR, "no status was gathered from this host"
    if result.get("unreachable"):
        return UNREACHABLE, "unreachable: %s" % (result.get("msg") or "Ansible could not connect")
    if result.get("failed") or result.get("format") != "palhm-status/1" or not isinstance(result.get("tasks"), list):
        msg = result.get("msg") or "palhm_status returned no status document"
        return ERROR, " ".join(str(msg).split())[:500]
    return None


def _row(task, max_age, shrink_ratio):
    problems = [p for p in task.get("problems") or [] if p in SEVERITY]
    reasons = [task.get("reason") or ""] if problems else []
    sizes = [c.get("size") for c in task.get("copy_sizes") or [] if isinstance(c, dict)]
    own_max_age = task.get("max_age")
    if max_age is not None and own_max_age is None:
        last_success = task.get("last_success") or {}
        newest = task.get("newest_copy") or {}
        if task.get("last_run") is not None and (last_success.get("age") is None or last_success["age"] > max_age):
            problems.append(STALE)
            reasons.append("the last success is older than the report's max-age %s" % human_age(max_age))
        elif newest.get("age") is not None and newest["age"] > max_age:
            problems.append(STALE)
            reasons.append("the newest complete copy is older than the report's max-age %s" % human_age(max_age))
    if shrink_ratio and len(sizes) >= 2 and sizes[-2] and sizes[-1] < shrink_ratio * sizes[-2]:
        problems.append(SHRUNK)
        reasons.append("the newest copy (%s) is less than %d%% of the one before (%s)"
                       % (human_size(sizes[-1]), round(shrink_ratio * 100), human_size(sizes[-2])))
    problems = sorted(set(problems), key=SEVERITY.get, reverse=True)
    verdict = task.get("verdict") if task.get("verdict") == NEVER_RUN else (problems[0] if problems else OK)
    last = task.get("last_run")
    newest = task.get("newest_copy")
    drill = task.get("drill")
    return {
        "task": task.get("task"), "type": task.get("type"), "verdict": verdict, "problems": problems,
        "reason": "; ".join(r for r in reasons if r) if problems else (task.get("reason") or ""),
        "max_age": own_max_age if own_max_age is not None else max_age,
        "last_run": None if not last else {k: last.get(k) for k in ("result", "age", "error", "end")},
        "last_success_age": (task.get("last_success") or {}).get("age"),
        "copies": task.get("copies"),
        "newest_copy": None if not newest else {k: newest.get(k) for k in ("prefix", "age", "size", "objects")},
        "copy_sizes": sizes if task.get("copy_sizes") is not None else None,
        "drill": None if not drill else {k: drill.get(k) for k in ("task", "result", "age", "prefix", "error")},
        "backup_task": task.get("backup_task"),
    }


def build(statuses, now, title="PALHM fleet report", max_age=None, shrink_ratio=DEFAULT_SHRINK_RATIO):
    """The report document of `statuses`: {hostname: registered palhm_status
    result (a status document, or an unreachable/failed result)}."""
    hosts = []
    for name, result in statuses.items():
        failure = _host_failure(result)
        if failure is not None:
            hosts.append({"host": name, "verdict": failure[0], "ok": False, "reason": failure[1],
                          "time": None, "tasks": []})
            continue
        rows = [_row(t, max_age, shrink_ratio) for t in result["tasks"] if isinstance(t, dict)]
        order = dict((id(r), i) for i, r in enumerate(rows))
        rows.sort(key=lambda r: (-SEVERITY[r["verdict"]], order[id(r)]))
        verdict = _worst(r["verdict"] for r in rows)
        hosts.append({"host": name, "verdict": verdict, "ok": verdict == OK,
                      "reason": None if rows else "no task in the host's config", "time": result.get("time"),
                      "tasks": rows})
    hosts.sort(key=lambda h: (-SEVERITY[h["verdict"]], h["host"]))
    counts = dict((v, 0) for v in VERDICTS)
    for h in hosts:
        if h["tasks"]:
            for r in h["tasks"]:
                counts[r["verdict"]] += 1
        else:
            counts[h["verdict"]] += 1
    return {"format": FORMAT, "title": title, "time": iso(now),
            "thresholds": {"max_age": max_age, "shrink_ratio": shrink_ratio},
            "ok": all(h["ok"] for h in hosts), "verdict": _worst(h["verdict"] for h in hosts),
            "counts": counts, "hosts": hosts}


# -- rendering -------------------------------------------------------------------
def _e(value):
    return html.escape("" if value is None else str(value), quote=True)


def sizes_svg(sizes, shrink_ratio=DEFAULT_SHRINK_RATIO, width=120, height=28):
    """A small inline SVG bar chart of a backup's copy sizes, oldest first;
    the newest bar is dark, a bar that shrank below `shrink_ratio` of the one
    before is red. Empty string without sizes."""
    sizes = [s for s in (sizes or []) if isinstance(s, (int, float))]
    if not sizes:
        return ""
    top = max(sizes) or 1
    n = len(sizes)
    step = float(width) / n
    bar_width = max(1.0, step * 0.8)
    parts = []
    for i, size in enumerate(sizes):
        h = max(1.0, (height - 2) * float(size) / top)
        shrank = i > 0 and sizes[i - 1] and size < shrink_ratio * sizes[i - 1]
        cls = "shrank" if shrank else ("newest" if i == n - 1 else "copy")
        parts.append('<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>'
                     % (cls, i * step, height - h, bar_width, h, _e(human_size(size))))
    label = "sizes of the %d kept copies, oldest first: %s" % (n, ", ".join(human_size(s) for s in sizes))
    return ('<svg class="sizes" width="%d" height="%d" viewBox="0 0 %d %d" '
            'role="img" aria-label="%s">%s</svg>' % (width, height, width, height, _e(label), "".join(parts)))


CSS = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1f2328; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
p.meta { color: #57606a; margin: 0 0 1em; }
ul.counts { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5em; }
ul.counts li { padding: .2em .6em; border-radius: 1em; color: #fff; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #d0d7de; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
tr.host-first td { border-top: 2px solid #8c959f; }
td.verdict span { display: inline-block; padding: .1em .5em; border-radius: .3em; color: #fff; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
td.reason { max-width: 30em; overflow-wrap: anywhere; }
td.reason .error { color: #82071e; font-family: ui-monospace, monospace; font-size: .9em; }
svg.sizes rect.copy { fill: #8c959f; }
svg.sizes rect.newest { fill: #0969da; }
svg.sizes rect.shrank { fill: #cf222e; }
"""


def _verdict_css():
    return "".join(".v-%s { background: %s; }\n" % (v, c) for v, c in COLOURS.items())


def _cell(cls, text, title=None):
    return '<td class="%s"%s>%s</td>' % (cls, ' title="%s"' % _e(title) if title else "", text)


def _last_run(row):
    last = row["last_run"]
    if not last:
        return "-"
    return "%s ago, %s" % (_e(human_age(last.get("age"))), _e(last.get("result")))


def _drill(row):
    d = row["drill"]
    if not d:
        return "-" if row["type"] == "backup" else ""
    return "%s %s ago (%s)" % (_e(d.get("result")), _e(human_age(d.get("age"))), _e(d.get("task")))


def render_html(doc):
    """The self-contained HTML page of a report document."""
    shrink = doc["thresholds"].get("shrink_ratio") or 0
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>%s</title><style>%s%s</style></head><body>" % (_e(doc["title"]), CSS, _verdict_css()),
           '<h1>%s</h1>' % _e(doc["title"]),
           '<p class="meta">%d hosts, taken %s; overall <strong id="overall" data-verdict="%s">%s</strong>%s</p>'
           % (len(doc["hosts"]), _e(doc["time"]), _e(doc["verdict"]), _e(doc["verdict"]),
              "" if doc["thresholds"].get("max_age") is None
              else "; report max-age %s" % _e(human_age(doc["thresholds"]["max_age"]))),
           '<ul class="counts">']
    for v in reversed(VERDICTS):
        if doc["counts"].get(v):
            out.append('<li class="v-%s" data-verdict="%s">%s: %d</li>' % (v, v, v, doc["counts"][v]))
    out.append("</ul>")
    out.append('<table id="report"><thead><tr><th>Host</th><th>Task</th><th>Type</th><th>Verdict</th>'
               '<th>Last run</th><th>Last success</th><th>Newest copy</th><th>Size</th><th>Copies</th>'
               '<th>Sizes of the kept copies</th><th>Last drill</th><th>Reason, last error</th></tr></thead><tbody>')
    for h in doc["hosts"]:
        if not h["tasks"]:
            out.append('<tr class="host-first" data-host="%s" data-task="" data-verdict="%s">'
                       % (_e(h["host"]), _e(h["verdict"])))
            out.append('<th scope="row">%s</th><td></td><td></td>' % _e(h["host"]))
            out.append('<td class="verdict"><span class="v-%s">%s</span></td>' % (_e(h["verdict"]), _e(h["verdict"])))
            out.append('<td colspan="7"></td><td class="reason">%s</td></tr>' % _e(h["reason"]))
            continue
        for i, r in enumerate(h["tasks"]):
            newest = r["newest_copy"] or {}
            last = r["last_run"] or {}
            out.append('<tr class="%s" data-host="%s" data-task="%s" data-verdict="%s">'
                       % ("host-first" if i == 0 else "task", _e(h["host"]), _e(r["task"]), _e(r["verdict"])))
            out.append('<th scope="row">%s</th>' % (_e(h["host"]) if i == 0 else ""))
            out.append(_cell("task", _e(r["task"])) + _cell("type", _e(r["type"])))
            out.append('<td class="verdict"><span class="v-%s">%s</span></td>' % (_e(r["verdict"]), _e(r["verdict"])))
            out.append(_cell("last-run num", _last_run(r), last.get("end")))
            out.append(_cell("last-success num", "-" if r["last_success_age"] is None
                             else _e(human_age(r["last_success_age"])) + " ago"))
            out.append(_cell("newest-age num", "-" if not newest else _e(human_age(newest.get("age"))) + " old",
                             newest.get("prefix")))
            out.append(_cell("newest-size num", "-" if not newest else _e(human_size(newest.get("size")))))
            out.append(_cell("copies num", "-" if r["copies"] is None else _e(r["copies"])))
            out.append(_cell("sizes", sizes_svg(r["copy_sizes"], shrink)))
            out.append(_cell("drill", _drill(r)))
            reason = _e(r["reason"]) if r["verdict"] != OK else ""
            if last.get("error") and last.get("result") != "success" and last["error"] not in (r["reason"] or ""):
                reason += '<br><span class="error">%s</span>' % _e(last["error"])
            out.append(_cell("reason", reason) + "</tr>")
    out.append("</tbody></table></body></html>\n")
    return "".join(out)


def render_text(doc, html_path=None):
    """A plain-text summary (mail body): one line per host and task that is
    not ok, worst first, then the counts."""
    lines = ["%s, %s: %s" % (doc["title"], doc["time"], "everything is ok" if doc["ok"] else
                             "%s is the worst verdict" % doc["verdict"]), ""]
    counts = ", ".join("%s %d" % (v, doc["counts"][v]) for v in reversed(VERDICTS) if doc["counts"].get(v))
    lines.append("%d hosts; %s" % (len(doc["hosts"]), counts or "no task"))
    bad = []
    for h in doc["hosts"]:
        if not h["tasks"] and not h["ok"]:
            bad.append("%-11s %s: %s" % (h["verdict"], h["host"], h["reason"]))
        for r in h["tasks"]:
            if r["verdict"] != OK:
                bad.append("%-11s %s %s: %s" % (r["verdict"], h["host"], r["task"], r["reason"]))
    if bad:
        lines += ["", "Not ok:"] + ["  " + b for b in bad]
    if html_path:
        lines += ["", "The full report: %s" % html_path]
    return "\n".join(lines) + "\n"


def subject(doc):
    if doc["ok"]:
        return "%s: all %d hosts ok" % (doc["title"], len(doc["hosts"]))
    bad = sum(1 for h in doc["hosts"] if not h["ok"])
    return "%s: %d of %d hosts not ok (%s)" % (doc["title"], bad, len(doc["hosts"]), doc["verdict"])


MUAS = ("smtp", "sendmail", "mailx", "aws-sns")


def mail_spec(mail):
    """The boot report's MUA spec (bootreport.parse_config) of the report's
    `mail` option: {"mua", "mua-param", "mail-to"}; errors name ``mail.KEY``."""
    from . import bootreport, schema
    from .errors import ConfigError
    schema.obj(mail, "mail", required=("mua", "mail-to"), optional=("mua-param",))
    if mail["mua"] not in MUAS:
        raise ConfigError("mail.mua", "expected one of %s, got %s" % (", ".join(MUAS), schema.show(mail["mua"])))
    raw = {"mua": mail["mua"], "mail-to": mail["mail-to"], "mua-param": mail.get("mua-param") or {}}
    return bootreport.parse_config(raw, dict((k, "mail." + k) for k in raw))


def send(spec, subject_line, body):
    """Send the text summary through the boot report's MUA code (smtp,
    sendmail, mailx, aws-sns); -> recipients. Its errors say "fleet report"."""
    from . import bootreport
    from .errors import PalhmError
    try:
        return bootreport.send(spec, subject_line, body)
    except PalhmError as e:
        e.args = tuple(a.replace("boot report", "fleet report") if isinstance(a, str) else a for a in e.args)
        for attr in ("what", "message", "msg"):
            if isinstance(getattr(e, attr, None), str):
                setattr(e, attr, getattr(e, attr).replace("boot report", "fleet report"))
        raise
