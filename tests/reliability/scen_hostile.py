# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile stages (localfs): each run is one stage that misbehaves the way
real programs do, in turn:

  signal     a tar-like stage with ec "<2" killed by SIGKILL mid-stream
  seek       a stage that seeks back on its stdout to rewrite a header (zip does)
  reopen     a stage that reopens /dev/stdout (O_TRUNC) and writes again
  late       a background child that writes after the stage exited
  enospc     a stage that swallows ENOSPC on a full 4 MiB tmpfs, then frees space
  cancel     SIGTERM of `palhm run` whose stage is `sh -c "sleep 30 | cat"`
  failure    a stage fails while another one's children hold the pipes
  kill9      kill -9 of palhm while a stage's children keep writing (or sleeping)

Invariants, every run: a copy listed complete verifies and holds exactly the
stream the pipeline produced; a failed or cancelled run leaves no complete
copy and no partial one; cancel and failure end within seconds (exit 4, exit
1); no stage process, child or grandchild, outlives palhm; the older copies
stay byte for byte intact."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from lib import PY, MARKER_VAR, Palhm, Result, sha_file, wait_for, wait_gone

CLASSES = ("signal", "seek", "reopen", "late", "enospc", "cancel", "failure", "kill9")
NO_SPACE = re.compile(r"^palhm: .*no space left on device", re.M)
STOP_WITHIN = 5.0  # seconds from SIGTERM or a failing stage to palhm's exit

SEEKER = """
import os, sys, time
out = sys.stdout.buffer
out.write(b"A" * (1 << 20))
out.flush()
time.sleep(0.4)
try:
    os.lseek(1, 0, os.SEEK_SET)
except OSError:
    pass
out.write(b"HEADER" * 4)
out.flush()
"""
SEEK_STREAM = b"A" * (1 << 20) + b"HEADER" * 4

SWALLOWER = """
import os, sys
block = bytes(range(256)) * 256
for i in range(128):
    try:
        os.write(1, block)
    except OSError:
        pass
os.unlink(sys.argv[1])
"""
SWALLOW_STREAM = bytes(range(256)) * 256 * 128


def _snapshot(root):
    snap = {}
    if not os.path.isdir(root):
        return snap
    for name in sorted(os.listdir(root)):
        full = os.path.join(root, name)
        if name.endswith((".palhm-partial", ".palhm-deleting")) or not os.path.isdir(full):
            continue
        files = {}
        for d, _dirs, fs in os.walk(full):
            for f in fs:
                if f.startswith(".palhm-"):
                    continue
                files[os.path.relpath(os.path.join(d, f), full)] = sha_file(os.path.join(d, f))
        snap[name] = files
    return snap


class _Story:
    def __init__(self, ctx):
        self.p = Palhm(ctx, ctx.tmp / "hostile")
        self.root = self.p.workdir / "root"
        self.mnt = self.p.workdir / "mnt"
        self.base = None

    def stage(self, *argv, **extra):
        item = {"type": "exec-inline", "argv": list(argv), "env": {MARKER_VAR: self.p.marker}}
        item.update(extra)
        return item

    def sh(self, script, **extra):
        # The marker is also sh's $0: in the argv of sh and of its subshells.
        return self.stage("/bin/sh", "-c", script, self.p.marker, **extra)

    def config(self, objects, root=None, name="palhm.conf"):
        return self.p.write_config({"tasks": [{
            "id": "backup", "type": "backup", "backend": "localfs",
            "backend-param": {"root": str(root or self.root), "nb-copy-limit": 1000},
            "objects": [{"path": path, "pipeline": stages} for path, stages in objects]}]}, name)

    def complete(self, cfg):
        return [c for c in self.p.list("backup", config=cfg) if c["complete"]]


def _check_copies(st, cfg, probs):
    """Every copy listed complete verifies; -> how many do not."""
    fake = 0
    for c in st.complete(cfg):
        v = st.p.verify("backup", c["prefix"], config=cfg)
        if v.returncode != 0:
            fake += 1
            probs.append("copy %s listed complete does not verify: %s" % (c["prefix"], v.stderr.strip()[-200:]))
    return fake


def _contents(root, prefix, path):
    try:
        with open(os.path.join(root, prefix, path), "rb") as f:
            return f.read()
    except OSError:
        return None


def _run_class(st, kind, probs):
    """One hostile run; -> (fake-complete count, lost count)."""
    p, root = st.p, st.root
    before = {c["prefix"] for c in st.complete(st.base)}
    fake = lost = 0
    expected = None  # (path, bytes) the copy must hold when the run succeeds
    want_rc = 0
    timeout = 120
    if kind == "signal":
        cfg = st.config([("src.tar", [st.sh("echo half-an-archive; kill -KILL $$", ec="<2")])])
        want_rc = 1
    elif kind == "seek":
        cfg = st.config([("seek.bin", [st.stage(PY, "-c", SEEKER)])])
        expected = ("seek.bin", SEEK_STREAM)
    elif kind == "reopen":
        cfg = st.config([("reopen.txt", [st.sh("echo first; sleep 0.4; echo second > /dev/stdout")])])
        expected = ("reopen.txt", b"first\nsecond\n")
    elif kind == "late":
        cfg = st.config([("late.txt", [st.sh("(sleep 0.8; echo late) 2>/dev/null & echo early")])])
        expected = ("late.txt", b"early\nlate\n")
    elif kind == "enospc":
        return _enospc(st, probs)
    elif kind in ("cancel", "kill9"):
        return _signalled(st, kind, probs, before)
    else:  # failure
        cfg = st.config([("x", [st.sh("sleep 30 | cat"), st.sh("exit 3")])])
        want_rc = 1
        timeout = 40
    t0 = time.monotonic()
    try:
        r = p.run("-q", "run", "backup", config=cfg, timeout=timeout)
    except subprocess.TimeoutExpired:
        probs.append("%s: palhm run did not end within %d s" % (kind, timeout))
        wait_gone(p.marker, 0)
        return 0, 0
    took = time.monotonic() - t0
    if kind == "late":
        time.sleep(1.2)  # whatever the child writes has been written
    if r.returncode != want_rc:
        probs.append("%s: exit %d, want %d: %s" % (kind, r.returncode, want_rc, r.stderr.strip()[-300:]))
    if kind == "failure" and took > STOP_WITHIN:
        probs.append("failure: a failing stage took %.1f s to stop the pipeline" % took)
    if kind == "signal" and "killed by SIGKILL" not in r.stderr:
        probs.append("signal: the error does not say the stage was killed: %r" % r.stderr[-300:])
    left = wait_gone(p.marker, 1.0)
    if left:
        probs.append("%s: stage processes left running: %s" % (kind, left))
    fake = _check_copies(st, cfg, probs)
    made = {c["prefix"] for c in st.complete(cfg)} - before
    if want_rc != 0 and made:
        fake += len(made)
        probs.append("%s: a failed run left complete copies %s" % (kind, sorted(made)))
    if expected and r.returncode == 0:
        (new,) = made or (None,)
        data = _contents(root, new, expected[0]) if new else None
        if data != expected[1]:
            lost += 1
            probs.append("%s: the copy does not hold the stream (%s bytes stored, %d produced)"
                         % (kind, None if data is None else len(data), len(expected[1])))
    return fake, lost


def _signalled(st, kind, probs, before):
    p = st.p
    fake = 0
    if kind == "cancel":
        cfg = st.config([("slow", [st.sh("sleep 30 | cat")])])
    else:
        # Writers die of SIGPIPE once palhm is gone; `sleep 30 | cat` would not.
        cfg = st.config([("ticks", [st.sh("sleep 30 | cat & (while :; do echo tick; sleep 0.05; done) | cat")])])
    proc = p.start("-q", "run", "backup", config=cfg)
    if not wait_for(lambda: len(p.children()) >= 3 or proc.poll() is not None, 30):
        probs.append("%s: the stage did not start" % kind)
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM if kind == "cancel" else signal.SIGKILL)
    try:
        proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        probs.append("%s: palhm did not exit within 40 s of the signal" % kind)
    took = time.monotonic() - t0
    if kind == "cancel":
        if proc.returncode != 4:
            probs.append("cancel: exit %s, want 4" % proc.returncode)
        if took > STOP_WITHIN:
            probs.append("cancel: exit %.1f s after SIGTERM (want < %.0f s)" % (took, STOP_WITHIN))
    left = wait_gone(p.marker, 2.0 if kind == "kill9" else 0.5)
    if left:
        probs.append("%s: processes left running after palhm exited: %s" % (kind, left))
    partials = [e for e in os.listdir(st.root) if e.endswith(".palhm-partial")] if st.root.exists() else []
    if kind == "cancel" and partials:
        probs.append("cancel: partial copy left: %s" % partials)
    if kind == "kill9" and partials:
        obj = st.root / partials[0] / "ticks"
        size = obj.stat().st_size if obj.exists() else 0
        time.sleep(0.3)
        if (obj.stat().st_size if obj.exists() else 0) != size:
            probs.append("kill9: something still writes into the partial copy")
    made = {c["prefix"] for c in st.complete(cfg)} - before
    if made:
        fake += len(made)
        probs.append("%s: complete copies made by a run that was stopped: %s" % (kind, sorted(made)))
    return fake, 0


def _enospc(st, probs):
    p = st.p
    st.mnt.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=755", "palhm-hostile", str(st.mnt)], check=True)
    fake = lost = 0
    try:
        root = st.mnt / "root"
        ballast = st.mnt / "ballast"
        ballast.write_bytes(b"\0" * (1 << 20))
        cfg = st.config([("dump.bin", [st.stage(PY, "-c", SWALLOWER, str(ballast))])], root=root, name="disk.conf")
        r = p.run("-q", "run", "backup", config=cfg, timeout=120)
        left = wait_gone(p.marker, 1.0)
        if left:
            probs.append("enospc: stage processes left running: %s" % left)
        fake = _check_copies(st, cfg, probs)
        complete = st.complete(cfg)
        if r.returncode == 0:
            data = _contents(root, complete[-1]["prefix"], "dump.bin") if complete else None
            if data != SWALLOW_STREAM:
                lost += 1
                probs.append("enospc: exit 0 but the copy holds %s of %d bytes"
                             % (None if data is None else len(data), len(SWALLOW_STREAM)))
        elif r.returncode == 1:
            if not NO_SPACE.search(r.stderr):
                probs.append("enospc: no 'no space left on device' line: %r" % r.stderr[-300:])
            if complete:
                fake += len(complete)
                probs.append("enospc: a failed run left complete copies")
            if root.exists() and os.listdir(root):
                probs.append("enospc: left in the root: %s" % os.listdir(root))
        else:
            probs.append("enospc: exit %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
    finally:
        if subprocess.run(["umount", str(st.mnt)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(st.mnt)], check=False)
    return fake, lost


def hostile(ctx, n):
    res = Result("hostile stages (localfs)")
    st = _Story(ctx)
    base = st.base = st.config([("ok", [st.stage("echo", "ok")])], name="base.conf")
    for _unused in range(2):
        r = st.p.run("-q", "run", "backup", config=base)
        if r.returncode != 0:
            raise RuntimeError("baseline backup failed: %s" % r.stderr)
    for i in range(n):
        kind = CLASSES[i % len(CLASSES)]
        probs = []
        snap = _snapshot(st.root)
        fake, lost = _run_class(st, kind, probs)
        now = _snapshot(st.root)
        for prefix, files in snap.items():
            if now.get(prefix) != files:
                lost += 1
                probs.append("%s: older copy %s changed or disappeared" % (kind, prefix))
        # The next ordinary run cleans what a kill left, and succeeds.
        r = st.p.run("-q", "run", "backup", config=base)
        if r.returncode != 0:
            probs.append("%s: an ordinary run afterwards failed: %s" % (kind, r.stderr.strip()[-300:]))
        partials = [e for e in os.listdir(st.root) if e.endswith(".palhm-partial")]
        if partials:
            probs.append("%s: partial copies left after the next run: %s" % (kind, partials))
        res.note(kind)
        res.record(probs, lost=lost, fake=fake)
    return res
