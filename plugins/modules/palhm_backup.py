#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: palhm_backup
short_description: Run a PALHM backup task on the target host
version_added: 1.0.0
description:
  - Runs a backup task of PALHM (Periodic Automatic Live Host Maintenance) on the target host.
  - Each backup object is built by a pipeline of commands (for example C(tar | zstd | gpg)) whose last
    stage streams straight into the backend. Object groups form a dependency graph; objects whose
    groups have no unmet dependency are built at the same time, up to O(nb_workers).
  - The copy becomes complete atomically, with a manifest of every object (size, SHA-256, exit codes,
    durations), only when every object succeeded. Any failure rolls the copy back and fails the task.
  - After a successful backup, old copies are rotated by C(nb-copy-limit), C(root-size-limit) and the
    calendar rules C(keep-last), C(keep-daily), C(keep-weekly), C(keep-monthly), C(keep-yearly), C(keep-within).
  - The task comes from the PALHM config file on the host (O(config), O(task)), or is written inline
    with O(backend), O(backend_param), O(objects) and friends, in the PALHM config syntax.
  - One run of a task at a time per host; a second run fails at once.
author:
  - palhm.palhm contributors (@palhm)
options:
  config:
    description:
      - Path of the PALHM config file on the target host.
      - Defaults to C(/etc/palhm/palhm.conf), else C(/etc/palhm/palhm.jsonc) when only that one exists, when the task is not given inline.
      - With an inline task, its C(execs) and C(include) are ignored; use O(include) and O(execs).
    type: path
  task:
    description:
      - Id of the backup task to run from O(config), or the id given to the inline task.
    type: str
    default: default
  backend:
    description:
      - Backend of an inline task. Setting it (or O(objects)) makes the task inline.
    type: str
    choices: ["null", localfs, aws-s3]
  backend_param:
    description:
      - The C(backend-param) object of an inline task, in the PALHM config syntax
        (for example C(root), C(nb-copy-limit), C(dmode), C(keep-daily)).
    type: dict
  objects:
    description:
      - The C(objects) of an inline task, in the PALHM config syntax (C(path), C(pipeline), C(group), C(alloc-size)).
    type: list
    elements: dict
  object_groups:
    description:
      - The C(object-groups) of an inline task (C(id), C(depends)).
    type: list
    elements: dict
  execs:
    description:
      - Exec definitions for an inline task (C(id), C(argv), C(env), C(ec), C(vl-stderr), C(vl-stdout)).
    type: list
    elements: dict
  include:
    description:
      - Config files to include for an inline task, typically C(/etc/palhm/conf.d/core.json) for its Execs.
    type: list
    elements: path
  nb_workers:
    description:
      - Number of objects built at the same time for an inline task. C(0) means the number of CPUs
        this process may use, a negative number the thread pool's default.
    type: int
extends_documentation_fragment:
  - palhm.palhm.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Validates the task and returns the plan (build order, what rotation would remove); runs nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - >-
    Config mistakes fail with the JSON path of the offending key, for example
    C(tasks[0].objects[2].pipeline[1].exec-id: no exec named "zstd").
  - Long backups can run with C(async) and C(poll).
seealso:
  - module: palhm.palhm.palhm_backup_info
"""

EXAMPLES = r"""
- name: Run the backup task "backup" from /etc/palhm/palhm.conf
  palhm.palhm.palhm_backup:
    task: backup

- name: Back up /etc and the package list to a local disk, keeping 7 copies
  palhm.palhm.palhm_backup:
    task: etc
    include: [/etc/palhm/conf.d/core.json]
    backend: localfs
    backend_param:
      root: /srv/backup/{{ inventory_hostname }}
      nb-copy-limit: 7
    object_groups:
      - id: fs
      - id: meta
        depends: [fs]
    objects:
      - path: etc.tar.zst
        group: fs
        pipeline:
          - {type: exec-append, exec-id: tar, argv: [-C, /, etc]}
          - {type: exec, exec-id: filter-zstd-plain}
      - path: packages.txt
        group: meta
        pipeline:
          - {type: exec-inline, argv: [dpkg-query, -W]}

- name: A long backup in the background
  palhm.palhm.palhm_backup:
    task: backup
  async: 7200
  poll: 30
"""

RETURN = r"""
task:
  description: Id of the task that ran.
  returned: always
  type: str
  sample: backup
prefix:
  description: PREFIX of the copy made (UTC time, ISO 8601).
  returned: success, not in check mode
  type: str
  sample: "2026-05-01T06:59:17+00:00"
location:
  description: Where the copy is (null for the null backend).
  returned: success, not in check mode
  type: str
  sample: /srv/backup/web1/2026-05-01T06:59:17+00:00
objects:
  description: Per object results (path, group, size, sha256, duration, stages with argv and returncode).
  returned: success, not in check mode
  type: list
  elements: dict
rotated:
  description: Prefixes of the copies rotation removed.
  returned: success, not in check mode
  type: list
  elements: str
removed_leftovers:
  description: Prefixes of incomplete copies left by earlier, interrupted runs that were removed.
  returned: success, not in check mode
  type: list
  elements: str
bytes:
  description: Total bytes stored.
  returned: success, not in check mode
  type: int
elapsed:
  description: Seconds the task took.
  returned: success, not in check mode
  type: float
plan:
  description: In check mode, what would happen (backend, location, build_order, objects, would_rotate, would_remove_leftovers).
  returned: check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.palhm.palhm.plugins.module_utils.common import config_args, drop_none, load_config, run_engine
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.runtime import Runtime
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.backends import aws as palhm_aws


SECRET_KEYS = ("secret-key", "session-token")


def inline_task(params):
    if params["backend"] is None and params["objects"] is None:
        return None
    return drop_none({
        "id": params["task"], "type": "backup", "backend": params["backend"] or "null",
        "backend-param": params["backend_param"], "object-groups": params["object_groups"],
        "objects": params["objects"] or []})


def main():
    module = AnsibleModule(
        argument_spec=config_args(
            backend=dict(type="str", choices=["null", "localfs", "aws-s3"]),
            backend_param=dict(type="dict"),
            objects=dict(type="list", elements="dict"),
            object_groups=dict(type="list", elements="dict"),
            execs=dict(type="list", elements="dict"),
            include=dict(type="list", elements="path"),
            nb_workers=dict(type="int"),
            **palhm_aws.argument_spec(),
        ),
        required_together=palhm_aws.REQUIRED_TOGETHER,
        mutually_exclusive=palhm_aws.MUTUALLY_EXCLUSIVE + [("config", "backend"), ("config", "objects")],
        supports_check_mode=True,
    )
    p = module.params
    task_id = p["task"]
    # Secrets written inside backend_param (a free-form dict) are hidden from
    # the invocation echoed back in results, like no_log options.
    for key in SECRET_KEYS:
        value = (p["backend_param"] or {}).get(key)
        if isinstance(value, str) and value:
            module.no_log_values.add(value)

    def work():
        cfg = load_config(module, inline_task(p), p["include"], p["execs"], p["nb_workers"])
        task = palhm_aws.apply_to_task(cfg.task(task_id), p)
        if task.type != "backup":
            module.fail_json(msg="task %r is a %s task; palhm_backup runs backup tasks" % (task_id, task.type))
        rt = Runtime(cfg, check_mode=module.check_mode)
        if module.check_mode:
            plan = rt.plan_task(task_id)
            return dict(changed=task.make_backend().stores, task=task_id, plan=plan)
        result = rt.run_task(task_id)
        result["warnings_logged"] = [m for lvl, m in rt.messages if lvl <= 2]
        return result

    result = run_engine(module, work, task=task_id)
    for w in result.pop("warnings_logged", []):
        module.warn(w)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
