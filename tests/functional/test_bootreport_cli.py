# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`palhm boot-report` as cron and systemd run it: real SMTP delivery to an
aiosmtpd server on 127.0.0.1, exit codes, and the clean-shutdown records the
unit's ExecStop leaves for the next boot."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import socket

import pytest
import yaml

BODY_KEYS = {"hostname", "kernel-release", "time-zone", "utc-offset", "report-time", "uptime-since", "uptime",
             "bootid", "previous-shutdown"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sink(tmp_path):
    """An SMTP server on 127.0.0.1 storing every message in a Maildir."""
    import aiosmtpd.controller as controller_mod  # a test dependency: missing fails
    from aiosmtpd import handlers
    path = tmp_path / "Maildir"
    ctl = controller_mod.Controller(handlers.Mailbox(str(path)), hostname="127.0.0.1", port=free_port())
    ctl.start()
    ctl.maildir = path
    yield ctl
    ctl.stop()


def messages(maildir):
    box = mailbox.Maildir(str(maildir), create=False)
    out = []
    for key in box.keys():
        with box.get_file(key) as f:
            out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
    return out


def state(palhm, name):
    path = palhm.tmp / "state" / name
    return json.loads(path.read_text()) if path.exists() else None


def report(palhm, **br):
    doc = {"mua": "stdout", "mail-to": ["root"]}
    doc.update(br)
    palhm.write_config({"boot-report": doc})


def stdout_body(res):
    assert res.stdout.startswith("Subject: "), res.stdout
    subject, body = res.stdout.split("\n\n", 1)
    return subject[len("Subject: "):], yaml.safe_load(body)


def test_stdout_report_is_a_yaml_document_and_records_the_boot(palhm):
    report(palhm, subject="{hostname} is up")
    res = palhm("boot-report")
    assert res.returncode == 0, res.stderr
    subject, body = stdout_body(res)
    assert subject == "%s is up" % socket.gethostname()
    assert BODY_KEYS <= set(body)
    assert body["hostname"] == socket.gethostname()
    assert body["previous-shutdown"] == "unknown"
    assert state(palhm, "boot-record.json")["bootid"] == body["bootid"]


def test_header_with_yaml_specials_and_newlines_still_parses(palhm):
    header = "{hostname}: # not: a key\n- 'single' \"double\" {} [] & *\n\n  indented | >"
    report(palhm, header=header)
    res = palhm("boot-report")
    assert res.returncode == 0, res.stderr
    dummy, body = stdout_body(res)
    assert BODY_KEYS <= set(body)
    assert res.stdout.split("\n\n", 1)[1].startswith("# %s: # not: a key\n# - 'single'" % socket.gethostname())


def test_switches_leave_keys_out(palhm):
    report(palhm, **{"uptime-since": False, "uptime": False, "bootid": False})
    res = palhm("boot-report")
    assert res.returncode == 0, res.stderr
    dummy, body = stdout_body(res)
    assert not {"uptime-since", "uptime", "bootid"} & set(body)


def test_mark_clean_shutdown_then_the_next_boot_reports_clean(palhm):
    report(palhm)
    assert palhm("boot-report").returncode == 0
    res = palhm("boot-report", "--mark-clean-shutdown")
    assert res.returncode == 0, res.stderr
    clean = state(palhm, "clean-shutdown.json")
    record = state(palhm, "boot-record.json")
    assert clean["bootid"] == record["bootid"] and clean["end"] >= record["start"]
    # Pretend that boot is over: the records now describe an earlier boot.
    for name in ("boot-record.json", "clean-shutdown.json"):
        doc = state(palhm, name)
        doc["bootid"] = "earlier-boot"
        (palhm.tmp / "state" / name).write_text(json.dumps(doc))
    res = palhm("boot-report")
    assert res.returncode == 0, res.stderr
    dummy, body = stdout_body(res)
    assert body["previous-shutdown"] == "clean"
    assert body["previous-boot"]["bootid"] == "earlier-boot"
    assert body["previous-boot"]["end"] is not None
    assert state(palhm, "clean-shutdown.json") is None  # it counts once


def test_a_boot_without_a_clean_record_was_unclean(palhm):
    report(palhm)
    assert palhm("boot-report").returncode == 0
    doc = state(palhm, "boot-record.json")
    doc["bootid"] = "crashed-boot"
    (palhm.tmp / "state" / "boot-record.json").write_text(json.dumps(doc))
    res = palhm("boot-report")
    assert res.returncode == 0, res.stderr
    dummy, body = stdout_body(res)
    assert body["previous-shutdown"] == "unclean"
    assert body["previous-boot"]["bootid"] == "crashed-boot"
    assert body["previous-boot"]["end"] is None


def test_mark_clean_shutdown_needs_no_configuration(palhm):
    res = palhm("boot-report", "--mark-clean-shutdown", config=False)
    assert res.returncode == 0, res.stderr
    assert state(palhm, "clean-shutdown.json")["bootid"]


def test_smtp_delivers_to_every_recipient(palhm, sink):
    report(palhm, mua="smtp", **{"mail-to": ["ops@example.test", "oncall@example.test"],
                                 "mua-param": {"host": "127.0.0.1", "port": sink.port,
                                               "sender": "palhm@example.test"}})
    res = palhm("boot-report")
    assert res.returncode == 0, res.stderr
    [msg] = messages(sink.maildir)
    assert msg["Subject"] == "Boot Report from %s" % socket.gethostname()
    assert [a.addr_spec for a in msg["To"].addresses] == ["ops@example.test", "oncall@example.test"]
    assert sorted(r.strip() for r in msg["X-RcptTo"].split(",")) == ["oncall@example.test", "ops@example.test"]
    assert BODY_KEYS <= set(yaml.safe_load(msg.get_body(("plain",)).get_content()))


def test_mailx_with_int_opts_delivers(palhm, sink, tmp_path):
    report(palhm, mua="mailx", **{"mail-to": ["ops@example.test"],
                                  "mua-param": {"exec": "s-nail", "int-opts": [
                                      "v15-compat", "mta=smtp://127.0.0.1:%d" % sink.port, "smtp-auth=none",
                                      "from=palhm@example.test", "DEAD=%s" % (tmp_path / "dead.letter")]}})
    res = palhm("boot-report")
    assert res.returncode == 0, res.stderr
    [msg] = messages(sink.maildir)
    assert msg["Subject"] == "Boot Report from %s" % socket.gethostname()
    assert BODY_KEYS <= set(yaml.safe_load(msg.get_body(("plain",)).get_content()))


def test_smtp_server_down_exits_1_with_the_error(palhm):
    port = free_port()
    report(palhm, mua="smtp", **{"mua-param": {"host": "127.0.0.1", "port": port, "timeout": 5}})
    res = palhm("boot-report")
    assert res.returncode == 1
    assert res.stderr.startswith("palhm: boot report (smtp 127.0.0.1:%d): " % port)
    assert "refused" in res.stderr


def test_mailx_failure_exits_1_with_its_exit_code(palhm, tmp_path):
    fake = tmp_path / "mailx"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'mailx: cannot reach the relay' >&2\nexit 3\n")
    fake.chmod(0o755)
    report(palhm, mua="mailx", **{"mua-param": {"exec": str(fake)}})
    res = palhm("boot-report")
    assert res.returncode == 1
    assert "exited with code 3" in res.stderr and "cannot reach the relay" in res.stderr


def test_config_errors_exit_2_and_name_the_key(palhm):
    report(palhm, **{"delay": -5})
    res = palhm("boot-report")
    assert res.returncode == 2
    assert "boot-report.delay" in res.stderr and ">= 0" in res.stderr


def test_no_boot_report_in_the_config_exits_2(palhm):
    palhm.write_config({"tasks": []})
    res = palhm("boot-report")
    assert res.returncode == 2
    assert "boot-report" in res.stderr
