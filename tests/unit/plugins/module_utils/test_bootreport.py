# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot report's pure logic: config validation, the YAML body, and
clean versus unclean shutdown detection with a temporary state directory."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible_collections.palhm.palhm.plugins.module_utils.palhm import bootreport
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import ConfigError, StageError, TaskFailed

NASTY = "evil: host # not a comment ' \" {} [] & * ! | > % @ `\nsecond: line\t\x07\x85\u2028 caf\u00e9 \U0001f600"


def spec(**values):
    base = {"mua": "stdout", "mail-to": ["root"]}
    base.update(values)
    return bootreport.parse_config(base, {k: "boot-report." + k for k in base})


def facts(**over):
    base = {"hostname": "web1", "kernel-release": "6.1.0-test", "time-zone": "Europe/Berlin",
            "utc-offset": "+0100", "uptime-secs": 3 * 3600 + 125, "bootid": "b-1"}
    base.update(over)
    return base


UNKNOWN = {"shutdown": "unknown"}


# --- config ---------------------------------------------------------------
def test_defaults_match_the_original():
    s = spec()
    assert s.subject == "Boot Report from {hostname}"
    assert (s.uptime_since, s.uptime, s.bootid, s.boot_wait, s.delay) == (True, True, True, None, 0)


@pytest.mark.parametrize("values, path, words", [
    ({"mail-to": ["root"], "mua": "pigeon"}, "boot-report.mua", "must be one of"),
    ({"mua": "smtp"}, "boot-report.mail-to", "required"),
    ({"mua": "smtp", "mail-to": []}, "boot-report.mail-to", "at least one"),
    ({"mua": "smtp", "mail-to": ["root"], "uptimes": True}, "boot-report.uptimes", "did you mean 'uptime'"),
    ({"mua": "smtp", "mail-to": ["root"], "delay": -1}, "boot-report.delay", ">= 0"),
    ({"mua": "smtp", "mail-to": ["root"], "delay": "inf"}, "boot-report.delay", "finite"),
    ({"mua": "smtp", "mail-to": ["root"], "bootid": "yes"}, "boot-report.bootid", "boolean"),
    ({"mua": "smtp", "mail-to": ["root"], "boot-wait": "sysv"}, "boot-report.boot-wait", "systemd"),
    ({"mua": "smtp", "mail-to": ["root"], "mua-param": {"port": 70000}}, "boot-report.mua-param.port", "<= 65535"),
    ({"mua": "smtp", "mail-to": ["root"], "mua-param": {"tls": "ssl"}}, "boot-report.mua-param.tls", "one of"),
    ({"mua": "smtp", "mail-to": ["root"], "mua-param": {"username": "u", "password": "hunter2"}},
     "boot-report.mua-param.tls", "clear text"),
    ({"mua": "smtp", "mail-to": ["root"], "mua-param": {"username": "u", "tls": "tls"}},
     "boot-report.mua-param.password", "go together"),
    ({"mua": "mailx", "mail-to": ["root"], "mua-param": {"region": "x"}}, "boot-report.mua-param.region",
     "unknown key"),
    ({"mua": "mailx", "mail-to": ["root"], "mua-param": {"int-opts": "mta=x"}}, "boot-report.mua-param.int-opts",
     "list"),
    ({"mua": "mailx", "mail-to": ["root", "-X/tmp/evil"]}, "boot-report.mail-to[1]", "must not start with '-'"),
    ({"mua": "smtp", "mail-to": ["a@b\nBcc: c@d"]}, "boot-report.mail-to[0]", "control characters"),
    ({"mua": "aws-sns", "mail-to": ["root"]}, "boot-report.mail-to[0]", "ARN"),
])
def test_config_errors_name_the_json_path(values, path, words):
    with pytest.raises(ConfigError) as e:
        bootreport.parse_config(values, {k: "boot-report." + k for k in values})
    assert e.value.path == path
    assert words in str(e.value)


def test_errors_use_the_paths_given_by_the_config_loader():
    with pytest.raises(ConfigError) as e:
        bootreport.parse_config({"mua": "smtp", "mail-to": ["root"], "delay": -1},
                                {"mua": "conf.d/a.json: boot-report.mua", "delay": "b.json: boot-report.delay"})
    assert str(e.value).startswith("b.json: boot-report.delay:")


def test_describe_hides_the_smtp_password():
    s = spec(mua="smtp", **{"mua-param": {"username": "u", "password": "hunter2", "tls": "starttls"}})
    described = s.describe()
    assert "hunter2" not in json.dumps(described)
    assert described["mua-param"]["port"] == 587


def test_mua_param_defaults():
    assert spec(mua="mailx").mua_param == {"exec": "mailx", "int-opts": []}
    assert spec(mua="sendmail").mua_param == {"exec": "/usr/sbin/sendmail"}
    assert spec(mua="smtp", **{"mua-param": {"tls": "tls"}}).mua_param["port"] == 465


# --- the YAML body ----------------------------------------------------------
def test_body_parses_whatever_the_host_name_and_header_hold():
    s = spec(header="{hostname}: " + NASTY + "\n\n# already a comment\n", subject="{hostname} {} up")
    subject, body = bootreport.compose(s, now=1700000000, facts=facts(hostname=NASTY), previous=UNKNOWN)
    doc = yaml.safe_load(body)
    assert doc["hostname"] == NASTY
    assert "\n" not in subject and "{}" in subject
    # The header is only comments: the document's first key is the host name.
    assert list(doc)[0] == "hostname"
    assert all(line.startswith("#") for line in body.split("hostname:", 1)[0].splitlines())
    body.encode("ascii")  # 7-bit clean for every MUA


@pytest.mark.parametrize("text", ["", "plain", "null", "true", "- a", "a: b", "#x", "'", '"', "\\", "\\n",
                                  " lead", "trail ", "\r\n", "\x00\x1b[31m", "\ud800", "\ufeff", "\U0010ffff"])
def test_yaml_strings_read_back_exactly(text):
    doc = yaml.safe_load("k: %s\n" % bootreport.yaml_str(text))
    expected = text.replace("\ud800", "\ufffd")
    assert doc["k"] == expected


def test_nested_values_and_empty_collections():
    doc = {"a": {"b": [1, "x", {"c": None, "d": [True]}], "e": []}, "f": {}, "g": 1.5}
    assert yaml.safe_load(bootreport.to_yaml(doc, "h")) == doc


def test_body_keys_follow_the_switches():
    s = spec(**{"uptime-since": False, "uptime": True, "bootid": False})
    dummy, body = bootreport.compose(s, now=1700000000, facts=facts(), previous=UNKNOWN)
    doc = yaml.safe_load(body)
    assert "uptime-since" not in doc and "bootid" not in doc
    assert doc["uptime"] == "up 3 hours, 2 minutes"
    assert doc["kernel-release"] == "6.1.0-test"
    assert doc["previous-shutdown"] == "unknown"


def test_boot_wait_state_and_failed_units_are_reported():
    s = spec(**{"boot-wait": "systemd"})
    f = facts(**{"boot-wait": {"state": "degraded", "failed-units": ["a.service", "b: c.mount"]}})
    doc = yaml.safe_load(bootreport.compose(s, now=0, facts=f, previous=UNKNOWN)[1])
    assert doc["boot-wait"] == {"state": "degraded", "failed-units": ["a.service", "b: c.mount"]}


@pytest.mark.parametrize("secs, text", [
    (0, "up 0 minutes"), (59, "up 0 minutes"), (60, "up 1 minute"), (3600 + 120, "up 1 hour, 2 minutes"),
    (8 * 86400 + 60, "up 1 week, 1 day, 1 minute"), (366 * 86400, "up 1 year, 1 day"),
])
def test_pretty_uptime_reads_like_uptime_p(secs, text):
    assert bootreport.pretty_uptime(secs) == text


def test_sns_subject_is_short_printable_ascii():
    out = bootreport.sns_subject("x" * 200 + "\n\u00e9")
    assert len(out) < 100 and out.isascii() and "\n" not in out
    assert bootreport.sns_subject("caf\u00e9 up") == "caf? up"


# --- clean and unclean shutdowns --------------------------------------------
def boot(n, pid1=100):
    return {"bootid": "boot-%d" % n, "pid1-start": pid1, "start": 1000.0 * n}


def test_first_report_on_a_host_knows_nothing(tmp_path):
    prev = bootreport.record_boot(str(tmp_path), boot(1))
    assert prev["shutdown"] == "unknown"


def test_a_clean_shutdown_is_reported_with_start_and_end(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1))
    bootreport.mark_clean_shutdown(d, boot(1), now=1500.0)
    prev = bootreport.record_boot(d, boot(2))
    assert (prev["shutdown"], prev["bootid"], prev["start"], prev["end"]) == ("clean", "boot-1", 1000.0, 1500.0)
    s = spec()
    doc = yaml.safe_load(bootreport.compose(s, now=2500, facts=facts(), previous=prev)[1])
    assert doc["previous-shutdown"] == "clean"
    assert doc["previous-boot"]["bootid"] == "boot-1"
    assert doc["previous-boot"]["end"] is not None


def test_a_crash_leaves_no_clean_record(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1))
    # boot 1 crashes: ExecStop never runs.
    prev = bootreport.record_boot(d, boot(2))
    assert (prev["shutdown"], prev["bootid"], prev["end"]) == ("unclean", "boot-1", None)


def test_a_clean_record_counts_once(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1))
    bootreport.mark_clean_shutdown(d, boot(1), now=1500.0)
    assert bootreport.record_boot(d, boot(2))["shutdown"] == "clean"
    # boot 2 crashes; the old clean record of boot 1 must not vouch for it.
    prev = bootreport.record_boot(d, boot(3))
    assert (prev["shutdown"], prev["bootid"]) == ("unclean", "boot-2")


def test_a_report_sent_again_in_the_same_boot_says_the_same(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1))
    bootreport.mark_clean_shutdown(d, boot(1), now=1500.0)
    first = bootreport.record_boot(d, boot(2))
    assert bootreport.record_boot(d, boot(2)) == first


def test_a_unit_restart_does_not_vouch_for_the_rest_of_the_boot(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1))
    bootreport.mark_clean_shutdown(d, boot(1), now=1100.0)  # systemctl restart: stop...
    bootreport.record_boot(d, boot(1))  # ...and start again
    # then boot 1 crashes
    prev = bootreport.record_boot(d, boot(2))
    assert prev["shutdown"] == "unclean"


def test_a_container_reboot_keeps_the_kernel_boot_id_but_is_a_new_boot(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1, pid1=100))
    bootreport.mark_clean_shutdown(d, boot(1, pid1=100), now=1500.0)
    prev = bootreport.record_boot(d, boot(1, pid1=900))
    assert (prev["shutdown"], prev["end"]) == ("clean", 1500.0)


def test_a_clean_boot_whose_report_failed_to_record_is_still_the_previous_one(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1))
    # boot 2's report never recorded it, but boot 2 ended cleanly.
    bootreport.mark_clean_shutdown(d, boot(2), now=2500.0)
    prev = bootreport.record_boot(d, boot(3))
    assert (prev["shutdown"], prev["bootid"], prev["end"]) == ("clean", "boot-2", 2500.0)


def test_torn_or_foreign_state_files_prove_nothing(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1))
    (tmp_path / bootreport.CLEAN_RECORD).write_text('{"bootid": "boot-1", "pid1-')
    assert bootreport.record_boot(d, boot(2))["shutdown"] == "unclean"


def test_check_mode_peeks_without_writing(tmp_path):
    d = str(tmp_path)
    bootreport.record_boot(d, boot(1))
    bootreport.mark_clean_shutdown(d, boot(1), now=1500.0)
    before = sorted(os.listdir(d))
    assert bootreport.peek_previous(d, boot(2))["shutdown"] == "clean"
    assert sorted(os.listdir(d)) == before
    assert bootreport.record_boot(d, boot(2))["shutdown"] == "clean"


def test_state_files_are_replaced_atomically(tmp_path):
    path = str(tmp_path / "x.json")
    bootreport.write_atomically(path, b"one")
    bootreport.write_atomically(path, b"two")
    assert open(path, "rb").read() == b"two"
    assert os.listdir(str(tmp_path)) == ["x.json"]


def test_run_in_check_mode_writes_no_state(tmp_path, monkeypatch):
    monkeypatch.setenv("PALHM_STATE_DIR", str(tmp_path / "state"))
    out = bootreport.run(spec(mua="mailx", **{"mua-param": {"exec": "/nonexistent"}}), check_mode=True)
    assert out["sent"] is False and out["changed"] is True
    assert not (tmp_path / "state").exists()
    assert yaml.safe_load(out["body"])["previous-shutdown"] == "unknown"


def test_run_then_mark_clean_then_next_report(tmp_path, monkeypatch):
    monkeypatch.setenv("PALHM_STATE_DIR", str(tmp_path))
    out = bootreport.run(spec())
    assert out["sent"] is False and out["previous_shutdown"] == "unknown"
    marked = bootreport.run(spec(), mark_clean=True)
    assert marked["marked_clean"] is True
    # Same boot, so the report still says what it said first...
    assert bootreport.run(spec())["previous_shutdown"] == "unknown"
    # ...and the clean record of the ongoing boot was withdrawn.
    assert not (tmp_path / bootreport.CLEAN_RECORD).exists()


# --- MUAs failing -----------------------------------------------------------
def test_a_failing_mailx_fails_with_its_exit_code_and_stderr(tmp_path):
    script = tmp_path / "mailx"
    script.write_text("#!/bin/sh\ncat >/dev/null\necho 'no route to mail server' >&2\nexit 4\n")
    script.chmod(0o755)
    s = spec(mua="mailx", **{"mua-param": {"exec": str(script), "int-opts": ["mta=smtp://x"]}})
    with pytest.raises(StageError) as e:
        bootreport.send(s, "subj", "body")
    assert e.value.returncode == 4 and "no route to mail server" in str(e.value)
    assert e.value.argv == [str(script), "-s", "subj", "-S", "mta=smtp://x", "root"]


def test_a_missing_mua_command_fails(tmp_path):
    s = spec(mua="sendmail", **{"mua-param": {"exec": str(tmp_path / "nope")}})
    with pytest.raises(TaskFailed, match="command not found"):
        bootreport.send(s, "subj", "body")


def test_sendmail_gets_headers_on_stdin(tmp_path):
    out = tmp_path / "msg"
    script = tmp_path / "sendmail"
    script.write_text("#!/bin/sh\necho \"$@\" >%s.argv\ncat >%s\n" % (out, out))
    script.chmod(0o755)
    s = spec(mua="sendmail", **{
        "mail-to": ["a@example.com", "b@example.com"],
        "mua-param": {"exec": str(script), "sender": "r@example.com"}})
    bootreport.send(s, "Boot Report from web1", "k: \"v\"\n")
    text = out.read_text()
    assert (tmp_path / "msg.argv").read_text().strip() == "-t -i -f r@example.com"
    assert "To: a@example.com, b@example.com" in text
    assert "Subject: Boot Report from web1" in text and "From: r@example.com" in text


def test_smtp_to_a_closed_port_fails_without_the_password(tmp_path):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    s = spec(mua="smtp", **{"mua-param": {"host": "127.0.0.1", "port": port, "tls": "tls",
                                          "username": "u", "password": "hunter2", "timeout": 5}})
    with pytest.raises(TaskFailed) as e:
        bootreport.send(s, "subj", "body")
    assert "127.0.0.1:%d" % port in str(e.value)
    assert "hunter2" not in str(e.value)


def test_a_state_dir_that_cannot_be_written_does_not_stop_the_report(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("PALHM_STATE_DIR", str(blocker / "state"))
    out = bootreport.run(spec())
    assert out["previous_shutdown"] == "unknown"
    with pytest.raises(TaskFailed, match="cannot"):
        bootreport.mark_clean_shutdown()
