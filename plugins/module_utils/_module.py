# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PalhmModule: the one front door of every palhm module, as amazon.aws's
AnsibleAWSModule is for theirs. Private to the collection (the leading `_`);
not part of the standalone engine the role copies to hosts.

What it keeps, for every module:

- Options: ``config``/``task`` and, with ``aws=True``, the amazon.aws-named
  AWS options are merged into the module's argument_spec (their docs are the
  doc fragments ``palhm.palhm.config`` and ``palhm.palhm.aws``).
- Secrets: every secret of a loaded config (see the engine's redact.py)
  joins the module's no_log values, so Ansible hides it in the whole result,
  invocation included; results and error messages are redact()ed as well.
- Errors: a PalhmError becomes ``fail_json(msg, error_type, exit_code,
  **details)`` with a one-line message; a missing optional library becomes
  Ansible's ``missing_required_lib`` message; anything else becomes a one-line
  ``palhm internal error: ...`` with the traceback in ``exception``, never a
  module crash.
- Warnings: the config's warnings and every warning an engine Runtime logged
  reach ``module.warn``, once.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.palhm.palhm.plugins.module_utils import common
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import config as palhm_config
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import query as palhm_query
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import redact, schema
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.backends import aws as palhm_aws
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import MissingLibraryError, PalhmError, UsageError
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.runtime import VL_WARNING, Runtime

# The AWS options (amazon.aws names and aliases; docs: the palhm.palhm.aws
# doc fragment) and how they map onto aws-s3 backend-param keys is the
# engine's business (backends/aws.py MODULE_OPTIONS, apply_to_task).
AWS_ARGUMENT_SPEC = {
    "profile": {"type": "str", "aliases": ["aws_profile"]},
    "region": {"type": "str", "aliases": ["aws_region"]},
    "endpoint_url": {"type": "str", "aliases": ["aws_endpoint_url"]},
    "access_key": {"type": "str", "aliases": ["aws_access_key_id", "aws_access_key"], "no_log": False},
    "secret_key": {"type": "str", "aliases": ["aws_secret_access_key", "aws_secret_key"], "no_log": True},
    "session_token": {"type": "str", "aliases": ["aws_session_token"], "no_log": True},
}
# backend-param keys whose values are secrets (aws-s3).
BACKEND_SECRET_KEYS = ("secret-key", "session-token")
AWS_REQUIRED_TOGETHER = [["access_key", "secret_key"]]
AWS_MUTUALLY_EXCLUSIVE = [["profile", "access_key"], ["profile", "secret_key"]]


def aws_argument_spec():
    """A fresh copy of AWS_ARGUMENT_SPEC (AnsibleModule may change what it is given)."""
    return {k: dict(v, aliases=list(v["aliases"])) for k, v in AWS_ARGUMENT_SPEC.items()}


def config_argument_spec(task=True, task_default=palhm_config.DEFAULT_TASK):
    """``config`` (a path on the host) and, with `task`, ``task`` (default
    `task_default`, None for no default)."""
    spec = {"config": {"type": "path"}}
    if task:
        spec["task"] = {"type": "str"}
        if task_default is not None:
            spec["task"]["default"] = task_default
    return spec


def one_line(text):
    return " | ".join(line.strip() for line in str(text).splitlines() if line.strip())


class PalhmModule:
    """An AnsibleModule with the palhm options, config loading, error and
    warning mapping (see the file's docstring).

    argument_spec: the module's own options; merged over
        config_argument_spec(task, task_default) when `config` is true, and
        the AWS options when `aws` is true.
    task_type: the type of task the module runs (``backup``...), checked
        once by task(); None for modules that take any task.
    Other keyword arguments go to AnsibleModule (mutually_exclusive and
    required_together get the AWS rules added).
    """

    def __init__(self, argument_spec=None, *, config=True, task=True, task_default=palhm_config.DEFAULT_TASK,
                 aws=False, task_type=None, mutually_exclusive=None, required_together=None, **kwargs):
        spec = config_argument_spec(task, task_default) if config else {}
        mutually_exclusive = list(mutually_exclusive or [])
        required_together = list(required_together or [])
        if aws:
            spec.update(aws_argument_spec())
            mutually_exclusive += AWS_MUTUALLY_EXCLUSIVE
            required_together += AWS_REQUIRED_TOGETHER
        spec.update(argument_spec or {})
        kwargs.setdefault("supports_check_mode", True)
        self.module = AnsibleModule(argument_spec=spec, mutually_exclusive=mutually_exclusive or None,
                                    required_together=required_together or None, **kwargs)
        self.task_type = task_type
        self.aws = aws
        self._runtimes = []
        self._warned = set()

    # -- what modules read --------------------------------------------------
    @property
    def params(self):
        return self.module.params

    @property
    def check_mode(self):
        return self.module.check_mode

    def warn(self, msg):
        msg = redact.text(msg)
        if msg not in self._warned:
            self._warned.add(msg)
            self.module.warn(msg)

    def hide(self, *values):
        """Values Ansible must hide in the whole result (invocation included)."""
        self.module.no_log_values.update(v for v in values if isinstance(v, str) and v)

    def hide_backend_secrets(self, backend_param):
        """Secrets written inside an inline task's backend_param (a free-form
        dict) are hidden like no_log options, even when the task is refused."""
        self.hide(*((backend_param or {}).get(key) for key in BACKEND_SECRET_KEYS))

    # -- config, task, runtime ----------------------------------------------
    @property
    def no_log_values(self):
        return self.module.no_log_values

    def load_config(self, inline_task=None, include=None, execs=None, nb_workers=None, extra=None):
        """The engine Config: from inline arguments when `inline_task` (a raw
        task dict in config syntax) is given, else from the ``config`` file
        on the host (default: the host's default config). Its warnings become
        module warnings, its secrets no_log values."""
        return common.load_config(self, inline_task, include, execs, nb_workers, extra)

    def adopt(self, cfg):
        """A Config the module loaded itself, made known like load_config()'s; -> cfg."""
        return common.warn_config(self, cfg)

    def task(self, cfg, task_id=None):
        """Task `task_id` (default: the ``task`` option) of `cfg`, with the
        module's AWS options applied; a UsageError when it is not of the
        module's task type (call it inside run())."""
        task_id = self.params["task"] if task_id is None else task_id
        task = cfg.task(task_id)
        if self.aws:
            palhm_aws.apply_to_task(task, self.params)
        if self.task_type is not None and task.type != self.task_type:
            raise UsageError("task %s is a %s task, not a %s task" % (schema.show(task_id), task.type, self.task_type))
        return task

    def runtime(self, cfg):
        """A Runtime for `cfg` in the module's check mode; what it logs at
        warning level or worse is forwarded to module.warn at the end."""
        rt = Runtime(cfg, check_mode=self.check_mode)
        self._runtimes.append(rt)
        return rt

    # -- results and errors --------------------------------------------------
    def _forward_warnings(self):
        for rt in self._runtimes:
            for level, msg in rt.messages:
                if level <= VL_WARNING:
                    self.warn(msg)

    def run(self, fn, details=None, redact_result=True, **fail_extra):
        """fn() -> its result (redact.walk()ed unless `redact_result` is
        false). A PalhmError fails the module (see fail_error()), with
        `details(err)` (a dict, or None) and `fail_extra` added; anything
        else is an internal error."""
        try:
            result = fn()
        except PalhmError as e:
            extra = dict(fail_extra)
            extra.update((details(e) if details else None) or {})
            self.fail_error(e, **extra)
        except Exception as e:  # pylint: disable=broad-except
            self.fail_internal(e, **fail_extra)
        return redact.walk(result) if redact_result else result

    def fail_error(self, err, msg=None, **extra):
        """fail_json for a PalhmError: one-line msg, error_type, exit_code;
        a missing library is named the way Ansible names them."""
        text = one_line(msg if msg is not None else err)
        if isinstance(err, MissingLibraryError):
            text = "%s (%s)" % (missing_required_lib(err.library), text)
        self.fail_json(msg=text, error_type=type(err).__name__, exit_code=err.exit_code, **extra)

    def fail_internal(self, err, **extra):
        """fail_json for a bug: one line, the traceback in ``exception``."""
        self.fail_json(msg="palhm internal error: %s: %s" % (type(err).__name__, one_line(err)),
                       error_type=type(err).__name__, exception=redact.text(traceback.format_exc()), **extra)

    def fail_json(self, **result):
        self._forward_warnings()
        result["msg"] = redact.text(result.get("msg", "palhm failed"))
        self.module.fail_json(**result)

    def exit_json(self, **result):
        self._forward_warnings()
        result.setdefault("changed", False)
        self.module.exit_json(**result)

    # -- JMESPath query (palhm_backup_info, palhm_status) ----------------------
    def compile_query(self):
        """Before anything is read: the ``query`` option needs jmespath on the
        host (missing_required_lib otherwise) and must compile; -> the
        compiled expression or None."""
        expression = self.params.get("query")
        if expression is None:
            return None
        return self.run(lambda: palhm_query.compile_expression(expression, what="query"), redact_result=False)

    def add_query_result(self, compiled, result):
        """result + ``query_result``: what `compiled` selects from `result`."""
        if compiled is not None:
            result["query_result"] = self.run(lambda: palhm_query.search(compiled, result, what="query"))
        return result
