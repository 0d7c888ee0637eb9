# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pipelines of real processes: data flows like `a | b | c > file`, and when
one stage fails the error blames that stage, not the ones that died of SIGPIPE."""

from __future__ import annotations

import hashlib
import os
import signal

import pytest

from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import StageError
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.execs import Exec, parse_ec
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.pipeline import (
    STDOUT_CAPTURE, STDOUT_PIPE, TAIL_BYTES, Pipeline)


def ex(*argv, ec="==0", env=None):
    return Exec(argv=tuple(argv), env=env or {}, ec=parse_ec(ec, "ec"))


def sh(script, ec="==0"):
    return ex("/bin/sh", "-c", script, ec=ec)


def run_to_file(tmp_path, *stages):
    out = tmp_path / "object"
    fd = os.open(str(out), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        pipe = Pipeline(list(stages), "object x", fd).start()
        results = pipe.wait()
    finally:
        os.close(fd)
    return pipe, results, out


def test_stages_stream_into_the_file_like_a_shell_pipeline(tmp_path):
    pipe, results, out = run_to_file(tmp_path, ex("seq", "1", "100000"), ex("grep", "7"), ex("sort", "-n"))
    assert pipe.failure(results) is None
    expected = sorted(str(i) for i in range(1, 100001) if "7" in str(i))
    assert out.read_text().split() == sorted(expected, key=int)
    assert [r.returncode for r in results] == [0, 0, 0]


def test_the_last_stage_output_can_be_read_through_a_pipe():
    pipe = Pipeline([ex("printf", "hello")], "object x", STDOUT_PIPE).start()
    data = b""
    while True:
        chunk = os.read(pipe.out_fd, 65536)
        if not chunk:
            break
        data += chunk
    results = pipe.wait()
    assert data == b"hello" and pipe.failure(results) is None


def test_extra_environment_reaches_the_stage():
    pipe = Pipeline([ex("/bin/sh", "-c", 'printf %s "$PALHM_TEST_VAR"', env={"PALHM_TEST_VAR": "v1"})],
                    "step", STDOUT_CAPTURE).start()
    pipe.wait()
    assert pipe.stdout_tail.text() == "v1"


def test_a_failing_middle_stage_is_blamed_not_the_producer_killed_by_sigpipe(tmp_path):
    producer = ex("yes", "palhm-producer")
    middle = sh('head -c 1000 >/dev/null; echo "gpg: no public key" >&2; exit 3')
    last = ex("cat")
    pipe, results, dummy = run_to_file(tmp_path, producer, middle, last)
    assert results[0].returncode == -signal.SIGPIPE
    err = pipe.failure(results)
    assert isinstance(err, StageError)
    assert err.stage_index == 1
    assert err.returncode == 3
    assert err.argv == list(middle.argv)
    text = str(err)
    assert "object x, stage 2 of 3" in text
    assert "exited with code 3" in text
    assert "gpg: no public key" in text
    assert "'yes'" not in text and "SIGPIPE" not in text


def test_a_failing_last_stage_is_blamed_when_upstream_dies_of_sigpipe(tmp_path):
    pipe, results, dummy = run_to_file(tmp_path, ex("yes"), ex("cat"), sh("head -c 10 >/dev/null; exit 7"))
    err = pipe.failure(results)
    assert err.stage_index == 2 and err.returncode == 7


def test_a_failing_producer_is_blamed(tmp_path):
    pipe, results, dummy = run_to_file(tmp_path, sh("echo 'tar: /nonexistent: Cannot stat' >&2; exit 2"),
                                       ex("gzip", "-c"))
    err = pipe.failure(results)
    assert err.stage_index == 0 and err.returncode == 2
    assert "Cannot stat" in str(err)


def test_accepted_exit_codes_are_not_failures(tmp_path):
    pipe, results, out = run_to_file(tmp_path, sh("echo data; exit 1", ec="<2"), ex("cat"))
    assert pipe.failure(results) is None
    assert out.read_text() == "data\n"


def test_a_stage_killed_by_a_signal_is_reported_with_the_signal(tmp_path):
    pipe, results, dummy = run_to_file(tmp_path, ex("echo", "x"), sh("kill -KILL $$"))
    err = pipe.failure(results)
    assert err.stage_index == 1
    assert "killed by SIGKILL" in str(err)


def test_when_only_sigpipe_deaths_remain_the_truncating_stage_is_reported(tmp_path):
    # `head` stopped reading and exited 0: the data is cut short, which must not pass silently.
    pipe, results, dummy = run_to_file(tmp_path, ex("yes"), ex("head", "-c", "10"))
    err = pipe.failure(results)
    assert err is not None
    assert err.stage_index == 0
    assert "SIGPIPE" in str(err)


def test_a_program_that_cannot_start_is_named(tmp_path):
    with pytest.raises(StageError) as exc:
        run_to_file(tmp_path, ex("echo", "x"), ex("/nonexistent/palhm-no-such-program"))
    assert "stage 2" in str(exc.value)
    assert "/nonexistent/palhm-no-such-program" in str(exc.value)


def test_stderr_tails_are_bounded_and_keep_the_last_lines(tmp_path):
    # 2 MB of stderr noise, then the line that explains the failure.
    script = ("echo first-$((20+6))-line >&2; yes 'noise line' | head -c 2000000 >&2; "
              "echo 'FINAL: disk quota exceeded' >&2; exit 4")
    pipe, results, dummy = run_to_file(tmp_path, ex("echo", "x"), sh(script))
    assert len(results[1].stderr_tail.encode()) <= TAIL_BYTES
    err = pipe.failure(results)
    assert "FINAL: disk quota exceeded" in str(err)
    assert "first-26-line" not in str(err)
    assert len(str(err)) < 2 * TAIL_BYTES


def test_terminate_stops_every_running_stage():
    pipe = Pipeline([ex("sleep", "30"), ex("sleep", "30")], "object slow", STDOUT_CAPTURE).start()
    pids = [p.pid for p in pipe.procs]
    pipe.terminate(grace=2.0)
    results = pipe.wait()
    assert all(r.returncode == -signal.SIGTERM for r in results)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_large_streams_pass_unchanged(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(8 << 20))
    pipe, results, out = run_to_file(tmp_path, ex("cat", str(src)), ex("gzip", "-1", "-c"), ex("gzip", "-d", "-c"))
    assert pipe.failure(results) is None
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
