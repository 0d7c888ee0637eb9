# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a task's copies are (issue 12, items 2, 7 and 11), through the
`palhm` command: rotation, leftover cleanup, list, verify and restore touch
only this task's copies; a damaged manifest makes a copy `corrupt`, never a
crash; a copy dated in the future is said out loud."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from test_s3_backend import S3Story  # pylint: disable=wrong-import-order

MANIFEST = ".palhm-manifest.json"
OWNER = ".palhm-partial-owner.json"
LEGACY = "2020-01-01T00:00:00+00:00"
# Names near the original's PREFIX format that are not it: not copies.
ODD_NAMES = ("2020-01-01", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00+02:00", "2020-13-01T00:00:00+00:00",
             "2020-01-01T00:00:00.5+00:00", "x2020-01-01T00:00:00+00:00", "2020-01-01T00:00:00+00:00.bak")


def task(palhm, tid, root, limit=None, data=None):
    params = {"root": str(root)}
    if limit is not None:
        params["nb-copy-limit"] = limit
    return {"id": tid, "type": "backup", "backend": "localfs", "backend-param": params,
            "objects": [{"path": "data.txt", "pipeline": [palhm.stage("echo", data or "data of %s" % tid)]}]}


def run_ok(palhm, tid="backup"):
    res = palhm("run", tid)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res


def copies(palhm, tid="backup"):
    res = palhm("list", tid, "--json")
    assert res.returncode == 0, res.stderr
    return {c["prefix"]: c for c in json.loads(res.stdout)}


def snapshot(top):
    out = {}
    for d, _dirs, files in os.walk(top):
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, top)] = f.read()
    return out


# --------------------------------------------------------------------------
# item 2: only this task's copies
# --------------------------------------------------------------------------

def test_rotation_and_cleanup_leave_everything_that_is_not_this_tasks_copy_alone(palhm):
    root = palhm.root
    palhm.write_config({"tasks": [task(palhm, "backup", root, limit=1), task(palhm, "db", root / "db")]})
    run_ok(palhm, "db")  # another task's root nested inside this one: ROOT/db/PREFIX
    (root / "lost+found").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("buy tapes\n")
    for odd in ODD_NAMES:
        (root / odd).mkdir()
        (root / odd / "file").write_text(odd)
    (root / LEGACY).mkdir()
    (root / LEGACY / "root.tar").write_text("made by the original palhm")
    others = snapshot(root / "db")
    listed = copies(palhm)
    assert listed == {LEGACY: listed[LEGACY]} and listed[LEGACY]["state"] == "legacy"
    res = run_ok(palhm)
    assert "rotation removed copy %s" % LEGACY in res.stderr
    res = run_ok(palhm)
    assert res.stderr.count("rotation removed copy") == 1
    mine = copies(palhm)
    assert len(mine) == 1 and list(mine.values())[0]["state"] == "complete"
    assert not (root / LEGACY).exists(), "the original's copy counts in rotation"
    assert snapshot(root / "db") == others
    assert (root / "notes" / "todo.txt").read_text() == "buy tapes\n"
    assert (root / "lost+found").is_dir()
    for odd in ODD_NAMES:
        assert (root / odd / "file").read_text() == odd
    assert len(copies(palhm, "db")) == 1


def test_two_tasks_sharing_a_root_each_rotate_only_their_own_copies(palhm):
    palhm.write_config({"tasks": [task(palhm, "a", palhm.root, limit=2), task(palhm, "b", palhm.root, limit=1)]})
    for _round in range(3):
        run_ok(palhm, "a")
        run_ok(palhm, "b")
    a, b = copies(palhm, "a"), copies(palhm, "b")
    assert len(a) == 2 and len(b) == 1 and not set(a) & set(b)
    assert all(c["state"] == "complete" for c in list(a.values()) + list(b.values()))
    assert sorted(palhm.root_entries()) == sorted(list(a) + list(b))
    for tid, mine in (("a", a), ("b", b)):
        for prefix in mine:
            doc = json.loads((palhm.root / prefix / MANIFEST).read_text())
            assert doc["task"] == tid


def test_restore_and_verify_of_one_task_never_read_another_tasks_copy(palhm):
    palhm.write_config({"tasks": [task(palhm, "a", palhm.root), task(palhm, "b", palhm.root, data="b's secret")]})
    run_ok(palhm, "b")
    (prefix,) = copies(palhm, "b")
    assert copies(palhm, "a") == {}
    res = palhm("restore", "a", "data.txt")
    assert res.returncode != 0 and "b's secret" not in res.stdout
    assert "task \"a\" has no complete copy" in res.stderr
    res = palhm("restore", "a", prefix, "data.txt")
    assert res.returncode == 2 and "task \"a\" has no copy \"%s\"" % prefix in res.stderr
    assert "b's secret" not in res.stdout
    res = palhm("verify", "a", prefix)
    assert res.returncode == 2 and "has no copy" in res.stderr
    res = palhm("restore", "b", "data.txt")
    assert res.returncode == 0 and res.stdout == "b's secret\n"


def test_leftover_cleanup_leaves_another_tasks_copy_in_progress(palhm):
    palhm.write_config({"tasks": [task(palhm, "backup", palhm.root)]})
    run_ok(palhm)
    theirs = palhm.root / "2030-01-01T00:00:00+00:00.palhm-partial"
    theirs.mkdir()
    (theirs / "half.bin").write_bytes(b"half")
    (theirs / OWNER).write_text(json.dumps({"format": "palhm-owner/1", "task": "other", "host": os.uname()[1],
                                            "pid": 1, "time": 0}))
    assert "2030-01-01T00:00:00+00:00" not in copies(palhm)
    res = run_ok(palhm)
    assert "removed incomplete copy" not in res.stderr
    assert (theirs / "half.bin").read_bytes() == b"half"


@pytest.mark.parametrize("root", ["/", "/etc", "/var/", "/usr", "/home", "/tmp", "/root", "/boot", "//lib64",
                                  "/srv/../etc", "/opt", "/proc", "/mnt", "/media", "/run", "/sys", "/dev"])
def test_the_filesystem_root_and_top_level_system_directories_are_refused_as_backup_roots(palhm, root):
    palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                                   "backend-param": {"root": root},
                                   "objects": [{"path": "a", "pipeline": [palhm.stage("echo", "a")]}]}]})
    for cmd in (("config",), ("run", "backup"), ("list", "backup")):
        res = palhm(*cmd)
        assert res.returncode == 2, (cmd, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "tasks[0].backend-param.root: must not be \"/" in lines[0], lines
        assert "\"%s\"" % os.path.normpath("/" + root.lstrip("/")) in lines[0]


def test_a_subdirectory_of_a_system_directory_is_a_fine_root(palhm):
    palhm.write_config({"tasks": [task(palhm, "backup", palhm.tmp / "var" / "backups")]})
    assert palhm("config").returncode == 0
    run_ok(palhm)


def test_s3_rotation_cleanup_and_restore_touch_only_this_tasks_copies(moto, tmp_path):
    story = S3Story(moto, tmp_path)
    mine = {"path": "data.txt", "pipeline": [{"type": "exec-inline", "argv": ["echo", "mine"]}]}
    conf = story.config([mine], **{"nb-copy-limit": 1})
    nested = "db/2021-01-01T00:00:00+00:00/"
    other = "2021-02-02T00:00:00+00:00/"
    planted = {
        "notes.txt": b"not a copy",
        "notes/todo.txt": b"buy tapes",
        nested + "data.txt": b"db dump",
        nested + MANIFEST: json.dumps({"format": "palhm-manifest/1", "task": "db", "objects": [
            {"path": "data.txt", "size": 7, "sha256": "0" * 64}]}).encode(),
        other + "data.txt": b"other's data",
        other + MANIFEST: json.dumps({"format": "palhm-manifest/1", "task": "other", "objects": [
            {"path": "data.txt", "size": 12, "sha256": "0" * 64}]}).encode(),
        "2021-03-03T00:00:00+00:00/.palhm-in-progress": json.dumps(
            {"task": "other", "host": "elsewhere", "pid": 1}).encode(),
        "2021-03-03T00:00:00+00:00/half": b"half",
        "2021-04-04T00:00:00Z/file": b"not the original's format",
        LEGACY + "/old.tar": b"made by the original palhm",
    }
    for rel, body in planted.items():
        story.s3.put_object(Bucket=story.bucket, Key=story.root + "/" + rel, Body=body)
    upload_key = story.root + "/" + other + "big"
    theirs = story.s3.create_multipart_upload(Bucket=story.bucket, Key=upload_key)["UploadId"]
    assert {c["prefix"]: c["state"] for c in story.list_json(conf)} == {LEGACY: "legacy"}
    story.run_ok(conf)
    story.run_ok(conf)
    listed = story.list_json(conf)
    assert len(listed) == 1 and listed[0]["state"] == "complete"
    left = story.objects()
    for rel, body in planted.items():
        if not rel.startswith(LEGACY):
            assert rel in left, rel
    assert not any(k.startswith(LEGACY) for k in left)
    assert [u["UploadId"] for u in story.uploads()] == [theirs]
    proc = story.palhm(conf, "restore", "backup", other.rstrip("/"), "data.txt")
    assert proc.returncode == 2 and "other's data" not in proc.stdout


# --------------------------------------------------------------------------
# item 7: a damaged manifest makes a corrupt copy, never a crash
# --------------------------------------------------------------------------

GOOD_SHA = "e" * 64
DAMAGED = {
    "a list": [],
    "null": None,
    "a string": "manifest",
    "no objects": {"format": "palhm-manifest/1", "task": "backup"},
    "objects a number": {"task": "backup", "objects": 5},
    "objects an object": {"task": "backup", "objects": {"data.txt": 5}},
    "an object a number": {"task": "backup", "objects": [5]},
    "size missing": {"task": "backup", "objects": [{"path": "data.txt", "sha256": GOOD_SHA}]},
    "size a string": {"task": "backup", "objects": [{"path": "data.txt", "size": "5", "sha256": GOOD_SHA}]},
    "size a float": {"task": "backup", "objects": [{"path": "data.txt", "size": 5.5, "sha256": GOOD_SHA}]},
    "size a boolean": {"task": "backup", "objects": [{"path": "data.txt", "size": True, "sha256": GOOD_SHA}]},
    "size negative": {"task": "backup", "objects": [{"path": "data.txt", "size": -1, "sha256": GOOD_SHA}]},
    "sha not hex": {"task": "backup", "objects": [{"path": "data.txt", "size": 5, "sha256": "z" * 64}]},
    "sha short": {"task": "backup", "objects": [{"path": "data.txt", "size": 5, "sha256": "abc"}]},
    "sha missing": {"task": "backup", "objects": [{"path": "data.txt", "size": 5}]},
    "path missing": {"task": "backup", "objects": [{"size": 5, "sha256": GOOD_SHA}]},
    "path with ..": {"task": "backup", "objects": [{"path": "../../outside.txt", "size": 5, "sha256": GOOD_SHA}]},
    "absolute path": {"task": "backup", "objects": [{"path": "/etc/hostname", "size": 5, "sha256": GOOD_SHA}]},
    "path a list": {"task": "backup", "objects": [{"path": ["data.txt"], "size": 5, "sha256": GOOD_SHA}]},
    "reserved path": {"task": "backup", "objects": [{"path": MANIFEST, "size": 5, "sha256": GOOD_SHA}]},
    "path twice": {"task": "backup", "objects": [{"path": "data.txt", "size": 5, "sha256": GOOD_SHA}] * 2},
    "task a number": {"task": 5, "objects": []},
    "not JSON": "{\"objects\": [",
    "empty file": "",
    "deeply nested": "[" * 100000 + "]" * 100000,
}


def damage(path, shape):
    path.write_text(DAMAGED[shape] if isinstance(DAMAGED[shape], str) and shape in (
        "not JSON", "empty file", "deeply nested") else json.dumps(DAMAGED[shape]))


def one_line_refusal(res, prefix):
    assert res.returncode == 5, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("palhm: copy %s of task backup is corrupt: " % prefix), lines


@pytest.mark.parametrize("shape", sorted(DAMAGED))
def test_a_damaged_manifest_makes_a_corrupt_copy_that_is_listed_refused_and_never_rotated(palhm, shape):
    palhm.write_config({"tasks": [task(palhm, "backup", palhm.root, limit=1)]})
    run_ok(palhm)
    (prefix,) = copies(palhm)
    damage(palhm.root / prefix / MANIFEST, shape)
    listed = copies(palhm)
    assert listed[prefix]["state"] == "corrupt" and listed[prefix]["complete"] is False
    assert listed[prefix]["problem"]
    res = palhm("list", "backup")
    assert res.returncode == 0 and "corrupt" in res.stdout and "Traceback" not in res.stderr
    one_line_refusal(palhm("verify", "backup", prefix), prefix)
    one_line_refusal(palhm("restore", "backup", prefix, "data.txt"), prefix)
    res = palhm("verify", "backup")
    assert res.returncode == 1 and "no complete copy" in res.stderr and "Traceback" not in res.stderr
    # run still succeeds, and nb-copy-limit 1 never removes the corrupt copy.
    run_ok(palhm)
    run_ok(palhm)
    after = copies(palhm)
    assert after[prefix]["state"] == "corrupt"
    assert sorted(c["state"] for c in after.values()) == ["complete", "corrupt"]
    assert (palhm.root / prefix / "data.txt").is_file()
    res = palhm("verify", "backup")
    assert res.returncode == 0, res.stderr


def test_a_manifest_that_is_a_symlink_or_a_directory_is_corrupt(palhm):
    palhm.write_config({"tasks": [task(palhm, "backup", palhm.root, limit=1)]})
    run_ok(palhm)
    run_ok(palhm)
    first = sorted(copies(palhm))[0]
    good = palhm.tmp / "outside.json"
    shutil.move(str(palhm.root / first / MANIFEST), str(good))
    os.symlink(str(good), str(palhm.root / first / MANIFEST))
    assert copies(palhm)[first]["state"] == "corrupt"
    one_line_refusal(palhm("verify", "backup", first), first)
    os.unlink(str(palhm.root / first / MANIFEST))
    (palhm.root / first / MANIFEST).mkdir()
    assert copies(palhm)[first]["state"] == "corrupt"
    run_ok(palhm)
    assert copies(palhm)[first]["state"] == "corrupt"


def test_verify_never_reads_outside_the_copy_through_a_symlinked_object(palhm):
    palhm.write_config({"tasks": [task(palhm, "backup", palhm.root)]})
    run_ok(palhm)
    (prefix,) = copies(palhm)
    secret = palhm.tmp / "secret.txt"
    obj = palhm.root / prefix / "data.txt"
    secret.write_bytes(obj.read_bytes())
    obj.unlink()
    os.symlink(str(secret), str(obj))
    res = palhm("verify", "backup", prefix)
    assert res.returncode == 5 and "data.txt" in res.stderr and "Traceback" not in res.stderr
    res = palhm("restore", "backup", prefix, "data.txt")
    assert res.returncode != 0 and res.stdout == ""


def test_s3_damaged_manifests_make_corrupt_copies_and_run_still_succeeds(moto, tmp_path):
    story = S3Story(moto, tmp_path)
    conf = story.config([{"path": "data.txt", "pipeline": [{"type": "exec-inline", "argv": ["echo", "mine"]}]}],
                        **{"nb-copy-limit": 1})
    shapes = sorted(DAMAGED)
    prefixes = {}
    for i, shape in enumerate(shapes):
        prefix = "2021-01-01T00:00:%02d+00:00" % i
        prefixes[prefix] = shape
        body = DAMAGED[shape] if shape in ("not JSON", "empty file", "deeply nested") else json.dumps(DAMAGED[shape])
        story.s3.put_object(Bucket=story.bucket, Key="%s/%s/%s" % (story.root, prefix, MANIFEST), Body=body.encode())
        story.s3.put_object(Bucket=story.bucket, Key="%s/%s/data.txt" % (story.root, prefix), Body=b"data\n")
    listed = {c["prefix"]: c for c in story.list_json(conf)}
    assert {p: c["state"] for p, c in listed.items()} == {p: "corrupt" for p in prefixes}
    assert all(c["problem"] for c in listed.values())
    for prefix in (sorted(prefixes)[0], sorted(prefixes)[-1]):
        one_line_refusal(story.palhm(conf, "verify", "backup", prefix), prefix)
        one_line_refusal(story.palhm(conf, "restore", "backup", prefix, "data.txt"), prefix)
    proc = story.run_ok(conf)
    assert "Traceback" not in proc.stderr
    story.run_ok(conf)
    after = {c["prefix"]: c["state"] for c in story.list_json(conf)}
    assert sorted(after.values()).count("complete") == 1
    assert {p: s for p, s in after.items() if s == "corrupt"} == {p: "corrupt" for p in prefixes}


# --------------------------------------------------------------------------
# item 11: a copy dated in the future is said out loud
# --------------------------------------------------------------------------

FUTURE = "2099-01-01T00:00:00+00:00"


def test_a_copy_dated_in_the_future_is_warned_about_by_run_list_and_the_metrics(palhm):
    prom = palhm.tmp / "textfile" / "palhm.prom"
    palhm.write_config({"metrics": {"path": str(prom)}, "tasks": [task(palhm, "backup", palhm.root, limit=3)]})
    run_ok(palhm)
    assert 'palhm_task_future_copies{task="backup",type="backup"} 0' in prom.read_text()
    (made,) = copies(palhm)
    # The clock was ahead when this one was made: a real copy, its PREFIX in 2099.
    shutil.copytree(str(palhm.root / made), str(palhm.root / FUTURE))
    doc = json.loads((palhm.root / FUTURE / MANIFEST).read_text())
    doc["prefix"] = FUTURE
    (palhm.root / FUTURE / MANIFEST).write_text(json.dumps(doc))
    res = palhm("list", "backup")
    assert res.returncode == 0
    assert "palhm: warning: copy %s is dated in the future" % FUTURE in res.stderr
    res = palhm("list", "backup", "--json")
    listed = {c["prefix"]: c for c in json.loads(res.stdout)}
    assert listed[FUTURE]["future"] is True and listed[made]["future"] is False
    assert palhm("-q", "list", "backup").stderr == ""
    res = run_ok(palhm)
    warning = [ln for ln in res.stderr.splitlines() if "copy %s is dated" % FUTURE in ln]
    assert len(warning) == 1 and "in the future" in warning[0] and "rotation keeps it" in warning[0]
    assert 'palhm_task_future_copies{task="backup",type="backup"} 1' in prom.read_text()
    # A legacy copy of the original, dated in the future too.
    (palhm.root / "2098-06-01T00:00:00+00:00").mkdir()
    (palhm.root / "2098-06-01T00:00:00+00:00" / "old.tar").write_text("x")
    res = run_ok(palhm)
    assert "copy 2098-06-01T00:00:00+00:00 is dated" in res.stderr
    assert 'palhm_task_future_copies{task="backup",type="backup"} 2' in prom.read_text()
    # A failed run still tells the metrics.
    (palhm.root / "2098-06-01T00:00:00+00:00" / "old.tar").unlink()
    (palhm.root / "2098-06-01T00:00:00+00:00").rmdir()
    palhm.write_config({"metrics": {"path": str(prom)}, "tasks": [
        dict(task(palhm, "backup", palhm.root, limit=3),
             objects=[{"path": "x", "pipeline": [palhm.stage("false")]}])]})
    assert palhm("run", "backup").returncode == 1
    assert 'palhm_task_future_copies{task="backup",type="backup"} 1' in prom.read_text()


def test_a_copy_a_few_seconds_ahead_is_not_called_future(palhm):
    palhm.write_config({"tasks": [task(palhm, "backup", palhm.root)]})
    res = run_ok(palhm)
    assert "in the future" not in res.stderr
    assert [c["future"] for c in copies(palhm).values()] == [False]
