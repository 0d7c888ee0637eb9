# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every scenario of the reliability campaign shares: the engine under
test (the repo's, or a copy with a planted defect), a sandboxed `palhm`
runner, deterministic producer stages, leftover-child detection, and the
per-scenario result that becomes a row of the table."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ENGINE_DIR = REPO / "plugins" / "module_utils"
PRODUCER = HERE / "producer.py"
PY = sys.executable
MARKER_VAR = "PALHM_RELIABILITY_MARKER"


# -- results -------------------------------------------------------------------
class Result:
    """One row of the table. A *run* is one unit of the scenario (a killed
    backup and its recovery, one fuzzed config, one concurrent round...). A
    run *fails* when any invariant of the scenario is broken; `lost` and
    `fake` count complete copies that disappeared and incomplete copies that
    were listed, kept or verified as complete."""

    def __init__(self, name):
        self.name = name
        self.runs = 0
        self.failures = 0
        self.lost = 0
        self.fake = 0
        self.problems = []
        self.notes = {}
        self.seconds = 0.0

    def record(self, problems, lost=0, fake=0):
        self.runs += 1
        self.lost += lost
        self.fake += fake
        if problems or lost or fake:
            self.failures += 1
            for p in problems:
                if len(self.problems) < 12:
                    self.problems.append("run %d: %s" % (self.runs, p))

    def note(self, key, inc=1):
        self.notes[key] = self.notes.get(key, 0) + inc

    @property
    def ok(self):
        return self.runs > 0 and self.failures == 0 and self.lost == 0 and self.fake == 0

    def as_dict(self):
        return {"scenario": self.name, "runs": self.runs, "failures": self.failures, "lost": self.lost,
                "fake_complete": self.fake, "seconds": round(self.seconds, 1), "notes": self.notes,
                "problems": self.problems}


# -- deterministic objects -----------------------------------------------------
def _blocks(size, chunk, seed):
    i, left = 0, size
    while left > 0:
        n = min(chunk, left)
        yield bytes([(seed * 7 + i) % 251]) * n
        left -= n
        i += 1


def expected_sha(size, chunk, seed):
    h = hashlib.sha256()
    for b in _blocks(size, chunk, seed):
        h.update(b)
    return h.hexdigest()


class Obj:
    """A backup object made by producer.py: path, size, and its known SHA-256."""

    def __init__(self, path, size, chunk=65536, delay=0.0, seed=1):
        self.path, self.size, self.chunk, self.delay, self.seed = path, size, chunk, delay, seed
        self.sha = expected_sha(size, chunk, seed)

    def stage(self, marker):
        return {"type": "exec-inline",
                "argv": [PY, str(PRODUCER), str(self.size), str(self.chunk), repr(self.delay), str(self.seed)],
                "env": {MARKER_VAR: marker}}

    def config(self, marker, **extra):
        d = {"path": self.path, "pipeline": [self.stage(marker)]}
        d.update(extra)
        return d


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- processes -------------------------------------------------------------------
def marker_pids(marker):
    """Live (non-zombie) processes whose environment holds `marker`."""
    found = []
    needle = marker.encode()
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if needle in data:
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if state != b"Z":
                found.append(int(name))
    return found


def wait_gone(marker, timeout):
    """Wait until no process carries `marker`; -> PIDs still alive (then killed)."""
    deadline = time.monotonic() + timeout
    while True:
        left = marker_pids(marker)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


def wait_for(pred, timeout, interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


# -- the engine under test -------------------------------------------------------
class Palhm:
    """Runs the real `palhm` command (python -m palhm) from `engine_dir`
    with its own lock dir, state dir and AWS settings, in `workdir`."""

    def __init__(self, ctx, workdir, env=None):
        self.ctx = ctx
        # A fresh directory per story, even when a scenario runs again (--planted).
        base, n = Path(workdir), 1
        self.workdir = base
        while self.workdir.exists():
            n += 1
            self.workdir = base.with_name("%s-%d" % (base.name, n))
        self.workdir.mkdir(parents=True)
        self.marker = "palhm-rel-%s" % uuid.uuid4().hex
        e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PALHM_"))}
        e["PYTHONPATH"] = str(ctx.engine_dir)
        e["PALHM_RUN_DIR"] = str(self.workdir / "run")
        e["PALHM_STATE_DIR"] = str(self.workdir / "state")
        empty = self.workdir / "aws-empty"
        empty.write_text("")
        e["AWS_CONFIG_FILE"] = str(empty)
        e["AWS_SHARED_CREDENTIALS_FILE"] = str(empty)
        e["AWS_EC2_METADATA_DISABLED"] = "true"
        e["AWS_ACCESS_KEY_ID"] = "testing"  # moto takes any key
        e["AWS_SECRET_ACCESS_KEY"] = "testing"
        e.update(env or {})
        self.env = e
        self.config = None

    def write_config(self, doc, name="palhm.conf"):
        path = self.workdir / name
        path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        self.config = path
        return path

    def argv(self, *args, config=None):
        return [PY, "-m", "palhm", "-f", str(config or self.config)] + [str(a) for a in args]

    def run(self, *args, timeout=300, config=None, umask=None):
        return subprocess.run(self.argv(*args, config=config), env=self.env, cwd=str(self.workdir),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                              umask=-1 if umask is None else umask, check=False)

    def start(self, *args, config=None):
        return subprocess.Popen(self.argv(*args, config=config), env=self.env, cwd=str(self.workdir),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def list(self, task, config=None):
        res = self.run("list", task, "--json", config=config)
        if res.returncode != 0:
            raise RuntimeError("palhm list %s failed (%d): %s" % (task, res.returncode, res.stderr.strip()))
        return json.loads(res.stdout)

    def verify(self, task, prefix, config=None):
        return self.run("verify", task, prefix, config=config)

    def children(self):
        return marker_pids(self.marker)


def s3_client(endpoint):
    import boto3
    import botocore.config
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=botocore.config.Config(s3={"addressing_style": "path"},
                                                      retries={"mode": "standard", "max_attempts": 3}))


def s3_state(client, bucket, root):
    """{prefix: {"keys": {path: size}, "manifest": dict|None, "marker": bool}} and the
    unfinished multipart uploads under ROOT/, read straight from the server."""
    out = {}
    token = None
    while True:
        kw = {"Bucket": bucket, "Prefix": root + "/"}
        if token:
            kw["ContinuationToken"] = token
        page = client.list_objects_v2(**kw)
        for o in page.get("Contents", ()):
            rest = o["Key"][len(root) + 1:]
            if "/" not in rest:
                continue
            prefix, path = rest.split("/", 1)
            out.setdefault(prefix, {"keys": {}, "manifest": None, "marker": False})["keys"][path] = o["Size"]
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]
    for prefix, info in out.items():
        if ".palhm-manifest.json" in info["keys"]:
            body = client.get_object(Bucket=bucket, Key="%s/%s/.palhm-manifest.json" % (root, prefix))["Body"]
            try:
                info["manifest"] = json.loads(body.read())
            except ValueError:
                info["manifest"] = None
        info["marker"] = ".palhm-in-progress" in info["keys"]
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=root + "/").get("Uploads", [])
    return out, uploads


def s3_object_sha(client, bucket, key):
    h = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for block in iter(lambda: body.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()
