# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routine task (placeholder: being written)."""

from __future__ import annotations

from .errors import ConfigError


def parse_task(raw, where, ctx):
    raise ConfigError(where, "task type routine is not available yet")
