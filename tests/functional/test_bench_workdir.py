# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/backup_bench.py --workdir DIR makes DIR when it does not exist yet."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def test_a_missing_workdir_is_made_not_a_traceback(tmp_path):
    workdir = tmp_path / "not" / "there"
    env = dict(os.environ, PALHM_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "backup_bench.py"), "--workdir", str(workdir),
                           "--size-mib", "1", "--rounds", "1"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert workdir.is_dir()
