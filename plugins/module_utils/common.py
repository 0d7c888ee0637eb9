# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the palhm modules share: turning module arguments into an engine
config, and engine errors into fail_json. Not part of the standalone engine."""

from __future__ import annotations

import traceback

from ansible_collections.palhm.palhm.plugins.module_utils.palhm import config as palhm_config
from ansible_collections.palhm.palhm.plugins.module_utils.palhm import redact
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import MissingLibraryError, PalhmError

DEFAULT_CONFIG = palhm_config.DEFAULT_PATH  # or DEFAULT_FALLBACK when only that one exists


def config_args(**more):
    """argument_spec of a module that runs a task of the host's config:
    `config` and `task`, plus the module's own options `more`."""
    spec = dict(config=dict(type="path"), task=dict(type="str", default=palhm_config.DEFAULT_TASK))
    spec.update(more)
    return spec


def drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


def load_config(module, inline_task=None, include=None, execs=None, nb_workers=None, extra=None):
    """The engine Config: from inline arguments when `inline_task` (a raw task
    dict in config syntax) is given, else from the `config` file on the host."""
    if inline_task is not None:
        doc = {"tasks": [inline_task]}
        if include:
            doc["include"] = include
        if execs:
            doc["execs"] = execs
        if nb_workers is not None:
            doc["nb-workers"] = nb_workers
        doc.update(extra or {})
        return warn_config(module, palhm_config.from_dict(doc))
    return warn_config(module, palhm_config.load(module.params.get("config") or None))


def warn_config(module, cfg):
    """Show the config's warnings (keys accepted but ignored) as module
    warnings; the config's secrets (env passwords, int-opts, keys; see the
    engine's redact.py) join the module's no_log values, so Ansible hides
    them in the whole result, invocation included; -> cfg."""
    no_log = getattr(module, "no_log_values", None)
    if no_log is not None:
        no_log.update(getattr(cfg, "secrets", ()))
    for w in cfg.warnings:
        module.warn(w)
    return cfg


def run_engine(module, fn, **fail_extra):
    """Call fn() -> its result, secret-free (redact.walk); a PalhmError
    becomes fail_json with its one-line message."""
    try:
        return redact.walk(fn())
    except PalhmError as e:
        module.fail_json(msg=redact.text(str(e)), error_type=type(e).__name__, exit_code=e.exit_code, **fail_extra)
    except Exception as e:  # pylint: disable=broad-except
        module.fail_json(msg="palhm internal error: %s: %s" % (type(e).__name__, e),
                         exception=traceback.format_exc(), **fail_extra)


def check_query(module):
    """Before anything is read: a `query` needs jmespath on the host
    (missing_required_lib otherwise) and must compile; -> the compiled
    expression or None."""
    from ansible.module_utils.basic import missing_required_lib
    from ansible_collections.palhm.palhm.plugins.module_utils.palhm import query as palhm_query
    expression = module.params.get("query")
    if expression is None:
        return None
    try:
        return palhm_query.compile_expression(expression, what="query")
    except MissingLibraryError as e:
        module.fail_json(msg=missing_required_lib(e.library) + " (%s)" % e)
    except PalhmError as e:
        module.fail_json(msg=str(e), error_type=type(e).__name__, exit_code=e.exit_code)
    return None  # pragma: no cover - fail_json exits


def add_query_result(module, compiled, result):
    """result + ``query_result``: what `compiled` selects from `result`."""
    from ansible_collections.palhm.palhm.plugins.module_utils.palhm import query as palhm_query
    if compiled is not None:
        result["query_result"] = run_engine(module, lambda: palhm_query.search(compiled, result, what="query"))
    return result
