# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore: stream one object of a complete copy back, verified as it streams.

The object is read from the backend through ``Backend.open_object()`` only
(localfs, aws-s3), hashed and counted chunk by chunk against its manifest
entry, and goes to one of:

- a file descriptor (``palhm restore`` to stdout);
- a destination file, written to a temporary file in the same directory and
  renamed over the destination only once size and SHA-256 matched;
- a pipeline of Execs that palhm feeds on its stdin, the mirror of a backup
  object (``zstd -d`` then ``tar -x -C DIR``); its last stage writes to a
  file descriptor, to a destination file (atomically, as above) or to a
  bounded tail.

The last chunk read is held back until the whole object has been hashed: a
consumer never sees the end of a stream that fails verification. On a
mismatch the pipeline is killed before its input ends, so a decompressor or
an archiver fails instead of finishing cleanly on corrupt data (what it
already unpacked stays; use ``verify_first`` to check the object before
anything is fed to the pipeline, at the cost of reading it twice).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import time

from . import redact, schema
from .backends.base import check_object_path
from .errors import BackendError, CancelledError, ConfigError, PalhmError, TaskFailed, UsageError, VerifyError
from .execs import Exec, parse_item
from .inspect import pick_complete
from .pipeline import STDOUT_CAPTURE, Pipeline

CHUNK = 1 << 20
DEFAULT_MODE = 0o600


def FedPipeline(stages, label, stdout, rt=None):  # pylint: disable=invalid-name
    """``palhm | stages[0] | ... | stages[-1] > stdout``: palhm writes the
    object into ``in_fd``. `stdout` is a file descriptor or STDOUT_CAPTURE."""
    return Pipeline(stages, label, stdout, rt, stdin_pipe=True)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _Verifier:
    """Counts and hashes an object's bytes against its manifest entry."""

    def __init__(self, obj, copy):
        self.obj = obj
        self.copy = copy
        self.hash = hashlib.sha256()
        self.size = 0

    def add(self, data):
        self.hash.update(data)
        self.size += len(data)
        if self.size > self.obj["size"]:
            raise self.mismatch("more than the %d bytes in the manifest" % self.obj["size"])

    def check(self):
        digest = self.hash.hexdigest()
        if self.size != self.obj["size"] or digest != self.obj["sha256"]:
            raise self.mismatch("size %d, expected %d; sha256 %s, expected %s"
                                % (self.size, self.obj["size"], digest, self.obj["sha256"]))

    def mismatch(self, detail):
        return VerifyError("object %s of copy %s does not match its manifest (%s)"
                           % (self.obj["path"], self.copy.prefix, detail))


def _read_error(obj, copy, e):
    """An error reading a stored object: a missing object fails verification,
    other errors are backend errors; both name the object."""
    text = str(e)
    missing = isinstance(e, FileNotFoundError) or getattr(e, "errno", None) == errno.ENOENT or \
        any(w in text for w in ("NoSuchKey", "Not Found", "404"))
    if missing:
        return VerifyError("object %s of copy %s is in the manifest but missing from the backend (%s)"
                           % (obj["path"], copy.prefix, text))
    if isinstance(e, PalhmError) and not isinstance(e, BackendError):
        return e
    return BackendError("object %s of copy %s cannot be read: %s" % (obj["path"], copy.prefix, text))


def stream_object(backend, copy, obj, emit=None, rt=None):
    """Read one object, verifying it; emit(chunk) gets every chunk but the
    last only once the whole object matched. Returns (size, sha256)."""
    ver = _Verifier(obj, copy)
    held = None
    try:
        f = backend.open_object(copy.prefix, obj["path"])
    except (OSError, PalhmError) as e:
        raise _read_error(obj, copy, e) from None
    try:
        while True:
            if rt is not None:
                rt.check_cancel()
            try:
                data = f.read(CHUNK)
            except (OSError, PalhmError) as e:
                raise _read_error(obj, copy, e) from None
            except Exception as e:  # botocore read errors are not OSErrors
                raise BackendError("object %s of copy %s cannot be read: %s: %s"
                                   % (obj["path"], copy.prefix, type(e).__name__, e)) from None
            if not data:
                break
            ver.add(data)
            if held is not None and emit is not None:
                emit(held)
            held = data
    finally:
        try:
            f.close()
        except Exception:  # pragma: no cover - closing a read stream
            pass
    ver.check()
    if held is not None and emit is not None:
        emit(held)
    return ver.size, ver.hash.hexdigest()


def find_object(copy, path, task_id):
    for obj in copy.manifest.get("objects", []):
        if obj.get("path") == path:
            return obj
    known = ", ".join(schema.show(o.get("path")) for o in copy.manifest.get("objects", [])) or "none"
    raise UsageError("copy %s of task %s has no object %s (objects: %s)"
                     % (copy.prefix, task_id, schema.show(path), known))


def parse_pipeline(items, execs, where="pipeline"):
    """Pipeline items in config syntax (or Execs) -> [Exec]."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(where, "expected a list of pipeline items")
    return [item if isinstance(item, Exec) else parse_item(item, schema.join(where, i), execs)
            for i, item in enumerate(items)]


def dest_path(dest, path):
    """Where the object goes: `dest`, or DEST/basename(PATH) when `dest` is a
    directory (or ends with /)."""
    if dest.endswith("/") or os.path.isdir(dest):
        return os.path.join(dest, path.rsplit("/", 1)[-1])
    return dest


def file_sha256(path):
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            h.update(data)
            size += len(data)
    return size, h.hexdigest()


def _same_content(path, obj):
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        if os.path.getsize(path) != obj["size"]:
            return False
        return file_sha256(path) == (obj["size"], obj["sha256"])
    except OSError:
        return False


def _dest_dir(dest):
    """The directory `dest` goes into; a UsageError when it is not there (the
    same check in check mode and in a real run)."""
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise UsageError("cannot restore into %s: directory %s does not exist" % (dest, directory))
    return directory


def _mode_differs(path, mode):
    try:
        return mode is not None and stat.S_IMODE(os.stat(path).st_mode) != mode
    except OSError:
        return False


class _AtomicFile:
    """A temporary file next to `dest`, renamed over it by commit()."""

    def __init__(self, dest, mode):
        directory = _dest_dir(dest)
        if mode is None:
            try:
                mode = stat.S_IMODE(os.stat(dest).st_mode)
            except OSError:
                mode = DEFAULT_MODE
        self.dest = dest
        try:
            self.fd, self.tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(dest) + ".",
                                                 suffix=".palhm-restore")
            os.fchmod(self.fd, mode)
        except OSError as e:
            raise TaskFailed("cannot create a file in %s: %s" % (directory, e)) from None

    def commit(self):
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = None
            os.rename(self.tmp, self.dest)
            self.tmp = None
            dfd = os.open(os.path.dirname(os.path.abspath(self.dest)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            raise TaskFailed("cannot write %s: %s" % (self.dest, e)) from None

    def discard(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None


def _make_rt(cfg, rt):
    if rt is not None:
        return rt
    from .runtime import Runtime
    return Runtime(cfg)


def restore(cfg, task_id, prefix, path, dest=None, pipeline_items=None, rt=None, out_fd=None,
            check=False, force=True, mode=None, verify_first=False):
    """Restore object `path` of copy `prefix` (None: the newest complete copy)
    of backup task `task_id`.

    dest: file (or directory) to write, atomically, only when verified.
    pipeline_items: pipeline items in config syntax (or Execs) the object is
      fed through; their output goes to `dest`, else `out_fd`, else a tail.
    out_fd: without dest, where the object (or the pipeline's output) goes.
    check: say what would be restored from where; read and write nothing.
    force: False = leave an existing `dest` whose content already matches the
      manifest alone (no pipeline); True = always write.
    mode: permissions of a new `dest` (default: those of the file it
      replaces, else 0600).
    verify_first: with a pipeline, verify the whole object before feeding it.
    """
    path = check_object_path(path, "path")
    stages = parse_pipeline(pipeline_items, cfg.execs)
    backend, copy = pick_complete(cfg, task_id, prefix)
    obj = find_object(copy, path, task_id)
    target = dest_path(dest, path) if dest else None
    location = backend.location(copy.prefix).rstrip("/") + "/" + path
    info = {"task": task_id, "prefix": copy.prefix, "path": path, "location": location,
            "size": obj["size"], "sha256": obj["sha256"], "dest": target,
            "pipeline": [redact.argv(s.argv) for s in stages], "written": False}
    if target:
        _dest_dir(target)
    up_to_date = bool(target and not stages and not force and _same_content(target, obj))
    # Like ansible.builtin.copy: `mode` is enforced on a file that already matches.
    fix_mode = up_to_date and _mode_differs(target, mode)
    if check:
        info["would_write"] = not up_to_date
        if fix_mode:
            info["would_change_mode"] = True
        return info
    if up_to_date:
        info["up_to_date"] = True
        if fix_mode:
            try:
                os.chmod(target, mode)
            except OSError as e:
                raise TaskFailed("cannot set the mode of %s: %s" % (target, e)) from None
            info["mode_changed"] = True
        return info
    rt = _make_rt(cfg, rt)
    started = time.monotonic()
    if stages:
        if verify_first:
            stream_object(backend, copy, obj, None, rt)
        info.update(_restore_through(rt, backend, copy, obj, stages, target, out_fd, mode))
    elif target:
        out = _AtomicFile(target, mode)
        try:
            stream_object(backend, copy, obj, lambda data: _write_all(out.fd, data), rt)
            out.commit()
        finally:
            out.discard()
    elif out_fd is not None:
        stream_object(backend, copy, obj, lambda data: _write_all(out_fd, data), rt)
    else:
        raise UsageError("restore needs a destination, a pipeline or an output file descriptor")
    info["written"] = True
    info["elapsed"] = round(time.monotonic() - started, 3)
    from .runtime import VL_INFO
    rt.log(VL_INFO, "restored %s (%d bytes, sha256 verified)%s%s" % (
        location, obj["size"], " through " + " | ".join(" ".join(redact.argv(s.argv)) for s in stages) if stages else "",
        " into " + target if target else ""))
    return info


def feed_pipeline(rt, backend, copy, obj, stages):
    """Feed object `obj` of `copy` through `stages`, verified as it streams
    (their output: a bounded tail); restore drills. -> {"stages", "stdout_tail"}."""
    return _restore_through(rt, backend, copy, obj, stages, None, None, None)


def _restore_through(rt, backend, copy, obj, stages, target, out_fd, mode):
    label = "restore of %s" % obj["path"]
    out = _AtomicFile(target, mode) if target else None
    stdout = out.fd if out is not None else (out_fd if out_fd is not None else STDOUT_CAPTURE)
    pipe = FedPipeline(stages, label, stdout, rt)
    state = {"broken": False}

    def feed(data):
        if state["broken"]:
            return
        try:
            _write_all(pipe.in_fd, data)
        except BrokenPipeError:
            # The first stage stopped reading (it failed, or is done early);
            # keep reading to tell a corrupt object from a failing command.
            state["broken"] = True

    try:
        pipe.start()
        try:
            stream_object(backend, copy, obj, feed, rt)
        except BaseException:
            # Kill before closing the input: no stage may see a clean end of
            # a stream that failed verification.
            pipe.terminate(grace=2.0)
            pipe.close_in()
            pipe.wait()
            raise
        pipe.close_in()
        results = pipe.wait()
        err = pipe.failure(results)
        if err is not None:
            raise err
        if out is not None:
            out.commit()
    except KeyboardInterrupt:
        raise CancelledError("%s interrupted" % label) from None
    finally:
        pipe.close_in()
        if out is not None:
            out.discard()
    res = {"stages": [r.as_dict() for r in results]}
    if pipe.stdout_tail is not None:
        res["stdout_tail"] = pipe.stdout_tail.text(2048)
    return res
