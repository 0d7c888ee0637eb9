# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does the newest copy actually restore? A `restore-drill` task reads the
newest complete copy of a backup task, verifies every object against its
manifest and feeds the objects it names through a pipeline that proves they
restore; `palhm run` of the drill records the outcome like any task's (run
history, `palhm status`, the metrics file)."""

from __future__ import annotations

import json
import os
import subprocess
import time

from test_restore_cli import S3Store


def backup(palhm, root=None, extra=None):
    task = {"id": "backup", "type": "backup", "backend": "localfs",
            "backend-param": {"root": str(root or palhm.root)},
            "objects": [
                {"path": "etc.tar.zst", "pipeline": [
                    palhm.stage("tar", "-cf", "-", "-C", str(palhm.etc.parent), "src"),
                    palhm.stage("zstd", "-q")]},
                {"path": "date.txt", "pipeline": [palhm.stage("date", "-u")]}]}
    task.update(extra or {})
    return task


def drill(palhm, **extra):
    task = {"id": "drill", "type": "restore-drill", "backup-task": "backup",
            "objects": [{"path": "etc.tar.zst", "pipeline": [
                palhm.stage("zstd", "-d", "-q"),
                # The drill's scratch directory: unpack the archive there and
                # check a file came back.
                palhm.stage("sh", "-c", 'tar -x -C "$PALHM_DRILL_DIR" && test -s "$PALHM_DRILL_DIR/src/data.txt" '
                            '&& echo "$PALHM_DRILL_DIR" > "%s"' % (palhm.tmp / "scratch-was")),
            ]}]}
    task.update(extra)
    return task


def setup(palhm, backup_task=None, **drill_extra):
    src = palhm.etc.parent / "src"
    src.mkdir(exist_ok=True)
    (src / "data.txt").write_text("precious data\n" * 100)
    palhm.write_config({"metrics": {"path": str(palhm.tmp / "prom" / "palhm.prom")},
                        "tasks": [backup_task or backup(palhm), drill(palhm, **drill_extra)]})


def status(palhm):
    res = palhm("status", "--json")
    assert res.returncode in (0, 7), res.stderr
    doc = json.loads(res.stdout)
    return {t["task"]: t for t in doc["tasks"]}


def metrics(palhm):
    out = {}
    for line in (palhm.tmp / "prom" / "palhm.prom").read_text().splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            out[name_labels] = float(value)
    return out


def drill_history(palhm):
    return json.loads((palhm.tmp / "state" / "history" / "drill.json").read_text())["runs"]


def test_a_good_copy_passes_the_drill_and_status_and_metrics_say_so(palhm):
    setup(palhm)
    assert palhm("run", "backup").returncode == 0
    res = palhm("run", "drill")
    assert res.returncode == 0, res.stderr
    (copy,) = palhm.copies("backup")
    (run,) = drill_history(palhm)
    assert run["result"] == "success" and run["prefix"] == copy["prefix"]
    assert run["objects"] == 2 and run["bytes"] == copy["size"]
    # The pipeline ran in a scratch directory that is gone now.
    scratch = (palhm.tmp / "scratch-was").read_text().strip()
    assert scratch and not os.path.exists(scratch)
    st = status(palhm)
    assert st["drill"]["verdict"] == "ok" and st["drill"]["backup_task"] == "backup"
    assert st["backup"]["drill"]["task"] == "drill" and st["backup"]["drill"]["result"] == "success"
    assert st["backup"]["drill"]["prefix"] == copy["prefix"]
    m = metrics(palhm)
    assert m['palhm_task_success{task="drill",type="restore-drill"}'] == 1
    assert m['palhm_task_objects{task="drill",type="restore-drill"}'] == 2
    assert m['palhm_task_bytes{task="drill",type="restore-drill"}'] == copy["size"]


def test_a_corrupted_object_fails_the_drill_naming_it(palhm):
    setup(palhm)
    assert palhm("run", "backup").returncode == 0
    (copy,) = palhm.copies("backup")
    target = palhm.root / copy["prefix"] / "date.txt"
    data = bytearray(target.read_bytes())
    data[0] ^= 0xFF
    os.chmod(target, 0o600)
    target.write_bytes(bytes(data))
    res = palhm("run", "drill")
    assert res.returncode == 5, res.stderr
    assert "date.txt" in res.stderr and copy["prefix"] in res.stderr and "manifest" in res.stderr
    st = status(palhm)
    assert st["drill"]["verdict"] == "failing" and "date.txt" in st["drill"]["reason"]
    assert st["backup"]["drill"]["result"] == "failure"
    assert metrics(palhm)['palhm_task_success{task="drill",type="restore-drill"}'] == 0
    assert drill_history(palhm)[-1]["exit_code"] == 5


def test_an_object_its_pipeline_cannot_restore_fails_the_drill_naming_the_stage(palhm):
    # The archive is intact (its hash matches) but is not what the pipeline
    # expects: the drill fails on the stage, not on verification.
    setup(palhm, objects=[{"path": "date.txt", "pipeline": [palhm.stage("zstd", "-t", "-q")]}])
    assert palhm("run", "backup").returncode == 0
    res = palhm("run", "drill")
    assert res.returncode == 1, res.stderr
    assert "zstd" in res.stderr
    assert status(palhm)["drill"]["verdict"] == "failing"


def test_a_copy_older_than_max_age_fails_the_drill(palhm):
    setup(palhm, **{"max-age": "2s"})
    assert palhm("run", "backup").returncode == 0
    time.sleep(2.5)
    res = palhm("run", "drill")
    assert res.returncode == 1
    assert "more than max-age 2s" in res.stderr and "newest complete copy" in res.stderr
    assert status(palhm)["drill"]["verdict"] == "failing"


def test_a_backup_without_a_complete_copy_fails_the_drill(palhm):
    setup(palhm)
    res = palhm("run", "drill")
    assert res.returncode == 1 and "no complete copy" in res.stderr
    # The backup's status shows the failed drill.
    assert status(palhm)["backup"]["drill"]["result"] == "failure"


def test_a_drill_of_anything_but_a_backup_task_is_a_config_error(palhm):
    palhm.write_config({"tasks": [{"id": "job", "type": "routine", "routine": [palhm.stage("true")]},
                                  {"id": "drill", "type": "restore-drill", "backup-task": "job"}]})
    res = palhm("run", "drill")
    assert res.returncode == 2 and "tasks[1].backup-task" in res.stderr and "not a backup task" in res.stderr
    palhm.write_config({"tasks": [{"id": "drill", "type": "restore-drill", "backup-task": "nope"}]})
    res = palhm("config")
    assert res.returncode == 2 and "no task named" in res.stderr


def test_an_s3_copy_passes_the_drill(palhm, moto):
    store = S3Store(moto)
    task = backup(palhm)
    task.update(store.task())
    task.pop("modules")
    src = palhm.etc.parent / "src"
    src.mkdir()
    (src / "data.txt").write_text("precious data\n" * 100)
    palhm.write_config({"modules": ["aws"], "tasks": [task, drill(palhm)]})
    assert palhm("run", "backup").returncode == 0
    res = palhm("run", "drill")
    assert res.returncode == 0, res.stderr
    assert status(palhm)["drill"]["verdict"] == "ok"
    # A deleted object: the drill fails naming it.
    (copy,) = palhm.copies("backup")
    store.delete(copy["prefix"], "etc.tar.zst")
    res = palhm("run", "drill")
    assert res.returncode == 5 and "etc.tar.zst" in res.stderr


def test_drill_shows_in_config_and_is_read_only(palhm):
    setup(palhm)
    assert palhm("run", "backup").returncode == 0
    before = subprocess.run(["find", str(palhm.root), "-printf", "%p %s %T@\n"], stdout=subprocess.PIPE,
                            check=True, text=True).stdout
    assert palhm("run", "drill").returncode == 0
    after = subprocess.run(["find", str(palhm.root), "-printf", "%p %s %T@\n"], stdout=subprocess.PIPE,
                           check=True, text=True).stdout
    assert before == after
    cfg = json.loads(palhm("config").stdout)
    (d,) = [t for t in cfg["tasks"] if t["id"] == "drill"]
    assert d["type"] == "restore-drill" and d["backup-task"] == "backup"
