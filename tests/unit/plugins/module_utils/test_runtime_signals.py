# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cancel_on_signals: signals cancel the run while it works; the CLI's way
out (restore=False) ignores them, because Python's finalisation resets the
handlers it installed to SIG_DFL and a signal in that window killed a process
whose copy was already committed (the CI cancels scenario, exit -2)."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.palhm.palhm.plugins.module_utils.palhm.runtime import cancel_on_signals

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class FakeRuntime:
    def __init__(self):
        self.cancelled = []

    def cancel(self, reason):
        self.cancelled.append(reason)


@pytest.fixture
def saved_handlers():
    saved = {s: signal.getsignal(s) for s in SIGNALS}
    yield saved
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_inside_cancels_the_run(saved_handlers, signum):
    rt = FakeRuntime()
    with cancel_on_signals(rt):
        os.kill(os.getpid(), signum)
    assert rt.cancelled == [signal.Signals(signum).name]


def test_restore_true_puts_the_previous_handlers_back(saved_handlers):
    with cancel_on_signals(FakeRuntime()):
        pass
    assert {s: signal.getsignal(s) for s in SIGNALS} == saved_handlers


@pytest.mark.parametrize("signum", SIGNALS)
def test_restore_false_ignores_signals_on_the_way_out(saved_handlers, signum):
    rt = FakeRuntime()
    with cancel_on_signals(rt, restore=False):
        pass
    assert signal.getsignal(signum) is signal.SIG_IGN
    os.kill(os.getpid(), signum)  # would kill the test process under SIG_DFL
    assert not rt.cancelled
