# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load, merge and validate a PALHM configuration.

The whole configuration is validated into typed model objects before anything
runs; every error names the file and the JSON path of the offending value.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field

from . import jsonc, redact, schema, tasks
from .errors import ConfigError, UsageError
from .execs import parse_exec_def

DEFAULT_DIR = "/etc/palhm"
DEFAULT_PATH = DEFAULT_DIR + "/palhm.conf"
# The original's code read palhm.jsonc (its README and our seeds name palhm.conf).
DEFAULT_FALLBACK = DEFAULT_DIR + "/palhm.jsonc"
# A config file is text a human wrote: anything bigger is a mistake (an include
# of a disk image, /dev/zero) that would only exhaust memory.
MAX_CONFIG_BYTES = 16 << 20
DEFAULT_TASK = "default"
KNOWN_MODULES = {
    "aws": "aws-s3 backup backend and aws-sns boot report MUA (needs boto3)",
    "dnssec": "dnssec-check task (needs dnspython)",
}
TOP_KEYS = ("include", "modules", "nb-workers", "vl", "execs", "tasks", "boot-report", "metrics")


@dataclass
class Located:
    """A raw JSON value and where it came from, for error messages."""

    where: str
    value: object


@dataclass
class RawConfig:
    files: list = field(default_factory=list)
    modules: list = field(default_factory=list)
    scalars: dict = field(default_factory=dict)  # key -> Located
    execs: list = field(default_factory=list)  # [Located]
    tasks: list = field(default_factory=list)  # [Located]
    boot_report: dict = field(default_factory=dict)  # key -> Located (mail-to merged)
    warnings: list = field(default_factory=list)


def default_path():
    """The config used without -f: palhm.conf, else palhm.jsonc when only that
    one exists (the original's code read palhm.jsonc)."""
    if not os.path.lexists(DEFAULT_PATH) and os.path.lexists(DEFAULT_FALLBACK):
        return DEFAULT_FALLBACK
    return DEFAULT_PATH


def is_jsonc(path):
    """JSONC is chosen by the name of the file `path` resolves to (a
    ``palhm.conf -> site.jsonc`` symlink is JSONC), ignoring case."""
    return os.path.realpath(path).lower().endswith(".jsonc")


def _read_text(path, where):
    """The text of config file `path`: a regular file of at most
    MAX_CONFIG_BYTES (a FIFO would hang the load, /dev/zero fill memory)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(where, "config file not found") from None
    except OSError as e:
        raise ConfigError(where, "cannot read config file: %s" % (e.strerror or e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(where, "not a regular file (a config file must be one)")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(where, "too large for a config file (%d bytes, at most %d)"
                              % (st.st_size, MAX_CONFIG_BYTES))
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = None
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(where, "too large for a config file (more than %d bytes)" % MAX_CONFIG_BYTES)
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(where, "cannot read config file: not UTF-8 text (%s)" % e) from None
    except OSError as e:
        raise ConfigError(where, "cannot read config file: %s" % (e.strerror or e)) from None
    finally:
        if fd is not None:
            os.close(fd)


def read_json_file(path, where=None):
    """Parse one config file (JSONC when its real name ends in .jsonc).
    `where` names it in errors (default: `path`)."""
    where = path if where is None else where
    text = _read_text(path, where)
    comments = is_jsonc(path)
    try:
        return jsonc.loads(text, comments=comments)
    except jsonc.DuplicateKeyError as e:
        raise ConfigError("%s: %s" % (where, e.path), "duplicate key in one object (JSON keeps only one of "
                          "them; remove or rename the other)") from None
    except ValueError as e:
        raise ConfigError(where, "invalid %s: %s" % ("JSONC" if comments else "JSON", e)) from None
    except RecursionError:
        raise ConfigError(where, "invalid JSON: nested too deeply") from None


def _load_into(raw, path, seen, doc=None, label=None, via=None, args_win=False):
    """Merge config file `path` (or `doc`) into `raw`. `via`: the JSON path of
    the include naming it (``FILE: include[2]``), for errors. Scalars (vl,
    nb-workers, metrics): an included file's value wins over the including
    file's, as the original documents; with `args_win` (module arguments)
    the document's own values win over what it includes."""
    real = os.path.realpath(path)
    if real in seen:
        raise ConfigError("%s: %s" % (via, path) if via else path,
                          "included twice (first as %s); circular or repeated include" % seen[real])
    seen[real] = path
    raw.files.append(path)
    if doc is None:
        doc = read_json_file(path, "%s: %s" % (via, path) if via else path)
    label = path if label is None else label
    where = label + ": " if label else ""
    schema.obj(doc, where, optional=TOP_KEYS)
    if not args_win:
        _take_scalars(raw, doc, where)
    # Relative includes: the file named on the command line (or the module's
    # arguments) like C #include, from its directory as named; inside an
    # included file from the directory it really is in (symlinks resolved,
    # as the original did).
    base = os.path.dirname(os.path.abspath(path) if via is None else real)
    for i, inc in enumerate(schema.str_list(doc.get("include", []), where + "include")):
        _load_into(raw, inc if os.path.isabs(inc) else os.path.join(base, inc), seen,
                   via=where + "include[%d]" % i)
    if args_win:
        _take_scalars(raw, doc, where)
    for i, mod in enumerate(schema.str_list(doc.get("modules", []), where + "modules")):
        if mod not in KNOWN_MODULES:
            raise ConfigError(where + "modules[%d]" % i, "unknown module %s (known: %s)"
                              % (schema.show(mod), ", ".join(sorted(KNOWN_MODULES))))
        if mod not in raw.modules:
            raw.modules.append(mod)
    for key in ("execs", "tasks"):
        items = schema.obj_list(doc.get(key, []), where + key)
        target = raw.execs if key == "execs" else raw.tasks
        target.extend(Located(where + "%s[%d]" % (key, i), item) for i, item in enumerate(items))
    if "boot-report" in doc:
        br = doc["boot-report"]
        if not isinstance(br, dict):
            schema.obj(br, where + "boot-report")  # raises: not an object
        # Keys are checked by bootreport.parse_config, which names their path.
        if "boot-id" in br:
            # The key the original's code read (its README says bootid).
            if "bootid" in br:
                raise ConfigError(where + "boot-report.boot-id", "bootid is set too; boot-id is an alias of "
                                  "bootid, set only one")
            br = {("bootid" if k == "boot-id" else k): v for k, v in br.items()}
        for key, value in br.items():
            if schema.is_comment_key(key):
                continue
            loc = Located(where + "boot-report." + key, value)
            if key == "mail-to":
                prev = raw.boot_report.get(key)
                merged = schema.str_list(value, loc.where)
                if prev is not None:
                    merged = list(prev.value) + [m for m in merged if m not in prev.value]
                    loc = Located(prev.where, merged)
                else:
                    loc = Located(loc.where, merged)
                raw.boot_report[key] = loc
            elif key == "mua" and key in raw.boot_report:
                raise ConfigError(loc.where, "mua may be set only once (already set at %s)"
                                  % raw.boot_report[key].where)
            else:
                raw.boot_report[key] = loc


def _take_scalars(raw, doc, where):
    for key in ("vl", "nb-workers", "metrics"):
        if key in doc:
            raw.scalars[key] = Located(where + key, doc[key])


def load_raw(path, doc=None):
    """Read `path` and its includes; relative `path` resolves from the cwd."""
    raw = RawConfig()
    _load_into(raw, path, {}, doc)
    return raw


@dataclass
class Config:
    files: list
    modules: list
    vl: int
    nb_workers: int
    execs: dict
    tasks: dict
    boot_report: object = None
    metrics: object = None
    warnings: list = field(default_factory=list)
    # Secret values (collect_secrets): front doors hide them (no_log_values).
    secrets: list = field(default_factory=list)

    def task(self, task_id):
        if task_id not in self.tasks:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise UsageError("no task named %s in %s (tasks: %s)"
                             % (schema.show(task_id), ", ".join(self.files) or "the config", known))
        return self.tasks[task_id]

    def workers(self):
        """Thread pool size: 0 = CPUs this process may use, <0 = pool default."""
        n = self.nb_workers
        if n == 0:
            try:
                return len(os.sched_getaffinity(0)) or 1
            except AttributeError:
                return os.cpu_count() or 1
        if n < 0:
            return min(32, (os.cpu_count() or 1) + 4)
        return n

    def describe(self):
        """The resolved config, secrets hidden (``palhm config``)."""
        out = {"files": self.files, "modules": self.modules, "vl": self.vl, "nb-workers": self.nb_workers,
               "execs": [e.describe() for e in self.execs.values()],
               "tasks": [_describe_task(t) for t in self.tasks.values()]}
        if self.boot_report is not None:
            out["boot-report"] = self.boot_report.describe()
        if self.metrics is not None:
            out["metrics"] = self.metrics
        return redact.walk(out)


def _describe_task(task):
    out = task.describe()
    if task.pings is not None:
        out["pings"] = task.pings.describe()
    if task.max_age is not None:
        out["max-age"] = task.max_age
    return out


def build(raw):
    """Validate a RawConfig into a Config; raises ConfigError naming the path."""
    execs, exec_where = {}, {}
    for loc in raw.execs:
        ex = parse_exec_def(loc.value, loc.where)
        if ex.id in execs:
            raise ConfigError(schema.join(loc.where, "id"), "duplicate exec id %s (also at %s)"
                              % (schema.show(ex.id), schema.join(exec_where[ex.id], "id")))
        execs[ex.id] = ex
        exec_where[ex.id] = loc.where
    warnings = raw.warnings
    vl = 3
    if "vl" in raw.scalars:
        vl = schema.integer(raw.scalars["vl"].value, raw.scalars["vl"].where, minimum=0, allow_string=True)
    nb_workers = 0
    if "nb-workers" in raw.scalars:
        loc = raw.scalars["nb-workers"]
        nb_workers = schema.integer(loc.value, loc.where, allow_string=True)
    metrics = None
    if "metrics" in raw.scalars:
        loc = raw.scalars["metrics"]
        schema.obj(loc.value, loc.where, required=("path",))
        mpath = schema.string(loc.value["path"], schema.join(loc.where, "path"))
        # cron and systemd run palhm from / : a relative path would land anywhere.
        if not os.path.isabs(mpath) or mpath.endswith("/"):
            raise ConfigError(schema.join(loc.where, "path"), "must be the absolute path of a file, got %s"
                              % schema.show(mpath))
        metrics = {"path": os.path.normpath(mpath)}
    task_map = tasks.parse_all(raw.tasks, execs, raw.modules, warnings)
    boot_report = None
    if raw.boot_report:
        from . import bootreport
        boot_report = bootreport.parse_config({k: v.value for k, v in raw.boot_report.items()},
                                              {k: v.where for k, v in raw.boot_report.items()})
    cfg = Config(files=raw.files, modules=raw.modules, vl=vl, nb_workers=nb_workers, execs=execs,
                 tasks=task_map, boot_report=boot_report, metrics=metrics, warnings=warnings)
    cfg.secrets = collect_secrets(cfg)
    # From now on every text palhm prints or returns hides them.
    redact.remember(cfg.secrets)
    return cfg


def _execs_of(task):
    """Every Exec a task runs (backup stages, routine commands)."""
    for obj in getattr(task, "objects", None) or ():
        yield from obj.stages
    for step in getattr(task, "steps", None) or ():
        if getattr(step, "exe", None) is not None:
            yield step.exe


def collect_secrets(cfg):
    """The secret values of a config (see redact.py for what counts):
    secret-named env values and argv options of every Exec, the boot
    report's password and int-opts secrets, aws-s3 keys, ping URLs."""
    found = []
    execs = list(cfg.execs.values())
    for task in cfg.tasks.values():
        execs.extend(_execs_of(task))
        creds = (getattr(task, "params", None) or {}).get("credentials")
        if creds is not None:
            found += [creds.secret_key, creds.session_token]
        pings = getattr(task, "pings", None)
        if pings is not None:
            found += [u for u in (pings.start, pings.success, pings.failure) if u]
    for exe in execs:
        found += redact.secrets_in_env(exe.env) + redact.secrets_in_argv(exe.argv)
    if cfg.boot_report is not None:
        from . import bootreport
        found += bootreport.secrets(cfg.boot_report)
    return sorted(set(v for v in found if isinstance(v, str) and v))


def load(path=None):
    """Load and validate the config at `path` (and everything it includes);
    None: the default (default_path())."""
    if path is None:
        path = default_path()
        if not os.path.lexists(path):
            raise ConfigError(path, "config file not found (nor %s); name one with -f" % DEFAULT_FALLBACK)
    return build(load_raw(path))


def from_dict(doc, base_dir=None, label=""):
    """Validate a config given as a dict (module arguments). Includes resolve
    from `base_dir` (default: the cwd); error paths start at the dict's top."""
    raw = RawConfig()
    fake = os.path.join(base_dir or os.getcwd(), "<arguments>")
    try:
        doc = json.loads(json.dumps(doc))
    except (TypeError, ValueError) as e:
        raise ConfigError(label, "not JSON data: %s" % e) from None
    except RecursionError:
        raise ConfigError(label, "nested too deeply") from None
    _load_into(raw, fake, {}, doc=doc, label=label, args_win=True)
    raw.files = []
    return build(raw)
