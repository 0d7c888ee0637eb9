#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: palhm_boot_report
short_description: Compose and send the PALHM boot report of a host
version_added: 1.0.0
description:
  - Composes the boot report of the target host, the same report as C(palhm boot-report), and sends it
    with a mail user agent (MUA) - C(mailx), C(smtp), C(sendmail) or C(aws-sns) - or only returns it (C(stdout)).
  - The body is a YAML document that always parses, whatever the host name, header or command outputs contain.
    It says the host name, kernel release, time zone, boot time, uptime, kernel boot id, the state systemd
    reached when O(boot_wait=systemd), and whether the previous shutdown was C(clean), C(unclean) or C(unknown),
    with the previous boot's start and end times when known.
  - The previous shutdown is clean when the C(palhm-boot-report.service) unit recorded it at shutdown (its
    C(ExecStop) runs C(palhm boot-report --mark-clean-shutdown)). A crash, kill or power loss leaves no such record.
    Records live in the directory named by the E(PALHM_STATE_DIR) environment variable, default C(/var/lib/palhm).
  - Give either the report settings as options, or O(config) to use the C(boot-report) object of the host's
    PALHM configuration.
author:
  - palhm.palhm contributors (@palhm)
requirements:
  - python >= 3.9
  - boto3 (only for O(mua=aws-sns))
extends_documentation_fragment:
  - palhm.palhm.common
attributes:
  check_mode:
    details: Composes the report without waiting, sending or recording the boot; RV(sent) is false.
options:
  config:
    description:
      - Path of a PALHM configuration file on the host whose C(boot-report) object is used.
      - Mutually exclusive with every other option but O(config).
    type: path
  mua:
    description:
      - The mail user agent that sends the report.
      - V(stdout) only composes it; the report is returned and nothing is sent.
      - V(mailx) runs O(mua_param.exec) with C(-s SUBJECT), C(-S OPT) for each of O(mua_param.int_opts) and the
        recipients, the body on its standard input.
      - V(smtp) talks SMTP to O(mua_param.host) with Python's standard library.
      - V(sendmail) pipes the message with its C(To), C(Subject) and C(From) headers to C(sendmail -t -i)
        (plus C(-f SENDER) when O(mua_param.sender) is set).
      - V(aws-sns) publishes the report to each SNS ARN in O(mail_to).
      - Required unless O(config) is given.
    type: str
    choices: [stdout, mailx, smtp, sendmail, aws-sns]
  mua_param:
    description:
      - Parameters of the MUA. Each MUA accepts only its own.
    type: dict
    suboptions:
      exec:
        description:
          - V(mailx) and V(sendmail) MUAs. The command to run.
          - Defaults to C(mailx) for V(mailx) and C(/usr/sbin/sendmail) for V(sendmail).
        type: str
      int_opts:
        description:
          - V(mailx) MUA. Internal options passed as C(-S OPT) each, for example C(mta=smtp://mail.example.com:25).
        type: list
        elements: str
      profile:
        description:
          - V(aws-sns) MUA. The AWS profile to use. Default is boto3's credential chain.
        type: str
      region:
        description:
          - V(aws-sns) MUA. The AWS region, when the profile has none.
        type: str
      endpoint_url:
        description:
          - V(aws-sns) MUA. URL of an SNS-compatible endpoint to use instead of AWS's.
        type: str
      host:
        description:
          - V(smtp) MUA. The SMTP server. Defaults to C(localhost).
        type: str
      port:
        description:
          - V(smtp) MUA. The server's port. Defaults to 25, 587 with O(mua_param.tls=starttls), 465 with
            O(mua_param.tls=tls).
        type: int
      tls:
        description:
          - V(smtp) MUA. V(none) for plain SMTP, V(starttls) to upgrade the connection, V(tls) for SMTP over TLS.
          - Server certificates are verified against the host's trusted CAs. Defaults to V(none).
        type: str
        choices: [none, starttls, tls]
      username:
        description:
          - V(smtp) MUA. User name to log in with; needs O(mua_param.password) and a O(mua_param.tls) other
            than V(none).
        type: str
      password:
        description:
          - V(smtp) MUA. Password to log in with. Never logged nor returned.
        type: str
      sender:
        description:
          - V(smtp) and V(sendmail) MUAs. The envelope sender and C(From) address. Defaults to C(USER@FQDN)
            (the C(From) header; with V(sendmail) the MTA then picks the envelope sender).
          - With V(sendmail), it is passed as C(-f SENDER).
        type: str
      timeout:
        description:
          - V(smtp) MUA. Seconds to wait for the server. Defaults to 30.
        type: float
  mail_to:
    description:
      - The recipients. For V(aws-sns), SNS ARNs (for example topic ARNs).
      - Required unless O(config) is given.
    type: list
    elements: str
  subject:
    description:
      - The subject. C({hostname}) is replaced by the host name.
      - Defaults to C(Boot Report from {hostname}).
    type: str
  header:
    description:
      - Text put at the top of the body as YAML comments, one comment line per line. C({hostname}) is replaced
        by the host name. An empty string leaves the header out.
      - Defaults to a short text naming the host.
    type: str
  uptime_since:
    description:
      - Include the boot time, like C(uptime --since). Defaults to true.
    type: bool
  uptime:
    description:
      - Include the uptime, like C(uptime -p). Defaults to true.
    type: bool
  bootid:
    description:
      - Include the kernel's boot id. Defaults to true.
    type: bool
  boot_wait:
    description:
      - V(systemd) waits until C(systemctl is-system-running --wait) returns and reports the state reached,
        with the failed units when it is C(degraded). Not set, the report does not wait.
    type: str
    choices: [systemd]
  boot_wait_timeout:
    description:
      - Seconds O(boot_wait) waits at most; the report is sent anyway after that. Defaults to 1800.
    type: float
  delay:
    description:
      - Seconds to wait before composing and sending the report. Finite, at least 0. Defaults to 0.
    type: float
notes:
  - The body is 7-bit ASCII; other characters are written as YAML escapes in values and shown escaped in the
    header comments.
  - Run again in the same boot, the report says the same about the previous shutdown.
seealso:
  - module: palhm.palhm.palhm_routine
"""

EXAMPLES = r"""
- name: Mail the boot report through the local SMTP relay
  palhm.palhm.palhm_boot_report:
    mua: smtp
    mua_param:
      host: localhost
    mail_to:
      - root@example.com

- name: Send it through s-nail to a remote server, like the original mailx MUA
  palhm.palhm.palhm_boot_report:
    mua: mailx
    mua_param:
      exec: s-nail
      int_opts:
        - mta=smtp://mail.example.com:25
    mail_to: [ops@example.com]
    subject: "{hostname} is up"
    header: "Rebooted by maintenance?\nCheck the change calendar."

- name: Submit through a mail server with credentials
  palhm.palhm.palhm_boot_report:
    mua: smtp
    mua_param:
      host: smtp.example.com
      tls: starttls
      username: reports
      password: "{{ vault_smtp_password }}"
      sender: reports@example.com
    mail_to: [ops@example.com]
    boot_wait: systemd

- name: Publish to an SNS topic
  palhm.palhm.palhm_boot_report:
    mua: aws-sns
    mua_param:
      region: us-east-1
    mail_to:
      - arn:aws:sns:us-east-1:123456789012:boot-reports

- name: Send the report the host's configuration describes
  palhm.palhm.palhm_boot_report:
    config: /etc/palhm/palhm.conf

- name: Only compose the report
  palhm.palhm.palhm_boot_report:
    mua: stdout
  register: report
"""

RETURN = r"""
subject:
  description: The subject of the report.
  returned: success
  type: str
  sample: Boot Report from web1
body:
  description: The report, a YAML document with the header as leading comments.
  returned: success
  type: str
  sample: "# Boot report of web1\nhostname: \"web1\"\nprevious-shutdown: \"clean\"\n"
recipients:
  description: The recipients (or SNS ARNs) the report was, or in check mode would be, sent to.
  returned: success
  type: list
  elements: str
  sample: [root@example.com]
sent:
  description: Whether the MUA accepted the report. False in check mode and with O(mua=stdout).
  returned: success
  type: bool
  sample: true
mua:
  description: The MUA used.
  returned: success
  type: str
  sample: smtp
previous_shutdown:
  description: How the previous boot ended, V(clean), V(unclean) or V(unknown) (no record of an earlier boot).
  returned: success
  type: str
  sample: clean
previous_boot:
  description: The previous boot when known (null when RV(previous_shutdown=unknown)).
  returned: success
  type: dict
  contains:
    bootid:
      description: Its kernel boot id.
      type: str
      returned: success
    start:
      description: When it started, seconds since the epoch.
      type: float
      returned: success
    end:
      description: When it ended, seconds since the epoch; null when it did not end cleanly.
      type: float
      returned: success
"""

from ansible_collections.palhm.palhm.plugins.module_utils._module import PalhmModule
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import bootreport
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import config as palhm_config
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import ConfigError

# Option name -> boot-report key.
_KEYS = {"mua": "mua", "mua_param": "mua-param", "mail_to": "mail-to", "subject": "subject",
         "header": "header", "uptime_since": "uptime-since", "uptime": "uptime", "bootid": "bootid",
         "boot_wait": "boot-wait", "boot_wait_timeout": "boot-wait-timeout", "delay": "delay"}
_PARAM_KEYS = {"exec": "exec", "int_opts": "int-opts", "profile": "profile", "region": "region",
               "endpoint_url": "endpoint-url", "host": "host", "port": "port", "tls": "tls",
               "username": "username", "password": "password", "sender": "sender", "timeout": "timeout"}


def spec_from_options(params):
    values, wheres = {}, {}
    for opt, key in _KEYS.items():
        if params.get(opt) is None:
            continue
        value = params[opt]
        if opt == "mua_param":
            value = {_PARAM_KEYS[k]: v for k, v in value.items() if v is not None}
        values[key] = value
        wheres[key] = opt
    return bootreport.parse_config(values, wheres)


def main():
    module = PalhmModule(
        task=False,
        argument_spec=dict(
            mua=dict(type="str", choices=list(bootreport.MUAS)),
            mua_param=dict(type="dict", options=dict(
                exec=dict(type="str"),
                int_opts=dict(type="list", elements="str"),
                profile=dict(type="str"),
                region=dict(type="str"),
                endpoint_url=dict(type="str"),
                host=dict(type="str"),
                port=dict(type="int"),
                tls=dict(type="str", choices=list(bootreport.TLS_MODES)),
                username=dict(type="str"),
                password=dict(type="str", no_log=True),
                sender=dict(type="str"),
                timeout=dict(type="float"),
            )),
            mail_to=dict(type="list", elements="str"),
            subject=dict(type="str"),
            header=dict(type="str"),
            uptime_since=dict(type="bool"),
            uptime=dict(type="bool"),
            bootid=dict(type="bool"),
            boot_wait=dict(type="str", choices=list(bootreport.BOOT_WAITS)),
            boot_wait_timeout=dict(type="float"),
            delay=dict(type="float"),
        ),
        required_one_of=[("config", "mua")],
        mutually_exclusive=[("config", "mua"), ("config", "mua_param"), ("config", "mail_to"),
                            ("config", "subject"), ("config", "header"), ("config", "uptime_since"),
                            ("config", "uptime"), ("config", "bootid"), ("config", "boot_wait"),
                            ("config", "boot_wait_timeout"), ("config", "delay")],
    )

    def work():
        if module.params["config"]:
            cfg = module.load_config()
            spec = cfg.boot_report
            if spec is None:
                raise ConfigError(module.params["config"], "no boot-report object")
        else:
            # An empty config: the Runtime that collects the engine's warnings.
            cfg = module.adopt(palhm_config.from_dict({}))
            spec = spec_from_options(module.params)
        return bootreport.run(spec, rt=module.runtime(cfg), check_mode=module.check_mode)

    module.exit_json(**module.run(work, redact_result=False))


if __name__ == "__main__":
    main()
