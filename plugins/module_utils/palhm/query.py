# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JMESPath selection from palhm's JSON output (``--query`` of the CLI, the
``query`` option of the modules), like awscli's ``--query``.

jmespath is optional on hosts (the engine is standard library only): without
it a query is a MissingLibraryError (one line; modules turn it into
missing_required_lib), and nothing else needs it. A bad expression is a
UsageError naming the expression.
"""

from __future__ import annotations

from . import schema
from .errors import MissingLibraryError, UsageError

LIBRARY = "jmespath"


def _jmespath(what):
    try:
        import jmespath  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise MissingLibraryError(LIBRARY, what) from None
    return jmespath


def available():
    try:
        _jmespath("")
    except MissingLibraryError:
        return False
    return True


def compile_expression(expression, what="--query"):
    """The compiled expression; checks it before anything is read."""
    jmespath = _jmespath(what)
    if not isinstance(expression, str) or not expression.strip():
        raise UsageError("%s: expected a JMESPath expression, got %s" % (what, schema.show(expression)))
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as e:
        raise UsageError("%s %s: invalid JMESPath expression: %s"
                         % (what, schema.show(expression), _one_line(e))) from None


def search(expression, data, what="--query"):
    """`data` selected by the JMESPath `expression` (a str or compiled)."""
    jmespath = _jmespath(what)
    compiled = compile_expression(expression, what) if isinstance(expression, str) else expression
    try:
        return compiled.search(data)
    except jmespath.exceptions.JMESPathError as e:
        raise UsageError("%s %s: %s" % (what, schema.show(getattr(compiled, "expression", expression)),
                                        _one_line(e))) from None


def _one_line(e):
    """jmespath's message without the expression and caret lines it repeats."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    first = lines[0] if lines else type(e).__name__
    if first.lower().startswith("invalid jmespath expression:"):
        first = first.split(":", 1)[1].strip()
    return first.rstrip(":") or type(e).__name__
