#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: palhm_backup_info
short_description: List the copies a PALHM backup task has stored
version_added: 1.0.0
description:
  - Lists the copies of a PALHM backup task on its backend, oldest first, for audits and restores.
  - Only the task's own copies are listed (see the collection's docs/config.md), each C(complete) (it has a
    manifest naming the task), C(corrupt) (its manifest is damaged; never verified, restored, counted or
    rotated), C(incomplete) (left by an interrupted run; never restored, counted or kept), or C(legacy) (made by
    the original PALHM, without a manifest, named exactly like its prefixes).
  - Read-only; runs the same in check mode.
author:
  - palhm.palhm contributors (@palhm)
options:
  config:
    description:
      - Path of the PALHM config file on the target host. Defaults to C(/etc/palhm/palhm.conf), else
        C(/etc/palhm/palhm.jsonc) when only that one exists, when the backend is not given inline.
      - Mutually exclusive with O(backend) and O(backend_param).
  task:
    description:
      - Id of the backup task whose copies to list. With an inline backend, the id its copies were made
        with, the O(palhm.palhm.palhm_backup#module:task) of the inline M(palhm.palhm.palhm_backup) run;
        a copy belongs to the task its manifest names.
  backend:
    description:
      - Backend of an inline task, as given to M(palhm.palhm.palhm_backup) (O(backend_param) says where).
        Setting it (or O(backend_param)) lists the copies an inline backup made, without a config file.
    type: str
    choices: ["null", localfs, aws-s3]
  backend_param:
    description:
      - The C(backend-param) object of the inline task, in the PALHM config syntax (for example C(root),
        and C(bucket) for C(aws-s3)). Rotation settings are accepted and ignored here.
    type: dict
  manifests:
    description:
      - Also return each complete copy's manifest (objects with path, size, sha256).
    type: bool
    default: false
  query:
    description:
      - A JMESPath expression applied to the result (RV(location), RV(copies), RV(complete)), like awscli's
        C(--query); what it selects is returned as RV(query_result).
      - Needs the Python library C(jmespath) on the target host (boto3 brings it).
    type: str
extends_documentation_fragment:
  - palhm.palhm.common
  - palhm.palhm.aws
  - palhm.palhm.config
attributes:
  check_mode:
    details: Read-only; runs the same in check mode.
requirements:
  - jmespath (only for O(query))
seealso:
  - module: palhm.palhm.palhm_backup
  - module: palhm.palhm.palhm_status
"""

EXAMPLES = r"""
- name: List the copies of the task "backup"
  palhm.palhm.palhm_backup_info:
    task: backup
  register: copies

- name: Show the newest complete copy
  ansible.builtin.debug:
    msg: "{{ (copies.copies | selectattr('complete') | last).prefix }}"

- name: List what an inline palhm_backup made in /srv/backup, without a config file
  palhm.palhm.palhm_backup_info:
    task: etc
    backend: localfs
    backend_param:
      root: /srv/backup/{{ inventory_hostname }}
  register: etc_copies

- name: The prefix of the newest complete copy, with a JMESPath query
  palhm.palhm.palhm_backup_info:
    task: backup
    query: "copies[?complete] | [-1].prefix"
  register: newest
"""

RETURN = r"""
location:
  description: The backend's root.
  returned: always
  type: str
copies:
  description: The copies, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    prefix:
      description: The copy's PREFIX.
      type: str
    state:
      description: One of C(complete), C(corrupt), C(incomplete), C(legacy).
      type: str
    problem:
      description: Why the copy is C(corrupt) (what is wrong with its manifest).
      type: str
      returned: when the copy is corrupt
    host:
      description: The host that made the copy (from its manifest), or null when unknown.
      type: str
    future:
      description: Whether the copy's prefix is more than 5 minutes ahead of the clock (made while the clock was ahead).
      type: bool
    complete:
      description: Whether the copy is complete.
      type: bool
    size:
      description: Bytes stored.
      type: int
    objects:
      description: Number of objects.
      type: int
    location:
      description: Where the copy is.
      type: str
    manifest:
      description: The manifest, when O(manifests=true) and the copy is complete.
      type: dict
      returned: when requested
complete:
  description: Number of complete copies.
  returned: always
  type: int
query_result:
  description: What O(query) selects from the result.
  returned: when O(query) is set
  type: raw
"""

from ansible_collections.palhm.palhm.plugins.module_utils._module import PalhmModule
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.inspect import copies_of


def inline_task(params):
    """The inline backup task whose copies to list, or None (the config file's)."""
    if params["backend"] is None and params["backend_param"] is None:
        return None
    # Listing reads no object definition, but a backup task needs one.
    unused = {"path": "unused", "pipeline": [{"type": "exec-inline", "argv": ["true"]}]}
    return {"id": params["task"], "type": "backup", "backend": params["backend"] or "null",
            "backend-param": params["backend_param"] or {}, "objects": [unused]}


def main():
    module = PalhmModule(
        argument_spec=dict(
            backend=dict(type="str", choices=["null", "localfs", "aws-s3"]),
            backend_param=dict(type="dict"),
            manifests=dict(type="bool", default=False),
            query=dict(type="str"),
        ),
        aws=True,
        task_type="backup",
        mutually_exclusive=[("config", "backend"), ("config", "backend_param")],
    )
    module.hide_backend_secrets(module.params["backend_param"])
    compiled = module.compile_query()

    def work():
        cfg = module.load_config(inline_task(module.params))
        module.task(cfg)
        _task, backend, copies = copies_of(cfg, module.params["task"])
        out = []
        for c in copies:
            d = c.as_dict()
            if module.params["manifests"] and c.manifest is not None:
                d["manifest"] = c.manifest
            out.append(d)
        return dict(location=backend.location(), copies=out, complete=sum(1 for c in out if c["complete"]))

    result = module.add_query_result(compiled, module.run(work))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
