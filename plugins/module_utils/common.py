# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module arguments -> engine config, for PalhmModule (_module.py), which
every module uses. Plain functions over anything with ``params``, ``warn()``
and optionally ``no_log_values``, so the reliability fuzzer can run them
without Ansible. Not part of the standalone engine."""

from __future__ import annotations

from ansible_collections.palhm.palhm.plugins.module_utils.palhm import config as palhm_config

DEFAULT_CONFIG = palhm_config.DEFAULT_PATH  # or DEFAULT_FALLBACK when only that one exists


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
        no_log.update(v for v in getattr(cfg, "secrets", ()) if isinstance(v, str) and v)
    for w in cfg.warnings:
        module.warn(w)
    return cfg
