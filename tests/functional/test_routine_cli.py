# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routine tasks through the real `palhm` command."""

from __future__ import annotations

import json
import sys

from conftest import ENGINE_DIR

ECHO = {"id": "echo", "argv": ["echo"]}


def routine(*steps, task_id="default"):
    return {"id": task_id, "type": "routine", "routine": list(steps)}


def test_three_steps_run_in_order_and_print_their_output(palhm):
    palhm.write_config({"execs": [ECHO], "tasks": [routine(
        {"type": "exec-append", "exec-id": "echo", "argv": ["first"]},
        {"type": "exec-inline", "argv": ["echo", "second"]},
        {"type": "exec-append", "exec-id": "echo", "argv": ["third"]})]})
    res = palhm("run")  # no task given: runs "default"
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["first", "second", "third"]


def test_a_failing_middle_step_stops_the_routine_and_is_named(palhm):
    palhm.write_config({"execs": [ECHO], "tasks": [routine(
        {"type": "exec-append", "exec-id": "echo", "argv": ["before"]},
        {"type": "exec-inline", "argv": ["sh", "-c", "echo broken >&2; exit 7"]},
        {"type": "exec-append", "exec-id": "echo", "argv": ["after"]})]})
    res = palhm("run", "default")
    assert res.returncode == 1
    assert "before" in res.stdout and "after" not in res.stdout
    last = res.stderr.strip().splitlines()[-1]
    assert "step 2" in last and "exited with code 7" in last and "broken" in last


def test_accepted_exit_codes_let_a_step_pass(palhm):
    palhm.write_config({"tasks": [routine(
        {"type": "exec-inline", "argv": ["sh", "-c", "exit 1"], "ec": "<2"},
        {"type": "exec-inline", "argv": ["echo", "reached"]})]})
    res = palhm("run")
    assert res.returncode == 0, res.stderr
    assert "reached" in res.stdout


def test_a_task_pointer_runs_a_backup_task(palhm):
    palhm.write_config({"tasks": [
        {"id": "backup", "type": "backup", "backend": "localfs", "backend-param": {"root": str(palhm.root)},
         "objects": [{"path": "hello.txt", "pipeline": [{"type": "exec-inline", "argv": ["echo", "hello"]}]}]},
        routine({"type": "task", "task-id": "backup"}, {"type": "exec-inline", "argv": ["echo", "done"]})]})
    res = palhm("run")
    assert res.returncode == 0, res.stderr
    copies = palhm.copies("backup")
    assert [c["state"] for c in copies] == ["complete"]
    assert (palhm.root / copies[0]["prefix"] / "hello.txt").read_text() == "hello\n"


def test_task_pointer_cycles_are_config_errors_and_nothing_runs(palhm):
    flag = palhm.tmp / "ran"
    palhm.write_config({"tasks": [
        routine({"type": "exec-inline", "argv": ["touch", str(flag)]}, {"type": "task", "task-id": "b"},
                task_id="a"),
        routine({"type": "task", "task-id": "a"}, task_id="b")]})
    res = palhm("run", "a")
    assert res.returncode == 2
    assert "task pointer cycle" in res.stderr and "tasks[" in res.stderr
    assert not flag.exists()


def test_blocking_term_keeps_the_routine_running_to_its_end(palhm):
    palhm.write_config({"tasks": [routine(
        {"type": "builtin", "builtin-id": "sigmask", "param": [{"action": "block", "sig": ["TERM", "SIGINT"]}]},
        {"type": "exec-inline", "argv": ["sh", "-c", "kill -TERM $PPID; kill -INT $PPID; sleep 0.3"]},
        {"type": "exec-inline", "argv": ["echo", "survived"]})]})
    res = palhm("run")
    assert res.returncode == 0, res.stderr
    assert "survived" in res.stdout


def test_without_the_block_sigterm_terminates_the_routine(palhm):
    palhm.write_config({"tasks": [routine(
        {"type": "exec-inline", "argv": ["sh", "-c", "kill -TERM $PPID; sleep 0.3"]},
        {"type": "exec-inline", "argv": ["echo", "survived"]})]})
    res = palhm("run")
    assert res.returncode == 4
    assert "survived" not in res.stdout
    assert "SIGTERM" in res.stderr


def test_signals_are_accepted_as_names_numbers_and_strings(palhm):
    palhm.write_config({"tasks": [routine(
        {"type": "builtin", "builtin-id": "sigmask",
         "param": [{"action": "block", "sig": ["TERM", "SIGHUP", 2, "15"]},
                   {"action": "unblock", "sig": ["HUP"]}]})]})
    assert palhm("config").returncode == 0
    palhm.write_config({"tasks": [routine(
        {"type": "builtin", "builtin-id": "sigmask", "param": [{"action": "block", "sig": ["SIGNOPE"]}]})]})
    res = palhm("config")
    assert res.returncode == 2
    assert "tasks[0].routine[0].param[0].sig[0]: no signal named" in res.stderr


# Runs the CLI in-process and prints its own peak RSS (children excluded).
RSS = ("import resource, sys; sys.path.insert(0, %r); from palhm.cli import main; rc = main(sys.argv[1:]); "
       "sys.stderr.write('PEAK_RSS_KIB=%%d\\n' %% resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
       % str(ENGINE_DIR))


def peak_rss(palhm, nbytes, quiet):
    import subprocess
    palhm.write_config({"tasks": [routine(
        {"type": "exec-inline", "argv": ["head", "-c", str(nbytes), "/dev/zero"]},
        {"type": "exec-inline", "argv": ["sh", "-c", "head -c %d /dev/zero >&2" % nbytes]})]})
    argv = [sys.executable, "-c", RSS] + (["-q"] if quiet else []) + ["-f", str(palhm.config), "run"]
    proc = subprocess.run(argv, env=palhm.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [ln for ln in proc.stderr.split(b"\n") if ln.startswith(b"PEAK_RSS_KIB=")][-1]
    return int(line.split(b"=")[1])


def test_steps_printing_100_mb_do_not_grow_palhm_memory(palhm):
    for quiet in (True, False):  # discarded, and forwarded to palhm's stdout/stderr
        small = peak_rss(palhm, 1 << 20, quiet)
        big = peak_rss(palhm, 100 * 1000 * 1000, quiet)
        assert big - small < 8 * 1024, (quiet, small, big)


def test_config_prints_the_resolved_routine(palhm):
    palhm.write_config({"execs": [ECHO], "tasks": [routine(
        {"type": "exec-append", "exec-id": "echo", "argv": ["x"]})]})
    res = palhm("config")
    assert res.returncode == 0
    doc = json.loads(res.stdout)
    assert doc["tasks"][0]["routine"][0]["argv"] == ["echo", "x"]
