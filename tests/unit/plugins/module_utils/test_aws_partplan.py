# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The aws-s3 part-size plan: no stream up to the S3 maximum object size
(5 TiB) needs more than 10,000 parts, with or without alloc-size, and every
part is within S3's limits. Proven on the plan itself, without uploading
80 GiB; plus how the sink cuts a stream into parts and parameter checks."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time

import pytest

from ansible_collections.palhm.palhm.plugins.module_utils.palhm.backends import aws
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.errors import BackendError, ConfigError

MiB, GiB, TiB = aws.MiB, aws.GiB, aws.TiB
S3_MAX_OBJECT = 5 * TiB
S3_MIN_PART, S3_MAX_PART, S3_MAX_PARTS = 5 * MiB, 5 * GiB, 10000

ALLOC_SIZES = [None, 0, 1, 5 * MiB - 1, 8 * MiB, 100 * MiB, 2 * GiB, 80 * GiB, 81 * GiB, 100 * GiB,
               999 * GiB, TiB, 3 * TiB, S3_MAX_OBJECT - 1, S3_MAX_OBJECT, 6 * TiB, 50 * TiB]
PART_SIZES = [None, 5 * MiB, 6 * MiB, 8 * MiB, 32 * MiB, 1 * GiB, 5 * GiB]


def plan(alloc_size=None, part_size=None):
    return [aws.part_size_for(n, alloc_size, part_size) for n in range(1, S3_MAX_PARTS + 1)]


def parts_needed(stream_size, sizes):
    """How many parts of the plan a stream of `stream_size` bytes takes."""
    for n, total in enumerate(itertools.accumulate(sizes), 1):
        if total >= stream_size:
            return n
    return None  # does not fit


@pytest.mark.parametrize("alloc_size", ALLOC_SIZES)
@pytest.mark.parametrize("part_size", [None, 5 * MiB])
def test_a_5_tib_stream_fits_in_10000_parts_whatever_alloc_size_says(alloc_size, part_size):
    sizes = plan(alloc_size, part_size)
    assert sum(sizes) >= S3_MAX_OBJECT
    assert parts_needed(S3_MAX_OBJECT, sizes) <= S3_MAX_PARTS


@pytest.mark.parametrize("alloc_size", ALLOC_SIZES)
@pytest.mark.parametrize("part_size", PART_SIZES)
def test_every_part_is_within_s3_limits_and_parts_never_shrink(alloc_size, part_size):
    sizes = plan(alloc_size, part_size)
    assert all(S3_MIN_PART <= s <= S3_MAX_PART for s in sizes)
    assert all(a <= b for a, b in zip(sizes, sizes[1:]))
    assert all(s % MiB == 0 for s in sizes)


def test_every_possible_first_part_size_reaches_5_tib():
    # first_part_size() only yields whole MiB between 6 MiB and 5 GiB, and the
    # plan is determined by it: check each of those 5,115 starts.
    starts = set()
    for alloc in [None] + [m * MiB * S3_MAX_PARTS for m in range(1, 5 * 1024 + 2)]:
        starts.add(aws.first_part_size(alloc))
    for part_size in range(S3_MIN_PART, S3_MAX_PART + 1, MiB):
        starts.add(aws.first_part_size(None, part_size))
    assert min(starts) == 6 * MiB and max(starts) == S3_MAX_PART
    assert all(s % MiB == 0 for s in starts)
    for start in sorted(starts):
        capacity = sum(min(start << tier, S3_MAX_PART) * aws.PARTS_PER_TIER
                       for tier in range(S3_MAX_PARTS // aws.PARTS_PER_TIER))
        assert capacity >= S3_MAX_OBJECT, "start %d MiB holds only %d bytes" % (start // MiB, capacity)


def test_the_closed_form_capacity_matches_the_plan():
    for alloc in (None, 2 * GiB, TiB, 6 * TiB):
        assert aws.max_stream_size(alloc) == sum(plan(alloc))


@pytest.mark.parametrize("alloc_size", [1, 8 * MiB, 2 * GiB, 100 * GiB, TiB, S3_MAX_OBJECT])
def test_an_object_of_its_alloc_size_needs_no_growth(alloc_size):
    first = aws.first_part_size(alloc_size)
    assert first * S3_MAX_PARTS >= alloc_size
    assert parts_needed(alloc_size, plan(alloc_size)) <= S3_MAX_PARTS


def test_a_stream_far_bigger_than_its_alloc_size_still_fits():
    # alloc-size said 1 GiB; the dump grew to 5 TiB.
    assert parts_needed(S3_MAX_OBJECT, plan(GiB)) <= S3_MAX_PARTS


def test_without_alloc_size_the_original_80_gib_awscli_limit_is_gone():
    # awscli fed through stdin used 8 MiB parts: 10,000 x 8 MiB = 78 GiB.
    sizes = plan()
    assert sizes[0] == 8 * MiB
    assert parts_needed(80 * GiB, sizes) < S3_MAX_PARTS
    assert parts_needed(TiB, sizes) < S3_MAX_PARTS


def test_small_part_sizes_start_at_the_default():
    assert aws.first_part_size() == 8 * MiB
    assert aws.first_part_size(2 * GiB) == 8 * MiB
    assert aws.first_part_size(100 * GiB) == 11 * MiB  # 100 GiB / 10,000, rounded up to MiB


def test_part_numbers_outside_1_to_10000_are_refused():
    for n in (0, -1, 10001):
        with pytest.raises(ValueError):
            aws.part_size_for(n)


# -- the sink's cutting of a stream, against a recording stand-in client -----
class RecordingClient:
    """Records what the sink asks of S3 (no network)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.parts = {}
        self.puts = []
        self.completed = None
        self.aborted = []
        self.in_flight = 0
        self.max_in_flight = 0

    def create_multipart_upload(self, **kw):
        return {"UploadId": "up-1"}

    def upload_part(self, **kw):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = kw["Body"].read() if hasattr(kw["Body"], "read") else bytes(kw["Body"])
            threading.Event().wait(0.002)
            with self.lock:
                self.parts[kw["PartNumber"]] = body
            return {"ETag": '"%s"' % hashlib.md5(body).hexdigest()}
        finally:
            with self.lock:
                self.in_flight -= 1

    def complete_multipart_upload(self, **kw):
        self.completed = kw["MultipartUpload"]["Parts"]

    def put_object(self, **kw):
        self.puts.append((kw["Key"], bytes(kw["Body"])))

    def abort_multipart_upload(self, **kw):
        self.aborted.append(kw["UploadId"])


def backend(**extra):
    raw = {"bucket": "bkt", "root": "/r", "endpoint-url": "http://127.0.0.1:1"}
    raw.update(extra)
    b = aws.S3Backend(aws.parse_params(raw, "t"), "task")
    b._client = RecordingClient()
    b.prefix = "P"
    return b


def feed(sink, data, chunk=65536):
    for i in range(0, len(data), chunk):
        sink.feed(data[i:i + chunk])


def test_an_object_smaller_than_one_part_is_a_single_put():
    b = backend()
    sink = b.open_sink("small")
    feed(sink, b"x" * 1000)
    info = sink.finish()
    assert info.size == 1000 and info.sha256 == hashlib.sha256(b"x" * 1000).hexdigest()
    assert b._client.puts == [("r/P/small", b"x" * 1000)]
    assert b._client.completed is None


def test_an_empty_object_is_a_single_put():
    b = backend()
    sink = b.open_sink("empty")
    assert sink.finish().size == 0
    assert b._client.puts == [("r/P/empty", b"")]


def test_a_stream_is_cut_into_planned_parts_with_bounded_parts_in_flight():
    b = backend(**{"upload-concurrency": 3})
    data = bytes(range(256)) * (4096 * 90 + 7)  # ~90 MiB, not a multiple of the part size
    sink = b.open_sink("big", alloc_size=None)
    feed(sink, data, chunk=1 << 20)
    info = sink.finish()
    c = b._client
    assert info.size == len(data)
    assert [p["PartNumber"] for p in c.completed] == list(range(1, len(c.parts) + 1))
    assert b"".join(c.parts[n] for n in sorted(c.parts)) == data
    assert all(len(c.parts[n]) == 8 * MiB for n in sorted(c.parts)[:-1])
    assert 1 <= c.max_in_flight <= 3


def test_a_stream_beyond_10000_parts_fails_instead_of_asking_for_part_10001():
    b = backend()
    sink = b.open_sink("huge")
    feed(sink, b"\0" * (9 * MiB))
    sink.part_number = S3_MAX_PARTS  # as if 10,000 parts had been sent
    sink.buf = None
    with pytest.raises(BackendError, match="maximum object size"):
        sink.feed(b"more")
    sink.abort()


def test_an_aborted_upload_is_aborted_on_s3():
    b = backend()
    sink = b.open_sink("big")
    feed(sink, b"\0" * (9 * MiB))
    sink.abort()
    assert b._client.aborted == ["up-1"]


class FlakyClient(RecordingClient):
    """Fails some part uploads the way S3 does, then behaves."""

    def __init__(self, failures):
        super().__init__()
        self.failures = list(failures)
        self.attempts = 0

    def upload_part(self, **kw):
        with self.lock:
            self.attempts += 1
            err = self.failures.pop(0) if self.failures else None
        if err is not None:
            raise err
        return super().upload_part(**kw)


class ClientError(Exception):
    """Shaped like botocore's ClientError: an error response from S3."""

    def __init__(self, code, status):
        super().__init__("%s (%d)" % (code, status))
        self.response = {"Error": {"Code": code, "Message": "test"}, "ResponseMetadata": {"HTTPStatusCode": status}}


def client_error(code, status):
    return ClientError(code, status)


def test_a_part_that_meets_throttling_or_a_5xx_is_sent_again(monkeypatch):
    monkeypatch.setattr(aws, "RETRY_BASE_DELAY", 0.001)
    b = backend(**{"upload-concurrency": 1})
    b._client = FlakyClient([client_error("SlowDown", 503), client_error("InternalError", 500)])
    data = b"\1" * (17 * MiB)
    sink = b.open_sink("retried")
    feed(sink, data, chunk=1 << 20)
    assert sink.finish().size == len(data)
    assert b._client.attempts == 3 + 2
    assert b"".join(b._client.parts[n] for n in sorted(b._client.parts)) == data


def test_a_refused_part_is_not_retried_and_fails_the_object(monkeypatch):
    monkeypatch.setattr(aws, "RETRY_BASE_DELAY", 0.001)
    b = backend(**{"upload-concurrency": 1})
    b._client = FlakyClient([client_error("AccessDenied", 403)])
    sink = b.open_sink("denied")
    with pytest.raises(BackendError, match="AccessDenied"):
        feed(sink, b"\1" * (17 * MiB), chunk=1 << 20)
        sink.finish()
    sink.abort()
    assert b._client.attempts == 1
    assert b._client.aborted == ["up-1"]


# -- parameters --------------------------------------------------------------
def test_root_keeps_no_slashes_and_must_not_be_the_whole_bucket():
    assert aws.parse_params({"bucket": "b", "root": "/palhm/backup/"}, "p")["root"] == "palhm/backup"
    with pytest.raises(ConfigError, match=r"p\.root"):
        aws.parse_params({"bucket": "b", "root": "/"}, "p")


def test_unknown_keys_and_bad_storage_classes_name_the_key():
    with pytest.raises(ConfigError, match=r"p\.bukcet.*did you mean 'bucket'"):
        aws.parse_params({"bukcet": "b", "root": "r"}, "p")
    with pytest.raises(ConfigError, match=r"p\.rot-storage-class"):
        aws.parse_params({"bucket": "b", "root": "r", "rot-storage-class": "COLD"}, "p")


def test_secrets_never_appear_in_errors_or_descriptions():
    secret = "s3cr3t-VALUE-do-not-print"
    with pytest.raises(ConfigError) as e:
        aws.parse_params({"bucket": "b", "root": "r", "secret-key": secret}, "p")
    assert secret not in str(e.value)
    params = aws.parse_params({"bucket": "b", "root": "r", "access-key": "AKIA", "secret-key": secret,
                               "session-token": secret}, "p")
    assert secret not in repr(params) and secret not in str(aws.describe_params(params))
    assert secret not in str(aws.S3Backend(params, "t").describe())


def test_module_options_map_to_backend_params():
    got = aws.module_args_to_params({"profile": "p", "region": None, "endpoint_url": "http://x",
                                     "access_key": "a", "secret_key": "s", "session_token": None})
    assert got == {"profile": "p", "endpoint-url": "http://x", "access-key": "a", "secret-key": "s"}
    assert aws.apply_module_args({"bucket": "b", "profile": "old"}, {"profile": "new"}) == \
        {"bucket": "b", "profile": "new"}


def test_module_options_override_a_parsed_config_file_task():
    parsed = aws.parse_params({"bucket": "b", "root": "r", "profile": "file", "region": "eu-west-1"}, "p")
    got = aws.override_parsed(parsed, {"endpoint_url": "http://127.0.0.1:9000", "access_key": "a",
                                       "secret_key": "s", "profile": None})
    assert got["endpoint-url"] == "http://127.0.0.1:9000" and got["region"] == "eu-west-1"
    assert got["credentials"] == aws.Credentials("a", "s") and got["profile"] == "file"
    assert aws.override_parsed(parsed, {}) is parsed
    with pytest.raises(ConfigError, match="module options.endpoint-url"):
        aws.override_parsed(parsed, {"endpoint_url": "ftp://x"})


def test_module_options_reach_only_aws_s3_tasks():
    class Task:
        def __init__(self, backend_name, params):
            self.backend_name = backend_name
            self.params = params

    s3 = aws.apply_to_task(Task("aws-s3", aws.parse_params({"bucket": "b", "root": "r"}, "p")), {"region": "x"})
    assert s3.params["region"] == "x"
    local = aws.apply_to_task(Task("localfs", {"root": "/r"}), {"region": "x"})
    assert local.params == {"root": "/r"}


class StalledAbortClient(RecordingClient):
    """A store that takes the upload, then never answers the abort."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def abort_multipart_upload(self, **kw):
        self.release.wait(30)
        super().abort_multipart_upload(**kw)


def test_an_abort_the_store_never_answers_ends_after_abort_timeout_and_names_the_upload():
    b = backend(**{"abort-timeout": "0.5"})
    b._client = StalledAbortClient()
    sink = b.open_sink("big")
    feed(sink, b"\0" * (9 * MiB))
    t0 = time.monotonic()
    left = sink.abort()
    assert time.monotonic() - t0 < 2.0
    assert len(left) == 1 and "unfinished upload of s3://bkt/r/P/big" in left[0] and "no answer" in left[0]
    assert sink.abort() == left  # a second abort neither waits nor forgets
    b._client.release.set()


def test_each_answer_of_the_store_gives_a_rollback_under_way_abort_timeout_more():
    b = backend(**{"abort-timeout": "2"})
    first = b.abort_deadline()
    assert first - time.monotonic() <= 2.0
    time.sleep(0.2)
    b._store_answered()
    assert b.abort_deadline() > first


def test_deadline_keys_are_seconds_and_attempts_are_bounded():
    p = aws.parse_params({"bucket": "b", "root": "r"}, "p")
    assert (p["connect-timeout"], p["read-timeout"], p["max-attempts"], p["abort-timeout"]) == (20, 120, 5, 5)
    p = aws.parse_params({"bucket": "b", "root": "r", "read-timeout": "2.5", "max-attempts": 2}, "p")
    assert p["read-timeout"] == 2.5 and p["max-attempts"] == 2
    for bad in ({"read-timeout": 0}, {"connect-timeout": -1}, {"abort-timeout": 7200}, {"max-attempts": 0},
                {"read-timeout": "soon"}):
        with pytest.raises(ConfigError):
            aws.parse_params(dict({"bucket": "b", "root": "r"}, **bad), "p")
