# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets never printed: the one place that decides what is a secret and
hides it, for every output palhm makes (``palhm config``, log lines and ``-v``
output, forwarded stage stderr/stdout, error messages, module results,
manifests, failure pings).

What is a secret:

- A *secret name* contains, in any case, ``PASS`` (PASSWORD, PASSWD,
  PASSPHRASE), ``PWD`` (but not the shell's ``PWD``/``OLDPWD``), ``SECRET``,
  ``TOKEN``, ``KEY``, ``CREDENTIAL``, ``COOKIE`` or ``PRIVATE``, or ends in
  ``_AUTH`` (REDISCLI_AUTH) or is ``AUTH``.
- The value of an Exec ``env`` entry with a secret name (PGPASSWORD,
  MYSQL_PWD, BORG_PASSPHRASE, AWS_SECRET_ACCESS_KEY, ...).
- In an argv, and in mailx ``int-opts``: the value of ``NAME=VALUE`` and of
  ``--NAME VALUE`` when NAME is a secret name (``--password=x``,
  ``smtp-auth-password=x``, ``-S smtp-auth-password-bob@host=x`` of
  v15-compat), the password of a URL (``smtps://bob:x@host``), and inside
  one argv item (a shell command, a JSON body) ``--NAME VALUE``,
  ``NAME: VALUE`` and ``"NAME": "VALUE"``.
- The smtp ``password``, the aws-s3 ``secret-key`` and ``session-token``, ping URLs.

How it is hidden: the value becomes MASK where the config is shown
(describe()), and every value collected from the loaded config (see
remember(), at least MIN_TEXT_LEN characters) is replaced by MASK wherever it
appears in text palhm prints or returns, a stage's stderr included (a stage
that echoes its environment). Text is also scrubbed of ``NAME=VALUE``,
``--NAME VALUE``, ``NAME: VALUE`` (secret NAME) and URL passwords it contains. A secret that
is none of these (``mysqldump -pSECRET``) cannot be recognised: pass it in
``env`` or a file.
"""

from __future__ import annotations

import re
import threading

MASK = "********"
# Shorter known values are hidden where the config is shown, but not searched
# for in free text (a 1-character value would mask every digit).
MIN_TEXT_LEN = 4

_NAME = re.compile(r"(?i)pass|pwd|secret|token|key|credential|cookie|private|(?:^|_)auth$")
_NOT_SECRET = frozenset(("PWD", "OLDPWD"))
_VALUE = r"""('[^']*'|"[^"]*"|[^\s,;&'"\])}]+)"""
_NAME_CHARS = r"[\w.@-]*"
_WORDS = r"(?:pass|pwd|secret|token|key|credential|cookie|private|auth)"
# NAME=VALUE (PGPASSWORD=x, --password=x, smtp-auth-password-bob@host=x)
_ASSIGN = re.compile(r"(?i)(?<![\w.@-])(" + _NAME_CHARS + _WORDS + _NAME_CHARS + r")(\s*=\s*)" + _VALUE)
# --NAME VALUE inside one string (a shell command: sh -c "mysqldump --password x")
_FLAG = re.compile(r"(?i)(?<![\w.@-])(--?" + _NAME_CHARS + _WORDS + _NAME_CHARS + r")(\s+)(?!-)" + _VALUE)
# "password: VALUE", JSON's "password": "VALUE", "Bearer VALUE"
_COLON = re.compile(r"(?i)(\b(?:password|passwd|passphrase|secret|token|(?:api|access|secret|private)[_ -]?key|"
                    r"credentials?|pwd)\b[\"']?\s*:\s*|\bbearer\s+)" + _VALUE)
# scheme://user:password@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s@:]*):[^/\s@]*@")

_lock = threading.Lock()
_known = set()
_ordered = ()


def is_secret_name(name):
    """Whether an env or option name says its value is a secret (the rule above)."""
    if not isinstance(name, str) or name.upper() in _NOT_SECRET:
        return False
    return bool(_NAME.search(name))


def remember(values):
    """Add secret values (from the loaded config) to those hidden in all text."""
    global _ordered
    with _lock:
        for v in values:
            if isinstance(v, str) and len(v) >= MIN_TEXT_LEN:
                _known.add(v)
        # Longest first: a secret that contains another is hidden whole.
        _ordered = tuple(sorted(_known, key=len, reverse=True))


def known():
    return frozenset(_ordered)


def _assign(m):
    name = m.group(1).lstrip("-")
    if not is_secret_name(name):
        return m.group(0)
    return m.group(1) + m.group(2) + MASK


def values(value):
    """`value` with every known secret replaced by MASK (for a stage's output
    forwarded as it is: patterns would mangle ordinary output)."""
    if not isinstance(value, str) or not value:
        return value
    for secret in _ordered:
        if secret in value:
            value = value.replace(secret, MASK)
    return value


def text(value):
    """`value` with every known secret and every recognisable credential
    (NAME=VALUE, NAME: VALUE, URL passwords) replaced by MASK."""
    if not isinstance(value, str) or not value:
        return value
    value = values(value)
    value = _USERINFO.sub(lambda m: m.group(1) + m.group(2) + ":" + MASK + "@", value)
    value = _ASSIGN.sub(_assign, value)
    value = _FLAG.sub(_assign, value)
    return _COLON.sub(lambda m: m.group(1) + MASK, value)


def argv(args):
    """An argument vector fit to print: `--NAME VALUE` with a secret NAME
    has VALUE masked, and each item is text()-redacted."""
    out = []
    mask_next = False
    for item in args:
        item = str(item)
        if mask_next and not item.startswith("-"):
            out.append(MASK)
            mask_next = False
            continue
        mask_next = item.startswith("-") and "=" not in item and is_secret_name(item.lstrip("-"))
        out.append(text(item))
    return out


def env(mapping):
    """An env map fit to print: values of secret names masked."""
    return {k: (MASK if is_secret_name(k) else text(v)) for k, v in mapping.items()}


def walk(value):
    """A copy of a JSON-like value with every string text()-redacted (module
    results, plans); dict keys are kept."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {k: walk(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [walk(v) for v in value]
    return value


def secrets_in_argv(args):
    """Secret values an argv carries (see argv()), to remember()."""
    found = []
    args = [str(a) for a in args]
    for i, item in enumerate(args):
        for m in list(_ASSIGN.finditer(item)) + list(_FLAG.finditer(item)):
            if is_secret_name(m.group(1).lstrip("-")):
                found.append(m.group(3).strip("'\""))
        found += [m.group(2).strip("'\"") for m in _COLON.finditer(item)]
        for m in re.finditer(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s@:]*:([^/\s@]*)@", item):
            found.append(m.group(1))
        if item.startswith("-") and "=" not in item and is_secret_name(item.lstrip("-")) and i + 1 < len(args) \
                and not args[i + 1].startswith("-"):
            found.append(args[i + 1])
    return found


def secrets_in_env(mapping):
    return [v for k, v in mapping.items() if is_secret_name(k)]


def redact_url(url):
    """scheme://host[:port]/... : what a log may show of a URL whose path or
    userinfo may be a secret (healthchecks.io ping URLs)."""
    import urllib.parse
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        if ":" in host:
            host = "[%s]" % host
        port = ":%d" % parts.port if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    return "%s://%s%s/..." % (parts.scheme, host, port)
