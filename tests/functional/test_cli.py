# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `palhm` command as cron and an admin use it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from conftest import wait_for

FILES = pathlib.Path(__file__).resolve().parent / "files"


def backup_config(palhm, objects, **bp):
    params = {"root": str(palhm.root)}
    params.update(bp)
    return palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                                          "backend-param": params, "objects": objects}]})


def install_original_config(palhm):
    src = palhm.tmp / "src"
    (src / "sub").mkdir(parents=True)
    (src / "hello.txt").write_text("hello from the original config\n")
    (src / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)
    for rel in ("palhm.jsonc", "conf.d/core.json"):
        text = (FILES / "original" / rel).read_text()
        text = text.replace("@ROOT@", str(palhm.root)).replace("@SRC@", str(src))
        palhm.write_config(text, rel)
    palhm.config = palhm.etc / "palhm.jsonc"
    return src


def zstd_tar_names(path):
    data = subprocess.run(["zstd", "-d", "-c", str(path)], stdout=subprocess.PIPE, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return sorted(m.name for m in tar.getmembers())


# --------------------------------------------------------------------------
# the original's config, unchanged
# --------------------------------------------------------------------------

def test_a_config_written_for_the_original_palhm_runs_unchanged_and_rotation_keeps_the_limit(palhm):
    install_original_config(palhm)
    made = []
    for dummy in range(3):
        res = palhm("run", "backup")
        assert res.returncode == 0, res.stderr
        complete = [c["prefix"] for c in palhm.copies() if c["complete"]]
        made.append(complete[-1])
    # nb-copy-limit "2": the first copy was rotated away on the third run.
    copies = palhm.copies()
    assert [c["prefix"] for c in copies] == made[1:]
    assert all(c["state"] == "complete" and c["objects"] == 4 for c in copies)
    assert palhm.root_entries() == made[1:]

    newest = palhm.root / made[-1]
    assert zstd_tar_names(newest / "src.tar.zstd") == [".", "./hello.txt", "./sub", "./sub/data.bin"]
    assert zstd_tar_names(newest / "dumps" / "src-again.tar.zstd") == zstd_tar_names(newest / "src.tar.zstd")
    dump = subprocess.run(["xz", "-d", "-c", str(newest / "random-dump.sql.xz")], stdout=subprocess.PIPE,
                          check=True).stdout
    assert len(dump) == 64 * 4096
    # dmode/fmode of the original's sample
    assert oct(newest.stat().st_mode & 0o777) == oct(0o755)
    assert oct((newest / "src.tar.zstd").stat().st_mode & 0o777) == oct(0o644)

    manifest = json.loads((newest / ".palhm-manifest.json").read_text())
    by_path = {o["path"]: o for o in manifest["objects"]}
    assert sorted(by_path) == ["dumps/src-again.tar.zstd", "os-release.gz", "random-dump.sql.xz", "src.tar.zstd"]
    for path, obj in by_path.items():
        assert obj["sha256"] == hashlib.sha256((newest / path).read_bytes()).hexdigest()
        assert obj["size"] == (newest / path).stat().st_size
    assert by_path["src.tar.zstd"]["stages"][0]["argv"][:5] == ["/bin/tar", "--xattrs", "--warning=none", "-cf", "-"]

    res = palhm("verify", "backup")
    assert res.returncode == 0, res.stderr
    assert made[-1] in res.stdout


def test_the_original_config_resolves_its_include_from_the_cwd_like_c(palhm):
    install_original_config(palhm)
    # A relative -f resolves from the working directory; conf.d/core.json from the file's own dir.
    res = palhm("-f", "etc/palhm.jsonc", "config", cwd=str(palhm.tmp))
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    assert cfg["files"] == ["etc/palhm.jsonc", str(palhm.etc / "conf.d" / "core.json")]
    res = palhm("-f", "palhm.jsonc", "config", cwd=str(palhm.tmp))
    assert res.returncode == 2
    assert "palhm.jsonc: config file not found" in res.stderr


def test_object_groups_are_built_after_their_dependencies(palhm):
    stamp = palhm.tmp / "order.log"
    log = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')", str(stamp)]
    palhm.write_config({"nb-workers": 4, "tasks": [{
        "id": "backup", "type": "backup", "backend": "localfs", "backend-param": {"root": str(palhm.root)},
        "object-groups": [{"id": "last", "depends": ["middle"]}, {"id": "middle", "depends": ["first"]},
                          {"id": "first"}],
        "objects": [
            {"path": "c", "group": "last", "pipeline": [palhm.stage(*log, "c")]},
            {"path": "b", "group": "middle", "pipeline": [palhm.stage(*log, "b")]},
            {"path": "a", "group": "first", "pipeline": [palhm.stage("sleep", "0.3"), palhm.stage(*log, "a")]},
        ]}]})
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert stamp.read_text().split() == ["a", "b", "c"]


# --------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------

def test_a_failing_middle_stage_rolls_the_copy_back_and_names_the_stage(palhm):
    failing = ["/bin/sh", "-c", 'head -c 1000 >/dev/null; echo "gpg: backup-pub-key: skipped: No public key" >&2; '
                                'exit 2']
    backup_config(palhm, [
        {"path": "fine.gz", "pipeline": [palhm.stage("echo", "fine"), palhm.stage("gzip")]},
        {"path": "db.sql.zst.pgp", "pipeline": [palhm.stage("yes", "INSERT INTO t VALUES (1);"),
                                                palhm.stage(*failing), palhm.stage("zstd", "-q")]},
    ])
    res = palhm("run", "backup")
    assert res.returncode == 1
    err = res.stderr.strip().splitlines()[-1]
    assert "object db.sql.zst.pgp, stage 2 of 3" in err
    assert repr(failing[2]) in err
    assert "exited with code 2" in err
    assert "No public key" in err
    # The producer died of SIGPIPE because of it: not the cause.
    assert "'yes'" not in err and "SIGPIPE" not in err
    assert palhm.root_entries() == []
    assert palhm.children() == []


def test_a_task_that_fails_keeps_the_earlier_complete_copies(palhm):
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("echo", "a")]}], **{"nb-copy-limit": 1})
    assert palhm("run", "backup").returncode == 0
    before = palhm.root_entries()
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("false")]}], **{"nb-copy-limit": 1})
    res = palhm("run", "backup")
    assert res.returncode == 1
    assert palhm.root_entries() == before


def test_a_bad_config_exits_2_with_one_line_naming_the_path_and_runs_nothing(palhm):
    canary = palhm.tmp / "canary"
    backup_config(palhm, [
        {"path": "first", "pipeline": [palhm.stage("touch", str(canary))]},
        {"path": "second", "pipeline": [palhm.stage("echo", "x"), {"type": "exec", "exec-id": "zstd"}]},
    ])
    res = palhm("run", "backup")
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert lines == ['palhm: %s: tasks[0].objects[1].pipeline[1].exec-id: no exec named "zstd"' % palhm.config]
    assert not canary.exists()
    assert not palhm.root.exists()


def test_a_typo_in_the_config_is_not_silently_ignored(palhm):
    palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                                   "backend-param": {"root": str(palhm.root), "nb-copy-limt": 3}, "objects": []}]})
    res = palhm("run", "backup")
    assert res.returncode == 2
    assert "tasks[0].backend-param.nb-copy-limt: unknown key (did you mean 'nb-copy-limit'?)" in res.stderr
    assert len(res.stderr.splitlines()) == 1


def test_an_unknown_task_is_a_usage_error(palhm):
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("true")]}])
    res = palhm("run", "nightly")
    assert res.returncode == 2
    assert "nightly" in res.stderr and "backup" in res.stderr


def test_run_without_a_task_runs_the_task_named_default(palhm):
    palhm.write_config({"tasks": [{"id": "default", "type": "backup", "backend": "localfs",
                                   "backend-param": {"root": str(palhm.root)},
                                   "objects": [{"path": "a", "pipeline": [palhm.stage("echo", "a")]}]}]})
    res = palhm("run")
    assert res.returncode == 0, res.stderr
    assert len(palhm.copies("default")) == 1


# --------------------------------------------------------------------------
# lock and signals
# --------------------------------------------------------------------------

def slow_config(palhm, chunks=400, delay=0.05):
    backup_config(palhm, [
        {"path": "slow.gz", "pipeline": [palhm.slow_producer(chunks, delay), palhm.stage("gzip", "-1")]},
        {"path": "slow2", "pipeline": [palhm.slow_producer(chunks, delay), palhm.stage("cat")]},
    ])


def test_a_second_run_while_one_runs_exits_3_at_once(palhm):
    slow_config(palhm)
    first = palhm.start("run", "backup")
    assert wait_for(palhm.partials), "the first run did not start its copy"
    t0 = time.monotonic()
    second = palhm("run", "backup", timeout=30)
    assert time.monotonic() - t0 < 5
    assert second.returncode == 3
    assert "already running" in second.stderr
    assert "pid %d" % first.pid in second.stderr
    assert len(second.stderr.splitlines()) == 1
    assert first.poll() is None, "the second run disturbed the first"
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 4


def test_another_task_backing_up_into_the_same_root_waits_its_turn(palhm):
    # Task "other" must neither run into nor clean up the copy "backup" is making.
    slow = [palhm.slow_producer(400, 0.05), palhm.stage("cat")]
    palhm.write_config({"tasks": [
        {"id": task, "type": "backup", "backend": "localfs", "backend-param": {"root": str(palhm.root)},
         "objects": [{"path": "x", "pipeline": slow if task == "backup" else [palhm.stage("echo", "x")]}]}
        for task in ("backup", "other")]})
    first = palhm.start("run", "backup")
    partial = wait_for(palhm.partials)
    assert partial
    second = palhm("run", "other", timeout=30)
    assert second.returncode == 3
    assert "already running" in second.stderr and str(palhm.root) in second.stderr
    assert palhm.partials() == partial
    assert first.poll() is None
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 4


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_the_run_rolls_the_copy_back_and_stops_the_children(palhm, sig):
    backup_config(palhm, [{"path": "old", "pipeline": [palhm.stage("echo", "old")]}])
    assert palhm("run", "backup").returncode == 0
    kept = palhm.root_entries()
    slow_config(palhm)
    proc = palhm.start("run", "backup")
    assert wait_for(palhm.partials)
    assert wait_for(lambda: len(palhm.children()) >= 4), "the stages did not start"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, err
    assert "cancelled" in err
    assert palhm.root_entries() == kept
    assert wait_for(lambda: palhm.children() == [], timeout=5)


# --------------------------------------------------------------------------
# verify, list, config, mods, help, -q
# --------------------------------------------------------------------------

def test_verify_detects_a_flipped_byte(palhm):
    backup_config(palhm, [{"path": "data.bin", "pipeline": [palhm.stage("head", "-c", "100000", "/dev/urandom")]},
                          {"path": "notes/readme", "pipeline": [palhm.stage("echo", "hello")]}])
    assert palhm("run", "backup").returncode == 0
    prefix = palhm.copies()[-1]["prefix"]
    res = palhm("verify", "backup", prefix)
    assert res.returncode == 0, res.stderr
    assert "2 objects verified" in res.stdout
    victim = palhm.root / prefix / "data.bin"
    data = bytearray(victim.read_bytes())
    data[54321] ^= 0x01
    victim.write_bytes(bytes(data))
    res = palhm("verify", "backup")
    assert res.returncode == 5
    assert "data.bin" in res.stderr and "does not match its manifest" in res.stderr


def test_verify_detects_a_missing_object(palhm):
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("echo", "a")]}])
    assert palhm("run", "backup").returncode == 0
    prefix = palhm.copies()[-1]["prefix"]
    (palhm.root / prefix / "a").unlink()
    assert palhm("verify", "backup", prefix).returncode == 5


def test_list_tells_complete_incomplete_and_legacy_copies_apart(palhm):
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("echo", "a")]}])
    assert palhm("run", "backup").returncode == 0
    legacy = palhm.root / "2020-01-01T00:00:00+00:00"
    legacy.mkdir()
    (legacy / "root.tar.zstd").write_bytes(b"x" * 10)
    partial = palhm.root / "2030-01-01T00:00:00+00:00.palhm-partial"
    partial.mkdir()
    (partial / "a").write_bytes(b"half")
    states = {c["prefix"]: c["state"] for c in palhm.copies()}
    assert states.pop("2020-01-01T00:00:00+00:00") == "legacy"
    assert states.pop("2030-01-01T00:00:00+00:00") == "incomplete"
    assert list(states.values()) == ["complete"]
    # A partial copy can never be verified as if it were complete.
    res = palhm("verify", "backup", "2030-01-01T00:00:00+00:00")
    assert res.returncode == 5
    # The human listing shows the same.
    res = palhm("list", "backup")
    assert res.returncode == 0
    assert "legacy" in res.stdout and "incomplete" in res.stdout and "complete" in res.stdout


def test_quiet_run_prints_nothing_on_success(palhm):
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("/bin/sh", "-c", "echo chatter >&2; echo data")]}])
    res = palhm("-q", "run", "backup")
    assert res.returncode == 0
    assert (res.stdout, res.stderr) == ("", "")
    res = palhm("run", "backup")
    assert res.returncode == 0
    assert "chatter" in res.stderr  # without -q the stage's stderr is shown


def test_quiet_run_still_reports_failure(palhm):
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("/bin/sh", "-c", "echo broken >&2; exit 9")]}])
    res = palhm("-q", "run", "backup")
    assert res.returncode == 1
    assert res.stdout == ""
    assert "exited with code 9" in res.stderr and "broken" in res.stderr


def test_config_prints_the_resolved_config(palhm):
    install_original_config(palhm)
    res = palhm("config")
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    assert sorted(e["id"] for e in cfg["execs"]) == sorted(
        ["tar", "cat", "filter-xz-parallel", "filter-gzip-plain", "filter-zstd-plain", "filter-zstd-parallel"])
    task = cfg["tasks"][0]
    assert task["backend-param"]["nb-copy-limit"] == 2
    assert task["backend-param"]["root-size-limit"] == "Infinity"
    tar_stage = [o for o in task["objects"] if o["path"] == "src.tar.zstd"][0]["pipeline"][0]
    assert tar_stage["argv"][-3:] == ["-C", str(palhm.tmp / "src"), "."]
    assert tar_stage["ec"] == "<2"
    assert {g["id"]: g["depends"] for g in task["object-groups"]}["data-dump"] == ["pre-start"]


def test_mods_lists_the_optional_modules(palhm):
    res = palhm("mods", config=False)
    assert res.returncode == 0
    assert res.stdout.split("\t")[0] == "aws"


def test_help_lists_the_commands_and_the_exit_codes(palhm):
    res = palhm("help", config=False)
    assert res.returncode == 0
    for cmd in ("run", "config", "mods", "list", "verify", "help"):
        assert cmd in res.stdout
    assert "3 another run holds the lock" in res.stdout
    res = palhm("help", "run", config=False)
    assert res.returncode == 0 and "run [TASK]" in res.stdout


def test_an_unknown_command_is_a_usage_error(palhm):
    res = palhm("frobnicate", config=False)
    assert res.returncode == 2
    assert res.stderr.startswith("palhm: ")


def test_a_missing_config_file_exits_2(palhm):
    res = palhm("-f", str(palhm.tmp / "nope.conf"), "run", config=False)
    assert res.returncode == 2
    assert "nope.conf: config file not found" in res.stderr


def test_an_object_in_a_subdirectory_is_made_with_the_configured_modes(palhm):
    backup_config(palhm, [{"path": "db/all.sql", "pipeline": [palhm.stage("echo", "dump")]}],
                  dmode="700", fmode="600")
    assert palhm("run", "backup").returncode == 0
    copy = palhm.root / palhm.copies()[-1]["prefix"]
    assert (copy / "db" / "all.sql").read_text() == "dump\n"
    assert (copy / "db").stat().st_mode & 0o777 == 0o700
    assert (copy / "db" / "all.sql").stat().st_mode & 0o777 == 0o600


def test_objects_built_at_once_in_the_same_subdirectory_all_succeed(palhm):
    # Many objects under the same directories start together: creating the
    # directories must not race (two threads both seeing db/ missing).
    palhm.write_config({"nb-workers": 32, "tasks": [{
        "id": "backup", "type": "backup", "backend": "localfs", "backend-param": {"root": str(palhm.root)},
        "objects": [{"path": "db/%d/a/b/c/d/table%d.sql" % (i % 2, i), "pipeline": [palhm.stage("true")]}
                    for i in range(32)]}]})
    for dummy in range(8):
        res = palhm("run", "backup")
        assert res.returncode == 0, res.stderr
        shutil.rmtree(str(palhm.root))


def test_rotation_never_deletes_outside_the_root_through_a_symlink(palhm):
    outside = palhm.tmp / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("echo", "a")]}], **{"nb-copy-limit": 1})
    assert palhm("run", "backup").returncode == 0
    os.symlink(str(outside), str(palhm.root / "2000-01-01T00:00:00+00:00"))
    os.symlink(str(outside), str(palhm.root / "2000-01-02T00:00:00+00:00.palhm-partial"))
    assert palhm("run", "backup").returncode == 0
    assert palhm("run", "backup").returncode == 0
    assert (outside / "keep.txt").read_text() == "keep"
    assert len([c for c in palhm.copies() if c["complete"]]) == 1
    shutil.rmtree(str(outside))


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs to fill up."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_fails_the_run_says_so_and_keeps_the_earlier_copy(palhm, small_disk):
    palhm.root = small_disk / "backup"
    backup_config(palhm, [{"path": "small", "pipeline": [palhm.stage("echo", "small")]}])
    assert palhm("run", "backup").returncode == 0
    kept = palhm.root_entries()
    backup_config(palhm, [{"path": "small", "pipeline": [palhm.stage("echo", "small")]},
                          {"path": "big", "pipeline": [palhm.stage("head", "-c", "4000000", "/dev/zero")]}])
    res = palhm("run", "backup")
    assert res.returncode == 1
    assert "no space left on device" in res.stderr.lower()
    assert palhm.root_entries() == kept
    # The space is given back: the next small run fits again.
    backup_config(palhm, [{"path": "small", "pipeline": [palhm.stage("echo", "small")]}])
    assert palhm("run", "backup").returncode == 0
