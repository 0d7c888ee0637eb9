# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A SIGTERM/SIGINT that arrives just after the copy was committed must not
kill palhm by signal: cron and systemd would record a killed run for a good
backup. Python's finalisation puts SIG_DFL back for the handlers it installed,
so the CLI ignores the signals on its way out (the CI cancels scenario hit
this window: exit -2, no message, the copy complete)."""

from __future__ import annotations

import signal
import time

import pytest

from test_cli import backup_config

RUNS = 8


def _new_copies(palhm, before):
    return [n for n in palhm.root_entries() if n not in before and not n.endswith(".palhm-partial")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_right_after_the_commit_never_kills_palhm(palhm, sig):
    backup_config(palhm, [{"path": "small.bin", "pipeline": [palhm.stage("head", "-c", "65536", "/dev/urandom")]}])
    outcomes = []
    for delay in [0.0, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1][:RUNS]:
        before = set(palhm.root_entries())
        proc = palhm.start("-q", "run", "backup")
        deadline = time.monotonic() + 60
        while not _new_copies(palhm, before) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
        committed = bool(_new_copies(palhm, before))
        outcomes.append((delay, proc.returncode, committed, err.strip()[-200:]))
    for delay, rc, committed, err in outcomes:
        assert rc >= 0, "killed by signal %d (delay %.2f s after the commit; copy committed: %s)" % (
            -rc, delay, committed)
        if committed:
            assert rc == 0, (delay, rc, err)
        else:
            assert rc == 4 and "cancel" in err.lower(), (delay, rc, err)
