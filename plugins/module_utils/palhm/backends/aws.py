# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The aws-s3 backend: copies are key prefixes ``s3://BUCKET/ROOT/PREFIX/``.

Completeness: ``begin()`` writes the in-progress marker ``ROOT/PREFIX/.palhm-in-progress``;
``commit()`` writes the manifest ``ROOT/PREFIX/.palhm-manifest.json`` last, then
deletes the marker. A prefix holding a manifest is complete; one holding the
marker but no manifest is incomplete (a crash, a kill, a copy being removed);
one holding neither was made by the original PALHM (legacy). Removing a copy
first puts the marker back, then deletes the manifest, the objects and the
marker last, so a crash mid-delete leaves an incomplete copy, never a
"complete" one with objects missing.

Listing: one paginated ListObjectsV2 over ROOT/ (no delimiter) gives every
copy's state, size and object count in one request per 1,000 keys; the
manifests of complete copies are then read, 16 at a time, and their sizes
used. Deletes go in DeleteObjects batches of 1,000 keys.

Streaming: each object's bytes are fed in chunks and cut into parts of a
multipart upload. Parts are uploaded from a few threads with a bounded number
in flight (`upload-concurrency`, default 8, fewer once parts are big), so
memory stays about part size x (parts in flight + 1): 72 MiB per object with
the default 8 MiB parts. The part size grows with the part number (see
part_size_for) so that no object needs more than 10,000 parts up to the S3
maximum object size of 5 TiB, with or without ``alloc-size``. An object
smaller than its first part is sent with a single PUT.

backend-param beyond the original's: `region`, `endpoint-url` (S3-compatible
stores; path-style addressing, checksums only where S3 requires them),
`access-key`/`secret-key`/`session-token` (else the profile or boto3's default
chain), `part-size` (first part size, 5 MiB..5 GiB), `upload-concurrency`
(1..64), `payload-signing` (false skips botocore's SHA-256 of every upload
body over plain http: less CPU; integrity then rests on TCP and the
manifest's SHA-256, which `palhm verify` checks), and the deadlines
`connect-timeout`, `read-timeout`, `max-attempts`, `abort-timeout`.

Deadlines: every wait on the store has one (docs/config.md). A cancel or a
failed object stops every upload at once (S3Backend.cancel); the rollback
ends within abort-timeout and names what it could not undo, which keeps the
in-progress marker for the next run's cleanup. After a commit, unfinished
uploads left under the copy's prefix (a retried CreateMultipartUpload whose
first reply was lost) are aborted.

boto3 is imported when a backend is made, never at config parse time.
"""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time

from .. import awssession, schema
from ..errors import BackendError, CancelledError, ConfigError
from . import owner as owner_mod
from .base import (COMMON_PARAMS, COMPLETE, CORRUPT, INCOMPLETE, LEGACY, MANIFEST_NAME, MAX_MANIFEST_SIZE, Backend,
                   Copy, HashingSink, ObjectInfo, Unreadable, is_original_prefix,
                   parse_manifest_bytes, parse_retention)

MARKER_NAME = ".palhm-in-progress"

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

# S3 limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html).
MAX_PARTS = 10000
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_OBJECT_SIZE = 5 * TiB
MAX_COPY_SIZE = 5 * GiB  # largest object a single CopyObject may copy
COPY_PART_SIZE = 512 * MiB  # part size of in-place multipart copies (storage class changes)

DEFAULT_PART_SIZE = 8 * MiB
MIN_FIRST_PART = 6 * MiB
# The part size doubles every PARTS_PER_TIER parts: 10 tiers of 1,000 parts
# starting at 8 MiB hold 8 MiB x 1,000 x (2^10 - 1) = 7.99 TiB > 5 TiB.
PARTS_PER_TIER = 1000
DEFAULT_CONCURRENCY = 8          # parts in flight per object
PART_MEMORY_BUDGET = 128 * MiB   # fewer parts in flight once parts grow big
# Sweeps of an abandoned copy before its marker goes (late requests landing).
DELETE_SWEEPS = 4
DELETE_SWEEP_PAUSE = 0.25
DELETE_BATCH = 1000              # DeleteObjects takes at most 1,000 keys
PAGE_SIZE = 1000
PART_ATTEMPTS = 4                # our retries around each part, on top of botocore's
RETRY_BASE_DELAY = 1.0           # seconds; doubles per attempt, with jitter
# Deadlines (docs/config.md, "aws-s3"): every wait on the network has one.
DEFAULT_CONNECT_TIMEOUT = 20.0   # s to connect; also the longest a request body may make no progress
DEFAULT_READ_TIMEOUT = 120.0     # s without a byte of the reply
DEFAULT_MAX_ATTEMPTS = 5         # botocore tries per request (standard retry mode)
DEFAULT_ABORT_TIMEOUT = 5.0      # s a rollback (after a failure or a cancel) may spend on the store
MAX_TIMEOUT = 3600.0
ROLLBACK_FLOOR = 1.0             # s the prefix sweep of a rollback always gets, even late
CLEANUP_ATTEMPTS = 3             # botocore tries per request of a rollback (within abort-timeout)

STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                   "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE")

PARAMS = ("bucket", "profile", "sink-storage-class", "rot-storage-class", "region", "endpoint-url",
          "access-key", "secret-key", "session-token", "part-size", "upload-concurrency", "payload-signing",
          "connect-timeout", "read-timeout", "max-attempts", "abort-timeout")

# Module option (amazon.aws name) -> backend-param key.
MODULE_OPTIONS = {"profile": "profile", "region": "region", "endpoint_url": "endpoint-url",
                  "access_key": "access-key", "secret_key": "secret-key", "session_token": "session-token"}


# -- the part-size plan ------------------------------------------------------
def _round_up(n, unit):
    return -(-n // unit) * unit


def first_part_size(alloc_size=None, part_size=None):
    """The size of part 1: `part-size` when set, else 8 MiB, raised so that an
    object of `alloc-size` bytes fits in 10,000 parts of that size (so the
    expected size never depends on growth), in whole MiB, within S3's part
    size limits, and never under 6 MiB: the smallest whole-MiB start whose
    plan reaches 5 TiB (5 MiB x 1,000 x 1,023 is only 4.88 TiB)."""
    base = part_size or DEFAULT_PART_SIZE
    if alloc_size:
        base = max(base, _round_up(-(-alloc_size // MAX_PARTS), MiB))
    return min(max(base, MIN_FIRST_PART), MAX_PART_SIZE)


def part_size_for(part_number, alloc_size=None, part_size=None):
    """Size of part `part_number` (1-based) of a stream of unknown length.

    Every part but the last has exactly this size: the first part size
    (first_part_size) doubling every 1,000 parts, capped at 5 GiB. From a
    start of 6 MiB, 10,000 parts hold 6 MiB x 1,000 x (2^10 - 1) = 5.85 TiB,
    and a bigger start only holds more, so no stream up to the S3 maximum of
    5 TiB needs more than 10,000 parts. tests/unit checks this for every
    start size the plan can produce."""
    if part_number < 1 or part_number > MAX_PARTS:
        raise ValueError("part number %r out of range 1..%d" % (part_number, MAX_PARTS))
    base = first_part_size(alloc_size, part_size)
    tier = (part_number - 1) // PARTS_PER_TIER
    return min(base << tier, MAX_PART_SIZE)


def max_stream_size(alloc_size=None, part_size=None):
    """Bytes that 10,000 parts of the plan hold (closed form, no loop over parts)."""
    base = first_part_size(alloc_size, part_size)
    total = 0
    for tier in range(MAX_PARTS // PARTS_PER_TIER):
        total += min(base << tier, MAX_PART_SIZE) * PARTS_PER_TIER
    return total


# -- parameters --------------------------------------------------------------
class Credentials:
    """Static credentials from backend-param or module options. Never shown:
    repr()/str() hide the values so they cannot leak into errors, logs or
    describe()."""

    __slots__ = ("access_key", "secret_key", "session_token")

    def __init__(self, access_key, secret_key, session_token=None):
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token

    def __repr__(self):
        return "Credentials(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, Credentials) and (self.access_key, self.secret_key, self.session_token) == (
            other.access_key, other.secret_key, other.session_token)

    __hash__ = None


def _storage_class(raw, key, path):
    if key not in raw or raw[key] is None:
        return None
    value = schema.string(raw[key], schema.join(path, key))
    value = value.strip().upper()
    if value not in STORAGE_CLASSES:
        raise ConfigError(schema.join(path, key), "unknown storage class %s (known: %s)"
                          % (schema.show(raw[key]), ", ".join(STORAGE_CLASSES)))
    return value


def parse_params(raw, path):
    schema.obj(raw, path, required=("bucket", "root"), optional=COMMON_PARAMS + PARAMS)
    bucket = schema.string(raw["bucket"], schema.join(path, "bucket"))
    if "/" in bucket or bucket != bucket.strip():
        raise ConfigError(schema.join(path, "bucket"), "expected a bucket name, got %s" % schema.show(bucket))
    root = schema.string(raw["root"], schema.join(path, "root")).strip("/")
    if not root:
        raise ConfigError(schema.join(path, "root"), "must name a key prefix inside the bucket like "
                          "\"/backup/myhost\", not the whole bucket (rotation owns everything under ROOT)")
    for part in root.split("/"):
        if part in ("", ".", ".."):
            raise ConfigError(schema.join(path, "root"), "must not contain empty, '.' or '..' components, got %s"
                              % schema.show(raw["root"]))
    params = {"bucket": bucket, "root": root, "retention": parse_retention(raw, path),
              "stale-age": owner_mod.parse_stale_age(raw, path)}
    params["profile"] = None
    if raw.get("profile") is not None:
        params["profile"] = schema.string(raw["profile"], schema.join(path, "profile"))
    for key in ("region", "endpoint-url"):
        params[key] = None
        if raw.get(key) is not None:
            params[key] = schema.string(raw[key], schema.join(path, key))
    if params["endpoint-url"] and not params["endpoint-url"].startswith(("http://", "https://")):
        raise ConfigError(schema.join(path, "endpoint-url"), "expected an http:// or https:// URL, got %s"
                          % schema.show(params["endpoint-url"]))
    params["sink-storage-class"] = _storage_class(raw, "sink-storage-class", path)
    params["rot-storage-class"] = _storage_class(raw, "rot-storage-class", path)
    params["part-size"] = None
    if raw.get("part-size") is not None:
        params["part-size"] = schema.integer(raw["part-size"], schema.join(path, "part-size"),
                                             minimum=MIN_PART_SIZE, maximum=MAX_PART_SIZE, allow_string=True)
    params["upload-concurrency"] = DEFAULT_CONCURRENCY
    if raw.get("upload-concurrency") is not None:
        params["upload-concurrency"] = schema.integer(raw["upload-concurrency"],
                                                      schema.join(path, "upload-concurrency"),
                                                      minimum=1, maximum=64, allow_string=True)
    for key, default in (("connect-timeout", DEFAULT_CONNECT_TIMEOUT), ("read-timeout", DEFAULT_READ_TIMEOUT),
                         ("abort-timeout", DEFAULT_ABORT_TIMEOUT)):
        params[key] = default
        if raw.get(key) is not None:
            value = schema.number(raw[key], schema.join(path, key))
            if not 0 < value <= MAX_TIMEOUT:
                raise ConfigError(schema.join(path, key), "expected seconds, more than 0 and at most %d, got %s"
                                  % (MAX_TIMEOUT, schema.show(raw[key])))
            params[key] = float(value)
    params["max-attempts"] = DEFAULT_MAX_ATTEMPTS
    if raw.get("max-attempts") is not None:
        params["max-attempts"] = schema.integer(raw["max-attempts"], schema.join(path, "max-attempts"),
                                                minimum=1, maximum=20, allow_string=True)
    params["payload-signing"] = None
    if raw.get("payload-signing") is not None:
        params["payload-signing"] = schema.boolean(raw["payload-signing"], schema.join(path, "payload-signing"))
    # Secrets: checked without ever echoing the value.
    secrets = {}
    for key in ("access-key", "secret-key", "session-token"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise ConfigError(schema.join(path, key), "expected a non-empty string (value hidden)")
        secrets[key] = value
    if ("access-key" in secrets) != ("secret-key" in secrets):
        missing = "secret-key" if "access-key" in secrets else "access-key"
        raise ConfigError(schema.join(path, missing), "access-key and secret-key must be given together")
    if "session-token" in secrets and "access-key" not in secrets:
        raise ConfigError(schema.join(path, "session-token"), "needs access-key and secret-key")
    params["credentials"] = None
    if secrets:
        params["credentials"] = Credentials(secrets["access-key"], secrets["secret-key"],
                                            secrets.get("session-token"))
    return params


def describe_params(params):
    """backend-param for plans and `palhm config`: no secret values."""
    out = {k: v for k, v in params.items() if k not in ("retention", "credentials") and v is not None}
    if params.get("credentials") is not None:
        out["credentials"] = "backend-param (hidden)"
    return out


# The module options of plugins/doc_fragments/aws.py, for the modules'
def module_args_to_params(module_params):
    """The amazon.aws-style module options (profile, region, endpoint_url,
    access_key, secret_key, session_token) as aws-s3 backend-param keys; only
    the options that were set. Modules merge this over the task's
    backend-param before parsing it."""
    out = {}
    for option, key in MODULE_OPTIONS.items():
        value = (module_params or {}).get(option)
        if value is not None and value != "":
            out[key] = value
    return out


def apply_module_args(backend_param, module_params):
    """A copy of a task's raw backend-param with the module's AWS options
    (when set) taking precedence."""
    merged = dict(backend_param or {})
    merged.update(module_args_to_params(module_params))
    return merged


def override_parsed(params, module_params, path="module options"):
    """Parsed aws-s3 params (from a config file) with the module's AWS
    options, when set, taking precedence; checked like backend-param."""
    overrides = module_args_to_params(module_params)
    if not overrides:
        return params
    checked = parse_params(dict(overrides, bucket=params["bucket"], root=params["root"]), path)
    out = dict(params)
    for key in ("profile", "region", "endpoint-url"):
        if key in overrides:
            out[key] = checked[key]
    if checked["credentials"] is not None:
        out["credentials"] = checked["credentials"]
    return out


def apply_to_task(task, module_params):
    """Give a parsed backup task of the aws-s3 backend the module's AWS
    options (profile, region, endpoint_url, access_key, secret_key,
    session_token) that were set. Other tasks are left alone."""
    if getattr(task, "backend_name", None) == "aws-s3":
        task.params = override_parsed(task.params, module_params)
    return task


# -- boto3 glue --------------------------------------------------------------
def _error_code(e):
    response = getattr(e, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def _status(e):
    response = getattr(e, "response", None) or {}
    return (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")


_TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "Throttling", "ThrottlingException",
                    "RequestTimeout", "RequestTimeTooSkewed", "RequestLimitExceeded", "BandwidthLimitExceeded",
                    "TooManyRequestsException", "ProvisionedThroughputExceededException", "503", "500"}


def is_transient(e):
    """A server error, throttling or a broken connection: worth another try."""
    if isinstance(getattr(e, "response", None), dict):  # botocore's ClientError and kin
        status = _status(e)
        return _error_code(e) in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
    if isinstance(e, (ConnectionError, socket.timeout)):
        return True
    try:
        import botocore.exceptions as bex  # pylint: disable=import-outside-toplevel
    except ImportError:
        return False
    return isinstance(e, (bex.EndpointConnectionError, bex.ConnectionClosedError, bex.ReadTimeoutError,
                          bex.ConnectTimeoutError, bex.ResponseStreamingError))


def _describe_error(e):
    code = _error_code(e)
    if code:
        msg = (getattr(e, "response", {}).get("Error") or {}).get("Message") or ""
        return "%s%s" % (code, (": " + msg) if msg else "")
    return "%s: %s" % (type(e).__name__, e)


class S3Backend(Backend):
    name = "aws-s3"

    def __init__(self, params, task_id, boto3_mod=None, botocore_mod=None):
        super().__init__(params, task_id)
        self.bucket = params["bucket"]
        self.root = params["root"]
        self.root_key = self.root + "/"
        self.sink_class = params.get("sink-storage-class")
        self.rot_class = params.get("rot-storage-class")
        self.part_size = params.get("part-size")
        self.concurrency = params.get("upload-concurrency") or DEFAULT_CONCURRENCY
        self._boto3 = boto3_mod
        self._botocore = botocore_mod
        self.connect_timeout = params.get("connect-timeout") or DEFAULT_CONNECT_TIMEOUT
        self.read_timeout = params.get("read-timeout") or DEFAULT_READ_TIMEOUT
        self.max_attempts = params.get("max-attempts") or DEFAULT_MAX_ATTEMPTS
        self.abort_timeout = params.get("abort-timeout") or DEFAULT_ABORT_TIMEOUT
        self._client = None
        self._client_made = False     # False: a client given from outside (tests) serves rollbacks too
        self._cleanup_client = None   # the rollback's client: deadlines within abort-timeout
        self._local = threading.local()
        self._client_lock = threading.Lock()
        self._abort_by = None         # time.monotonic() by which a rollback ends (set by the first abort)
        self._sinks = []
        self._sinks_lock = threading.Lock()
        self.page_size = PAGE_SIZE

    # -- description -----------------------------------------------------
    def location(self, prefix=None):
        base = "s3://%s/%s" % (self.bucket, self.root)
        return "%s/%s" % (base, prefix) if prefix else base

    def lock_key(self):
        return "aws-s3:%s:%s/%s" % (self.params.get("endpoint-url") or "aws", self.bucket, self.root)

    def describe(self):
        """The parameters without secrets (for plans, logs and module output)."""
        out = {"bucket": self.bucket, "root": self.root, "profile": self.params.get("profile") or "default",
               "region": self.params.get("region"), "endpoint-url": self.params.get("endpoint-url"),
               "sink-storage-class": self.sink_class, "rot-storage-class": self.rot_class,
               "credentials": "backend-param" if self.params.get("credentials") else "boto3 default chain"}
        return {k: v for k, v in out.items() if v is not None}

    def key(self, prefix, path=""):
        return "%s%s/%s" % (self.root_key, prefix, path)

    # -- client ----------------------------------------------------------
    def client(self):
        cleanup = getattr(self._local, "cleanup", False)
        with self._client_lock:
            if cleanup and (self._client_made or self._client is None):
                if self._cleanup_client is None:
                    self._cleanup_client = self._make_client(cleanup=True)
                return self._cleanup_client
            if self._client is None:
                self._client = self._make_client()
                self._client_made = True
            return self._client

    def endpoint(self):
        return self.params.get("endpoint-url") or "S3"

    def _session(self):
        return awssession.session(self._boto3, self._botocore, profile=self.params.get("profile"),
                                  region=self.params.get("region"), credentials=self.params.get("credentials"))

    def _make_client(self, cleanup=False):
        """The S3 client. Its deadlines: connect-timeout to connect and for
        any progress sending a body (parts go as a file, so the socket
        timeout applies to each block, not to the whole part), read-timeout
        for each wait on the reply, max-attempts tries per request. The
        rollback's client (cleanup) keeps every wait within abort-timeout."""
        botocore = self._botocore
        session = self._session()
        connect, read, attempts = self.connect_timeout, self.read_timeout, self.max_attempts
        if cleanup:
            connect, read = min(connect, self.abort_timeout), min(read, self.abort_timeout)
            attempts = min(attempts, CLEANUP_ATTEMPTS)
        cfg = {"retries": {"mode": "standard", "max_attempts": attempts},
               "max_pool_connections": max(10, self.concurrency * 8),
               "connect_timeout": connect, "read_timeout": read}
        s3cfg = {}
        if self.params.get("endpoint-url"):
            # S3-compatible stores (Ceph RGW, MinIO) on a plain host name or IP.
            s3cfg["addressing_style"] = "path"
        if self.params.get("payload-signing") is not None:
            # botocore SHA-256-signs every upload body over plain http: a
            # second pass over the data besides the manifest's SHA-256.
            s3cfg["payload_signing_enabled"] = self.params["payload-signing"]
        if s3cfg:
            cfg["s3"] = s3cfg
        extras = [{}]
        if self.params.get("endpoint-url"):
            # Newer botocore adds CRC checksums (aws-chunked trailers) to
            # every upload; many S3-compatible stores (Ceph before 18) reject
            # them. There, checksum only where the API requires it. On AWS
            # itself botocore's defaults stay (CRC32 on uploads).
            extras.insert(0, {"request_checksum_calculation": "when_required",
                              "response_checksum_validation": "when_required"})
        config = None
        for extra in extras:
            try:
                config = botocore.config.Config(**dict(cfg, **extra))
                break
            except TypeError:  # botocore older than 1.36
                continue
        region = self.params.get("region") or session.region_name
        if not region and self.params.get("endpoint-url"):
            region = "us-east-1"
        try:
            client = session.client("s3", endpoint_url=self.params.get("endpoint-url"), region_name=region,
                                    config=config)
        except Exception as e:  # botocore raises many types here (bad URL, region)
            raise BackendError("cannot create the S3 client for %s: %s" % (self.location(), _describe_error(e))) \
                from None
        # Every answer of the store (errors too) shows that it is alive: a
        # rollback under way gets abort-timeout more (see abort_deadline).
        client.meta.events.register("after-call.s3", self._store_answered)
        return client

    def call(self, what, fn, **kwargs):
        """One S3 call; botocore retries transient errors; errors become BackendError."""
        try:
            return fn(**kwargs)
        except BackendError:
            raise
        except Exception as e:
            raise self._error(what, e) from None

    def _error(self, what, e):
        bex = getattr(self._botocore, "exceptions", None)
        if bex is not None and isinstance(e, bex.NoCredentialsError):
            return BackendError("%s: no AWS credentials found (set profile, access-key/secret-key, or the "
                                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment)" % what)
        return BackendError("%s: %s" % (what, _describe_error(e)))

    # -- listing ---------------------------------------------------------
    def _iter_objects(self, prefix_key):
        c = self.client()
        paginator = c.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix_key,
                                           PaginationConfig={"PageSize": self.page_size}):
                yield from page.get("Contents", ())
        except Exception as e:
            raise self._error("cannot list s3://%s/%s" % (self.bucket, prefix_key), e) from None

    def _iter_uploads(self, prefix_key):
        c = self.client()
        paginator = c.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix_key):
                yield from page.get("Uploads", ())
        except Exception as e:
            raise self._error("cannot list unfinished uploads under s3://%s/%s" % (self.bucket, prefix_key),
                              e) from None

    def list_copies(self):
        """One paginated listing of ROOT/ (keys, sizes), then the manifests of
        the complete copies; oldest first."""
        found = {}
        for obj in self._iter_objects(self.root_key):
            rest = obj["Key"][len(self.root_key):]
            if "/" not in rest:
                continue  # an object directly under ROOT is not a copy
            prefix, path = rest.split("/", 1)
            if not prefix:
                continue
            info = found.setdefault(prefix, {"size": 0, "objects": 0, "manifest": False, "marker": False,
                                             "marker_time": None})
            if path == MANIFEST_NAME:
                info["manifest"] = True
            elif path == MARKER_NAME:
                info["marker"] = True
                modified = obj.get("LastModified")
                info["marker_time"] = modified.timestamp() if hasattr(modified, "timestamp") else None
            elif path:
                info["size"] += obj.get("Size", 0)
                info["objects"] += 1
        manifests = self._read_manifests([p for p, i in found.items() if i["manifest"]])
        marks = self._read_bodies([p for p, i in found.items() if i["marker"] and not i["manifest"]], MARKER_NAME)
        self.root_hosts = set()
        self.root_names = set(found)
        copies = []
        for prefix in sorted(found):
            info = found[prefix]
            extra = {"marker": info["marker"], "has_manifest": info["manifest"]}
            manifest = manifests.get(prefix)
            if info["manifest"] and manifest is None:
                manifest = Unreadable("the manifest vanished while it was read")
            if manifest is not None:
                verdict, extra["host"] = self.classify(manifest)
                if verdict is None:
                    continue  # another task's copy
                if verdict[0] == COMPLETE:
                    objs = manifest["objects"]
                    copies.append(Copy(prefix, COMPLETE, sum(o["size"] for o in objs), len(objs), manifest,
                                       self.location(prefix), extra))
                else:
                    extra["problem"] = verdict[1]
                    copies.append(Copy(prefix, CORRUPT, info["size"], info["objects"], None, self.location(prefix),
                                       extra))
            elif info["marker"]:
                # A marker without a manifest: being made, or being removed.
                body = marks.get(prefix)
                mark = owner_mod.parse(body) if isinstance(body, bytes) else None
                task = owner_mod.mark_task(mark)
                if owner_mod.mark_host(mark):
                    self.root_hosts.add(owner_mod.mark_host(mark))
                if task is not None and task != self.task_id:
                    continue  # another task's copy in progress
                extra.update({"mark": mark, "mark_host": owner_mod.mark_host(mark),
                              "mtime": info["marker_time"]})
                copies.append(Copy(prefix, INCOMPLETE, info["size"], info["objects"], None,
                                   self.location(prefix), extra))
            elif is_original_prefix(prefix):
                # Made by the original PALHM: kept, not verifiable.
                copies.append(Copy(prefix, LEGACY, info["size"], info["objects"], None, self.location(prefix),
                                   extra))
            # Anything else under ROOT (another task's nested root, notes) is not a copy.
        return copies

    def _read_manifests(self, prefixes):
        """{prefix: parsed manifest or Unreadable} of these prefixes."""
        return {p: parse_manifest_bytes(b) for p, b in self._read_bodies(prefixes, MANIFEST_NAME).items()
                if b is not None}

    def _read_bodies(self, prefixes, name):
        """{prefix: bytes of ROOT/PREFIX/NAME, or None when missing}, 16 GETs at a time."""
        out = {}
        if not prefixes:
            return out
        lock = threading.Lock()
        todo = list(prefixes)
        errors = []

        def worker():
            while True:
                with lock:
                    if not todo or errors:
                        return
                    prefix = todo.pop()
                try:
                    body = self._get_small(self.key(prefix, name), MAX_MANIFEST_SIZE)
                except BackendError as e:
                    with lock:
                        errors.append(e)
                    return
                with lock:
                    out[prefix] = body

        threads = [threading.Thread(target=worker, daemon=True) for dummy in range(min(16, len(prefixes)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out

    def _get_small(self, key, limit):
        """The bytes of a small object (at most `limit` + 1 read), None when it does not exist."""
        try:
            body = self.client().get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return body.read(limit + 1)
            finally:
                body.close()
        except Exception as e:
            if _error_code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._error("cannot read s3://%s/%s" % (self.bucket, key), e) from None

    def read_manifest(self, prefix):
        data = self._get_small(self.key(prefix, MANIFEST_NAME), MAX_MANIFEST_SIZE)
        if data is None:
            return None
        manifest = parse_manifest_bytes(data)
        return None if isinstance(manifest, Unreadable) else manifest

    def open_object(self, prefix, path):
        key = self.key(prefix, path)
        resp = self.call("cannot read s3://%s/%s" % (self.bucket, key), self.client().get_object,
                         Bucket=self.bucket, Key=key)
        return resp["Body"]

    # -- deleting --------------------------------------------------------
    def delete_keys(self, keys):
        """Delete keys in batches of 1,000 (DeleteObjects); -> count deleted."""
        keys = list(keys)
        c = self.client()
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i:i + DELETE_BATCH]
            resp = self.call("cannot delete objects under %s" % self.location(), c.delete_objects,
                             Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            errs = [e for e in resp.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
            if errs:
                first = errs[0]
                raise BackendError("cannot delete s3://%s/%s: %s: %s (and %d more)"
                                   % (self.bucket, first.get("Key"), first.get("Code"), first.get("Message"),
                                      len(errs) - 1))
        return len(keys)

    def _abort_upload(self, key, upload_id):
        try:
            self.client().abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as e:
            if _error_code(e) not in ("NoSuchUpload", "404"):
                raise self._error("cannot abort the upload of s3://%s/%s" % (self.bucket, key), e) from None

    def _abort_uploads_under(self, prefix_key, skip_prefix_key=None):
        aborted = []
        for up in list(self._iter_uploads(prefix_key)):
            if skip_prefix_key and up["Key"].startswith(skip_prefix_key):
                continue
            self._abort_upload(up["Key"], up["UploadId"])
            aborted.append(up["Key"])
        return aborted

    def _delete_prefix(self, prefix):
        """Everything under ROOT/PREFIX/: unfinished uploads, the manifest
        first, the objects, the marker last."""
        pkey = self.key(prefix)
        manifest_key, marker_key = self.key(prefix, MANIFEST_NAME), self.key(prefix, MARKER_NAME)
        # A request that was in flight when the copy was abandoned (a PUT
        # retried after a lost reply, a part completing after its abort) can
        # land after the listing: objects left without the marker would look
        # like a legacy copy of the original. Sweep until nothing but the
        # marker is left, and only then remove the marker.
        for attempt in range(DELETE_SWEEPS):
            self._abort_uploads_under(pkey)
            keys = [o["Key"] for o in self._iter_objects(pkey)]
            if manifest_key in keys:
                self.delete_keys([manifest_key])
            rest = [k for k in keys if k not in (manifest_key, marker_key)]
            if not rest and attempt:
                break
            self.delete_keys(rest)
            time.sleep(DELETE_SWEEP_PAUSE)
        else:
            if [o for o in self._iter_objects(pkey) if o["Key"] != marker_key]:
                raise BackendError("cannot remove %s/: objects keep appearing under it; its in-progress marker is "
                                   "kept, the next run removes the rest" % self.location(prefix))
        self.delete_keys([marker_key])

    def cleanup_leftovers(self, copies):
        """Remove this task's incomplete copies whose run is dead
        (owner.leftover_verdict: another host's only past stale-age), and
        unfinished uploads under this task's other copies; never anything of
        another task, of a live run or outside this task's copies."""
        removed = []
        current = self.key(self.prefix) if self.prefix else None
        for c in self.dead_leftovers(copies):
            self._delete_prefix(c.prefix)
            removed.append(c.prefix)
        # Unfinished multipart uploads under this task's copies that are not
        # being made (a kill between a part and the marker's removal, or parts
        # that landed after an abort).
        settled = set(c.prefix for c in copies if c.state != INCOMPLETE) | set(removed)
        for up in list(self._iter_uploads(self.root_key)):
            prefix = up["Key"][len(self.root_key):].split("/", 1)[0]
            if prefix not in settled or (current and up["Key"].startswith(current)):
                continue
            self._abort_upload(up["Key"], up["UploadId"])
            if prefix not in removed:
                removed.append(prefix)
        return removed

    def check_before_commit(self, manifest):
        """HEAD every object the manifest lists (16 at a time): it exists with
        its size; and the in-progress marker is still this run's."""
        body = self._get_small(self.key(self.prefix, MARKER_NAME), owner_mod.MAX_MARK_SIZE)
        mark = owner_mod.parse(body)
        me = owner_mod.identity()
        if mark is None or mark.get("pid") != me["pid"] or mark.get("host") != me["host"] or \
                mark.get("boot_id") != me["boot_id"]:
            raise BackendError("cannot complete the copy %s: its in-progress marker %s is gone or is not this "
                               "run's (another host's cleanup?); not committing"
                               % (self.location(self.prefix), MARKER_NAME))
        todo = list(manifest.get("objects", []))
        lock = threading.Lock()
        problems = []

        def worker():
            while True:
                with lock:
                    if not todo or problems:
                        return
                    obj = todo.pop()
                key = self.key(self.prefix, obj["path"])
                try:
                    size = self.client().head_object(Bucket=self.bucket, Key=key).get("ContentLength")
                except Exception as e:
                    if _error_code(e) in ("NoSuchKey", "404", "NotFound"):
                        msg = "object %s is missing" % obj["path"]
                    else:
                        msg = "cannot check object %s: %s" % (obj["path"], _describe_error(e))
                    with lock:
                        problems.append(msg)
                    return
                if size != obj["size"]:
                    with lock:
                        problems.append("object %s has %s bytes, %d were uploaded" % (obj["path"], size, obj["size"]))
                    return

        threads = [threading.Thread(target=worker, daemon=True) for dummy in range(min(16, len(todo)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if problems:
            raise BackendError("cannot complete the copy %s: %s; not committing a copy without it"
                               % (self.location(self.prefix), problems[0]))

    def remove_copy(self, copy):
        if copy.state != INCOMPLETE:
            # Mark first: a crash mid-delete leaves an incomplete copy that the
            # next run cleans up, never a complete one with objects missing.
            self._put_marker(copy.prefix, deleting=True)
        self._delete_prefix(copy.prefix)

    # -- making a copy ---------------------------------------------------
    def _put_marker(self, prefix, deleting=False):
        body = owner_mod.encode(owner_mod.new_mark(self.task_id, deleting))
        key = self.key(prefix, MARKER_NAME)
        self.call("cannot write s3://%s/%s" % (self.bucket, key), self.client().put_object,
                  Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    def begin(self, prefix):
        super().begin(prefix)
        with self._sinks_lock:
            self._abort_by = None
            self._sinks = []
        self._put_marker(prefix)

    def open_sink(self, path, alloc_size=None):
        sink = S3Sink(self, self.key(self.prefix, path), alloc_size)
        with self._sinks_lock:
            self._sinks.append(sink)
        return sink

    def commit(self, manifest):
        self.check_before_commit(manifest)
        key = self.key(self.prefix, MANIFEST_NAME)
        body = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
        # The manifest stays in the default class: it is read by list and
        # rotation and must never need a Glacier restore.
        self.call("cannot write s3://%s/%s" % (self.bucket, key), self.client().put_object,
                  Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        # The copy is complete from here (a manifest wins over a marker), so
        # failing to remove the marker must not fail, let alone roll back, it.
        try:
            self.delete_keys([self.key(self.prefix, MARKER_NAME)])
        except BackendError:
            pass
        self._abort_stray_uploads()
        with self._sinks_lock:
            self._sinks = []

    def _abort_stray_uploads(self):
        """After the commit, abort every unfinished upload under this copy's
        prefix: all its objects are complete, so any left is a stray, like
        the first upload of a CreateMultipartUpload whose reply was lost and
        that botocore retried (the store made two uploads, palhm completed
        the one it heard of). Best effort: the copy is complete already, and
        the next run's cleanup aborts what is left here."""
        try:
            self._abort_uploads_under(self.key(self.prefix))
        except BackendError:
            pass

    # -- failing, cancelling: bounded ------------------------------------
    # A failure or a cancel stops every upload at once (cancel), aborts them
    # (S3Sink.abort) and removes the copy (rollback), all by one deadline:
    # abort-timeout after the first of these, pushed back by every answer of
    # the store (a slow store that answers finishes its rollback; the prefix
    # sweep gets at least ROLLBACK_FLOOR). So the rollback stops once the
    # store has answered nothing for abort-timeout. Requests that have not
    # answered by then are left to their daemon threads (they only touch
    # this copy, with the rollback client's short deadlines), and what was
    # not undone is named; it keeps the in-progress marker, so the next
    # run's cleanup removes it.
    def abort_deadline(self, floor=0.0):
        """The time.monotonic() by which the rollback ends (started by the
        first call), at least `floor` seconds from now."""
        with self._sinks_lock:
            now = time.monotonic()
            if self._abort_by is None:
                self._abort_by = now + self.abort_timeout
            self._abort_by = max(self._abort_by, now + floor)
            return self._abort_by

    def abort_time_left(self):
        return self.abort_deadline() - time.monotonic()

    def _store_answered(self, **_kwargs):
        # botocore's after-call event, from any thread.
        if self._abort_by is not None:
            self._abort_by = max(self._abort_by, time.monotonic() + self.abort_timeout)

    def cancel(self):
        """Stop every upload of the copy now (a cancel, or another object
        failed): threads feeding or waiting on a sink return at once;
        rollback() follows."""
        self.abort_deadline()
        with self._sinks_lock:
            sinks = list(self._sinks)
        for sink in sinks:
            sink.stop()

    def within(self, fn, *args):
        """Run fn(*args) with the rollback client in a daemon thread until
        the abort deadline; -> None when it succeeded, else why not (an
        error, or no answer in time: the thread is left to end on its own
        deadlines)."""
        box = {}

        def run():
            self._local.cleanup = True
            try:
                fn(*args)
                box["ok"] = True
            except BaseException as e:  # noqa: B902 - reported to the caller
                box["error"] = e

        if self.abort_time_left() > 0:
            t = threading.Thread(target=run, name="palhm-s3-cleanup", daemon=True)
            t.start()
            while t.is_alive():
                left = self.abort_time_left()
                if left <= 0:
                    break
                t.join(min(left, 0.1))
        if box.get("ok"):
            return None
        e = box.get("error")
        if isinstance(e, BackendError):
            return str(e)
        if e is not None:
            return _describe_error(e)
        return "no answer from %s for %gs" % (self.endpoint(), self.abort_timeout)

    def rollback(self):
        if self.prefix is None:
            return
        self.abort_deadline(floor=min(ROLLBACK_FLOOR, self.abort_timeout))
        with self._sinks_lock:
            sinks, self._sinks = self._sinks, []
        left = []
        for sink in sinks:
            left += [w for w in sink.abort() if w not in left]
        # The sweep of ROOT/PREFIX/ aborts every upload still there (those
        # whose abort above failed too) and deletes the objects.
        self.abort_deadline(floor=min(ROLLBACK_FLOOR, self.abort_timeout))
        why = self.within(self._delete_prefix, self.prefix)
        if why is None:
            return
        left.append("the copy %s/ (%s)" % (self.location(self.prefix), why))
        raise BackendError("not finished: the store did not answer for abort-timeout (%gs); left for the next run "
                           "to remove (the copy keeps its in-progress marker): %s"
                           % (self.abort_timeout, "; ".join(left)))

    def after_rotation(self, prefix):
        """Set rot-storage-class on the new copy's objects (not its manifest)
        when it differs from the class they were uploaded with."""
        if not self.rot_class or self.rot_class == (self.sink_class or "STANDARD"):
            return []
        changed = []
        for obj in list(self._iter_objects(self.key(prefix))):
            name = obj["Key"][len(self.key(prefix)):]
            if name in (MANIFEST_NAME, MARKER_NAME):
                continue
            self._set_storage_class(obj["Key"], obj.get("Size", 0), self.rot_class)
            changed.append(obj["Key"])
        return changed

    def _set_storage_class(self, key, size, storage_class):
        c = self.client()
        what = "cannot set storage class %s on s3://%s/%s" % (storage_class, self.bucket, key)
        source = {"Bucket": self.bucket, "Key": key}
        if size <= MAX_COPY_SIZE:
            self.call(what, c.copy_object, Bucket=self.bucket, Key=key, CopySource=source,
                      StorageClass=storage_class, MetadataDirective="COPY")
            return
        # Objects over 5 GiB: an in-place multipart copy.
        part = max(COPY_PART_SIZE, _round_up(-(-size // MAX_PARTS), MiB))
        up = self.call(what, c.create_multipart_upload, Bucket=self.bucket, Key=key, StorageClass=storage_class)
        upload_id = up["UploadId"]
        try:
            parts = []
            for n, start in enumerate(range(0, size, part), 1):
                end = min(start + part, size) - 1
                r = self.call(what, c.upload_part_copy, Bucket=self.bucket, Key=key, UploadId=upload_id,
                              PartNumber=n, CopySource=source, CopySourceRange="bytes=%d-%d" % (start, end))
                parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
            self.call(what, c.complete_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id,
                      MultipartUpload={"Parts": parts})
        except BaseException:
            self._abort_upload(key, upload_id)
            raise


class _PartBody(io.RawIOBase):
    """A part's buffer as a read-only file, without copying it. botocore
    sends a file block by block, so the socket timeout bounds each block
    (no progress for connect-timeout), not the whole part: a bytes body
    went out in one sendall whose timeout covered all of it, so a part
    that needed longer than connect-timeout to send failed on a slow
    link, and a 5 GiB part needs 256 MiB/s to go in 20 s."""

    def __init__(self, data):
        super().__init__()
        self._view = memoryview(data)
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def __len__(self):
        return len(self._view)

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size=-1):
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        chunk = bytes(self._view[self._pos:end])
        self._pos = max(self._pos, end)
        return chunk

    def readinto(self, b):
        n = max(0, min(len(b), len(self._view) - self._pos))
        b[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n


class S3Sink(HashingSink):
    """A streaming multipart upload fed by palhm (fd is None).

    Threads: the feeding thread (write, close) and up to upload-concurrency
    part threads. The feeding thread never waits on the store where a
    cancel cannot reach it: CreateMultipartUpload, CompleteMultipartUpload
    and the single PUT run in a helper thread it waits on, and stop() (a
    cancel, or another object failed) wakes every wait of the sink."""

    def __init__(self, backend, key, alloc_size=None):
        super().__init__()
        self.backend = backend
        self.key = key
        self.alloc_size = alloc_size
        self.buf = None               # the part being filled
        self.fill = 0
        self.free = []                # buffers of uploaded parts, for reuse
        self.part_number = 0          # parts cut so far
        self.upload_id = None
        self.parts = {}               # part number -> ETag
        self.threads = []
        self.queue = []
        self.cond = threading.Condition()
        self.in_flight = 0
        self.error = None
        self.done = False
        self.aborted = False
        self.stopped = threading.Event()  # set with aborted: ends retry pauses at once
        self.abort_started = False
        self.left = []                # what abort() could not undo

    def _aborted_error(self):
        return BackendError("upload of s3://%s/%s was aborted" % (self.backend.bucket, self.key))

    def _next_part_size(self):
        return part_size_for(self.part_number + 1, self.alloc_size, self.backend.part_size)

    def _max_in_flight(self, size):
        # Up to upload-concurrency parts, fewer once parts grow big (memory is
        # about part size x (parts in flight + 1)), but never fewer than 2.
        return min(self.backend.concurrency, max(2, PART_MEMORY_BUDGET // size))

    def write(self, data):
        if self.aborted:
            raise self._aborted_error()
        if self.error is not None:
            raise self.error
        view = memoryview(data)
        while len(view):
            if self.buf is None:
                # One buffer per part, handed as is to the upload: the bytes
                # are copied once, from the pipe's chunk into the part.
                # Buffers of uploaded parts are reused (no page faults, no
                # zeroing); there are never more than parts in flight + 1.
                if self.part_number >= MAX_PARTS:
                    raise BackendError("s3://%s/%s: the stream exceeds the S3 maximum object size (10,000 parts)"
                                       % (self.backend.bucket, self.key))
                size = self._next_part_size()
                with self.cond:
                    self.free = [b for b in self.free if len(b) == size]
                    self.buf = self.free.pop() if self.free else None
                if self.buf is None:
                    self.buf = bytearray(size)
                self.fill = 0
            n = min(len(view), len(self.buf) - self.fill)
            self.buf[self.fill:self.fill + n] = view[:n]
            self.fill += n
            view = view[n:]
            if self.fill == len(self.buf):
                self._cut()

    def _cut(self):
        """Send the current buffer (full, or the tail of the stream) as the next part."""
        if self.part_number + 1 > MAX_PARTS:
            raise BackendError("s3://%s/%s: the stream exceeds the S3 maximum object size"
                               % (self.backend.bucket, self.key))
        data = self.buf if self.fill == len(self.buf) else self.buf[:self.fill]
        self.buf, self.fill = None, 0
        if self.upload_id is None:
            self._create()
        self.part_number += 1
        self._submit(self.part_number, data)

    def _blocking(self, what, fn, on_late=None, **kwargs):
        """fn(**kwargs) in a helper thread, waited on until it ends or the
        sink is stopped (then raise: the call is left to its own deadlines;
        on_late(result) runs if it succeeds after that)."""
        b = self.backend
        box = {}

        def run():
            try:
                box["result"] = fn(**kwargs)
            except BaseException as e:  # noqa: B902 - re-raised by the feeding thread
                box["error"] = e
            with self.cond:
                box["done"] = True
                late = self.aborted
                self.cond.notify_all()
            if late and on_late is not None and "result" in box:
                b._local.cleanup = True
                try:
                    on_late(box["result"])
                except Exception:  # noqa: BLE001 - best effort; the next run's cleanup catches it
                    pass

        threading.Thread(target=run, name="palhm-s3-call", daemon=True).start()
        with self.cond:
            while not box.get("done") and not self.aborted:
                self.cond.wait(1.0)
            if not box.get("done"):
                raise self._aborted_error()
        if "error" in box:
            e = box["error"]
            raise e if isinstance(e, BackendError) else b._error(what, e)
        return box["result"]

    def _create(self):
        b = self.backend
        kwargs = {"Bucket": b.bucket, "Key": self.key}
        if b.sink_class:
            kwargs["StorageClass"] = b.sink_class
        resp = self._blocking("cannot start the upload of s3://%s/%s" % (b.bucket, self.key),
                              b.client().create_multipart_upload,
                              on_late=lambda r: b._abort_upload(self.key, r["UploadId"]), **kwargs)
        self.upload_id = resp["UploadId"]

    def _submit(self, number, data):
        with self.cond:
            # Bounded memory: wait for a slot before queueing another part.
            while self.in_flight >= self._max_in_flight(len(data)) and self.error is None and not self.aborted:
                self.cond.wait()
            if self.error is not None:
                raise self.error
            if self.aborted:
                raise self._aborted_error()
            self.in_flight += 1
            self.queue.append((number, data))
            live = sum(1 for t in self.threads if t.is_alive())
            if live < self.backend.concurrency and live < self.in_flight:
                t = threading.Thread(target=self._worker, name="palhm-s3-part", daemon=True)
                self.threads.append(t)
                t.start()
            self.cond.notify_all()

    def _worker(self):
        while True:
            with self.cond:
                while not self.queue and not self.done and not self.aborted and self.error is None:
                    self.cond.wait(1.0)
                if not self.queue or self.aborted or self.error is not None:
                    if self.done or self.aborted or self.error is not None:
                        return
                    continue
                number, data = self.queue.pop(0)
            try:
                etag = self._upload_part(number, data)
            except BaseException as e:  # noqa: B902 - the feeder re-raises it
                with self.cond:
                    if self.error is None:
                        self.error = e if isinstance(e, BackendError) else BackendError(
                            "cannot upload part %d of s3://%s/%s: %s" % (number, self.backend.bucket, self.key, e))
                    self.in_flight -= 1
                    self.cond.notify_all()
                return
            with self.cond:
                self.parts[number] = etag
                self.in_flight -= 1
                if isinstance(data, bytearray) and not self.aborted and not self.done:
                    self.free.append(data)
                self.cond.notify_all()

    def _upload_part(self, number, data):
        """One part, with botocore's max-attempts tries; a part the store
        answered with a 5xx or throttling is sent again, up to PART_ATTEMPTS
        times. Connection errors and timeouts are not tried again here: a
        store that stopped answering fails the part within one request's
        deadline (max-attempts x (connect-timeout + read-timeout) + backoff)."""
        b = self.backend
        c = b.client()
        delay = RETRY_BASE_DELAY
        for attempt in range(1, PART_ATTEMPTS + 1):
            if self.aborted:
                raise self._aborted_error()
            try:
                r = c.upload_part(Bucket=b.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
                                  Body=_PartBody(data))
                return r["ETag"]
            except Exception as e:
                answered = isinstance(getattr(e, "response", None), dict)
                if attempt == PART_ATTEMPTS or not answered or not is_transient(e):
                    raise b._error("cannot upload part %d of s3://%s/%s (attempt %d)"
                                   % (number, b.bucket, self.key, attempt), e) from None
            if self.stopped.wait(delay * (0.5 + random.random())):
                raise self._aborted_error()
            delay = min(delay * 2, 20.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_all(self):
        with self.cond:
            while self.in_flight > 0 and self.error is None and not self.aborted:
                self.cond.wait()
            self.done = True
            self.cond.notify_all()
            if self.error is not None:
                raise self.error
            if self.aborted:
                raise self._aborted_error()

    def close(self):
        b = self.backend
        if self.upload_id is None and self.part_number == 0:
            # Smaller than one part: a single PUT.
            data = bytes(self.buf[:self.fill]) if self.buf is not None else b""
            self.buf, self.fill = None, 0
            kwargs = {"Bucket": b.bucket, "Key": self.key, "Body": data}
            if b.sink_class:
                kwargs["StorageClass"] = b.sink_class
            self._blocking("cannot upload s3://%s/%s" % (b.bucket, self.key), b.client().put_object, **kwargs)
            return
        try:
            if self.fill:
                self._cut()
            self._wait_all()
            self.free = []  # finished sinks stay referenced until commit: drop their buffers
            parts = [{"PartNumber": n, "ETag": self.parts[n]} for n in sorted(self.parts)]
            self._blocking("cannot complete the upload of s3://%s/%s" % (b.bucket, self.key),
                           b.client().complete_multipart_upload, Bucket=b.bucket, Key=self.key,
                           UploadId=self.upload_id, MultipartUpload={"Parts": parts})
            self.upload_id = None
        except BaseException:
            self.abort()
            raise

    def finish(self):
        info = super().finish()
        return ObjectInfo(info.size, info.sha256)

    def stop(self):
        """Stop feeding and uploading now (from any thread); abort() follows."""
        with self.cond:
            self.aborted = True
            self.queue = []
            self.cond.notify_all()
        self.stopped.set()

    def abort(self):
        """Stop and abort the upload on the store, by the backend's abort
        deadline. Never raises: -> what could not be undone (descriptions),
        kept for later calls."""
        b = self.backend
        b.abort_deadline()
        self.stop()
        with self.cond:
            if self.abort_started:
                return list(self.left)
            self.abort_started = True
            self.buf, self.fill = None, 0
            self.free = []
        # Parts in flight may end until shortly before the deadline (a part
        # landing after the abort can leave debris on some stores), never
        # later: threads blocked in a stalled send are left behind, daemon
        # threads that end on their socket timeouts (S3 drops parts that
        # land after the abort, and the rollback's sweep of ROOT/PREFIX/
        # aborts again). The abort itself keeps the last second, or half.
        reserve = min(1.0, b.abort_timeout / 2)
        for t in self.threads:
            while t.is_alive():
                left = b.abort_time_left() - reserve
                if left <= 0:
                    break
                t.join(min(left, 0.1))
        if self.upload_id is not None:
            upload_id, self.upload_id = self.upload_id, None
            why = b.within(b._abort_upload, self.key, upload_id)
            if why is not None:
                self.left.append("the unfinished upload of s3://%s/%s (%s)" % (b.bucket, self.key, why))
        return list(self.left)


def _unless_cancelled(method):
    """`method` run in a helper thread while the main thread watches the
    run's cancel Event: before this run's copy began (nothing of it to roll
    back, nothing committed), a SIGTERM while the store does not answer the
    listing or the cleanup of the start ends the run at once instead of
    after the request's deadlines. Given up, the call is left to its daemon
    thread: like a kill at that moment, which the design tolerates."""
    def wrapper(self, *args):
        ev = self.cancelled
        if ev is None or self.prefix is not None or threading.current_thread() is not threading.main_thread():
            return method(self, *args)
        box = {}

        def run():
            try:
                box["result"] = method(self, *args)
            except BaseException as e:  # noqa: B902 - re-raised in the main thread
                box["error"] = e

        t = threading.Thread(target=run, name="palhm-s3-start", daemon=True)
        t.start()
        while t.is_alive():
            if ev.is_set():
                raise CancelledError("cancelled while waiting for %s (%s)" % (self.endpoint(), self.location()))
            t.join(0.1)
        if "error" in box:
            raise box["error"]
        return box.get("result")
    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


# The waits of a run's start (see _unless_cancelled); rotation's listing
# comes after the commit and is not given up.
S3Backend.list_copies = _unless_cancelled(S3Backend.list_copies)
S3Backend.cleanup_leftovers = _unless_cancelled(S3Backend.cleanup_leftovers)


def make(params, task_id):
    boto3, botocore = awssession.import_boto3("the aws-s3 backend")
    return S3Backend(params, task_id, boto3, botocore)
