# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring through the real CLI: health pings reach a real HTTP server on
127.0.0.1 in order and with the outcome; a monitor that hangs or refuses
costs a warning and at most its timeout, never the task; the Prometheus
textfile parses with prometheus_client and says what the runs did."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import prometheus_client.parser as prom_parser  # noqa: E402  a test dependency: missing fails, not skips

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE = os.path.join(REPO, "plugins", "module_utils")


# -- monitors ----------------------------------------------------------------
class Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.pings = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), PingHandler)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server_address[1], path)


class PingHandler(http.server.BaseHTTPRequestHandler):
    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
        with self.server.lock:
            self.server.pings.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    do_GET = do_POST = do_HEAD = _record

    def log_message(self, *args):
        pass


@pytest.fixture
def monitor():
    srv = Recorder()
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def hanging_url():
    """A server that accepts connections (the kernel does, from the backlog)
    and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield "http://127.0.0.1:%d/hang" % s.getsockname()[1]
    s.close()


@pytest.fixture
def refused_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d/refused" % port


# -- helpers ----------------------------------------------------------------------
def palhm(cfg, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = ENGINE + os.pathsep + env.get("PYTHONPATH", "")
    env["PALHM_RUN_DIR"] = os.path.join(os.path.dirname(cfg), "run")
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "palhm", "-f", cfg] + list(args), capture_output=True, env=env,
                       timeout=120, stdin=subprocess.DEVNULL, check=False)
    p.elapsed = time.monotonic() - t0
    return p


def write_config(tmp, pings=None, metrics=True, flag=None):
    """Task "bk": a localfs backup of two objects; it fails (a stage exits 3)
    while the file `flag` exists. Task "tidy": a routine."""
    fail_unless = "test ! -e %s || exit 3; head -c 100000 /dev/zero" % (flag or tmp / "no-such-flag")
    bk = {"id": "bk", "type": "backup", "backend": "localfs",
          "backend-param": {"root": str(tmp / "store"), "nb-copy-limit": 2},
          "objects": [
              {"path": "zeros", "pipeline": [{"type": "exec-inline", "argv": ["sh", "-c", fail_unless]}]},
              {"path": "hello.txt", "pipeline": [{"type": "exec-inline", "argv": ["echo", "hello"]}]}]}
    if pings:
        bk["pings"] = pings
    doc = {"tasks": [bk, {"id": "tidy", "type": "routine", "routine": [{"type": "exec-inline", "argv": ["true"]}]}]}
    if metrics:
        doc["metrics"] = {"path": str(tmp / "textfile" / "palhm.prom")}
    cfg = tmp / "palhm.json"
    cfg.write_text(json.dumps(doc, indent=1))
    return str(cfg)


def metrics(tmp):
    text = (tmp / "textfile" / "palhm.prom").read_text()
    out = {}
    for fam in prom_parser.text_string_to_metric_families(text):
        assert fam.type == "gauge", fam.name
        for s in fam.samples:
            out[(s.name, s.labels["task"], s.labels["type"])] = s.value
    return out


def stored_copies(cfg):
    p = palhm(cfg, "list", "bk", "--json")
    assert p.returncode == 0, p.stderr
    return [c for c in json.loads(p.stdout) if c["complete"]]


# -- pings ---------------------------------------------------------------------------
def test_a_successful_run_pings_start_then_success(tmp_path, monitor):
    cfg = write_config(tmp_path, pings={"start": monitor.url("/uuid/start"), "success": monitor.url("/uuid"),
                                        "failure": monitor.url("/uuid/fail")}, metrics=False)
    p = palhm(cfg, "run", "bk")
    assert p.returncode == 0, p.stderr
    assert [(m, path) for m, path, _body in monitor.pings] == [("POST", "/uuid/start"), ("POST", "/uuid")]
    assert "bk" in monitor.pings[1][2] and "succeeded" in monitor.pings[1][2]
    assert b"ping to" not in p.stderr


def test_a_failed_run_pings_failure_with_a_short_reason_and_no_secret(tmp_path, monitor):
    flag = tmp_path / "fail"
    flag.write_text("")
    cfg = write_config(tmp_path, pings={"start": monitor.url("/s"), "success": monitor.url("/ok"),
                                        "failure": monitor.url("/fail")}, metrics=False, flag=flag)
    # The failing stage's argv carries a password; the ping must not.
    doc = json.loads(open(cfg).read())
    doc["tasks"][0]["objects"][0]["pipeline"][0]["argv"] += ["--password=hunter2", "AWS_SECRET_ACCESS_KEY=xyz"]
    with open(cfg, "w") as f:
        json.dump(doc, f)
    p = palhm(cfg, "run", "bk")
    assert p.returncode == 1
    # The argv is named on stderr (cron mail), its secrets are not (issue 12 item 8).
    assert "hunter2" not in p.stderr.decode() and "--password=********" in p.stderr.decode()
    assert [path for _method, path, _body in monitor.pings] == ["/s", "/fail"]
    reason = monitor.pings[1][2]
    assert "StageError" in reason and "exit status 1" in reason and "zeros" in reason
    assert "hunter2" not in reason and "xyz" not in reason
    assert len(reason) < 400 and reason.count("\n") <= 1


@pytest.mark.parametrize("which", ["hanging", "refused"])
def test_a_dead_monitor_costs_a_warning_and_at_most_its_timeout(tmp_path, which, hanging_url, refused_url):
    url = hanging_url if which == "hanging" else refused_url
    cfg = write_config(tmp_path, pings={"start": url, "success": url, "failure": url, "timeout": 1})
    p = palhm(cfg, "run", "bk")
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert len(stored_copies(cfg)) == 1
    warnings = [ln for ln in err.splitlines() if "ping to" in ln]
    assert len(warnings) == 2, err  # start and success
    assert all(("no answer within 1s" if which == "hanging" else "failed") in w for w in warnings), err
    assert "/hang" not in err and "/refused" not in err  # the URL's path (its secret) is not logged
    # Two pings of at most ~1 s each, plus the run itself.
    assert p.elapsed < 8, p.elapsed
    m = metrics(tmp_path)
    assert m[("palhm_task_success", "bk", "backup")] == 1


def test_bad_ping_and_metrics_config_is_refused_with_its_path(tmp_path):
    cfg = write_config(tmp_path, pings={"start": "ftp://example.org/x"})
    p = palhm(cfg, "run", "bk")
    assert p.returncode == 2 and "tasks[0].pings.start" in p.stderr.decode()
    cfg = write_config(tmp_path, pings={"timeout": 0})
    p = palhm(cfg, "run", "bk")
    assert p.returncode == 2 and "tasks[0].pings.timeout" in p.stderr.decode()
    doc = json.loads(open(cfg).read())
    doc["tasks"][0].pop("pings")
    doc["metrics"] = {"path": "relative.prom"}
    with open(cfg, "w") as f:
        json.dump(doc, f)
    p = palhm(cfg, "run", "bk")
    assert p.returncode == 2 and "metrics.path" in p.stderr.decode()


# -- metrics ---------------------------------------------------------------------------
def test_metrics_match_the_runs_and_a_failure_keeps_the_last_success(tmp_path):
    flag = tmp_path / "fail"
    cfg = write_config(tmp_path, flag=flag)
    t0 = time.time()
    p = palhm(cfg, "run", "bk")
    assert p.returncode == 0, p.stderr
    t1 = time.time()
    m = metrics(tmp_path)
    (copy,) = stored_copies(cfg)

    def key(name):
        return (name, "bk", "backup")

    assert m[key("palhm_task_success")] == 1
    assert m[key("palhm_task_exit_status")] == 0
    assert m[key("palhm_task_bytes")] == copy["size"] == 100000 + len("hello\n")
    assert m[key("palhm_task_objects")] == copy["objects"] == 2
    assert m[key("palhm_task_copies")] == 1
    assert t0 - 1 <= m[key("palhm_task_last_run_timestamp_seconds")] <= t1 + 1
    assert m[key("palhm_task_last_success_timestamp_seconds")] == m[key("palhm_task_last_run_timestamp_seconds")]
    assert m[key("palhm_task_last_failure_timestamp_seconds")] == 0
    assert 0 < m[key("palhm_task_duration_seconds")] <= p.elapsed
    last_success = m[key("palhm_task_last_success_timestamp_seconds")]
    mode = os.stat(str(tmp_path / "textfile" / "palhm.prom")).st_mode & 0o777
    assert mode == 0o644  # node_exporter runs as another user

    # Another task's series live in the same file.
    assert palhm(cfg, "run", "tidy").returncode == 0
    m = metrics(tmp_path)
    assert m[("palhm_task_success", "tidy", "routine")] == 1
    assert ("palhm_task_bytes", "tidy", "routine") not in m
    assert m[key("palhm_task_bytes")] == 100000 + len("hello\n")

    # A failed run: failure metrics move, the last success stays.
    flag.write_text("")
    time.sleep(1.1)
    p = palhm(cfg, "run", "bk")
    assert p.returncode == 1
    m = metrics(tmp_path)
    assert m[key("palhm_task_success")] == 0
    assert m[key("palhm_task_exit_status")] == 1
    assert m[key("palhm_task_last_success_timestamp_seconds")] == last_success
    assert m[key("palhm_task_last_run_timestamp_seconds")] > last_success
    assert m[key("palhm_task_last_failure_timestamp_seconds")] == m[key("palhm_task_last_run_timestamp_seconds")]
    assert m[key("palhm_task_bytes")] == 0 and m[key("palhm_task_objects")] == 0
    assert m[key("palhm_task_copies")] == 1  # the rolled-back copy is not counted
    assert m[("palhm_task_success", "tidy", "routine")] == 1

    # Success again: the copies kept follow rotation (nb-copy-limit 2).
    flag.unlink()
    for _run in range(2):
        assert palhm(cfg, "run", "bk").returncode == 0
    m = metrics(tmp_path)
    assert m[key("palhm_task_success")] == 1 and m[key("palhm_task_copies")] == 2 == len(stored_copies(cfg))
    assert m[key("palhm_task_last_success_timestamp_seconds")] > last_success
    leftovers = [n for n in os.listdir(str(tmp_path / "textfile")) if n not in ("palhm.prom", "palhm.prom.lock")]
    assert leftovers == []


def test_an_unwritable_metrics_file_is_a_warning_not_a_failure(tmp_path):
    cfg = write_config(tmp_path)
    (tmp_path / "textfile").write_text("a file where the directory should be")
    p = palhm(cfg, "run", "bk")
    assert p.returncode == 0
    assert "cannot update the metrics file" in p.stderr.decode()
    assert len(stored_copies(cfg)) == 1
