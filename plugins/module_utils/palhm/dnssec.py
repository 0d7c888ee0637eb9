# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNSSEC check: ask a validating resolver, classify, and count the days
the signatures have left.

Each name (default record type SOA) is asked with the DO bit (and AD, so the
resolver says whether it validated). The answer is classified as:

- ``secure``: an answer with the AD flag;
- ``bogus``: SERVFAIL that resolves when asked again with CD (checking
  disabled): the signatures are broken or expired, or DS and DNSKEY disagree.
  The resolver's Extended DNS Error (RFC 8914) says which, when it gives one;
- ``insecure``: an answer without AD (unsigned zone, or no chain of trust);
  a failure unless ``allow-insecure``;
- ``unreachable``: no answer at all, a refusal, or SERVFAIL also with CD.

For secure answers the earliest RRSIG expiration of the answer gives the days
left; below ``min-days-left`` the name fails (or only warns, ``on-expiry:
warn``), so a stalled re-signing or missed key rollover shows before the zone
goes dark. The optional self-check (``must-fail``) asks a name that must fail
validation: if it resolves, the resolver does not validate and every "secure"
above means nothing.

dnspython is imported only when a check runs, so configs with a dnssec-check
task load (and other tasks run) on hosts without it.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import schema
from .errors import ConfigError, MissingLibraryError, TaskFailed
from .runtime import VL_INFO, VL_WARNING, Task

TASK_TYPE = "dnssec-check"
DEFAULT_TYPE = "SOA"
DEFAULT_PORT = 53
DEFAULT_TIMEOUT = 5.0
# Offline signers keep a week or more of signatures (BIND re-signs at 7.5 days
# left of 30, Knot at 7 of 14); 3 days leaves time to act without false alarms.
DEFAULT_MIN_DAYS_LEFT = 3.0
MAX_DAYS_LEFT = 36600  # a century: more is a typo (signatures last days to months)
ON_EXPIRY = ("fail", "warn")
STATUSES = ("secure", "bogus", "insecure", "unreachable")
TASK_KEYS = ("resolvers", "port", "timeout", "min-days-left", "on-expiry", "allow-insecure", "must-fail")
MAX_PARALLEL = 8
DAY = 86400.0

# RFC 8914 (and later IANA registrations) INFO-CODE purposes.
EDE_PURPOSES = {
    0: "Other Error", 1: "Unsupported DNSKEY Algorithm", 2: "Unsupported DS Digest Type",
    3: "Stale Answer", 4: "Forged Answer", 5: "DNSSEC Indeterminate", 6: "DNSSEC Bogus",
    7: "Signature Expired", 8: "Signature Not Yet Valid", 9: "DNSKEY Missing",
    10: "RRSIGs Missing", 11: "No Zone Key Bit Set", 12: "NSEC Missing", 13: "Cached Error",
    14: "Not Ready", 15: "Blocked", 16: "Censored", 17: "Filtered", 18: "Prohibited",
    19: "Stale NXDomain Answer", 20: "Not Authoritative", 21: "Not Supported",
    22: "No Reachable Authority", 23: "Network Error", 24: "Invalid Data",
    25: "Signature Expired before Valid", 26: "Too Early", 27: "Unsupported NSEC3 Iterations Value",
    28: "Unable to conform to policy", 29: "Synthesized", 30: "Invalid Query Type",
}

_TYPE_RE = re.compile(r"^(?:[A-Z][A-Z0-9-]*|TYPE[0-9]+)$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_*](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


# ---------------------------------------------------------------------------
# Names, resolvers and the task model
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """One name and record type to check."""

    name: str
    type: str = DEFAULT_TYPE

    def describe(self):
        return {"name": self.name, "type": self.type}

    def label(self):
        return "%s %s" % (self.name, self.type)


def parse_name(value, path):
    """A domain name (str) -> its text without the trailing dot ("." for the root)."""
    schema.string(value, path)
    text = value.strip()
    if text != value or any(c.isspace() for c in text):
        raise ConfigError(path, "a domain name must not contain whitespace: %s" % schema.show(value))
    if text == ".":
        return text
    bare = text[:-1] if text.endswith(".") else text
    try:
        ascii_name = bare.encode("idna").decode("ascii") if not bare.isascii() else bare
    except UnicodeError:
        raise ConfigError(path, "not a valid domain name: %s" % schema.show(value)) from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL_RE.match(lab) for lab in labels):
        raise ConfigError(path, "not a valid domain name: %s" % schema.show(value))
    return bare


def parse_rrtype(value, path):
    schema.string(value, path)
    text = value.strip().upper()
    if not _TYPE_RE.match(text):
        raise ConfigError(path, "not a DNS record type: %s (for example SOA, A, AAAA, MX, TXT)"
                          % schema.show(value))
    return text


def parse_query(value, path):
    """A name to check: ``"example.com"`` or ``{"name": "www.example.com", "type": "A"}``."""
    if isinstance(value, Query):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        value = {"name": value[0], "type": value[1]}
    if isinstance(value, dict):
        schema.obj(value, path, required=("name",), optional=("type",))
        rrtype = DEFAULT_TYPE
        if value.get("type") is not None:
            rrtype = parse_rrtype(value["type"], schema.join(path, "type"))
        return Query(parse_name(value["name"], schema.join(path, "name")), rrtype)
    if isinstance(value, str):
        return Query(parse_name(value, path))
    raise ConfigError(path, "expected a domain name or an object with name and type, got %s"
                      % schema.show(value))


def parse_queries(value, path):
    schema.obj_list(value, path)
    if not value:
        raise ConfigError(path, "must name at least one domain to check")
    out = []
    seen = {}
    for i, item in enumerate(value):
        q = parse_query(item, schema.join(path, i))
        key = (q.name.lower(), q.type)
        if key in seen:
            raise ConfigError(schema.join(path, i), "%s is already checked at %s"
                              % (q.label(), seen[key]))
        seen[key] = schema.join(path, i)
        out.append(q)
    return out


def parse_resolvers(value, path):
    """IP addresses of the resolvers to ask (None: the host's own)."""
    if value is None:
        return None
    schema.str_list(value, path)
    if not value:
        raise ConfigError(path, "must name at least one resolver (or leave it out for the host's own)")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(str(ipaddress.ip_address(item.strip())))
        except ValueError:
            raise ConfigError(schema.join(path, i), "expected the IP address of a resolver, got %s"
                              % schema.show(item)) from None
    return out


@dataclass
class CheckOptions:
    """Everything but the names; the same for the task and the module."""

    resolvers: list = None
    port: int = DEFAULT_PORT
    timeout: float = DEFAULT_TIMEOUT
    min_days_left: float = DEFAULT_MIN_DAYS_LEFT
    on_expiry: str = "fail"
    allow_insecure: bool = False
    must_fail: Query = None

    def describe(self):
        return {"resolvers": self.resolvers, "port": self.port, "timeout": self.timeout,
                "min-days-left": self.min_days_left, "on-expiry": self.on_expiry,
                "allow-insecure": self.allow_insecure,
                "must-fail": self.must_fail.describe() if self.must_fail else None}


def parse_options(raw, where):
    """The optional keys of a dnssec-check task (kebab-case), validated."""
    opts = CheckOptions()
    if raw.get("resolvers") is not None:
        opts.resolvers = parse_resolvers(raw["resolvers"], schema.join(where, "resolvers"))
    if raw.get("port") is not None:
        opts.port = schema.integer(raw["port"], schema.join(where, "port"), minimum=1, maximum=65535,
                                   allow_string=True)
    if raw.get("timeout") is not None:
        path = schema.join(where, "timeout")
        opts.timeout = float(schema.number(raw["timeout"], path))
        if not 0 < opts.timeout <= 300:
            raise ConfigError(path, "must be more than 0 and at most 300 seconds, got %s"
                              % schema.show(raw["timeout"]))
    if raw.get("min-days-left") is not None:
        opts.min_days_left = float(schema.number(raw["min-days-left"], schema.join(where, "min-days-left"),
                                                 minimum=0))
        if opts.min_days_left > MAX_DAYS_LEFT:
            raise ConfigError(schema.join(where, "min-days-left"), "must be at most %d days, got %s"
                              % (MAX_DAYS_LEFT, schema.show(raw["min-days-left"])))
    if raw.get("on-expiry") is not None:
        opts.on_expiry = schema.choice(raw["on-expiry"], schema.join(where, "on-expiry"), ON_EXPIRY)
    if raw.get("allow-insecure") is not None:
        opts.allow_insecure = schema.boolean(raw["allow-insecure"], schema.join(where, "allow-insecure"))
    if raw.get("must-fail") is not None:
        opts.must_fail = parse_query(raw["must-fail"], schema.join(where, "must-fail"))
    return opts


class DnssecCheckTask(Task):
    """``{"type": "dnssec-check", "names": [...], ...}``: check names through a
    validating resolver; fails when any name is not healthy."""

    type = TASK_TYPE

    def __init__(self, task_id, where, queries, options):
        super().__init__(task_id, where)
        self.queries = list(queries)
        self.options = options

    def describe(self):
        out = {"id": self.id, "type": self.type, "names": [q.describe() for q in self.queries]}
        out.update(self.options.describe())
        return out

    def plan(self, rt):
        o = self.options
        return {
            "task": self.id,
            "type": self.type,
            "resolvers": o.resolvers or "the host's resolvers (/etc/resolv.conf)",
            "port": o.port,
            "timeout": o.timeout,
            "queries": [dict(q.describe(), flags="RD AD DO; again with CD on SERVFAIL") for q in self.queries],
            "self-check": o.must_fail.describe() if o.must_fail else None,
            "min-days-left": o.min_days_left,
            "on-expiry": o.on_expiry,
            "allow-insecure": o.allow_insecure,
            "dnspython": dnspython_version(),
        }

    def run(self, rt):
        rt.check_cancel()
        result = run_check(self.queries, self.options, cancel=rt.check_cancel)
        for warning in result["warnings"]:
            rt.log(VL_WARNING, "%s: %s" % (self.id, warning))
        if not result["ok"]:
            err = TaskFailed("\n".join("%s: %s" % (self.id, p) for p in result["problems"]))
            err.problems = list(result["problems"])
            err.result = result
            raise err
        rt.log(VL_INFO, "%s: %s" % (self.id, summary(result)))
        return result


def parse_task(raw, where, ctx):
    schema.obj(raw, where, required=("id", "type", "names"), optional=TASK_KEYS)
    queries = parse_queries(raw["names"], schema.join(where, "names"))
    return DnssecCheckTask(raw["id"], where, queries, parse_options(raw, where))


# ---------------------------------------------------------------------------
# Classification (pure: no DNS library needed)
# ---------------------------------------------------------------------------

@dataclass
class Reply:
    """What matters of a DNS response, taken out of the library's message."""

    rcode: str
    ad: bool = False
    records: list = field(default_factory=list)  # answer RRsets as text, RRSIGs left out
    expirations: list = field(default_factory=list)  # RRSIG expirations, epoch seconds
    ede: dict = None  # {"code": int, "purpose": str, "text": str or None}


def iso_utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).isoformat()


def ede_text(ede):
    if not ede:
        return ""
    text = "EDE %d (%s)" % (ede["code"], ede["purpose"])
    if ede.get("text"):
        text += ": " + ede["text"]
    return text


def _to_epoch(now):
    if now is None:
        import time
        return time.time()
    if isinstance(now, datetime.datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=datetime.timezone.utc)
        return now.timestamp()
    return float(now)


def classify(query, reply, cd_reply=None, *, now, min_days_left=DEFAULT_MIN_DAYS_LEFT,
             on_expiry="fail", allow_insecure=False, resolver=None, errors=()):
    """The result for one name from the DO answer (`reply`, None when nothing
    answered) and, after a SERVFAIL, the answer asked again with CD.

    Returns the per-name result dict; its "warning" key (popped by check())
    carries an expiry warning in warn mode."""
    res = {"name": query.name, "type": query.type, "resolver": resolver, "status": "unreachable",
           "rcode": None, "ad": False, "ede": None, "records": [], "rrsig_expiration": None,
           "days_left": None, "ok": False, "reason": "", "warning": None}
    if reply is None:
        res["reason"] = "no answer from any resolver" + (" (%s)" % "; ".join(errors) if errors else "")
        return res
    res["rcode"] = reply.rcode
    res["ad"] = bool(reply.ad)
    res["ede"] = reply.ede
    if reply.rcode == "SERVFAIL":
        if cd_reply is None or cd_reply.rcode not in ("NOERROR", "NXDOMAIN"):
            got = "no answer" if cd_reply is None else cd_reply.rcode
            res["reason"] = ("SERVFAIL, and %s with checking disabled (CD): the resolver cannot get "
                             "an answer from the zone's servers" % got)
            if reply.ede:
                res["reason"] += "; " + ede_text(reply.ede)
            return res
        res["status"] = "bogus"
        res["records"] = list(cd_reply.records)
        _expiry(res, cd_reply, now)
        res["reason"] = ("DNSSEC validation fails (SERVFAIL, but %s with checking disabled)"
                         % cd_reply.rcode)
        res["reason"] += "; " + (ede_text(reply.ede) if reply.ede else "the resolver gave no extended error")
        if res["days_left"] is not None and res["days_left"] < 0:
            res["reason"] += "; signatures expired %s" % res["rrsig_expiration"]
        return res
    if reply.rcode not in ("NOERROR", "NXDOMAIN"):
        res["reason"] = "the resolver answered %s" % reply.rcode
        if reply.ede:
            res["reason"] += "; " + ede_text(reply.ede)
        return res

    res["records"] = list(reply.records)
    res["status"] = "secure" if reply.ad else "insecure"
    missing = None
    if reply.rcode == "NXDOMAIN":
        missing = "the name does not exist (NXDOMAIN)"
    elif not reply.records:
        missing = "the name has no %s record" % query.type
    if res["status"] == "insecure":
        res["reason"] = ("answer not validated (no AD flag): the zone is unsigned or has no chain of "
                         "trust from the resolver's trust anchors")
        res["ok"] = bool(allow_insecure) and missing is None
        if missing:
            res["reason"] = missing + "; " + res["reason"]
        elif allow_insecure:
            res["reason"] += " (allowed)"
        return res

    _expiry(res, reply, now)
    if missing:
        res["reason"] = missing + " (validated denial)"
        return res
    res["ok"] = True
    if res["days_left"] is None:
        res["reason"] = "validated (AD); the answer carried no RRSIG to date"
        return res
    days = format(res["days_left"], ".2f")
    res["reason"] = "validated (AD); signatures expire %s, in %s days" % (res["rrsig_expiration"], days)
    seconds_left = min(reply.expirations) - now
    if seconds_left < min_days_left * DAY:
        short = ("signatures expire %s, in %s days, less than the %g days required "
                 "(re-signing stalled or a key rollover missed?)" % (res["rrsig_expiration"], days, min_days_left))
        if on_expiry == "warn":
            res["warning"] = short
            res["reason"] = "validated (AD); " + short
        else:
            res["ok"] = False
            res["reason"] = short
    return res


def _expiry(res, reply, now):
    if reply.expirations:
        earliest = min(reply.expirations)
        res["rrsig_expiration"] = iso_utc(earliest)
        # Floor to 2 decimals so 1.999 days never shows as 2.00.
        res["days_left"] = math.floor((earliest - now) / DAY * 100) / 100.0


def self_check_result(query, res):
    """Turn the classification of the must-fail name into the self-check."""
    out = {"name": query.name, "type": query.type, "resolver": res["resolver"], "status": res["status"],
           "rcode": res["rcode"], "ede": res["ede"], "validating": None, "ok": False, "reason": ""}
    if res["status"] == "bogus":
        out["validating"] = True
        out["ok"] = True
        out["reason"] = "%s fails validation as it must: the resolver validates DNSSEC" % query.label()
    elif res["status"] == "unreachable":
        out["reason"] = "could not run the resolver self-check: %s: %s" % (query.label(), res["reason"])
    else:
        out["validating"] = False
        out["reason"] = ("the resolver answered %s (%s, %s) although it must fail validation: the "
                         "resolver does not validate DNSSEC, so no result here can be trusted"
                         % (query.label(), res["rcode"], "AD set" if res["ad"] else "no AD"))
    return out


def summary(result):
    counts = {}
    for r in result["results"]:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    parts = ["%d %s" % (counts[s], s) for s in STATUSES if s in counts]
    text = "%d name%s checked: %s" % (len(result["results"]), "" if len(result["results"]) == 1 else "s",
                                      ", ".join(parts))
    left = [r["days_left"] for r in result["results"] if r["status"] == "secure" and r["days_left"] is not None]
    if left:
        text += "; fewest days left %.2f" % min(left)
    if result.get("resolver_check"):
        text += "; resolver self-check %s" % ("passed" if result["resolver_check"]["ok"] else "FAILED")
    return text


# ---------------------------------------------------------------------------
# Asking the resolver (dnspython)
# ---------------------------------------------------------------------------

def _dns():
    try:
        import dns.edns  # noqa: F401
        import dns.exception  # noqa: F401
        import dns.flags  # noqa: F401
        import dns.message  # noqa: F401
        import dns.query  # noqa: F401
        import dns.rcode  # noqa: F401
        import dns.rdatatype  # noqa: F401
    except ImportError:
        raise MissingLibraryError("dnspython", "the DNSSEC check") from None
    import dns
    return dns


def dnspython_version():
    try:
        import dns.version
    except ImportError:
        return None
    return dns.version.version


def reply_from_message(msg):
    """A Reply from a dnspython response message."""
    dns = _dns()
    records, expirations = [], []
    for rrset in msg.answer:
        if rrset.rdtype == dns.rdatatype.RRSIG:
            expirations.extend(int(sig.expiration) for sig in rrset)
        else:
            records.extend(rrset.to_text().splitlines())
    ede = None
    for opt in getattr(msg, "options", None) or ():
        if int(opt.otype) == 15:  # EDE, RFC 8914
            code = int(getattr(opt, "code", 0))
            text = getattr(opt, "text", None) or None
            ede = {"code": code, "purpose": EDE_PURPOSES.get(code, "code %d" % code), "text": text}
            break
    return Reply(rcode=dns.rcode.to_text(msg.rcode()), ad=bool(msg.flags & dns.flags.AD),
                 records=records, expirations=expirations, ede=ede)


def _ask(query, resolvers, port, timeout, cd):
    """Ask each resolver in turn until one answers: (resolver, Reply, errors)."""
    dns = _dns()
    try:
        rdtype = dns.rdatatype.from_text(query.type)
        msg = dns.message.make_query(query.name if query.name.endswith(".") else query.name + ".",
                                     rdtype, want_dnssec=True, payload=1232)
    except dns.exception.DNSException as e:
        raise ConfigError("names", "cannot ask for %s: %s" % (query.label(), e)) from None
    msg.flags |= dns.flags.AD
    if cd:
        msg.flags |= dns.flags.CD
    errors = []
    for server in resolvers:
        where = "%s#%d" % (server, port)
        try:
            resp = dns.query.udp(msg, server, timeout=timeout, port=port, ignore_unexpected=True)
            if resp.flags & dns.flags.TC:
                resp = dns.query.tcp(msg, server, timeout=timeout, port=port)
        except dns.exception.Timeout:
            errors.append("%s: no answer within %gs" % (where, timeout))
            continue
        except (OSError, EOFError, dns.exception.DNSException) as e:
            errors.append("%s: %s" % (where, e.strerror if isinstance(e, OSError) and e.strerror else e))
            continue
        return where, reply_from_message(resp), errors
    return None, None, errors


def host_resolvers():
    """The resolvers of /etc/resolv.conf."""
    dns = _dns()
    import dns.resolver
    try:
        servers = [str(s) for s in dns.resolver.Resolver(configure=True).nameservers]
    except dns.resolver.NoResolverConfiguration:
        servers = []
    if not servers:
        raise ConfigError("resolvers", "no resolver given and none found in /etc/resolv.conf")
    return servers


def check_one(query, resolvers, opts, now):
    where, reply, errors = _ask(query, resolvers, opts.port, opts.timeout, cd=False)
    cd_reply = None
    if reply is not None and reply.rcode == "SERVFAIL":
        # Ask the same resolver again with checking disabled: an answer now
        # means the data is there but does not validate (bogus).
        server = where.rsplit("#", 1)[0]
        _w, cd_reply, _e = _ask(query, [server], opts.port, opts.timeout, cd=True)
    return classify(query, reply, cd_reply, now=now, min_days_left=opts.min_days_left,
                    on_expiry=opts.on_expiry, allow_insecure=opts.allow_insecure, resolver=where,
                    errors=errors)


def problem_line(res):
    return "%s %s: %s: %s" % (res["name"], res["type"], res["status"], res["reason"])


def run_check(queries, opts, now=None, cancel=None):
    """Check parsed queries with CheckOptions; see check()."""
    _dns()
    resolvers = opts.resolvers or host_resolvers()
    now = _to_epoch(now)

    def one(q):
        if cancel is not None:
            cancel()
        return check_one(q, resolvers, opts, now)

    todo = list(queries) + ([opts.must_fail] if opts.must_fail else [])
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(todo)))) as pool:
        done = list(pool.map(one, todo))
    results = done[:len(queries)]
    problems, warnings = [], []
    for res in results:
        warning = res.pop("warning")
        if warning:
            warnings.append("%s %s: %s" % (res["name"], res["type"], warning))
        if not res["ok"]:
            problems.append(problem_line(res))
    resolver_check = None
    if opts.must_fail:
        raw = done[-1]
        raw.pop("warning")
        resolver_check = self_check_result(opts.must_fail, raw)
        if not resolver_check["ok"]:
            problems.insert(0, "resolver self-check: " + resolver_check["reason"])
    return {
        "ok": not problems,
        "checked_at": iso_utc(now),
        "resolvers": resolvers,
        "port": opts.port,
        "min_days_left": opts.min_days_left,
        "results": results,
        "resolver_check": resolver_check,
        "problems": problems,
        "warnings": warnings,
    }


def check(names, resolvers=None, port=DEFAULT_PORT, timeout=DEFAULT_TIMEOUT, min_days_left=DEFAULT_MIN_DAYS_LEFT,
          allow_insecure=False, must_fail=None, now=None, on_expiry="fail"):
    """Check `names` (domain names, {"name", "type"} dicts or (name, type)
    pairs) through `resolvers` (IP addresses; None: /etc/resolv.conf).

    Returns {"ok", "checked_at", "resolvers", "port", "min_days_left",
    "results": [per name: name, type, resolver, status, rcode, ad, ede,
    records, rrsig_expiration, days_left, ok, reason], "resolver_check",
    "problems": [one line per problem], "warnings"}. Raises ConfigError for bad
    arguments and MissingLibraryError without dnspython."""
    raw = {"resolvers": resolvers, "port": port, "timeout": timeout, "min-days-left": min_days_left,
           "on-expiry": on_expiry, "allow-insecure": allow_insecure, "must-fail": must_fail}
    opts = parse_options(raw, "")
    return run_check(parse_queries(list(names), "names"), opts, now=now)
