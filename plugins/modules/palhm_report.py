#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: palhm_report
short_description: Write the PALHM fleet report from the status of many hosts
version_added: 1.0.0
description:
  - Turns the results of M(palhm.palhm.palhm_status) registered on many hosts into one report, written as
    C(palhm-report.json) and a self-contained C(palhm-report.html) (inline CSS and SVG, no script, no external
    asset) in O(dest), and optionally mailed as a plain-text summary through the boot report's MUAs.
  - Every host given appears. A host Ansible could not reach is C(unreachable); a host whose status could not be
    read (no PALHM config, a module error) is C(error). Hosts and tasks are sorted worst first, by verdict
    C(unreachable) > C(error) > C(failing) > C(no-copy) > C(never-run) > C(stale) > C(shrunk) > C(ok).
  - Meant to run once on the controller, C(delegate_to) C(localhost) or in a play on C(localhost); the playbook
    C(palhm.palhm.report) gathers the status and calls it.
  - It does not fail when something is not C(ok); use RV(ok) in C(failed_when) or C(assert).
author:
  - palhm.palhm contributors (@palhm)
options:
  statuses:
    description:
      - Host name to the result M(palhm.palhm.palhm_status) registered for it (with C(ignore_unreachable) and
        C(ignore_errors), so an unreachable or failed result is registered too). An empty or missing result is
        reported as C(error).
    type: dict
    required: true
  dest:
    description:
      - Directory the report files are written to (created when missing). Each file is replaced atomically.
    type: path
    required: true
  title:
    description: Title of the report, also the subject of the mail.
    type: str
    default: PALHM fleet report
  max_age:
    description:
      - A duration like C(26h) or C(2d). Tasks without a C(max-age) of their own are C(stale) when their last
        success or their newest complete copy is older. Tasks with their own C(max-age) keep it.
    type: str
  shrink_ratio:
    description:
      - A backup whose newest complete copy is smaller than this fraction of the copy before it is C(shrunk)
        (a dump that shrank by half is the classic silent failure). V(0) turns the check off.
    type: float
    default: 0.5
  mail:
    description:
      - Send the plain-text summary (the tasks that are not C(ok), the counts, the path of the HTML file) with
        one of the boot report's MUAs, from the host the module runs on. Omitted, nothing is sent.
    type: dict
    suboptions:
      mua:
        description: The MUA, as for the boot report.
        type: str
        required: true
        choices: [smtp, sendmail, mailx, aws-sns]
      mua_param:
        description:
          - The MUA's parameters, the boot report's C(mua-param) keys (smtp C(host), C(port), C(tls), C(username),
            C(password), C(sender), C(timeout); sendmail C(exec), C(sender); mailx C(exec), C(int-opts); aws-sns
            C(profile), C(region), C(endpoint-url)).
        type: dict
        default: {}
      to:
        description: Recipients (topic ARNs for aws-sns).
        type: list
        elements: str
        required: true
      only_when_not_ok:
        description: Send only when something is not C(ok).
        type: bool
        default: false
extends_documentation_fragment:
  - palhm.palhm.common
attributes:
  check_mode:
    details: Builds the report and returns it; writes and sends nothing.
requirements:
  - boto3 (only for O(mail.mua=aws-sns))
seealso:
  - module: palhm.palhm.palhm_status
  - module: palhm.palhm.palhm_boot_report
"""

EXAMPLES = r"""
- name: Status of every host
  palhm.palhm.palhm_status:
  register: palhm_status_result
  ignore_unreachable: true
  ignore_errors: true

- name: The fleet report, on the controller
  palhm.palhm.palhm_report:
    statuses: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
                  | map(attribute='palhm_status_result', default={}))) }}"
    dest: /srv/palhm-report
    max_age: 26h
    mail:
      mua: smtp
      mua_param: {host: mail.example.com, port: 587, tls: starttls}
      to: [backup-admins@example.com]
  delegate_to: localhost
  run_once: true
  register: report

- name: Fail when anything is not ok
  ansible.builtin.assert:
    that: report.ok
    fail_msg: "{{ report.summary }}"
  run_once: true
"""

RETURN = r"""
ok:
  description: Whether every host and every task is C(ok).
  returned: always
  type: bool
verdict:
  description: The worst verdict of the report.
  returned: always
  type: str
counts:
  description: Rows per verdict (a host without task rows, unreachable or in error, counts once).
  returned: always
  type: dict
hosts:
  description:
    - One entry per host, worst first, C(host), C(verdict), C(ok), C(reason), C(time) and C(tasks) (worst first,
      C(task), C(type), C(verdict), C(problems), C(reason), C(max_age), C(last_run), C(last_success_age), C(copies),
      C(newest_copy), C(copy_sizes), C(drill), C(backup_task)). The same as in C(palhm-report.json).
  returned: always
  type: list
  elements: dict
summary:
  description: The plain-text summary (the mail body).
  returned: always
  type: str
json_path:
  description: Path of C(palhm-report.json).
  returned: always
  type: str
html_path:
  description: Path of C(palhm-report.html).
  returned: always
  type: str
sent:
  description: Whether the summary was mailed.
  returned: always
  type: bool
recipients:
  description: Who the summary was sent to.
  returned: when sent
  type: list
  elements: str
"""

import json
import os
import time

from ansible_collections.palhm.palhm.plugins.module_utils._module import PalhmModule
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import report as palhm_report
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.backends.base import parse_duration


def _write(module, path, data):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    module.module.atomic_move(tmp, path)


def main():
    module = PalhmModule(
        config=False, task=False,
        argument_spec=dict(
            statuses=dict(type="dict", required=True),
            dest=dict(type="path", required=True),
            title=dict(type="str", default="PALHM fleet report"),
            max_age=dict(type="str"),
            shrink_ratio=dict(type="float", default=palhm_report.DEFAULT_SHRINK_RATIO),
            mail=dict(type="dict", options=dict(
                mua=dict(type="str", required=True, choices=list(palhm_report.MUAS)),
                mua_param=dict(type="dict", default={}, no_log=False),
                to=dict(type="list", elements="str", required=True),
                only_when_not_ok=dict(type="bool", default=False),
            )),
        ),
    )
    p = module.params
    dest = p["dest"]
    json_path = os.path.join(dest, "palhm-report.json")
    html_path = os.path.join(dest, "palhm-report.html")

    module.hide(((p["mail"] or {}).get("mua_param") or {}).get("password"))

    def work():
        max_age = None if p["max_age"] is None else parse_duration(p["max_age"], "max_age")
        spec = None
        if p["mail"]:
            mail = p["mail"]
            spec = palhm_report.mail_spec({"mua": mail["mua"], "mua-param": mail["mua_param"] or {},
                                           "mail-to": mail["to"]})
            module.hide(spec.mua_param.get("password"))
        doc = palhm_report.build(p["statuses"], time.time(), title=p["title"], max_age=max_age,
                                 shrink_ratio=p["shrink_ratio"])
        summary = palhm_report.render_text(doc, html_path)
        result = {"ok": doc["ok"], "verdict": doc["verdict"], "counts": doc["counts"], "hosts": doc["hosts"],
                  "summary": summary, "json_path": json_path, "html_path": html_path, "sent": False}
        if module.check_mode:
            result["changed"] = True
            return result
        try:
            os.makedirs(dest, 0o755, exist_ok=True)
            _write(module, json_path, (json.dumps(doc, indent=1) + "\n").encode("utf-8"))
            _write(module, html_path, palhm_report.render_html(doc).encode("utf-8"))
        except OSError as e:
            module.fail_json(msg="cannot write the report into %s: %s" % (dest, e))
        result["changed"] = True
        if spec is not None and not (p["mail"]["only_when_not_ok"] and doc["ok"]):
            result["recipients"] = palhm_report.send(spec, palhm_report.subject(doc), summary)
            result["sent"] = True
        return result

    result = module.run(work)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
