#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: palhm_status
short_description: Tell whether every PALHM task's data is safe right now
version_added: 1.0.0
description:
  - Reads the run history that every run of a PALHM task records on the host (the C(palhm) command from a
    shell, cron or a systemd timer, and the modules), each task's C(max-age), and the copies of backup tasks on
    their backends, and gives each task a verdict, the same as C(palhm status --json) on the host.
  - Verdicts, the first that applies. C(never-run) when no run of the task is recorded on the host.
    C(failing) when its last run failed, was cancelled or died without recording its end.
    C(no-copy) when a backup task's backend holds no complete copy or cannot be listed.
    C(stale) when C(max-age) is set and the last success, or a backup's newest complete copy, is older.
    C(ok) otherwise.
  - Only copies in state C(complete) whose PREFIX is not in the future count.
  - Read-only; runs the same in check mode. It does not fail when a task is not C(ok); use RV(ok) or
    RV(verdict) in C(failed_when) or C(assert).
  - The run history lives in the directory named by the E(PALHM_STATE_DIR) environment variable, default
    C(/var/lib/palhm).
author:
  - palhm.palhm contributors (@palhm)
options:
  config:
    description:
      - Path of the PALHM config file on the target host. Defaults to C(/etc/palhm/palhm.conf), else
        C(/etc/palhm/palhm.jsonc) when only that one exists.
    type: path
  task:
    description:
      - Id of the one task to report on. All tasks of the config when omitted.
    type: str
  query:
    description:
      - A JMESPath expression applied to the status document (the returned values but C(query_result)), like
        awscli's C(--query); what it selects is returned as RV(query_result).
      - Needs the Python library C(jmespath) on the target host (boto3 brings it).
    type: str
extends_documentation_fragment:
  - palhm.palhm.common
  - palhm.palhm.aws
attributes:
  check_mode:
    details: Read-only; runs the same in check mode.
requirements:
  - jmespath (only for O(query))
seealso:
  - module: palhm.palhm.palhm_backup
  - module: palhm.palhm.palhm_backup_info
"""

EXAMPLES = r"""
- name: Status of every task
  palhm.palhm.palhm_status:
  register: status

- name: Fail when some task is not ok, naming them
  ansible.builtin.assert:
    that: status.ok
    fail_msg: "{{ status.tasks | rejectattr('ok') | map(attribute='reason') | list }}"

- name: The tasks that are not ok, with a JMESPath query
  palhm.palhm.palhm_status:
    query: "tasks[?!ok].{task: task, verdict: verdict, reason: reason}"
  register: bad

- name: Age in seconds of the newest complete copy of the task "backup"
  palhm.palhm.palhm_status:
    task: backup
    query: "tasks[0].newest_copy.age"
  register: age
"""

RETURN = r"""
format:
  description: The format of the status document, V(palhm-status/1).
  returned: always
  type: str
hostname:
  description: The host's name.
  returned: always
  type: str
time:
  description: When the status was taken (ISO 8601 UTC).
  returned: always
  type: str
ok:
  description: Whether every task reported on is C(ok).
  returned: always
  type: bool
verdict:
  description: The worst verdict of the tasks, C(failing) > C(no-copy) > C(never-run) > C(stale) > C(ok).
  returned: always
  type: str
counts:
  description: Number of tasks per verdict (every verdict is a key).
  returned: always
  type: dict
tasks:
  description: One entry per task, in config order.
  returned: always
  type: list
  elements: dict
  contains:
    task:
      description: The task's id.
      type: str
    type:
      description: The task's type.
      type: str
    verdict:
      description: One of C(ok), C(stale), C(failing), C(never-run), C(no-copy).
      type: str
    ok:
      description: Whether the verdict is C(ok).
      type: bool
    reason:
      description: The verdict in words.
      type: str
    problems:
      description: Every verdict but C(ok) that applies, worst first.
      type: list
      elements: str
    max_age:
      description: The task's C(max-age) in seconds, or null.
      type: int
    running:
      description: Whether a run of the task holds its lock now.
      type: bool
    runs:
      description: Number of runs recorded (at most 50 are kept).
      type: int
    last_run:
      description:
        - The last run recorded, or null. Keys C(task), C(type), C(start), C(end) (ISO 8601 UTC),
          C(duration), C(result) (C(success), C(failure), C(cancelled)), C(exit_code), C(bytes), C(objects),
          C(prefix), C(error) (one line, no secret), C(parent), C(pid), and C(age) (seconds since it ended).
      type: dict
    last_success:
      description: The last successful run, like RV(tasks[].last_run), or null.
      type: dict
    copies:
      description: Complete copies on the backend; null for a task that is not a backup that stores.
      type: int
    newest_copy:
      description: The newest complete copy, C(prefix), C(age) (seconds), C(size), C(objects), C(location); or null.
      type: dict
    copy_sizes:
      description:
        - The complete copies counted, oldest first (the last 60), each C(prefix) and C(size); null for a task
          that is not a backup that stores. The fleet report draws them.
      type: list
      elements: dict
    future_copies:
      description: Complete copies whose PREFIX is in the future (not counted); null for a task that is not a backup that stores.
      type: int
    copy_error:
      description: Why the copies could not be listed (one line), or null.
      type: str
    drill:
      description:
        - Backup tasks, the last run of a C(restore-drill) task of this backup task, C(task), C(result), C(end),
          C(age) (seconds), C(prefix) (the copy drilled), C(error); null when it was never drilled.
      type: dict
    backup_task:
      description: Restore drills, the backup task drilled; null for other task types.
      type: str
query_result:
  description: What O(query) selects from the status document.
  returned: when O(query) is set
  type: raw
"""

from ansible_collections.palhm.palhm.plugins.module_utils._module import PalhmModule
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import status as palhm_status


def main():
    module = PalhmModule(argument_spec=dict(query=dict(type="str")), task_default=None, aws=True)
    compiled = module.compile_query()

    def work():
        cfg = module.load_config()
        for task_id in cfg.tasks:
            module.task(cfg, task_id)
        return palhm_status.status(cfg, module.params["task"])

    result = module.add_query_result(compiled, module.run(work))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
