# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PalhmModule, the modules' one front door: options merged, errors mapped
to fail_json (never a crash), config secrets hidden, warnings forwarded; and
each module's option mapping."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.palhm.palhm.plugins.module_utils import _module
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import bootreport
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import MissingLibraryError, StageError
from ansible_collections.palhm.palhm.plugins.modules import (
    palhm_backup, palhm_boot_report, palhm_dnssec_check, palhm_routine)


class Exited(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


@pytest.fixture(autouse=True)
def capture_exit(monkeypatch):
    """exit_json/fail_json raise Exited with the result as Ansible would
    return it (no_log values removed)."""
    def finish(module, result, failed):
        raise Exited(json.loads(json.dumps(basic.remove_values(result, module.no_log_values))), failed)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", lambda self, **result: finish(self, result, False))
    monkeypatch.setattr(basic.AnsibleModule, "fail_json",
                        lambda self, msg, **result: finish(self, dict(result, msg=msg), True))


def raiser(err):
    def fn():
        raise err
    return fn


def run_module(main, args):
    with patch_module_args(args):
        with pytest.raises(Exited) as info:
            main()
    return info.value


def test_config_task_and_aws_options_are_merged_with_the_amazon_aws_rules():
    with patch_module_args({"profile": "prof", "access_key": "AKIAEXAMPLE", "secret_key": "wJalrXUtnFEMI"}):
        with pytest.raises(Exited) as info:
            _module.PalhmModule(argument_spec={"extra": {"type": "str"}}, aws=True)
    assert info.value.failed and "mutually exclusive" in info.value.result["msg"]
    with patch_module_args({"aws_region": "eu-west-1", "extra": "x"}):
        module = _module.PalhmModule(argument_spec={"extra": {"type": "str"}}, aws=True)
    assert module.params["region"] == "eu-west-1" and module.params["task"] == "default"
    assert module.params["config"] is None and module.params["extra"] == "x"
    assert module.check_mode is False


def test_a_palhm_error_fails_with_its_type_exit_code_and_details():
    with patch_module_args({}):
        module = _module.PalhmModule()
    err = StageError("task t, step 1", ["sh", "-c", "x", "password=hunter2"], 3, "boom\nagain")
    with pytest.raises(Exited) as info:
        module.run(raiser(err), details=lambda e: {"steps": ["s"]}, task="t")
    got = info.value.result
    assert info.value.failed
    assert got["error_type"] == "StageError" and got["exit_code"] == 1
    assert got["steps"] == ["s"] and got["task"] == "t"
    assert "\n" not in got["msg"] and "hunter2" not in got["msg"] and "boom | again" in got["msg"]


def test_a_missing_library_is_named_like_ansible_names_them():
    with patch_module_args({}):
        module = _module.PalhmModule()
    with pytest.raises(Exited) as info:
        module.run(raiser(MissingLibraryError("boto3", "the aws-s3 backend")))
    assert "Failed to import the required Python library (boto3)" in info.value.result["msg"]
    assert info.value.result["error_type"] == "MissingLibraryError"


def test_a_bug_in_the_boot_report_is_a_one_line_internal_error_not_a_crash(monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("first line\nsecond line")

    monkeypatch.setattr(bootreport, "run", broken)
    got = run_module(palhm_boot_report.main, {"mua": "stdout", "mail_to": ["root"]})
    assert got.failed
    assert got.result["msg"].startswith("palhm internal error: KeyError: ")
    assert "\n" not in got.result["msg"]
    assert "Traceback" in got.result["exception"] and "broken" in got.result["exception"]


def test_config_secrets_are_hidden_from_the_whole_result(tmp_path):
    conf = tmp_path / "palhm.json"
    conf.write_text(json.dumps({"boot-report": {
        "mua": "smtp", "mail-to": ["root@localhost"],
        "mua-param": {"host": "127.0.0.1", "port": 9, "password": "sekrit-pw-42", "username": "u", "tls": "tls"}}}))
    got = run_module(palhm_boot_report.main, {"config": str(conf)})
    assert "sekrit-pw-42" not in json.dumps(got.result)


def test_a_task_of_another_type_is_refused_once_for_every_module(tmp_path):
    conf = tmp_path / "palhm.json"
    conf.write_text(json.dumps({"tasks": [{"id": "r", "type": "routine", "routine": []}]}))
    got = run_module(palhm_backup.main, {"config": str(conf), "task": "r"})
    assert got.failed and got.result["error_type"] == "UsageError"
    assert got.result["msg"] == 'task "r" is a routine task, not a backup task'
    got = run_module(palhm_dnssec_check.main, {"config": str(conf), "task": "r"})
    assert got.result["msg"] == 'task "r" is a routine task, not a dnssec-check task'


def test_a_failed_routine_returns_its_steps_and_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("PALHM_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("PALHM_STATE_DIR", str(tmp_path / "state"))
    got = run_module(palhm_routine.main, {"task": "r", "routine": [
        {"type": "exec-inline", "argv": ["sh", "-c", "exit 4"]}]})
    assert got.failed and got.result["changed"] is True
    assert [s["rc"] for s in got.result["steps"]] == [4]


# -- option mapping --------------------------------------------------------------
def test_backup_options_map_to_an_inline_task_only_when_given():
    params = {"task": "t", "backend": None, "objects": None, "backend_param": None, "object_groups": None}
    assert palhm_backup.inline_task(params) is None
    params.update(backend="localfs", backend_param={"root": "/r"})
    assert palhm_backup.inline_task(params) == {"id": "t", "type": "backup", "backend": "localfs",
                                                "backend-param": {"root": "/r"}, "objects": []}


def test_boot_report_options_map_to_boot_report_keys():
    params = {k: None for k in palhm_boot_report._KEYS}
    params.update(mua="smtp", mail_to=["a@b"], uptime_since=False,
                  mua_param={"host": "h", "int_opts": None, "port": None, "tls": "starttls"})
    spec = palhm_boot_report.spec_from_options(params)
    assert spec.mua == "smtp" and spec.mail_to == ["a@b"] and spec.uptime_since is False
    assert spec.mua_param["host"] == "h" and spec.mua_param["port"] == 587


def test_dnssec_options_map_to_kebab_case_task_keys():
    params = {opt: None for opt in palhm_dnssec_check.CHECK_OPTIONS}
    params.update(min_days_left=2.5, allow_insecure=True)
    assert palhm_dnssec_check._options(params) == {"min-days-left": 2.5, "allow-insecure": True}
