# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring of task runs: Prometheus textfile metrics and health pings
(placeholder: being written)."""

from __future__ import annotations

from . import schema


def parse_pings(raw, path):
    schema.obj(raw, path, optional=("start", "success", "failure", "timeout"))
    return dict(raw)


def task_started(rt, task):
    """Called before a task runs (start ping). Never raises."""


def task_finished(rt, task, result, error, started):
    """Called after a task ran, with its result or error (metrics, success or
    failure ping). Never raises: a dead monitor must not fail a backup."""
