#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: palhm_dnssec_check
short_description: Check that DNS records validate through a DNSSEC-validating resolver
version_added: 1.0.0
description:
  - Asks a DNSSEC-validating resolver (the host's own, or the given addresses) for each name and record
    type with the DO bit set, and classifies every answer.
  - C(secure) is an answer with the AD flag. C(bogus) is a SERVFAIL that resolves when asked again with
    CD (checking disabled) set, that is broken or expired signatures or a DS/DNSKEY mismatch; the
    resolver's Extended DNS Error (RFC 8914) code and text are returned when it gives one.
    C(insecure) is an answer without AD (unsigned zone or no chain of trust). C(unreachable) is no answer,
    a refusal, or a SERVFAIL also with CD.
  - For secure answers, returns the earliest RRSIG expiration of the answer and the days left, and fails
    (or warns, see O(on_expiry)) below O(min_days_left), so a stalled re-signing or a missed key rollover
    is caught before the zone goes dark.
  - An optional self-check (O(must_fail)) asks a name that must fail validation; when it resolves, the
    resolver does not validate and the module fails.
  - The module fails when any name is not healthy. It only reads, so check mode runs the same queries.
  - The same check runs from cron as a C(dnssec-check) task of the PALHM configuration
    (C(palhm -q run check-dnssec)); O(config) and O(task) run such a task from a configuration file.
author:
  - PALHM maintainers (@palhm)
requirements:
  - dnspython
extends_documentation_fragment:
  - palhm.palhm.common
attributes:
  check_mode:
    support: full
    description: The check only reads; it runs the same queries in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
options:
  names:
    description:
      - The names to check. Each is a domain name (record type C(SOA)), or a dictionary with C(name) and
        C(type) (for example C(A), C(AAAA), C(MX), C(TXT)).
      - C(ANY) is refused by most resolvers today; name the types that matter.
      - Mutually exclusive with O(config). One of O(names) and O(config) is required.
    type: list
    elements: raw
  resolvers:
    description:
      - IP addresses of the validating resolvers to ask, tried in order until one answers.
      - When not set, the resolvers of C(/etc/resolv.conf) on the target.
    type: list
    elements: str
  port:
    description:
      - UDP/TCP port of the resolvers. Defaults to C(53).
    type: int
  timeout:
    description:
      - Seconds to wait for each resolver's answer before trying the next one or calling the name
        C(unreachable). Defaults to C(5).
    type: float
  min_days_left:
    description:
      - Fewest days the signatures of a secure answer may have left before the name fails (or warns, see
        O(on_expiry)). Fractions are allowed. Defaults to C(3).
      - Online signers (many DNS hosting providers) sign with one or two days of validity; lower this for them.
    type: float
  on_expiry:
    description:
      - What signatures expiring within O(min_days_left) do. C(fail) fails the module, C(warn) only warns.
        Defaults to C(fail).
    type: str
    choices: [fail, warn]
  allow_insecure:
    description:
      - Accept C(insecure) answers (unsigned zones) as healthy. Defaults to C(false).
    type: bool
  must_fail:
    description:
      - Resolver self-check, a name that must fail DNSSEC validation (a domain with deliberately broken
        signatures), given like an item of O(names).
      - If the resolver answers it, the resolver does not validate and the module fails.
    type: raw
  config:
    description:
      - Path of a PALHM configuration file on the target (for example C(/etc/palhm/palhm.conf)) whose
        O(task) is a C(dnssec-check) task to run.
      - Mutually exclusive with O(names) and the other check options.
    type: path
  task:
    description:
      - Id of the C(dnssec-check) task of O(config) to run. Required with O(config).
    type: str
notes:
  - Every name is asked with the DO and AD bits, and asked again with CD only after a SERVFAIL.
  - The resolvers are tried in order, and the first that answers (with any response code) is used.
seealso:
  - name: RFC 8914, Extended DNS Errors
    description: The codes the resolver returns with a failed validation, for example 6 (DNSSEC Bogus), 7 (Signature Expired).
    link: https://www.rfc-editor.org/rfc/rfc8914
"""

EXAMPLES = r"""
- name: Check that the zone and its web server validate, with a week of signatures left
  palhm.palhm.palhm_dnssec_check:
    names:
      - example.com
      - name: www.example.com
        type: A
    min_days_left: 7

- name: Check through given resolvers, and make sure they really validate
  palhm.palhm.palhm_dnssec_check:
    names: [example.org]
    resolvers: [9.9.9.9, 149.112.112.112]
    must_fail: dnssec-failed.org
    timeout: 3

- name: Warn, but do not fail, when signatures run short; accept unsigned zones
  palhm.palhm.palhm_dnssec_check:
    names: [example.net, unsigned.example]
    on_expiry: warn
    allow_insecure: true
  register: dnssec

- name: Show the days left of each name
  ansible.builtin.debug:
    msg: "{{ dnssec.results | items2dict(key_name='name', value_name='days_left') }}"

- name: Run the check-dnssec task of the host's PALHM configuration
  palhm.palhm.palhm_dnssec_check:
    config: /etc/palhm/palhm.conf
    task: check-dnssec
"""

RETURN = r"""
results:
  description: One entry per name checked, in the order given.
  returned: success, and on failure after the queries ran
  type: list
  elements: dict
  contains:
    name:
      description: The domain name, without the trailing dot.
      type: str
      sample: example.com
    type:
      description: The record type asked for.
      type: str
      sample: SOA
    resolver:
      description: The resolver that answered (C(ADDRESS#PORT)), or null when none did.
      type: str
      sample: "127.0.0.1#53"
    status:
      description: C(secure), C(bogus), C(insecure) or C(unreachable).
      type: str
      sample: secure
    rcode:
      description: The response code of the answer with the DO bit, or null when none came.
      type: str
      sample: NOERROR
    ad:
      description: Whether the answer had the AD (authenticated data) flag.
      type: bool
      sample: true
    ede:
      description: The Extended DNS Error of the answer, or null.
      type: dict
      sample: {"code": 6, "purpose": "DNSSEC Bogus", "text": "signature crypto failed"}
      contains:
        code:
          description: The RFC 8914 INFO-CODE.
          type: int
        purpose:
          description: What the code means.
          type: str
        text:
          description: The resolver's EXTRA-TEXT, or null.
          type: str
    records:
      description: The answer's records as zone file lines, RRSIGs left out. For C(bogus) names, what the
        resolver got with checking disabled.
      type: list
      elements: str
      sample: ["example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2026010101 3600 600 86400 300"]
    rrsig_expiration:
      description: The earliest expiration among the answer's signatures, ISO 8601 in UTC, or null.
      type: str
      sample: "2026-12-21T23:50:44+00:00"
    days_left:
      description: Days until RV(results[].rrsig_expiration), rounded down to two decimals; negative once expired.
      type: float
      sample: 29.99
    ok:
      description: Whether this name is healthy.
      type: bool
      sample: true
    reason:
      description: Why the name is or is not healthy, in words.
      type: str
      sample: "validated (AD); signatures expire 2026-12-21T23:50:44+00:00, in 29.99 days"
resolver_check:
  description: The result of the self-check with O(must_fail), or null without it.
  returned: success, and on failure after the queries ran
  type: dict
  contains:
    name:
      description: The name that must fail validation.
      type: str
    type:
      description: Its record type.
      type: str
    status:
      description: How it was classified; C(bogus) when the resolver validates.
      type: str
      sample: bogus
    resolver:
      description: The resolver that answered (C(ADDRESS#PORT)).
      type: str
    rcode:
      description: The response code of the answer with the DO bit.
      type: str
    ede:
      description: The Extended DNS Error given with the answer, like RV(results[].ede).
      type: dict
    validating:
      description: Whether the resolver validates DNSSEC; null when that could not be told.
      type: bool
      sample: true
    ok:
      description: Whether the self-check passed.
      type: bool
    reason:
      description: The outcome in words.
      type: str
  sample:
    name: dnssec-failed.org
    type: SOA
    resolver: "9.9.9.9#53"
    status: bogus
    rcode: SERVFAIL
    ede: {"code": 6, "purpose": "DNSSEC Bogus", "text": null}
    validating: true
    ok: true
    reason: "dnssec-failed.org SOA fails validation as it must: the resolver validates DNSSEC"
problems:
  description: One line per problem found, the same lines C(palhm run) writes to stderr. Empty on success.
  returned: success, and on failure after the queries ran
  type: list
  elements: str
  sample: ["broken.example SOA: bogus: DNSSEC validation fails (SERVFAIL, but NOERROR with checking disabled); EDE 7 (Signature Expired)"]
expiry_warnings:
  description: Names whose signatures expire within O(min_days_left) when O(on_expiry=warn). They are also
    shown as warnings.
  returned: success, and on failure after the queries ran
  type: list
  elements: str
  sample: []
checked_at:
  description: When the check ran (the time days are counted from), ISO 8601 in UTC.
  returned: success, and on failure after the queries ran
  type: str
  sample: "2026-11-21T23:50:44.830835+00:00"
resolvers:
  description: The resolver addresses asked.
  returned: success, and on failure after the queries ran
  type: list
  elements: str
  sample: ["127.0.0.1"]
port:
  description: The resolvers' port.
  returned: success, and on failure after the queries ran
  type: int
  sample: 53
min_days_left:
  description: The threshold of days applied.
  returned: success, and on failure after the queries ran
  type: float
  sample: 3.0
task:
  description: The configured task that ran, as validated, when O(config) was given.
  returned: when O(config) is given
  type: dict
  sample: {"id": "check-dnssec", "type": "dnssec-check", "names": [{"name": "example.com", "type": "SOA"}]}
"""

from ansible_collections.palhm.palhm.plugins.module_utils._module import PalhmModule
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import dnssec
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import ConfigError, TaskFailed

CHECK_OPTIONS = ("names", "resolvers", "port", "timeout", "min_days_left", "on_expiry", "allow_insecure",
                 "must_fail")


def _options(params):
    """Module options -> the engine's kebab-case task keys (unset ones left out)."""
    raw = {}
    for opt in CHECK_OPTIONS[1:]:
        if params[opt] is not None:
            raw[opt.replace("_", "-")] = params[opt]
    return raw


def _error_msg(err):
    if isinstance(err, ConfigError) and err.path and err.path != "(top)" and "/" not in err.path:
        # Paths name engine keys; the user wrote module options.
        return "%s: %s" % (err.path.replace("-", "_"), err.msg)
    return str(err)


def _outcome(result):
    """The module's result keys from the engine's check result."""
    return dict(
        results=result["results"],
        resolver_check=result["resolver_check"],
        problems=result["problems"],
        expiry_warnings=result["warnings"],
        checked_at=result["checked_at"],
        resolvers=result["resolvers"],
        port=result["port"],
        min_days_left=result["min_days_left"],
    )


def _failure_msg(result):
    bad = [r for r in result["results"] if not r["ok"]]
    msg = "DNSSEC check failed: %d of %d names not healthy" % (len(bad), len(result["results"]))
    if result["resolver_check"] and not result["resolver_check"]["ok"]:
        msg += ", resolver self-check failed"
    return msg + ": " + "; ".join(result["problems"])


def main():
    module = PalhmModule(
        argument_spec=dict(
            names=dict(type="list", elements="raw"),
            resolvers=dict(type="list", elements="str"),
            port=dict(type="int"),
            timeout=dict(type="float"),
            min_days_left=dict(type="float"),
            on_expiry=dict(type="str", choices=["fail", "warn"]),
            allow_insecure=dict(type="bool"),
            must_fail=dict(type="raw"),
        ),
        task_default=None,
        task_type=dnssec.TASK_TYPE,
        required_one_of=[("names", "config")],
        mutually_exclusive=[("config", opt) for opt in CHECK_OPTIONS],
        required_together=[("config", "task")],
    )
    p = module.params
    out = {"changed": False}

    def failure(err):
        """What a failure returns: the task, and for a configured task that
        ran and found problems, its results; errors in the options named
        by their option names."""
        result = getattr(err, "result", None)
        if result is None:
            return dict(out, msg=_error_msg(err))
        return dict(out, msg=_failure_msg(result), **_outcome(result))

    def work():
        if not p["config"]:
            queries = dnssec.parse_queries(p["names"], "names")
            opts = dnssec.parse_options(_options(p), "")
            result = dnssec.run_check(queries, opts)
            for warning in result["warnings"]:
                module.warn(warning)
            return result
        # Like `palhm run TASK`: the task's lock, pings, metrics and run
        # history; check mode only reads (the queries), so it runs the check
        # without them.
        cfg = module.load_config()
        task = module.task(cfg)
        out["task"] = task.describe()
        rt = module.runtime(cfg)
        if module.check_mode:
            return task.run(rt)
        return rt.run_task(task.id)

    result = module.run(work, details=failure, redact_result=False)
    out.update(_outcome(result))
    if not result["ok"]:
        # As a configured task fails in the engine (TaskFailed).
        module.fail_json(msg=_failure_msg(result), error_type=TaskFailed.__name__, exit_code=TaskFailed.exit_code,
                         **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
