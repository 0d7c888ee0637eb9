# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report: every host given is in it (unreachable and broken ones
too), worst first, thresholds only make verdicts worse, and the HTML page is
self-contained with everything the hosts said escaped."""

from __future__ import annotations

import json

from ansible_collections.palhm.palhm.plugins.module_utils.palhm import report

NOW = 1800000000.0


def task(task_id, verdict="ok", sizes=None, max_age=None, last_age=60.0, success_age=60.0, **extra):
    t = {"task": task_id, "type": "backup", "verdict": verdict, "ok": verdict == "ok",
         "problems": [] if verdict == "ok" else [verdict], "reason": "because %s" % verdict,
         "max_age": max_age, "last_run": None if last_age is None else {
             "result": "failure" if verdict == "failing" else "success", "age": last_age,
             "error": "StageError: boom" if verdict == "failing" else None, "end": "2027-01-15T08:00:00+00:00"},
         "last_success": None if success_age is None else {"age": success_age},
         "copies": None if sizes is None else len(sizes),
         "newest_copy": None if not sizes else {"prefix": "P", "age": 30.0, "size": sizes[-1], "objects": 1},
         "copy_sizes": None if sizes is None else [{"prefix": "P%d" % i, "size": s} for i, s in enumerate(sizes)],
         "drill": None, "backup_task": None}
    t.update(extra)
    return t


def status(*tasks):
    return {"format": "palhm-status/1", "hostname": "x", "time": "2027-01-15T08:00:00+00:00", "ok": True,
            "verdict": "ok", "counts": {}, "tasks": list(tasks)}


def verdicts(doc):
    return [(h["host"], [(r["task"], r["verdict"]) for r in h["tasks"]] or h["verdict"]) for h in doc["hosts"]]


def test_every_host_is_in_the_report_worst_first_and_none_is_skipped():
    doc = report.build({
        "a-ok": status(task("backup", sizes=[10, 10])),
        "b-bad": status(task("backup", sizes=[10]), task("job", "failing"), task("new", "never-run")),
        "c-down": {"unreachable": True, "msg": "Failed to connect to the host via ssh", "changed": False},
        "d-broken": {"failed": True, "msg": "config file not found:\n /etc/palhm/palhm.conf"},
        "e-nothing": {},
    }, NOW)
    assert verdicts(doc) == [("c-down", "unreachable"), ("d-broken", "error"), ("e-nothing", "error"),
                             ("b-bad", [("job", "failing"), ("new", "never-run"), ("backup", "ok")]),
                             ("a-ok", [("backup", "ok")])]
    assert doc["hosts"][0]["reason"].startswith("unreachable: Failed to connect")
    assert doc["hosts"][1]["reason"] == "config file not found: /etc/palhm/palhm.conf"
    assert doc["ok"] is False and doc["verdict"] == "unreachable"
    assert doc["counts"] == {"ok": 2, "shrunk": 0, "stale": 0, "never-run": 1, "no-copy": 0, "failing": 1,
                             "error": 2, "unreachable": 1}
    json.dumps(doc)  # the JSON file


def test_an_empty_fleet_is_ok():
    doc = report.build({}, NOW)
    assert doc["ok"] is True and doc["verdict"] == "ok" and doc["hosts"] == []


def test_report_max_age_applies_only_to_tasks_without_their_own():
    doc = report.build({"h": status(task("own", max_age=86400, success_age=7200.0),
                                    task("none", success_age=7200.0),
                                    task("young", success_age=60.0),
                                    task("never-succeeded", success_age=None))}, NOW, max_age=3600)
    rows = dict((r["task"], r) for r in doc["hosts"][0]["tasks"])
    assert rows["own"]["verdict"] == "ok" and rows["own"]["max_age"] == 86400
    assert rows["none"]["verdict"] == "stale" and "report's max-age 1h 0m" in rows["none"]["reason"]
    assert rows["young"]["verdict"] == "ok"
    assert rows["never-succeeded"]["verdict"] == "stale"


def test_a_copy_that_shrank_below_the_ratio_is_shrunk_unless_turned_off():
    st = status(task("half", sizes=[1000, 1000, 499]), task("steady", sizes=[1000, 600]), task("one", sizes=[5]))
    rows = dict((r["task"], r["verdict"]) for r in report.build({"h": st}, NOW)["hosts"][0]["tasks"])
    assert rows == {"half": "shrunk", "steady": "ok", "one": "ok"}
    rows = dict((r["task"], r["verdict"]) for r in report.build({"h": st}, NOW, shrink_ratio=0)["hosts"][0]["tasks"])
    assert rows["half"] == "ok"
    # A worse verdict wins over shrunk.
    st = status(task("half", "failing", sizes=[1000, 10]))
    (row,) = report.build({"h": st}, NOW)["hosts"][0]["tasks"]
    assert row["verdict"] == "failing" and row["problems"] == ["failing", "shrunk"]


def test_the_svg_draws_one_bar_per_copy_and_marks_the_shrink():
    svg = report.sizes_svg([100, 100, 40])
    assert svg.count("<rect") == 3 and svg.count('class="shrank"') == 1 and svg.startswith("<svg")
    assert 'aria-label="sizes of the 3 kept copies, oldest first: 100 B, 100 B, 40 B"' in svg
    assert report.sizes_svg([]) == "" and report.sizes_svg(None) == ""
    assert report.sizes_svg([0, 0]).count("<rect") == 2  # no division by zero


def test_the_html_is_self_contained_and_escapes_what_hosts_say():
    evil = '<script>alert("x")</script>'
    doc = report.build({evil: status(task(evil, "failing", sizes=[5, 5], reason=evil)),
                        "down": {"unreachable": True, "msg": evil}}, NOW, title="T & <b>")
    page = report.render_html(doc)
    assert "<script" not in page and "&lt;script&gt;" in page
    for external in ("<link", "src=", "href=", "@import", "url(", "http://", "https://"):
        assert external not in page
    assert "<title>T &amp; &lt;b&gt;</title>" in page
    assert page.count('data-verdict="failing"') >= 2 and 'class="v-unreachable"' in page


def test_the_text_summary_lists_what_is_not_ok():
    doc = report.build({"h": status(task("backup"), task("job", "failing")), "down": {"unreachable": True}}, NOW)
    text = report.render_text(doc, "/srv/r/palhm-report.html")
    assert "unreachable down:" in text and "failing     h job: because failing" in text
    assert "h backup" not in text and text.rstrip().endswith("/srv/r/palhm-report.html")
    assert report.subject(doc) == "PALHM fleet report: 2 of 2 hosts not ok (unreachable)"
    assert report.subject(report.build({"h": status(task("b"))}, NOW)) == "PALHM fleet report: all 1 hosts ok"


def test_mail_takes_only_the_boot_report_muas_with_their_checks():
    import pytest
    from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import ConfigError
    spec = report.mail_spec({"mua": "smtp", "mua-param": {"host": "127.0.0.1", "port": 2525},
                             "mail-to": ["ops@example.com"]})
    assert spec.mua == "smtp" and spec.mail_to == ["ops@example.com"]
    with pytest.raises(ConfigError, match="mail.mua"):
        report.mail_spec({"mua": "stdout", "mail-to": ["x@example.com"]})
    with pytest.raises(ConfigError, match="mail.mua-param"):
        report.mail_spec({"mua": "smtp", "mua-param": {"hots": "x"}, "mail-to": ["x@example.com"]})
