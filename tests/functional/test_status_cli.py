# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is every task's data safe right now? `palhm run` records each run in the
state directory, `palhm status` turns the history, max-age and the copies on
the backend into a verdict per task, and `--query` selects from palhm's JSON
(status, list --json, config) with JMESPath."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import wait_for

SECRET = "hunter2-s3cr3t"


def tasks_config(palhm, *tasks, **top):
    doc = {"tasks": list(tasks)}
    doc.update(top)
    return palhm.write_config(doc)


def backup_task(palhm, task_id="backup", objects=None, **extra):
    task = {"id": task_id, "type": "backup", "backend": "localfs",
            "backend-param": {"root": str(palhm.root / task_id)},
            "objects": objects if objects is not None else [
                {"path": "hello.txt", "pipeline": [palhm.stage("echo", "hello")]},
                {"path": "meta/date.txt", "pipeline": [palhm.stage("date", "-u")]}]}
    task.update(extra)
    return task


def routine_task(palhm, task_id, argv, **extra):
    task = {"id": task_id, "type": "routine", "routine": [palhm.stage(*argv)]}
    task.update(extra)
    return task


def status(palhm, *args):
    res = palhm("status", "--json", *args)
    assert res.returncode in (0, 7), res.stderr
    doc = json.loads(res.stdout)
    return res.returncode, doc


def task_entry(doc, task_id):
    (entry,) = [t for t in doc["tasks"] if t["task"] == task_id]
    return entry


def partials(palhm, task_id="backup"):
    root = palhm.root / task_id
    return [n for n in os.listdir(root) if n.endswith(".palhm-partial")] if root.exists() else []


def history_file(palhm, task_id):
    return palhm.tmp / "state" / "history" / ("%s.json" % task_id)


def history(palhm, task_id):
    return json.loads(history_file(palhm, task_id).read_text())


# --------------------------------------------------------------------------
# run history
# --------------------------------------------------------------------------

def test_a_backup_run_is_recorded_with_its_outcome_bytes_and_copy_prefix(palhm):
    tasks_config(palhm, backup_task(palhm))
    before = time.time()
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    after = time.time()
    (copy,) = palhm.copies("backup")
    (run,) = history(palhm, "backup")["runs"]
    assert run["task"] == "backup" and run["type"] == "backup"
    assert run["result"] == "success" and run["exit_code"] == 0 and run["error"] is None
    assert run["prefix"] == copy["prefix"]
    assert run["bytes"] == copy["size"] > 0 and run["objects"] == 2
    start = datetime.datetime.fromisoformat(run["start"]).timestamp()
    assert int(before) - 1 <= start <= after
    assert run["start"] <= run["end"] and run["end"].endswith("+00:00")
    assert run["duration"] >= 0 and run["parent"] is None
    assert history(palhm, "backup")["last_success"] == run
    # The state directory's history is private to the user palhm runs as.
    assert oct(os.stat(history_file(palhm, "backup")).st_mode & 0o777) == "0o600"


def test_a_failed_run_is_recorded_with_one_line_and_no_secret(palhm):
    stage = palhm.stage("sh", "-c", "echo password=%s >&2; exit 3" % SECRET, "--secret-key", SECRET)
    tasks_config(palhm, backup_task(palhm, objects=[{"path": "x", "pipeline": [stage]}]))
    res = palhm("run", "backup")
    assert res.returncode == 1
    (run,) = history(palhm, "backup")["runs"]
    assert run["result"] == "failure" and run["exit_code"] == 1
    assert run["prefix"] is None and run["bytes"] is None
    assert run["error"].startswith("StageError: object x")
    assert run["error"].endswith(": sh exited with code 3") and "\n" not in run["error"]
    assert SECRET not in history_file(palhm, "backup").read_text()
    out = palhm("status", "--json")
    assert SECRET not in out.stdout + out.stderr
    assert SECRET not in palhm("status").stdout


def test_a_cancelled_run_is_recorded_as_cancelled(palhm):
    tasks_config(palhm, backup_task(palhm, objects=[{"path": "slow", "pipeline": [palhm.slow_producer(400)]}]))
    proc = palhm.start("run", "backup")
    assert wait_for(lambda: partials(palhm), timeout=20)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 4
    (run,) = history(palhm, "backup")["runs"]
    assert run["result"] == "cancelled" and run["exit_code"] == 4


def test_the_history_keeps_the_last_50_runs_and_the_last_success_beyond_them(palhm):
    flag = palhm.tmp / "fail"
    tasks_config(palhm, routine_task(palhm, "job", ["sh", "-c", 'test ! -e "$0"', str(flag)]))
    assert palhm("run", "job").returncode == 0
    first_success = history(palhm, "job")["runs"][0]
    flag.write_text("")
    for dummy in range(55):
        assert palhm("-q", "run", "job").returncode == 1
    doc = history(palhm, "job")
    assert len(doc["runs"]) == 50
    assert all(r["result"] == "failure" for r in doc["runs"])
    assert doc["last_success"] == first_success
    code, st = status(palhm)
    entry = task_entry(st, "job")
    assert code == 7 and entry["verdict"] == "failing" and entry["runs"] == 50
    assert entry["last_success"]["end"] == first_success["end"]


def test_concurrent_runs_of_many_tasks_lose_no_record_and_a_refused_second_run_is_not_one(palhm):
    ids = ["t%d" % i for i in range(6)]
    release = palhm.tmp / "release-long"
    tasks_config(palhm, *[routine_task(palhm, t, ["sleep", "0.3"]) for t in ids],
                 routine_task(palhm, "long", ["/bin/sh", "-c", 'while [ ! -e "$1" ]; do sleep 0.05; done', "sh",
                                              str(release)]),
                 metrics={"path": str(palhm.tmp / "metrics" / "palhm.prom")})
    rounds = 4
    long_run = palhm.start("run", "long")
    assert wait_for(lambda: (history(palhm, "long").get("unfinished") or {}).get("pid") == long_run.pid
                    if history_file(palhm, "long").exists() else False, timeout=20)
    refused = [palhm.start("run", "long") for dummy in range(3)]
    for dummy in range(rounds):
        procs = [palhm.start("run", t) for t in ids]
        for p in procs:
            p.communicate(timeout=60)
            assert p.returncode == 0
    for p in refused:
        p.communicate(timeout=60)
        assert p.returncode == 3
    # The long run holds its lock until the refused runs are done, however
    # slowly a loaded machine starts them.
    release.write_text("go\n")
    long_run.communicate(timeout=60)
    assert long_run.returncode == 0
    for t in ids:
        doc = history(palhm, t)
        assert len(doc["runs"]) == rounds and all(r["result"] == "success" for r in doc["runs"])
        assert doc["unfinished"] is None
    assert len(history(palhm, "long")["runs"]) == 1
    code, st = status(palhm)
    assert code == 0 and st["ok"] and st["counts"]["ok"] == 7
    leftovers = [n for n in os.listdir(palhm.tmp / "state" / "history") if "tmp" in n]
    assert leftovers == []


def test_a_routine_records_itself_and_the_task_it_points_at(palhm):
    tasks_config(palhm, backup_task(palhm),
                 {"id": "nightly", "type": "routine", "routine": [{"type": "task", "task-id": "backup"}]})
    assert palhm("run", "nightly").returncode == 0
    (inner,) = history(palhm, "backup")["runs"]
    (outer,) = history(palhm, "nightly")["runs"]
    assert inner["parent"] == "nightly" and inner["result"] == "success" and inner["prefix"]
    assert outer["parent"] is None and outer["type"] == "routine" and outer["bytes"] is None


def test_a_run_killed_without_a_chance_to_record_is_failing_then_recorded_by_the_next_run(palhm):
    tasks_config(palhm, backup_task(palhm, objects=[{"path": "slow", "pipeline": [palhm.slow_producer(400)]}]),
                 backup_task(palhm, "quick"))
    proc = palhm.start("run", "backup")
    assert wait_for(lambda: partials(palhm), timeout=20)
    code, st = status(palhm, "backup")
    assert task_entry(st, "backup")["running"] is True
    assert task_entry(st, "backup")["verdict"] == "never-run"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    palhm.cleanup()
    code, st = status(palhm, "backup")
    entry = task_entry(st, "backup")
    assert code == 7 and entry["verdict"] == "failing" and entry["running"] is False
    assert "without recording its outcome" in entry["reason"]
    assert entry["last_run"]["exit_code"] is None
    # The next run finds the dead run's mark and turns it into a record.
    tasks_config(palhm, backup_task(palhm), backup_task(palhm, "quick"))
    assert palhm("run", "backup").returncode == 0
    runs = history(palhm, "backup")["runs"]
    assert [r["result"] for r in runs] == ["failure", "success"]
    assert "without recording its outcome" in runs[0]["error"]
    assert task_entry(status(palhm, "backup")[1], "backup")["verdict"] == "ok"


def test_a_state_directory_that_cannot_be_written_costs_a_warning_not_the_backup(palhm):
    blocker = palhm.tmp / "blocker"
    blocker.write_text("a file, not a directory")
    palhm.env["PALHM_STATE_DIR"] = str(blocker / "state")
    tasks_config(palhm, backup_task(palhm))
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert len(palhm.copies("backup")) == 1
    warnings = [ln for ln in res.stderr.splitlines() if "cannot record the run" in ln]
    assert len(warnings) == 1 and str(blocker) in warnings[0]
    assert "Traceback" not in res.stderr


def test_check_mode_and_other_commands_record_no_run(palhm):
    tasks_config(palhm, backup_task(palhm))
    for args in (("config",), ("list", "backup"), ("status",), ("run", "nosuchtask")):
        palhm(*args)
    assert not (palhm.tmp / "state" / "history" / "backup.json").exists()


# --------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------

def test_status_names_each_verdict_and_exits_0_only_when_everything_is_ok(palhm):
    tasks_config(palhm, backup_task(palhm), backup_task(palhm, "lost"), backup_task(palhm, "never"),
                 routine_task(palhm, "broken", ["false"]), routine_task(palhm, "fine", ["true"], **{"max-age": "26h"}),
                 {"id": "dry", "type": "backup", "objects": [{"path": "x", "pipeline": [palhm.stage("true")]}]})
    for t in ("backup", "lost", "broken", "fine", "dry"):
        palhm("-q", "run", t)
    shutil.rmtree(palhm.root / "lost")
    code, st = status(palhm)
    verdicts = {t["task"]: t["verdict"] for t in st["tasks"]}
    assert verdicts == {"backup": "ok", "lost": "no-copy", "never": "never-run", "broken": "failing",
                        "fine": "ok", "dry": "ok"}
    assert code == 7 and st["ok"] is False and st["verdict"] == "failing"
    assert st["counts"] == {"ok": 3, "stale": 0, "never-run": 1, "no-copy": 1, "failing": 1}
    assert [t["task"] for t in st["tasks"]] == ["backup", "lost", "never", "broken", "fine", "dry"]
    ok = task_entry(st, "backup")
    (copy,) = palhm.copies("backup")
    assert ok["newest_copy"]["prefix"] == copy["prefix"] and ok["copies"] == 1
    assert ok["newest_copy"]["size"] == copy["size"] and ok["newest_copy"]["objects"] == 2
    assert 0 <= ok["newest_copy"]["age"] < 120 and 0 <= ok["last_success"]["age"] < 120
    assert task_entry(st, "dry")["copies"] is None and task_entry(st, "dry")["newest_copy"] is None
    assert task_entry(st, "fine")["max_age"] == 26 * 3600
    assert "no complete copy" in task_entry(st, "lost")["reason"]
    assert "exit code 1" in task_entry(st, "broken")["reason"]
    # One task at a time; the exit code speaks for the task asked about.
    assert palhm("status", "backup").returncode == 0
    assert palhm("status", "never").returncode == 7
    text = palhm("status")
    assert text.returncode == 7
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["TASK", "TYPE", "VERDICT"]
    assert any(ln.split()[:3] == ["lost", "backup", "no-copy"] for ln in lines)


def test_a_last_success_older_than_max_age_is_stale(palhm):
    def config(max_age):
        tasks_config(palhm, backup_task(palhm, **{"max-age": max_age}),
                     routine_task(palhm, "job", ["true"], **{"max-age": max_age}))

    config("1h")
    assert palhm("run", "backup").returncode == 0
    assert palhm("run", "job").returncode == 0
    code, st = status(palhm)
    assert code == 0 and st["verdict"] == "ok"
    # The same runs judged by a max-age they are older than (however slow
    # this machine is, the runs ended more than 2 s ago after the sleep).
    config("2s")
    time.sleep(2.5)
    code, st = status(palhm)
    assert code == 7 and [t["verdict"] for t in st["tasks"]] == ["stale", "stale"]
    assert "more than max-age 2s" in task_entry(st, "job")["reason"]
    assert "newest complete copy" in task_entry(st, "backup")["reason"]


def test_only_a_complete_copy_that_is_not_from_the_future_counts(palhm):
    tasks_config(palhm, backup_task(palhm))
    assert palhm("run", "backup").returncode == 0
    root = palhm.root / "backup"
    (copy,) = palhm.copies("backup")
    # A copy dated in 2099 (clock jumped, planted): not proof of anything.
    future = "2099-01-01T00:00:00+00:00"
    shutil.copytree(root / copy["prefix"], root / future)
    manifest = root / future / ".palhm-manifest.json"
    doc = json.loads(manifest.read_text())
    doc["prefix"] = future
    manifest.write_text(json.dumps(doc))
    shutil.rmtree(root / copy["prefix"])
    # An interrupted copy and a legacy one (no manifest) do not count either.
    (root / "2020-01-01T00:00:00+00:00").mkdir()
    (root / "2020-01-01T00:00:00+00:00" / "root.tar").write_text("legacy")
    code, st = status(palhm)
    entry = task_entry(st, "backup")
    assert code == 7 and entry["verdict"] == "no-copy" and entry["newest_copy"] is None


def test_an_unknown_task_is_a_usage_error(palhm):
    tasks_config(palhm, backup_task(palhm))
    res = palhm("status", "bakup")
    assert res.returncode == 2
    assert "bakup" in res.stderr and "backup" in res.stderr and len(res.stderr.splitlines()) == 1


@pytest.mark.parametrize("value, message", [
    ("x", 'expected a duration like "7d"'),
    ("0h", "longer than zero"),
    (True, "expected a string"),
    ("-3h", 'expected a duration like "7d"'),
])
def test_a_bad_max_age_is_a_config_error_naming_the_key(palhm, value, message):
    tasks_config(palhm, routine_task(palhm, "ok", ["true"]), routine_task(palhm, "job", ["true"],
                                                                          **{"max-age": value}))
    for args in (("run", "ok"), ("status",), ("config",)):
        res = palhm(*args)
        assert res.returncode == 2
        (line,) = res.stderr.splitlines()
        assert "tasks[1].max-age" in line and message in line, line
    assert not (palhm.tmp / "state" / "history").exists()


def test_max_age_takes_the_durations_keep_within_takes(palhm):
    tasks_config(palhm, *[routine_task(palhm, "j%d" % i, ["true"], **{"max-age": v})
                          for i, v in enumerate(["26h", "90min", "2d", "1w", 3])])
    res = palhm("config", "--query", "tasks[].\"max-age\"")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [26 * 3600, 90 * 60, 2 * 86400, 7 * 86400, 3 * 86400]


# --------------------------------------------------------------------------
# --query
# --------------------------------------------------------------------------

def test_query_selects_from_status_list_and_config(palhm):
    tasks_config(palhm, backup_task(palhm), routine_task(palhm, "broken", ["false"]))
    palhm("run", "backup")
    palhm("run", "broken")
    res = palhm("status", "--query", "tasks[?verdict!='ok'].task")
    assert res.returncode == 7 and json.loads(res.stdout) == ["broken"]
    res = palhm("status", "backup", "--query", "tasks[0].newest_copy.objects")
    assert res.returncode == 0 and json.loads(res.stdout) == 2
    (copy,) = palhm.copies("backup")
    res = palhm("list", "backup", "--query", "[?complete].prefix")
    assert res.returncode == 0 and json.loads(res.stdout) == [copy["prefix"]]
    res = palhm("list", "backup", "--json", "--query", "length(@)")
    assert json.loads(res.stdout) == 1
    res = palhm("config", "--query", "tasks[?type=='backup'].id")
    assert res.returncode == 0 and json.loads(res.stdout) == ["backup"]


@pytest.mark.parametrize("args", [("status",), ("list", "backup"), ("config",)])
def test_a_bad_query_names_the_expression_in_one_line(palhm, args):
    tasks_config(palhm, backup_task(palhm))
    res = palhm(*args, "--query", "tasks[?")
    assert res.returncode == 2 and res.stdout == ""
    (line,) = res.stderr.splitlines()
    assert line.startswith("palhm: --query \"tasks[?\": invalid JMESPath expression")
    res = palhm(*args, "--query", "abs('x')")
    assert res.returncode == 2 and "abs('x')" in res.stderr and len(res.stderr.splitlines()) == 1


def test_without_jmespath_a_query_is_one_clear_line_and_the_rest_works(palhm):
    blocker = palhm.tmp / "nojmespath"
    (blocker / "jmespath").mkdir(parents=True)
    (blocker / "jmespath" / "__init__.py").write_text("raise ImportError(\"No module named 'jmespath'\")\n")
    palhm.env["PYTHONPATH"] = str(blocker) + os.pathsep + palhm.env["PYTHONPATH"]
    tasks_config(palhm, backup_task(palhm))
    assert palhm("run", "backup").returncode == 0
    for args in (("status",), ("list", "backup"), ("config",)):
        res = palhm(*args, "--query", "tasks")
        assert res.returncode == 2, res.stderr
        (line,) = res.stderr.splitlines()
        assert line == ("palhm: --query requires the Python library 'jmespath', which is not installed on "
                        "this host"), line
    assert palhm("status", "--json").returncode == 0
    assert palhm("list", "backup", "--json").returncode == 0


def test_help_documents_status_and_its_exit_code(palhm):
    res = palhm("help")
    assert "status [TASK] [--json] [--query EXPR]" in res.stdout
    assert "7 status: some task is not ok" in res.stdout


def test_status_of_the_engine_runs_on_the_python_of_a_bare_host(palhm):
    """Status needs nothing but the standard library (a host without boto3 or
    jmespath): run it with -I -S, no site-packages at all."""
    tasks_config(palhm, backup_task(palhm))
    assert palhm("run", "backup").returncode == 0
    engine = palhm.env["PYTHONPATH"].split(os.pathsep)[0]
    code = "import sys; sys.path.insert(0, %r); from palhm.cli import main; sys.exit(main(sys.argv[1:]))" % engine
    res = subprocess.run([sys.executable, "-I", "-S", "-c", code, "-f", str(palhm.config), "status"],
                         env=palhm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_a_state_directory_other_users_may_write_gets_no_history_and_a_warning(palhm):
    state = palhm.tmp / "state"
    state.mkdir()
    os.chmod(state, 0o777)
    tasks_config(palhm, backup_task(palhm))
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if "cannot record the run" in ln]
    assert "writable by group or others" in line
    assert not (state / "history").exists()
