# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routine tasks: steps run one after another. A step is a command (exec,
exec-append, exec-inline; one command, not a pipe), a pointer to another task,
or the ``sigmask`` builtin. The first step whose exit code falls outside its
``ec`` stops the routine and fails it."""

from __future__ import annotations

import signal
import time

from . import redact, schema
from .errors import ConfigError, PalhmError, StageError
from .execs import PIPELINE_TYPES, parse_item
from .pipeline import STDOUT_CAPTURE, Pipeline
from .runtime import VL_INFO, Task

STEP_TYPES = PIPELINE_TYPES + ("task", "builtin")
BUILTINS = ("sigmask",)
TAIL_CHARS = 2048


def parse_signal(value, path):
    """A signal as a name with or without SIG, or a number (string or int)."""
    if isinstance(value, bool):
        raise ConfigError(path, "expected a signal name or number, got a boolean")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        num = int(value)
        try:
            return signal.Signals(num)
        except ValueError:
            raise ConfigError(path, "no signal number %s" % schema.show(value)) from None
    schema.string(value, path)
    name = value.strip().upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return signal.Signals[name]
    except KeyError:
        raise ConfigError(path, "no signal named %s" % schema.show(value)) from None


class Step:
    kind = ""

    def describe(self):  # pragma: no cover - abstract
        raise NotImplementedError


class CommandStep(Step):
    kind = "exec"

    def __init__(self, exe):
        self.exe = exe

    def describe(self):
        return {"type": "exec", "argv": redact.argv(self.exe.argv), "ec": self.exe.ec.text}


class TaskStep(Step):
    kind = "task"

    def __init__(self, task_id):
        self.task_id = task_id

    def describe(self):
        return {"type": "task", "task-id": self.task_id}


class SigmaskStep(Step):
    kind = "builtin"

    def __init__(self, actions):
        self.actions = actions  # [(action, [Signals])]

    def describe(self):
        return {"type": "builtin", "builtin-id": "sigmask",
                "param": [{"action": a, "sig": [s.name for s in sigs]} for a, sigs in self.actions]}

    def apply(self):
        for action, sigs in self.actions:
            how = signal.SIG_BLOCK if action == "block" else signal.SIG_UNBLOCK
            signal.pthread_sigmask(how, sigs)


def _parse_step(raw, path, ctx):
    kind = schema.tagged(raw, path, STEP_TYPES)
    if kind == "task":
        schema.obj(raw, path, required=("type", "task-id"))
        tid = schema.string(raw["task-id"], schema.join(path, "task-id"))
        if tid not in ctx.task_ids:
            raise ConfigError(schema.join(path, "task-id"), "no task named %s" % schema.show(tid))
        return TaskStep(tid)
    if kind == "builtin":
        schema.obj(raw, path, required=("type", "builtin-id"), optional=("param",))
        schema.choice(raw["builtin-id"], schema.join(path, "builtin-id"), BUILTINS)
        ppath = schema.join(path, "param")
        actions = []
        for i, item in enumerate(schema.obj_list(raw.get("param", []), ppath)):
            ip = schema.join(ppath, i)
            schema.obj(item, ip, required=("action", "sig"))
            action = schema.choice(item["action"], schema.join(ip, "action"), ("block", "unblock"))
            sigs = item["sig"] if isinstance(item["sig"], list) else [item["sig"]]
            actions.append((action, [parse_signal(s, schema.join(schema.join(ip, "sig"), j))
                                     for j, s in enumerate(sigs)]))
        return SigmaskStep(actions)
    return CommandStep(parse_item(raw, path, ctx.execs))


def parse_task(raw, where, ctx):
    schema.obj(raw, where, required=("id", "type", "routine"))
    rpath = schema.join(where, "routine")
    steps = [_parse_step(item, schema.join(rpath, i), ctx)
             for i, item in enumerate(schema.obj_list(raw["routine"], rpath))]
    return RoutineTask(raw["id"], where, steps)


class RoutineTask(Task):
    type = "routine"

    def __init__(self, task_id, where, steps):
        super().__init__(task_id, where)
        self.steps = steps

    def depends_on(self):
        return [s.task_id for s in self.steps if isinstance(s, TaskStep)]

    def describe(self):
        return {"id": self.id, "type": self.type, "routine": [s.describe() for s in self.steps]}

    def plan(self, rt):
        return {"task": self.id, "type": self.type, "steps": [s.describe() for s in self.steps]}

    def run(self, rt):
        done = []
        for i, step in enumerate(self.steps):
            rt.check_cancel()
            label = "task %s, step %d" % (self.id, i + 1)
            t0 = time.monotonic()
            if isinstance(step, SigmaskStep):
                step.apply()
                done.append({"step": i + 1, "type": "builtin", "builtin": "sigmask",
                             "param": step.describe()["param"], "rc": 0, "duration": 0.0})
                continue
            if isinstance(step, TaskStep):
                entry = {"step": i + 1, "type": "task", "task": step.task_id}
                try:
                    entry["result"] = rt.run_task(step.task_id)
                except PalhmError as e:
                    entry.update(rc=e.exit_code, error=str(e), duration=round(time.monotonic() - t0, 3))
                    done.append(entry)
                    rt.log(VL_INFO, "%s (task %s) failed" % (label, step.task_id))
                    raise
                entry.update(rc=0, duration=round(time.monotonic() - t0, 3))
                done.append(entry)
                continue
            pipe = Pipeline([step.exe], label, STDOUT_CAPTURE, rt)
            pipe.start()
            try:
                while True:
                    try:
                        (result,) = pipe.wait()
                        break
                    except KeyboardInterrupt:  # pragma: no cover - CLI handles signals
                        pipe.terminate()
                        raise
            except BaseException:
                pipe.terminate()
                raise
            # Results reach module output: no secret in them (redact.py).
            entry = {"step": i + 1, "type": "exec", "argv": redact.argv(result.argv), "rc": result.returncode,
                     "duration": round(time.monotonic() - t0, 3),
                     "stdout_tail": redact.text(pipe.stdout_tail.text(TAIL_CHARS)),
                     "stderr_tail": redact.text(result.stderr_tail[-TAIL_CHARS:])}
            done.append(entry)
            rt.log(VL_INFO, "%s: %s exited with %s" % (label, " ".join(entry["argv"]), result.returncode))
            if not result.accepted:
                err = StageError(label, result.argv, result.returncode, result.stderr_tail.strip()[-500:])
                err.steps = done
                raise err
        return {"task": self.id, "type": self.type, "steps": done, "changed": bool(done)}
