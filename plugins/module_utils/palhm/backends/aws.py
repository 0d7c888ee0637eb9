# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""aws-s3 backend (placeholder: being written)."""

from __future__ import annotations

from ..errors import ConfigError


def parse_params(raw, path):
    raise ConfigError(path, "the aws-s3 backend is not available yet")


def make(params, task_id):
    raise NotImplementedError
