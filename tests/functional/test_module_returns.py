# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module returns what its RETURN documents, both ways, on its main
paths (success, check mode, the usual failures): each key it returns is
documented (one level into documented `contains` too), and each documented
key whose `returned` condition holds on that path is returned.

One ansible-playbook run plays every case (real modules, a real localfs
backend, the DNSSEC lab of tests/helpers/dnssec_lab.py) and writes the
registered results to a file; the tests compare them with the RETURN blocks.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "helpers"))

import dnssec_lab  # noqa: E402

# What Ansible itself adds, and what every palhm failure carries (documented
# once, in the notes of the palhm.palhm.common doc fragment).
STANDARD = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "exception", "skipped",
            "_ansible_no_log", "ansible_facts", "attempts"}
FAILURE = {"error_type", "exit_code"}

ALWAYS = "always"
SUCCESS = "success"
DONE = "success, not in check mode"
CHECK = "check mode"
DNS_RAN = "success, and on failure after the queries ran"


def return_docs(module):
    """The RETURN block of plugins/modules/MODULE.py, parsed."""
    tree = ast.parse((REPO / "plugins" / "modules" / (module + ".py")).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "RETURN":
            return yaml.safe_load(node.value.value) or {}
    raise AssertionError("%s has no RETURN" % module)


def case(name, module, args, holds, check=False, fails=False, also=()):
    """One module call. holds: the RETURN `returned` conditions true on this
    path (keys with those must be returned); also: more keys it must return."""
    return {"name": name, "module": module, "args": args, "check": check, "fails": fails,
            "holds": set(holds), "also": set(also)}


def cases(tmp, lab):
    root = str(tmp / "backups")
    obj = [{"path": "hello.txt", "pipeline": [{"type": "exec-inline", "argv": ["echo", "hello"]}]}]
    backup = {"task": "bk", "backend": "localfs", "backend_param": {"root": root, "nb-copy-limit": 2},
              "objects": obj}
    conf = str(tmp / "palhm.json")
    dns = {"resolvers": ["127.0.0.1"], "port": lab["resolvers"]["validating"], "timeout": 2}
    out = [
        case("backup, check mode", "palhm_backup", backup, {ALWAYS, CHECK}, check=True),
        case("backup", "palhm_backup", backup, {ALWAYS, SUCCESS, DONE}),
        case("backup again, rotating", "palhm_backup", backup, {ALWAYS, SUCCESS, DONE}),
        case("backup again, rotating the oldest", "palhm_backup", backup, {ALWAYS, SUCCESS, DONE}),
        case("backup from the config file", "palhm_backup", {"config": conf, "task": "bk"},
             {ALWAYS, SUCCESS, DONE}),
        case("backup with a failing stage", "palhm_backup",
             dict(backup, objects=[{"path": "x", "pipeline": [{"type": "exec-inline", "argv": ["false"]}]}]),
             {ALWAYS}, fails=True),
        case("backup, config mistake", "palhm_backup",
             dict(backup, objects=[{"path": "x", "pipeline": [{"type": "exec", "exec-id": "nope"}]}]),
             {ALWAYS}, fails=True),
        case("backup_info", "palhm_backup_info", {"config": conf, "task": "bk"}, {ALWAYS, SUCCESS}),
        case("backup_info with manifests and a query", "palhm_backup_info",
             {"config": conf, "task": "bk", "manifests": True, "query": "copies[-1].prefix"},
             {ALWAYS, SUCCESS, "when O(query) is set"}),
        case("backup_info, check mode", "palhm_backup_info", {"config": conf, "task": "bk"},
             {ALWAYS, SUCCESS}, check=True),
        case("restore into a file, check mode", "palhm_restore",
             {"config": conf, "task": "bk", "path": "hello.txt", "dest": str(tmp / "out.txt")},
             {ALWAYS, SUCCESS, CHECK}, check=True),
        case("restore into a file", "palhm_restore",
             {"config": conf, "task": "bk", "path": "hello.txt", "dest": str(tmp / "out.txt")},
             {ALWAYS, SUCCESS, "when written"}),
        case("restore again: up to date, another mode, check mode", "palhm_restore",
             {"config": conf, "task": "bk", "path": "hello.txt", "dest": str(tmp / "out.txt"), "mode": "0644"},
             {ALWAYS, SUCCESS, CHECK,
              "check mode, when O(dest) already matches but has another mode"}, check=True),
        case("restore again: up to date, another mode", "palhm_restore",
             {"config": conf, "task": "bk", "path": "hello.txt", "dest": str(tmp / "out.txt"), "mode": "0644"},
             {ALWAYS, SUCCESS, "when O(dest) already matched, not in check mode",
              "when O(dest) already matched but had another mode, not in check mode"}),
        case("restore through a pipeline", "palhm_restore",
             {"config": conf, "task": "bk", "path": "hello.txt",
              "pipeline": [{"type": "exec-inline", "argv": ["cat"]}]},
             {ALWAYS, SUCCESS, "when written", "success, with a pipeline, not in check mode",
              "success, with a pipeline and without O(dest), not in check mode"}),
        case("restore of a missing object", "palhm_restore",
             {"config": conf, "task": "bk", "path": "nope.txt", "dest": str(tmp / "nope.txt")},
             {ALWAYS}, fails=True),
        case("routine, check mode", "palhm_routine",
             {"task": "r", "routine": [{"type": "exec-inline", "argv": ["echo", "hi"]}]}, {ALWAYS}, check=True),
        case("routine", "palhm_routine",
             {"task": "r", "routine": [{"type": "exec-inline", "argv": ["echo", "hi"]},
                                       {"type": "builtin", "builtin-id": "sigmask",
                                        "param": [{"action": "block", "sig": ["TERM"]}]}]}, {ALWAYS}),
        case("routine with a task pointer", "palhm_routine", {"config": conf, "task": "nightly"}, {ALWAYS}),
        case("routine with a failing step", "palhm_routine",
             {"task": "r", "routine": [{"type": "exec-inline", "argv": ["sh", "-c", "exit 3"]}]},
             {ALWAYS}, fails=True),
        case("status", "palhm_status", {"config": conf}, {ALWAYS}),
        case("status of one task with a query", "palhm_status",
             {"config": conf, "task": "bk", "query": "tasks[0].verdict"}, {ALWAYS, "when O(query) is set"}),
        case("boot report, check mode", "palhm_boot_report", {"mua": "stdout", "mail_to": ["root"]},
             {SUCCESS}, check=True),
        case("boot report", "palhm_boot_report", {"mua": "stdout", "mail_to": ["root"]}, {SUCCESS}),
        case("dnssec check", "palhm_dnssec_check",
             dict(dns, names=["valid.test"], must_fail="tampered.test"), {DNS_RAN}),
        case("dnssec check that fails", "palhm_dnssec_check",
             dict(dns, names=["valid.test", "expired.test"]), {DNS_RAN}, fails=True),
        case("dnssec check of a configured task", "palhm_dnssec_check", {"config": conf, "task": "dns"},
             {DNS_RAN, "when O(config) is given"}),
        case("dnssec check, option mistake", "palhm_dnssec_check", dict(dns, names=["valid.test"], port=0),
             set(), fails=True),
    ]
    config = {"tasks": [
        {"id": "bk", "type": "backup", "backend": "localfs", "backend-param": {"root": root, "nb-copy-limit": 2},
         "objects": obj},
        {"id": "nightly", "type": "routine", "routine": [{"type": "task", "task-id": "bk"}]},
        {"id": "dns", "type": "dnssec-check", "names": ["valid.test"], "resolvers": dns["resolvers"],
         "port": dns["port"], "timeout": 2}]}
    (tmp / "palhm.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = dnssec_lab.Lab(str(tmp_path_factory.mktemp("dnssec-lab")))
    state = lab.start()
    try:
        yield state
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def played(tmp_path_factory, lab):
    """Play every case once -> [(case, registered result)]."""
    tmp = tmp_path_factory.mktemp("returns")
    todo = cases(tmp, lab)
    tasks = []
    for i, c in enumerate(todo):
        tasks.append({"name": c["name"], "palhm.palhm." + c["module"]: c["args"], "check_mode": c["check"],
                      "ignore_errors": True, "register": "r%d" % i})
    results = {"r%d" % i: "{{ r%d }}" % i for i in range(len(todo))}
    tasks.append({"name": "Write the results", "ansible.builtin.copy": {
        "dest": str(tmp / "results.json"), "mode": "0600", "content": "{{ results | to_json }}"},
        "vars": {"results": results}})
    (tmp / "play.yml").write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                                                   "tasks": tasks}]))
    base = tmp / "collections" / "ansible_collections" / "palhm"
    base.mkdir(parents=True)
    (base / "palhm").symlink_to(REPO)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               PALHM_RUN_DIR=str(tmp / "run"), PALHM_STATE_DIR=str(tmp / "state"))
    env.pop("PYTHONPATH", None)
    env.pop("ANSIBLE_CONFIG", None)
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([exe, "-i", "localhost,", "-c", "local", "-e",
                           "ansible_python_interpreter=%s" % sys.executable, str(tmp / "play.yml")],
                          env=env, cwd=str(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, check=False)
    assert (tmp / "results.json").exists(), proc.stdout[-4000:]
    got = json.loads((tmp / "results.json").read_text())
    return [(c, got["r%d" % i]) for i, c in enumerate(todo)]


def check_keys(docs, value, where, holds, problems, top=False):
    """Compare a returned dict with its documented keys."""
    for key in value:
        if key in STANDARD and top:
            continue
        if key not in docs:
            problems.append("%s: returns %r, which RETURN does not document" % (where, key))
    for key, doc in docs.items():
        returned = (doc or {}).get("returned", ALWAYS if not top else None)
        if returned in holds and key not in value:
            problems.append("%s: RETURN says %r is returned %r, it is not" % (where, key, returned))
    for key, doc in docs.items():
        sub = (doc or {}).get("contains")
        if not sub or key not in value:
            continue
        items = value[key] if isinstance(value[key], list) else [value[key]]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                # Sub-keys: `returned` defaults to what their parent says.
                check_keys(sub, item, "%s.%s[%d]" % (where, key, i), holds | {ALWAYS}, problems)


@pytest.mark.parametrize("module", ["palhm_backup", "palhm_backup_info", "palhm_restore", "palhm_routine",
                                    "palhm_status", "palhm_boot_report", "palhm_dnssec_check"])
def test_returned_keys_match_the_return_docs(played, module):
    docs = return_docs(module)
    problems = []
    ran = [(c, r) for c, r in played if c["module"] == module]
    assert ran
    for c, result in ran:
        where = "%s (%s)" % (module, c["name"])
        if bool(result.get("failed")) != c["fails"]:
            problems.append("%s: failed=%r: %s" % (where, result.get("failed"), result.get("msg")))
            continue
        if c["fails"]:
            missing = FAILURE - set(result)
            if missing:
                problems.append("%s: a failure without %s" % (where, sorted(missing)))
            result = {k: v for k, v in result.items() if k not in FAILURE}
        check_keys(docs, result, where, c["holds"], problems, top=True)
        for key in c["also"] - set(result):
            problems.append("%s: %r not returned" % (where, key))
    assert not problems, "\n".join(problems)
