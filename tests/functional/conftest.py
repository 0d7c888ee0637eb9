# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the CLI tests: each test gets its own backup root, config
directory and lock directory, and runs the real `palhm` command
(``python -m palhm`` from plugins/module_utils) as a subprocess."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ENGINE_DIR = REPO / "plugins" / "module_utils"
HELPERS = str(REPO / "tests" / "helpers")
sys.path.insert(0, HELPERS)

from moto_server import MotoServer  # noqa: E402  pylint: disable=wrong-import-position


def marker_pids(marker):
    """PIDs of live processes whose argv or environment holds `marker`."""
    found = []
    needle = marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        for what in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (name, what), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if needle in data:
                try:
                    with open("/proc/%s/stat" % name, "rb") as f:
                        state = f.read().rsplit(b")", 1)[1].split()[0]
                except OSError:
                    break
                if state != b"Z":  # a zombie is already dead
                    found.append(int(name))
                break
    return found


def wait_for(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Palhm:
    """Runs the palhm CLI with a per-test environment."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.root = tmp_path / "backup"
        self.etc = tmp_path / "etc"
        self.etc.mkdir()
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = str(ENGINE_DIR) + os.pathsep + self.env.get("PYTHONPATH", "")
        self.env["PALHM_RUN_DIR"] = str(tmp_path / "run")
        self.env["PALHM_STATE_DIR"] = str(tmp_path / "state")
        self.env.pop("PALHM_TEST_MARKER", None)
        # A marker every stage of this test carries in its environment, to
        # find any child process palhm may leave behind.
        self.marker = "palhm-test-%s" % uuid.uuid4().hex
        self.config = None
        self.procs = []

    def write_config(self, doc, name="palhm.conf"):
        path = self.etc / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=1), encoding="utf-8")
        if self.config is None or name.startswith("palhm."):
            self.config = path
        return path

    def argv(self, *args, config=True):
        cmd = [sys.executable, "-m", "palhm"]
        if config and self.config is not None and "-f" not in args:
            cmd += ["-f", str(self.config)]
        return cmd + [str(a) for a in args]

    def __call__(self, *args, timeout=120, config=True, cwd=None):
        return subprocess.run(self.argv(*args, config=config), env=self.env, stdout=subprocess.PIPE, check=False,
                              stderr=subprocess.PIPE, timeout=timeout, cwd=cwd or str(self.tmp), text=True)

    def start(self, *args):
        proc = subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=str(self.tmp), text=True)
        self.procs.append(proc)
        return proc

    def copies(self, task="backup"):
        res = self("list", task, "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def root_entries(self):
        return sorted(p.name for p in self.root.iterdir()) if self.root.exists() else []

    def partials(self):
        return [n for n in self.root_entries() if n.endswith(".palhm-partial")]

    def children(self):
        return marker_pids(self.marker)

    def stage(self, *argv, **extra):
        """An exec-inline stage carrying this test's marker."""
        item = {"type": "exec-inline", "argv": list(argv), "env": {"PALHM_TEST_MARKER": self.marker}}
        item.update(extra)
        return item

    def slow_producer(self, chunks=40, delay=0.05, size=4096):
        """A stage that writes `chunks` blocks with a pause between: python
        runs the loop itself (exec'ed directly, no shell in between)."""
        code = ("import sys, time\n"
                "for i in range(%d):\n"
                "    sys.stdout.buffer.write(bytes([65 + i %% 26]) * %d)\n"
                "    sys.stdout.flush()\n"
                "    time.sleep(%r)\n" % (chunks, size, delay))
        return self.stage(sys.executable, "-c", code)

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        for pid in marker_pids(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def palhm(tmp_path):
    p = Palhm(tmp_path)
    yield p
    p.cleanup()


# -- S3 servers shared by the S3 and restore tests (real servers: a server that
# does not start fails the tests, nothing is skipped) --------------------------
@pytest.fixture(scope="session")
def ceph():
    """Ceph RGW: started (or reused) by ceph_rgw.sh; stopped at the end only
    when this session started it."""
    script = os.path.join(HELPERS, "ceph_rgw.sh")
    was_up = subprocess.run([script, "status"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            check=False).returncode == 0
    proc = subprocess.run([script, "start"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail("Ceph RGW did not start:\n%s" % proc.stderr[-4000:], pytrace=False)
    env = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
    yield {"endpoint": env["PALHM_S3_ENDPOINT"], "access_key": env["PALHM_S3_ACCESS_KEY"],
           "secret_key": env["PALHM_S3_SECRET_KEY"], "region": env["PALHM_S3_REGION"]}
    if not was_up:
        subprocess.run([script, "stop"], check=False)


@pytest.fixture(scope="session")
def moto():
    try:
        srv = MotoServer().start()
    except RuntimeError as e:
        pytest.fail("moto_server did not start: %s" % e, pytrace=False)
    yield {"endpoint": srv.url, "access_key": "testing", "secret_key": "testing", "region": "us-east-1"}
    srv.stop()
