# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON with comments (``//``, ``/* */``) and trailing commas, parsed natively.

Comments are blanked out (newlines kept) so json's line and column numbers in
error messages still point into the original file.
"""

from __future__ import annotations

import json


def strip(text):
    """Return `text` with comments and trailing commas replaced by spaces."""
    out = list(text)
    i, n = 0, len(text)
    last_comma = None  # index of a comma that may turn out to be trailing
    while i < n:
        c = text[i]
        if c == '"':
            last_comma = None
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for j in range(i, end):
                if out[j] != "\n":
                    out[j] = " "
            i = end
            continue
        if c == ",":
            last_comma = i
        elif c in "]}":
            if last_comma is not None:
                out[last_comma] = " "
            last_comma = None
        elif not c.isspace():
            last_comma = None
        i += 1
    return "".join(out)


class DuplicateKeyError(ValueError):
    """A key appears twice in one JSON object; `path` is the JSON path of the
    second occurrence (``tasks[0].backend-param.root``)."""

    def __init__(self, path, key):
        self.path = path
        self.key = key
        super().__init__("duplicate key %s" % json.dumps(key))


class _Dup(dict):
    """An object that had a repeated key (found again by _find_dup)."""

    dup_key = None


def _pairs(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            d = _Dup(out)
            d.dup_key = key
            return d
        out[key] = value
    return out


def _find_dup(value, path):
    if isinstance(value, _Dup):
        return "%s.%s" % (path, value.dup_key) if path else value.dup_key, value.dup_key
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, (dict, list)):
            sub = "%s[%d]" % (path, key) if isinstance(key, int) else ("%s.%s" % (path, key) if path else key)
            found = _find_dup(item, sub)
            if found:
                return found
    return None


def loads(text, comments=True):
    """Parse JSON (or JSONC when `comments`) text; raises ValueError, or
    DuplicateKeyError when one object repeats a key (JSON leaves it undefined
    which one wins: a second ``root`` must not silently replace the first)."""
    if comments:
        text = strip(text)
    doc = json.loads(text, object_pairs_hook=_pairs)
    found = _find_dup(doc, "")
    if found:
        raise DuplicateKeyError(found[0], found[1])
    return doc
