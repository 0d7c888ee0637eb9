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
    type: path
  task:
    description:
      - Id of the routine task to run from O(config), or the id given to the inline routine.
    type: str
    default: default
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
      - Config files to include for an inline routine, for example C(/etc/palhm/conf.d/core.json).
    type: list
    elements: path
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Returns the resolved steps and runs nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
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

- name: An inline routine
  palhm.palhm.palhm_routine:
    task: refresh
    routine:
      - {type: exec-inline, argv: [apt-get, update]}
      - {type: exec-inline, argv: [apt-get, -y, upgrade]}
      - {type: task, task-id: backup}
    include: [/etc/palhm/conf.d/core.json]
"""

RETURN = r"""
task:
  description: Id of the routine.
  returned: always
  type: str
steps:
  description:
    - The steps that ran (in check mode, the resolved steps), each with C(step) (1-based), C(type),
      C(argv) or C(task), C(rc), C(duration), C(stdout_tail) and C(stderr_tail).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.palhm.palhm.plugins.module_utils.common import config_args, load_config, run_engine
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.runtime import Runtime


def main():
    module = AnsibleModule(
        argument_spec=config_args(
            routine=dict(type="list", elements="dict"),
            execs=dict(type="list", elements="dict"),
            include=dict(type="list", elements="path"),
        ),
        mutually_exclusive=[("config", "routine")],
        supports_check_mode=True,
    )
    p = module.params
    task_id = p["task"]

    def work():
        inline = None
        if p["routine"] is not None:
            inline = {"id": task_id, "type": "routine", "routine": p["routine"]}
        cfg = load_config(module, inline, p["include"], p["execs"])
        task = cfg.task(task_id)
        if task.type != "routine":
            module.fail_json(msg="task %r is a %s task; palhm_routine runs routine tasks" % (task_id, task.type))
        rt = Runtime(cfg, check_mode=module.check_mode)
        if module.check_mode:
            plan = rt.plan_task(task_id)
            return dict(changed=bool(plan["steps"]), task=task_id, steps=plan["steps"])
        try:
            result = rt.run_task(task_id)
        except Exception as e:
            steps = getattr(e, "steps", None)
            if steps is not None:
                module.fail_json(msg=str(e), task=task_id, steps=steps, changed=True)
            raise
        return dict(changed=result["changed"], task=task_id, steps=result["steps"])

    module.exit_json(**run_engine(module, work, task=task_id))


if __name__ == "__main__":
    main()
