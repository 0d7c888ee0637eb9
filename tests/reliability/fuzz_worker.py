# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based fuzzing of configs and module arguments (hypothesis).

Runs in its own process with the engine under test first on sys.path:

    PYTHONPATH=ENGINE python3 fuzz_worker.py {config|module-args} CASES SEED WORKDIR

and prints one JSON object: cases, accepted, rejected, failures (with the
first examples). A case fails when validating it raises anything but
ConfigError, when a ConfigError's message does not start with a JSON path
that exists in the document (or names the one missing key), when a secret
still sitting at its own key shows in an error or in `palhm config`, or when
a rejected config makes any command run (every argv is `touch FLAG`; the
flag dir must stay empty after `palhm run` of the rejected config).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import sys
import traceback

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from palhm import cli, config  # the engine under test (PYTHONPATH)
from palhm.errors import ConfigError

SECRET_S3 = "S3CRET-s3-0bd7f1c2e9"
SECRET_SMTP = "S3CRET-smtp-5a91c0e7d4"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def base_doc(flags, root):
    def t(name):
        return ["touch", os.path.join(flags, name)]
    return {
        "modules": ["aws"], "nb-workers": 2, "vl": 3,
        "execs": [{"id": "tar", "argv": t("tar"), "ec": "<2", "env": {"A": "1"}, "vl-stderr": 1, "vl-stdout": 3},
                  {"id": "zstd", "argv": t("zstd")},
                  {"id": "list", "argv": t("list"), "ec": "0-1"}],
        "tasks": [
            {"id": "backup", "type": "backup", "backend": "localfs",
             "backend-param": {"root": root + "/l", "nb-copy-limit": "3", "root-size-limit": "Infinity",
                               "dmode": "750", "fmode": "640", "keep-daily": 7, "keep-within": "2w"},
             "object-groups": [{"id": "fs"}, {"id": "meta", "depends": ["fs"]}],
             "objects": [{"path": "etc.tar.zst", "group": "fs", "alloc-size": 1000,
                          "pipeline": [{"type": "exec-append", "exec-id": "tar", "argv": ["-C", "/", "etc"],
                                        "env": {"B": "2"}},
                                       {"type": "exec", "exec-id": "zstd"}]},
                         {"path": "meta/pkgs.txt", "group": "meta",
                          "pipeline": [{"type": "exec-inline", "argv": t("inline"), "ec": ">=0"}]}]},
            {"id": "s3", "type": "backup", "backend": "aws-s3",
             "backend-param": {"bucket": "b", "root": "/backup/h", "endpoint-url": "http://127.0.0.1:9",
                               "region": "us-east-1", "access-key": "AKIAFUZZ", "secret-key": SECRET_S3,
                               "sink-storage-class": "STANDARD", "rot-storage-class": "STANDARD_IA",
                               "nb-copy-limit": 2},
             "objects": [{"path": "x", "pipeline": [{"type": "exec", "exec-id": "list"}]}]},
            {"id": "nul", "type": "backup", "backend": "null",
             "objects": [{"path": "n", "pipeline": [{"type": "exec", "exec-id": "zstd"}]}]},
            {"id": "default", "type": "routine",
             "routine": [{"type": "exec", "exec-id": "list"}, {"type": "task", "task-id": "nul"},
                         {"type": "builtin", "builtin-id": "sigmask",
                          "param": [{"action": "block", "sig": ["TERM", "INT"]}]},
                         {"type": "exec-inline", "argv": t("r")}]}],
        "boot-report": {"mua": "smtp", "mua-param": {"host": "127.0.0.1", "port": 2525, "tls": "starttls",
                                                     "username": "u", "password": SECRET_SMTP},
                        "mail-to": ["root@localhost"], "subject": "Boot {hostname}", "uptime": True, "delay": 0},
    }


SECRET_PATHS = {SECRET_S3: ("tasks", 1, "backend-param", "secret-key"),
                SECRET_SMTP: ("boot-report", "mua-param", "password")}

WEIRD = ["", " ", "\0", "\n", "..", ".", "../../etc/passwd", "/abs/path", "a/../b", "a//b", "inf", "-Infinity",
         "NaN", "1e400", "0x10", "-1", "0", "99999999999999999999999", "${HOME}", "$(id)", "`id`", "%s%n%x",
         "\u202e\u0644", "\u00e9t\u00e9", "\ud800", "\uffff", "x" * 5000, "tasks[0]", "default", "backup",
         "localfs", "aws-s3", "null", "exec", "exec-inline", "routine", "task", "==0", "<2", "0-", "750", "8888",
         ".palhm-manifest.json", "x.palhm-partial", "C:\\x", "\\..\\x", "a\tb", " a "]
KEYS = ["id", "type", "argv", "env", "ec", "vl-stderr", "vl-stdout", "exec-id", "task-id", "builtin-id", "param",
        "backend", "backend-param", "root", "bucket", "objects", "object-groups", "path", "pipeline", "group",
        "depends", "alloc-size", "nb-copy-limit", "root-size-limit", "dmode", "fmode", "block-size", "keep-daily",
        "keep-within", "include", "modules", "nb-workers", "vl", "execs", "tasks", "boot-report", "mua",
        "mua-param", "mail-to", "secret-key", "access-key", "endpoint-url", "profile", "metrics", "pings",
        "routine", "delay", "subject", "header", "password", "username", "tls", "host", "port"]

weird_text = st.sampled_from(WEIRD) | st.text(max_size=12)
scalars = (st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True) | weird_text)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(KEYS) | weird_text, c, max_size=3), max_leaves=8)


def all_paths(node, prefix=()):
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(all_paths(v, prefix + (k,)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(all_paths(v, prefix + (i,)))
    return out


def get(node, path):
    for p in path:
        node = node[p]
    return node


def set_(doc, path, value):
    if not path:
        return value
    get(doc, path[:-1])[path[-1]] = value
    return doc


def nest(value, depth, kind):
    for _unused in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def _copy(value):
    # C-level copy: deeply nested values must not hit Python's recursion limit in the test itself.
    return json.loads(json.dumps(value))


def mutate(data, doc):
    """Apply 1-3 random mutations to a deep copy of `doc`; -> (doc, list of what was done)."""
    doc = _copy(doc)
    done = []
    for _unused in range(data.draw(st.integers(1, 3), label="n")):
        paths = all_paths(doc)
        path = data.draw(st.sampled_from(paths), label="path")
        op = data.draw(st.sampled_from(["drop", "rename", "replace", "weird", "nest", "duplicate", "insert",
                                        "wrong-type"]), label="op")
        target = get(doc, path) if path else doc
        parent = get(doc, path[:-1]) if path else None
        if op == "drop" and path:
            del parent[path[-1]]
        elif op == "rename" and path and isinstance(path[-1], str):
            new = data.draw(st.sampled_from(KEYS) | weird_text, label="key")
            value = parent.pop(path[-1])
            parent[new] = value
        elif op == "replace":
            doc = set_(doc, path, data.draw(json_values, label="value"))
        elif op == "weird":
            doc = set_(doc, path, data.draw(weird_text, label="s"))
        elif op == "nest":
            depth = data.draw(st.sampled_from([1, 2, 5, 50, 500]), label="depth")
            doc = set_(doc, path, nest(target, depth, data.draw(st.sampled_from(["list", "dict"]))))
        elif op == "duplicate" and isinstance(target, list) and target:
            target.append(_copy(target[data.draw(st.integers(0, len(target) - 1))]))
        elif op == "insert" and isinstance(target, dict):
            target[data.draw(st.sampled_from(KEYS) | weird_text, label="key")] = data.draw(json_values)
        elif op == "wrong-type":
            others = {dict: [[], "x", 1], list: [{}, "x", 0], str: [1, [], {}, None, True], bool: ["true", 1],
                      int: ["1x", [], 1.5, True], float: ["x", []], type(None): [0, ""]}
            doc = set_(doc, path, data.draw(st.sampled_from(others.get(type(target), [None]))))
        else:
            continue
        done.append((op, list(path)))
    return doc, done


def path_resolves(doc, path):
    """Does an engine error path (``tasks[0].objects[1].path``) name a place in
    `doc`, or one missing key of an object that exists?"""
    if path in ("(top)", ""):
        return True

    def walk(node, rest, top):
        if rest == "":
            return True
        if rest.startswith("["):
            m = re.match(r"\[(\d+)\]", rest)
            if not m or not isinstance(node, list) or int(m.group(1)) >= len(node):
                return False
            return walk(node[int(m.group(1))], rest[m.end():], False)
        if not top:
            if not rest.startswith("."):
                return False
            rest = rest[1:]
        if not isinstance(node, dict):
            return False
        for k in sorted((k for k in node if isinstance(k, str)), key=len, reverse=True):
            if rest.startswith(k) and (len(rest) == len(k) or rest[len(k)] in ".["):
                if walk(node[k], rest[len(k):], False):
                    return True
        return True if rest not in node else False  # the missing key itself

    return walk(doc, path, True)


def secret_in_place(doc, secret):
    try:
        return get(doc, SECRET_PATHS[secret]) == secret
    except (KeyError, IndexError, TypeError):
        return False


class Tally:
    def __init__(self):
        self.cases = self.accepted = self.rejected = 0
        self.failed_cases = 0
        self.failures = []
        self.kinds = {}
        self._current = -1

    def fail(self, what, doc_or_args, done):
        if self._current != self.cases:
            self._current = self.cases
            self.failed_cases += 1
        self.kinds[what.split(":")[0]] = self.kinds.get(what.split(":")[0], 0) + 1
        if len(self.failures) < 8:
            text = json.dumps(doc_or_args, default=str)
            self.failures.append({"problem": what[:1500], "mutations": done, "input": text[:1500]})


def check_error(tally, e, doc, done, label=""):
    msg = str(e)
    if not isinstance(e, ConfigError):
        tally.fail("not a ConfigError: %s: %s" % (type(e).__name__, msg), doc, done)
        return
    path = e.path
    if label and path.startswith(label):
        path = path[len(label):].lstrip(": ")
    if not msg.startswith(e.path + ": "):
        tally.fail("message does not start with the path: %r" % msg, doc, done)
    elif not path_resolves(doc, path) and not os.path.isabs(path):
        tally.fail("path %r does not name a place in the document: %r" % (path, msg), doc, done)
    for secret in SECRET_PATHS:
        if secret in msg and secret_in_place(doc, secret):
            tally.fail("secret shown in an error: %r" % msg, doc, done)


def run_cli(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(args)
        except SystemExit as e:
            rc = e.code
        except Exception:  # noqa: BLE001 - a traceback out of the CLI is a finding
            rc = "traceback"
            err.write(traceback.format_exc())
    return rc, out.getvalue(), err.getvalue()


# Config files no dict can express: raw bytes straight into `palhm config`.
RAW_FILES = [
    ("deeply nested arrays", "x.json", b'{"tasks": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
    ("deeply nested objects", "x.json", b'{"tasks": [' + b'{"a": ' * 100000 + b"1" + b"}" * 100000 + b"]}"),
    ("invalid UTF-8", "x.json", b"{\"vl\": \"\xff\xfe\"}"),
    ("UTF-8 BOM", "x.json", b"\xef\xbb\xbf{}"),
    ("empty file", "x.json", b""),
    ("top-level null", "x.json", b"null"),
    ("top-level list", "x.json", b"[]"),
    ("top-level number", "x.json", b"42"),
    ("trailing comma", "x.json", b'{"vl": 3,}'),
    ("NaN literal", "x.json", b'{"vl": NaN}'),
    ("huge exponent", "x.json", b'{"vl": 1e99999}'),
    ("5000-digit integer", "x.json", b'{"nb-workers": 1' + b"0" * 5000 + b"}"),
    ("duplicate keys", "x.json", b'{"vl": 1, "vl": "x"}'),
    ("comment in .json", "x.json", b"// comment\n{}"),
    ("unterminated comment in .jsonc", "x.jsonc", b"/* {}"),
    ("include of itself", "x.json", b'{"include": ["x.json"]}'),
    ("include of a directory", "x.json", b'{"include": ["/"]}'),
    ("include of a missing file", "x.json", b'{"include": ["/nonexistent/palhm.json"]}'),
    ("NUL in a string", "x.json", b'{"tasks": [{"id": "a\\u0000", "type": "routine", "routine": []}]}'),
]


def raw_file_cases(tally, workdir, flags):
    for what, name, data in RAW_FILES:
        tally.cases += 1
        path = os.path.join(workdir, name)
        with open(path, "wb") as f:
            f.write(data)
        for args in (["-f", path, "config"], ["-q", "-f", path, "run", "default"]):
            rc, _out, err = run_cli(args)
            if rc not in (0, 2) or "Traceback" in err:
                tally.fail("raw file (%s): palhm %s exited %r: %s" % (what, args[-1], rc,
                                                                      err.strip().splitlines()[-1][:300]),
                           {"file": what}, [])
            elif rc == 2 and not err.startswith("palhm: "):
                tally.fail("raw file (%s): error without a path: %r" % (what, err[:200]), {"file": what}, [])
        if os.listdir(flags):
            tally.fail("raw file (%s) ran commands" % what, {"file": what}, [])


def fuzz_config(cases, seed_value, workdir):
    flags = os.path.join(workdir, "flags")
    os.makedirs(flags, exist_ok=True)
    base = base_doc(flags, os.path.join(workdir, "root"))
    config.from_dict(base)  # the base must be valid
    tally = Tally()
    raw_file_cases(tally, workdir, flags)
    cfg_path = os.path.join(workdir, "fuzz.json")

    @seed(seed_value)
    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def case(data):
        doc, done = mutate(data, base)
        tally.cases += 1
        try:
            config.from_dict(doc)
        except BaseException as e:  # noqa: B902 - anything but ConfigError is a finding
            if isinstance(e, KeyboardInterrupt):
                raise
            tally.rejected += 1
            check_error(tally, e, doc, done)
            if not isinstance(e, ConfigError):
                tally.failures[-1:] and tally.failures[-1].setdefault(
                    "traceback", traceback.format_exc()[-1200:])
            # The same config from a file, through the command: exit 2, nothing runs.
            try:
                text = json.dumps(doc)
            except (ValueError, RecursionError):
                return
            with open(cfg_path, "w", encoding="utf-8", errors="surrogatepass") as f:
                f.write(text)
            for task in ("backup", "default"):
                rc, _out, err = run_cli(["-q", "-f", cfg_path, "run", task])
                if rc != 2:
                    tally.fail("palhm run of a rejected config exited %r: %r" % (rc, err[-500:]), doc, done)
                elif not (err.startswith("palhm: %s: " % cfg_path) or err.startswith("palhm: %s: " % getattr(e, "path", "?"))):
                    # The file and the path, or (keys merged across files, like boot-report) the path.
                    tally.fail("palhm run error does not start with the file and path: %r" % err[-300:], doc, done)
            ran = os.listdir(flags)
            if ran:
                tally.fail("a rejected config ran commands: %s" % ran, doc, done)
                for f in ran:
                    os.unlink(os.path.join(flags, f))
            return
        tally.accepted += 1
        try:
            text = json.dumps(doc)
        except (ValueError, RecursionError):
            return
        with open(cfg_path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        rc, out, err = run_cli(["-f", cfg_path, "config"])
        if rc != 0:
            tally.fail("palhm config of an accepted config exited %r: %r" % (rc, err[-400:]), doc, done)
        for secret in SECRET_PATHS:
            if secret in out and secret_in_place(doc, secret):
                tally.fail("secret shown by palhm config", doc, done)
        if os.listdir(flags):
            tally.fail("validating or describing a config ran commands", doc, done)

    case()
    return tally


# -- module arguments --------------------------------------------------------------
def _module_functions():
    """inline_task() of plugins/modules/palhm_backup.py and load_config() of
    plugins/module_utils/common.py, taken from their source (importing them
    would pull the repo's engine instead of the engine under test)."""
    ns = {"palhm_config": config}
    for rel, names in (("plugins/module_utils/common.py", ("drop_none", "load_config", "warn_config")),
                       ("plugins/modules/palhm_backup.py", ("inline_task",))):
        with open(os.path.join(REPO, rel), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                exec(compile(ast.Module(body=[node], type_ignores=[]), rel, "exec"), ns)  # noqa: S102
    ns["DEFAULT_CONFIG"] = "/nonexistent/palhm.conf"
    return ns


class _FakeModule:
    def __init__(self, params):
        self.params = params
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


def fuzz_module_args(cases, seed_value, workdir):
    flags = os.path.join(workdir, "flags-m")
    os.makedirs(flags, exist_ok=True)
    fns = _module_functions()
    base = {"config": None, "task": "backup", "backend": "aws-s3",
            "backend_param": {"bucket": "b", "root": "/backup/h", "endpoint-url": "http://127.0.0.1:9",
                              "access-key": "AKIAFUZZ", "secret-key": SECRET_S3, "nb-copy-limit": 3},
            "objects": [{"path": "etc.tar", "group": "fs",
                         "pipeline": [{"type": "exec-append", "exec-id": "tar", "argv": ["-C", "/", "etc"]}]},
                        {"path": "pk/list.txt", "pipeline": [{"type": "exec-inline",
                                                              "argv": ["touch", os.path.join(flags, "i")]}]}],
            "object_groups": [{"id": "fs"}, {"id": "meta", "depends": ["fs"]}],
            "execs": [{"id": "tar", "argv": ["touch", os.path.join(flags, "t")], "ec": "<2"}],
            "include": None, "nb_workers": None}
    fns["load_config"](_FakeModule(base), fns["inline_task"](base), None, base["execs"], None)
    tally = Tally()
    dict_lists = ("objects", "object_groups", "execs")

    @seed(seed_value)
    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def case(data):
        params, done = mutate(data, base)
        # What AnsibleModule lets through: the argument_spec types hold.
        if not isinstance(params, dict):
            return
        params = {k: params.get(k) for k in base}
        if params["backend"] not in (None, "null", "localfs", "aws-s3"):
            params["backend"] = data.draw(st.sampled_from([None, "null", "localfs", "aws-s3"]))
        if not isinstance(params["task"], str):
            params["task"] = "backup"
        if params["backend_param"] is not None and not isinstance(params["backend_param"], dict):
            params["backend_param"] = None
        for k in dict_lists:
            v = params[k]
            if v is not None and not (isinstance(v, list) and all(isinstance(x, dict) for x in v)):
                params[k] = None
        params["config"] = None
        params["include"] = None
        nb_workers = params["nb_workers"]
        if not (nb_workers is None or (isinstance(nb_workers, int) and not isinstance(nb_workers, bool))):
            params["nb_workers"] = None
        tally.cases += 1
        inline = fns["inline_task"](params)
        try:
            if inline is None:
                return  # the host's config file would be used: not the fuzz target
            fns["load_config"](_FakeModule(params), inline, None, params["execs"], params["nb_workers"])
            tally.accepted += 1
        except BaseException as e:  # noqa: B902
            if isinstance(e, KeyboardInterrupt):
                raise
            tally.rejected += 1
            doc = {"tasks": [inline]}
            if params["execs"]:
                doc["execs"] = params["execs"]
            if params["nb_workers"] is not None:
                doc["nb-workers"] = params["nb_workers"]
            check_error(tally, e, doc, done)
            if not isinstance(e, ConfigError):
                tally.failures[-1:] and tally.failures[-1].setdefault("traceback", traceback.format_exc()[-1200:])
            if SECRET_S3 in str(e) and (params.get("backend_param") or {}).get("secret-key") == SECRET_S3:
                tally.fail("secret shown in a module error: %r" % str(e), params, done)
        if os.listdir(flags):
            tally.fail("validating module arguments ran commands", params, done)

    case()
    return tally


def main():
    kind, cases, seed_value, workdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    tally = (fuzz_config if kind == "config" else fuzz_module_args)(cases, seed_value, workdir)
    print(json.dumps({"cases": tally.cases, "failed_cases": tally.failed_cases, "accepted": tally.accepted, "rejected": tally.rejected,
                      "failure_kinds": tally.kinds, "failures": tally.failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
