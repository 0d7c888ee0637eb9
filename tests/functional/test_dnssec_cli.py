# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`palhm run check-dnssec` from cron: exit status and stderr against a real
validating resolver (Unbound on 127.0.0.1, zones signed at test time by
tests/helpers/dnssec_lab.py; the palhm_dnssec_check integration target uses
the same lab)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
sys.path.insert(0, os.path.join(REPO, "tests", "helpers"))

import dnssec_lab  # noqa: E402
import yaml  # noqa: E402  (reads the role's default core.json Execs)

# The lab signs zones with dnspython (and cryptography) and serves them with
# Unbound: a missing part fails these tests, it does not skip them.


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if dnssec_lab.shutil.which("unbound") is None and not os.access("/usr/sbin/unbound", os.X_OK):
        pytest.fail("the DNSSEC lab needs unbound (Debian package 'unbound'; tests/run.sh setup installs it)",
                    pytrace=False)
    lab = dnssec_lab.Lab(str(tmp_path_factory.mktemp("dnssec-lab")))
    state = lab.start()
    try:
        yield state
    finally:
        lab.stop()


@pytest.fixture
def palhm(tmp_path, lab):
    """palhm(task dict or list of them, *args) -> CompletedProcess of
    `python -m palhm -f CONF [args] run TASK` (the first task's id)."""

    def run(tasks, *args, task=None, env=None):
        tasks = tasks if isinstance(tasks, list) else [tasks]
        conf = tmp_path / "palhm.conf"
        conf.write_text(json.dumps({"tasks": tasks}, indent=2))
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = MODULE_UTILS + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env["PALHM_RUN_DIR"] = str(tmp_path / "run")
        full_env.update(env or {})
        argv = [sys.executable, "-m", "palhm", "-f", str(conf)] + list(args)
        argv += ["run", task or tasks[0]["id"]]
        t0 = time.monotonic()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              env=full_env, timeout=60, check=False)
        proc.elapsed = time.monotonic() - t0
        proc.lines = [line for line in proc.stderr.splitlines() if line.strip()]
        return proc

    return run


def task(lab, names, resolver="validating", **extra):
    t = {"id": "check-dnssec", "type": "dnssec-check", "names": names, "resolvers": ["127.0.0.1"],
         "port": lab["resolvers"][resolver], "timeout": 2}
    t.update(extra)
    return t


def test_healthy_zones_exit_0_and_say_nothing_under_q(lab, palhm):
    proc = palhm(task(lab, ["valid.test", {"name": "www.valid.test", "type": "A"}]), "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == ""


def test_without_q_a_healthy_check_says_how_many_days_are_left(lab, palhm):
    proc = palhm(task(lab, ["valid.test", "near.test"], **{"min-days-left": 1}))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.lines) == 1
    assert "check-dnssec: 2 names checked: 2 secure; fewest days left 1.9" in proc.lines[0]


def test_a_tampered_zone_fails_with_ede_6_one_line_per_name(lab, palhm):
    proc = palhm(task(lab, ["tampered.test", {"name": "www.tampered.test", "type": "A"}, "valid.test"]), "-q")
    assert proc.returncode == 1
    assert len(proc.lines) == 2, proc.stderr
    assert "tampered.test SOA: bogus: DNSSEC validation fails (SERVFAIL" in proc.lines[0]
    assert "www.tampered.test A: bogus: DNSSEC validation fails (SERVFAIL" in proc.lines[1]
    assert all("EDE 6 (DNSSEC Bogus)" in line for line in proc.lines)
    assert all("check-dnssec: " in line for line in proc.lines)


def test_expired_signatures_fail_with_ede_7(lab, palhm):
    proc = palhm(task(lab, ["expired.test"]), "-q")
    assert proc.returncode == 1
    assert len(proc.lines) == 1
    assert "expired.test SOA: bogus: DNSSEC validation fails (SERVFAIL" in proc.lines[0]
    assert "EDE 7 (Signature Expired)" in proc.lines[0]
    assert "signatures expired 20" in proc.lines[0]


@pytest.mark.parametrize("min_days, code", [(7, 1), (1, 0)])
def test_two_days_of_signatures_fail_a_week_threshold_and_pass_a_day(lab, palhm, min_days, code):
    proc = palhm(task(lab, ["near.test"], **{"min-days-left": min_days}), "-q")
    assert proc.returncode == code, proc.stderr
    if code:
        assert len(proc.lines) == 1
        assert "near.test SOA: secure: signatures expire" in proc.lines[0]
        assert "in 1.9" in proc.lines[0] and "less than the 7 days required" in proc.lines[0]
    else:
        assert proc.stderr == ""


def test_on_expiry_warn_warns_but_exits_0(lab, palhm):
    t = task(lab, ["near.test"], **{"min-days-left": 7, "on-expiry": "warn"})
    loud = palhm(t)
    assert loud.returncode == 0, loud.stderr
    assert any("near.test SOA: signatures expire" in line for line in loud.lines)
    quiet = palhm(t, "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_an_unsigned_zone_is_insecure_and_fails_unless_allowed(lab, palhm):
    proc = palhm(task(lab, ["unsigned.test"]), "-q")
    assert proc.returncode == 1
    assert "unsigned.test SOA: insecure: answer not validated" in proc.stderr
    allowed = palhm(task(lab, ["unsigned.test"], **{"allow-insecure": True}), "-q")
    assert allowed.returncode == 0, allowed.stderr


def test_the_self_check_passes_on_a_validating_resolver(lab, palhm):
    proc = palhm(task(lab, ["valid.test"], **{"must-fail": "tampered.test"}), "-q")
    assert proc.returncode == 0, proc.stderr


def test_a_non_validating_resolver_is_caught_by_the_self_check(lab, palhm):
    proc = palhm(task(lab, ["valid.test"], resolver="nonvalidating", **{"must-fail": "tampered.test"}), "-q")
    assert proc.returncode == 1
    assert "resolver self-check: " in proc.lines[0]
    assert "does not validate DNSSEC" in proc.lines[0]
    # The name it "checked" is also reported: without validation it is insecure.
    assert any("valid.test SOA: insecure" in line for line in proc.lines[1:])


def test_a_dead_resolver_is_unreachable_within_the_timeout(lab, palhm):
    names = ["valid.test", "near.test", "tampered.test"]
    proc = palhm(task(lab, names, resolver="blackhole", timeout=1), "-q")
    assert proc.returncode == 1
    assert len(proc.lines) == 3
    assert all("SOA: unreachable: no answer from any resolver" in line for line in proc.lines)
    assert all("no answer within 1s" in line for line in proc.lines)
    # Names are asked in parallel: one timeout, plus the interpreter's start.
    assert proc.elapsed < 1 + 2.5, proc.elapsed


def test_the_next_resolver_answers_when_the_first_is_dead(lab, palhm):
    # Both resolvers share the port, so list the dead address first: 127.0.0.2
    # is loopback too, but nothing listens there.
    t = task(lab, ["valid.test"], timeout=1)
    t["resolvers"] = ["127.0.0.2", "127.0.0.1"]
    proc = palhm(t, "-q")
    assert proc.returncode == 0, proc.stderr


def test_a_config_mistake_names_the_key_and_exits_2(lab, palhm):
    t = task(lab, ["valid.test"])
    t["min-days-lef"] = 3
    proc = palhm(t, "-q")
    assert proc.returncode == 2
    assert "tasks[0].min-days-lef: unknown key (did you mean 'min-days-left'?)" in proc.stderr


def test_a_bad_name_is_a_config_error_with_its_path(lab, palhm):
    proc = palhm(task(lab, ["valid.test", {"name": "bad name.test"}]), "-q")
    assert proc.returncode == 2
    assert "tasks[0].names[1].name: a domain name must not contain whitespace" in proc.stderr


def test_without_dnspython_the_check_says_which_library_is_missing(lab, palhm, tmp_path):
    # A `dns` package that cannot be imported hides the real dnspython.
    fake = tmp_path / "nodns" / "dns"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('dnspython hidden by the test')\n")
    proc = palhm(task(lab, ["valid.test"]), "-q", env={"PYTHONPATH": "%s%s%s" % (
        MODULE_UTILS, os.pathsep, fake.parent)})
    assert proc.returncode == 2
    assert "the DNSSEC check requires the Python library 'dnspython'" in proc.stderr


def role_core_execs():
    with open(os.path.join(REPO, "roles", "palhm", "defaults", "main.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)["palhm_core_execs"]


@pytest.mark.parametrize("zone, healthy", [("valid.test", True), ("tampered.test", False)])
def test_the_seeds_old_way_a_null_backup_of_dig_and_grep_still_works(lab, tmp_path, zone, healthy):
    """The original's DNSSEC check: a null-backend backup task whose object
    pipes `dig +short +dnssec` (empty output on SERVFAIL) into `grep .`, with
    the Execs of the core.json the role installs."""
    core = tmp_path / "core.json"
    core.write_text(json.dumps({"execs": role_core_execs()}))
    conf = tmp_path / "palhm.conf"
    conf.write_text(json.dumps({"include": [str(core)], "tasks": [{
        "id": "check-dnssec", "type": "backup", "backend": "null",
        "objects": [{"path": zone, "pipeline": [
            {"type": "exec-append", "exec-id": "dig-dnssec",
             "argv": ["@127.0.0.1", "-p", str(lab["resolvers"]["validating"]), "SOA", zone]},
            {"type": "exec", "exec-id": "grep-any"}]}]}]}))
    env = dict(os.environ, PYTHONPATH=MODULE_UTILS, PALHM_RUN_DIR=str(tmp_path / "run"))
    proc = subprocess.run([sys.executable, "-m", "palhm", "-q", "-f", str(conf), "run", "check-dnssec"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
                          timeout=60, check=False)
    if healthy:
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
    else:
        assert proc.returncode == 1
        assert "grep" in proc.stderr and "exited with code 1" in proc.stderr
