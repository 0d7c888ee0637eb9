# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot report: what the host says when it comes up, and how it says it.

``parse_config`` validates the ``boot-report`` object into a BootReportSpec;
``run`` gathers the facts, records this boot, composes the report (a YAML
document built here, without PyYAML) and hands it to the configured MUA
(``stdout``, ``mailx``, ``smtp``, ``sendmail`` or ``aws-sns``).

Clean-shutdown detection: two small JSON files under ``runtime.state_dir()``.

- ``boot-record.json`` is written by the report of each boot: which boot this
  is (kernel boot id plus the start time of PID 1, because a container's
  reboot keeps the kernel's boot id) and what the report found out about the
  boot before it.
- ``clean-shutdown.json`` is written by ``mark_clean_shutdown()`` (the
  ExecStop of the installed unit) and names the boot that ended cleanly.

The next boot's report calls the previous boot clean only when a clean
record names exactly that boot. A crash, power loss or kill never runs
ExecStop, so it leaves no such record; a report run again in the same boot
(a unit restart) removes the record of its own boot, which is still going on.
"""

from __future__ import annotations

import datetime
import difflib
import email.message
import email.utils
import fcntl
import json
import math
import os
import re
import smtplib
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field

from . import fsutil, redact, schema
from .errors import ConfigError, DirectoryError, MissingLibraryError, StageError, TaskFailed
from .runtime import VL_DEBUG, VL_INFO, VL_WARNING, state_dir

MUAS = ("stdout", "mailx", "aws-sns", "smtp", "sendmail")
BOOT_WAITS = ("systemd",)
TLS_MODES = ("none", "starttls", "tls")
DEFAULT_SUBJECT = "Boot Report from {hostname}"
DEFAULT_HEADER = ("Boot report of {hostname}, sent by PALHM when the host came up.\n"
                  "An unexpected boot or an unclean previous shutdown deserves a look.")
DEFAULT_BOOT_WAIT_TIMEOUT = 1800.0
DEFAULT_SMTP_PORTS = {"none": 25, "starttls": 587, "tls": 465}
SNS_SUBJECT_MAX = 99  # SNS: "less than 100 characters"
BOOT_RECORD = "boot-record.json"
CLEAN_RECORD = "clean-shutdown.json"
_MUA_PARAM_KEYS = {
    "stdout": (),
    "mailx": ("exec", "int-opts"),
    "aws-sns": ("profile", "region", "endpoint-url"),
    "smtp": ("host", "port", "tls", "username", "password", "sender", "timeout"),
    "sendmail": ("exec", "sender"),
}
_CMD_TIMEOUT = 300  # seconds a local MUA may take to accept the message
MAX_WAIT = 86400  # delay and boot-wait-timeout: a day
MAX_SMTP_TIMEOUT = 300


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
@dataclass
class BootReportSpec:
    """A validated ``boot-report`` object."""

    mua: str
    mail_to: list
    mua_param: dict = field(default_factory=dict)
    subject: str = DEFAULT_SUBJECT
    header: str = DEFAULT_HEADER
    uptime_since: bool = True
    uptime: bool = True
    bootid: bool = True
    boot_wait: object = None  # None or "systemd"
    boot_wait_timeout: float = DEFAULT_BOOT_WAIT_TIMEOUT
    delay: float = 0

    def describe(self):
        """The spec as config keys, with secrets hidden (``palhm config``)."""
        param = dict(self.mua_param)
        if param.get("password") is not None:
            param["password"] = redact.MASK
        if "int-opts" in param:
            param["int-opts"] = int_opts_shown(param["int-opts"])
        return {"mua": self.mua, "mua-param": param, "mail-to": list(self.mail_to),
                "subject": self.subject, "header": self.header, "uptime-since": self.uptime_since,
                "uptime": self.uptime, "bootid": self.bootid, "boot-wait": self.boot_wait,
                "boot-wait-timeout": self.boot_wait_timeout, "delay": self.delay}


CONFIG_KEYS = ("mua", "mua-param", "mail-to", "subject", "header", "uptime-since", "uptime", "bootid",
               "boot-wait", "boot-wait-timeout", "delay")


def parse_config(values, wheres=None):
    """Validate a merged ``boot-report`` object. `wheres` maps each key to the
    JSON path to name in errors (default ``boot-report.KEY``)."""
    wheres = dict(wheres or {})

    def where(key):
        return wheres.get(key) or "boot-report." + key

    if not isinstance(values, dict):
        raise ConfigError("boot-report", "expected an object, got %s" % schema.show(values))
    for key in values:
        if key not in CONFIG_KEYS:
            hint = difflib.get_close_matches(str(key), CONFIG_KEYS, n=1)
            raise ConfigError(where(key), "unknown key%s" % (" (did you mean %r?)" % hint[0] if hint else
                                                             " (allowed: %s)" % ", ".join(CONFIG_KEYS)))
    if "mua" not in values:
        raise ConfigError(where("mua"), "required key is missing (one of %s)" % ", ".join(MUAS))
    mua = schema.choice(values["mua"], where("mua"), MUAS)
    # stdout sends nothing: it needs no recipient.
    if "mail-to" not in values and mua != "stdout":
        raise ConfigError(where("mail-to"), "required key is missing")
    mail_to = schema.str_list(values.get("mail-to", []), where("mail-to"))
    if not mail_to and mua != "stdout":
        raise ConfigError(where("mail-to"), "must name at least one recipient")
    for i, rcpt in enumerate(mail_to):
        _check_recipient(mua, rcpt, schema.join(where("mail-to"), i))
    spec = BootReportSpec(mua=mua, mail_to=mail_to)
    spec.mua_param = _parse_mua_param(mua, values.get("mua-param", {}), where("mua-param"))
    if "subject" in values:
        spec.subject = schema.string(values["subject"], where("subject"))
    if "header" in values:
        spec.header = schema.string(values["header"], where("header"), nonempty=False)
    for key in ("uptime-since", "uptime", "bootid"):
        if key in values:
            setattr(spec, key.replace("-", "_"), schema.boolean(values[key], where(key)))
    if values.get("boot-wait") is not None:
        spec.boot_wait = schema.choice(values["boot-wait"], where("boot-wait"), BOOT_WAITS)
    if "boot-wait-timeout" in values:
        spec.boot_wait_timeout = _seconds(values["boot-wait-timeout"], where("boot-wait-timeout"), MAX_WAIT)
    if "delay" in values:
        spec.delay = _seconds(values["delay"], where("delay"), MAX_WAIT)
    return spec


def int_opts_shown(opts):
    """mailx int-opts fit to print: ``smtp-auth-password=x`` (any secret
    name, v15-compat ``...-USER@HOST=x`` forms too) and URL passwords masked."""
    return redact.argv(opts)


def secrets(spec):
    """The secret values of a boot-report spec (redact.remember)."""
    p = spec.mua_param
    found = [p["password"]] if p.get("password") else []
    return found + redact.secrets_in_argv(p.get("int-opts", []))


def _seconds(value, path, maximum):
    """A number of seconds from 0 to `maximum` (time.sleep and socket
    timeouts overflow on absurd values)."""
    seconds = float(schema.number(value, path, minimum=0))
    if seconds > maximum:
        raise ConfigError(path, "must be at most %d seconds, got %s" % (maximum, schema.show(value)))
    return seconds


def _check_recipient(mua, rcpt, path):
    if any(ord(c) < 0x20 or c == "\x7f" for c in rcpt):
        raise ConfigError(path, "must not contain control characters (line breaks, tabs)")
    if mua == "aws-sns":
        if not rcpt.startswith("arn:"):
            raise ConfigError(path, "the aws-sns MUA sends to SNS ARNs (arn:aws:sns:REGION:ACCOUNT:TOPIC), got %s"
                              % schema.show(rcpt))
    elif rcpt.startswith("-"):
        # Recipients end up on command lines (mailx): never let one be an option.
        raise ConfigError(path, "a recipient must not start with '-', got %s" % schema.show(rcpt))


def _parse_mua_param(mua, raw, path):
    if raw is None:
        raw = {}
    schema.obj(raw, path, optional=_MUA_PARAM_KEYS[mua])
    p = {}
    if mua == "mailx":
        p["exec"] = schema.string(raw.get("exec", "mailx"), schema.join(path, "exec"))
        p["int-opts"] = schema.str_list(raw.get("int-opts", []), schema.join(path, "int-opts"))
    elif mua == "sendmail":
        p["exec"] = schema.string(raw.get("exec", "/usr/sbin/sendmail"), schema.join(path, "exec"))
        if raw.get("sender") is not None:
            p["sender"] = _header_safe(raw["sender"], schema.join(path, "sender"))
    elif mua == "aws-sns":
        for key in ("profile", "region", "endpoint-url"):
            if raw.get(key) is not None:
                p[key] = schema.string(raw[key], schema.join(path, key))
    elif mua == "smtp":
        p["host"] = schema.string(raw.get("host", "localhost"), schema.join(path, "host"))
        p["tls"] = schema.choice(raw.get("tls", "none"), schema.join(path, "tls"), TLS_MODES)
        if raw.get("port") is not None:
            p["port"] = schema.integer(raw["port"], schema.join(path, "port"), minimum=1, maximum=65535,
                                       allow_string=True)
        else:
            p["port"] = DEFAULT_SMTP_PORTS[p["tls"]]
        for key in ("username", "password"):
            if raw.get(key) is not None:
                p[key] = schema.string(raw[key], schema.join(path, key))
        if ("username" in p) != ("password" in p):
            missing = "password" if "username" in p else "username"
            raise ConfigError(schema.join(path, missing), "username and password go together")
        if "password" in p and p["tls"] == "none":
            raise ConfigError(schema.join(path, "tls"), "refusing to send credentials in clear text: "
                              "set tls to starttls or tls")
        if raw.get("sender") is not None:
            p["sender"] = _header_safe(raw["sender"], schema.join(path, "sender"))
        p["timeout"] = _seconds(raw.get("timeout", 30), schema.join(path, "timeout"), MAX_SMTP_TIMEOUT)
        if p["timeout"] <= 0:
            raise ConfigError(schema.join(path, "timeout"), "must be > 0")
    return p


def _header_safe(value, path):
    schema.string(value, path)
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise ConfigError(path, "must not contain control characters (line breaks, tabs)")
    return value


# ---------------------------------------------------------------------------
# A tiny, safe YAML emitter (no PyYAML on hosts)
# ---------------------------------------------------------------------------
_PLAIN_KEY = re.compile(r"^[a-z][a-z0-9-]*$")


def yaml_str(text):
    """A YAML double-quoted scalar that reads back as exactly `text`.

    Only printable ASCII goes out as is; everything else is escaped (YAML's
    \\xXX, \\uXXXX and \\UXXXXXXXX), so the body is 7-bit clean for every MUA
    and no character can end the scalar early or break the document.
    """
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x100:
            out.append("\\x%02x" % o)
        elif 0xD800 <= o <= 0xDFFF:  # a lone surrogate is no character at all
            out.append("\\ufffd")
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


def _yaml_scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return yaml_str(str(value))
        return repr(value)
    return yaml_str(str(value))


_YAML_WORDS = ("true", "false", "null", "yes", "no", "on", "off", "y", "n")


def _yaml_key(key):
    key = str(key)
    return key if _PLAIN_KEY.match(key) and key not in _YAML_WORDS else yaml_str(key)


def _yaml_lines(value, indent):
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append("%s%s:" % (pad, _yaml_key(key)))
                lines.extend(_yaml_lines(item, indent + 2))
            else:
                lines.append("%s%s: %s" % (pad, _yaml_key(key), _yaml_flow_empty(item)))
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub = _yaml_lines(item, indent + 2)
                lines.append("%s- %s" % (pad, sub[0][indent + 2:]))
                lines.extend(sub[1:])
            else:
                lines.append("%s- %s" % (pad, _yaml_flow_empty(item)))
    return lines


def _yaml_flow_empty(value):
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _yaml_scalar(value)


def yaml_comment(text):
    """`text` as YAML comment lines, one ``# `` per line of text. Characters a
    YAML reader refuses even in comments are shown as escapes."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        safe = "".join(c if (0x20 <= ord(c) < 0x7F or c == "\t") else yaml_str(c)[1:-1] for c in line)
        lines.append(("# " + safe).rstrip())
    return lines


def to_yaml(doc, header=""):
    """A YAML document: `header` as leading comments, then the mapping `doc`."""
    lines = yaml_comment(header) if header else []
    lines.extend(_yaml_lines(doc, 0) if doc else ["{}"])
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Facts about this host and this boot
# ---------------------------------------------------------------------------
def _read(path):
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        return f.read()


def read_boot_id():
    try:
        return _read("/proc/sys/kernel/random/boot_id").strip()
    except OSError:
        return None


def read_uptime():
    """Seconds since the kernel booted (/proc/uptime)."""
    try:
        return float(_read("/proc/uptime").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pid1_start_ticks():
    """Start time of PID 1 in clock ticks since the kernel booted. Tells a
    container's boots apart: they share the kernel's boot id."""
    try:
        stat = _read("/proc/1/stat")
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _kernel_btime():
    try:
        for line in _read("/proc/stat").splitlines():
            if line.startswith("btime "):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    uptime = read_uptime()
    return None if uptime is None else int(time.time() - uptime)


def current_boot():
    """Who this boot is: kernel boot id, PID 1 start ticks, start time (epoch)."""
    ticks = _pid1_start_ticks()
    btime = _kernel_btime()
    start = None
    if btime is not None:
        start = btime
        if ticks is not None:
            start = btime + ticks / float(os.sysconf("SC_CLK_TCK"))
    return {"bootid": read_boot_id(), "pid1-start": ticks, "start": start}


def _same_boot(a, b):
    return bool(a and b and a.get("bootid") == b.get("bootid") and a.get("pid1-start") == b.get("pid1-start"))


def time_zone():
    """The IANA name of the local time zone when known, else its abbreviation."""
    tz = os.environ.get("TZ")
    if tz:
        return tz.lstrip(":")
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        name = _read("/etc/timezone").strip()
        if name:
            return name
    except OSError:
        pass
    return time.strftime("%Z")


def iso_local(epoch):
    """Local time with its UTC offset, to the second; None when unknown."""
    if epoch is None:
        return None
    try:
        return datetime.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError, OSError):
        return None  # a record written by something else


def uptime_since(now, uptime):
    """What `uptime --since` prints: the local boot time, to the second."""
    return datetime.datetime.fromtimestamp(now - uptime).strftime("%Y-%m-%d %H:%M:%S")


def pretty_uptime(seconds):
    """What `uptime -p` (procps-ng 4) prints, e.g. "up 1 week, 2 days, 3 hours, 4 minutes"."""
    minutes = int(seconds) // 60
    units = (("decade", 60 * 24 * 365 * 10), ("year", 60 * 24 * 365), ("week", 60 * 24 * 7),
             ("day", 60 * 24), ("hour", 60), ("minute", 1))
    parts = []
    for name, size in units:
        n, minutes = divmod(minutes, size)
        if n:
            parts.append("%d %s%s" % (n, name, "" if n == 1 else "s"))
    return "up " + (", ".join(parts) if parts else "0 minutes")


def _run_cmd(argv, timeout):
    """(returncode, stdout, stderr) of a small command; returncode None when it
    could not run at all (stderr says why)."""
    try:
        proc = subprocess.run(  # pylint: disable=ansible-bad-function
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=timeout, check=False)
    except FileNotFoundError:
        return None, "", "%s: command not found" % argv[0]
    except subprocess.TimeoutExpired:
        return None, "", "%s did not finish within %d s" % (" ".join(argv), timeout)
    except OSError as e:
        return None, "", "%s: %s" % (argv[0], e)
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def systemd_boot_state(wait=True, timeout=DEFAULT_BOOT_WAIT_TIMEOUT):
    """Wait (or not) for systemd to finish booting; the state it reached and,
    when degraded, the failed units."""
    argv = ["systemctl", "is-system-running"] + (["--wait"] if wait else [])
    rc, out, err = _run_cmd(argv, timeout if wait else 30)
    state = {"state": out.strip() or "unknown"}
    if rc is None:
        state["error"] = err.strip()
        return state
    if not out.strip() and err.strip():
        state["error"] = err.strip()[-500:]
    if state["state"] == "degraded":
        rc2, out2, err2 = _run_cmd(["systemctl", "--failed", "--plain", "--no-legend"], 30)
        units = []
        for line in out2.splitlines():
            words = line.replace("\u25cf", " ").split()
            if words:
                units.append(words[0])
        state["failed-units"] = units
        if rc2 is None:
            state["error"] = err2.strip()
    return state


def gather_facts(spec, check_mode=False):
    """Everything the body may say, read from this host now. In check mode
    boot-wait does not wait: it reports the state systemd is in."""
    uptime = read_uptime()
    facts = {
        "hostname": socket.gethostname(),
        "kernel-release": os.uname().release,
        "time-zone": time_zone(),
        "utc-offset": datetime.datetime.now().astimezone().strftime("%z"),
        "uptime-secs": uptime,
        "bootid": read_boot_id(),
    }
    if spec.boot_wait == "systemd":
        facts["boot-wait"] = systemd_boot_state(wait=not check_mode, timeout=spec.boot_wait_timeout)
    return facts


# ---------------------------------------------------------------------------
# Clean-shutdown records
# ---------------------------------------------------------------------------
def _state_path(name, directory=None):
    return os.path.join(directory or state_dir(), name)


def _read_record(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # A torn or foreign file proves nothing: treat it as absent.
        return None


def write_atomically(path, data, mode=0o644):
    """Replace `path` with `data` (bytes): temp file, fsync, rename, fsync dir.
    A crash leaves the old file or the new one, never a part of either."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, ".%s.tmp.%d" % (os.path.basename(path), os.getpid()))
    _unlink(tmp)  # a leftover of a dead run with this pid
    # O_EXCL, O_NOFOLLOW: a planted symlink never redirects the write.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _unlink(path):
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def _write_json(path, doc):
    write_atomically(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


class _StateLock:
    """Serialises read-modify-write of the records (two reports at once)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, ".boot-report.lock")
        self.fd = None

    def __enter__(self):
        self.fd = fsutil.open_private_file(self.path, "boot report lock file", os.O_RDWR | os.O_CREAT)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _ensure_state_dir(directory):
    """The state directory, made 0700 when missing; refused (DirectoryError)
    when unusable or writable by another user (records could be forged)."""
    fsutil.private_dir(directory, "boot report: state directory")


def _previous_from(record, clean, boot):
    """What we know of the boot before `boot`, from the last boot record and
    the clean-shutdown record."""
    prev = None
    if record and not _same_boot(record, boot):
        prev = {"bootid": record.get("bootid"), "pid1-start": record.get("pid1-start"),
                "start": record.get("start")}
    if clean and not _same_boot(clean, boot) and not _same_boot(clean, prev):
        # A clean record of a boot whose report never got to write its own
        # record: that boot came after the one in boot-record.json.
        prev = {"bootid": clean.get("bootid"), "pid1-start": clean.get("pid1-start"),
                "start": clean.get("start")}
    if prev is None:
        return {"shutdown": "unknown", "reason": "no record of an earlier boot (first report on this host?)"}
    out = {"shutdown": "unclean", "bootid": prev["bootid"], "start": prev["start"], "end": None}
    if _same_boot(clean, prev):
        out["shutdown"] = "clean"
        out["end"] = clean.get("end")
    out["pid1-start"] = prev["pid1-start"]
    return out


def peek_previous(directory=None, boot=None):
    """What the report would say about the previous boot, writing nothing."""
    directory = directory or state_dir()
    boot = boot or current_boot()
    try:
        # What the real run would meet, creating nothing.
        fsutil.private_dir(directory, "boot report: state directory", create=False)
    except DirectoryError as e:
        return {"shutdown": "unknown", "reason": str(e)}
    record = _read_record(_state_path(BOOT_RECORD, directory))
    if record and _same_boot(record, boot) and isinstance(record.get("previous"), dict):
        return record["previous"]
    return _previous_from(record, _read_record(_state_path(CLEAN_RECORD, directory)), boot)


def record_boot(directory=None, boot=None, now=None):
    """Record this boot (once per boot) and return what is known of the
    previous one. Run again in the same boot, it returns the same answer and
    withdraws a clean-shutdown record of this boot (the boot goes on)."""
    directory = directory or state_dir()
    boot = boot or current_boot()
    _ensure_state_dir(directory)
    try:
        return _record_boot(directory, boot, now)
    except OSError as e:
        raise DirectoryError("boot report: cannot record this boot in %s: %s"
                             % (directory, fsutil.reason(e))) from None


def _record_boot(directory, boot, now):
    with _StateLock(directory):
        rec_path = _state_path(BOOT_RECORD, directory)
        clean_path = _state_path(CLEAN_RECORD, directory)
        record = _read_record(rec_path)
        clean = _read_record(clean_path)
        if record and _same_boot(record, boot) and isinstance(record.get("previous"), dict):
            previous = record["previous"]
        else:
            previous = _previous_from(record, clean, boot)
            _write_json(rec_path, {"bootid": boot["bootid"], "pid1-start": boot["pid1-start"],
                                   "start": boot["start"], "reported": time.time() if now is None else now,
                                   "previous": previous})
        # The clean record has been read into the boot record (or is about a
        # boot that is still going on): either way it must not count again.
        if clean is not None:
            _unlink(clean_path)
            _fsync_dir(directory)
    return previous


def mark_clean_shutdown(directory=None, boot=None, now=None):
    """Record that this boot is ending cleanly (the unit's ExecStop). Returns the record."""
    directory = directory or state_dir()
    boot = boot or current_boot()
    _ensure_state_dir(directory)
    doc = {"bootid": boot["bootid"], "pid1-start": boot["pid1-start"], "start": boot["start"],
           "end": time.time() if now is None else now}
    try:
        with _StateLock(directory):
            _write_json(_state_path(CLEAN_RECORD, directory), doc)
    except OSError as e:
        raise DirectoryError("boot report: cannot record the clean shutdown in %s: %s"
                             % (directory, fsutil.reason(e))) from None
    return doc


# ---------------------------------------------------------------------------
# Composing
# ---------------------------------------------------------------------------
def _subst(template, hostname):
    # Not str.format: a header may hold other braces ("{}") verbatim.
    return template.replace("{hostname}", hostname)


def compose(spec, now=None, facts=None, previous=None):
    """(subject, body) of the report. `facts` (see gather_facts) and
    `previous` (see record_boot) are read from the host when not given."""
    now = time.time() if now is None else now
    if facts is None:
        facts = gather_facts(spec)
    if previous is None:
        previous = peek_previous()
    hostname = facts.get("hostname") or "localhost"
    subject = " ".join(_subst(spec.subject, hostname).split())
    header = _subst(spec.header, hostname)
    doc = {"hostname": hostname,
           "kernel-release": facts.get("kernel-release"),
           "time-zone": facts.get("time-zone"),
           "utc-offset": facts.get("utc-offset"),
           "report-time": iso_local(now)}
    uptime = facts.get("uptime-secs")
    if spec.uptime_since:
        doc["uptime-since"] = uptime_since(now, uptime) if uptime is not None else None
    if spec.uptime:
        doc["uptime"] = pretty_uptime(uptime) if uptime is not None else None
    if spec.bootid:
        doc["bootid"] = facts.get("bootid")
    if "boot-wait" in facts:
        doc["boot-wait"] = facts["boot-wait"]
    doc["previous-shutdown"] = previous.get("shutdown", "unknown")
    if previous.get("shutdown") in ("clean", "unclean"):
        doc["previous-boot"] = {"bootid": previous.get("bootid"), "start": iso_local(previous.get("start")),
                                "end": iso_local(previous.get("end"))}
    return subject, to_yaml(doc, header)


# ---------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------
def _fqdn():
    name = socket.getfqdn()
    # getfqdn() says "localhost" when the host name maps to 127.0.0.1 first.
    if not name or name.startswith("localhost"):
        name = socket.gethostname()
    return name


def _default_sender():
    try:
        import pwd
        user = pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        user = "root"
    return "%s@%s" % (user, _fqdn())


def build_message(spec, subject, body, sender):
    msg = email.message.EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(spec.mail_to)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = email.utils.make_msgid(domain=_fqdn())
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


def _pipe_to(argv, data, what):
    try:
        proc = subprocess.run(  # pylint: disable=ansible-bad-function
            argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=_CMD_TIMEOUT, check=False)
    except FileNotFoundError:
        raise TaskFailed("%s: %s: command not found" % (what, argv[0])) from None
    except subprocess.TimeoutExpired:
        raise TaskFailed("%s: %s did not finish within %d s; the report may not have been sent"
                         % (what, argv[0], _CMD_TIMEOUT)) from None
    except OSError as e:
        raise TaskFailed("%s: cannot run %s: %s" % (what, argv[0], e)) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode("utf-8", "replace")[-2000:]
        raise StageError(what, argv, proc.returncode, tail)
    return proc


def send_mailx(spec, subject, body):
    p = spec.mua_param
    argv = [p.get("exec", "mailx"), "-s", subject]
    for opt in p.get("int-opts", []):
        argv += ["-S", opt]
    argv += list(spec.mail_to)
    _pipe_to(argv, body.encode("utf-8"), "boot report (mailx)")
    return list(spec.mail_to)


def send_sendmail(spec, subject, body):
    p = spec.mua_param
    msg = build_message(spec, subject, body, p.get("sender") or _default_sender())
    argv = [p.get("exec", "/usr/sbin/sendmail"), "-t", "-i"]
    if p.get("sender"):
        # The envelope sender too (bounces go there); else the MTA uses the caller.
        argv += ["-f", p["sender"]]
    _pipe_to(argv, msg.as_bytes(), "boot report (sendmail)")
    return list(spec.mail_to)


def send_smtp(spec, subject, body):
    p = spec.mua_param
    host, port, tls = p.get("host", "localhost"), p.get("port", 25), p.get("tls", "none")
    sender = p.get("sender") or _default_sender()
    msg = build_message(spec, subject, body, sender)
    what = "boot report (smtp %s:%d)" % (host, port)
    try:
        if tls == "tls":
            conn = smtplib.SMTP_SSL(host, port, timeout=p.get("timeout", 30),
                                    context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(host, port, timeout=p.get("timeout", 30))
        try:
            if tls == "starttls":
                conn.starttls(context=ssl.create_default_context())
            if p.get("username"):
                conn.login(p["username"], p["password"])
            refused = conn.send_message(msg, from_addr=sender, to_addrs=list(spec.mail_to))
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
    except smtplib.SMTPRecipientsRefused as e:
        raise TaskFailed("%s: every recipient was refused: %s" % (what, _smtp_refusals(e.recipients))) from None
    except smtplib.SMTPAuthenticationError as e:
        # The server's reply only; the password never goes into a message.
        raise TaskFailed("%s: authentication as %r failed: %s" % (what, p.get("username"), _smtp_reply(e))) from None
    except smtplib.SMTPResponseException as e:
        raise TaskFailed("%s: %s" % (what, _smtp_reply(e))) from None
    except (smtplib.SMTPException, OSError) as e:
        raise TaskFailed("%s: %s" % (what, e or type(e).__name__)) from None
    if refused:
        sent = [r for r in spec.mail_to if r not in refused]
        raise TaskFailed("%s: sent to %s, but refused for %s" % (what, ", ".join(sent), _smtp_refusals(refused)))
    return list(spec.mail_to)


def _smtp_reply(e):
    text = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
    return "%s %s" % (e.smtp_code, " ".join(text.split()))


def _smtp_refusals(refused):
    parts = []
    for rcpt, (code, text) in refused.items():
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        parts.append("%s (%s %s)" % (rcpt, code, " ".join(text.split())))
    return "; ".join(parts)


def sns_subject(subject):
    """SNS takes a subject of printable ASCII, no line break, under 100 characters."""
    text = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in subject).strip()
    return (text[:SNS_SUBJECT_MAX - 3] + "...") if len(text) > SNS_SUBJECT_MAX else (text or "Boot Report")


def send_sns(spec, subject, body):
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise MissingLibraryError("boto3", "the aws-sns boot report MUA") from None
    p = spec.mua_param
    sent = []
    try:
        session = boto3.session.Session(profile_name=p.get("profile"), region_name=p.get("region"))
        client = session.client("sns", endpoint_url=p.get("endpoint-url"))
    except (BotoCoreError, ClientError, ValueError) as e:
        raise TaskFailed("boot report (aws-sns): %s" % e) from None
    for arn in spec.mail_to:
        kwargs = {"Message": body, "Subject": sns_subject(subject)}
        # Topic ARNs go in TopicArn; platform endpoint ARNs in TargetArn.
        kwargs["TargetArn" if ":endpoint/" in arn else "TopicArn"] = arn
        try:
            client.publish(**kwargs)
        except (BotoCoreError, ClientError) as e:
            done = "; already published to %s" % ", ".join(sent) if sent else ""
            raise TaskFailed("boot report (aws-sns): publishing to %s failed: %s%s" % (arn, e, done)) from None
        sent.append(arn)
    return sent


_SENDERS = {"mailx": send_mailx, "sendmail": send_sendmail, "smtp": send_smtp, "aws-sns": send_sns}


def send(spec, subject, body):
    """Hand the report to the MUA. Returns the recipients it was sent to;
    raises TaskFailed (with the MUA's error) when it was not sent."""
    return _SENDERS[spec.mua](spec, subject, body)


# ---------------------------------------------------------------------------
# The whole report
# ---------------------------------------------------------------------------
def _log(rt, level, msg):
    if rt is not None:
        rt.log(level, msg)


def run(spec, rt=None, check_mode=False, mark_clean=False):
    """Make the boot report (or, with `mark_clean`, record a clean shutdown).

    Waits for boot-wait and delay, records this boot, composes the report and
    sends it. Check mode neither waits, nor writes state, nor sends. Returns
    subject, body, recipients, sent, mua, previous_shutdown, previous_boot.
    """
    if mark_clean:
        doc = mark_clean_shutdown()
        _log(rt, VL_INFO, "boot report: clean shutdown of boot %s recorded" % doc["bootid"])
        return {"marked_clean": True, "bootid": doc["bootid"], "sent": False, "changed": True}
    if spec is None:
        raise ConfigError("boot-report", "the configuration has no boot-report object")
    facts = gather_facts(spec, check_mode=check_mode)
    if "boot-wait" in facts:
        _log(rt, VL_DEBUG, "boot report: systemd reached state %s" % facts["boot-wait"].get("state"))
    if spec.delay and not check_mode:
        _log(rt, VL_DEBUG, "boot report: waiting %s s before sending" % spec.delay)
        time.sleep(spec.delay)
    boot = current_boot()
    if check_mode:
        previous = peek_previous(boot=boot)
    else:
        try:
            previous = record_boot(boot=boot)
        except TaskFailed as e:
            # The report matters more than the record: send it anyway.
            _log(rt, VL_WARNING, "%s; the report says the previous shutdown is unknown" % e)
            previous = {"shutdown": "unknown", "reason": str(e)}
    subject, body = compose(spec, facts=facts, previous=previous)
    result = {"subject": subject, "body": body, "recipients": list(spec.mail_to), "mua": spec.mua,
              "sent": False, "previous_shutdown": previous.get("shutdown", "unknown"),
              "previous_boot": {k: previous.get(k) for k in ("bootid", "start", "end")}
              if previous.get("shutdown") in ("clean", "unclean") else None}
    if check_mode:
        result["changed"] = spec.mua != "stdout"
        return result
    if spec.mua == "stdout":
        out = getattr(rt, "stdout", None)
        if out is not None:
            out.write(("Subject: %s\n\n%s" % (subject, body)).encode("utf-8"))
            out.flush()
        result["changed"] = False
        return result
    result["recipients"] = send(spec, subject, body)
    result["sent"] = True
    result["changed"] = True
    _log(rt, VL_INFO, "boot report sent with %s to %s" % (spec.mua, ", ".join(result["recipients"])))
    return result
