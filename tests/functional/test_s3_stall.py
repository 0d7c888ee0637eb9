# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stalled store never hangs a run (issue 12 item 10).

The real `palhm` command against moto, with tests/helpers/tcp_proxy.py in
between: the proxy passes everything until the test stalls it; from then on
it accepts connections and stops reading and answering, like an S3 endpoint
whose disks are full or whose network went away. Part threads block in
socket send, the way the Ceph OSD-full incident left them (an upload hung 9
minutes in S3Sink.abort and ignored SIGTERM). What must hold: SIGTERM ends
the run with exit 4 within a few seconds (abort-timeout, default 5 s, plus
the stages' 2 s grace); without a signal the run fails within the deadlines
of docs/config.md; no traceback; the message names the store; the next run
against a working store removes what the stalled one could not.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers"))

from conftest import marker_pids, wait_for  # noqa: E402  pylint: disable=wrong-import-position
from s3_story import ProxiedStory  # noqa: E402  pylint: disable=wrong-import-position

# Short deadlines for the stories without a signal (docs/config.md: a
# request gives up after max-attempts x (connect-timeout + read-timeout)
# plus botocore's backoff, under 1 s here; the rollback after abort-timeout).
SHORT = {"connect-timeout": 1, "read-timeout": 2, "max-attempts": 2, "abort-timeout": 2}
SHORT_FAIL_BOUND = 2 * (1 + 2) + 1 + 2 + 2  # one request's budget + backoff + abort + stage grace
SLACK = 6.0  # a loaded 2-core machine


@pytest.fixture
def story(moto, tmp_path):
    s = ProxiedStory(moto, tmp_path)
    s.marker = "palhm-stall-%s" % os.urandom(6).hex()
    yield s
    s.close()
    for pid in marker_pids(s.marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def streaming_object(story, total=96 << 20):
    """An object streamed at about 12 MiB/s: the store stalls mid-upload."""
    # SIGPIPE as the default action, like a real dump tool: palhm closing
    # the pipe ends it without a Python traceback on its stderr.
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
            "block = b'x' * 262144\n"
            "for i in range(%d):\n"
            "    sys.stdout.buffer.write(block)\n"
            "    sys.stdout.flush()\n"
            "    time.sleep(0.02)\n" % (total // 262144))
    return {"path": "data/stream.bin", "pipeline": [
        {"type": "exec-inline", "argv": [sys.executable, "-c", code], "env": {"PALHM_TEST_MARKER": story.marker}}]}


def stall_once_uploading(story, proc):
    """Stall the proxy once the multipart upload has begun and a part is
    on its way, so part threads block in send."""
    assert wait_for(lambda: story.uploads() or proc.poll() is not None, timeout=60, interval=0.05), \
        "no multipart upload within 60 s"
    assert proc.poll() is None, proc.communicate()[1]
    time.sleep(0.5)
    story.proxy.stall()
    return time.monotonic()


def assert_one_clear_message(story, stderr):
    assert "Traceback" not in stderr, stderr
    assert "s3://%s/%s" % (story.bucket, story.root) in stderr, stderr


def assert_next_run_cleans_up(story):
    direct = story.config([{"path": "ok.txt", "pipeline": [{"type": "exec-inline", "argv": ["echo", "ok"]}]}],
                          name="direct.conf", direct=True)
    proc = story.palhm(direct, "run", "backup")
    assert proc.returncode == 0, proc.stderr
    assert story.uploads() == []
    listed = json.loads(story.palhm(direct, "list", "backup", "--json").stdout)
    assert [c["state"] for c in listed] == ["complete"]


def test_sigterm_under_a_stalled_store_exits_4_within_seconds_and_names_what_is_left(story):
    conf = story.config([streaming_object(story)])  # the default deadlines
    proc = story.start(conf, "run", "backup")
    try:
        stall_once_uploading(story, proc)
        time.sleep(1.0)  # parts in flight are stuck in send now
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            stderr = proc.communicate(timeout=120)[1]
        except Exception:  # noqa: BLE001 - reported below
            stderr = "still running after 120 s"
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print("exit %s %.1f s after SIGTERM:\n%s" % (proc.returncode, elapsed, stderr))
    assert proc.returncode == 4, stderr
    assert elapsed < 5 + 2 + SLACK, "exit %.1f s after SIGTERM: %s" % (elapsed, stderr)
    assert "cancel" in stderr.lower()
    assert_one_clear_message(story, stderr)
    # What the stalled store could not do is named, and left to the next run.
    assert "next run" in stderr, stderr
    assert wait_for(lambda: not marker_pids(story.marker), timeout=5), "stage processes left"
    assert_next_run_cleans_up(story)


def test_a_store_that_stalls_mid_upload_fails_the_run_within_the_configured_deadlines(story):
    conf = story.config([streaming_object(story)], **SHORT)
    proc = story.start(conf, "run", "backup")
    try:
        t0 = stall_once_uploading(story, proc)
        try:
            stderr = proc.communicate(timeout=180)[1]
        except Exception:  # noqa: BLE001 - reported below
            stderr = "still running after 180 s"
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print("exit %s %.1f s after the stall:\n%s" % (proc.returncode, elapsed, stderr))
    assert proc.returncode == 1, stderr
    assert elapsed < SHORT_FAIL_BOUND + SLACK, "failed %.1f s after the stall: %s" % (elapsed, stderr)
    assert_one_clear_message(story, stderr)
    assert wait_for(lambda: not marker_pids(story.marker), timeout=5), "stage processes left"
    assert_next_run_cleans_up(story)


def test_a_store_stalled_from_the_start_fails_the_run_within_one_request_budget(story):
    story.proxy.stall()
    conf = story.config([streaming_object(story, total=1 << 20)], **SHORT)
    t0 = time.monotonic()
    proc = story.palhm(conf, "run", "backup", timeout=180)
    elapsed = time.monotonic() - t0
    print("exit %s after %.1f s:\n%s" % (proc.returncode, elapsed, proc.stderr))
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 2 * (1 + 2) + 1 + SLACK, "failed after %.1f s: %s" % (elapsed, proc.stderr)
    assert_one_clear_message(story, proc.stderr)
    assert story.keys() == []


def test_sigterm_while_a_stalled_store_holds_the_first_listing_exits_4_at_once(story):
    story.proxy.stall()
    conf = story.config([streaming_object(story, total=1 << 20)])  # the default deadlines (minutes)
    proc = story.start(conf, "run", "backup")
    try:
        # palhm is inside the run (signals are cancellations) once it waits on the store.
        assert wait_for(lambda: story.proxy.counts["stalled_connections"] or proc.poll() is not None,
                        timeout=60), "palhm never reached the store"
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            stderr = proc.communicate(timeout=120)[1]
        except Exception:  # noqa: BLE001 - reported below
            stderr = "still running after 120 s"
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print("exit %s %.1f s after SIGTERM at the start:\n%s" % (proc.returncode, elapsed, stderr))
    assert proc.returncode == 4, stderr
    assert elapsed < 1 + SLACK, stderr
    assert "cancel" in stderr.lower()
    assert_one_clear_message(story, stderr)
    assert story.keys() == []
