#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: palhm_restore
short_description: Restore one object of a PALHM backup copy on the target host
version_added: 1.0.0
description:
  - Streams one object of a complete copy of a PALHM backup task from its backend (C(localfs) or
    C(aws-s3)) on the target host, verifying its size and SHA-256 against the copy's manifest as it streams.
  - The object goes into a destination file (O(dest)), through a pipeline of commands (O(pipeline)),
    the mirror of the backup object's pipeline (for example C(zstd -d) then C(tar -x -C DIR)), or both
    (the pipeline's output goes into O(dest)).
  - O(dest) is written to a temporary file in the same directory and renamed over the destination only once
    the object matched its manifest; a mismatch leaves the destination untouched.
  - With a pipeline, the end of the stream is held back until the whole object matched; on a mismatch the
    pipeline is killed before its input ends, so it fails instead of finishing on corrupt data. What it
    already unpacked stays; set O(verify_first) to check the object before feeding anything to the pipeline.
  - Fails, naming the object, when the object does not match its manifest, is missing from the backend,
    or the copy asked for is incomplete.
  - Use M(palhm.palhm.palhm_backup_info) to see the copies (prefixes, completeness, sizes) and, with
    O(palhm.palhm.palhm_backup_info#module:manifests=true), their objects.
author:
  - palhm.palhm contributors (@palhm)
options:
  task:
    description:
      - Id of the backup task whose copy to restore from.
  prefix:
    description:
      - PREFIX of the copy to restore from (see M(palhm.palhm.palhm_backup_info)).
      - Defaults to the newest complete copy. An incomplete copy is never restored.
    type: str
  path:
    description:
      - Path of the object in the copy, as in the backup task's C(objects) (for example C(etc.tar.zst)).
    type: str
    required: true
  dest:
    description:
      - File to write the object (or the pipeline's output) into. When it is an existing directory or ends
        with C(/), the file is DEST/ followed by the last component of O(path).
      - Replaced atomically, only once the object was verified.
      - Without O(pipeline), an existing O(dest) whose content already matches the manifest is left alone
        (not changed) unless O(force=true).
      - At least one of O(dest) and O(pipeline) is required.
    type: path
  pipeline:
    description:
      - "Pipeline items, in the PALHM config syntax, the object is fed through, first to last:
        C({type: exec, exec-id: ID}), C({type: exec-append, exec-id: ID, argv: [...]}) or
        C({type: exec-inline, argv: [...]})."
      - Commands run without a shell. Without O(dest), the last command's output is kept as a short tail
        in RV(stdout_tail).
      - A pipeline always runs, so the task reports changed.
    type: list
    elements: dict
  include:
    description:
      - More config files whose Exec definitions the pipeline may use, for example
        C(/etc/palhm/conf.d/core.json). Files the config already includes are not loaded twice.
    type: list
    elements: path
  force:
    description:
      - Write O(dest) even when its content already matches the object.
    type: bool
    default: false
  mode:
    description:
      - Permissions of O(dest), in octal (for example C('0640')).
      - Defaults to the permissions of the file it replaces, or C(0600) for a new file (backups often hold secrets).
    type: raw
  verify_first:
    description:
      - With O(pipeline), read and verify the whole object before feeding it to the pipeline (reads it twice).
    type: bool
    default: false
extends_documentation_fragment:
  - palhm.palhm.common
  - palhm.palhm.aws
  - palhm.palhm.config
attributes:
  check_mode:
    support: full
    description: Finds the copy and the object and says what would be restored from where (prefix, size,
      SHA-256, location, destination); reads no object and writes nothing.
  diff_mode:
    support: none
    description: The restored content is not shown as a diff.
  platform:
    support: full
    platforms: posix
    description: Runs on POSIX hosts with Python 3.9 or newer (Linux for pipelines).
notes:
  - The exit status of every pipeline command matters; a failing command is named with its exit code and
    the tail of its stderr.
seealso:
  - module: palhm.palhm.palhm_backup
  - module: palhm.palhm.palhm_backup_info
"""

EXAMPLES = r"""
- name: Restore the newest etc.tar.zst into /root/etc.tar.zst
  palhm.palhm.palhm_restore:
    task: backup
    path: etc.tar.zst
    dest: /root/etc.tar.zst

- name: Unpack etc.tar.zst of a given copy into /srv/restore/etc
  palhm.palhm.palhm_restore:
    task: backup
    prefix: "2026-05-01T06:59:17+00:00"
    path: etc.tar.zst
    pipeline:
      - {type: exec-inline, argv: [zstd, -d, -c]}
      - {type: exec-inline, argv: [tar, -x, -C, /srv/restore/etc]}

- name: Decompress a database dump with an Exec of core.json
  palhm.palhm.palhm_restore:
    task: db
    path: db.sql.xz
    include: [/etc/palhm/conf.d/core.json]
    pipeline:
      - {type: exec-inline, argv: [xz, -d, -c]}
    dest: /var/tmp/db.sql
    mode: "0600"
"""

RETURN = r"""
task:
  description: Id of the backup task.
  returned: always
  type: str
  sample: backup
prefix:
  description: PREFIX of the copy restored from.
  returned: success
  type: str
  sample: "2026-05-01T06:59:17+00:00"
path:
  description: Path of the object in the copy.
  returned: success
  type: str
  sample: etc.tar.zst
location:
  description: Where the object is stored.
  returned: success
  type: str
  sample: /srv/backup/2026-05-01T06:59:17+00:00/etc.tar.zst
size:
  description: Size of the object in bytes, from the manifest.
  returned: success
  type: int
  sample: 1048576
sha256:
  description: SHA-256 of the object, from the manifest.
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
dest:
  description: The file written (or that would be written), or null without O(dest).
  returned: success
  type: str
  sample: /root/etc.tar.zst
pipeline:
  description: Argument vectors of the pipeline's commands.
  returned: success
  type: list
  elements: list
  sample: [["zstd", "-d", "-c"], ["tar", "-x", "-C", "/srv/restore/etc"]]
written:
  description: Whether anything was written (false in check mode and when O(dest) was already up to date).
  returned: success
  type: bool
would_write:
  description: In check mode, whether a real run would write.
  returned: check mode
  type: bool
up_to_date:
  description: O(dest) already held the object; nothing was written.
  returned: when O(dest) already matched, not in check mode
  type: bool
mode_changed:
  description: O(dest) already held the object and only its permissions were set to O(mode).
  returned: when O(dest) already matched but had another mode, not in check mode
  type: bool
would_change_mode:
  description: In check mode, O(dest) already holds the object but a real run would set its permissions to O(mode).
  returned: check mode, when O(dest) already matches but has another mode
  type: bool
stages:
  description: Exit codes of the pipeline's commands (argv, returncode).
  returned: success, with a pipeline, not in check mode
  type: list
  elements: dict
stdout_tail:
  description: The end of the last pipeline command's output, when it had no O(dest).
  returned: success, with a pipeline and without O(dest), not in check mode
  type: str
elapsed:
  description: Seconds the restore took.
  returned: when written
  type: float
msg:
  description: What was (or would be) restored, from where, to where.
  returned: success
  type: str
"""

import os

from ansible_collections.palhm.palhm.plugins.module_utils._module import PalhmModule
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import config as palhm_config
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.restore import restore


def load(module, include):
    """The host's config, plus the Execs of `include` files it does not
    already include."""
    cfg = module.load_config()
    config_path = module.params["config"] or palhm_config.default_path()
    seen = set(os.path.realpath(f) for f in cfg.files)
    extra = [p for p in include or [] if os.path.realpath(p) not in seen]
    if not extra:
        return cfg
    return module.adopt(palhm_config.from_dict({"include": [os.path.abspath(config_path)] + extra}))


def parse_mode(module, value):
    if value is None:
        return None
    try:
        mode = int(value, 8) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        module.fail_json(msg="mode must be an octal number like '0640', got %r" % (value,))
    if not 0 <= mode <= 0o7777:
        module.fail_json(msg="mode must be between 0000 and 7777, got %r" % (value,))
    return mode


def describe(res, check_mode):
    what = "%s of copy %s (%d bytes, sha256 %s) from %s" % (
        res["path"], res["prefix"], res["size"], res["sha256"], res["location"])
    how = ""
    if res["pipeline"]:
        how += " through " + " | ".join(" ".join(a) for a in res["pipeline"])
    if res["dest"]:
        how += " into " + res["dest"]
    if check_mode and res["would_write"]:
        return "would restore " + what + how
    if check_mode and res.get("would_change_mode"):
        return "%s already holds %s; would set its mode" % (res["dest"], what)
    if res.get("mode_changed"):
        return "%s already holds %s; set its mode" % (res["dest"], what)
    if check_mode or res.get("up_to_date"):
        return "%s already holds %s" % (res["dest"], what)
    return "restored " + what + how


def main():
    module = PalhmModule(
        argument_spec=dict(
            prefix=dict(type="str"),
            path=dict(type="str", required=True),
            dest=dict(type="path"),
            pipeline=dict(type="list", elements="dict"),
            include=dict(type="list", elements="path"),
            force=dict(type="bool", default=False),
            mode=dict(type="raw"),
            verify_first=dict(type="bool", default=False),
        ),
        aws=True,
        task_type="backup",
        required_one_of=[("dest", "pipeline")],
    )
    p = module.params
    mode = parse_mode(module, p["mode"])

    def work():
        cfg = load(module, p["include"])
        module.task(cfg)
        rt = module.runtime(cfg)
        res = restore(cfg, p["task"], p["prefix"], p["path"], dest=p["dest"], pipeline_items=p["pipeline"],
                      rt=rt, check=module.check_mode, force=p["force"], mode=mode,
                      verify_first=p["verify_first"])
        res["msg"] = describe(res, module.check_mode)
        if module.check_mode:
            res["changed"] = res["would_write"] or res.get("would_change_mode", False)
        else:
            res["changed"] = res["written"] or res.get("mode_changed", False)
        return res

    module.exit_json(**module.run(work, task=p["task"]))


if __name__ == "__main__":
    main()
