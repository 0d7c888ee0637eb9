# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The null backend: outputs are read and discarded (dry runs, checks)."""

from __future__ import annotations

from .. import schema
from .base import COMMON_PARAMS, Backend, HashingSink, parse_retention


class NullBackend(Backend):
    name = "null"
    stores = False

    def location(self, prefix=None):
        return "null:"

    def lock_key(self):
        return "null:" + self.task_id

    def open_sink(self, path, alloc_size=None):
        return HashingSink()


def parse_params(raw, path):
    # The original accepted the common parameters for every backend.
    schema.obj(raw, path, optional=COMMON_PARAMS)
    params = dict(raw)
    params["retention"] = parse_retention(raw, path)
    return params


def make(params, task_id):
    return NullBackend(params, task_id)
