#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: palhm_routine
short_description: Run a PALHM routine task on the target host
version_added: 1.0.0
description:
  - >-
    Runs a PALHM routine task, a sequence of steps run one after another. A step is a command
    (C(exec), C(exec-append), C(exec-inline); one command, not a pipe), a pointer to another task
    (C({"type": "task", "task-id": ID})), or the C(sigmask) builtin.
  - The first step whose exit code falls outside its accepted codes (C(ec)) stops the routine and fails it,
    naming the step.
  - Step output is never kept whole; only the last lines of stdout and stderr are returned.
  - The routine comes from the PALHM config file on the host (O(config), O(task)) or is written inline (O(routine)).
author:
  - palhm.palhm contributors (@palhm)
options:
  config:
    description:
      - Path of the PALHM config file on the target host. Defaults to C(/etc/palhm/palhm.conf), else
        C(/etc/palhm/palhm.jsonc) when only that one exists, when the routine is not given inline.
  task:
    description:
      - Id of the routine task to run from O(config), or the id given to the inline routine.
  routine:
    description:
      - The steps of an inline routine, in the PALHM config syntax.
    type: list
    elements: dict
  execs:
    description:
      - Exec definitions the inline routine refers to.
    type: list
    elements: dict
  include:
    description:
      - >-
        Config files to include for an inline routine. Their Execs and tasks are the routine's to use, for
        example C(/etc/palhm/conf.d/core.json) for its Execs, or C(/etc/palhm/palhm.conf) to point at the
        host's tasks with C({"type": "task", "task-id": ID}).
    type: list
    elements: path
extends_documentation_fragment:
  - palhm.palhm.common
  - palhm.palhm.config
attributes:
  check_mode:
    details: Returns the resolved steps and runs nothing.
notes:
  - Do not use a routine that reboots its own host from a playbook (the module loses its connection
    and the task fails or hangs); use M(ansible.builtin.reboot) in playbooks, and keep the
    update-then-reboot routine for cron or systemd timers.
seealso:
  - module: palhm.palhm.palhm_backup
"""

EXAMPLES = r"""
- name: Run the routine "maintenance" from /etc/palhm/palhm.conf
  palhm.palhm.palhm_routine:
    task: maintenance

- name: An inline routine that updates the packages, then runs the backup task of the host's config
  palhm.palhm.palhm_routine:
    task: refresh
    routine:
      - {type: exec-inline, argv: [apt-get, update]}
      - {type: exec-inline, argv: [apt-get, -y, upgrade]}
      - {type: task, task-id: backup}
    # Its tasks (and the Execs it includes) become the routine's.
    include: [/etc/palhm/palhm.conf]
"""

RETURN = r"""
task:
  description: Id of the routine.
  returned: always
  type: str
steps:
  description:
    - The steps that ran, up to the failing one, or in check mode the resolved steps.
  returned: always
  type: list
  elements: dict
  contains:
    step:
      description: The step's number, from 1.
      type: int
      returned: not in check mode
    type:
      description: V(exec) (every kind of command step), V(task) or V(builtin).
      type: str
    argv:
      description: The command that ran, secrets masked.
      type: list
      elements: str
      returned: command steps
    ec:
      description: The accepted exit codes of the command.
      type: str
      returned: command steps, in check mode
    rc:
      description: The command's exit code; for a task step, C(0) or the task's exit code.
      type: int
      returned: not in check mode
    duration:
      description: Seconds the step took.
      type: float
      returned: not in check mode
    stdout_tail:
      description: The end of the command's standard output.
      type: str
      returned: command steps, not in check mode
    stderr_tail:
      description: The end of the command's standard error.
      type: str
      returned: command steps, not in check mode
    task:
      description: Id of the task a task step ran (in check mode, would run).
      type: str
      returned: task steps
    result:
      description: The result of the task a task step ran, as that task's module would return it.
      type: dict
      returned: task steps that succeeded
    error:
      description: Why the task of a task step failed (one line, without secrets).
      type: str
      returned: task steps that failed
    builtin:
      description: The builtin that ran (in check mode, would run), V(sigmask).
      type: str
      returned: builtin steps
    param:
      description: The builtin's parameters (C(action) and C(sig) of each).
      type: list
      elements: dict
      returned: builtin steps
"""

from ansible_collections.palhm.palhm.plugins.module_utils._module import PalhmModule


def planned(step):
    """A resolved step (config syntax) with the keys a step that ran has
    (``task``, ``builtin``: no dash, so Jinja can read them as attributes)."""
    renamed = {"task-id": "task", "builtin-id": "builtin"}
    return {renamed.get(k, k): v for k, v in step.items()}


def failed_steps(err):
    """A failed run's steps so far (the engine redacted them), for the failure result."""
    steps = getattr(err, "steps", None)
    if steps is None:
        return None
    return dict(steps=steps, changed=True)


def main():
    module = PalhmModule(
        argument_spec=dict(
            routine=dict(type="list", elements="dict"),
            execs=dict(type="list", elements="dict"),
            include=dict(type="list", elements="path"),
        ),
        task_type="routine",
        mutually_exclusive=[("config", "routine")],
    )
    p = module.params
    task_id = p["task"]

    def work():
        inline = None
        if p["routine"] is not None:
            inline = {"id": task_id, "type": "routine", "routine": p["routine"]}
        cfg = module.load_config(inline, p["include"], p["execs"])
        module.task(cfg)
        rt = module.runtime(cfg)
        if module.check_mode:
            plan = rt.plan_task(task_id)
            return dict(changed=bool(plan["steps"]), task=task_id, steps=[planned(s) for s in plan["steps"]])
        result = rt.run_task(task_id)
        return dict(changed=result["changed"], task=task_id, steps=result["steps"])

    module.exit_json(**module.run(work, details=failed_steps, task=task_id))


if __name__ == "__main__":
    main()
