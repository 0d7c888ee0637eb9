# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backup root shared by hosts (issue 12, item 5), through the `palhm`
command. "Another host" is an in-progress mark (or a manifest) written with
another host name or boot id: cleanup removes a leftover of this host only
when its run is dead, another host's only past stale-age; a commit never
happens for a copy missing an object; a shared root is warned about."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from test_s3_backend import S3Story  # pylint: disable=wrong-import-order

OWNER = ".palhm-partial-owner.json"
MARKER = ".palhm-in-progress"
MANIFEST = ".palhm-manifest.json"
HOUR = 3600
NO_SUCH_PID = 4194305  # above the kernel's largest pid_max


def boot_id():
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
        return f.read().strip()


def start_ticks(pid):
    with open("/proc/%d/stat" % pid, "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[19])


def mark(task="backup", host=None, boot=None, pid=NO_SUCH_PID, start=None, age=0.0):
    doc = {"format": "palhm-owner/1", "task": task, "host": host or socket.gethostname(),
           "boot_id": boot or boot_id(), "pid": pid, "time": time.time() - age}
    if start is not None:
        doc["start"] = start
    return doc


def config(palhm, **bp):
    params = {"root": str(palhm.root)}
    params.update(bp)
    palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs", "backend-param": params,
                                   "objects": [{"path": "a", "pipeline": [palhm.stage("echo", "a")]}]}]})


def plant(palhm, prefix, doc):
    d = palhm.root / (prefix + ".palhm-partial")
    d.mkdir(parents=True)
    (d / "half.bin").write_bytes(b"half")
    if doc is not None:
        (d / OWNER).write_text(json.dumps(doc))
    return d


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_cleanup_removes_only_dead_runs_of_this_host_and_stale_ones_of_other_hosts(palhm, sleeper):
    config(palhm)
    palhm.root.mkdir()
    cases = {  # prefix -> (mark, removed?)
        "2030-01-01T00:00:01+00:00": (mark(), True),                                   # this host, pid gone
        "2030-01-01T00:00:02+00:00": (mark(pid=sleeper.pid, start=start_ticks(sleeper.pid)), False),  # alive
        "2030-01-01T00:00:03+00:00": (mark(pid=sleeper.pid, start=start_ticks(sleeper.pid) + 1), True),  # reused
        "2030-01-01T00:00:04+00:00": (mark(pid=sleeper.pid, boot="0" * 8), True),      # made before a reboot
        "2030-01-01T00:00:05+00:00": (mark(host="db-2", boot="1" * 8, age=HOUR), False),     # other host, fresh
        "2030-01-01T00:00:06+00:00": (mark(host="db-2", boot="1" * 8, age=49 * HOUR), True),  # other host, stale
        "2030-01-01T00:00:07+00:00": (None, False),                                    # no mark, fresh
    }
    for prefix, (doc, _removed) in cases.items():
        plant(palhm, prefix, doc)
    old = plant(palhm, "2030-01-01T00:00:08+00:00", None)                              # no mark, 49h old
    os.utime(str(old), (time.time() - 49 * HOUR, time.time() - 49 * HOUR))
    cases["2030-01-01T00:00:08+00:00"] = (None, True)
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    for prefix, (_doc, removed) in cases.items():
        there = (palhm.root / (prefix + ".palhm-partial")).exists()
        assert there != removed, (prefix, res.stderr)
        assert ("removed incomplete copy %s" % prefix in res.stderr) == removed, prefix
    assert "left incomplete copy 2030-01-01T00:00:05+00:00 alone: made by host db-2 1h00m ago, less than " \
        "stale-age 48h" in res.stderr
    assert "removing incomplete copy 2030-01-01T00:00:06+00:00: made by host db-2 49h ago, more than " \
        "stale-age 48h" in res.stderr
    assert "is shared with other host(s): db-2" in res.stderr
    assert "is shared with other host(s): db-2" in palhm("list", "backup").stderr


def test_stale_age_is_a_backend_param(palhm):
    config(palhm, **{"stale-age": "2h"})
    plant(palhm, "2030-01-01T00:00:01+00:00", mark(host="db-2", age=3 * HOUR))
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert "more than stale-age 2h00m" in res.stderr
    assert palhm.partials() == []
    config(palhm, **{"stale-age": "10min"})
    res = palhm("config")
    assert res.returncode == 2 and "backend-param.stale-age: must be at least 1h" in res.stderr
    config(palhm, **{"stale-age": "soon"})
    res = palhm("run", "backup")
    assert res.returncode == 2 and "backend-param.stale-age: expected a duration" in res.stderr


def test_a_copy_whose_object_vanished_before_the_commit_is_not_committed(palhm):
    # Object b (built after a) deletes a, as another host's cleanup would.
    rm_a = "printf b; rm -f %s/*.palhm-partial/a" % palhm.root
    palhm.write_config({"tasks": [{
        "id": "backup", "type": "backup", "backend": "localfs", "backend-param": {"root": str(palhm.root)},
        "object-groups": [{"id": "first"}, {"id": "then", "depends": ["first"]}],
        "objects": [{"path": "a", "group": "first", "pipeline": [palhm.stage("echo", "a")]},
                    {"path": "b", "group": "then", "pipeline": [palhm.stage("sh", "-c", rm_a)]}]}]})
    res = palhm("run", "backup")
    assert res.returncode == 1, res.stderr
    assert "object a is missing" in res.stderr and "not committing" in res.stderr
    assert palhm.copies() == [] and palhm.root_entries() == []


def test_a_foreign_manifest_tells_the_root_is_shared(palhm):
    config(palhm)
    assert palhm("run", "backup").returncode == 0
    (prefix,) = [c["prefix"] for c in palhm.copies()]
    path = palhm.root / prefix / MANIFEST
    doc = json.loads(path.read_text())
    doc["hostname"] = "web-7"
    path.write_text(json.dumps(doc))
    res = palhm("run", "backup")
    assert res.returncode == 0 and "is shared with other host(s): web-7" in res.stderr


def test_s3_cleanup_keeps_another_hosts_live_copy_and_its_uploads(moto, tmp_path):
    story = S3Story(moto, tmp_path)
    conf = story.config([{"path": "a", "pipeline": [{"type": "exec-inline", "argv": ["echo", "a"]}]}])
    fresh, stale, dead = "2030-01-01T00:00:01+00:00", "2030-01-01T00:00:02+00:00", "2030-01-01T00:00:03+00:00"
    for prefix, doc in ((fresh, mark(host="db-2", boot="1" * 8, age=HOUR)),
                        (stale, mark(host="db-2", boot="1" * 8, age=49 * HOUR)), (dead, mark())):
        story.put(prefix + "/" + MARKER, json.dumps(doc).encode())
        story.put(prefix + "/half", b"half")
    key = story.root + "/" + fresh + "/big"
    upload = story.s3.create_multipart_upload(Bucket=story.bucket, Key=key)["UploadId"]
    story.s3.upload_part(Bucket=story.bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"p" * 1024)
    proc = story.run_ok(conf)
    assert "removed incomplete copy %s" % stale in proc.stderr and "removed incomplete copy %s" % dead in proc.stderr
    assert "left incomplete copy %s alone: made by host db-2" % fresh in proc.stderr
    assert "is shared with other host(s): db-2" in proc.stderr
    prefixes = story.prefixes()
    assert fresh in prefixes and stale not in prefixes and dead not in prefixes
    assert [u["UploadId"] for u in story.uploads()] == [upload]


def test_s3_a_copy_whose_object_vanished_before_the_commit_is_not_committed(moto, tmp_path):
    story = S3Story(moto, tmp_path)
    code = ("import boto3, botocore.config, os, sys\n"
            "s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',"
            " config=botocore.config.Config(s3={'addressing_style': 'path'}))\n"
            "for o in s3.list_objects_v2(Bucket=sys.argv[2], Prefix=sys.argv[3]).get('Contents', []):\n"
            "    if o['Key'].endswith('/a'):\n"
            "        s3.delete_object(Bucket=sys.argv[2], Key=o['Key'])\n"
            "sys.stdout.write('b')\n")
    objects = [{"path": "a", "group": "first", "pipeline": [{"type": "exec-inline", "argv": ["echo", "a"]}]},
               {"path": "b", "group": "then", "pipeline": [{"type": "exec-inline", "argv": [
                   sys.executable, "-c", code, moto["endpoint"], story.bucket, story.root + "/"]}]}]
    conf = story.config(objects, groups=[{"id": "first"}, {"id": "then", "depends": ["first"]}])
    proc = story.palhm(conf, "run", "backup")
    assert proc.returncode == 1, proc.stderr
    assert "object a is missing" in proc.stderr and "not committing" in proc.stderr
    assert story.list_json(conf) == []
    assert story.prefixes() == []
