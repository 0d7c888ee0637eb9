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


def loads(text, comments=True):
    """Parse JSON (or JSONC when `comments`) text; raises ValueError."""
    if comments:
        text = strip(text)
    return json.loads(text)
