# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is stored is exactly the stream, and only a stream every stage
finished well: `palhm run` and `palhm verify` driven from outside with
stages that misbehave the way real programs do (killed by a signal, seeking
on their stdout, reopening /dev/stdout, leaving a background child behind,
a full disk), and cancels that must stop the whole pipeline at once.

Whatever a stage does, no copy is listed complete unless it verifies and
holds every byte the pipeline produced, in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import wait_for


def backup_config(palhm, objects, root=None, **bp):
    params = {"root": str(root or palhm.root)}
    params.update(bp)
    return palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                                          "backend-param": params, "objects": objects}]})


def complete_copies(palhm):
    return [c for c in palhm.copies() if c["complete"]]


def assert_nothing_false_complete(palhm):
    """Every copy listed complete verifies (the class every test here checks)."""
    for c in complete_copies(palhm):
        v = palhm("verify", "backup", c["prefix"])
        assert v.returncode == 0, "copy %s is listed complete but does not verify: %s" % (c["prefix"], v.stderr)


# --------------------------------------------------------------------------
# item 1: a stage killed by a signal is a failure whatever its ec
# --------------------------------------------------------------------------

def test_a_tar_killed_by_sigkill_is_a_failure_even_with_ec_below_2(palhm):
    # The stock tar Exec accepts "<2" (files changed while read). A tar the
    # OOM killer stops has written half an archive: it must not be a copy.
    tar = palhm.stage("/bin/sh", "-c", "echo half-an-archive; kill -KILL $$", ec="<2")
    backup_config(palhm, [{"path": "src.tar", "pipeline": [tar]}])
    res = palhm("run", "backup")
    assert res.returncode == 1, res.stderr
    assert "killed by SIGKILL" in res.stderr
    assert complete_copies(palhm) == [] and palhm.partials() == []


def test_an_ec_accepts_its_exit_codes_but_never_a_death_by_signal(palhm):
    ok = palhm.stage("/bin/sh", "-c", "echo data; exit 1", ec="<2")
    anything = palhm.stage("/bin/sh", "-c", "echo more; kill -TERM $$", ec="<=1")
    backup_config(palhm, [{"path": "a", "pipeline": [ok]}, {"path": "b", "pipeline": [anything]}])
    res = palhm("run", "backup")
    assert res.returncode == 1, res.stderr
    assert "object b" in res.stderr and "killed by SIGTERM" in res.stderr
    assert complete_copies(palhm) == []


def test_exit_codes_outside_0_to_255_are_config_errors(palhm):
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("true", ec="<=-1")]}])
    res = palhm("run", "backup")
    assert res.returncode == 2
    assert "tasks[0].objects[0].pipeline[0].ec" in res.stderr and "0 to 255" in res.stderr


# --------------------------------------------------------------------------
# item 3: what is stored is exactly the stream, and what is listed complete verifies
# --------------------------------------------------------------------------

def stored(palhm, path):
    (copy,) = complete_copies(palhm)
    return (palhm.root / copy["prefix"] / path).read_bytes()


def python_stage(palhm, code):
    return palhm.stage(sys.executable, "-c", code)


SEEKING_WRITER = """
import os, sys, time
out = sys.stdout.buffer
out.write(b"A" * (1 << 20))
out.flush()
time.sleep(0.5)           # palhm has seen (and hashed) the first MiB
try:
    os.lseek(1, 0, os.SEEK_SET)   # rewrite a header, as zip does on a file
except OSError:
    pass                  # not seekable: append instead (zip's streaming mode)
out.write(b"HEADER" * 4)
out.flush()
"""


def test_a_stage_that_seeks_back_on_its_stdout_cannot_change_what_was_hashed(palhm):
    backup_config(palhm, [{"path": "seek.bin", "pipeline": [python_stage(palhm, SEEKING_WRITER)]}])
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert_nothing_false_complete(palhm)
    assert stored(palhm, "seek.bin") == b"A" * (1 << 20) + b"HEADER" * 4


def test_zip_writing_to_stdout_makes_an_archive_that_verifies_and_unzips(palhm):
    src = palhm.tmp / "data.bin"
    src.write_bytes(os.urandom(6 << 20))
    backup_config(palhm, [{"path": "data.zip", "pipeline": [palhm.stage("zip", "-q", "-0", "-", str(src))]}])
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert_nothing_false_complete(palhm)
    (copy,) = complete_copies(palhm)
    archive = palhm.root / copy["prefix"] / "data.zip"
    unzipped = subprocess.run(["unzip", "-p", str(archive)], stdout=subprocess.PIPE, check=True).stdout
    assert unzipped == src.read_bytes()


def test_a_stage_that_reopens_dev_stdout_cannot_truncate_the_object(palhm):
    # `> /dev/stdout` opens the object again with O_TRUNC when stdout is a file.
    stage = palhm.stage("/bin/sh", "-c", "echo first; sleep 0.5; echo second > /dev/stdout")
    backup_config(palhm, [{"path": "reopen.txt", "pipeline": [stage]}])
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert_nothing_false_complete(palhm)
    assert stored(palhm, "reopen.txt") == b"first\nsecond\n"


@pytest.mark.parametrize("script", [
    "(sleep 1; echo late) & echo early",
    # Its stderr elsewhere: nothing but the object's stream is still open.
    "(sleep 1; echo late) 2>/dev/null & echo early",
])
def test_a_background_child_writing_after_the_stage_exited_is_part_of_the_stream(palhm, script):
    stage = palhm.stage("/bin/sh", "-c", script)
    backup_config(palhm, [{"path": "late.txt", "pipeline": [stage]}])
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    time.sleep(1.5)  # whatever the child writes has been written by now
    assert_nothing_false_complete(palhm)
    assert stored(palhm, "late.txt") == b"early\nlate\n"


# Writes 8 MiB and ignores every write error (as a careless dumper does), then
# frees the ballast file, as log rotation might: the manifest fits again.
SWALLOWING_WRITER = """
import os, sys
ballast = sys.argv[1]
block = bytes(range(256)) * 256
for i in range(128):
    try:
        os.write(1, block)
    except OSError:
        pass
os.unlink(ballast)
"""


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=755", "palhm-test", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_fails_the_object_even_when_the_stage_swallows_enospc(palhm, small_disk):
    root = small_disk / "root"
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (1 << 20))
    stage = palhm.stage(sys.executable, "-c", SWALLOWING_WRITER, str(ballast))
    backup_config(palhm, [{"path": "dump.bin", "pipeline": [stage]}], root=root)
    res = palhm("run", "backup")
    copies = palhm.copies()
    if res.returncode == 0:
        # Only acceptable if every byte was stored (it cannot fit in 4 MiB).
        (copy,) = copies
        data = (root / copy["prefix"] / "dump.bin").read_bytes()
        assert data == bytes(range(256)) * 256 * 128, "a complete copy lost %d bytes" % ((8 << 20) - len(data))
    assert res.returncode == 1, res.stderr
    assert "no space left on device" in res.stderr
    assert [c for c in copies if c["complete"]] == []
    assert sorted(p.name for p in root.iterdir()) == []


# --------------------------------------------------------------------------
# item 4: cancel and failure stop the whole pipeline, grandchildren included
# --------------------------------------------------------------------------

def grandchildren_stage(palhm, script):
    # The marker is sh's $0, so it is in the argv of sh and of its subshells.
    return palhm.stage("/bin/sh", "-c", script, palhm.marker)


def test_sigterm_of_run_stops_a_stage_whose_children_hold_the_pipes_within_seconds(palhm):
    backup_config(palhm, [{"path": "slow", "pipeline": [grandchildren_stage(palhm, "sleep 30 | cat")]}])
    proc = palhm.start("run", "backup")
    assert wait_for(lambda: len(palhm.children()) >= 3), "the stage did not start"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("palhm run did not exit within 8 s of SIGTERM")
    took = time.monotonic() - t0
    assert proc.returncode == 4, proc.stderr.read()
    assert took < 5, "exit took %.1f s" % took
    assert wait_for(lambda: not palhm.children(), timeout=2) and not palhm.children()
    assert palhm.partials() == [] and complete_copies(palhm) == []


def test_a_failing_stage_stops_the_others_and_their_children_at_once(palhm):
    objects = [{"path": "x", "pipeline": [grandchildren_stage(palhm, "sleep 30 | cat"),
                                          palhm.stage("/bin/sh", "-c", "exit 3")]}]
    backup_config(palhm, objects)
    t0 = time.monotonic()
    res = palhm("run", "backup", timeout=20)
    took = time.monotonic() - t0
    assert res.returncode == 1, res.stderr
    assert "stage 2 of 2" in res.stderr and "exited with code 3" in res.stderr
    assert took < 8, "the failure took %.1f s to stop the pipeline" % took
    assert wait_for(lambda: not palhm.children(), timeout=2) and not palhm.children()
    assert palhm.partials() == [] and complete_copies(palhm) == []


def test_kill_9_of_palhm_leaves_no_orphan_writing_into_the_partial_copy(palhm):
    # The writers die of SIGPIPE once palhm is gone; `sleep 30 | cat` would not.
    writer = grandchildren_stage(palhm, "sleep 30 | cat & (while :; do echo tick; sleep 0.05; done) | cat")
    backup_config(palhm, [{"path": "ticks", "pipeline": [writer]}])
    proc = palhm.start("run", "backup")
    assert wait_for(lambda: palhm.partials() and len(palhm.children()) >= 3), "the stage did not start"
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    assert wait_for(lambda: not palhm.children(), timeout=3), \
        "processes left running after kill -9: %s" % palhm.children()
    (partial,) = palhm.partials()
    obj = palhm.root / partial / "ticks"
    size = obj.stat().st_size if obj.exists() else 0
    time.sleep(0.5)
    assert (obj.stat().st_size if obj.exists() else 0) == size, "something still writes into the partial copy"
    # The next run removes the leftover and makes a copy that verifies.
    backup_config(palhm, [{"path": "ok", "pipeline": [palhm.stage("echo", "ok")]}])
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert palhm.partials() == []
    assert_nothing_false_complete(palhm)
