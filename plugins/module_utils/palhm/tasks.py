# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The task types and parsing of the ``tasks`` list."""

from __future__ import annotations

from . import backup, dnssec, drill, monitor, routine, schema
from .backends.base import parse_duration
from .errors import ConfigError
from .runtime import ParseContext

PARSERS = {
    "backup": backup.parse_task,
    "routine": routine.parse_task,
    "dnssec-check": dnssec.parse_task,
    drill.TYPE: drill.parse_task,
}


def parse_all(located, execs, modules, warnings=None):
    """Parse every task (list of config.Located). Task ids are collected first
    so routines may point at tasks defined later; pointer cycles are errors.
    Parsers append what they accept but ignore to `warnings`."""
    ids = {}
    for loc in located:
        if not isinstance(loc.value, dict):
            schema.obj(loc.value, loc.where)
        if "id" not in loc.value:
            raise ConfigError(schema.join(loc.where, "id"), "required key is missing (every task needs an id)")
        tid = loc.value.get("id")
        schema.string(tid, schema.join(loc.where, "id"))
        if tid in ids:
            raise ConfigError(schema.join(loc.where, "id"), "duplicate task id %s (also at %s)"
                              % (schema.show(tid), ids[tid]))
        ids[tid] = loc.where
        schema.tagged(loc.value, loc.where, PARSERS)
    ctx = ParseContext(execs, set(ids), modules, warnings)
    result = {}
    for loc in located:
        raw = dict(loc.value)
        # Keys every task type has (monitoring) are taken out before the
        # type's own parser sees the task.
        pings = monitor.parse_pings(raw.pop("pings"), schema.join(loc.where, "pings")) if "pings" in raw else None
        max_age = parse_max_age(raw.pop("max-age"), schema.join(loc.where, "max-age")) if "max-age" in raw else None
        task = PARSERS[raw["type"]](raw, loc.where, ctx)
        task.pings = pings
        task.max_age = max_age
        result[loc.value["id"]] = task
    for task in result.values():
        if task.type == drill.TYPE:
            drill.check_target(task, result)
    _check_cycles(result)
    return result


def parse_max_age(value, path):
    """``max-age``: how old a task's last success may be before `palhm status`
    calls it stale; a duration like retention's keep-within ("26h", "2d",
    "90min"; a bare number is days) -> seconds (> 0)."""
    seconds = parse_duration(value, path)
    if seconds <= 0:
        raise ConfigError(path, "must be a duration longer than zero, got %s" % schema.show(value))
    return seconds


def _check_cycles(task_map):
    state = {}

    def visit(tid, chain):
        if state.get(tid) == 2:
            return
        if state.get(tid) == 1:
            cycle = chain[chain.index(tid):] + [tid]
            raise ConfigError(task_map[cycle[0]].where, "task pointer cycle: %s" % " -> ".join(cycle))
        state[tid] = 1
        for dep in task_map[tid].depends_on():
            visit(dep, chain + [tid])
        state[tid] = 2

    for tid in task_map:
        visit(tid, [])
