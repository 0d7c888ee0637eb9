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
      - Mutually exclusive with an inline task (O(backend), O(objects)); an inline task takes its Execs from O(include) and O(execs).
  task:
    description:
      - Id of the backup task to run from O(config), or the id given to the inline task.
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
  - palhm.palhm.common
  - palhm.palhm.aws
  - palhm.palhm.config
attributes:
  check_mode:
    details: Validates the task and returns the plan (build order, what rotation would remove); runs nothing.
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
type:
  description: The task's type, V(backup).
  returned: success, not in check mode
  type: str
  sample: backup
backend:
  description: The task's backend, V(null), V(localfs) or V(aws-s3).
  returned: success, not in check mode
  type: str
  sample: localfs
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
  description: Per object results, in the order they were defined.
  returned: success, not in check mode
  type: list
  elements: dict
  contains:
    path:
      description: The object's path in the copy.
      type: str
      sample: etc.tar.zst
    group:
      description: The object's group.
      type: str
      sample: default
    size:
      description: Bytes stored.
      type: int
    sha256:
      description: SHA-256 of what was stored.
      type: str
    duration:
      description: Seconds the object took to build and store.
      type: float
    stages:
      description: The pipeline's commands, each with C(argv) (secrets masked) and C(returncode).
      type: list
      elements: dict
      sample: [{"argv": ["tar", "-cf", "-", "etc"], "returncode": 0}, {"argv": ["zstd"], "returncode": 0}]
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
storage_class_changed:
  description: Keys of the new copy's objects whose storage class was set to C(rot-storage-class) (C(aws-s3) only;
    empty otherwise).
  returned: success, not in check mode
  type: list
  elements: str
future_copies:
  description: Prefixes of the complete (and legacy) copies, the new one included, whose PREFIX is more than 5 minutes
    ahead of the clock (made while the clock was ahead); each is also warned about.
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
  description: In check mode, what would happen.
  returned: check mode
  type: dict
  contains:
    task:
      description: Id of the task.
      type: str
    type:
      description: V(backup).
      type: str
    backend:
      description: The task's backend.
      type: str
    location:
      description: The backend's root (null for the null backend).
      type: str
    build_order:
      description: The object groups in the order they would be built, each with C(groups) and C(objects).
      type: list
      elements: dict
    objects:
      description: The objects, each with C(path), C(group) and C(pipeline) (the argv of each command).
      type: list
      elements: dict
    nb_workers:
      description: How many objects would be built at the same time.
      type: int
    would_rotate:
      description: Prefixes of the copies rotation would remove after the new copy.
      type: list
      elements: str
    would_remove_leftovers:
      description: Prefixes of incomplete copies a real run would remove.
      type: list
      elements: str
    copies:
      description: The copies on the backend now, like RV(palhm.palhm.palhm_backup_info#module:copies).
      type: list
      elements: dict
      returned: when the backend stores copies
    would_fail:
      description: Why a real run now would fail at once (another run holds the task's or the root's lock).
      type: str
      returned: when another run holds a lock
"""

from ansible_collections.palhm.palhm.plugins.module_utils._module import PalhmModule
from ansible_collections.palhm.palhm.plugins.module_utils.common import drop_none


def inline_task(params):
    if params["backend"] is None and params["objects"] is None:
        return None
    return drop_none({
        "id": params["task"], "type": "backup", "backend": params["backend"] or "null",
        "backend-param": params["backend_param"], "object-groups": params["object_groups"],
        "objects": params["objects"] or []})


def main():
    module = PalhmModule(
        argument_spec=dict(
            backend=dict(type="str", choices=["null", "localfs", "aws-s3"]),
            backend_param=dict(type="dict"),
            objects=dict(type="list", elements="dict"),
            object_groups=dict(type="list", elements="dict"),
            execs=dict(type="list", elements="dict"),
            include=dict(type="list", elements="path"),
            nb_workers=dict(type="int"),
        ),
        aws=True,
        task_type="backup",
        mutually_exclusive=[("config", "backend"), ("config", "objects")],
    )
    p = module.params
    task_id = p["task"]
    module.hide_backend_secrets(p["backend_param"])

    def work():
        cfg = module.load_config(inline_task(p), p["include"], p["execs"], p["nb_workers"])
        task = module.task(cfg)
        rt = module.runtime(cfg)
        if module.check_mode:
            plan = rt.plan_task(task_id)
            return dict(changed=task.make_backend().stores, task=task_id, plan=plan)
        return rt.run_task(task_id)

    module.exit_json(**module.run(work, task=task_id))


if __name__ == "__main__":
    main()
