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
      - Path of the PALHM config file on the target host. Defaults to C(/etc/palhm/palhm.conf), else C(/etc/palhm/palhm.jsonc) when only that one exists.
    type: path
  task:
    description:
      - Id of the backup task whose copies to list.
    type: str
    default: default
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
  - palhm.palhm.aws
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.palhm.palhm.plugins.module_utils.common import (
    add_query_result, check_query, config_args, load_config, run_engine)
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.inspect import copies_of
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.backends import aws as palhm_aws


def main():
    module = AnsibleModule(
        argument_spec=config_args(
            manifests=dict(type="bool", default=False),
            query=dict(type="str"),
            **palhm_aws.argument_spec(),
        ),
        required_together=palhm_aws.REQUIRED_TOGETHER,
        mutually_exclusive=palhm_aws.MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    compiled = check_query(module)

    def work():
        cfg = load_config(module)
        palhm_aws.apply_to_task(cfg.task(module.params["task"]), module.params)
        _task, backend, copies = copies_of(cfg, module.params["task"])
        out = []
        for c in copies:
            d = c.as_dict()
            if module.params["manifests"] and c.manifest is not None:
                d["manifest"] = c.manifest
            out.append(d)
        return dict(location=backend.location(), copies=out, complete=sum(1 for c in out if c["complete"]))

    result = add_query_result(module, compiled, run_engine(module, work))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
