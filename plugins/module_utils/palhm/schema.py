# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small validation helpers: every check names the JSON path of the value.

Paths look like ``tasks[0].objects[2].pipeline[1].exec-id``. Each helper
returns the (converted) value or raises ConfigError(path, message).
"""

from __future__ import annotations

import decimal
import difflib
import json
import math

from . import redact
from .errors import ConfigError


def join(path, key):
    """The JSON path of `key` (a str key or an int index) under `path`."""
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    if not path or path.endswith(" "):  # "" or a "FILE: " prefix
        return "%s%s" % (path or "", key)
    return "%s.%s" % (path, key)


def show(value, limit=60):
    """A short, unambiguous rendering of a value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text


# bool before int: a JSON boolean is a Python int too.
_TYPE_NAMES = ((bool, "a boolean"), (dict, "an object"), (list, "a list"), (str, "a string"),
               (int, "an integer"), (float, "a number"))


def _kind(value):
    if value is None:
        return "null"
    for typ, name in _TYPE_NAMES:
        if isinstance(value, typ):
            return name
    return type(value).__name__


def _got(value):
    """What a message says it got: ``null``, or the kind and the value."""
    return "null" if value is None else "%s %s" % (_kind(value), show(value))


COMMENT_PREFIXES = ("_", "#", "//")


def is_comment_key(key):
    """Keys that are comments by the common JSON convention (``"_comment"``,
    ``"#"``, ``"// note"``): ignored wherever obj() checks keys."""
    return isinstance(key, str) and key.startswith(COMMENT_PREFIXES)


def obj(value, path, required=(), optional=()):
    """Check a JSON object: its type, required keys, and no unknown key
    (comment keys, see is_comment_key, are allowed anywhere)."""
    if not isinstance(value, dict):
        raise ConfigError(path, "expected an object, got %s" % _got(value))
    allowed = set(required) | set(optional)
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(path, "key %s is not a string" % show(key))
        if key not in allowed and not is_comment_key(key):
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            msg = "unknown key"
            if hint:
                msg += " (did you mean %r?)" % hint[0]
            elif allowed:
                msg += " (allowed: %s)" % ", ".join(sorted(allowed))
            raise ConfigError(join(path, key), msg)
    for key in required:
        if key not in value:
            raise ConfigError(join(path, key), "required key is missing")
    return value


def tagged(value, path, choices, key="type"):
    """An object whose `key` (required) selects its kind; -> the kind."""
    if not isinstance(value, dict):
        obj(value, path)
    kind = value.get(key)
    if kind is None:
        raise ConfigError(join(path, key), "required key is missing (one of %s)" % ", ".join(sorted(choices)))
    return choice(kind, join(path, key), choices)


def string(value, path, nonempty=True):
    if not isinstance(value, str):
        raise ConfigError(path, "expected a string, got %s" % _got(value))
    if nonempty and not value:
        raise ConfigError(path, "must not be empty")
    if "\0" in value:
        raise ConfigError(path, "must not contain a NUL character")
    return value


def boolean(value, path):
    if not isinstance(value, bool):
        raise ConfigError(path, "expected a boolean (true or false), got %s" % _got(value))
    return value


def integer(value, path, minimum=None, maximum=None, allow_string=False):
    if allow_string and isinstance(value, str):
        try:
            value = int(value.strip(), 10)
        except ValueError:
            raise ConfigError(path, "expected an integer, got %s" % show(value)) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, "expected an integer, got %s" % _got(value))
    if minimum is not None and value < minimum:
        raise ConfigError(path, "must be >= %d, got %d" % (minimum, value))
    if maximum is not None and value > maximum:
        raise ConfigError(path, "must be <= %d, got %d" % (maximum, value))
    return value


def number(value, path, minimum=None, allow_string=True):
    """A finite real number (JSON number or numeric string)."""
    if allow_string and isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(path, "expected a number, got %s" % show(value)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, "expected a number, got %s" % _got(value))
    if math.isnan(value) or value in (float("inf"), float("-inf")):
        raise ConfigError(path, "must be a finite number, got %s" % show(value))
    if minimum is not None and value < minimum:
        raise ConfigError(path, "must be >= %s, got %s" % (minimum, value))
    return value


def choice(value, path, choices):
    string(value, path)
    if value not in choices:
        raise ConfigError(path, "must be one of %s, got %s" % (", ".join(sorted(choices)), show(value)))
    return value


def str_list(value, path, nonempty_items=True):
    if not isinstance(value, list):
        raise ConfigError(path, "expected a list of strings, got %s" % _got(value))
    for i, item in enumerate(value):
        string(item, join(path, i), nonempty=nonempty_items)
    return list(value)


def str_map(value, path):
    if not isinstance(value, dict):
        raise ConfigError(path, "expected an object of strings, got %s" % _got(value))
    for key, item in value.items():
        string(key, path, nonempty=True)
        if redact.is_secret_name(key) and not isinstance(item, str):
            # A secret's value is never shown, not even a wrong one.
            raise ConfigError(join(path, key), "expected a string, got %s (value hidden)" % _kind(item))
        string(item, join(path, key), nonempty=False)
    return dict(value)


def obj_list(value, path):
    if not isinstance(value, list):
        raise ConfigError(path, "expected a list, got %s" % _got(value))
    return value


def big_decimal(value, path):
    """The original's decimal type: JSON number or numeric string, +-inf allowed,
    no 2^53 limit, fraction ignored. Returns an int, or float('inf')/-inf."""
    if isinstance(value, bool):
        raise ConfigError(path, "expected a decimal number, got a boolean")
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("inf", "+inf", "infinity", "+infinity"):
            return float("inf")
        if text.lower() in ("-inf", "-infinity"):
            return float("-inf")
        try:
            dec = decimal.Decimal(text)
        except decimal.InvalidOperation:
            raise ConfigError(path, "expected a decimal number or \"Infinity\", got %s" % show(value)) from None
        if not dec.is_finite():
            raise ConfigError(path, "expected a decimal number or \"Infinity\", got %s" % show(value))
        return int(dec)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise ConfigError(path, "NaN is not a valid decimal")
        if value in (float("inf"), float("-inf")):
            return value
        return int(value)
    raise ConfigError(path, "expected a decimal number, got %s" % _got(value))


def file_mode(value, path):
    """An octal permission mode written as "750", "0640" or a JSON integer
    whose decimal digits are the octal digits (750)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    string(text, path)
    try:
        mode = int(text, 8)
    except ValueError:
        raise ConfigError(path, "expected an octal mode like \"750\", got %s" % show(value)) from None
    if mode < 0 or mode > 0o7777:
        raise ConfigError(path, "mode out of range: %s" % show(value))
    return mode
