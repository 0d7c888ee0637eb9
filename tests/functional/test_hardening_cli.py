# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12, items 6, 8 and 9, from outside: what cannot be a sound backup is
refused before anything runs; secrets are never printed (palhm config, -v,
errors, module results, manifests, metrics); lock and state directories are
safe and their failures are one line with exit code 6."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from conftest import ENGINE_DIR, REPO

NOBODY = 65534
SYSTEM_PY = "/usr/bin/python3"  # readable by nobody (the venv's is under /root)
UNSHARE = shutil.which("unshare")


def echo_object(path="a.txt", text="hello"):
    return {"path": path, "pipeline": [{"type": "exec-inline", "argv": ["echo", text]}]}


def backup_doc(root, objects=None, **bp):
    params = {"root": str(root)}
    params.update(bp)
    return {"tasks": [{"id": "backup", "type": "backup", "backend": "localfs", "backend-param": params,
                       "objects": [echo_object()] if objects is None else objects}]}


def one_line(res):
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


# ---------------------------------------------------------------------------
# item 6: refuse what cannot be a sound backup, before anything runs
# ---------------------------------------------------------------------------
def test_a_backup_task_without_objects_is_refused_and_the_existing_copies_stay(palhm):
    palhm.write_config(backup_doc(palhm.root, **{"nb-copy-limit": 1}))
    assert palhm("run", "backup").returncode == 0
    before = palhm.root_entries()
    for doc in (backup_doc(palhm.root, objects=[], **{"nb-copy-limit": 1}),
                {"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                            "backend-param": {"root": str(palhm.root), "nb-copy-limit": 1}}]}):
        palhm.write_config(doc)
        res = palhm("run", "backup")
        assert res.returncode == 2
        assert one_line(res) == ("palhm: %s: tasks[0].objects: a backup task needs at least one object (an empty "
                                 "copy would count in rotation as a complete one)" % palhm.config)
        assert palhm.root_entries() == before


@pytest.mark.parametrize("where,doc_edit,key", [
    ("keep-within 10000y", lambda d: d["tasks"][0]["backend-param"].update({"keep-within": "10000y"}),
     "tasks[0].backend-param.keep-within: must be at most 100y"),
    ("keep-within in days past the calendar", lambda d: d["tasks"][0]["backend-param"].update(
        {"keep-within": 99999999999999999999}), "tasks[0].backend-param.keep-within: must be at most 100y"),
    ("alloc-size 10 TiB", lambda d: d["tasks"][0]["objects"][0].update({"alloc-size": "10995116277760"}),
     "tasks[0].objects[0].alloc-size: must be a size in bytes from 0 to 5497558138880"),
    ("block-size 1 TiB", lambda d: d["tasks"][0]["backend-param"].update({"block-size": 1 << 40}),
     "tasks[0].backend-param.block-size: must be <= 1073741824"),
    ("boot-report delay", lambda d: d.update({"boot-report": {"mua": "stdout", "delay": 1e300}}),
     "boot-report.delay: must be at most 86400 seconds"),
    ("boot-wait-timeout", lambda d: d.update({"boot-report": {"mua": "stdout", "boot-wait-timeout": "1e20"}}),
     "boot-report.boot-wait-timeout: must be at most 86400 seconds"),
    ("smtp timeout", lambda d: d.update({"boot-report": {"mua": "smtp", "mail-to": ["root@localhost"],
                                                         "mua-param": {"timeout": 1e12}}}),
     "boot-report.mua-param.timeout: must be at most 300 seconds"),
])
def test_a_duration_or_size_out_of_range_is_a_config_error_naming_the_key(palhm, where, doc_edit, key):
    doc = backup_doc(palhm.root)
    doc_edit(doc)
    palhm.write_config(doc)
    for cmd in (("config",), ("run", "backup")):
        res = palhm(*cmd)
        assert res.returncode == 2, (where, res.stderr)
        assert one_line(res).startswith("palhm: %s: %s" % (palhm.config, key)), where
    assert not palhm.root.exists()


def test_the_largest_values_that_make_sense_are_accepted_and_run(palhm):
    doc = backup_doc(palhm.root, **{"keep-within": "100y", "block-size": 1 << 20})
    doc["tasks"][0]["objects"][0]["alloc-size"] = 5 << 40
    palhm.write_config(doc)
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    # keep-within 100y keeps every copy (rotation ran after the commit, no crash).
    assert palhm("run", "backup").returncode == 0
    assert len([c for c in palhm.copies() if c["state"] == "complete"]) == 2


# ---------------------------------------------------------------------------
# item 8: secrets are never printed
# ---------------------------------------------------------------------------
PG = "pg-S3cret-2f9a"
ARGV_PW = "argv-S3cret-77b1"
TOKEN = "tok-S3cret-c04e"
MAILX_PW = "mailx-S3cret-5d21"
V15_PW = "v15-S3cret-9e0c"
URL_PW = "url-S3cret-41aa"
SMTP_PW = "smtp-S3cret-e3f0"
SECRETS = (PG, ARGV_PW, TOKEN, MAILX_PW, V15_PW, URL_PW, SMTP_PW)


def leaked(text):
    return [s for s in SECRETS if s in text]


def secret_config(palhm, fail=False, mailx=None):
    """A backup whose first stage echoes its environment (PGPASSWORD among it)
    and whose second holds secrets in its argv; with `fail` the second stage
    fails after printing its arguments."""
    echo_env = ("echo \"connecting with $PGPASSWORD\" >&2; env | grep PGPASS >&2; env | grep PGPASS; "
                "echo data")
    second = "cat; echo \"args: $*\" >&2" + ("; exit 7" if fail else "")
    doc = {"metrics": {"path": str(palhm.tmp / "metrics" / "palhm.prom")},
           "execs": [{"id": "pgdump", "argv": ["sh", "-c", echo_env], "env": {"PGPASSWORD": PG, "PGUSER": "bob"}}],
           "tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                      "backend-param": {"root": str(palhm.root)},
                      "objects": [{"path": "db.sql", "pipeline": [
                          {"type": "exec", "exec-id": "pgdump"},
                          {"type": "exec-inline", "argv": ["sh", "-c", second, "filter", "--password=" + ARGV_PW,
                                                           "--token", TOKEN]}]}]}],
           "boot-report": {"mua": "mailx", "mail-to": ["root@localhost"], "mua-param": {
               "exec": mailx or "mailx",
               "int-opts": ["v15-compat", "smtp-auth-password=" + MAILX_PW, "smtp-auth-password-bob@mail.example=" + V15_PW,
                            "mta=smtps://bob:%s@mail.example:465" % URL_PW, "smtp-auth=login"]}}}
    palhm.write_config(doc)
    return doc


def test_palhm_config_shows_no_secret_but_says_where_they_are(palhm):
    secret_config(palhm)
    res = palhm("config")
    assert res.returncode == 0, res.stderr
    assert leaked(res.stdout + res.stderr) == []
    cfg = json.loads(res.stdout)
    assert cfg["execs"][0]["env"] == {"PGPASSWORD": "********", "PGUSER": "bob"}
    argv = cfg["tasks"][0]["objects"][0]["pipeline"][1]["argv"]
    assert argv[-3:] == ["--password=********", "--token", "********"]
    opts = cfg["boot-report"]["mua-param"]["int-opts"]
    assert opts == ["v15-compat", "smtp-auth-password=********", "smtp-auth-password-bob@mail.example=********",
                    "mta=smtps://bob:********@mail.example:465", "smtp-auth=login"]


def test_a_verbose_run_prints_no_secret_and_the_manifest_and_metrics_hold_none(palhm):
    secret_config(palhm)
    res = palhm("-v", "run", "backup")
    assert res.returncode == 0, res.stderr
    assert "connecting with ********" in res.stderr  # the stage's stderr is shown, its secret is not
    assert "PGPASSWORD=********" in res.stderr
    assert leaked(res.stdout + res.stderr) == []
    (prefix,) = palhm.root_entries()
    manifest = (palhm.root / prefix / ".palhm-manifest.json").read_text()
    assert leaked(manifest) == [] and "--password=********" in manifest
    # The stored data itself is the stage's output, untouched.
    assert PG in (palhm.root / prefix / "db.sql").read_text()
    assert leaked((palhm.tmp / "metrics" / "palhm.prom").read_text()) == []
    res = palhm("list", "backup", "--json")
    assert res.returncode == 0 and leaked(res.stdout + res.stderr) == []


def test_a_failing_stage_names_its_argv_and_stderr_without_the_secrets(palhm):
    secret_config(palhm, fail=True)
    for args in (("run", "backup"), ("-v", "run", "backup"), ("-q", "run", "backup")):
        res = palhm(*args)
        assert res.returncode == 1
        assert leaked(res.stdout + res.stderr) == [], args
        last = res.stderr.strip().splitlines()[-1]
        assert "exited with code 7" in last and "'--password=********', '--token', '********'" in last
        assert "args: --password=******** --token ********" in last
    assert palhm.root_entries() == []
    assert leaked((palhm.tmp / "metrics" / "palhm.prom").read_text()) == []


def test_a_failing_mailx_is_named_without_the_int_opts_passwords(palhm):
    mailx = palhm.tmp / "mailx"
    mailx.write_text("#!/bin/sh\ncat >/dev/null\necho \"mailx: cannot send with $*\" >&2\nexit 1\n")
    mailx.chmod(0o755)
    secret_config(palhm, mailx=str(mailx))
    res = palhm("-v", "boot-report")
    assert res.returncode == 1
    assert leaked(res.stdout + res.stderr) == []
    assert "'-S', 'smtp-auth-password=********'" in res.stderr
    assert "mta=smtps://bob:********@mail.example:465" in res.stderr


def test_a_wrong_typed_secret_env_value_is_not_echoed_in_the_error(palhm):
    palhm.write_config({"execs": [{"id": "x", "argv": ["true"], "env": {"MYSQL_PWD": 90210731}}],
                        "tasks": []})
    res = palhm("config")
    assert res.returncode == 2
    assert one_line(res) == "palhm: %s: execs[0].env.MYSQL_PWD: expected a string, got an integer (value hidden)" \
        % palhm.config


@pytest.fixture(scope="module")
def ansible_env(tmp_path_factory):
    """`ansible` ad hoc against localhost, with this checkout as palhm.palhm."""
    base = tmp_path_factory.mktemp("collections")
    ns = base / "ansible_collections" / "palhm"
    ns.mkdir(parents=True)
    (ns / "palhm").symlink_to(REPO)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(base), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="minimal", ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    env.pop("PYTHONPATH", None)
    env.pop("ANSIBLE_CONFIG", None)
    return env


def ansible(env, module, args, *extra, cwd):
    exe = pathlib.Path(sys.executable).parent / "ansible"
    cmd = [str(exe), "localhost", "-c", "local", "-i", "localhost,", "-e",
           "ansible_python_interpreter=%s" % sys.executable, "-m", module, "-a", json.dumps(args)] + list(extra)
    res = subprocess.run(cmd, env=env, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=300, check=False)
    # "localhost | FAILED! => {...}" (the minimal callback); -vvv prints
    # its own lines before it.
    head = res.stdout.find("localhost | ")
    assert head >= 0, res.stdout[-3000:] + res.stderr[-3000:]
    arrow = res.stdout.index(" => ", head)
    host = json.JSONDecoder().raw_decode(res.stdout[arrow + 4:])[0]
    host["failed"] = "FAILED" in res.stdout[head:arrow]
    return res, host


def test_module_results_hold_no_secret_invocation_included(palhm, ansible_env):
    env = dict(ansible_env, PALHM_RUN_DIR=str(palhm.tmp / "run"))
    args = {"routine": [{"type": "exec", "exec-id": "pgdump"},
                        {"type": "exec-inline", "argv": ["sh", "-c", "echo \"args: $*\" >&2; exit 3", "x",
                                                         "--password=" + ARGV_PW]}],
            "execs": [{"id": "pgdump", "argv": ["sh", "-c", "env | grep PGPASS; echo \"pw $PGPASSWORD\" >&2"],
                       "env": {"PGPASSWORD": PG}}]}
    res, host = ansible(env, "palhm.palhm.palhm_routine", args, "-vvv", cwd=palhm.tmp)
    assert host["failed"] is True, host
    assert leaked(res.stdout + res.stderr) == []
    assert "exited with code 3" in host["msg"] and "--password=********" in host["msg"]
    steps = host["steps"]
    assert "PGPASSWORD=********" in steps[0]["stdout_tail"] and "pw ********" in steps[0]["stderr_tail"]


SH_PW = "shell-S3cret-8d3e"
JSON_PW = "json-S3cret-61f7"


def shell_secret_routine():
    """A routine whose failing step carries its secrets inside one argv item:
    a shell command line (``--password VALUE``) and a JSON body
    (``"password": "VALUE"``), and prints them on its stderr."""
    script = ("echo \"mysqldump --password %s db\" >&2; echo '{\"password\": \"%s\"}' >&2; exit 3"
              % (SH_PW, JSON_PW))
    return {"id": "r", "type": "routine", "routine": [
        {"type": "exec-inline", "argv": ["sh", "-c", script]},
        {"type": "exec-inline", "argv": ["curl", "-d", '{"password": "%s"}' % JSON_PW, "http://127.0.0.1:9/"]}]}


def test_a_failed_step_with_secrets_inside_a_shell_command_shows_none_of_them(palhm):
    palhm.write_config({"tasks": [shell_secret_routine()]})
    for args in (("run", "r"), ("-v", "run", "r"), ("config",)):
        res = palhm(*args)
        out = res.stdout + res.stderr
        assert SH_PW not in out and JSON_PW not in out, (args, out)
    res = palhm("run", "r")
    assert res.returncode == 1 and "--password ********" in res.stderr


def test_a_failed_routine_module_shows_no_secret_of_a_shell_command(palhm, ansible_env):
    env = dict(ansible_env, PALHM_RUN_DIR=str(palhm.tmp / "run"), PALHM_STATE_DIR=str(palhm.tmp / "state"))
    args = {"task": "r", "routine": shell_secret_routine()["routine"]}
    res, host = ansible(env, "palhm.palhm.palhm_routine", args, "-vvv", cwd=palhm.tmp)
    assert host["failed"] is True, host
    out = res.stdout + res.stderr
    assert SH_PW not in out and JSON_PW not in out
    assert "exited with code 3" in host["msg"] and "--password ********" in host["steps"][0]["stderr_tail"]


# ---------------------------------------------------------------------------
# item 9: lock and state directories
# ---------------------------------------------------------------------------
@pytest.fixture
def shared_tmp():
    """A world-writable sticky directory like /tmp, that nobody can reach."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="palhm-shared-", dir="/tmp"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(str(path), ignore_errors=True)


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def nobody_palhm(shared, *args, extra_env=None):
    """palhm as an unprivileged user from cron: no XDG_RUNTIME_DIR, no
    PALHM_RUN_DIR, TMPDIR the shared directory."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ENGINE_DIR), "TMPDIR": str(shared), "HOME": str(shared),
           "PYTHONDONTWRITEBYTECODE": "1", "PALHM_STATE_DIR": str(shared / "state")}
    env.update(extra_env or {})
    return subprocess.run([SYSTEM_PY, "-m", "palhm", "-f", str(shared / "palhm.conf")] + list(args), env=env,
                          cwd=str(shared), preexec_fn=as_nobody, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120, check=False)


def nobody_config(shared):
    (shared / "palhm.conf").write_text(json.dumps(backup_doc(shared / "backup")))
    (shared / "palhm.conf").chmod(0o644)


def test_the_tmpdir_lock_directory_is_made_0700_and_a_planted_one_is_refused(shared_tmp):
    nobody_config(shared_tmp)
    lockdir = shared_tmp / ("palhm-%d" % NOBODY)
    res = nobody_palhm(shared_tmp, "run", "backup")
    assert res.returncode == 0, res.stderr
    st = os.lstat(str(lockdir))
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == NOBODY
    shutil.rmtree(str(lockdir))

    # Planted by another user (root here), 0755: nobody must not use it.
    lockdir.mkdir(mode=0o755)
    res = nobody_palhm(shared_tmp, "run", "backup")
    assert res.returncode == 6
    assert one_line(res) == ("palhm: lock directory %s is owned by uid 0, not by this user (uid %d); refusing it: "
                             "another user could plant files in it" % (lockdir, NOBODY))
    lockdir.rmdir()

    # Its own, but world-writable: anyone may have planted a lock file symlink.
    lockdir.mkdir()
    os.chown(str(lockdir), NOBODY, NOBODY)
    lockdir.chmod(0o777)
    res = nobody_palhm(shared_tmp, "run", "backup")
    assert res.returncode == 6
    assert "is writable by group or others (mode 0777)" in one_line(res)
    lockdir.rmdir()

    # A symlink to a directory the planter controls.
    other = shared_tmp / "elsewhere"
    other.mkdir()
    os.chown(str(other), NOBODY, NOBODY)
    other.chmod(0o700)
    lockdir.symlink_to(other)
    res = nobody_palhm(shared_tmp, "run", "backup")
    assert res.returncode == 6
    assert "is a symbolic link; refusing it" in one_line(res)
    assert os.listdir(str(other)) == []
    assert len([c for c in os.listdir(str(shared_tmp / "backup")) if not c.startswith(".")]) == 1


def test_a_planted_lock_symlink_never_truncates_the_file_it_points_to(palhm):
    palhm.write_config(backup_doc(palhm.root))
    run = palhm.tmp / "run"
    run.mkdir(mode=0o700)
    victim = palhm.tmp / "precious.txt"
    victim.write_text("keep me\n")
    (run / "task-backup.lock").symlink_to(victim)
    res = palhm("run", "backup")
    assert res.returncode == 6
    assert one_line(res) == ("palhm: lock file %s is a symbolic link; refusing to follow it (remove it)"
                             % (run / "task-backup.lock"))
    assert victim.read_text() == "keep me\n"
    assert not palhm.root.exists()


@pytest.mark.parametrize("case", ["under a file", "world-writable", "read-only"])
def test_an_unusable_lock_directory_is_one_line_and_exit_6(palhm, case):
    palhm.write_config(backup_doc(palhm.root))
    if case == "under a file":
        (palhm.tmp / "afile").write_text("")
        palhm.env["PALHM_RUN_DIR"] = str(palhm.tmp / "afile" / "run")
        want = "palhm: lock directory %s is unusable: a component of the path is not a directory" \
            % palhm.env["PALHM_RUN_DIR"]
        res = palhm("run", "backup")
    elif case == "world-writable":
        run = palhm.tmp / "run"
        run.mkdir()
        run.chmod(0o777)
        want = "palhm: lock directory %s is writable by group or others (mode 0777); refusing it (chmod go-w %s)" \
            % (run, run)
        res = palhm("run", "backup")
    else:
        if UNSHARE is None:
            pytest.fail("unshare (util-linux) is needed", pytrace=False)
        ro = palhm.tmp / "ro"
        ro.mkdir()
        palhm.env["PALHM_RUN_DIR"] = str(ro / "run")
        script = 'mount -t tmpfs -o ro palhm-ro "$0" && exec "$@"'
        res = subprocess.run([UNSHARE, "-m", "--propagation", "private", "sh", "-c", script, str(ro)]
                             + palhm.argv("run", "backup"), env=palhm.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=120, check=False)
        want = "palhm: lock directory %s cannot be created: read-only file system" % (ro / "run")
    assert res.returncode == 6
    assert one_line(res) == want
    assert not palhm.root.exists()


def test_no_permission_on_the_lock_directory_is_one_line_and_exit_6(shared_tmp):
    nobody_config(shared_tmp)
    res = nobody_palhm(shared_tmp, "run", "backup", extra_env={"PALHM_RUN_DIR": "/root/palhm-run"})
    assert res.returncode == 6
    assert one_line(res) == "palhm: lock directory /root/palhm-run is unusable: permission denied"


def test_the_state_directory_is_made_0700_and_an_unsafe_one_is_refused(palhm):
    state = palhm.tmp / "state"
    res = palhm("boot-report", "--mark-clean-shutdown", config=False)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(os.stat(str(state)).st_mode) == 0o700
    state.chmod(0o777)
    res = palhm("boot-report", "--mark-clean-shutdown", config=False)
    assert res.returncode == 6
    assert one_line(res) == ("palhm: boot report: state directory %s is writable by group or others (mode 0777); "
                             "refusing it (chmod go-w %s)" % (state, state))
    shutil.rmtree(str(state))
    (palhm.tmp / "afile").write_text("")
    palhm.env["PALHM_STATE_DIR"] = str(palhm.tmp / "afile" / "state")
    res = palhm("boot-report", "--mark-clean-shutdown", config=False)
    assert res.returncode == 6
    assert "state directory %s is unusable" % palhm.env["PALHM_STATE_DIR"] in one_line(res)


def test_a_planted_symlink_in_the_state_directory_is_not_followed(palhm):
    state = palhm.tmp / "state"
    state.mkdir(mode=0o700)
    victim = palhm.tmp / "precious.txt"
    victim.write_text("keep me\n")
    (state / ".boot-report.lock").symlink_to(victim)
    res = palhm("boot-report", "--mark-clean-shutdown", config=False)
    assert res.returncode == 6
    assert "is a symbolic link; refusing to follow it" in one_line(res)
    assert victim.read_text() == "keep me\n"


def test_help_documents_exit_code_6(palhm):
    res = palhm("help", config=False)
    assert res.returncode == 0 and "6 lock or state directory unusable or unsafe" in res.stdout


def test_check_mode_creates_no_lock_directory_nor_lock_file(palhm, ansible_env):
    palhm.write_config(backup_doc(palhm.root))
    run = palhm.tmp / "run-never"
    env = dict(ansible_env, PALHM_RUN_DIR=str(run))
    res, host = ansible(env, "palhm.palhm.palhm_backup", {"config": str(palhm.config), "task": "backup"},
                        "--check", cwd=palhm.tmp)
    assert host["failed"] is False, host
    assert host["changed"] is True and host["plan"]["task"] == "backup"
    assert not run.exists()
    run.mkdir(mode=0o700)
    res, host = ansible(env, "palhm.palhm.palhm_backup", {"config": str(palhm.config), "task": "backup"},
                        "--check", cwd=palhm.tmp)
    assert host["failed"] is False, host
    assert os.listdir(str(run)) == []
    assert not palhm.root.exists()
