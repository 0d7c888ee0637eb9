# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """What every palhm module shares: the attributes (check mode, each
    module says what it does there; no diff mode; POSIX targets) and how
    failures are reported (PalhmModule in module_utils/_module.py)."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - >-
    On failure the module returns, besides C(msg) (one line, without secrets), C(error_type), the class of the
    engine's error (for example C(ConfigError), C(StageError), C(LockHeldError), C(MissingLibraryError)), and
    C(exit_code), the exit code the C(palhm) command has for the same failure (2 for a config error, 3 for a
    lock held by another run, ...). An unexpected error is reported as C(palhm internal error: ...) with its
    traceback in C(exception).
"""
