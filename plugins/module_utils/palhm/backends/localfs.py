# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The localfs backend: copies are directories under ROOT (a local disk, NFS
or Samba mount).

A copy is made in ``ROOT/PREFIX.palhm-partial`` and renamed to ``ROOT/PREFIX``
after its manifest was written and everything was fsync'ed, so a crash at any
moment leaves either a ``.palhm-partial`` leftover or a complete copy. Copies
being removed are first renamed to ``.palhm-deleting``. The last stage of an
object's pipeline writes into a pipe; palhm reads it, hashes and writes the
object's file (as the original's ``dd`` sink did), so only palhm ever writes
an object: a stage that seeks, reopens /dev/stdout or leaves a child writing
after it exited cannot change what was hashed, and a write error (ENOSPC,
EIO) fails the object instead of being swallowed by a stage.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import stat

from .. import schema
from ..errors import BackendError, ConfigError
from . import owner as owner_mod
from .base import (COMMON_PARAMS, COMPLETE, CORRUPT, INCOMPLETE, LEGACY, MANIFEST_NAME, MAX_MANIFEST_SIZE, Backend,
                   Copy, HashingSink, ObjectInfo, Unreadable, is_original_prefix, manifest_owner,
                   parse_manifest_bytes, parse_retention)

PARTIAL = ".palhm-partial"
OWNER_NAME = ".palhm-partial-owner.json"  # the in-progress mark (owner.py) inside a partial copy
DELETING = ".palhm-deleting"
MAX_BLOCK_SIZE = 1 << 30  # dd's bs= is a buffer in memory: more than 1 GiB is a typo


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_file_range():
    """libc's sync_file_range (Linux), or None."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2
WRITEBACK_EVERY = 8 << 20


class FileSink(HashingSink):
    """An object's file, written by palhm with what it reads from the
    pipeline (fd is None: no stage gets the file). Writeback of what was
    written starts every WRITEBACK_EVERY bytes (sync_file_range, no wait), so
    the fsync at the end has little left to do and the disk works while the
    stream runs."""

    def __init__(self, path, fmode):
        super().__init__()
        self.path = path
        self._out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.fchmod(self._out, fmode)
        self._written = 0
        self._flushed = 0

    def write(self, data):
        view = memoryview(data)
        while len(view):
            try:
                n = os.write(self._out, view)
            except OSError as e:
                raise _backend_error("cannot write %s" % self.path, e) from None
            if n <= 0:  # pragma: no cover - write(2) returns > 0 or fails
                raise BackendError("cannot write %s: the write stored nothing" % self.path)
            view = view[n:]  # a short write (a disk filling up): the rest next
            self._written += n
        if self._written - self._flushed >= WRITEBACK_EVERY and _SYNC_FILE_RANGE is not None:
            # Advisory: an error here shows again, and counts, at fsync.
            _SYNC_FILE_RANGE(self._out, self._flushed, self._written - self._flushed, _SYNC_FILE_RANGE_WRITE)
            self._flushed = self._written

    def finish(self):
        try:
            os.fsync(self._out)
        except OSError as e:
            raise _backend_error("cannot write %s" % self.path, e) from None
        finally:
            self._close()
        return ObjectInfo(self.size, self.hash.hexdigest())

    def _close(self):
        if self._out is not None:
            os.close(self._out)
            self._out = None

    def abort(self):
        self._close()

    def no_space(self):
        try:
            st = os.fstatvfs(self._out) if self._out is not None else os.statvfs(os.path.dirname(self.path))
        except OSError:
            return False
        return st.f_bavail == 0 or st.f_favail == 0


def _backend_error(what, e):
    if getattr(e, "errno", None) == errno.ENOSPC:
        return BackendError("%s: no space left on device" % what)
    return BackendError("%s: %s" % (what, e))


def _du(path):
    """Bytes under `path`, never following symlinks."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


class LocalfsBackend(Backend):
    name = "localfs"

    def __init__(self, params, task_id):
        super().__init__(params, task_id)
        self.root = params["root"]
        self.dmode = params["dmode"]
        self.fmode = params["fmode"]
        self.partial = None

    def location(self, prefix=None):
        return os.path.join(self.root, prefix) if prefix else self.root

    def lock_key(self):
        return "localfs:" + os.path.realpath(self.root)

    # -- listing ---------------------------------------------------------
    def _entries(self):
        try:
            with os.scandir(self.root) as it:
                return sorted(((e.name, e) for e in it), key=lambda x: x[0])
        except FileNotFoundError:
            return []
        except OSError as e:
            raise _backend_error("cannot list backup root %s" % self.root, e) from None

    def list_copies(self, include_incomplete=True):
        """This task's copies in ROOT (base.py says which entries those
        are), oldest first. Every entry that is not (another task's, a
        stray directory, anything reached through a symlink) is skipped."""
        copies = []
        self.root_hosts = set()
        self.root_names = set()
        for name, entry in self._entries():
            self.root_names.add(name[:-len(PARTIAL)] if name.endswith(PARTIAL) else
                                name[:-len(DELETING)] if name.endswith(DELETING) else name)
            # Never follow a symlink out of ROOT: such entries are not copies.
            if not entry.is_dir(follow_symlinks=False):
                continue
            full = os.path.join(self.root, name)
            if name.endswith(PARTIAL) or name.endswith(DELETING):
                copy = self._leftover(name, full)
                if copy is not None and include_incomplete:
                    copies.append(copy)
                continue
            manifest = self._load_manifest(full)
            if manifest is None:
                if is_original_prefix(name):
                    nfiles = sum(len(files) for _dir, _subdirs, files in os.walk(full))
                    copies.append(Copy(name, LEGACY, _du(full), nfiles, None, full, {"dir": full}))
                continue
            verdict, host = self.classify(manifest)
            if verdict is None:
                continue  # another task's copy
            state, problem = verdict
            extra = {"dir": full, "host": host}
            if state == COMPLETE:
                objs = manifest["objects"]
                copies.append(Copy(name, COMPLETE, sum(o["size"] for o in objs), len(objs), manifest, full, extra))
            else:
                extra["problem"] = problem
                nfiles = sum(len(files) for _dir, _subdirs, files in os.walk(full))
                copies.append(Copy(name, CORRUPT, _du(full), max(0, nfiles - 1), None, full, extra))
        copies.sort(key=lambda c: c.prefix)
        return copies

    def _leftover(self, name, full):
        """The Copy of a ``.palhm-partial`` or ``.palhm-deleting`` directory
        when it is this task's (or names no task), else None."""
        suffix = PARTIAL if name.endswith(PARTIAL) else DELETING
        mark = self._read_mark(full) if suffix == PARTIAL else None
        owner = owner_mod.mark_task(mark)
        if owner is None:
            # No mark (a copy being deleted, a commit between its manifest
            # and its rename, palhm before 1.1): the manifest inside tells.
            manifest = self._load_manifest(full)
            if manifest is not None and not isinstance(manifest, Unreadable):
                owner = manifest_owner(manifest) or None
        if mark is not None and owner_mod.mark_host(mark):
            self.root_hosts.add(owner_mod.mark_host(mark))
        if owner is not None and owner != self.task_id:
            return None
        try:
            mtime = os.lstat(full).st_mtime
        except OSError:
            mtime = None
        return Copy(name[:-len(suffix)], INCOMPLETE, _du(full), 0, None, full,
                    {"dir": full, "mark": mark, "mark_host": owner_mod.mark_host(mark), "mtime": mtime,
                     "deleting": suffix == DELETING})

    @staticmethod
    def _read_small(path, limit):
        """The bytes of a regular file (never through a symlink), or None
        when there is none; Unreadable when it cannot be read."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno == errno.ELOOP:
                return Unreadable("%s is a symbolic link" % os.path.basename(path))
            return Unreadable("%s cannot be read: %s" % (os.path.basename(path), e.strerror or e))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return Unreadable("%s is not a regular file" % os.path.basename(path))
            chunks, total = [], 0
            while total <= limit:
                data = os.read(fd, 1 << 20)
                if not data:
                    break
                chunks.append(data)
                total += len(data)
            return b"".join(chunks)
        except OSError as e:
            return Unreadable("%s cannot be read: %s" % (os.path.basename(path), e.strerror or e))
        finally:
            os.close(fd)

    @classmethod
    def _load_manifest(cls, copy_dir):
        """The parsed manifest of a copy directory; None when it has none;
        an Unreadable when it is there but cannot be parsed."""
        data = cls._read_small(os.path.join(copy_dir, MANIFEST_NAME), MAX_MANIFEST_SIZE)
        if data is None or isinstance(data, Unreadable):
            return data
        return parse_manifest_bytes(data)

    @classmethod
    def _read_mark(cls, partial_dir):
        data = cls._read_small(os.path.join(partial_dir, OWNER_NAME), owner_mod.MAX_MARK_SIZE)
        return None if data is None or isinstance(data, Unreadable) else owner_mod.parse(data)

    def read_manifest(self, prefix):
        doc = self._load_manifest(os.path.join(self.root, prefix))
        return None if isinstance(doc, Unreadable) else doc

    def cleanup_leftovers(self, copies):
        removed = []
        for c in self.dead_leftovers(copies):
            if c.extra.get("dir") != self.partial:
                self._rmtree(c.extra["dir"])
                removed.append(c.prefix)
        return removed

    def check_before_commit(self, manifest):
        mark = self._read_mark(self.partial)
        me = owner_mod.identity()
        if mark is None or mark.get("pid") != me["pid"] or mark.get("host") != me["host"] or \
                mark.get("boot_id") != me["boot_id"]:
            raise BackendError("cannot complete the copy %s: its in-progress mark %s is gone or is not this "
                               "run's (another host's cleanup?); not committing"
                               % (self.partial, OWNER_NAME))
        for obj in manifest.get("objects", []):
            target = os.path.join(self.partial, obj["path"])
            try:
                st = os.lstat(target)
            except OSError as e:
                raise BackendError("cannot complete the copy %s: object %s is missing (%s); not committing a copy "
                                   "without it" % (self.partial, obj["path"], e.strerror or e)) from None
            if not stat.S_ISREG(st.st_mode) or st.st_size != obj["size"]:
                raise BackendError("cannot complete the copy %s: object %s has %d bytes, %d were written; not "
                                   "committing" % (self.partial, obj["path"], st.st_size, obj["size"]))

    def _rmtree(self, path):
        # Only direct children of ROOT, never through a symlink.
        if os.path.dirname(os.path.abspath(path)) != os.path.abspath(self.root) or os.path.islink(path):
            raise BackendError("refusing to delete %s: not a copy directory inside %s" % (path, self.root))
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise _backend_error("cannot remove %s" % path, e) from None

    # -- making a copy ---------------------------------------------------
    def _mkdir(self, path):
        os.mkdir(path, 0o700)
        os.chmod(path, self.dmode)

    def begin(self, prefix):
        super().begin(prefix)
        try:
            if not os.path.isdir(self.root):
                os.makedirs(self.root, 0o700, exist_ok=True)
                os.chmod(self.root, self.dmode)
            self.partial = os.path.join(self.root, prefix + PARTIAL)
            os.mkdir(self.partial, 0o700)
        except OSError as e:
            self.partial = None
            raise _backend_error("cannot create the copy in %s" % self.root, e) from None
        try:
            # The mark first, mode last: until the mark is there the
            # directory names no owner (cleanup then waits stale-age).
            self._write_mark()
            os.chmod(self.partial, self.dmode)
        except OSError as e:
            raise _backend_error("cannot create the copy in %s" % self.root, e) from None

    def _write_mark(self):
        path = os.path.join(self.partial, OWNER_NAME)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), self.fmode)
            f.write(owner_mod.encode(owner_mod.new_mark(self.task_id)))
            f.flush()
            os.fsync(f.fileno())

    def open_sink(self, path, alloc_size=None):
        target = os.path.join(self.partial, path)
        try:
            parent = self.partial
            for part in path.split("/")[:-1]:
                parent = os.path.join(parent, part)
                try:
                    self._mkdir(parent)
                except FileExistsError:
                    # Another object of this copy made it at the same time.
                    if not os.path.isdir(parent) or os.path.islink(parent):
                        raise
            return FileSink(target, self.fmode)
        except OSError as e:
            raise _backend_error("cannot create %s" % target, e) from None

    def commit(self, manifest):
        self.check_before_commit(manifest)
        final = os.path.join(self.root, self.prefix)
        tmp = os.path.join(self.partial, MANIFEST_NAME + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), self.fmode)
                json.dump(manifest, f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, os.path.join(self.partial, MANIFEST_NAME))
            # From here the manifest names the owner; the copy keeps no mark.
            try:
                os.unlink(os.path.join(self.partial, OWNER_NAME))
            except FileNotFoundError:
                pass
            for dirpath, _subdirs, _files in os.walk(self.partial):
                _fsync_dir(dirpath)
            if os.path.lexists(final):
                raise BackendError("%s already exists; not replacing it" % final)
            os.rename(self.partial, final)
            _fsync_dir(self.root)
        except OSError as e:
            raise _backend_error("cannot complete the copy %s" % final, e) from None
        self.partial = None

    def rollback(self):
        if self.partial is not None:
            try:
                self._rmtree(self.partial)
            finally:
                self.partial = None

    def remove_copy(self, copy):
        src = copy.extra["dir"]
        doomed = os.path.join(self.root, copy.prefix + DELETING)
        if copy.state != INCOMPLETE:
            # Rename first: a crash mid-delete leaves a leftover, never a
            # "complete" copy with objects missing.
            try:
                os.rename(src, doomed)
            except OSError as e:
                raise _backend_error("cannot remove copy %s" % src, e) from None
            src = doomed
        self._rmtree(src)

    def open_object(self, prefix, path):
        """The object, opened without following any symlink inside ROOT:
        a link planted in a copy never makes verify or restore read a file
        outside it."""
        parts = [prefix] + [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise FileNotFoundError(errno.ENOENT, "not inside the copy", os.path.join(self.root, prefix, path))
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                nfd = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = nfd
            ofd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
        finally:
            os.close(fd)
        try:
            if not stat.S_ISREG(os.fstat(ofd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", os.path.join(self.root, prefix, path))
            os.set_blocking(ofd, True)
        except BaseException:
            os.close(ofd)
            raise
        return os.fdopen(ofd, "rb")


# Refused as a backup root (they hold the system, not copies).
SYSTEM_DIRS = frozenset(("/", "/etc", "/usr", "/var", "/home", "/tmp", "/root", "/boot", "/bin", "/sbin", "/opt",
                         "/srv", "/dev", "/proc", "/sys", "/run", "/mnt", "/media"))


def _system_dir(path):
    path = "/" + path.strip("/") if path != "/" else path
    path = re.sub(r"/+", "/", path)
    return path in SYSTEM_DIRS or bool(re.match(r"^/lib[^/]*$", path))


def parse_params(raw, path):
    schema.obj(raw, path, required=("root",), optional=COMMON_PARAMS + ("dmode", "fmode", "block-size"))
    root = schema.string(raw["root"], schema.join(path, "root"))
    if not os.path.isabs(root):
        raise ConfigError(schema.join(path, "root"), "must be an absolute path, got %s" % schema.show(root))
    # normpath keeps a leading "//" (POSIX allows it a meaning; Linux has none).
    root = re.sub(r"^/+", "/", os.path.normpath(root))
    for candidate in (root, os.path.realpath(root)):
        if _system_dir(candidate):
            raise ConfigError(schema.join(path, "root"), "must not be %s%s: rotation and cleanup manage the "
                              "entries of the backup root; use a directory of its own such as /var/backups/palhm"
                              % (schema.show(candidate), "" if candidate == "/" else " (a system directory)"))
    params = {"root": root,
              "dmode": schema.file_mode(raw.get("dmode", "750"), schema.join(path, "dmode")),
              "fmode": schema.file_mode(raw.get("fmode", "640"), schema.join(path, "fmode")),
              "retention": parse_retention(raw, path), "stale-age": owner_mod.parse_stale_age(raw, path)}
    if "block-size" in raw:
        # The original passed it to dd; the last stage now writes the file itself.
        params["block-size"] = schema.integer(raw["block-size"], schema.join(path, "block-size"), minimum=1,
                                              maximum=MAX_BLOCK_SIZE, allow_string=True)
    return params


def make(params, task_id):
    return LocalfsBackend(params, task_id)
