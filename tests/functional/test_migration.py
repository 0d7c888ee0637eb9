# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Configs written for the original PALHM load and behave as the original
documents (issue 13, docs/migrating.md). The fixtures under
files/original_sample/ and files/original_debug/ are written in the style of
the original's src/conf/py-sample/ and src/conf/py-debug/: a symlinked conf.d,
prefix objects, block-size, comments, includes through symlinks."""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

FILES = pathlib.Path(__file__).resolve().parent / "files"


def install(palhm, name):
    """Copy files/NAME into the test's tmp dir, symlinks kept as symlinks,
    @ROOT@ and @SRC@ filled in; -> (the copy, the source tree to back up)."""
    dest = palhm.tmp / name
    shutil.copytree(FILES / name, dest, symlinks=True)
    src = palhm.tmp / "src"
    if not src.exists():
        (src / "sub").mkdir(parents=True)
        (src / "hello.txt").write_text("hello from a config written for the original\n")
        (src / "sub" / "data.bin").write_bytes(bytes(range(256)) * 16)
    for d, dummy, files in os.walk(dest):
        for f in files:
            p = pathlib.Path(d) / f
            if p.is_symlink():
                continue
            p.write_text(p.read_text().replace("@ROOT@", str(palhm.root)).replace("@SRC@", str(src)))
    return dest, src


def warnings_of(stderr):
    return [line for line in stderr.splitlines() if line.startswith("palhm: warning: ")]


def config_of(palhm, *args, **kw):
    res = palhm(*args, "config", **kw)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), res.stderr


def zstd_tar_names(path):
    data = subprocess.run(["zstd", "-d", "-c", str(path)], stdout=subprocess.PIPE, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return sorted(m.name for m in tar.getmembers())


# --------------------------------------------------------------------------
# the sample: palhm.conf -> site.JSONC, conf.d a symlinked directory
# --------------------------------------------------------------------------

def test_the_original_sample_loads_through_its_symlinks_with_the_original_include_and_scalar_rules(palhm):
    base, dummy = install(palhm, "original_sample")
    palhm.config = base / "etc" / "palhm.conf"
    cfg, err = config_of(palhm)
    shared = base / "shared"
    # JSONC by the name palhm.conf resolves to (site.JSONC, any case); conf.d
    # through the etc/conf.d symlink; core.json's own "tuning.jsonc" from the
    # directory core.json really is in (lib/), not the decoy in conf.d/.
    assert cfg["files"] == [str(palhm.config), str(base / "etc" / "conf.d" / "core.json"),
                            str(shared / "lib" / "tuning.jsonc")]
    # vl and nb-workers: the included file's value wins (the original's rule).
    assert (cfg["vl"], cfg["nb-workers"]) == (3, 2)
    # boot-id (the original's code) is the alias of bootid (its README).
    assert cfg["boot-report"]["bootid"] is True
    task = {t["id"]: t for t in cfg["tasks"]}["backup"]
    # ./x and a//b are normalised; comment keys are gone.
    assert [o["path"] for o in task["objects"]] == ["os-release", "meta/uname.zstd", "src.tar.zstd"]
    assert "prefix" not in task["backend-param"] and "#" not in task
    # vl-stderr on exec and exec-append items.
    assert task["objects"][1]["pipeline"][1]["vl-stderr"] == 5
    assert task["objects"][2]["pipeline"][0]["vl-stderr"] == 1
    assert task["objects"][2]["pipeline"][0]["argv"][-3:] == ["-C", str(palhm.tmp / "src"), "."]
    # prefix: accepted, ignored, one warning naming it.
    assert warnings_of(err) == ["palhm: warning: %s: tasks[0].backend-param.prefix: ignored: the original PALHM "
                                "reserved it for future use; copies are named by their UTC start time"
                                % palhm.config]


def test_the_original_sample_runs_its_default_task_for_an_empty_task_name(palhm):
    base, src = install(palhm, "original_sample")
    palhm.config = base / "etc" / "palhm.conf"
    res = palhm("run", "")
    assert res.returncode == 0, res.stderr
    assert "update ran" in res.stdout  # the default routine ran both its tasks
    copies = palhm.copies()
    assert [c["state"] for c in copies] == ["complete"]
    copy = palhm.root / copies[0]["prefix"]
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file()) == [
        ".palhm-manifest.json", "meta/uname.zstd", "os-release", "src.tar.zstd"]
    assert (copy / "os-release").read_bytes() == pathlib.Path("/etc/os-release").read_bytes()
    assert zstd_tar_names(copy / "src.tar.zstd") == [".", "./hello.txt", "./sub", "./sub/data.bin"]
    assert oct(copy.stat().st_mode & 0o777) == oct(0o750)
    res = palhm("verify", "backup")
    assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------
# the debug configs: palhm.jsonc -> localfs.sample.jsonc, null.sample.jsonc
# --------------------------------------------------------------------------

def test_the_original_debug_localfs_config_runs_and_rotates(palhm):
    base, dummy = install(palhm, "original_debug")
    palhm.config = base / "palhm.jsonc"
    made = []
    for dummy in range(3):
        res = palhm("-q", "run", "backup")
        assert res.returncode == 0, res.stderr
        assert res.stderr == ""  # -q: not even the prefix warning
        made.append(palhm.copies()[-1]["prefix"])
        time.sleep(1.05)  # one copy per second (the prefix is the UTC second)
    assert [c["prefix"] for c in palhm.copies()] == made[1:]  # nb-copy-limit 2


def test_vl_stdout_and_vl_stderr_on_exec_and_exec_append_items_decide_what_is_shown(palhm):
    base, dummy = install(palhm, "original_debug")
    palhm.config = base / "palhm.jsonc"
    res = palhm("-q", "run", "update")
    assert res.returncode == 0, res.stderr
    # -q is verbosity 0: only items that lowered their level to 0 show output.
    assert res.stdout.split() == ["loud-on-stdout"]
    assert "noise-from-stderr" in res.stderr
    res = palhm("run", "update")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["loud-on-stdout"]  # 9 stays hidden at the default 3


def test_the_original_debug_null_dry_run_ignores_the_localfs_parameters_with_one_warning(palhm):
    base, dummy = install(palhm, "original_debug")
    palhm.config = base / "null.sample.jsonc"
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert warnings_of(res.stderr) == [
        "palhm: warning: %s: tasks[0].backend-param.prefix: ignored: the original PALHM reserved it for future use; "
        "copies are named by their UTC start time" % palhm.config,
        "palhm: warning: %s: tasks[0].backend-param: ignored by the null backend (it stores nothing): root, dmode, "
        "fmode, block-size, nb-copy-limit, root-size-limit" % palhm.config]
    assert not palhm.root.exists()  # nothing stored anywhere
    cfg, dummy = config_of(palhm)
    assert cfg["tasks"][0]["backend"] == "null"
    # A key no backend knows is still a typo, with a suggestion.
    text = palhm.config.read_text().replace('"dmode"', '"dmod"')
    palhm.config.write_text(text)
    res = palhm("run", "backup")
    assert res.returncode == 2
    assert "tasks[0].backend-param.dmod: unknown key (did you mean 'dmode'?)" in res.stderr
    assert "Traceback" not in res.stderr


# --------------------------------------------------------------------------
# comment keys and typos
# --------------------------------------------------------------------------

COMMENTS = ("_comment", "#", "// why", "__doc__")


@pytest.mark.parametrize("key", COMMENTS)
def test_comment_keys_are_ignored_at_every_level(palhm, key):
    doc = {key: "top", "boot-report": {key: 1, "mua": "stdout", "mail-to": ["root"]},
           "execs": [{key: [], "id": "c", "argv": ["cat"]}],
           "tasks": [{key: {}, "id": "backup", "type": "backup", "backend": "localfs",
                      "backend-param": {key: "x", "root": str(palhm.root)},
                      "object-groups": [{key: 0, "id": "g"}],
                      "objects": [{key: None, "path": "a", "group": "g",
                                   "pipeline": [{key: "x", "type": "exec-inline", "argv": ["echo", "a"]},
                                                {key: "x", "type": "exec", "exec-id": "c"}]}]},
                     {key: 1, "id": "r", "type": "routine",
                      "routine": [{key: 1, "type": "task", "task-id": "backup"}]}]}
    palhm.write_config(doc)
    res = palhm("run", "r")
    assert res.returncode == 0, res.stderr
    assert len(palhm.copies()) == 1


@pytest.mark.parametrize("where, typo", [
    ("top", "nb-worker"), ("task", "object-group"), ("object", "grup"), ("item", "vl_stderr"),
    ("backend-param", "nb-copy-limt")])
def test_other_unknown_keys_stay_errors_with_a_suggestion(palhm, where, typo):
    task = {"id": "backup", "type": "backup", "backend": "localfs", "backend-param": {"root": str(palhm.root)},
            "objects": [{"path": "a", "pipeline": [{"type": "exec-inline", "argv": ["echo"]}]}]}
    doc = {"tasks": [task]}
    target = {"top": doc, "task": task, "object": task["objects"][0], "item": task["objects"][0]["pipeline"][0],
              "backend-param": task["backend-param"]}[where]
    target[typo] = 1
    palhm.write_config(doc)
    res = palhm("config")
    assert res.returncode == 2
    assert "%s: unknown key (did you mean" % typo in res.stderr
    assert str(palhm.config) in res.stderr


# --------------------------------------------------------------------------
# object paths
# --------------------------------------------------------------------------

@pytest.mark.parametrize("given, stored", [("./x", "x"), ("a//b", "a/b"), ("./a/./b//c", "a/b/c")])
def test_object_paths_are_normalised_like_the_original_cp_did(palhm, given, stored):
    palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                                   "backend-param": {"root": str(palhm.root)},
                                   "objects": [{"path": given, "pipeline": [palhm.stage("echo", "data")]}]}]})
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    copy = palhm.root / palhm.copies()[0]["prefix"]
    assert (copy / stored).read_text() == "data\n"
    manifest = json.loads((copy / ".palhm-manifest.json").read_text())
    assert [o["path"] for o in manifest["objects"]] == [stored]


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/x", "./.palhm-manifest.json", "a/", ".", "x//.."])
def test_object_paths_that_leave_the_copy_or_are_reserved_stay_refused(palhm, bad):
    palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                                   "backend-param": {"root": str(palhm.root)},
                                   "objects": [{"path": bad, "pipeline": [palhm.stage("echo")]}]}]})
    res = palhm("run", "backup")
    assert res.returncode == 2
    assert "tasks[0].objects[0].path: object path" in res.stderr
    assert not palhm.root.exists()


def test_paths_that_normalise_to_the_same_object_are_duplicates(palhm):
    palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                                   "backend-param": {"root": str(palhm.root)},
                                   "objects": [{"path": "a/b", "pipeline": [palhm.stage("echo")]},
                                               {"path": "./a//b", "pipeline": [palhm.stage("echo")]}]}]})
    res = palhm("config")
    assert res.returncode == 2
    assert "tasks[0].objects[1].path: duplicate object path \"a/b\"" in res.stderr


# --------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------

def test_a_task_without_id_says_the_id_is_missing(palhm):
    palhm.write_config({"tasks": [{"type": "routine", "routine": []}]})
    res = palhm("config")
    assert res.returncode == 2
    assert res.stderr.strip() == "palhm: %s: tasks[0].id: required key is missing (every task needs an id)" \
        % palhm.config
    palhm.write_config({"execs": [{"id": None, "argv": ["cat"]}]})
    res = palhm("config")
    assert res.returncode == 2
    assert res.stderr.strip() == "palhm: %s: execs[0].id: expected a string, got null" % palhm.config


@pytest.mark.parametrize("kind", ["backup", "routine"])
def test_a_missing_program_says_cannot_start_it_not_found(palhm, kind):
    prog = str(palhm.tmp / "no-such-dumper")
    item = {"type": "exec-inline", "argv": [prog, "--all"]}
    if kind == "backup":
        task = {"id": "t", "type": "backup", "backend": "localfs", "backend-param": {"root": str(palhm.root)},
                "objects": [{"path": "a", "pipeline": [item]}]}
    else:
        task = {"id": "t", "type": "routine", "routine": [item]}
    palhm.write_config({"tasks": [task]})
    res = palhm("run", "t")
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.endswith("cannot start %s: not found" % prog), last
    assert "None" not in last


def test_a_missing_include_names_the_including_file_and_the_include(palhm):
    palhm.write_config({"include": ["conf.d/core.json", "conf.d/gone.json"]})
    palhm.write_config({"execs": []}, "conf.d/core.json")
    res = palhm("config")
    assert res.returncode == 2
    assert res.stderr.strip() == "palhm: %s: include[1]: %s: config file not found" % (
        palhm.config, palhm.etc / "conf.d" / "gone.json")


@pytest.mark.parametrize("key", ["execs", "tasks"])
def test_a_duplicate_exec_or_task_id_names_both_files(palhm, key):
    item = {"execs": {"id": "x", "argv": ["cat"]}, "tasks": {"id": "x", "type": "routine", "routine": []}}[key]
    palhm.write_config({"include": ["conf.d/a.json"], key: [item]})
    palhm.write_config({key: [item]}, "conf.d/a.json")
    res = palhm("config")
    assert res.returncode == 2
    err = res.stderr.strip()
    assert str(palhm.config) in err and str(palhm.etc / "conf.d" / "a.json") in err, err
    assert "duplicate %s id \"x\"" % key[:-1] in err


# --------------------------------------------------------------------------
# includes that cannot be config files, duplicate keys (issue 12, item 6)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["fifo", "dev-zero", "huge", "directory"])
def test_an_include_that_is_not_a_small_regular_file_is_refused_at_once(palhm, what):
    target = palhm.etc / "conf.d" / "x.json"
    target.parent.mkdir()
    if what == "fifo":
        os.mkfifo(target)
    elif what == "dev-zero":
        target.symlink_to("/dev/zero")
    elif what == "huge":
        with open(target, "w") as f:
            f.write('{"execs": []}')
            f.truncate(17 << 20)  # sparse: 17 MiB of which only the start is written
    else:
        target.mkdir()
    palhm.write_config({"include": ["conf.d/x.json"]})
    t0 = time.monotonic()
    res = palhm("config", timeout=30)
    assert time.monotonic() - t0 < 20
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line.startswith("palhm: %s: include[0]: %s: " % (palhm.config, target)), line
    assert ("too large" if what == "huge" else "not a regular file") in line
    assert "Traceback" not in line


@pytest.mark.parametrize("text, path", [
    ('{"tasks": [{"id": "b", "type": "backup", "backend": "localfs", "backend-param": '
     '{"root": "/srv/a", "root": "/srv/b"}}]}', "tasks[0].backend-param.root"),
    ('{"vl": 1, "vl": 2}', "vl"),
    ('{"execs": [{"id": "a", "argv": ["cat"]}, {"id": "b", "argv": ["cat"], "argv": ["rm", "-rf"]}]}',
     "execs[1].argv")])
def test_a_key_repeated_in_one_object_is_an_error_naming_it(palhm, text, path):
    palhm.write_config(text, "palhm.conf")
    res = palhm("config")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("palhm: %s: %s: duplicate key" % (palhm.config, path)), res.stderr
    # The same key in two different objects is fine.
    palhm.write_config('{"execs": [{"id": "a", "argv": ["cat"]}, {"id": "b", "argv": ["cat"]}]}', "palhm.conf")
    assert palhm("config").returncode == 0


# --------------------------------------------------------------------------
# the default config path: /etc/palhm/palhm.conf, else palhm.jsonc
# --------------------------------------------------------------------------

UNSHARE = shutil.which("unshare")


def run_with_private_etc_palhm(palhm, files, *args):
    """Run `palhm ARGS` (no -f) with /etc/palhm replaced by a tmpfs holding
    `files` (name -> text), in a private mount namespace: the host's
    /etc/palhm is never touched (an empty mount point is made and removed
    when there is none)."""
    made = not os.path.lexists("/etc/palhm")
    if made:
        os.mkdir("/etc/palhm")
    try:
        stage = palhm.tmp / "etc-palhm"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        for name, text in files.items():
            (stage / name).write_text(text)
        script = ('mount -t tmpfs -o mode=755 palhm-test /etc/palhm && cp -a "$0"/. /etc/palhm/ && '
                  'exec "$@"')
        cmd = [UNSHARE, "-m", "--propagation", "private", "/bin/sh", "-c", script, str(stage),
               sys.executable, "-m", "palhm"] + list(args)
        return subprocess.run(cmd, env=palhm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=60, check=False, cwd="/")
    finally:
        if made:
            os.rmdir("/etc/palhm")


def test_without_f_palhm_conf_is_used_else_palhm_jsonc_and_the_file_is_named(palhm):
    conf = json.dumps({"tasks": [{"id": "default", "type": "routine", "routine": [
        {"type": "exec-inline", "argv": ["/bin/echo", "from-conf"]}]}]})
    jsonc = ('// the name the original\'s code read\n{"tasks": [{"id": "default", "type": "routine", "routine": '
             '[{"type": "exec-inline", "argv": ["/bin/echo", "from-jsonc"]}]}]}\n')
    res = run_with_private_etc_palhm(palhm, {"palhm.jsonc": jsonc}, "config")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["files"] == ["/etc/palhm/palhm.jsonc"]
    res = run_with_private_etc_palhm(palhm, {"palhm.jsonc": jsonc}, "run")
    assert (res.returncode, res.stdout) == (0, "from-jsonc\n"), res.stderr
    res = run_with_private_etc_palhm(palhm, {"palhm.jsonc": jsonc, "palhm.conf": conf}, "run")
    assert (res.returncode, res.stdout) == (0, "from-conf\n"), res.stderr
    # Errors name the file that was used.
    res = run_with_private_etc_palhm(palhm, {"palhm.jsonc": '{"vl": "loud"}'}, "config")
    assert res.returncode == 2
    assert res.stderr.startswith("palhm: /etc/palhm/palhm.jsonc: vl: expected an integer"), res.stderr
    res = run_with_private_etc_palhm(palhm, {}, "config")
    assert res.returncode == 2
    assert res.stderr.strip() == ("palhm: /etc/palhm/palhm.conf: config file not found (nor "
                                  "/etc/palhm/palhm.jsonc); name one with -f")
