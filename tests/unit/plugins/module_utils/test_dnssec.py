# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNSSEC check's own logic: how answers are classified, how days left are
counted, and what an admin is told about a wrong dnssec-check task. The real
resolver is exercised by the palhm_dnssec_check integration target and
tests/functional/test_dnssec_cli.py."""

from __future__ import annotations

import datetime
import sys

import pytest

from ansible_collections.palhm.palhm.plugins.module_utils.palhm import dnssec
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import (
    ConfigError,
    MissingLibraryError,
    TaskFailed,
)
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.runtime import VL_INFO, VL_WARNING

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00+00:00
DAY = 86400
Q = dnssec.Query("example.com")
A = dnssec.Query("www.example.com", "A")


def answer(ad=True, days=30.0, rcode="NOERROR", ede=None, records=("example.com. 300 IN SOA ns1 h 1 2 3 4 5",),
           more_sigs=()):
    """A fake resolver answer: the RRSIGs expire `days` (and `more_sigs`) days from NOW."""
    exps = [] if days is None else [int(NOW + days * DAY)] + [int(NOW + d * DAY) for d in more_sigs]
    return dnssec.Reply(rcode=rcode, ad=ad, records=list(records), expirations=exps, ede=ede)


def servfail(code=None, text=None):
    ede = None if code is None else {"code": code, "purpose": dnssec.EDE_PURPOSES[code], "text": text}
    return dnssec.Reply(rcode="SERVFAIL", ede=ede)


def classify(query, reply, cd_reply=None, **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("resolver", "127.0.0.1#53")
    return dnssec.classify(query, reply, cd_reply, **kw)


# --- classification ----------------------------------------------------------

def test_an_answer_with_ad_is_secure_and_counts_the_days_its_signatures_have_left():
    res = classify(Q, answer(days=29.5))
    assert res["status"] == "secure"
    assert res["ok"] is True
    assert res["rcode"] == "NOERROR"
    assert res["days_left"] == 29.5
    assert res["rrsig_expiration"] == "2027-02-13T20:00:00+00:00"
    assert res["records"] == ["example.com. 300 IN SOA ns1 h 1 2 3 4 5"]
    assert "signatures expire 2027-02-13T20:00:00+00:00, in 29.50 days" in res["reason"]


def test_the_earliest_of_several_signatures_counts():
    res = classify(Q, answer(days=30, more_sigs=(12.25, 40)))
    assert res["days_left"] == 12.25


def test_days_left_round_down_so_almost_two_days_never_shows_as_two():
    res = classify(Q, answer(days=2 - 1.0 / DAY))
    assert res["days_left"] == 1.99


def test_signatures_closer_than_the_threshold_fail_the_name():
    res = classify(Q, answer(days=2), min_days_left=7)
    assert res["status"] == "secure"
    assert res["ok"] is False
    assert "less than the 7 days required" in res["reason"]
    assert res["warning"] is None


def test_signatures_closer_than_the_threshold_only_warn_in_warn_mode():
    res = classify(Q, answer(days=2), min_days_left=7, on_expiry="warn")
    assert res["ok"] is True
    assert "less than the 7 days required" in res["warning"]


def test_signatures_just_above_the_threshold_pass():
    assert classify(Q, answer(days=2), min_days_left=1)["ok"] is True
    assert classify(Q, answer(days=7), min_days_left=7)["ok"] is True


def test_servfail_that_resolves_with_cd_is_bogus_with_the_resolvers_extended_error():
    res = classify(A, servfail(6, "signature crypto failed"), answer(ad=False, records=["www A 192.0.2.66"]))
    assert res["status"] == "bogus"
    assert res["ok"] is False
    assert res["rcode"] == "SERVFAIL"
    assert res["ede"] == {"code": 6, "purpose": "DNSSEC Bogus", "text": "signature crypto failed"}
    assert res["records"] == ["www A 192.0.2.66"]  # what the data would have been
    assert "EDE 6 (DNSSEC Bogus): signature crypto failed" in res["reason"]


def test_expired_signatures_are_bogus_and_say_when_they_expired():
    res = classify(Q, servfail(7), answer(ad=False, days=-5))
    assert res["status"] == "bogus"
    assert res["ede"]["code"] == 7
    assert res["days_left"] == -5
    assert "EDE 7 (Signature Expired)" in res["reason"]
    assert "signatures expired 2027-01-10T08:00:00+00:00" in res["reason"]


def test_bogus_without_an_extended_error_says_so():
    res = classify(Q, servfail(), answer(ad=False))
    assert res["status"] == "bogus"
    assert res["ede"] is None
    assert "no extended error" in res["reason"]


@pytest.mark.parametrize("cd_reply", [None, dnssec.Reply(rcode="SERVFAIL"), dnssec.Reply(rcode="REFUSED")])
def test_servfail_also_with_cd_is_unreachable(cd_reply):
    res = classify(Q, servfail(22, "no reachable authority"), cd_reply)
    assert res["status"] == "unreachable"
    assert res["ok"] is False
    assert res["ede"]["code"] == 22
    assert "cannot get an answer from the zone's servers" in res["reason"]


def test_no_answer_at_all_is_unreachable_and_says_what_each_resolver_did():
    res = classify(Q, None, errors=["127.0.0.1#53: no answer within 5s", "::1#53: Connection refused"])
    assert res["status"] == "unreachable"
    assert res["rcode"] is None
    assert res["reason"] == ("no answer from any resolver (127.0.0.1#53: no answer within 5s; "
                             "::1#53: Connection refused)")


def test_a_refusal_is_unreachable():
    res = classify(Q, dnssec.Reply(rcode="REFUSED"))
    assert res["status"] == "unreachable"
    assert res["reason"] == "the resolver answered REFUSED"


def test_an_answer_without_ad_is_insecure_and_fails_unless_allowed():
    res = classify(Q, answer(ad=False, days=None))
    assert res["status"] == "insecure"
    assert res["ok"] is False
    assert "no AD flag" in res["reason"]
    allowed = classify(Q, answer(ad=False, days=None), allow_insecure=True)
    assert allowed["ok"] is True
    assert allowed["reason"].endswith("(allowed)")


def test_an_insecure_answer_never_reports_days_left():
    res = classify(Q, answer(ad=False, days=10))
    assert res["days_left"] is None and res["rrsig_expiration"] is None


def test_a_validated_nxdomain_is_secure_but_not_healthy():
    res = classify(Q, answer(rcode="NXDOMAIN", records=()))
    assert res["status"] == "secure"
    assert res["ok"] is False
    assert "does not exist (NXDOMAIN)" in res["reason"]


def test_a_name_without_the_record_type_is_not_healthy_even_when_allowed_insecure():
    res = classify(A, answer(ad=False, records=(), days=None), allow_insecure=True)
    assert res["ok"] is False
    assert res["reason"].startswith("the name has no A record")


def test_a_secure_answer_without_signatures_passes_without_days():
    res = classify(Q, answer(days=None))
    assert res["ok"] is True and res["days_left"] is None


def test_now_may_be_a_datetime():
    when = datetime.datetime(2027, 1, 15, 8, 0, tzinfo=datetime.timezone.utc)
    assert dnssec._to_epoch(when) == NOW
    assert dnssec._to_epoch(when.replace(tzinfo=None)) == NOW
    assert dnssec._to_epoch(NOW) == NOW


# --- self-check ----------------------------------------------------------------

def test_the_self_check_passes_when_the_must_fail_name_is_bogus():
    out = dnssec.self_check_result(Q, classify(Q, servfail(6), answer(ad=False)))
    assert out["ok"] is True and out["validating"] is True


@pytest.mark.parametrize("ad", [False, True])
def test_the_self_check_fails_when_the_must_fail_name_resolves(ad):
    out = dnssec.self_check_result(Q, classify(Q, answer(ad=ad)))
    assert out["ok"] is False
    assert out["validating"] is False
    assert "does not validate DNSSEC" in out["reason"]


def test_the_self_check_cannot_tell_when_the_resolver_is_unreachable():
    out = dnssec.self_check_result(Q, classify(Q, None, errors=["x"]))
    assert out["ok"] is False
    assert out["validating"] is None
    assert out["reason"].startswith("could not run the resolver self-check")


# --- the check as a whole, with the resolver faked --------------------------------

@pytest.fixture
def fake_resolver(monkeypatch):
    """Answers by name from a dict: name -> (Reply, cd Reply)."""
    answers = {}

    def fake_check_one(query, resolvers, opts, now):
        reply, cd_reply = answers[query.name]
        return dnssec.classify(query, reply, cd_reply, now=now, min_days_left=opts.min_days_left,
                               on_expiry=opts.on_expiry, allow_insecure=opts.allow_insecure,
                               resolver=resolvers[0] + "#53")

    to_epoch = dnssec._to_epoch
    monkeypatch.setattr(dnssec, "check_one", fake_check_one)
    monkeypatch.setattr(dnssec, "_dns", lambda: None)
    # The task runs "now": make that NOW.
    monkeypatch.setattr(dnssec, "_to_epoch", lambda now: NOW if now is None else to_epoch(now))
    return answers


def test_check_reports_every_name_and_one_problem_line_per_unhealthy_one(fake_resolver):
    fake_resolver.update({
        "good.example": (answer(days=20), None),
        "broken.example": (servfail(6, "crypto"), answer(ad=False)),
        "plain.example": (answer(ad=False, days=None), None),
        "canary.example": (servfail(6), answer(ad=False)),
    })
    out = dnssec.check(["good.example", "broken.example", "plain.example"], resolvers=["192.0.2.53"],
                       must_fail="canary.example", now=NOW)
    assert out["ok"] is False
    assert [r["status"] for r in out["results"]] == ["secure", "bogus", "insecure"]
    assert all("warning" not in r for r in out["results"])
    assert out["resolver_check"]["ok"] is True
    assert out["problems"] == [dnssec.problem_line(out["results"][1]), dnssec.problem_line(out["results"][2])]
    assert out["problems"][0].startswith("broken.example SOA: bogus: DNSSEC validation fails")
    assert out["checked_at"] == "2027-01-15T08:00:00+00:00"
    assert out["resolvers"] == ["192.0.2.53"]


def test_a_failed_self_check_comes_first_among_the_problems(fake_resolver):
    fake_resolver.update({"good.example": (answer(), None), "canary.example": (answer(ad=False), None)})
    out = dnssec.check(["good.example"], resolvers=["192.0.2.53"], must_fail="canary.example", now=NOW)
    assert out["ok"] is False
    assert out["problems"] == ["resolver self-check: " + out["resolver_check"]["reason"]]


def test_warn_mode_collects_warnings_and_stays_ok(fake_resolver):
    fake_resolver["near.example"] = (answer(days=2), None)
    out = dnssec.check(["near.example"], resolvers=["192.0.2.53"], min_days_left=7, on_expiry="warn", now=NOW)
    assert out["ok"] is True
    assert len(out["warnings"]) == 1
    assert out["warnings"][0].startswith("near.example SOA: signatures expire")


class FakeRuntime:
    def __init__(self):
        self.messages = []
        self.cancel_checks = 0

    def log(self, level, msg):
        self.messages.append((level, msg))

    def check_cancel(self):
        self.cancel_checks += 1


def parse(raw, where="tasks[0]"):
    doc = {"id": "check-dnssec", "type": "dnssec-check"}
    doc.update(raw)
    return dnssec.parse_task(doc, where, None)


def test_the_task_fails_with_one_line_per_problem_prefixed_by_its_id(fake_resolver):
    fake_resolver.update({"a.example": (servfail(7), answer(ad=False, days=-1)),
                          "b.example": (None, None), "c.example": (answer(), None)})
    task = parse({"names": ["a.example", "b.example", "c.example"], "resolvers": ["192.0.2.53"]})
    rt = FakeRuntime()
    with pytest.raises(TaskFailed) as exc:
        task.run(rt)
    lines = str(exc.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("check-dnssec: a.example SOA: bogus:")
    assert lines[1].startswith("check-dnssec: b.example SOA: unreachable:")
    assert exc.value.problems == [line[len("check-dnssec: "):] for line in lines]
    assert rt.cancel_checks >= 3  # before the run and before each name


def test_the_task_logs_warnings_and_a_summary_when_healthy(fake_resolver):
    fake_resolver.update({"a.example": (answer(days=2), None), "b.example": (answer(days=20), None)})
    task = parse({"names": ["a.example", "b.example"], "resolvers": ["192.0.2.53"], "min-days-left": 3,
                  "on-expiry": "warn"})
    rt = FakeRuntime()
    result = task.run(rt)
    assert result["ok"] is True
    assert rt.messages[0][0] == VL_WARNING
    assert rt.messages[0][1].startswith("check-dnssec: a.example SOA: signatures expire")
    assert rt.messages[-1] == (VL_INFO, "check-dnssec: 2 names checked: 2 secure; fewest days left %.2f"
                               % result["results"][0]["days_left"])


# --- task parsing ----------------------------------------------------------------

def test_a_minimal_task_gets_the_defaults():
    task = parse({"names": ["example.com."]})
    assert task.describe() == {
        "id": "check-dnssec", "type": "dnssec-check",
        "names": [{"name": "example.com", "type": "SOA"}],
        "resolvers": None, "port": 53, "timeout": 5.0, "min-days-left": dnssec.DEFAULT_MIN_DAYS_LEFT,
        "on-expiry": "fail", "allow-insecure": False, "must-fail": None,
    }


def test_a_full_task_is_normalized():
    task = parse({"names": ["example.com", {"name": "www.example.com", "type": "aaaa"}],
                  "resolvers": ["127.0.0.1", "::1"], "port": "5353", "timeout": 2, "min-days-left": 7,
                  "on-expiry": "warn", "allow-insecure": True, "must-fail": "broken.example"})
    d = task.describe()
    assert d["names"][1] == {"name": "www.example.com", "type": "AAAA"}
    assert d["resolvers"] == ["127.0.0.1", "::1"]
    assert d["port"] == 5353 and d["timeout"] == 2.0 and d["min-days-left"] == 7.0
    assert d["must-fail"] == {"name": "broken.example", "type": "SOA"}


def test_plan_says_what_would_be_asked_without_asking():
    task = parse({"names": ["example.com"], "must-fail": "broken.example"})
    plan = task.plan(FakeRuntime())
    assert plan["queries"][0]["name"] == "example.com"
    assert plan["queries"][0]["type"] == "SOA"
    assert plan["resolvers"].startswith("the host's resolvers")
    assert plan["self-check"] == {"name": "broken.example", "type": "SOA"}


@pytest.mark.parametrize("raw, path, message", [
    ({}, "tasks[0].names", "required key is missing"),
    ({"names": []}, "tasks[0].names", "must name at least one domain"),
    ({"names": "example.com"}, "tasks[0].names", "expected a list"),
    ({"names": ["example.com", 5]}, "tasks[0].names[1]", "expected a domain name or an object"),
    ({"names": ["exa mple.com"]}, "tasks[0].names[0]", "must not contain whitespace"),
    ({"names": ["-bad-.example"]}, "tasks[0].names[0]", "not a valid domain name"),
    ({"names": ["a..example"]}, "tasks[0].names[0]", "not a valid domain name"),
    ({"names": ["x" * 64 + ".example"]}, "tasks[0].names[0]", "not a valid domain name"),
    ({"names": [{"name": "example.com", "type": "A A"}]}, "tasks[0].names[0].type", "not a DNS record type"),
    ({"names": [{"type": "A"}]}, "tasks[0].names[0].name", "required key is missing"),
    ({"names": [{"name": "example.com", "ttl": 5}]}, "tasks[0].names[0].ttl", "unknown key"),
    ({"names": ["example.com", {"name": "Example.com."}]}, "tasks[0].names[1]", "already checked at tasks[0].names[0]"),
    ({"names": ["example.com"], "resolvers": ["dns.google"]}, "tasks[0].resolvers[0]", "IP address"),
    ({"names": ["example.com"], "resolvers": []}, "tasks[0].resolvers", "at least one resolver"),
    ({"names": ["example.com"], "port": 0}, "tasks[0].port", "must be >= 1"),
    ({"names": ["example.com"], "port": 65536}, "tasks[0].port", "must be <= 65535"),
    ({"names": ["example.com"], "timeout": 0}, "tasks[0].timeout", "more than 0"),
    ({"names": ["example.com"], "timeout": "soon"}, "tasks[0].timeout", "expected a number"),
    ({"names": ["example.com"], "min-days-left": -1}, "tasks[0].min-days-left", "must be >= 0"),
    ({"names": ["example.com"], "on-expiry": "ignore"}, "tasks[0].on-expiry", "must be one of fail, warn"),
    ({"names": ["example.com"], "allow-insecure": "yes"}, "tasks[0].allow-insecure", "expected a boolean"),
    ({"names": ["example.com"], "must-fail": ""}, "tasks[0].must-fail", "must not be empty"),
    ({"names": ["example.com"], "min-days": 3}, "tasks[0].min-days", "did you mean 'min-days-left'?"),
])
def test_a_wrong_task_names_the_json_path_of_the_mistake(raw, path, message):
    with pytest.raises(ConfigError) as exc:
        parse(raw)
    assert exc.value.path == path
    assert message in exc.value.msg


def test_idn_names_are_accepted():
    assert parse({"names": ["bücher.example"]}).queries[0].name == "bücher.example"


def test_the_root_zone_can_be_checked():
    assert parse({"names": ["."]}).queries[0].name == "."


def test_check_validates_its_arguments_like_the_task():
    with pytest.raises(ConfigError) as exc:
        dnssec.check(["example.com"], on_expiry="maybe")
    assert exc.value.path == "on-expiry"


# --- dnspython --------------------------------------------------------------------

def test_without_dnspython_the_check_names_the_missing_library(monkeypatch):
    for name in [m for m in sys.modules if m == "dns" or m.startswith("dns.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dns", None)
    with pytest.raises(MissingLibraryError) as exc:
        dnssec.check(["example.com"], resolvers=["127.0.0.1"])
    assert exc.value.library == "dnspython"
    assert "the DNSSEC check requires the Python library 'dnspython'" in str(exc.value)


def test_parsing_a_task_does_not_need_dnspython(monkeypatch):
    monkeypatch.setitem(sys.modules, "dns", None)
    assert parse({"names": ["example.com"]}).queries[0].type == "SOA"


def test_a_dnspython_response_becomes_a_reply():
    import dns  # a test dependency (tests/unit/requirements.txt)
    import dns.edns
    import dns.flags
    import dns.message
    import dns.rrset

    query = dns.message.make_query("example.com.", "SOA", want_dnssec=True)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AD
    response.answer.append(dns.rrset.from_text(
        "example.com.", 300, "IN", "SOA", "ns1.example.com. h.example.com. 1 3600 600 86400 300"))
    response.answer.append(dns.rrset.from_text(
        "example.com.", 300, "IN", "RRSIG",
        "SOA 13 2 300 20270213200000 20270101000000 12345 example.com. "
        "dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdA=="))
    response.use_edns(0, dns.flags.DO, 1232, options=[dns.edns.EDEOption(dns.edns.EDECode.DNSSEC_BOGUS, "x")])
    wire = dns.message.from_wire(response.to_wire())
    reply = dnssec.reply_from_message(wire)
    assert reply.rcode == "NOERROR"
    assert reply.ad is True
    assert reply.records == ["example.com. 300 IN SOA ns1.example.com. h.example.com. 1 3600 600 86400 300"]
    assert reply.expirations == [int(datetime.datetime(2027, 2, 13, 20, tzinfo=datetime.timezone.utc).timestamp())]
    assert reply.ede == {"code": 6, "purpose": "DNSSEC Bogus", "text": "x"}
