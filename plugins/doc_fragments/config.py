# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The options that pick a task of the PALHM config on the host
    (PalhmModule's config_argument_spec())."""

    DOCUMENTATION = r"""
options:
  config:
    description:
      - Path of the PALHM config file on the target host. Defaults to C(/etc/palhm/palhm.conf), else
        C(/etc/palhm/palhm.jsonc) when only that one exists.
    type: path
  task:
    description:
      - Id of the task of O(config) to run.
    type: str
    default: default
"""
