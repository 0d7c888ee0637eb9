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
from dataclasses import dataclass, field

from . import jsonc, schema, tasks
from .errors import ConfigError, UsageError
from .execs import parse_exec_def

DEFAULT_PATH = "/etc/palhm/palhm.conf"
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


def read_json_file(path):
    """Parse one config file (JSONC when it ends in .jsonc)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(path, "config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, "cannot read config file: %s" % e) from None
    try:
        return jsonc.loads(text, comments=path.endswith(".jsonc"))
    except ValueError as e:
        raise ConfigError(path, "invalid %s: %s" % ("JSONC" if path.endswith(".jsonc") else "JSON", e)) from None
    except RecursionError:
        raise ConfigError(path, "invalid JSON: nested too deeply") from None


def _load_into(raw, path, seen, doc=None, label=None):
    real = os.path.realpath(path)
    if real in seen:
        raise ConfigError(path, "included twice (first as %s); circular or repeated include" % seen[real])
    seen[real] = path
    raw.files.append(path)
    if doc is None:
        doc = read_json_file(path)
    label = path if label is None else label
    where = label + ": " if label else ""
    schema.obj(doc, where, optional=TOP_KEYS)
    base = os.path.dirname(os.path.abspath(path))
    for i, inc in enumerate(schema.str_list(doc.get("include", []), where + "include")):
        # Like C #include: relative to the including file's directory.
        _load_into(raw, inc if os.path.isabs(inc) else os.path.join(base, inc), seen)
    for i, mod in enumerate(schema.str_list(doc.get("modules", []), where + "modules")):
        if mod not in KNOWN_MODULES:
            raise ConfigError(where + "modules[%d]" % i, "unknown module %s (known: %s)"
                              % (schema.show(mod), ", ".join(sorted(KNOWN_MODULES))))
        if mod not in raw.modules:
            raw.modules.append(mod)
    for key in ("vl", "nb-workers", "metrics"):
        if key in doc:
            raw.scalars[key] = Located(where + key, doc[key])
    for key in ("execs", "tasks"):
        items = schema.obj_list(doc.get(key, []), where + key)
        target = raw.execs if key == "execs" else raw.tasks
        target.extend(Located(where + "%s[%d]" % (key, i), item) for i, item in enumerate(items))
    if "boot-report" in doc:
        br = doc["boot-report"]
        if not isinstance(br, dict):
            schema.obj(br, where + "boot-report")  # raises: not an object
        # Keys are checked by bootreport.parse_config, which names their path.
        for key, value in br.items():
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
        out = {"files": self.files, "modules": self.modules, "vl": self.vl, "nb-workers": self.nb_workers,
               "execs": [e.describe() for e in self.execs.values()],
               "tasks": [_describe_task(t) for t in self.tasks.values()]}
        if self.boot_report is not None:
            out["boot-report"] = self.boot_report.describe()
        if self.metrics is not None:
            out["metrics"] = self.metrics
        return out


def _describe_task(task):
    out = task.describe()
    if task.pings is not None:
        out["pings"] = task.pings.describe()
    return out


def build(raw):
    """Validate a RawConfig into a Config; raises ConfigError naming the path."""
    execs = {}
    for loc in raw.execs:
        ex = parse_exec_def(loc.value, loc.where)
        if ex.id in execs:
            raise ConfigError(schema.join(loc.where, "id"), "duplicate exec id %s" % schema.show(ex.id))
        execs[ex.id] = ex
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
    task_map = tasks.parse_all(raw.tasks, execs, raw.modules)
    boot_report = None
    if raw.boot_report:
        from . import bootreport
        boot_report = bootreport.parse_config({k: v.value for k, v in raw.boot_report.items()},
                                              {k: v.where for k, v in raw.boot_report.items()})
    return Config(files=raw.files, modules=raw.modules, vl=vl, nb_workers=nb_workers, execs=execs,
                  tasks=task_map, boot_report=boot_report, metrics=metrics)


def load(path=DEFAULT_PATH):
    """Load and validate the config at `path` (and everything it includes)."""
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
    _load_into(raw, fake, {}, doc=doc, label=label)
    raw.files = []
    return build(raw)
