# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report the way a user runs it: `ansible-playbook
palhm.palhm.report` against an inventory of hosts (local connections, each
with its own PALHM config and state directory, plus a host nobody can reach
and one without PALHM), then the HTML it wrote opened in headless Chromium
through chromedriver: the rendered DOM has a row per host and task with the
right verdict and colour, a screenshot goes to tests/output. chromium and
chromium-driver come from Debian (APT_PACKAGES in tests/run.sh): missing,
the test fails."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO, Palhm, wait_for

OUTPUT = REPO / "tests" / "output"


class Host:
    """A managed host of the inventory: a palhm environment of its own."""

    def __init__(self, tmp, name):
        (tmp / name).mkdir()
        self.name = name
        self.palhm = Palhm(tmp / name)

    def inventory_vars(self):
        return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                "palhm_report_config": str(self.palhm.config),
                "palhm_report_environment": {"PALHM_STATE_DIR": self.palhm.env["PALHM_STATE_DIR"],
                                             "PALHM_RUN_DIR": self.palhm.env["PALHM_RUN_DIR"]}}

    def backup(self, task_id="backup", fail=False, size=2000, **extra):
        argv = ["false"] if fail else ["head", "-c", str(size), "/dev/zero"]
        task = {"id": task_id, "type": "backup", "backend": "localfs",
                "backend-param": {"root": str(self.palhm.root / task_id)},
                "objects": [{"path": "data.bin", "pipeline": [self.palhm.stage(*argv)]}]}
        task.update(extra)
        return task

    def run(self, task, code=0):
        res = self.palhm("-q", "run", task)
        assert res.returncode == code, res.stderr


@pytest.fixture
def fleet(tmp_path):
    hosts = {}
    good = hosts["good"] = Host(tmp_path, "good")
    good.palhm.write_config({"tasks": [good.backup(**{"max-age": "26h"}),
                                       {"id": "drill", "type": "restore-drill", "backup-task": "backup"}]})
    for _run in range(3):
        good.run("backup")
    good.run("drill")
    bad = hosts["bad"] = Host(tmp_path, "bad")
    bad.palhm.write_config({"tasks": [bad.backup(), {"id": "job", "type": "routine",
                                                     "routine": [bad.palhm.stage("true")]}]})
    bad.run("backup")
    bad.run("job")
    # The dump shrinks to a quarter, and the routine starts failing.
    failing_job = {"id": "job", "type": "routine", "routine": [bad.palhm.stage("false")]}
    bad.palhm.write_config({"tasks": [bad.backup(size=500), failing_job]})
    bad.run("backup")
    bad.run("job", code=1)
    fresh = hosts["fresh"] = Host(tmp_path, "fresh")
    fresh.palhm.write_config({"tasks": [fresh.backup()]})
    nopalhm = hosts["nopalhm"] = Host(tmp_path, "nopalhm")
    nopalhm.palhm.config = nopalhm.palhm.etc / "missing.conf"
    inventory = {"fleet": {"hosts": dict((h.name, h.inventory_vars()) for h in hosts.values())}}
    # Nobody listens on port 1: Ansible's SSH connection is refused.
    inventory["fleet"]["hosts"]["down"] = {"ansible_host": "127.0.0.1", "ansible_port": 1,
                                           "ansible_connection": "ssh", "ansible_user": "nobody",
                                           "ansible_ssh_common_args": "-o ConnectTimeout=5 -o BatchMode=yes"}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    collections = tmp_path / "collections" / "ansible_collections" / "palhm"
    collections.mkdir(parents=True)
    os.symlink(str(REPO), str(collections / "palhm"))
    yield tmp_path
    for h in hosts.values():
        h.palhm.cleanup()


def playbook(tmp_path, *extra):
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    env.pop("PYTHONPATH", None)  # the collection's engine, as a user's controller has it
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(tmp_path / "inventory.json"),
            "palhm.palhm.report", "-e", "palhm_report_hosts=fleet", "-e", "palhm_become=false",
            "-e", "palhm_report_dir=%s" % (tmp_path / "out")] + list(extra)
    return subprocess.run(argv, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=300, check=False)


def rows(doc):
    return dict(((h["host"], r["task"]), r["verdict"]) for h in doc["hosts"] for r in h["tasks"])


def test_the_report_names_every_host_and_task_worst_first(fleet):
    t0 = time.monotonic()
    res = playbook(fleet)
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stdout[-4000:]
    doc = json.loads((fleet / "out" / "palhm-report.json").read_text())
    hosts = dict((h["host"], h) for h in doc["hosts"])
    assert set(hosts) == {"good", "bad", "fresh", "nopalhm", "down"}
    assert hosts["down"]["verdict"] == "unreachable" and hosts["down"]["tasks"] == []
    assert hosts["nopalhm"]["verdict"] == "error" and "missing.conf" in hosts["nopalhm"]["reason"]
    assert rows(doc) == {("good", "backup"): "ok", ("good", "drill"): "ok",
                         ("bad", "job"): "failing", ("bad", "backup"): "shrunk",
                         ("fresh", "backup"): "never-run"}
    # Worst first: hosts, then the tasks of a host.
    assert [h["host"] for h in doc["hosts"]] == ["down", "nopalhm", "bad", "fresh", "good"]
    assert [r["task"] for r in hosts["bad"]["tasks"]] == ["job", "backup"]
    assert doc["ok"] is False and doc["verdict"] == "unreachable"
    assert doc["counts"]["ok"] == 2 and doc["counts"]["failing"] == 1 and doc["counts"]["unreachable"] == 1
    good = hosts["good"]["tasks"][0]
    assert good["copy_sizes"] == [2000, 2000, 2000] and good["newest_copy"]["size"] == 2000
    assert good["drill"]["result"] == "success"
    (job,) = [r for r in hosts["bad"]["tasks"] if r["task"] == "job"]
    assert "false exited with code 1" in job["last_run"]["error"]
    html = (fleet / "out" / "palhm-report.html").read_text()
    for external in ("<script", "<link", "src=", "href=", "@import", "url(", "http://", "https://"):
        assert external not in html, external
    assert html.count("<svg") == 2  # the two storing backups that have copies
    assert "palhm-report.html" in res.stdout
    print("report play: %.1f s for %d hosts" % (elapsed, len(hosts)))

    # Thresholds: a report max-age makes the routine without one stale; the
    # shrink check can be turned off; fail the play when anything is not ok.
    res = playbook(fleet, "-e", "palhm_report_max_age=1s", "-e", "palhm_report_shrink_ratio=0",
                   "-e", "palhm_report_fail=true")
    assert res.returncode == 2, res.stdout[-3000:]
    assert "Fail when a host or a task is not ok" in res.stdout and "unreachable" in res.stdout
    doc = json.loads((fleet / "out" / "palhm-report.json").read_text())
    assert rows(doc)[("bad", "backup")] == "stale" and rows(doc)[("good", "backup")] == "ok"
    assert doc["thresholds"] == {"max_age": 1, "shrink_ratio": 0.0}


def test_the_report_is_mailed_through_the_boot_report_smtp_mua(fleet):
    import aiosmtpd.controller as controller_mod  # a test dependency: missing fails
    from aiosmtpd import handlers
    import smtp_sink  # tests/helpers, on sys.path through conftest
    maildir = fleet / "maildir"
    ctl = controller_mod.Controller(handlers.Mailbox(str(maildir)), hostname="127.0.0.1", port=smtp_sink.free_port())
    ctl.start()
    try:
        mail = {"mua": "smtp", "mua_param": {"host": "127.0.0.1", "port": ctl.port}, "to": ["ops@example.com"]}
        res = playbook(fleet, "-e", json.dumps({"palhm_report_mail": mail}))
        assert res.returncode == 0, res.stdout[-3000:]
        msgs = wait_for(lambda: smtp_sink.read(str(maildir)), timeout=10)
    finally:
        ctl.stop()
    (msg,) = msgs
    assert msg["to"] == ["ops@example.com"]
    assert msg["subject"] == "PALHM fleet report: 4 of 5 hosts not ok (unreachable)"
    assert "failing     bad job:" in msg["body"] and "unreachable down:" in msg["body"]
    assert str(fleet / "out" / "palhm-report.html") in msg["body"]


# -- the HTML in a real browser ---------------------------------------------------------
def webdriver(port, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:  # nosec - local chromedriver
        return json.loads(resp.read().decode())["value"]


def test_the_html_report_renders_in_headless_chromium(fleet):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("chromium and chromium-driver are not installed (APT_PACKAGES in tests/run.sh)", pytrace=False)
    res = playbook(fleet)
    assert res.returncode == 0, res.stdout[-3000:]
    page = fleet / "out" / "palhm-report.html"
    from test_alerts import free_port  # pylint: disable=import-outside-toplevel
    port = free_port()
    log = open(str(fleet / "chromedriver.log"), "w")
    proc = subprocess.Popen([driver, "--port=%d" % port], stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: _ready(port), timeout=20), "chromedriver did not start"
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                                         "--user-data-dir=%s" % (fleet / "chromium-profile")]}}}}
        session = webdriver(port, "POST", "/session", caps)["sessionId"]
        try:
            webdriver(port, "POST", "/session/%s/url" % session, {"url": page.as_uri()})
            script = """
                return Array.from(document.querySelectorAll('tr[data-verdict]')).map(function (tr) {
                  var badge = tr.querySelector('td.verdict span');
                  var svg = tr.querySelector('svg.sizes');
                  return {host: tr.dataset.host, task: tr.dataset.task, verdict: tr.dataset.verdict,
                          text: badge.textContent, colour: getComputedStyle(badge).backgroundColor,
                          bars: svg ? svg.querySelectorAll('rect').length : 0,
                          shrank: svg ? svg.querySelectorAll('rect.shrank').length : 0,
                          svgWidth: svg ? svg.getBoundingClientRect().width : 0,
                          reason: tr.querySelector('td.reason').textContent};
                });"""
            dom = webdriver(port, "POST", "/session/%s/execute/sync" % session, {"script": script, "args": []})
            shot = webdriver(port, "GET", "/session/%s/screenshot" % session)
        finally:
            webdriver(port, "DELETE", "/session/%s" % session)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "palhm-report.png").write_bytes(base64.b64decode(shot))
    shutil.copy(str(page), str(OUTPUT / "palhm-report.html"))
    got = [(r["host"], r["task"], r["verdict"]) for r in dom]
    assert got == [("down", "", "unreachable"), ("nopalhm", "", "error"), ("bad", "job", "failing"),
                   ("bad", "backup", "shrunk"), ("fresh", "backup", "never-run"), ("good", "backup", "ok"),
                   ("good", "drill", "ok")]
    colours = dict(((r["host"], r["task"]), r["colour"]) for r in dom)
    assert colours[("good", "backup")] == "rgb(26, 127, 55)"      # green
    assert colours[("bad", "job")] == "rgb(207, 34, 46)"          # red
    assert colours[("bad", "backup")] == "rgb(179, 89, 0)"        # amber
    assert colours[("down", "")] == "rgb(130, 7, 30)"
    assert all(r["text"] == r["verdict"] for r in dom)
    bars = dict(((r["host"], r["task"]), (r["bars"], r["shrank"], r["svgWidth"])) for r in dom)
    assert bars[("good", "backup")][:2] == (3, 0) and bars[("good", "backup")][2] > 50
    assert bars[("bad", "backup")][:2] == (2, 1)
    assert "Connection refused" in [r for r in dom if r["host"] == "down"][0]["reason"] or \
        "unreachable" in [r for r in dom if r["host"] == "down"][0]["reason"]
    assert len(base64.b64decode(shot)) > 10000


def _ready(port):
    try:
        return webdriver(port, "GET", "/status")["ready"]
    except OSError:
        time.sleep(0.2)
        return False
