# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every backend provides, and the parameters they share.

A copy is ROOT/PREFIX/PATH. Which entries of ROOT are this task's copies
(everything else there is left alone: never listed, rotated, cleaned,
verified or restored):

- *complete*: its manifest (MANIFEST_NAME inside the copy, written last and
  atomically) has the documented shape (manifest_problem) and names this
  task (manifest_owner: a manifest without a ``task`` key, which no release
  wrote, counts as this task's);
- *corrupt*: its manifest names this task, or names no task readably, but
  is not the documented shape (not JSON, ``[]``, ``{"objects": 5}``, a size
  that is not an integer, a path with ``..``, ...): listed, never counted,
  rotated, verified or restored;
- *incomplete*: being made, or left by a run that died (the backend's
  in-progress mark names the task, see owner.py); never listed as
  complete, counted, restored or kept;
- *legacy*: made by the original PALHM: no manifest, no in-progress mark,
  and a name that is exactly a PREFIX of the original's format
  (``date --utc --iso-8601=seconds``: ``2026-12-03T06:00:00+00:00``);
  rotation counts it, as the original did, and `verify` says it cannot be
  checked.

A ``lost+found``, someone's notes, another task's root nested inside this
one (``ROOT/db``) or another task's copies in a shared root are none of these.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from .. import schema
from ..errors import ConfigError
from .owner import DEFAULT_STALE_AGE

MANIFEST_NAME = ".palhm-manifest.json"
RESERVED_PREFIX = ".palhm-"
COMPLETE, INCOMPLETE, LEGACY, CORRUPT = "complete", "incomplete", "legacy", "corrupt"
INF = float("inf")
# The original's PREFIX: `date --utc --iso-8601=seconds` (Python's
# datetime.now(timezone.utc).isoformat(timespec="seconds")).
_ORIGINAL_PREFIX = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+00:00$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_SIZE = 64 << 20
# A copy whose PREFIX is further than this ahead of the clock is dated in the
# future (status.CLOCK_SLACK, kept equal): warned about by run, list, metrics.
FUTURE_SKEW = 300  # a manifest of 10^5 objects is ~20 MiB; more is not one of ours

COMMON_PARAMS = ("root", "nb-copy-limit", "root-size-limit", "keep-last", "keep-daily", "keep-weekly",
                 "keep-monthly", "keep-yearly", "keep-within", "stale-age")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy]|min|mo)?\s*$")
_DURATION_SECONDS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400,
                     "mo": 31 * 86400, "y": 366 * 86400, None: 86400}
# Retention longer than a century is a typo ("10000y"), and past what date
# arithmetic can do (it crashed rotation after the copy was committed).
MAX_DURATION = 100 * 366 * 86400
# The largest object S3 stores; alloc-size sizes the part buffers, so a bigger
# value only costs memory (10 TiB made a 2-byte object use 1.1 GB).
MAX_OBJECT_SIZE = 5 << 40


@dataclass
class Retention:
    """Rotation rules. The count and size limits are the original's; the
    keep-* rules are calendar retention (a copy survives if any rule keeps it)."""

    nb_copy_limit: float = INF
    root_size_limit: float = INF
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: float = 0  # seconds

    def has_calendar(self):
        return any((self.keep_last, self.keep_daily, self.keep_weekly, self.keep_monthly,
                    self.keep_yearly, self.keep_within))

    def describe(self):
        out = {}
        for name in ("nb_copy_limit", "root_size_limit"):
            value = getattr(self, name)
            out[name.replace("_", "-")] = "Infinity" if value == INF else value
        for name in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within"):
            if getattr(self, name):
                out[name.replace("_", "-")] = getattr(self, name)
        return out


def parse_duration(value, path, maximum=MAX_DURATION):
    """Seconds of a duration like "7d" (a bare number is days), at most
    `maximum` seconds (default: 100 years)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = "%dd" % value
    schema.string(value, path)
    m = _DURATION.match(value)
    if not m:
        raise ConfigError(path, "expected a duration like \"7d\", \"12h\", \"4w\", \"6mo\" or \"1y\", got %s"
                          % schema.show(value))
    seconds = int(m.group(1)) * _DURATION_SECONDS[m.group(2)]
    if seconds > maximum:
        raise ConfigError(path, "must be at most %s, got %s" % (_fmt_duration(maximum), schema.show(value)))
    return seconds


def _fmt_duration(seconds):
    for unit in ("y", "d", "h", "min"):
        if seconds % _DURATION_SECONDS[unit] == 0:
            return "%d%s" % (seconds // _DURATION_SECONDS[unit], unit)
    return "%ds" % seconds


def parse_alloc_size(value, path):
    """An object's expected size in bytes: 0 ..MAX_OBJECT_SIZE (5 TiB)."""
    size = schema.big_decimal(value, path)
    if size < 0 or size > MAX_OBJECT_SIZE:
        raise ConfigError(path, "must be a size in bytes from 0 to %d (5 TiB, the largest S3 object), got %s"
                          % (MAX_OBJECT_SIZE, schema.show(value)))
    return size


def parse_retention(params, path):
    r = Retention()
    if "nb-copy-limit" in params:
        r.nb_copy_limit = schema.big_decimal(params["nb-copy-limit"], schema.join(path, "nb-copy-limit"))
    if "root-size-limit" in params:
        r.root_size_limit = schema.big_decimal(params["root-size-limit"], schema.join(path, "root-size-limit"))
    for key in ("keep-last", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly"):
        if key in params:
            setattr(r, key.replace("-", "_"),
                    schema.integer(params[key], schema.join(path, key), minimum=0, allow_string=True))
    if "keep-within" in params:
        r.keep_within = parse_duration(params["keep-within"], schema.join(path, "keep-within"))
    return r


@dataclass
class Copy:
    """One backup copy on a backend."""

    prefix: str
    state: str
    size: int = 0
    objects: int = 0
    manifest: dict = None
    location: str = ""
    extra: dict = field(default_factory=dict)

    def is_future(self, now=None):
        """True when the PREFIX is a time more than FUTURE_SKEW ahead of now
        (the clock was ahead when the copy was made): it sorts newest and
        rotation keeps it until the clock gets there."""
        t = prefix_time(self.prefix)
        return t is not None and t.timestamp() > (time.time() if now is None else now) + FUTURE_SKEW

    def as_dict(self):
        out = {"prefix": self.prefix, "state": self.state, "complete": self.state == COMPLETE,
               "size": self.size, "objects": self.objects, "location": self.location,
               "host": self.extra.get("host"), "future": self.is_future()}
        if self.state == CORRUPT:
            out["problem"] = self.extra.get("problem")
        return out


@dataclass
class ObjectInfo:
    size: int
    sha256: str


class Sink:
    """Where one object's bytes go. Either `fd` is a file descriptor the last
    stage writes to directly, or palhm calls feed() with the stream's chunks."""

    fd = None

    def feed(self, data):  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self):
        """The stream ended well: make the object durable; -> ObjectInfo."""
        raise NotImplementedError  # pragma: no cover

    def abort(self):
        """The stream failed: discard what was written (best effort)."""


class HashingSink(Sink):
    """Base for sinks fed by palhm: counts and hashes what passes."""

    def __init__(self):
        self.size = 0
        self.hash = hashlib.sha256()

    def feed(self, data):
        self.hash.update(data)
        self.size += len(data)
        self.write(data)

    def write(self, data):
        pass

    def finish(self):
        self.close()
        return ObjectInfo(self.size, self.hash.hexdigest())

    def close(self):
        pass


class Backend:
    """Interface of a backend bound to one task. Implementations: NullBackend,
    LocalfsBackend, S3Backend."""

    name = ""
    stores = True  # False for null: nothing is kept, nothing to list or rotate
    cancelled = None  # the run's cancel Event (set by the runner): waits that may be given up watch it

    def __init__(self, params, task_id):
        self.params = params
        self.task_id = task_id
        self.prefix = None
        # Filled by list_copies(): every name in ROOT (taken prefixes, this
        # task's or not) and the host names its manifests and marks name.
        self.root_names = set()
        self.root_hosts = set()
        # cleanup_leftovers(): why leftovers were removed or left alone.
        self.cleanup_notes = []
        self.stale_age = params.get("stale-age") or DEFAULT_STALE_AGE

    def classify(self, manifest):
        """classify_manifest() for this task, noting the host a manifest
        names in root_hosts (shared-root detection) -> (verdict, host):
        verdict None for another task's copy, host None when not named."""
        host = manifest.get("hostname") if isinstance(manifest, dict) else None
        host = host if isinstance(host, str) else None
        if host is not None:
            self.root_hosts.add(host)
        return classify_manifest(manifest, self.task_id), host

    def location(self, prefix=None):
        raise NotImplementedError  # pragma: no cover

    def lock_key(self):
        """A string naming the storage root, for the per-host root lock."""
        return self.location()

    def list_copies(self):
        """This task's copies under ROOT, oldest first (sorted by PREFIX)."""
        return []

    def cleanup_leftovers(self, copies):
        """Remove this task's incomplete copies (and unfinished uploads) of
        earlier runs whose run is dead (owner.leftover_verdict), never a
        complete, corrupt or legacy copy; -> list of removed prefixes, and
        self.cleanup_notes says why each one was removed or left alone."""
        return []

    def dead_leftovers(self, copies):
        """The incomplete copies of `copies` cleanup may remove (their run is
        dead), noting in cleanup_notes why each one is removed or kept."""
        from .owner import leftover_verdict  # pylint: disable=import-outside-toplevel
        self.cleanup_notes = []
        dead = []
        for c in copies:
            if c.state != INCOMPLETE or c.prefix == self.prefix:
                continue
            is_dead, why = leftover_verdict(c, self.stale_age)
            if is_dead:
                dead.append(c)
                self.cleanup_notes.append("removing incomplete copy %s: %s" % (c.prefix, why))
            else:
                self.cleanup_notes.append("left incomplete copy %s alone: %s" % (c.prefix, why))
        return dead

    def check_before_commit(self, manifest):
        """Every object the manifest lists exists with its size (stat / HEAD),
        and the copy's in-progress mark is still this run's; else BackendError."""

    def begin(self, prefix):
        self.prefix = prefix

    def open_sink(self, path, alloc_size=None):
        raise NotImplementedError  # pragma: no cover

    def commit(self, manifest):
        """Make the copy complete atomically (manifest written last)."""

    def cancel(self):
        """Stop every sink of the copy being made now, from any thread (a
        cancel, or another object failed); rollback() follows."""

    def rollback(self):
        """Remove everything written for the copy being made (best effort)."""

    def remove_copy(self, copy):
        raise NotImplementedError  # pragma: no cover

    def after_rotation(self, prefix):
        """Hook run on the new copy after rotation (S3: rot-storage-class)."""
        return []

    def open_object(self, prefix, path):
        """A readable binary file object of one stored object."""
        raise NotImplementedError  # pragma: no cover

    def read_manifest(self, prefix):
        raise NotImplementedError  # pragma: no cover


def new_prefix(existing, now=None):
    """The UTC time in ISO 8601 to the second, like `date --utc --iso-8601=seconds`.
    Returns None when that prefix already exists (the caller waits a second)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    prefix = now.replace(microsecond=0).isoformat()
    return None if prefix in existing else prefix


def wait_tick():
    """Sleep until the next second starts (for a fresh PREFIX)."""
    time.sleep(1.0 - (time.time() % 1.0) + 0.01)


def prefix_time(prefix):
    """The datetime of a PREFIX, or None when it is not an ISO 8601 time."""
    try:
        dt = datetime.datetime.fromisoformat(prefix)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt


def check_object_path(value, path):
    """PATH must stay inside the copy: relative, no `..`, no reserved names.
    Returns it normalised: ``./x`` is ``x`` and ``a//b`` is ``a/b`` (what the
    original's ``cp /dev/stdin ROOT/PREFIX/PATH`` made of them)."""
    schema.string(value, path)
    if value.startswith("/"):
        raise ConfigError(path, "object path %s must be relative to the copy (no leading /)" % schema.show(value))
    if value.endswith("/"):
        raise ConfigError(path, "object path %s names a directory; it must name a file" % schema.show(value))
    parts = value.split("/")
    for part in parts:
        if part == "..":
            raise ConfigError(path, "object path %s must not contain '..' components" % schema.show(value))
    parts = [part for part in parts if part not in ("", ".")]
    if not parts:
        raise ConfigError(path, "object path %s names no file" % schema.show(value))
    if parts[0].startswith(RESERVED_PREFIX) or parts[-1].endswith(".palhm-partial"):
        raise ConfigError(path, "object path %s uses a name reserved by palhm (%s*)"
                          % (schema.show(value), RESERVED_PREFIX))
    return "/".join(parts)


def is_original_prefix(name):
    """True when `name` is exactly a PREFIX the original PALHM made
    (``2026-12-03T06:00:00+00:00``: UTC, to the second, a real date)."""
    return bool(_ORIGINAL_PREFIX.match(name)) and prefix_time(name) is not None


def manifest_problem(doc):
    """Why `doc` (a parsed manifest) is not the documented shape, or None.

    The shape: an object; ``objects`` a list of objects, each with ``path``
    (a relative path inside the copy, as check_object_path accepts it, no
    two alike), ``size`` (an integer >= 0) and ``sha256`` (64 lowercase hex
    digits); ``task``, ``prefix``, ``hostname`` and ``format`` strings when
    present. Anything else in it is informative only."""
    if not isinstance(doc, dict):
        return "the manifest is not a JSON object"
    for key in ("task", "prefix", "hostname", "format"):
        if key in doc and not isinstance(doc[key], str):
            return "%s is not a string" % key
    objs = doc.get("objects")
    if not isinstance(objs, list):
        return "objects is %s, not a list" % ("missing" if objs is None else "not a list")
    seen = set()
    for i, obj in enumerate(objs):
        where = "objects[%d]" % i
        if not isinstance(obj, dict):
            return "%s is not an object" % where
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return "%s.size is not an integer >= 0" % where
        sha = obj.get("sha256")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            return "%s.sha256 is not 64 lowercase hex digits" % where
        path = obj.get("path")
        try:
            path = check_object_path(path, where + ".path")
        except ConfigError as e:
            return str(e)
        if path in seen:
            return "%s.path %s is listed twice" % (where, schema.show(path))
        seen.add(path)
    return None


def manifest_owner(doc):
    """The task a manifest names: its ``task`` string; None when it names
    none (no release wrote such a manifest: it is taken as the reading
    task's); False when it cannot be told (not an object, ``task`` not a
    string)."""
    if not isinstance(doc, dict):
        return False
    task = doc.get("task")
    if task is None:
        return None
    return task if isinstance(task, str) else False


def classify_manifest(doc, task_id):
    """(state, problem) of a copy with this parsed manifest for task
    `task_id`, or None when the copy is another task's. `doc` is the parsed
    manifest, or an Unreadable."""
    if isinstance(doc, Unreadable):
        return CORRUPT, doc.reason
    owner = manifest_owner(doc)
    if owner not in (None, False, task_id):
        return None
    problem = manifest_problem(doc)
    if problem is not None:
        return CORRUPT, problem
    return COMPLETE, None


class Unreadable:
    """A manifest that exists but cannot be parsed (not JSON, not UTF-8,
    too big, not a regular file)."""

    def __init__(self, reason):
        self.reason = reason


def parse_manifest_bytes(data):
    """A manifest's bytes -> the parsed document, or an Unreadable."""
    if len(data) > MAX_MANIFEST_SIZE:
        return Unreadable("the manifest is larger than %d bytes" % MAX_MANIFEST_SIZE)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        return Unreadable("the manifest is not valid JSON (%s)" % str(e).split("\n", 1)[0][:80])
    # null is "no manifest" to the callers: say what it is instead.
    return Unreadable("the manifest is JSON null, not an object") if doc is None else doc


def future_warnings(copies, now=None):
    """One warning line per complete or legacy copy dated in the future."""
    now = time.time() if now is None else now
    out = []
    for c in copies:
        if c.state in (COMPLETE, LEGACY) and c.is_future(now):
            ahead = prefix_time(c.prefix).timestamp() - now
            out.append("copy %s is dated %s in the future (the clock was ahead when it was made?): it sorts as the "
                       "newest copy and rotation keeps it until then; check the clock, remove it if it is not "
                       "needed" % (c.prefix, _fmt_ahead(ahead)))
    return out


def _fmt_ahead(seconds):
    days, rest = divmod(int(seconds), 86400)
    if days:
        return "%dd %dh" % (days, rest // 3600)
    return "%dh %dm" % (rest // 3600, rest % 3600 // 60)
