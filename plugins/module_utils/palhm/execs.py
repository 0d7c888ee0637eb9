# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exec definitions, accepted exit codes, and the three pipeline item types."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from . import redact, schema
from .errors import ConfigError

_EC_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")
_EC_CMP = re.compile(r"^\s*(<=|>=|==|<|>)?\s*(-?\d+)\s*$")
# An exit code is 0..255; a negative return code means the stage was killed
# by a signal, which no `ec` accepts: a tar killed by the OOM killer wrote a
# truncated archive whatever its `ec` says.
EC_MIN, EC_MAX = 0, 255


@dataclass(frozen=True)
class ExitCodes:
    """An inclusive range of accepted exit codes within 0..255, written like
    the original: ``MIN-MAX`` or an optional comparator (``<``, ``<=``, ``>``,
    ``>=``, ``==``) and N. Death by a signal (negative return code) is never
    accepted."""

    low: int
    high: int
    text: str = "==0"

    def accepts(self, returncode):
        return returncode is not None and returncode >= 0 and self.low <= returncode <= self.high


DEFAULT_EC = ExitCodes(0, 0, "==0")


def _ec_error(path, value, why):
    return ConfigError(path, "%s in %s (exit codes are %d to %d; a stage killed by a signal is always a failure)"
                       % (why, schema.show(value), EC_MIN, EC_MAX))


def parse_ec(value, path):
    if isinstance(value, int) and not isinstance(value, bool):
        value = "==%d" % value
    schema.string(value, path)
    m = _EC_RANGE.match(value)
    if m:
        low, high = int(m.group(1)), int(m.group(2))
        for n in (low, high):
            if not EC_MIN <= n <= EC_MAX:
                raise _ec_error(path, value, "exit code %d out of range" % n)
        if low > high:
            raise ConfigError(path, "empty exit code range %s" % schema.show(value))
        return ExitCodes(low, high, value)
    m = _EC_CMP.match(value)
    if not m:
        raise ConfigError(path, "expected an exit code range like \"0-2\", \"<2\", \">=0\" or \"==0\", got %s"
                          % schema.show(value))
    op, n = m.group(1) or "==", int(m.group(2))
    # "<256" and ">-1" name the whole range and are accepted; any other N
    # outside 0..255 is a typo.
    if not EC_MIN - (op == ">") <= n <= EC_MAX + (op == "<"):
        raise _ec_error(path, value, "exit code %d out of range" % n)
    low, high = {"<": (EC_MIN, n - 1), "<=": (EC_MIN, n), ">": (n + 1, EC_MAX),
                 ">=": (n, EC_MAX), "==": (n, n)}[op]
    if low > high:
        raise _ec_error(path, value, "no exit code accepted")
    return ExitCodes(low, high, value)


@dataclass(frozen=True)
class Exec:
    """A command: argument vector, extra environment, accepted exit codes and
    the verbosity levels at which its stderr and stdout are shown."""

    argv: tuple
    env: dict = field(default_factory=dict)
    ec: ExitCodes = DEFAULT_EC
    vl_stderr: int = 1
    vl_stdout: int = 3
    id: str = ""

    def describe(self):
        return {"id": self.id or None, "argv": redact.argv(self.argv), "env": redact.env(self.env),
                "ec": self.ec.text, "vl-stderr": self.vl_stderr, "vl-stdout": self.vl_stdout}


_EXEC_KEYS = ("env", "ec", "vl-stderr", "vl-stdout")


def _exec_fields(raw, path):
    kwargs = {}
    if "env" in raw:
        kwargs["env"] = schema.str_map(raw["env"], schema.join(path, "env"))
    if "ec" in raw:
        kwargs["ec"] = parse_ec(raw["ec"], schema.join(path, "ec"))
    if "vl-stderr" in raw:
        kwargs["vl_stderr"] = schema.integer(raw["vl-stderr"], schema.join(path, "vl-stderr"), allow_string=True)
    if "vl-stdout" in raw:
        kwargs["vl_stdout"] = schema.integer(raw["vl-stdout"], schema.join(path, "vl-stdout"), allow_string=True)
    return kwargs


# An item that names an Exec may set when its output is shown, as in the
# original (Exec.from_conf read them for every item type).
_VL_KEYS = ("vl-stderr", "vl-stdout")


def _vl_fields(raw, path):
    return _exec_fields({k: raw[k] for k in _VL_KEYS if k in raw}, path)


def _argv(value, path):
    argv = schema.str_list(value, path, nonempty_items=False)
    if not argv:
        raise ConfigError(path, "must name at least the program to run")
    if not argv[0]:
        raise ConfigError(schema.join(path, 0), "the program must not be empty")
    return tuple(argv)


def parse_exec_def(raw, path):
    """An entry of the top-level ``execs`` list."""
    schema.obj(raw, path, required=("id", "argv"), optional=_EXEC_KEYS)
    exec_id = schema.string(raw["id"], schema.join(path, "id"))
    return Exec(argv=_argv(raw["argv"], schema.join(path, "argv")), id=exec_id, **_exec_fields(raw, path))


PIPELINE_TYPES = ("exec", "exec-append", "exec-inline")


def lookup(execs, exec_id, path):
    if exec_id not in execs:
        hint = ""
        import difflib
        close = difflib.get_close_matches(exec_id, list(execs), n=1)
        if close:
            hint = " (did you mean %r?)" % close[0]
        raise ConfigError(path, "no exec named %s%s" % (schema.show(exec_id), hint))
    return execs[exec_id]


def parse_item(raw, path, execs):
    """One pipeline item (``exec``, ``exec-append`` or ``exec-inline``) -> Exec."""
    kind = schema.tagged(raw, path, PIPELINE_TYPES)
    if kind == "exec":
        schema.obj(raw, path, required=("type", "exec-id"), optional=_VL_KEYS)
        key = schema.join(path, "exec-id")
        base = lookup(execs, schema.string(raw["exec-id"], key), key)
        vl = _vl_fields(raw, path)
        return replace(base, **vl) if vl else base
    if kind == "exec-append":
        schema.obj(raw, path, required=("type", "exec-id"), optional=("argv", "env") + _VL_KEYS)
        key = schema.join(path, "exec-id")
        base = lookup(execs, schema.string(raw["exec-id"], key), key)
        extra = schema.str_list(raw.get("argv", []), schema.join(path, "argv"), nonempty_items=False)
        env = dict(base.env)
        env.update(schema.str_map(raw.get("env", {}), schema.join(path, "env")))
        return replace(base, argv=tuple(base.argv) + tuple(extra), env=env, **_vl_fields(raw, path))
    schema.obj(raw, path, required=("type", "argv"), optional=_EXEC_KEYS + ("id",))
    return Exec(argv=_argv(raw["argv"], schema.join(path, "argv")), id=raw.get("id", ""),
                **_exec_fields(raw, path))
