# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus alert rules and the Grafana dashboard shipped in extras/
work on the metrics palhm really writes: promtool checks the rules and runs
their unit tests (tests/alerts/), every metric they and the dashboard name is
one the engine writes, and end to end a real node_exporter exposes the
metrics file of real `palhm run`s and a real Prometheus scraping it raises the
failed-run alert. promtool, prometheus and prometheus-node-exporter come from
Debian (APT_PACKAGES in tests/run.sh); a missing one fails, nothing is skipped."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from conftest import REPO, wait_for

RULES = REPO / "extras" / "prometheus" / "palhm-rules.yml"
RULE_TESTS = REPO / "tests" / "alerts" / "palhm-rules-test.yml"
DASHBOARD = REPO / "extras" / "grafana" / "palhm-dashboard.json"
NODE_EXPORTER = "prometheus-node-exporter"
# node_exporter's own series the rules and the dashboard may use.
NODE_METRICS = {"node_textfile_mtime_seconds", "node_textfile_scrape_error"}


def engine_metrics():
    from palhm import monitor  # the engine of this checkout (PYTHONPATH)
    return set(name for name, _help in monitor.METRICS)


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail("%s is not installed (Debian package in tests/run.sh APT_PACKAGES)" % name, pytrace=False)
    return path


def metric_names(expr):
    return set(re.findall(r"\b((?:palhm|node)_[a-z0-9_]+)", expr))


def rules():
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def dashboard_exprs():
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # nosec - 127.0.0.1 test servers
        return resp.read().decode()


# -- static checks -------------------------------------------------------------
def test_promtool_checks_the_rules_and_their_unit_tests_pass():
    res = subprocess.run([tool("promtool"), "check", "rules", str(RULES)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, check=False)
    assert res.returncode == 0, res.stdout
    assert "SUCCESS: %d rules found" % len(rules()) in res.stdout
    res = subprocess.run([tool("promtool"), "test", "rules", RULE_TESTS.name], cwd=str(RULE_TESTS.parent),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout


def test_every_alert_is_tested_firing_and_quiet():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired, quiet = set(), set()
    for t in tests:
        instances = set(re.findall(r'instance="([^"]+)"', " ".join(s["series"] for s in t["input_series"])))
        for case in t["alert_rule_test"]:
            firing = set(a["exp_labels"]["instance"] for a in case["exp_alerts"])
            if firing:
                fired.add(case["alertname"])
            # Quiet: no alert at all, or none for a host of the same series.
            if instances - firing:
                quiet.add(case["alertname"])
    names = set(r["alert"] for r in rules())
    assert names == fired, "alerts without a test that makes them fire: %s" % (names - fired)
    assert names == quiet, "alerts without a test where they stay quiet: %s" % (names - quiet)


def test_rules_and_dashboard_name_only_metrics_palhm_writes():
    known = engine_metrics() | NODE_METRICS
    for r in rules():
        assert metric_names(r["expr"]) - known == set(), r["alert"]
        assert r["labels"]["severity"] in ("critical", "warning") and r["annotations"]["summary"]
    exprs = dashboard_exprs()
    assert exprs and all(e.strip() for e in exprs)
    used = set()
    for e in exprs:
        assert metric_names(e) - known == set(), e
        used |= metric_names(e)
    # The dashboard shows every verdict the rules alert on.
    assert {"palhm_task_success", "palhm_task_last_success_timestamp_seconds", "palhm_task_max_age_seconds",
            "palhm_task_newest_copy_timestamp_seconds", "palhm_task_newest_copy_bytes",
            "palhm_task_last_run_timestamp_seconds"} <= used


def test_the_dashboard_is_a_grafana_dashboard():
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and isinstance(doc["schemaVersion"], int)
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        assert p["type"] in ("stat", "table", "timeseries") and p["title"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        assert p["datasource"]["uid"] == "${datasource}"
        assert [t["refId"] for t in p["targets"]] == [chr(65 + i) for i in range(len(p["targets"]))]


# -- end to end: palhm run -> textfile -> node_exporter -> Prometheus -> alert --------
def start(argv, log):
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scraped(text):
    """{(name, task, type): value} of the palhm series node_exporter serves."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(palhm_[a-z_]+)\{([^}]*)\} (\S+)$', line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            out[(m.group(1), labels["task"], labels["type"])] = float(m.group(3))
    return out


def test_node_exporter_serves_real_palhm_metrics_and_prometheus_raises_the_failed_run_alert(palhm):
    exporter, prometheus = tool(NODE_EXPORTER), tool("prometheus")
    textfile = palhm.tmp / "textfile"
    src = palhm.tmp / "src"
    src.mkdir()
    (src / "a.txt").write_text("data\n" * 1000)
    palhm.write_config({
        "metrics": {"path": str(textfile / "palhm.prom")},
        "tasks": [
            {"id": "backup", "type": "backup", "backend": "localfs", "max-age": "26h",
             "backend-param": {"root": str(palhm.root)},
             "objects": [{"path": "src.tar", "pipeline": [palhm.stage("tar", "-cf", "-", "-C", str(palhm.tmp), "src")]}]},
            {"id": "drill", "type": "restore-drill", "backup-task": "backup",
             "objects": [{"path": "src.tar", "pipeline": [palhm.stage("tar", "-t")]}]},
            {"id": "broken", "type": "routine", "routine": [palhm.stage("false")]},
            {"id": "later", "type": "routine", "routine": [palhm.stage("true")]}]})
    for task, code in (("backup", 0), ("backup", 0), ("drill", 0), ("broken", 1)):
        res = palhm("-q", "run", task)
        assert res.returncode == code, res.stderr
    written = scraped((textfile / "palhm.prom").read_text())
    nport, pport = free_port(), free_port()
    logs = open(str(palhm.tmp / "servers.log"), "w")
    procs = []
    try:
        procs.append(start([exporter, "--web.listen-address=127.0.0.1:%d" % nport, "--collector.disable-defaults",
                            "--collector.textfile", "--collector.textfile.directory=%s" % textfile], logs))
        text = wait_for(lambda: _try_get("http://127.0.0.1:%d/metrics" % nport), timeout=20)
        assert text, "node_exporter did not answer: %s" % (palhm.tmp / "servers.log").read_text()[-2000:]
        served = scraped(text)
        # Every series the file holds, with the same value; none lost.
        assert served == written
        assert served[("palhm_task_success", "broken", "routine")] == 0
        assert served[("palhm_task_success", "drill", "restore-drill")] == 1
        assert served[("palhm_task_last_run_timestamp_seconds", "later", "routine")] == 0
        assert served[("palhm_task_max_age_seconds", "backup", "backup")] == 26 * 3600
        assert served[("palhm_task_newest_copy_bytes", "backup", "backup")] == \
            served[("palhm_task_previous_copy_bytes", "backup", "backup")] > 0
        assert re.search(r"^node_textfile_scrape_error 0$", text, re.M)
        assert re.search(r'^node_textfile_mtime_seconds\{file="[^"]*palhm\.prom"\}', text, re.M)

        config = palhm.tmp / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": ["127.0.0.1:%d" % nport]}]}]}))
        procs.append(start([prometheus, "--config.file=%s" % config, "--storage.tsdb.path=%s" % (palhm.tmp / "tsdb"),
                            "--web.listen-address=127.0.0.1:%d" % pport], logs))
        api = "http://127.0.0.1:%d/api/v1/" % pport

        def alerts():
            body = _try_get(api + "alerts")
            if not body:
                return None
            found = {(a["labels"]["alertname"], a["labels"]["task"], a["state"])
                     for a in json.loads(body)["data"]["alerts"]}
            return found if ("PalhmTaskFailing", "broken", "firing") in found else None

        found = wait_for(alerts, timeout=60, interval=0.5)
        assert found, "no PalhmTaskFailing alert: %s" % (palhm.tmp / "servers.log").read_text()[-3000:]
        # The failed run fires; the never-run task is pending (for: 1d); the
        # good backup and its drill raise nothing.
        assert ("PalhmTaskNeverRun", "later", "pending") in found
        assert not [a for a in found if a[1] in ("backup", "drill")], found
        # Every dashboard query is valid PromQL and the panels have data.
        for expr in dashboard_exprs():
            q = expr.replace("$instance", ".*")
            doc = json.loads(http_get(api + "query?" + urllib.parse.urlencode({"query": q})))
            assert doc["status"] == "success", (expr, doc)
            assert doc["data"]["result"], "no data for %s" % expr
    finally:
        for proc in reversed(procs):
            stop(proc)
        logs.close()


def _try_get(url):
    try:
        return http_get(url, timeout=2)
    except OSError:
        time.sleep(0.2)
        return None
