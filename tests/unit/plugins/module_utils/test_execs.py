# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exec definitions: accepted exit codes written like the original, and the
three pipeline item types."""

from __future__ import annotations

import pytest

from ansible_collections.palhm.palhm.plugins.module_utils.palhm import execs
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import ConfigError


def accepted(ec, codes=range(-3, 300)):
    rule = execs.parse_ec(ec, "execs[0].ec")
    return [c for c in codes if rule.accepts(c)]


@pytest.mark.parametrize("ec,expected", [
    ("0-2", [0, 1, 2]),
    ("1-1", [1]),
    ("<2", [0, 1]),
    ("<=1", [0, 1]),
    ("<256", list(range(0, 256))),
    (">-1", list(range(0, 256))),
    ("250-255", [250, 251, 252, 253, 254, 255]),
    ("==0", [0]),
    ("0", [0]),
    (" == 3 ", [3]),
    (3, [3]),
])
def test_accepted_exit_codes_follow_the_original_grammar(ec, expected):
    assert accepted(ec) == expected


def test_greater_or_equal_zero_accepts_any_exit():
    # Exit codes are 0..255: "any" means any exit, never a death by a signal.
    assert accepted(">=0") == list(range(0, 256))
    assert accepted(">1") == list(range(2, 256))


def test_tar_with_ec_below_2_accepts_files_changed_while_read():
    # GNU tar exits 1 when a file changed during the read; the original's core.json uses "<2".
    rule = execs.parse_ec("<2", "x")
    assert rule.accepts(0) and rule.accepts(1) and not rule.accepts(2)


def test_a_stage_killed_by_a_signal_is_never_accepted_by_the_default():
    assert not execs.DEFAULT_EC.accepts(-9)
    assert not execs.DEFAULT_EC.accepts(None)
    assert execs.DEFAULT_EC.accepts(0)


@pytest.mark.parametrize("ec", ["<2", "<=1", ">=0", "<256", ">-1", "0-255", "==0"])
def test_a_stage_killed_by_a_signal_is_never_accepted_whatever_its_ec(ec):
    # A tar killed by SIGKILL or the OOM killer returns -9: its archive is cut short.
    rule = execs.parse_ec(ec, "x")
    assert not any(rule.accepts(-sig) for sig in range(1, 65))


@pytest.mark.parametrize("bad", ["<0", ">255", "==256", "0-256", "-1-2", "==-1", "<=-1", ">=256", "<257", 300])
def test_exit_codes_outside_0_to_255_are_config_errors(bad):
    with pytest.raises(ConfigError) as exc:
        execs.parse_ec(bad, "execs[1].ec")
    assert exc.value.path == "execs[1].ec"
    assert "0 to 255" in str(exc.value)


@pytest.mark.parametrize("bad", ["", "2-0", "=>0", "<", "0-", "-", "abc", "0..2", "!=0", "<<1", "1,2", True, [0]])
def test_bad_exit_code_specs_name_the_path(bad):
    with pytest.raises(ConfigError) as exc:
        execs.parse_ec(bad, "execs[4].ec")
    assert exc.value.path == "execs[4].ec"


def test_exec_definition_keeps_argv_env_ec_and_verbosity():
    ex = execs.parse_exec_def({"id": "tar", "argv": ["tar", "-c"], "env": {"LC_ALL": "C"}, "ec": "<2",
                               "vl-stderr": 2, "vl-stdout": "4"}, "execs[0]")
    assert ex.argv == ("tar", "-c")
    assert ex.env == {"LC_ALL": "C"}
    assert ex.ec.accepts(1) and not ex.ec.accepts(2)
    assert (ex.vl_stderr, ex.vl_stdout) == (2, 4)


def test_exec_defaults_are_those_of_the_original():
    ex = execs.parse_exec_def({"id": "cat", "argv": ["cat"]}, "execs[0]")
    assert ex.ec.text == "==0"
    assert (ex.vl_stderr, ex.vl_stdout) == (1, 3)


@pytest.mark.parametrize("raw,path", [
    ({"argv": ["x"]}, "execs[0].id"),
    ({"id": "x"}, "execs[0].argv"),
    ({"id": "x", "argv": []}, "execs[0].argv"),
    ({"id": "x", "argv": [""]}, "execs[0].argv[0]"),
    ({"id": "x", "argv": ["a", 3]}, "execs[0].argv[1]"),
    ({"id": "x", "argv": ["a"], "env": {"A": 1}}, "execs[0].env.A"),
    ({"id": "x", "argv": ["a"], "ec": "x"}, "execs[0].ec"),
    ({"id": "x", "argv": ["a"], "vl-stder": 1}, "execs[0].vl-stder"),
])
def test_bad_exec_definitions_name_the_path(raw, path):
    with pytest.raises(ConfigError) as exc:
        execs.parse_exec_def(raw, "execs[0]")
    assert exc.value.path == path


def test_exec_append_adds_arguments_and_environment_to_the_defined_exec():
    tar = execs.parse_exec_def({"id": "tar", "argv": ["tar", "-c"], "env": {"A": "1"}, "ec": "<2"}, "execs[0]")
    ex = execs.parse_item({"type": "exec-append", "exec-id": "tar", "argv": ["-C", "/", "etc"],
                           "env": {"B": "2"}}, "p[0]", {"tar": tar})
    assert ex.argv == ("tar", "-c", "-C", "/", "etc")
    assert ex.env == {"A": "1", "B": "2"}
    assert ex.ec.accepts(1)
    # The definition itself is unchanged for the next user.
    assert tar.argv == ("tar", "-c") and tar.env == {"A": "1"}


def test_exec_refers_to_the_definition_and_unknown_ids_get_a_suggestion():
    zstd = execs.parse_exec_def({"id": "filter-zstd-plain", "argv": ["zstd"]}, "execs[0]")
    assert execs.parse_item({"type": "exec", "exec-id": "filter-zstd-plain"}, "p", {"filter-zstd-plain": zstd}) is zstd
    with pytest.raises(ConfigError) as exc:
        execs.parse_item({"type": "exec", "exec-id": "filter-zstd-plane"}, "p[1]", {"filter-zstd-plain": zstd})
    assert exc.value.path == "p[1].exec-id"
    assert "did you mean 'filter-zstd-plain'" in exc.value.msg


def test_exec_inline_is_a_whole_exec_in_place():
    ex = execs.parse_item({"type": "exec-inline", "argv": ["xz", "-9"], "ec": "0-1"}, "p", {})
    assert ex.argv == ("xz", "-9") and ex.ec.accepts(1)


def test_plain_exec_item_does_not_take_argv():
    cat = execs.parse_exec_def({"id": "cat", "argv": ["cat"]}, "execs[0]")
    with pytest.raises(ConfigError) as exc:
        execs.parse_item({"type": "exec", "exec-id": "cat", "argv": ["-n"]}, "p[0]", {"cat": cat})
    assert exc.value.path == "p[0].argv"
